//! Shared-memory rings of every transport (`posix-shm`, `sysv-shm`, `file-shm`) for the cross-process
//! tests: a unique name removed whatever way the test ends, either end opened from a transport
//! string of either kind, and a raw mapping of the live segment for a test that plays the
//! hostile peer (which finds the regions to aim at through `ipc::sync::Layout`); and what
//! every ring's lifecycle must do whatever its kind of segment.

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::sync::Arc;

use ipc::posix::file::MappedFile;
use ipc::posix::ring::{FileShmReceiver, FileShmSender, ShmReceiver, ShmSender};
use ipc::posix::shm::{Expect, SharedMemory};
use ipc::sync::Shared;
use ipc::sync::ring::{RingReceiver, RingSender};
use ipc::sysv::ring::{SysvShmReceiver, SysvShmSender};
use ipc::sysv::shm::{Access, SysvSegment};
use ipc::{Error, Receiver, Sender, Transport, TransportSpec};

use crate::factory_sysv_shm::SysvKeyGuard;
use crate::process::spawn_peer_on;
use crate::{PathGuard, ShmGuard};

/// Which shared-memory transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShmTransport {
    /// `posix-shm:/NAME`.
    Posix,
    /// `sysv-shm:key=0x…`.
    Sysv,
    /// `file-shm:/tmp/…`.
    File,
}

impl ShmTransport {
    /// Every one, in the order reports list them.
    pub const ALL: [ShmTransport; 3] =
        [ShmTransport::Posix, ShmTransport::Sysv, ShmTransport::File];

    /// The scheme of its transport strings.
    pub fn name(self) -> &'static str {
        match self {
            ShmTransport::Posix => "posix-shm",
            ShmTransport::Sysv => "sysv-shm",
            ShmTransport::File => "file-shm",
        }
    }

    /// From its scheme.
    pub fn from_name(name: &str) -> Option<ShmTransport> {
        ShmTransport::ALL.into_iter().find(|t| t.name() == name)
    }
}

enum Name {
    Posix(ShmGuard),
    Sysv(SysvKeyGuard),
    File(PathGuard),
}

/// A ring's unique name (a POSIX name, or a System V key), whose segment is removed when this
/// is dropped, whoever created it (`shm_unlink`, or `IPC_RMID`): a killed creator removes
/// nothing, and a test that fails still drops its locals.
pub struct TestRing {
    name: Name,
}

impl TestRing {
    /// A fresh name of transport `t`; nothing is created yet.
    pub fn new(t: ShmTransport) -> TestRing {
        TestRing {
            name: match t {
                ShmTransport::Posix => Name::Posix(ShmGuard::unique()),
                ShmTransport::Sysv => Name::Sysv(SysvKeyGuard::unique()),
                ShmTransport::File => Name::File(PathGuard::unique("ring")),
            },
        }
    }

    /// Its transport.
    pub fn transport(&self) -> ShmTransport {
        match self.name {
            Name::Posix(_) => ShmTransport::Posix,
            Name::Sysv(_) => ShmTransport::Sysv,
            Name::File(_) => ShmTransport::File,
        }
    }

    /// The transport string with options `query` (`a=b&c=d`, or empty).
    pub fn spec(&self, query: &str) -> String {
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        match &self.name {
            Name::Posix(g) => format!("posix-shm:{}{query}", g.name()),
            Name::Sysv(g) => g.spec(&query),
            Name::File(g) => format!("file-shm:{}{query}", g.as_str()),
        }
    }

    /// [`TestRing::spec`], parsed.
    pub fn parsed(&self, query: &str) -> TransportSpec {
        let spec = self.spec(query);
        spec.parse()
            .unwrap_or_else(|e| panic!("`{spec}` does not parse: {e}"))
    }

    /// A read-write mapping of the segment as it is now, outside any endpoint: what a hostile
    /// process that may write the segment sees.
    pub fn map(&self) -> ipc::Result<Shared> {
        match &self.name {
            Name::Posix(g) => {
                let shm = SharedMemory::open(g.name(), &Expect::size(1))?;
                Ok(Shared::new(Arc::new(shm.map()?)))
            }
            Name::Sysv(g) => {
                let segment = SysvSegment::lookup(g.key())?;
                Ok(Shared::new(Arc::new(segment.attach(Access::ReadWrite)?)))
            }
            Name::File(g) => {
                let file = MappedFile::open(g.path(), &Expect::size(1))?;
                Ok(Shared::new(Arc::new(file.map()?)))
            }
        }
    }
}

