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
//! | `producers`    | `single`         | `multi` admits up to [`ring::MAX_PRODUCERS`] senders |
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
//! ever satisfy it), as is a `capacity` above [`MAX_CAPACITY`](ipc_sync::ring::request::MAX_CAPACITY);
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
//! # References
//!
//! `shm_overview(7)`, `shm_open(3)`, `futex(2)`; the ring's protocol is in
//! [`ipc_sync::ring::core`].

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ipc_core::{
    Address, Adoption, Create, Error, Owner, Producers, Receiver, Result, Sender, Transport,
    TransportSpec, Wait,
};
use ipc_sync::ring::request::RingRequest;
use ipc_sync::ring::{self, Loan, Record, RingConfig, RingReceiver, RingSender, RingState};
use ipc_sync::{Layout, LayoutKind, Shared};

use crate::PosixName;
use crate::shm::{self, SharedMemory};

/// Bytes of records when the string gives no `capacity`.
pub const DEFAULT_CAPACITY: u64 = ipc_sync::ring::request::DEFAULT_CAPACITY;
/// Permissions of a segment we create when the string gives no `mode`.
pub const DEFAULT_MODE: u32 = shm::DEFAULT_MODE;
/// How long a sender waits for the segment to appear when the string gives no `open_timeout`.
pub const DEFAULT_OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// The least time a creator is given to size and initialise a segment another end found
/// half-made; past it, the segment is taken for a dead creator's leftover.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(1);
/// Largest `capacity`: half the address space Rust can map, so that sizes never overflow.
pub const MAX_CAPACITY: u64 = ipc_sync::ring::request::MAX_CAPACITY;

/// Longest sleep while polling for a name or a creator: Linux has no notification for either.
const MAX_BACKOFF: Duration = Duration::from_millis(10);

/// What a transport string asks of a ring.
#[derive(Debug)]
struct Request {
    name: PosixName,
    mode: u32,
    /// Which existing segment we accept (owner, group, widest mode).
    adoption: Adoption,
    create: Create,
    ring: RingRequest,
}

/// A segment holding an initialised ring, ready for an endpoint to attach.
struct Opened {
    shared: Shared,
    state: RingState,
    /// Present if this call created the segment: removes it when dropped.
    owner: Option<Owner<SharedMemory>>,
}

impl Request {
    fn from_spec(spec: &TransportSpec, default_create: Create) -> Result<Request> {
        let (Transport::PosixShm, Address::Name(name)) = (spec.transport, &spec.address) else {
            return Err(Error::invalid_spec(
                spec.to_string(),
                "not a posix-shm transport string (`posix-shm:/name`)",
            ));
        };
        let name = PosixName::new(name)?;
        let o = &spec.options;
        let ring = RingRequest::from_options(o, format!("posix-shm:{name}"))?;
        Ok(Request {
            name,
            mode: o.mode.unwrap_or(DEFAULT_MODE),
            adoption: Adoption::from_options(o, DEFAULT_MODE)?,
            create: o.create.unwrap_or(default_create),
            ring,
        })
    }

    fn object(&self) -> String {
        format!("posix-shm:{}", self.name)
    }

    /// Creates or opens the segment as `create` says; `create=never` waits up to `name_wait`
    /// for the name to appear.
    fn open(&self, name_wait: Wait) -> Result<Opened> {
        self.ring.create_or_open(
            self.create,
            name_wait,
            |config| self.create_new(config),
            |wait| self.open_existing(wait),
        )
    }

    /// Creates the segment exclusively, sized for `config`, and initialises the ring. A failure
    /// after creating removes the segment again (the owner is dropped).
    fn create_new(&self, config: &RingConfig) -> Result<Opened> {
        let owner = SharedMemory::create(&self.name, config.segment_size(), self.mode)?;
        let shared = Shared::new(Arc::new(owner.map()?));
        ring::init(&shared, config)?;
        let state = ring::inspect(&shared)?;
        Ok(Opened {
            shared,
            state,
            owner: Some(owner),
        })
    }

