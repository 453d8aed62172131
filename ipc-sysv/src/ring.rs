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
use std::thread;
use std::time::{Duration, Instant};

use ipc_core::{
    Address, Adoption, Create, Error, Owner, Producers, Receiver, Result, Sender, Transport,
    TransportSpec, Wait,
};
use ipc_sync::ring::request::RingRequest;
use ipc_sync::ring::{self, Loan, Record, RingConfig, RingReceiver, RingSender, RingState};
use ipc_sync::{Layout, LayoutKind, Shared};

use crate::Key;
use crate::shm::{self, Access, Expect, SysvSegment};

/// Bytes of records when the string gives no `capacity`.
pub const DEFAULT_CAPACITY: u64 = ipc_sync::ring::request::DEFAULT_CAPACITY;
/// Permissions of a segment we create when the string gives no `mode`.
pub const DEFAULT_MODE: u32 = shm::DEFAULT_MODE;
/// How long a sender waits for the segment to appear when the string gives no `open_timeout`.
pub const DEFAULT_OPEN_TIMEOUT: Duration = Duration::from_secs(10);
/// The least time a creator is given to initialise a segment another end found; past it, the
/// segment is taken for a dead creator's leftover (or another program's segment).
pub const INIT_TIMEOUT: Duration = Duration::from_secs(1);
/// Largest `capacity`: half the address space Rust can map, so that sizes never overflow.
pub const MAX_CAPACITY: u64 = ipc_sync::ring::request::MAX_CAPACITY;

/// Longest sleep while polling for a key to appear: Linux has no notification for it.
const MAX_BACKOFF: Duration = Duration::from_millis(10);

/// What a transport string asks of a ring.
#[derive(Debug)]
struct Request {
    key: Key,
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
    owner: Option<Owner<SysvSegment>>,
}

impl Request {
    fn from_spec(spec: &TransportSpec, default_create: Create) -> Result<Request> {
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
        let key = Key::from_address(&spec.address)?;
        let o = &spec.options;
        let ring = RingRequest::from_options(o, format!("sysv-shm:{key}"))?;
        Ok(Request {
            key,
            mode: o.mode.unwrap_or(DEFAULT_MODE),
            adoption: Adoption::from_options(o, DEFAULT_MODE)?,
            create: o.create.unwrap_or(default_create),
            ring,
        })
    }

    fn object(&self) -> String {
        format!("sysv-shm:{}", self.key)
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
        let owner = SysvSegment::create(&self.key, config.segment_size(), self.mode)?;
        let shared = Shared::new(Arc::new(owner.attach(Access::ReadWrite)?));
        ring::init(&shared, config)?;
        let state = ring::inspect(&shared)?;
        Ok(Opened {
            shared,
            state,
            owner: Some(owner),
        })
    }

    /// Opens an existing segment and checks it (owner, mode, ring layout, and the options the
    /// string names), waiting up to `name_wait` for the key and for a creator still at work.
    fn open_existing(&self, name_wait: Wait) -> Result<Opened> {
        let mut pause = Duration::from_micros(250);
        let expect = Expect::size(1).adopt(&self.adoption);
        let seg = loop {
            match SysvSegment::open(&self.key, &expect) {
                Ok(seg) => break seg,
                // A missing ftok path is as missing as a key: wait for it too.
                Err(Error::NotFound { .. }) if !name_wait.expired() => {
                    let left = name_wait.remaining().unwrap_or(MAX_BACKOFF);
                    thread::sleep(left.min(pause));
                    pause = (pause * 2).min(MAX_BACKOFF);
                }
                Err(Error::NotFound { .. }) => {
                    return Err(Error::NotFound {
                        object: self.object(),
                    });
                }
                Err(e) => return Err(e),
            }
        };
        let ready_by = ready_deadline(name_wait);
        let shared = Shared::new(Arc::new(seg.attach(Access::ReadWrite)?));
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

fn ready_deadline(name_wait: Wait) -> Instant {
    let left = name_wait.remaining().unwrap_or(INIT_TIMEOUT);
    Instant::now() + left.max(INIT_TIMEOUT)
}

/// The sending end of a `sysv-shm` ring.
#[derive(Debug)]
pub struct SysvShmSender {
    ring: RingSender,
    key: Key,
    state: RingState,
    created: bool,
}

impl SysvShmSender {
    /// Opens the ring `spec` names for sending. By default (`create=never`) waits up to
    /// `open_timeout` (default [`DEFAULT_OPEN_TIMEOUT`]) for the segment to appear; with
    /// `create=if_missing` or `always` creates it if missing. A sender never removes the
    /// segment, even one it created.
    ///
    /// Errors: [`Error::NotFound`] when the wait ends without the segment;
    /// [`Error::Incompatible`] for a segment that is not ours or not an initialised ring of
    /// ours, or whose capacity, message size or producers differ from those the string names;
    /// [`Error::LimitExceeded`] when the ring already has its senders, for a `message_size`
    /// the default capacity cannot take, or a size the kernel refuses (`kernel.shmmax`);
    /// [`Error::InvalidSpec`] for `private`, a `capacity` above [`MAX_CAPACITY`] or a
    /// `message_size` the named capacity cannot take.
    pub fn open(spec: &TransportSpec) -> Result<SysvShmSender> {
        let request = Request::from_spec(spec, Create::Never)?;
        let name_wait = Wait::timeout(spec.options.open_timeout.unwrap_or(DEFAULT_OPEN_TIMEOUT));
        let opened = request.open(name_wait)?;
        let ring = RingSender::attach(opened.shared, &request.ring.endpoint_options())?;
        let created = opened.owner.map(Owner::release).is_some();
        Ok(SysvShmSender {
            ring,
            key: request.key,
            state: opened.state,
            created,
        })
    }

    /// Reserves `len` bytes inside the segment, waiting for room as long as it takes; see
    /// [`RingSender::loan_with`].
    pub fn loan(&mut self, len: usize) -> Result<Loan<'_>> {
        self.ring.loan(len)
    }

    /// [`SysvShmSender::loan`], waiting for room as `wait` says.
    pub fn loan_with(&mut self, len: usize, wait: Wait) -> Result<Loan<'_>> {
        self.ring.loan_with(len, wait)
    }

