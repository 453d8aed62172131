//! The shared-memory channel: a ring of variable-length records in a segment.
//!
//! One consumer ([`RingReceiver`]); one producer ([`Producers::Single`], lock-free) or many
//! ([`Producers::Multi`], serialised by a futex lock word of our own whose holder is a
//! producer slot, so a producer killed while holding it is found dead and its lock taken over,
//! and a peer scribbling on the word gets `Corrupted`, never a crash: see [`lock`]). Records
//! never wrap: a record that does not fit before the end of the ring is preceded by a pad. See
//! [`core`] for the index protocol.
//!
//! - **Zero-copy**: [`RingSender::loan`] returns a writable slot inside the segment and
//!   [`Loan::commit`] publishes it; [`RingReceiver::recv_in_place`] reads a record where it
//!   lies. The [`Sender`](ipc_core::Sender) / [`Receiver`](ipc_core::Receiver) traits copy.
//! - **Waiting** is chosen per endpoint ([`WaitStrategy`]): busy-polling, spinning then parking
//!   (the default), or parking at once. Parking is a futex wait on a word in the segment, and a
//!   sender makes the wake-up system call only when the receiver is actually parked.
//! - **Peers**: endpoints register their process (pid, start time and PID namespace) in the
//!   segment. A receiver whose producers all left or died gets
//!   [`Disconnected`](ipc_core::Error::Disconnected) once the ring is drained; a sender whose
//!   receiver left or died gets it within about 35 ms, full ring or not, also while it waits
//!   for the producers' lock.
//! - **Hostile memory**: every index and length read from the segment is loaded once,
//!   validated, then used; anything inconsistent is [`Corrupted`](ipc_core::Error::Corrupted).
//!
//! ```
//! use std::sync::Arc;
//! use ipc_core::{Receiver, Sender};
//! use ipc_sync::ring::{self, RingConfig, RingReceiver, RingSender, EndpointOptions};
//! use ipc_sync::{HeapSegment, Shared};
//!
//! let config = RingConfig::new(64 * 1024);
//! let shared = Shared::new(Arc::new(HeapSegment::new(config.segment_size(), "demo")));
//! ring::init(&shared, &config)?;
//! let mut rx = RingReceiver::attach(shared.clone(), &EndpointOptions::default())?;
//! let mut tx = RingSender::attach(shared, &EndpointOptions::default())?;
//!
//! tx.send(b"copied")?;
//! let mut loan = tx.loan(6)?;
//! loan.copy_from_slice(b"in shm");
//! loan.commit();
//!
//! let mut buf = [0u8; 64];
//! let n = rx.recv(&mut buf)?;
//! assert_eq!(&buf[..n], b"copied");
//! let record = rx.recv_in_place()?;
//! assert_eq!(&*record, b"in shm");
//! # Ok::<(), ipc_core::Error>(())
//! ```

mod bell;
pub mod core;
pub mod lock;
mod mem;
mod peers;
mod receiver;
pub mod request;
mod sender;
pub mod transport;
mod wait;

use std::sync::atomic::Ordering;
use std::time::Duration;

use ipc_core::{Error, Result};

pub use self::core::Geometry;
pub use ipc_core::{Producers, WaitStrategy};
pub use lock::LockState;
pub use peers::Endpoint;
pub use receiver::{Record, RingReceiver};
pub use sender::{Loan, RingSender};

use crate::layout::{Layout, LayoutBuilder, LayoutKind, RegionKind};
use crate::sys::mem::Shared;

/// Most producers attached to a [`Producers::Multi`] ring at once.
pub const MAX_PRODUCERS: usize = 32;

/// The shape of a ring to create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingConfig {
    /// Bytes of records (rounded up to a multiple of 64).
    ///
    /// For a stream of large messages, more than twice a core's L2 cache and well under the
    /// shared L3 (4 MiB on most current x86 servers): in a ring that fits in L2, each line
    /// crosses between the two cores' private caches twice per message, and 64 KiB messages
    /// stream about 3× slower than through a 4 MiB ring.
    pub capacity: u64,
    /// Largest message; by default a quarter of the capacity.
    pub max_message: usize,
    /// One producer or many.
    pub producers: Producers,
}

impl RingConfig {
    /// A single-producer ring of `capacity` bytes (rounded up to 64), taking messages up to a
    /// quarter of it.
    pub fn new(capacity: u64) -> RingConfig {
        let capacity = capacity.max(64).next_multiple_of(64);
        RingConfig {
            capacity,
            max_message: (capacity / 4) as usize,
            producers: Producers::Single,
        }
    }

    /// Sets the largest message.
    pub fn max_message_size(mut self, max: usize) -> RingConfig {
        self.max_message = max;
        self
    }

    /// Sets the number of producers.
    pub fn producers(mut self, producers: Producers) -> RingConfig {
        self.producers = producers;
        self
    }