    /// Opens an existing segment, checks it (owner, mode, ring layout, and the options the
    /// string names), waiting up to `name_wait` for the name and for a creator still at work.
    fn open_existing(&self, name_wait: Wait) -> Result<Opened> {
        let mut pause = Duration::from_micros(250);
        // Set when the name is first found: from then on the creator has at least
        // INIT_TIMEOUT (or what is left of `name_wait`, if longer) to finish.
        let mut ready_by: Option<Instant> = None;
        let shm = loop {
            let (retry_until, empty) = match SharedMemory::open_any_size(&self.name, &self.adoption)
            {
                Ok(shm) if shm.size() > 0 => break shm,
                // A creator between its `shm_open(O_EXCL)` and `fallocate`.
                Ok(_) => (
                    *ready_by.get_or_insert_with(|| ready_deadline(name_wait)),
                    true,
                ),
                Err(Error::NotFound { .. }) if !name_wait.expired() => (
                    name_wait
                        .remaining()
                        .map_or(Instant::now() + MAX_BACKOFF, |left| Instant::now() + left),
                    false,
                ),
                Err(e) => return Err(e),
            };
            let left = retry_until.saturating_duration_since(Instant::now());
            if left.is_zero() && !empty {
                return Err(Error::NotFound {
                    object: self.object(),
                });
            }
            if left.is_zero() {
                return Err(Error::Incompatible {
                    object: self.object(),
                    reason: format!(
                        "it is still empty after waiting for its creator to size it (a creator \
                         that died, or another program's object); remove it with shm_unlink or \
                         rm {}",
                        shm::shm_path(&self.name)
                    ),
                });
            }
            thread::sleep(left.min(pause));
            pause = (pause * 2).min(MAX_BACKOFF);
        };
        let ready_by = ready_by.unwrap_or_else(|| ready_deadline(name_wait));
        let shared = Shared::new(Arc::new(shm.map()?));
        // The mapping keeps the segment; the descriptor is no longer needed.
        drop(shm);
        Layout::attach(
            &shared,
            LayoutKind::Ring,
            ready_by.saturating_duration_since(Instant::now()),
        )?;
        let state = ring::inspect(&shared)?;
        self.ring.check_matches(&state)?;
        Ok(Opened {
            shared,
            state,
            owner: None,
        })
    }
}

/// How long a creator found at work may take: at least [`INIT_TIMEOUT`] from now, more if the
/// caller was prepared to wait longer for the name anyway.
fn ready_deadline(name_wait: Wait) -> Instant {
    let left = name_wait.remaining().unwrap_or(INIT_TIMEOUT);
    Instant::now() + left.max(INIT_TIMEOUT)
}

/// The sending end of a `posix-shm` ring.
#[derive(Debug)]
pub struct ShmSender {
    ring: RingSender,
    name: PosixName,
    state: RingState,
    created: bool,
}

impl ShmSender {
    /// Opens the ring `spec` names for sending. By default (`create=never`) waits up to
    /// `open_timeout` (default [`DEFAULT_OPEN_TIMEOUT`]) for the segment to appear; with
    /// `create=if_missing` or `always` creates it if missing. A sender never removes the
    /// segment, even one it created.
    ///
    /// Errors: [`Error::NotFound`] when the wait ends without the segment;
    /// [`Error::Incompatible`] for a segment that is not an initialised ring of ours, or whose
    /// capacity, message size or producers differ from those the string names;
    /// [`Error::LimitExceeded`] when a live sender already holds a single-producer ring (or
    /// [`ring::MAX_PRODUCERS`] a multi-producer one), for a `message_size` the capacity cannot
    /// take, or a segment `/dev/shm` has no room for.
    pub fn open(spec: &TransportSpec) -> Result<ShmSender> {
        let request = Request::from_spec(spec, Create::Never)?;
        let name_wait = Wait::timeout(spec.options.open_timeout.unwrap_or(DEFAULT_OPEN_TIMEOUT));
        let opened = request.open(name_wait)?;
        // Attached while still owning a segment we created, so that a failure removes it.
        let ring = RingSender::attach(opened.shared, &request.ring.endpoint_options())?;
        // Our messages must outlive us until a receiver comes: leave the segment in place.
        let created = opened.owner.map(Owner::release).is_some();
        Ok(ShmSender {
            ring,
            name: request.name,
            state: opened.state,
            created,
        })
    }

    /// Reserves `len` bytes inside the segment, waiting for room as long as it takes. Write
    /// the message into the [`Loan`] and [`commit`](Loan::commit) it; see
    /// [`RingSender::loan_with`].
    pub fn loan(&mut self, len: usize) -> Result<Loan<'_>> {
        self.ring.loan(len)
    }

    /// [`ShmSender::loan`], waiting for room as `wait` says (`Full` / `Timeout` when it ends).
    pub fn loan_with(&mut self, len: usize, wait: Wait) -> Result<Loan<'_>> {
        self.ring.loan_with(len, wait)
    }

    /// The ring endpoint itself.
    pub fn ring(&self) -> &RingSender {
        &self.ring
    }

    /// The ring endpoint itself, mutably (for its whole API).
    pub fn ring_mut(&mut self) -> &mut RingSender {
        &mut self.ring
    }

    /// The segment's name.
    pub fn name(&self) -> &PosixName {
        &self.name
    }

    /// Bytes of records in the ring.
    pub fn capacity(&self) -> u64 {
        self.state.geometry.capacity
    }

    /// One producer or many, as the ring's creator chose.
    pub fn producers(&self) -> Producers {
        self.state.producers_mode
    }

    /// Whether this sender created the segment (which it leaves in place all the same).
    pub fn created_segment(&self) -> bool {
        self.created
    }
}

