//! Who is attached to a ring, and whether they still live.
//!
//! Each endpoint owns a 32-byte slot in the control block:
//!
//! | offset | word  | meaning                                                              |
//! |--------|-------|----------------------------------------------------------------------|
//! | 0      | owner | `pid << 32 \| epoch << 8 \| state` (state: empty, attached, closed)   |
//! | 8      | start | the owner's start time (pids are reused; pid and start are an identity) |
//! | 16     | pidns | the inode of the owner's PID namespace (0: unknown)                  |
//! | 24     | bell  | the owner's readiness doorbell, if it has one (see [`super::bell`]); 0: none |
//!
//! A slot is claimed with one compare-and-swap of its owner word, so two processes can never
//! both take it, and every claim increments the slot's 24-bit *epoch*: a word elsewhere that
//! names "slot 3, epoch 17" (the producers' lock does) stops matching the moment the slot
//! changes hands. A slot whose owner died can be taken over.
//!
//! Liveness is checked through a pidfd held on the verified process, at most once per
//! [`CHECK_INTERVAL`], so a check costs a clock read on the fast path. An owner in another PID
//! namespace cannot be looked up by its pid: it counts as alive until it closes its slot.
//! Every word here is written by other processes, so each is only ever compared or looked up,
//! never used as an index or a length.

use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use ipc_core::{Error, Result};

use crate::process::{self, ProcessId, Watch};
use crate::sys::mem::Shared;
use crate::sys::process::coarse_now_ns;

/// How often a peer's liveness is re-checked while messages flow or an endpoint waits.
pub const CHECK_INTERVAL: Duration = Duration::from_millis(10);

/// Bytes of one slot.
pub const SLOT_SIZE: usize = 32;

pub const EMPTY: u64 = 0;
pub const ATTACHED: u64 = 1;
pub const CLOSED: u64 = 2;
const STATE_MASK: u64 = 0xff;
const EPOCH_SHIFT: u32 = 8;
/// Epochs are 24 bits: what fits beside a slot number in the producers' 32-bit lock word.
pub const EPOCH_MASK: u32 = 0x00ff_ffff;
const PID_SHIFT: u32 = 32;

const START: usize = 8;
const PIDNS: usize = 16;
const BELL: usize = 24;

/// The state half of an owner word.
#[inline]
pub fn state(owner: u64) -> u64 {
    owner & STATE_MASK
}

/// The state of an owner word read from the segment: any value but the three states was
/// written by another process, and means nothing (it is not "closed": a slot taken for
/// closed would be claimed, and a lock holder taken for gone would be robbed while it writes).
#[inline]
fn checked_state(owner: u64) -> Result<u64> {
    match state(owner) {
        s @ (EMPTY | ATTACHED | CLOSED) => Ok(s),
        _ => Err(invalid_state(owner)),
    }
}

/// Kept out of line: it runs once per ring at most, and inlined it would weigh on every
/// peer check of the message path.
#[cold]
#[inline(never)]
fn invalid_state(owner: u64) -> Error {
    Error::corrupted(format!(
        "ring endpoint slot word {owner:#018x} holds no valid state ({})",
        state(owner)
    ))
}

/// The epoch of an owner word.
#[inline]
pub fn epoch(owner: u64) -> u32 {
    (owner >> EPOCH_SHIFT) as u32 & EPOCH_MASK
}

fn pid(owner: u64) -> u32 {
    (owner >> PID_SHIFT) as u32
}

/// A watch on the process recorded as `(owner, start, pidns)` if it is alive (or lives where
/// we cannot look). A start time of zero means the owner is between its claim and writing its
/// start time: alive if its pid exists.
fn alive(owner: u64, start: u64, pidns: u64) -> Option<Watch> {
    let pid = pid(owner);
    if !process::same_pid_namespace(pidns) {
        return Some(Watch::unverifiable(ProcessId {
            pid,
            start_time: start,
        }));
    }
    let start_time = match start {
        0 => process::start_time(pid)?,
        start => start,
    };
    Watch::open(ProcessId { pid, start_time })
}

/// An endpoint as recorded in its slot (for inspection).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Its process, as its namespace sees it.
    pub id: ProcessId,
    /// The inode of its PID namespace (0: not recorded).
    pub pid_namespace: u64,
}

/// One slot of the control block.
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    at: usize,
}

impl Slot {
    pub fn at(off: usize) -> Slot {
        Slot { at: off }
    }

