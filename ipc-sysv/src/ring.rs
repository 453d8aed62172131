//! System V shared memory as a transport: `sysv-shm:ftok=/path:0x66?capacity=64KiB`,
//! `sysv-shm:key=0x6666?wait=busy`.
//!
//! The segment holds an [`ipc_sync::ring`], exactly as `ipc-posix`'s `posix-shm` transport
//! does: a ring of variable-length records that one receiver drains and one producer
//! (`producers=single`, the default) or several (`producers=multi`) fill. Data crosses once, by
//! `memcpy` into the segment, or not at all through the zero-copy API
//! ([`SysvShmSender::loan`], [`SysvShmReceiver::recv_in_place`]).
//!
//! ```
//! use ipc_core::{Receiver, Sender, TransportSpec};
//! use ipc_sysv::ring::{SysvShmReceiver, SysvShmSender};
//!
//! # fn main() -> Result<(), ipc_core::Error> {
//! let key = 0x5e10_0000 | (std::process::id() & 0xf_ffff);
//! let spec: TransportSpec = format!("sysv-shm:key={key:#x}?capacity=64KiB").parse()?;
//! let mut rx = SysvShmReceiver::open(&spec)?; // creates the segment (IPC_EXCL, mode 0600)
//! let mut tx = SysvShmSender::open(&spec)?; // finds it (waiting up to open_timeout)
//!
//! tx.send(b"copied")?;
//! let mut loan = tx.loan(6)?;
//! loan.copy_from_slice(b"in shm");
//! loan.commit();
//!
//! let mut buf = vec![0; rx.max_message_size()];
//! let n = rx.recv(&mut buf)?;
//! assert_eq!(&buf[..n], b"copied");
//! assert_eq!(&*rx.recv_in_place()?, b"in shm");
//! # Ok(())
//! # } // dropping rx removes the segment it created (IPC_RMID)
//! ```
//!
//! # Options
//!
//! The same as `posix-shm` (see `ipc_posix::ring`): `capacity` (default 64 KiB, rounded up to
//! a multiple of 64), `message_size` (default capacity / 4, at most
//! [`Geometry::max_message_for`](ipc_sync::ring::Geometry::max_message_for) the capacity), `producers` (`single` / `multi`), `mode`
//! (default `0600`, the widest an opened segment may have), `create` (receiver `if_missing`,
//! sender `never`), `open_timeout` (sender 10 s, receiver 0), `wait` (`busy`, `spin`, `park`).
//! `capacity`, `message_size` and `producers` are fixed by the creator; an opener that names
//! one with another value gets [`Error::Incompatible`] saying both.
//!
//! # Addresses
//!
//! `key=0x…` and `ftok=PATH:PROJ_ID` name a segment other processes can find. `private`
//! (`IPC_PRIVATE`) would make a segment nobody else can open by name, so a ring over it could
//! only join two ends of this same process: it is refused ([`Error::InvalidSpec`]); use
//! [`crate::shm::SysvSegment::create`] with [`Key::Private`] and hand the id over if that is
//! what is wanted. An `ftok` path that does not exist is [`Error::NotFound`] naming it.
//!
//! # Who creates, who removes
//!
//! As for `posix-shm`: a **receiver** creates the segment exclusively (`IPC_CREAT |
//! IPC_EXCL`, exactly `mode`) unless it exists, initialises the ring and removes the segment
//! (`IPC_RMID`) when dropped if it created it (unless [`SysvShmReceiver::release_segment`]).
//! A **sender** waits up to `open_timeout` for the key to appear; with `create=if_missing` or
//! `always` it may create the segment, which it never removes. An existing segment is used
//! only if it belongs to our effective uid (owner and creator), grants nothing beyond `mode`,
//! and holds an initialised ring of this library's layout; anything else is
//! [`Error::Incompatible`]. A creator found still initialising gets [`INIT_TIMEOUT`].
//!
//! Removing a segment while the other end is attached is safe: the memory lives until the
//! last detach, so that end goes on until it sees its peer gone ([`Error::Disconnected`]).
//!
//! # Peers
//!
//! One receiver per ring, one sender unless `producers=multi`; a closed or dead peer is seen
//! (`Disconnected`), as with `posix-shm`.

