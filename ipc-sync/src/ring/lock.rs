//! The producers' lock of a multi-producer ring: a futex word of our own, held from `loan` to
//! `commit`.
//!
//! It replaces a glibc robust `pthread_mutex_t`, which keeps the links of its owner's robust
//! list inside the mutex: a process able to write the segment could make glibc's unlock write
//! where it chose, or abort in an assertion. Here the shared state is one 32-bit word whose
//! every value is either valid or detected as corrupt, and nothing in it is ever used as an
//! address:
//!
//! | bits  | field   | meaning                                                          |
//! |-------|---------|------------------------------------------------------------------|
//! | 0–5   | holder  | producer slot + 1 (1..=[`MAX_PRODUCERS`]); 0: free               |
//! | 6     | —       | always 0                                                         |
//! | 7     | waiters | a producer may be asleep on the word: the releaser wakes one     |
//! | 8–31  | epoch   | the holder slot's claim epoch (incremented at every claim of the slot) |
//!
//! A free lock is exactly 0. Taking it is one compare-and-swap from 0 (acquire); releasing it
//! is one swap to 0 (release), followed by a `FUTEX_WAKE` only if the waiters bit was set.
//!
//! **A dead holder** is found the way every dead peer is: the lock names a slot and that slot's
//! epoch; if the slot has changed hands or closed since, or its owner's pidfd says it exited,
//! the holder is gone, and a waiter takes the lock over with a compare-and-swap from the very
//! word it judged (so two waiters cannot both take it) and then repairs the ring
//! ([`ProducerCore::recover`](super::core::ProducerCore::recover)). Waiters re-check at least
//! every 10 ms while spinning and every park slice
//! while asleep, so a dead holder delays the others by the dead-peer bound at most. A waiter
//! also watches the consumer (a dead consumer is `Disconnected`, lock or not) and the caller's
//! deadline.
//!
//! **A hostile writer** can put any value in the word. An invalid one (holder out of range, the
//! reserved bit) is [`Error::Corrupted`]. A valid one naming a dead or absent producer is taken
//! over like a dead holder. One naming a live producer that does not hold the lock makes the
//! others wait for it: a denial of service bounded by each caller's deadline, which write
//! access to the segment allows in many other ways too. A holder whose word was changed under
//! it finds out when it releases, and its sender reports `Corrupted` from then on. Nor can a
//! waiter tell a forged slot (a new epoch or a dead pid written over a live holder's claim)
//! from a real successor: it takes the lock over and two producers write one record. That
//! damages messages, which write access allows directly anyway; it never makes anyone write
//! outside the ring.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use ipc_core::{Error, Result, Wait};

use super::MAX_PRODUCERS;
use super::WaitStrategy;
use super::core::Corruption;
use super::ctl;
use super::mem::SegmentMem;
use super::peers::{self, Peer, SlotWatch};
use super::wait::{PARK_SLICE, POLLS_PER_CLOCK, SPIN_FOR};
use crate::sys::futex;

const HOLDER_MASK: u32 = 0x3f;
const RESERVED: u32 = 0x40;
const WAITERS: u32 = 0x80;
const EPOCH_SHIFT: u32 = 8;

const _: () = assert!(MAX_PRODUCERS as u32 <= HOLDER_MASK);

/// How the lock was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Taken {
    /// From a holder that released it.
    Released,
    /// From a holder that died (or left) holding it: the ring past the published tail may hold
    /// a record it committed but did not count.
    FromDead,
}

/// The holder named by a lock word, once validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holder {
    /// Producer slot index.
    pub slot: usize,
    /// The epoch of that slot's claim.
    pub epoch: u32,
    /// Whether a producer may be asleep waiting.
    pub waiters: bool,
}

/// Decodes a lock word: `Ok(None)` when free.
pub fn decode(word: u32) -> std::result::Result<Option<Holder>, String> {
    if word == 0 {
        return Ok(None);
    }
    let holder = word & HOLDER_MASK;
    if holder == 0 || holder as usize > MAX_PRODUCERS || word & RESERVED != 0 {
        return Err(format!(
            "producers' lock word {word:#010x} names no producer slot"
        ));
    }
    Ok(Some(Holder {
        slot: holder as usize - 1,
        epoch: word >> EPOCH_SHIFT,
        waiters: word & WAITERS != 0,
    }))
}

/// One producer's handle on the lock.
#[derive(Debug)]
pub(crate) struct ProducerLock {
    /// The word that says "held by us": our slot and its epoch.
    mine: u32,
    ctl: usize,
    /// The slot of the last holder we waited for, watched (its pidfd is cached).
    holder: Option<(usize, SlotWatch)>,
    /// Set when the word was not ours at release: the lock no longer means anything.
    corruption: Corruption,
}

