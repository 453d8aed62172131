//! A ring in a named segment as a transport, whatever kind of segment it is: the part of the
//! `posix-shm:`, `sysv-shm:` and `file-shm:` transports (and of any later kind) that does not
//! depend on how a segment is named, created, opened or removed.
//!
//! A backend describes its kind of segment with a [`SegmentKind`]; [`ShmRingSender`] and
//! [`ShmRingReceiver`] over it hold everything else once:
//!
//! - **create or open** as the string's `create` says ([`RingRequest::create_or_open`]),
//!   waiting up to `open_timeout` for the name to appear and (at least [`INIT_TIMEOUT`]) for
//!   a creator found at work to finish;
//! - **the shape check**: an opened ring must have the `capacity`, `message_size` and
//!   `producers` the string names ([`RingRequest::check_matches`]); the kind's own open checks
//!   owner and mode by the string's [`Adoption`];
//! - **who removes**: the receiver that created the segment removes it when dropped (unless
//!   released); a sender never does, not even one it created, so that its messages wait for a
//!   receiver;
//! - the [`Sender`] / [`Receiver`] / [`Readiness`](ipc_core::Readiness) forwarding, the
//!   zero-copy API ([`ShmRingSender::loan`], [`ShmRingReceiver::recv_in_place`]) and what the
//!   ring found is (capacity, producers).

use std::fmt;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ipc_core::{
    Adoption, Create, Error, Owner, Producers, Receiver, Removable, Result, Segment, Sender,
    TransportSpec, Wait,
};

use super::request::RingRequest;
use super::{Loan, Record, RingConfig, RingReceiver, RingSender, RingState};
use crate::layout::{Layout, LayoutKind};
use crate::sys::mem::Shared;

/// Permissions of a segment created when the string gives no `mode`, and the widest an opened
/// one may have unless the string says otherwise: the owner's alone.
pub const DEFAULT_MODE: u32 = ipc_core::DEFAULT_SEGMENT_MODE;

/// How long a sender waits for the segment to appear when the string gives no `open_timeout`.
pub const DEFAULT_OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// The least time a creator is given to size and initialise a segment another end found
/// half-made; past it, the segment is taken for a dead creator's leftover (or another
/// program's segment).
pub const INIT_TIMEOUT: Duration = Duration::from_secs(1);

/// Longest sleep while polling for a name or a creator: Linux has no notification for either.
const MAX_BACKOFF: Duration = Duration::from_millis(10);

/// A kind of named segment that can hold a ring: how its names are read from a transport
/// string, and how one is created exclusively, opened and checked, mapped, and described.
/// Removal is the handle's [`Removable`], done by the [`Owner`] that creation returns.
pub trait SegmentKind {
    /// What names a segment (`/name`, a System V key).
    type Name: Clone + fmt::Debug + fmt::Display + Send;
    /// An open segment; removing it removes the name it was created under.
    type Handle: Removable + fmt::Debug + Send;

    /// The segment a transport string names; [`Error::InvalidSpec`] for a string of another
    /// transport or an address this kind cannot be found by.
    fn name_of(spec: &TransportSpec) -> Result<Self::Name>;

    /// The segment as errors name it (`posix-shm:/name`).
    fn describe(name: &Self::Name) -> String;

    /// How a user removes a leftover segment by hand, for errors (`rm /dev/shm/name`).
    fn removal_hint(name: &Self::Name) -> String;

    /// Creates the segment exclusively, `size` bytes, with exactly `mode`
    /// ([`Error::AlreadyExists`] if the name is taken). The owner removes it when dropped.
    fn create(name: &Self::Name, size: usize, mode: u32) -> Result<Owner<Self::Handle>>;

    /// Opens an existing segment that `adoption` accepts (owner, group, widest mode). `None`
    /// for one found but not yet sized by its creator; [`Error::NotFound`] if there is none.
    fn open_existing(name: &Self::Name, adoption: &Adoption) -> Result<Option<Self::Handle>>;

    /// Maps the whole segment read-write; the mapping outlives the handle.
    fn map(handle: &Self::Handle) -> Result<Arc<dyn Segment>>;
}

/// What a transport string asks of a ring in a segment of kind `K`.
struct Request<K: SegmentKind> {
    name: K::Name,
    mode: u32,
    /// Which existing segment we accept (owner, group, widest mode).
    adoption: Adoption,
    create: Create,
    ring: RingRequest,
}

/// A segment holding an initialised ring, ready for an endpoint to attach.
struct Opened<K: SegmentKind> {
    shared: Shared,
    state: RingState,
    /// Present if this call created the segment: removes it when dropped.
    owner: Option<Owner<K::Handle>>,
}

impl<K: SegmentKind> Request<K> {
    fn from_spec(spec: &TransportSpec, default_create: Create) -> Result<Request<K>> {
        let name = K::name_of(spec)?;
        let o = &spec.options;
        let ring = RingRequest::from_options(o, K::describe(&name))?;
        Ok(Request {
            name,
            mode: o.mode.unwrap_or(DEFAULT_MODE),
            adoption: Adoption::from_options(o, DEFAULT_MODE)?,
            create: o.create.unwrap_or(default_create),
            ring,
        })
    }

