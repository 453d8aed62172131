//! POSIX shared memory as a transport: `posix-shm:/name?capacity=1MiB&wait=busy`.
//!
//! The segment holds an [`ipc_sync::ring`]: a ring of variable-length records that one
//! receiver drains and one producer (`producers=single`, the default) or several
//! (`producers=multi`) fill. Data crosses once, by `memcpy` into the segment, or not at all
//! through the zero-copy API ([`ShmSender::loan`], [`ShmReceiver::recv_in_place`]); the
//! kernel is involved only to park and wake a waiting end.
//!
//! ```
//! use ipc_core::{Receiver, Sender, TransportSpec};
//! use ipc_posix::ring::{ShmReceiver, ShmSender};
//!
//! # fn main() -> Result<(), ipc_core::Error> {
//! let spec: TransportSpec =
//!     format!("posix-shm:/ipc-doc-ring-{}?capacity=64KiB", std::process::id()).parse()?;
//! let mut rx = ShmReceiver::open(&spec)?; // creates and initialises the segment, mode 0600
//! let mut tx = ShmSender::open(&spec)?; // finds it (waiting up to open_timeout if need be)
//!
//! tx.send(b"copied")?;
//! let mut loan = tx.loan(6)?; // room inside the segment
//! loan.copy_from_slice(b"in shm");
//! loan.commit();
//!
//! let mut buf = vec![0; rx.max_message_size()];
//! let n = rx.recv(&mut buf)?;
//! assert_eq!(&buf[..n], b"copied");
//! let record = rx.recv_in_place()?; // read where it lies; released when dropped
//! assert_eq!(&*record, b"in shm");
//! # Ok(())
//! # } // dropping rx removes the segment it created
//! ```
//!
//! # Options
//!
//! | option         | default          | meaning                                              |
//! |----------------|------------------|------------------------------------------------------|
//! | `capacity`     | 64 KiB           | bytes of records (rounded up to a multiple of 64)    |
//! | `message_size` | capacity / 4     | largest message; at most capacity / 2 − 8            |
//! | `producers`    | `single`         | `multi` admits up to [`ring::MAX_PRODUCERS`](ipc_sync::ring::MAX_PRODUCERS) senders |
//! | `mode`         | `0600`           | permissions of a created segment, widest accepted    |
//! | `create`       | receiver `if_missing`, sender `never` | see below                       |
//! | `open_timeout` | sender 10 s, receiver 0 | how long `create=never` waits for the name    |
//! | `wait`         | `spin`           | how this end waits: `busy`, `spin` or `park`         |
//!
//! `capacity`, `message_size` and `producers` are fixed by whoever creates the ring. An end
//! that opens an existing ring accepts what is there for each of them it leaves out, and
//! refuses one it names with a different value ([`Error::Incompatible`], saying both). A
//! `message_size` above [`Geometry::max_message_for`](ipc_sync::ring::Geometry::max_message_for) the capacity (half of it, less a record
//! header: what an empty ring always takes at once, wherever its position) is
//! [`Error::InvalidSpec`] naming it when the string names the capacity too (no ring could
//! ever satisfy it), as is a `capacity` above [`MAX_CAPACITY`];
//! with the default capacity it is [`Error::LimitExceeded`] when creating (an existing,
//! larger ring would do), saying what capacity to ask for; a segment larger than the free space of `/dev/shm` is
//! [`Error::LimitExceeded`] naming `/dev/shm`, found when it is created (every page is reserved
//! then), never a `SIGBUS` later.
//!
//! # Who creates, who removes
//!
//! - A **receiver** (`create=if_missing` by default) creates the segment exclusively
//!   (`O_EXCL`, exactly `mode`), sizes it for the ring, initialises the ring and attaches; if
//!   the name exists, it opens it instead, after the checks below. `create=always` insists on
//!   creating ([`Error::AlreadyExists`]); `create=never` insists on opening
//!   ([`Error::NotFound`]). The receiver that created the segment removes its name when
//!   dropped (unless [`ShmReceiver::release_segment`]), and only if the name still refers to
//!   that segment (device and inode), never a successor made under the same name.
//! - A **sender** (`create=never` by default) waits up to `open_timeout` for the segment to
//!   appear, then attaches. With `create=if_missing` or `always` it may create and initialise
//!   the segment itself, so that it can send before any receiver runs. A sender never removes
//!   the segment, not even one it created: its messages wait there for a receiver, which does
//!   not remove what it did not create either. Such a segment stays in `/dev/shm` until removed
//!   by hand ([`shm::unlink`], `rm /dev/shm/NAME`), as a `posix-mq` queue made by a sender
//!   does.
//! - Two processes creating at once: `O_EXCL` lets exactly one create; the other opens the
//!   segment and waits (up to the later of its `open_timeout` and [`INIT_TIMEOUT`]) for the
//!   creator to size and initialise it.
//!
//! An existing segment is used only if it is a regular file owned by our effective uid with no
//! permission beyond `mode` (else [`Error::Incompatible`]: someone may have squatted the name),
//! and if it holds an initialised ring of this library's layout version: anything else
//! (another format, a segment of zeros whose creator died or that another program made, a
//! size that does not match its header) is [`Error::Incompatible`] from
//! [`Layout::attach`](ipc_sync::Layout::attach). Contents are validated as they are read
//! ([`Error::Corrupted`]), never trusted.
//!
//! # Peers
//!
//! One receiver per ring: a second live one is [`Error::LimitExceeded`]; a single-producer ring
//! refuses a second live sender the same way. Ends register their process in the segment, so a
//! closed or dead peer is seen: a receiver gets [`Error::Disconnected`] once every sender that
//! ever attached is gone and the ring is drained; a sender gets it once the receiver closed or
//! died. A sender attached before any receiver fills the ring and then waits for one.
//!
//! # In a regular file: `file-shm:/path`
//!
//! [`FileShmSender`] and [`FileShmReceiver`] are the same ring in a regular file mapped
//! `MAP_SHARED` ([`file::MappedFile`]), for a ring that lives where its users manage it with
//! ordinary tools (`ls -l`, `chown`, `rm`): a tmpfs such as `/dev/shm/app/` or
//! `/run/user/UID/` for memory speed, or a disk, where the kernel also writes the pages back
//! (costing I/O, not changing the protocol). The path is absolute; its directory must exist
//! ([`Error::NotFound`] names it). Options, defaults and who creates and removes are as above,
//! with `unlink` for `shm_unlink`; an existing path is used only if it is a regular file (not
//! a symbolic link, which `O_NOFOLLOW` refuses) that passes the same owner and mode checks; a
//! file larger than its file system has room for is [`Error::LimitExceeded`] naming the
//! directory.
//!
//! ```
//! use ipc_core::{Receiver, Sender, TransportSpec};
//! use ipc_posix::ring::{FileShmReceiver, FileShmSender};
//!
//! # fn main() -> Result<(), ipc_core::Error> {
//! let path = format!("/tmp/ipc-doc-file-ring-{}", std::process::id());
//! let spec: TransportSpec = format!("file-shm:{path}?capacity=64KiB").parse()?;
//! let mut rx = FileShmReceiver::open(&spec)?; // creates the file, mode 0600
//! let mut tx = FileShmSender::open(&spec)?;
//! tx.send(b"through a file")?;
//! let mut buf = vec![0; rx.max_message_size()];
//! let n = rx.recv(&mut buf)?;
//! assert_eq!(&buf[..n], b"through a file");
//! assert!(std::path::Path::new(&path).exists()); // visible to `ls`, `cp`, `rm`
//! drop(rx); // the receiver that created the file removes it
//! assert!(!std::path::Path::new(&path).exists());
//! # Ok(())
//! # }
//! ```
//!
//! # References
//!
//! `shm_overview(7)`, `shm_open(3)`, `futex(2)`, `open(2)`; the ring's protocol is in
//! [`ipc_sync::ring::core`].