impl Sender for ShmSender {
    fn max_message_size(&self) -> usize {
        self.ring.max_message()
    }

    #[inline]
    fn send_with(&mut self, msg: &[u8], wait: Wait) -> Result<()> {
        self.ring.send_with(msg, wait)
    }

    fn readiness(&mut self) -> Option<&mut dyn ipc_core::Readiness> {
        Some(&mut self.ring)
    }
}

/// The receiving end of a `posix-shm` ring.
#[derive(Debug)]
pub struct ShmReceiver {
    // Declared (so dropped) before `owner`: the receiver leaves the ring, telling blocked
    // senders, before the segment's name goes.
    ring: RingReceiver,
    owner: Option<Owner<SharedMemory>>,
    name: PosixName,
    state: RingState,
}

impl ShmReceiver {
    /// Opens the ring `spec` names for receiving, creating and initialising the segment
    /// unless it exists or the string says `create=never`. If this call created it, dropping
    /// the receiver removes it.
    ///
    /// Errors: as [`ShmSender::open`], and [`Error::LimitExceeded`] when a live receiver is
    /// already attached. With `create=never`, a missing segment is [`Error::NotFound`] at once,
    /// or after `open_timeout` if the string gives one.
    pub fn open(spec: &TransportSpec) -> Result<ShmReceiver> {
        let request = Request::from_spec(spec, Create::IfMissing)?;
        let name_wait = Wait::timeout(spec.options.open_timeout.unwrap_or(Duration::ZERO));
        let opened = request.open(name_wait)?;
        let ring = RingReceiver::attach(opened.shared, &request.ring.endpoint_options())?;
        Ok(ShmReceiver {
            ring,
            owner: opened.owner,
            name: request.name,
            state: opened.state,
        })
    }

    /// The next message, read in place inside the segment, waiting as long as it takes; its
    /// space goes back to the senders when the [`Record`] is dropped.
    pub fn recv_in_place(&mut self) -> Result<Record<'_>> {
        self.ring.recv_in_place()
    }

    /// [`ShmReceiver::recv_in_place`], waiting as `wait` says (`Empty` / `Timeout` when it
    /// ends).
    pub fn recv_in_place_with(&mut self, wait: Wait) -> Result<Record<'_>> {
        self.ring.recv_in_place_with(wait)
    }

    /// Keeps the segment after this receiver is dropped, even if it created it.
    pub fn release_segment(&mut self) {
        if let Some(owner) = self.owner.take() {
            owner.release();
        }
    }

    /// Whether dropping this receiver removes the segment (it created it and did not
    /// [`release`](ShmReceiver::release_segment) it).
    pub fn owns_segment(&self) -> bool {
        self.owner.is_some()
    }

    /// The ring endpoint itself.
    pub fn ring(&self) -> &RingReceiver {
        &self.ring
    }

    /// The ring endpoint itself, mutably (for its whole API).
    pub fn ring_mut(&mut self) -> &mut RingReceiver {
        &mut self.ring
    }

    /// The segment's name.
    pub fn name(&self) -> &PosixName {
        &self.name
    }

    /// Bytes of records in the ring.
    pub fn capacity(&self) -> u64 {
        self.state.geometry.capacity
    }

    /// One producer or many, as the ring's creator chose.
    pub fn producers(&self) -> Producers {
        self.state.producers_mode
    }
}

impl Receiver for ShmReceiver {
    fn max_message_size(&self) -> usize {
        self.ring.max_message()
    }

    #[inline]
    fn recv_with(&mut self, buf: &mut [u8], wait: Wait) -> Result<usize> {
        self.ring.recv_with(buf, wait)
    }

    fn readiness(&mut self) -> Option<&mut dyn ipc_core::Readiness> {
        Some(&mut self.ring)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipc_sync::ring::Geometry;
    use std::sync::atomic::{AtomicUsize, Ordering};

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