    fn words<'a>(&self, shared: &'a Shared) -> (&'a AtomicU64, &'a AtomicU64, &'a AtomicU64) {
        let word = |off: usize| {
            shared
                .u64_at(self.at + off)
                .expect("slot inside the validated control block")
        };
        (word(0), word(START), word(PIDNS))
    }

    /// The word naming the owner's doorbell (written by the owner, read by whoever rings it).
    pub fn bell<'a>(&self, shared: &'a Shared) -> &'a AtomicU64 {
        shared
            .u64_at(self.at + BELL)
            .expect("slot inside the validated control block")
    }

    /// The doorbell of the slot's owner, if it is attached and has published one.
    pub fn bell_target(&self, shared: &Shared) -> Option<super::bell::Target> {
        let (owner, _, pidns) = self.words(shared);
        let owner = owner.load(Ordering::Acquire);
        let name = self.bell(shared).load(Ordering::Acquire);
        if state(owner) != ATTACHED || name == 0 {
            return None;
        }
        Some(super::bell::Target {
            slot: self.at,
            owner,
            pid: pid(owner),
            pidns: pidns.load(Ordering::Acquire),
            name,
        })
    }

    /// The owner word as it is now (read at every message by a watching peer: only this
    /// word is looked up).
    #[inline]
    pub fn word(&self, shared: &Shared) -> u64 {
        shared
            .u64_at(self.at)
            .expect("slot inside the validated control block")
            .load(Ordering::Acquire)
    }

    /// The attached owner of the slot, if any (for inspection).
    pub fn owner(&self, shared: &Shared) -> Option<Endpoint> {
        let (owner, start, pidns) = self.words(shared);
        let owner = owner.load(Ordering::Acquire);
        (state(owner) == ATTACHED).then(|| Endpoint {
            id: ProcessId {
                pid: pid(owner),
                start_time: start.load(Ordering::Acquire),
            },
            pid_namespace: pidns.load(Ordering::Acquire),
        })
    }

    /// Whether the recorded owner is alive (for inspection; a one-off check).
    pub fn owner_alive(&self, shared: &Shared) -> bool {
        let (owner, start, pidns) = self.words(shared);
        let owner = owner.load(Ordering::Acquire);
        state(owner) == ATTACHED
            && alive(
                owner,
                start.load(Ordering::Acquire),
                pidns.load(Ordering::Acquire),
            )
            .is_some_and(|w| w.is_alive())
    }

    /// Claims the slot for this process if it is free, closed, or its owner is dead.
    /// `Ok(None)`: a live process holds it.
    pub fn claim(&self, shared: &Shared) -> Result<Option<Claim>> {
        let (owner, start, pidns) = self.words(shared);
        let me = ProcessId::current();
        for _ in 0..64 {
            let seen = owner.load(Ordering::Acquire);
            if checked_state(seen)? == ATTACHED
                && alive(
                    seen,
                    start.load(Ordering::Acquire),
                    pidns.load(Ordering::Acquire),
                )
                .is_some_and(|w| w.is_alive())
            {
                return Ok(None);
            }
            let epoch = epoch(seen).wrapping_add(1) & EPOCH_MASK;
            let mine = (me.pid as u64) << PID_SHIFT | (epoch as u64) << EPOCH_SHIFT | ATTACHED;
            if owner
                .compare_exchange(seen, mine, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                // A dead predecessor's doorbell must not be rung for us.
                self.bell(shared).store(0, Ordering::Relaxed);
                pidns.store(process::pid_namespace().unwrap_or(0), Ordering::Release);
                start.store(me.start_time, Ordering::Release);
                return Ok(Some(Claim {
                    slot: *self,
                    word: mine,
                }));
            }
        }
        Err(Error::corrupted(
            "ring endpoint slot keeps changing under us",
        ))
    }
}

/// A slot this endpoint holds.
#[derive(Debug, Clone, Copy)]
pub struct Claim {
    slot: Slot,
    word: u64,
}

impl Claim {
    /// The epoch this claim gave the slot.
    pub fn epoch(&self) -> u32 {
        epoch(self.word)
    }

    /// Publishes this endpoint's doorbell (see [`super::bell`]).
    pub fn set_bell(&self, shared: &Shared, name: u64) {
        self.slot.bell(shared).store(name, Ordering::Release);
    }