/// The sending end of a ring of either transport; dereferences to the ring endpoint, whose
/// calls (`loan`, `send`) are the same for both.
pub enum AnySender {
    /// `posix-shm`.
    Posix(ShmSender),
    /// `sysv-shm`.
    Sysv(SysvShmSender),
    /// `file-shm`.
    File(FileShmSender),
}

impl AnySender {
    /// Opens the ring `spec` names, of either transport.
    pub fn open(spec: &TransportSpec) -> ipc::Result<AnySender> {
        match spec.transport {
            Transport::PosixShm => ShmSender::open(spec).map(AnySender::Posix),
            Transport::SysvShm => SysvShmSender::open(spec).map(AnySender::Sysv),
            Transport::FileShm => FileShmSender::open(spec).map(AnySender::File),
            other => Err(Error::invalid_spec(
                spec.to_string(),
                format!("{} is not a shared-memory ring", other.scheme()),
            )),
        }
    }
}

impl Deref for AnySender {
    type Target = RingSender;
    fn deref(&self) -> &RingSender {
        match self {
            AnySender::Posix(s) => s.ring(),
            AnySender::Sysv(s) => s.ring(),
            AnySender::File(s) => s.ring(),
        }
    }
}

impl DerefMut for AnySender {
    fn deref_mut(&mut self) -> &mut RingSender {
        match self {
            AnySender::Posix(s) => s.ring_mut(),
            AnySender::Sysv(s) => s.ring_mut(),
            AnySender::File(s) => s.ring_mut(),
        }
    }
}

/// The receiving end of a ring of either transport; dereferences to the ring endpoint.
pub enum AnyReceiver {
    /// `posix-shm`.
    Posix(ShmReceiver),
    /// `sysv-shm`.
    Sysv(SysvShmReceiver),
    /// `file-shm`.
    File(FileShmReceiver),
}

impl AnyReceiver {
    /// Opens (or creates, as `spec` says) the ring `spec` names, of either transport.
    pub fn open(spec: &TransportSpec) -> ipc::Result<AnyReceiver> {
        match spec.transport {
            Transport::PosixShm => ShmReceiver::open(spec).map(AnyReceiver::Posix),
            Transport::SysvShm => SysvShmReceiver::open(spec).map(AnyReceiver::Sysv),
            Transport::FileShm => FileShmReceiver::open(spec).map(AnyReceiver::File),
            other => Err(Error::invalid_spec(
                spec.to_string(),
                format!("{} is not a shared-memory ring", other.scheme()),
            )),
        }
    }
}

impl Deref for AnyReceiver {
    type Target = RingReceiver;
    fn deref(&self) -> &RingReceiver {
        match self {
            AnyReceiver::Posix(r) => r.ring(),
            AnyReceiver::Sysv(r) => r.ring(),
            AnyReceiver::File(r) => r.ring(),
        }
    }
}

impl DerefMut for AnyReceiver {
    fn deref_mut(&mut self) -> &mut RingReceiver {
        match self {
            AnyReceiver::Posix(r) => r.ring_mut(),
            AnyReceiver::Sysv(r) => r.ring_mut(),
            AnyReceiver::File(r) => r.ring_mut(),
        }
    }
}

/// A receiver killed (its creator included) leaves the segment of the ring `spec` (whose
/// `?query` it continues) and its place: a new receiver opens the segment, takes the dead
/// one's place and gets what was sent meanwhile. It did not create the segment, so it leaves
/// it when dropped (`exists` says whether the segment is there); a guard or the user removes it.
/// `peer` is a peer binary ([`peer::main`](crate::peer::main)).
pub fn a_dead_receivers_place_is_taken_over(peer: &Path, spec: &str, exists: impl Fn() -> bool) {
    let mut first = spawn_peer_on(peer, "recv-hold", &[], &format!("{spec}&create=always"));
    first.expect_line("ready");
    let mut tx = ipc::open_sender(spec).unwrap();
    tx.send(b"for whoever receives").unwrap();
    first.kill();
    assert!(exists(), "a killed creator cannot remove its segment");
    let mut rx = ipc::open_receiver(spec).unwrap();
    let mut buf = vec![0; rx.max_message_size()];
    let n = rx.try_recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"for whoever receives");
    drop(rx);
    assert!(exists(), "a receiver removed what it did not create");
}
