//! Who is attached to a ring, and whether they still live.
//!
//! Each endpoint owns a slot in the control block: an owner word (`pid << 8 | state`, claimed
//! with one compare-and-swap, so two processes can never both take a slot) and the owner's start
//! time (pids are reused; the pair is an identity). A slot whose owner died can be taken over.
//! Liveness is checked through a pidfd held on the verified process, at most once per
//! [`CHECK_INTERVAL`], so a check costs a clock read on the fast path.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use ipc_core::{Error, Result};

use crate::process::{ProcessId, Watch};
use crate::sys::mem::Shared;
use crate::sys::process::coarse_now_ns;

/// How often a peer's liveness is re-checked while messages flow or an endpoint waits.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(10);

pub const EMPTY: u64 = 0;
pub const ATTACHED: u64 = 1;
pub const CLOSED: u64 = 2;
const STATE_MASK: u64 = 0xff;

/// Whether the process recorded as `(owner, start)` is alive. A start time of zero means the
/// owner is between its claim and writing its start time: alive if its pid exists.
fn alive(owner: u64, start: u64) -> Option<Watch> {
    let pid = (owner >> 8) as u32;
    if start == 0 {
        return Watch::open(ProcessId {
            pid,
            start_time: crate::process::start_time(pid)?,
        });
    }
    Watch::open(ProcessId {
        pid,
        start_time: start,
    })
}

/// One slot of the control block.
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    owner: usize,
    start: usize,
}

impl Slot {
    pub fn at(off: usize) -> Slot {
        Slot {
            owner: off,
            start: off + 8,
        }
    }

    fn words<'a>(&self, shared: &'a Shared) -> (&'a AtomicU64, &'a AtomicU64) {
        (
            shared
                .u64_at(self.owner)
                .expect("slot inside the control block"),
            shared
                .u64_at(self.start)
                .expect("slot inside the control block"),
        )
    }

    /// The attached owner of the slot, if any (for inspection).
    pub fn owner(&self, shared: &Shared) -> Option<ProcessId> {
        let owner = shared.u64_at(self.owner)?.load(Ordering::Acquire);
        let start = shared.u64_at(self.start)?.load(Ordering::Acquire);
        (owner & STATE_MASK == ATTACHED).then_some(ProcessId {
            pid: (owner >> 8) as u32,
            start_time: start,
        })
    }

    /// Claims the slot for this process if it is free, closed, or its owner is dead.
    /// `Ok(false)`: a live process holds it.
    pub fn claim(&self, shared: &Shared) -> Result<bool> {
        let (owner, start) = self.words(shared);
        let me = ProcessId::current();
        let mine = (me.pid as u64) << 8 | ATTACHED;
        for _ in 0..64 {
            let seen = owner.load(Ordering::Acquire);
            if seen & STATE_MASK == ATTACHED
                && alive(seen, start.load(Ordering::Acquire)).is_some_and(|w| w.is_alive())
            {
                return Ok(false);
            }
            if owner
                .compare_exchange(seen, mine, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                start.store(me.start_time, Ordering::Release);
                return Ok(true);
            }
        }
        Err(Error::corrupted(
            "ring endpoint slot keeps changing under us",
        ))
    }

    /// Gives the slot up, leaving `state` (EMPTY or CLOSED) for the peers to see.
    pub fn release(&self, shared: &Shared, state: u64) {
        let (owner, start) = self.words(shared);
        let me = (ProcessId::current().pid as u64) << 8 | ATTACHED;
        start.store(0, Ordering::Relaxed);
        // Only if still ours: a peer may have taken it over believing us dead (pid namespace
        // games); never clobber its claim.
        let _ = owner.compare_exchange(me, state, Ordering::AcqRel, Ordering::Relaxed);
    }
}

/// What a watcher concluded about a peer slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// Nobody has attached yet.
    Absent,
    /// Attached and alive (as of the last check).
    Alive,
    /// Left (closed its endpoint) or died.
    Gone,
}

/// Watches one slot (a producer watching its consumer), caching the pidfd.
#[derive(Debug)]
pub struct SlotWatch {
    slot: Slot,
    seen: (u64, u64),
    watch: Option<Watch>,
    last_check: u64,
}

impl SlotWatch {
    pub fn new(slot: Slot) -> SlotWatch {
        SlotWatch {
            slot,
            seen: (u64::MAX, u64::MAX),
            watch: None,
            last_check: 0,
        }
    }

    /// Whether the slot is held (by a live or a dead owner).
    #[inline]
    pub fn attached(&self, shared: &Shared) -> bool {
        self.slot.words(shared).0.load(Ordering::Acquire) & STATE_MASK == ATTACHED
    }

    /// The peer's state; `force` checks liveness now rather than at most every
    /// [`CHECK_INTERVAL`].
    #[inline]
    pub fn check(&mut self, shared: &Shared, force: bool) -> Peer {
        let (owner, start) = self.slot.words(shared);
        let o = owner.load(Ordering::Acquire);
        match o & STATE_MASK {
            EMPTY => return Peer::Absent,
            ATTACHED => {}
            _ => return Peer::Gone,
        }
        let now = coarse_now_ns();
        if !force
            && now.wrapping_sub(self.last_check) < CHECK_INTERVAL.as_nanos() as u64
            && self.seen.0 == o
        {
            return if self.watch.is_some() {
                Peer::Alive
            } else {
                Peer::Gone
            };
        }
        self.last_check = now;
        let s = start.load(Ordering::Acquire);
        if self.seen != (o, s) {
            self.seen = (o, s);
            self.watch = alive(o, s);
        }
        match &self.watch {
            Some(w) if w.is_alive() => Peer::Alive,
            _ => {
                self.watch = None;
                Peer::Gone
            }
        }
    }
}

/// Watches every producer slot (the consumer asking "is anyone left to send?").
#[derive(Debug)]
pub struct ProducerWatch {
    slots: Vec<SlotWatch>,
    ever: usize,
    last_check: u64,
    last_answer: bool,
}

impl ProducerWatch {
    pub fn new(ctl: usize, ever: usize, count: usize) -> ProducerWatch {
        ProducerWatch {
            slots: (0..count)
                .map(|i| {
                    SlotWatch::new(Slot::at(
                        ctl + super::ctl::SLOTS + i * super::ctl::SLOT_SIZE,
                    ))
                })
                .collect(),
            ever,
            last_check: 0,
            last_answer: false,
        }
    }

    /// Whether every producer that ever attached has left or died (and at least one did
    /// attach). Producers that closed their endpoint are seen at once; whether attached ones
    /// still live is checked at most every [`CHECK_INTERVAL`] unless `force`.
    pub fn all_gone(&mut self, shared: &Shared, force: bool) -> bool {
        let ever = shared
            .u32_at(self.ever)
            .is_some_and(|w: &AtomicU32| w.load(Ordering::Acquire) != 0);
        if !ever {
            return false;
        }
        let attached = self.slots.iter().any(|s| s.attached(shared));
        if !attached {
            return true;
        }
        // Only "someone is alive" is reused between checks: a producer that took a dead one's
        // slot must be seen at once, not after the interval.
        let now = coarse_now_ns();
        if !force
            && !self.last_answer
            && now.wrapping_sub(self.last_check) < CHECK_INTERVAL.as_nanos() as u64
        {
            return false;
        }
        self.last_check = now;
        self.last_answer = self
            .slots
            .iter_mut()
            .all(|s| s.check(shared, true) != Peer::Alive);
        self.last_answer
    }
}