    /// The segment is missing, named as the transport string names it (not as, say, an `ftok`
    /// path it resolves through).
    fn not_found(&self) -> Error {
        Error::NotFound {
            object: K::describe(&self.name),
        }
    }

    /// Creates or opens the segment as `create` says; `create=never` waits up to `name_wait`
    /// for the name to appear.
    fn open(&self, name_wait: Wait) -> Result<Opened<K>> {
        self.ring.create_or_open(
            self.create,
            name_wait,
            |config| self.create_new(config),
            |wait| self.open_existing(wait),
        )
    }

    /// Creates the segment exclusively, sized for `config`, and initialises the ring. A failure
    /// after creating removes the segment again (the owner is dropped).
    fn create_new(&self, config: &RingConfig) -> Result<Opened<K>> {
        let owner = K::create(&self.name, config.segment_size(), self.mode)?;
        let shared = Shared::new(K::map(&owner)?);
        super::init(&shared, config)?;
        let state = super::inspect(&shared)?;
        Ok(Opened {
            shared,
            state,
            owner: Some(owner),
        })
    }

    /// Opens an existing segment, checks it (owner, mode, ring layout, and the options the
    /// string names), waiting up to `name_wait` for the name and for a creator still at work.
    fn open_existing(&self, name_wait: Wait) -> Result<Opened<K>> {
        let mut pause = Duration::from_micros(250);
        // Set when the name is first found: from then on the creator has at least
        // INIT_TIMEOUT (or what is left of `name_wait`, if longer) to finish.
        let mut ready_by: Option<Instant> = None;
        let handle = loop {
            let (retry_until, empty) = match K::open_existing(&self.name, &self.adoption) {
                Ok(Some(handle)) => break handle,
                // A creator between making the name and sizing the segment.
                Ok(None) => (
                    *ready_by.get_or_insert_with(|| ready_deadline(name_wait)),
                    true,
                ),
                // A missing ftok path is as missing as a name: wait for it too.
                Err(Error::NotFound { .. }) if !name_wait.expired() => (
                    name_wait
                        .remaining()
                        .map_or(Instant::now() + MAX_BACKOFF, |left| Instant::now() + left),
                    false,
                ),
                Err(Error::NotFound { .. }) => return Err(self.not_found()),
                Err(e) => return Err(e),
            };
            let left = retry_until.saturating_duration_since(Instant::now());
            if left.is_zero() && !empty {
                return Err(self.not_found());
            }
            if left.is_zero() {
                return Err(Error::Incompatible {
                    object: K::describe(&self.name),
                    reason: format!(
                        "it is still empty after waiting for its creator to size it (a creator \
                         that died, or another program's object); remove it with {}",
                        K::removal_hint(&self.name)
                    ),
                });
            }
            thread::sleep(left.min(pause));
            pause = (pause * 2).min(MAX_BACKOFF);
        };
        let ready_by = ready_by.unwrap_or_else(|| ready_deadline(name_wait));
        let shared = Shared::new(K::map(&handle)?);
        // The mapping keeps the segment; the handle is no longer needed.
        drop(handle);
        Layout::attach(
            &shared,
            LayoutKind::Ring,
            ready_by.saturating_duration_since(Instant::now()),
        )?;
        let state = super::inspect(&shared)?;
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

/// The sending end of a ring in a segment of kind `K`.
pub struct ShmRingSender<K: SegmentKind> {
    ring: RingSender,
    name: K::Name,
    state: RingState,
    created: bool,
}

impl<K: SegmentKind> ShmRingSender<K> {
    /// Opens the ring `spec` names for sending. By default (`create=never`) waits up to
    /// `open_timeout` (default [`DEFAULT_OPEN_TIMEOUT`]) for the segment to appear; with
    /// `create=if_missing` or `always` creates it if missing. A sender never removes the
    /// segment, even one it created.
    ///
    /// Errors: [`Error::NotFound`] when the wait ends without the segment;
    /// [`Error::Incompatible`] for a segment that is not ours or not an initialised ring of
    /// ours, or whose capacity, message size or producers differ from those the string names;
    /// [`Error::LimitExceeded`] when a live sender already holds a single-producer ring (or
    /// [`MAX_PRODUCERS`](super::MAX_PRODUCERS) a multi-producer one), for a `message_size`
    /// the default capacity cannot take, or a segment the system has no room for;
    /// [`Error::InvalidSpec`] for a `capacity` above
    /// [`MAX_CAPACITY`](super::request::MAX_CAPACITY) or a `message_size` the named capacity
    /// cannot take.
    pub fn open(spec: &TransportSpec) -> Result<ShmRingSender<K>> {
        let request = Request::<K>::from_spec(spec, Create::Never)?;
        let name_wait = Wait::timeout(spec.options.open_timeout.unwrap_or(DEFAULT_OPEN_TIMEOUT));
        let opened = request.open(name_wait)?;
        // Attached while still owning a segment we created, so that a failure removes it.
        let ring = RingSender::attach(opened.shared, &request.ring.endpoint_options())?;
        // Our messages must outlive us until a receiver comes: leave the segment in place.
        let created = opened.owner.map(Owner::release).is_some();
        Ok(ShmRingSender {
            ring,
            name: request.name,
            state: opened.state,
            created,
        })
    }

    /// Reserves `len` bytes inside the segment, waiting for room as long as it takes. Write
    /// the message into the [`Loan`] and [`commit`](Loan::commit) it; see
    /// [`RingSender::loan_with`].
    #[inline(always)]
    pub fn loan(&mut self, len: usize) -> Result<Loan<'_>> {
        self.ring.loan(len)
    }

    /// [`ShmRingSender::loan`], waiting for room as `wait` says (`Full` / `Timeout` when it
    /// ends).
    #[inline(always)]
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
    pub fn name(&self) -> &K::Name {
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

// By hand: a derive would ask `K` itself, a mere marker type, to be `Debug`.
impl<K: SegmentKind> fmt::Debug for ShmRingSender<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShmRingSender")
            .field("ring", &self.ring)
            .field("name", &self.name)
            .field("state", &self.state)
            .field("created", &self.created)
            .finish()
    }
}

impl<K: SegmentKind> Sender for ShmRingSender<K> {
    fn max_message_size(&self) -> usize {
        Sender::max_message_size(&self.ring)
    }