    fn geometry(&self) -> Result<Geometry> {
        Geometry {
            capacity: self.capacity,
            max_message: self.max_message,
        }
        .validate()
        .map_err(|reason| Error::LimitExceeded {
            what: reason,
            limit: Geometry::max_message_for(self.capacity) as u64,
        })
    }

    fn layout(&self) -> LayoutBuilder {
        let mut plan = LayoutBuilder::of_kind(LayoutKind::Ring);
        plan.region(RegionKind::RingControl, ctl::SIZE);
        plan.region(RegionKind::RingData, self.capacity as usize);
        plan
    }

    /// Bytes of segment this ring needs (header, control block and records).
    pub fn segment_size(&self) -> usize {
        self.layout().size()
    }
}

/// Offsets in the control region. Each group written by a different party has its own cache
/// line, so a producer's stores never invalidate the line the consumer polls, and vice versa.
/// Every word is ours: counters, flags and slot words, no pointer and no glibc object.
pub(crate) mod ctl {
    pub const CAPACITY: usize = 0;
    pub const MAX_MESSAGE: usize = 8;
    pub const PRODUCERS: usize = 16;
    /// Non-zero if the consumer may park (its strategy is not busy): only then do producers
    /// pay for the fence that makes their wake-up check safe.
    pub const CONSUMER_PARKS: usize = 24;
    /// How many attached producers may park (same reason, the other way).
    pub const PRODUCERS_PARK: usize = 28;
    /// The producers' published position. The producers' lock shares its line: both are
    /// written by the producer holding the lock, so one line moves between producers.
    pub const TAIL: usize = 64;
    /// The producers' lock of a multi-producer ring (see [`super::lock`]).
    pub const LOCK: usize = 72;
    pub const HEAD: usize = 128;
    /// Non-zero while the consumer is parked (or about to park) waiting for data.
    pub const DATA_WAIT: usize = 192;
    /// Non-zero while a producer is parked waiting for space.
    pub const SPACE_WAIT: usize = 256;
    /// Bit `i` set while the producer in slot `i` waits for space (or the lock) on its
    /// doorbell (see [`super::bell`]).
    pub const SPACE_BELLS: usize = 260;
    /// The consumer's slot (see [`super::peers`]).
    pub const CONSUMER: usize = 320;
    /// Doorbells a peer found armed but could not ring (see [`super::bell`]): bit `i` for the
    /// producer in slot `i`, bit 31 for the consumer. Their owners fall back to a timer.
    pub const BELLS_MISSED: usize = 352;
    /// The consumer's bit in [`BELLS_MISSED`].
    pub const CONSUMER_BIT: u32 = 1 << 31;
    /// Non-zero once any producer attached.
    pub const PRODUCERS_EVER: usize = 384;
    /// Producer slots, [`SLOT_SIZE`] bytes each.
    pub const SLOTS: usize = 448;
    pub const SLOT_SIZE: usize = super::peers::SLOT_SIZE;
    pub const SIZE: usize = SLOTS + super::MAX_PRODUCERS * SLOT_SIZE;
}

/// Region indices in a ring's layout.
const REGION_CONTROL: usize = 0;
const REGION_DATA: usize = 1;

/// Writes a ring's layout, control block and empty records into a fresh, zeroed segment of
/// exactly [`RingConfig::segment_size`] bytes.
pub fn init(shared: &Shared, config: &RingConfig) -> Result<()> {
    let geo = config.geometry()?;
    let plan = config.layout();
    // The control block must be complete before the header's magic is published (inside
    // `LayoutBuilder::init`), so write it first: the segment is fresh and nobody attaches
    // before the magic.
    let ctl_off = plan.regions()[REGION_CONTROL].offset;
    let word = |off: usize| {
        shared
            .u64_at(ctl_off + off)
            .ok_or_else(|| Error::LimitExceeded {
                what: "segment too small for the ring layout".into(),
                limit: shared.len() as u64,
            })
    };
    if shared.len() != plan.size() {
        return Err(Error::Incompatible {
            object: shared.segment().id().to_string(),
            reason: format!(
                "a ring of {} bytes needs a {}-byte segment, this one has {}",
                config.capacity,
                plan.size(),
                shared.len()
            ),
        });
    }
    word(ctl::CAPACITY)?.store(geo.capacity, Ordering::Relaxed);
    word(ctl::MAX_MESSAGE)?.store(geo.max_message as u64, Ordering::Relaxed);
    word(ctl::PRODUCERS)?.store(
        match config.producers {
            Producers::Single => 1,
            Producers::Multi => 2,
        },
        Ordering::Relaxed,
    );
    plan.init(shared)?;
    Ok(())
}

/// What every endpoint reads once when it attaches.
#[derive(Debug)]
pub(crate) struct Attached {
    pub layout: Layout,
    pub geo: Geometry,
    pub producers: Producers,
    pub ctl: usize,
    pub data: usize,
}