    /// The ring endpoint itself.
    pub fn ring(&self) -> &RingSender {
        &self.ring
    }

    /// The ring endpoint itself, mutably.
    pub fn ring_mut(&mut self) -> &mut RingSender {
        &mut self.ring
    }

    /// The segment's key.
    pub fn key(&self) -> &Key {
        &self.key
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

impl Sender for SysvShmSender {
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

/// The receiving end of a `sysv-shm` ring.
#[derive(Debug)]
pub struct SysvShmReceiver {
    // Declared (so dropped) before `owner`: the receiver leaves the ring before the segment
    // is removed.
    ring: RingReceiver,
    owner: Option<Owner<SysvSegment>>,
    key: Key,
    state: RingState,
}

impl SysvShmReceiver {
    /// Opens the ring `spec` names for receiving, creating and initialising the segment
    /// unless it exists or the string says `create=never`. If this call created it, dropping
    /// the receiver removes it (`IPC_RMID`).
    ///
    /// Errors: as [`SysvShmSender::open`], and [`Error::LimitExceeded`] when a live receiver is
    /// already attached.
    pub fn open(spec: &TransportSpec) -> Result<SysvShmReceiver> {
        let request = Request::from_spec(spec, Create::IfMissing)?;
        let name_wait = Wait::timeout(spec.options.open_timeout.unwrap_or(Duration::ZERO));
        let opened = request.open(name_wait)?;
        let ring = RingReceiver::attach(opened.shared, &request.ring.endpoint_options())?;
        Ok(SysvShmReceiver {
            ring,
            owner: opened.owner,
            key: request.key,
            state: opened.state,
        })
    }

    /// The next message, read in place inside the segment, waiting as long as it takes.
    pub fn recv_in_place(&mut self) -> Result<Record<'_>> {
        self.ring.recv_in_place()
    }

    /// [`SysvShmReceiver::recv_in_place`], waiting as `wait` says.
    pub fn recv_in_place_with(&mut self, wait: Wait) -> Result<Record<'_>> {
        self.ring.recv_in_place_with(wait)
    }

    /// Keeps the segment after this receiver is dropped, even if it created it.
    pub fn release_segment(&mut self) {
        if let Some(owner) = self.owner.take() {
            owner.release();
        }
    }

    /// Whether dropping this receiver removes the segment.
    pub fn owns_segment(&self) -> bool {
        self.owner.is_some()
    }

    /// The segment's id (`shmid`), if this receiver created it.
    pub fn segment_id(&self) -> Option<i32> {
        self.owner.as_ref().map(|o| o.id())
    }

    /// The ring endpoint itself.
    pub fn ring(&self) -> &RingReceiver {
        &self.ring
    }

    /// The ring endpoint itself, mutably.
    pub fn ring_mut(&mut self) -> &mut RingReceiver {
        &mut self.ring
    }

    /// The segment's key.
    pub fn key(&self) -> &Key {
        &self.key
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

impl Receiver for SysvShmReceiver {
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