use std::path::Path;
use std::sync::Arc;

use ipc_core::{Address, Adoption, Error, Owner, Result, Segment, Transport, TransportSpec};
use ipc_sync::ring::transport::{SegmentKind, ShmRingReceiver, ShmRingSender};

use crate::PosixName;
use crate::file::{self, MappedFile};
use crate::shm::{self, SharedMemory};

/// POSIX shared-memory objects as the segments of a ring: named `/name`, created with
/// `shm_open(O_EXCL)` and reserved, removed with `shm_unlink` (only while the name still
/// refers to that object).
///
/// A marker: no value of it exists, it only names the kind.
pub enum PosixShm {}

impl SegmentKind for PosixShm {
    type Name = PosixName;
    type Handle = SharedMemory;

    fn name_of(spec: &TransportSpec) -> Result<PosixName> {
        let (Transport::PosixShm, Address::Name(name)) = (spec.transport, &spec.address) else {
            return Err(Error::invalid_spec(
                spec.to_string(),
                "not a posix-shm transport string (`posix-shm:/name`)",
            ));
        };
        PosixName::new(name)
    }

    fn describe(name: &PosixName) -> String {
        format!("posix-shm:{name}")
    }

    fn removal_hint(name: &PosixName) -> String {
        format!("shm_unlink or rm {}", shm::shm_path(name))
    }