    /// Gives the slot up, leaving `state` (EMPTY or CLOSED) and the epoch for the peers to see.
    pub fn release(&self, shared: &Shared, state: u64) {
        let (owner, start, pidns) = self.slot.words(shared);
        // Only if still ours: a peer may have taken it over believing us dead; never clobber
        // its claim (nor its start time and namespace).
        if owner
            .compare_exchange(
                self.word,
                (self.epoch() as u64) << EPOCH_SHIFT | state,
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            start.store(0, Ordering::Relaxed);
            pidns.store(0, Ordering::Relaxed);
            self.slot.bell(shared).store(0, Ordering::Relaxed);
        }
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

/// Watches one slot (a producer watching its consumer, or the holder of the producers' lock),
/// caching the pidfd.
#[derive(Debug)]
pub struct SlotWatch {
    slot: Slot,
    seen: (u64, u64, u64),
    watch: Option<Watch>,
    last_check: u64,
    /// Whether `watch`'s process can ring our doorbell, once found out.
    reaches_us: Option<bool>,
}

impl SlotWatch {
    pub fn new(slot: Slot) -> SlotWatch {
        SlotWatch {
            slot,
            seen: (u64::MAX, u64::MAX, u64::MAX),
            watch: None,
            last_check: 0,
            reaches_us: None,
        }
    }

    /// The pidfd of the owner last judged alive, keyed by the slot and the owner word judged
    /// (for a doorbell, which must wake when that owner dies).
    pub fn pidfd(&self) -> Option<(super::bell::PeerKey, BorrowedFd<'_>)> {
        let fd = self.watch.as_ref()?.pidfd()?;
        Some(((self.slot.at, self.seen.0), fd))
    }

    /// Whether there is a peer last judged alive and it can ring our doorbell (see
    /// [`Watch::can_reach_our_fds`]); found out once per peer, since it reads `/proc`.
    pub fn reaches_us(&mut self) -> bool {
        let Some(watch) = &self.watch else {
            return false;
        };
        *self
            .reaches_us
            .get_or_insert_with(|| watch.can_reach_our_fds())
    }

    /// Whether the slot is held (by a live or a dead owner).
    #[inline]
    pub fn attached(&self, shared: &Shared) -> Result<bool> {
        Ok(checked_state(self.slot.word(shared))? == ATTACHED)
    }

    /// The peer's state; `force` checks liveness now rather than at most every
    /// [`CHECK_INTERVAL`]. A slot word with no valid state is [`Error::Corrupted`].
    #[inline]
    pub fn check(&mut self, shared: &Shared, force: bool) -> Result<Peer> {
        let owner = self.slot.word(shared);
        Ok(match checked_state(owner)? {
            EMPTY => Peer::Absent,
            ATTACHED => self.judge(shared, owner, force),
            _ => Peer::Gone,
        })
    }

    /// Whether the owner of the slot's claim of `epoch` still holds it and lives: a later claim
    /// of the slot, a closed slot or a dead owner are all [`Peer::Gone`].
    pub fn check_claim(&mut self, shared: &Shared, epoch_wanted: u32, force: bool) -> Result<Peer> {
        let owner = self.slot.word(shared);
        if checked_state(owner)? != ATTACHED || epoch(owner) != epoch_wanted {
            return Ok(Peer::Gone);
        }
        Ok(self.judge(shared, owner, force))
    }

    #[inline]
    fn judge(&mut self, shared: &Shared, owner: u64, force: bool) -> Peer {
        let now = coarse_now_ns();
        if !force
            && now.wrapping_sub(self.last_check) < CHECK_INTERVAL.as_nanos() as u64
            && self.seen.0 == owner
        {
            return if self.watch.is_some() {
                Peer::Alive
            } else {
                Peer::Gone
            };
        }
        self.look(shared, owner, now)
    }

    /// Looks at the process recorded in the slot now.
    #[inline(never)]
    fn look(&mut self, shared: &Shared, owner: u64, now: u64) -> Peer {
        self.last_check = now;
        let (_, start, pidns) = self.slot.words(shared);
        let seen = (
            owner,
            start.load(Ordering::Acquire),
            pidns.load(Ordering::Acquire),
        );
        if self.seen != seen {
            self.seen = seen;
            self.watch = alive(seen.0, seen.1, seen.2);
            self.reaches_us = None;
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
                .map(|i| SlotWatch::new(Slot::at(ctl + super::ctl::SLOTS + i * SLOT_SIZE)))
                .collect(),
            ever,
            last_check: 0,
            last_answer: false,
        }
    }

    /// Whether a producer was judged alive, and every one judged alive can ring our doorbell.
    pub fn all_reach_us(&mut self) -> bool {
        let mut present = false;
        for slot in &mut self.slots {
            if slot.watch.is_some() {
                present = true;
                if !slot.reaches_us() {
                    return false;
                }
            }
        }
        present
    }

    /// The pidfds of the producers last judged alive (see [`SlotWatch::pidfd`]).
    pub fn pidfds(&self) -> impl Iterator<Item = (super::bell::PeerKey, BorrowedFd<'_>)> + Clone {
        self.slots.iter().filter_map(SlotWatch::pidfd)
    }

    /// Whether every producer that ever attached has left or died (and at least one did
    /// attach). Producers that closed their endpoint are seen at once; whether attached ones
    /// still live is checked at most every [`CHECK_INTERVAL`] unless `force`. A slot word with
    /// no valid state is [`Error::Corrupted`].
    pub fn all_gone(&mut self, shared: &Shared, force: bool) -> Result<bool> {
        let ever = shared
            .u32_at(self.ever)
            .is_some_and(|w: &AtomicU32| w.load(Ordering::Acquire) != 0);
        if !ever {
            return Ok(false);
        }
        // Stops at the first attached slot, as this runs at every poll of an empty ring.
        let mut attached = false;
        for slot in &self.slots {
            if slot.attached(shared)? {
                attached = true;
                break;
            }
        }
        if !attached {
            return Ok(true);
        }
        // Only "someone is alive" is reused between checks: a producer that took a dead one's
        // slot must be seen at once, not after the interval.
        let now = coarse_now_ns();
        if !force
            && !self.last_answer
            && now.wrapping_sub(self.last_check) < CHECK_INTERVAL.as_nanos() as u64
        {
            return Ok(false);
        }
        self.last_check = now;
        let mut all_gone = true;
        for slot in &mut self.slots {
            all_gone &= slot.check(shared, true)? != Peer::Alive;
        }
        self.last_answer = all_gone;
        Ok(all_gone)
    }
}