impl ProducerLock {
    /// The lock as the producer in slot `slot` (claimed with `epoch`) takes it.
    pub(crate) fn new(ctl: usize, slot: usize, epoch: u32) -> ProducerLock {
        ProducerLock {
            mine: (epoch & peers::EPOCH_MASK) << EPOCH_SHIFT | (slot as u32 + 1),
            ctl,
            holder: None,
            corruption: Corruption::default(),
        }
    }

    #[inline]
    fn word<'a>(&self, mem: &'a SegmentMem) -> &'a AtomicU32 {
        mem.ctl32(ctl::LOCK)
    }

    /// Takes the lock, waiting as `strategy` and `wait` say. While it waits it watches the
    /// holder (a dead one's lock is taken over: [`Taken::FromDead`]) and the consumer (gone:
    /// [`Error::Disconnected`]). A held lock is [`Error::Full`] for [`Wait::Never`] and
    /// [`Error::Timeout`] once a deadline passes.
    #[inline]
    pub(crate) fn acquire(
        &mut self,
        mem: &SegmentMem,
        strategy: WaitStrategy,
        wait: Wait,
        consumer: &mut SlotWatch,
        recheck: bool,
    ) -> Result<Taken> {
        self.corruption.check()?;
        if self
            .word(mem)
            .compare_exchange(0, self.mine, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return Ok(Taken::Released);
        }
        self.acquire_slow(mem, strategy, wait, consumer, recheck)
    }

    #[cold]
    fn acquire_slow(
        &mut self,
        mem: &SegmentMem,
        strategy: WaitStrategy,
        wait: Wait,
        consumer: &mut SlotWatch,
        recheck: bool,
    ) -> Result<Taken> {
        let word = self.word(mem);
        let deadline = match wait {
            Wait::Never | Wait::Forever => None,
            Wait::Until(at) => Some(at),
        };
        let spin_until = match strategy {
            WaitStrategy::Busy => None,
            WaitStrategy::Spin => Some(Instant::now() + SPIN_FOR),
            WaitStrategy::Park => Some(Instant::now()),
        };
        let mut parking = strategy == WaitStrategy::Park;
        let mut slept = false;
        let mut force = recheck;
        let mut polls = 0u32;
        loop {
            let seen = word.load(Ordering::Acquire);
            let holder = match decode(seen) {
                Ok(None) => {
                    // A producer that slept may share the word with other sleepers: keep the
                    // waiters bit, so that our release wakes the next one.
                    let taking = if slept {
                        self.mine | WAITERS
                    } else {
                        self.mine
                    };
                    if word
                        .compare_exchange(0, taking, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                    {
                        return Ok(Taken::Released);
                    }
                    continue;
                }
                Ok(Some(holder)) => holder,
                Err(what) => return Err(Error::corrupted(what)),
            };
            // We hold no loan while we are here (a loan borrows the sender), so a word naming
            // us is left over, e.g. from a loan that was `mem::forget`-ten: take it back.
            let gone = seen & !WAITERS == self.mine
                || self.holder_state(mem, holder, force)? == Peer::Gone;
            if gone {
                if word
                    .compare_exchange(
                        seen,
                        self.mine | (seen & WAITERS),
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    )
                    .is_ok()
                {
                    return Ok(Taken::FromDead);
                }
                continue;
            }
            if consumer.check(mem.shared(), force)? == Peer::Gone {
                return Err(Error::Disconnected);
            }
            force = false;
            if matches!(wait, Wait::Never) {
                return Err(Error::Full);
            }
            if !parking {
                polls = polls.wrapping_add(1);
                if polls % POLLS_PER_CLOCK == 0 {
                    // The clock is read once per batch of polls, as in the ring's own waits.
                    let now = Instant::now();
                    if deadline.is_some_and(|d| now >= d) {
                        return Err(Error::Timeout);
                    }
                    parking = spin_until.is_some_and(|s| now >= s);
                }
                std::hint::spin_loop();
                continue;
            }
            let now = Instant::now();
            let slice = match deadline {
                Some(d) if d <= now => return Err(Error::Timeout),
                Some(d) => (d - now).min(PARK_SLICE),
                None => PARK_SLICE,
            };
            let asleep = seen | WAITERS;
            if seen & WAITERS == 0
                && word
                    .compare_exchange(seen, asleep, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            slept = true;
            // A slice that runs out re-checks the holder and the consumer at once.
            force = futex::wait(word, asleep, Some(slice)) == futex::Woke::TimedOut;
        }
    }

    /// The pidfd of the holder last waited for, if alive when judged (a doorbell wakes when it
    /// dies).
    pub(crate) fn holder_pidfd(
        &self,
    ) -> Option<(super::bell::PeerKey, std::os::fd::BorrowedFd<'_>)> {
        self.holder.as_ref().and_then(|(_, watch)| watch.pidfd())
    }

    /// For a producer about to wait on its doorbell: makes the holder's release ring it (by
    /// setting the waiters bit). `false` if the lock is free or changed meanwhile: try again.
    pub(crate) fn announce_waiter(&self, mem: &SegmentMem) -> bool {
        let word = self.word(mem);
        let seen = word.load(Ordering::Acquire);
        if seen == 0 || seen & !WAITERS == self.mine {
            return false;
        }
        seen & WAITERS != 0
            || word
                .compare_exchange(seen, seen | WAITERS, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
    }

    /// Whether the producer `holder` names still holds the lock and lives.
    fn holder_state(&mut self, mem: &SegmentMem, holder: Holder, force: bool) -> Result<Peer> {
        if self
            .holder
            .as_ref()
            .is_none_or(|(slot, _)| *slot != holder.slot)
        {
            let at = self.ctl + ctl::SLOTS + holder.slot * peers::SLOT_SIZE;
            self.holder = Some((holder.slot, SlotWatch::new(peers::Slot::at(at))));
        }
        let (_, watch) = self.holder.as_mut().expect("watch set above");
        watch.check_claim(mem.shared(), holder.epoch, force)
    }

    /// Releases the lock (release ordering: the record and the tail it published go with it),
    /// waking one sleeper if any. A word that was not ours means another process wrote it:
    /// every later [`acquire`](ProducerLock::acquire) is [`Error::Corrupted`].
    #[inline]
    pub(crate) fn release(&mut self, mem: &SegmentMem) {
        let word = self.word(mem);
        let was = word.swap(0, Ordering::Release);
        if was & WAITERS != 0 {
            futex::wake(word, 1);
            // Producers waiting on their doorbells set the waiters bit too.
            mem.ring_space_bells();
        }
        if was & !WAITERS != self.mine {
            self.corruption.keep(Error::corrupted(format!(
                "the producers' lock changed under its holder (found {was:#010x}, expected \
                 {:#010x})",
                self.mine
            )));
        }
    }
}

/// The lock's state, read without taking it (for inspection tools).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockState {
    /// Nobody holds it.
    Free,
    /// Held by the producer in `slot` (`pid` if that slot still belongs to the holder).
    Held {
        /// Producer slot index.
        slot: usize,
        /// The holder's process, if the slot is still its claim.
        pid: Option<u32>,
        /// Whether the holder is alive (a dead one's lock is taken over by the next producer).
        alive: bool,
        /// Whether producers may be asleep waiting for it.
        waiters: bool,
    },
    /// The word is not a valid lock state.
    Invalid(u32),
}

/// Reads the lock of the ring whose control block is at `ctl`.
pub fn inspect(shared: &crate::Shared, ctl: usize) -> LockState {
    let Some(word) = shared.u32_at(ctl + ctl::LOCK) else {
        return LockState::Invalid(0);
    };
    let word = word.load(Ordering::Acquire);
    match decode(word) {
        Ok(None) => LockState::Free,
        Err(_) => LockState::Invalid(word),
        Ok(Some(h)) => {
            let slot = peers::Slot::at(ctl + ctl::SLOTS + h.slot * peers::SLOT_SIZE);
            let owner = slot.word(shared);
            let current = peers::state(owner) == peers::ATTACHED && peers::epoch(owner) == h.epoch;
            LockState::Held {
                slot: h.slot,
                pid: current
                    .then(|| slot.owner(shared).map(|e| e.id.pid))
                    .flatten(),
                alive: current && slot.owner_alive(shared),
                waiters: h.waiters,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_decode_or_are_corrupt() {
        assert_eq!(decode(0), Ok(None));
        let held = 17 << EPOCH_SHIFT | 3;
        assert_eq!(
            decode(held),
            Ok(Some(Holder {
                slot: 2,
                epoch: 17,
                waiters: false
            }))
        );
        assert!(decode(held | WAITERS).unwrap().unwrap().waiters);
        for bad in [
            WAITERS,
            1 << EPOCH_SHIFT,
            RESERVED | 1,
            MAX_PRODUCERS as u32 + 1,
            HOLDER_MASK,
            u32::MAX,
        ] {
            assert!(decode(bad).is_err(), "{bad:#x}");
        }
    }
}