use std::sync::Arc;

use ipc_core::{Address, Adoption, Error, Owner, Result, Segment, Transport, TransportSpec};
use ipc_sync::ring::transport::{SegmentKind, ShmRingReceiver, ShmRingSender};

use crate::Key;
use crate::shm::{Access, Expect, SysvSegment};

/// System V shared-memory segments as the segments of a ring: named by a key (`key=…`,
/// `ftok=…`), created with `shmget(IPC_CREAT | IPC_EXCL)`, removed with `IPC_RMID`.
///
/// A marker: no value of it exists, it only names the kind.
pub enum SysvShm {}

impl SegmentKind for SysvShm {
    type Name = Key;
    type Handle = SysvSegment;

    fn name_of(spec: &TransportSpec) -> Result<Key> {
        if spec.transport != Transport::SysvShm {
            return Err(Error::invalid_spec(
                spec.to_string(),
                "not a sysv-shm transport string (`sysv-shm:key=0x…` or `sysv-shm:ftok=PATH:ID`)",
            ));
        }
        if spec.address == Address::Private {
            return Err(Error::invalid_spec(
                "private",
                "a sysv-shm ring needs a key other processes can find (key=… or ftok=…); a \
                 private segment is reachable only by its id",
            ));
        }
        Key::from_address(&spec.address)
    }

    fn describe(key: &Key) -> String {
        format!("sysv-shm:{key}")
    }

    fn removal_hint(key: &Key) -> String {
        format!("ipcrm -m ID (ipcs -m lists the id of {key})")
    }

    fn create(key: &Key, size: usize, mode: u32) -> Result<Owner<SysvSegment>> {
        SysvSegment::create(key, size, mode)
    }

    /// Never `None`: a System V segment has its size from `shmget` on, and a creator found
    /// still initialising the ring is waited for by the layout's own check.
    fn open_existing(key: &Key, adoption: &Adoption) -> Result<Option<SysvSegment>> {
        SysvSegment::open(key, &Expect::size(1).adopt(adoption)).map(Some)
    }

    fn map(handle: &SysvSegment) -> Result<Arc<dyn Segment>> {
        Ok(Arc::new(handle.attach(Access::ReadWrite)?))
    }
}

/// The sending end of a `sysv-shm` ring: see [`ShmRingSender`] for its methods, and
/// [`SysvShmRing`] for its key.
pub type SysvShmSender = ShmRingSender<SysvShm>;

/// The receiving end of a `sysv-shm` ring: see [`ShmRingReceiver`] for its methods, and
/// [`SysvShmRing`] for its key and segment id.
pub type SysvShmReceiver = ShmRingReceiver<SysvShm>;

// The defaults are the generic transport's: every kind of segment has the same.
pub use ipc_sync::ring::request::{DEFAULT_CAPACITY, MAX_CAPACITY};
pub use ipc_sync::ring::transport::{DEFAULT_MODE, DEFAULT_OPEN_TIMEOUT, INIT_TIMEOUT};

/// What a `sysv-shm` ring end tells of its segment beyond what every ring end does (a method
/// of its own so that `key()` reads as System V users expect; it is [`ShmRingSender::name`]).
pub trait SysvShmRing {
    /// The segment's key.
    fn key(&self) -> &Key;

    /// The segment's id (`shmid`), if this end created the segment and will remove it: only a
    /// receiver does, never a sender.
    fn segment_id(&self) -> Option<i32>;
}

impl SysvShmRing for SysvShmSender {
    fn key(&self) -> &Key {
        self.name()
    }

    fn segment_id(&self) -> Option<i32> {
        None
    }
}

impl SysvShmRing for SysvShmReceiver {
    fn key(&self) -> &Key {
        self.name()
    }

    fn segment_id(&self) -> Option<i32> {
        self.owned_segment().map(SysvSegment::id)
    }
}