    fn create(name: &PosixName, size: usize, mode: u32) -> Result<Owner<SharedMemory>> {
        SharedMemory::create(name, size, mode)
    }

    fn open_existing(name: &PosixName, adoption: &Adoption) -> Result<Option<SharedMemory>> {
        let shm = SharedMemory::open_any_size(name, adoption)?;
        // Empty: a creator between its `shm_open(O_EXCL)` and `fallocate`.
        Ok((shm.size() > 0).then_some(shm))
    }

    fn map(handle: &SharedMemory) -> Result<Arc<dyn Segment>> {
        Ok(Arc::new(handle.map()?))
    }
}

/// The sending end of a `posix-shm` ring: see [`ShmRingSender`] for its methods.
pub type ShmSender = ShmRingSender<PosixShm>;

/// The receiving end of a `posix-shm` ring: see [`ShmRingReceiver`] for its methods.
pub type ShmReceiver = ShmRingReceiver<PosixShm>;

/// Regular files as the segments of a ring: named by an absolute path (`file-shm:/path`),
/// created with `open(O_CREAT | O_EXCL | O_NOFOLLOW)` and reserved, removed with `unlink`
/// (only while the path still refers to that file).
///
/// A marker: no value of it exists, it only names the kind.
pub enum FileShm {}

impl SegmentKind for FileShm {
    /// The path, as the transport string writes it.
    type Name = String;
    type Handle = MappedFile;

    fn name_of(spec: &TransportSpec) -> Result<String> {
        let (Transport::FileShm, Address::Path(path)) = (spec.transport, &spec.address) else {
            return Err(Error::invalid_spec(
                spec.to_string(),
                "not a file-shm transport string (`file-shm:/path`)",
            ));
        };
        Ok(path.clone())
    }

    fn describe(path: &String) -> String {
        file::object_name(Path::new(path))
    }

    fn removal_hint(path: &String) -> String {
        format!("rm {path}")
    }

    fn create(path: &String, size: usize, mode: u32) -> Result<Owner<MappedFile>> {
        MappedFile::create(Path::new(path), size, mode)
    }

    fn open_existing(path: &String, adoption: &Adoption) -> Result<Option<MappedFile>> {
        let file = MappedFile::open_any_size(Path::new(path), adoption)?;
        // Empty: a creator between its `open(O_EXCL)` and `fallocate`.
        Ok((file.size() > 0).then_some(file))
    }

    fn map(handle: &MappedFile) -> Result<Arc<dyn Segment>> {
        Ok(Arc::new(handle.map()?))
    }
}

/// The sending end of a `file-shm` ring: see [`ShmRingSender`] for its methods.
pub type FileShmSender = ShmRingSender<FileShm>;

/// The receiving end of a `file-shm` ring: see [`ShmRingReceiver`] for its methods.
pub type FileShmReceiver = ShmRingReceiver<FileShm>;

// The defaults are the generic transport's: every kind of segment has the same.
pub use ipc_sync::ring::request::{DEFAULT_CAPACITY, MAX_CAPACITY};
pub use ipc_sync::ring::transport::{DEFAULT_MODE, DEFAULT_OPEN_TIMEOUT, INIT_TIMEOUT};