fn attach(shared: &Shared, init_timeout: Duration) -> Result<Attached> {
    let layout = Layout::attach(shared, LayoutKind::Ring, init_timeout)?;
    let id = shared.segment().id().to_string();
    let control = layout.region(REGION_CONTROL, RegionKind::RingControl)?;
    let data = layout.region(REGION_DATA, RegionKind::RingData)?;
    if control.len < ctl::SIZE {
        return Err(Error::Incompatible {
            object: id,
            reason: format!(
                "ring control block of {} bytes, expected {}",
                control.len,
                ctl::SIZE
            ),
        });
    }
    let load = |off: usize| {
        shared
            .u64_at(control.offset + off)
            .map(|w| w.load(Ordering::Relaxed))
            .ok_or_else(|| Error::corrupted("ring control block out of bounds"))
    };
    let geo = Geometry {
        capacity: load(ctl::CAPACITY)?,
        max_message: usize::try_from(load(ctl::MAX_MESSAGE)?).unwrap_or(usize::MAX),
    }
    .validate()
    .map_err(|why| Error::corrupted(format!("{id}: {why}")))?;
    if geo.capacity != data.len as u64 {
        return Err(Error::corrupted(format!(
            "{id}: ring capacity {} but data region of {} bytes",
            geo.capacity, data.len
        )));
    }
    let producers = match load(ctl::PRODUCERS)? as u32 {
        1 => Producers::Single,
        2 => Producers::Multi,
        other => return Err(Error::corrupted(format!("{id}: producer mode {other}"))),
    };
    Ok(Attached {
        layout,
        geo,
        producers,
        ctl: control.offset,
        data: data.offset,
    })
}

/// Per-endpoint options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointOptions {
    /// How the endpoint waits.
    pub wait: WaitStrategy,
    /// How long to wait for a creator still initialising the segment.
    pub init_timeout: Duration,
}

impl Default for EndpointOptions {
    fn default() -> Self {
        EndpointOptions {
            wait: WaitStrategy::Spin,
            init_timeout: Duration::from_secs(1),
        }
    }
}

impl EndpointOptions {
    /// These options with another wait strategy.
    pub fn wait(mut self, wait: WaitStrategy) -> EndpointOptions {
        self.wait = wait;
        self
    }
}

/// A snapshot of a ring's state, for inspection tools. Read without locking: the figures may
/// be a moment apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RingState {
    /// Shape of the ring.
    pub geometry: Geometry,
    /// One producer or many.
    pub producers_mode: Producers,
    /// Consumer position.
    pub head: u64,
    /// Producers' published position.
    pub tail: u64,
    /// Records between `head` and `tail`, if their headers could be walked (`None` when the
    /// ring moved under the walk or is corrupted).
    pub records: Option<u64>,
    /// Records committed past `tail` that it does not count yet: a producer died between
    /// committing them and publishing its tail (the next producer counts them).
    pub uncounted_records: u64,
    /// The attached consumer and whether it is alive.
    pub consumer: Option<(Endpoint, bool)>,
    /// Attached producers and whether each is alive.
    pub producers: Vec<(Endpoint, bool)>,
    /// The producers' lock of a multi-producer ring (`None` for a single-producer ring, which
    /// has no lock on its path).
    pub lock: Option<lock::LockState>,
    /// The PID namespace of the process that created the segment (0: not recorded).
    pub creator_pid_namespace: u64,
}

impl RingState {
    /// Bytes of records not yet consumed.
    pub fn bytes_in_flight(&self) -> u64 {
        self.tail.saturating_sub(self.head)
    }
}

/// Reads the state of the ring in `shared` (for `ipc inspect`).
pub fn inspect(shared: &Shared) -> Result<RingState> {
    let a = attach(shared, Duration::ZERO)?;
    let word = |off: usize| {
        shared
            .u64_at(a.ctl + off)
            .map(|w| w.load(Ordering::Acquire))
            .unwrap_or(0)
    };
    let slot = |off: usize| {
        let slot = peers::Slot::at(a.ctl + off);
        slot.owner(shared).map(|o| (o, slot.owner_alive(shared)))
    };
    let consumer = slot(ctl::CONSUMER);
    let producers = (0..MAX_PRODUCERS)
        .filter_map(|i| slot(ctl::SLOTS + i * ctl::SLOT_SIZE))
        .collect();
    let lock = match a.producers {
        Producers::Single => None,
        Producers::Multi => Some(lock::inspect(shared, a.ctl)),
    };
    let (head, tail) = (word(ctl::HEAD), word(ctl::TAIL));
    let mem = mem::SegmentMem::new(shared.clone(), &a);
    let records = self::core::count_records(&mem, a.geo, head, tail);
    let uncounted_records = self::core::count_uncounted(&mem, a.geo, head.max(tail));
    Ok(RingState {
        records,
        uncounted_records,
        lock,
        geometry: a.geo,
        producers_mode: a.producers,
        head,
        tail,
        consumer,
        producers,
        creator_pid_namespace: a.layout.creator_pid_namespace(),
    })
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod hostile;

#[cfg(all(test, loom))]
mod loom_model;