    #[inline]
    fn send_with(&mut self, msg: &[u8], wait: Wait) -> Result<()> {
        self.ring.send_with(msg, wait)
    }

    fn readiness(&mut self) -> Option<&mut dyn ipc_core::Readiness> {
        Some(&mut self.ring)
    }
}

/// The receiving end of a ring in a segment of kind `K`.
pub struct ShmRingReceiver<K: SegmentKind> {
    // Declared (so dropped) before `owner`: the receiver leaves the ring, telling blocked
    // senders, before the segment's name goes.
    ring: RingReceiver,
    owner: Option<Owner<K::Handle>>,
    name: K::Name,
    state: RingState,
}

impl<K: SegmentKind> ShmRingReceiver<K> {
    /// Opens the ring `spec` names for receiving, creating and initialising the segment
    /// unless it exists or the string says `create=never`. If this call created it, dropping
    /// the receiver removes it.
    ///
    /// Errors: as [`ShmRingSender::open`], and [`Error::LimitExceeded`] when a live receiver
    /// is already attached. With `create=never`, a missing segment is [`Error::NotFound`] at
    /// once, or after `open_timeout` if the string gives one.
    pub fn open(spec: &TransportSpec) -> Result<ShmRingReceiver<K>> {
        let request = Request::<K>::from_spec(spec, Create::IfMissing)?;
        let name_wait = Wait::timeout(spec.options.open_timeout.unwrap_or(Duration::ZERO));
        let opened = request.open(name_wait)?;
        let ring = RingReceiver::attach(opened.shared, &request.ring.endpoint_options())?;
        Ok(ShmRingReceiver {
            ring,
            owner: opened.owner,
            name: request.name,
            state: opened.state,
        })
    }

    /// The next message, read in place inside the segment, waiting as long as it takes; its
    /// space goes back to the senders when the [`Record`] is dropped.
    #[inline(always)]
    pub fn recv_in_place(&mut self) -> Result<Record<'_>> {
        self.ring.recv_in_place()
    }

    /// [`ShmRingReceiver::recv_in_place`], waiting as `wait` says (`Empty` / `Timeout` when
    /// it ends).
    #[inline(always)]
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
    /// [`release`](ShmRingReceiver::release_segment) it).
    pub fn owns_segment(&self) -> bool {
        self.owner.is_some()
    }

    /// The segment this receiver created and will remove, if it owns one.
    pub fn owned_segment(&self) -> Option<&K::Handle> {
        self.owner.as_deref()
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
    pub fn name(&self) -> &K::Name {
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

impl<K: SegmentKind> fmt::Debug for ShmRingReceiver<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShmRingReceiver")
            .field("ring", &self.ring)
            .field("owner", &self.owner)
            .field("name", &self.name)
            .field("state", &self.state)
            .finish()
    }
}

impl<K: SegmentKind> Receiver for ShmRingReceiver<K> {
    fn max_message_size(&self) -> usize {
        Receiver::max_message_size(&self.ring)
    }

    #[inline]
    fn recv_with(&mut self, buf: &mut [u8], wait: Wait) -> Result<usize> {
        self.ring.recv_with(buf, wait)
    }

    fn readiness(&mut self) -> Option<&mut dyn ipc_core::Readiness> {
        Some(&mut self.ring)
    }
}