#[cfg(test)]
mod tests {
    use super::*;
    use ipc_core::{Producers, Receiver, Sender};
    use ipc_sync::ring::Geometry;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    /// Removes the segment when dropped, whoever made it.
    struct Guard(PosixName);

    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = shm::unlink(&self.0);
        }
    }

    fn unique(options: &str) -> (TransportSpec, Guard) {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("/ipc-ring-unit-{}-{n}", std::process::id());
        let spec = format!("posix-shm:{name}{options}").parse().unwrap();
        (spec, Guard(PosixName::new(&name).unwrap()))
    }

    fn exists(name: &PosixName) -> bool {
        std::fs::symlink_metadata(shm::shm_path(name)).is_ok()
    }

    #[test]
    fn defaults_and_the_creator_removes() {
        let (spec, guard) = unique("");
        let mut rx = ShmReceiver::open(&spec).unwrap();
        assert!(rx.owns_segment());
        assert_eq!(rx.capacity(), DEFAULT_CAPACITY);
        assert_eq!(rx.max_message_size(), (DEFAULT_CAPACITY / 4) as usize);
        assert_eq!(rx.producers(), Producers::Single);
        let mut tx = ShmSender::open(&spec).unwrap();
        assert!(!tx.created_segment());
        tx.send(b"hello").unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(rx.try_recv(&mut buf).unwrap(), 5);
        drop(rx);
        assert!(!exists(&guard.0));
        assert!(matches!(tx.try_send(b"x"), Err(Error::Disconnected)));
    }

    #[test]
    fn message_size_above_the_rings_maximum_is_refused_by_name() {
        let max = Geometry::max_message_for(4096);
        let (spec, guard) = unique(&format!("?capacity=4KiB&message_size={}", max + 1));
        // With the capacity named, no ring can ever take it: the string is at fault.
        match ShmReceiver::open(&spec) {
            Err(Error::InvalidSpec { spec, reason }) => {
                assert_eq!(spec, format!("message_size={}", max + 1));
                assert!(reason.contains(&format!("at most {max} bytes")), "{reason}");
            }
            other => panic!("expected InvalidSpec, got {other:?}"),
        }
        assert!(!exists(&guard.0));
        // Without a capacity, the default one is the bound when creating.
        let over = Geometry::max_message_for(DEFAULT_CAPACITY) + 1;
        let (spec, guard) = unique(&format!("?message_size={over}"));
        assert!(matches!(
            ShmSender::open(&format!("{spec}&create=always").parse().unwrap()),
            Err(Error::LimitExceeded { what, .. }) if what.contains("set capacity=")
        ));
        assert!(!exists(&guard.0));
        let (spec, _guard) = unique(&format!("?capacity=4KiB&message_size={max}"));
        let rx = ShmReceiver::open(&spec).unwrap();
        assert_eq!(rx.max_message_size(), max);
    }

    #[test]
    fn capacity_is_rounded_and_huge_is_refused() {
        let (spec, _guard) = unique("?capacity=1000");
        let rx = ShmReceiver::open(&spec).unwrap();
        assert_eq!(rx.capacity(), 1024);
        // Asking for the same rounded capacity matches.
        let tx = ShmSender::open(&spec).unwrap();
        assert_eq!(tx.capacity(), 1024);
        let (spec, guard) = unique("?capacity=4611686018427387904");
        assert!(matches!(
            ShmReceiver::open(&spec),
            Err(Error::InvalidSpec { spec, .. }) if spec.starts_with("capacity=")
        ));
        assert!(!exists(&guard.0));
    }

    #[test]
    fn create_modes() {
        let (spec, _guard) = unique("?create=never");
        assert!(matches!(
            ShmReceiver::open(&spec),
            Err(Error::NotFound { .. })
        ));
        let (spec, guard) = unique("");
        let rx = ShmReceiver::open(&spec).unwrap();
        let always: TransportSpec = format!("{spec}?create=always").parse().unwrap();
        assert!(matches!(
            ShmSender::open(&always),
            Err(Error::AlreadyExists { .. })
        ));
        drop(rx);
        assert!(!exists(&guard.0));
        // A sender may create; it leaves the segment for the receiver, which leaves it too.
        let tx = ShmSender::open(&format!("{spec}?create=if_missing").parse().unwrap()).unwrap();
        assert!(tx.created_segment());
        drop(tx);
        assert!(exists(&guard.0));
        let rx = ShmReceiver::open(&spec).unwrap();
        assert!(!rx.owns_segment());
        drop(rx);
        assert!(exists(&guard.0));
    }

    #[test]
    fn sender_waits_for_the_name_until_open_timeout() {
        let (spec, _guard) = unique("?open_timeout=150ms");
        let start = Instant::now();
        assert!(matches!(
            ShmSender::open(&spec),
            Err(Error::NotFound { .. })
        ));
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(150), "{waited:?}");
        assert!(waited < Duration::from_secs(2), "{waited:?}");
    }

    #[test]
    fn mismatched_options_are_incompatible_and_explained() {
        let (spec, _guard) = unique("?capacity=8KiB&message_size=1KiB");
        let _rx = ShmReceiver::open(&spec).unwrap();
        for (query, named) in [
            ("capacity=16KiB", "capacity 16384"),
            ("message_size=2KiB", "message_size 2048"),
            ("producers=multi", "producers multi"),
        ] {
            let other: TransportSpec = format!("posix-shm:{}?{query}", _guard.0).parse().unwrap();
            match ShmSender::open(&other) {
                Err(Error::Incompatible { reason, .. }) => {
                    assert!(reason.contains(named), "{reason}");
                    assert!(reason.contains("capacity 8192"), "{reason}");
                }
                other => panic!("{query}: expected Incompatible, got {other:?}"),
            }
        }
        // Unnamed options accept what is there.
        let tx = ShmSender::open(&format!("posix-shm:{}", _guard.0).parse().unwrap()).unwrap();
        assert_eq!(tx.max_message_size(), 1024);
    }
}
