//! A process-shared condition variable on a futex word in a segment, used with a
//! [`RobustMutex`](crate::RobustMutex).
//!
//! Not `pthread_cond_t`: glibc's process-shared condvar keeps waiter state in the condvar, and a
//! waiter killed inside `pthread_cond_wait` can make a later `pthread_cond_broadcast` block
//! forever (glibc bug 21422). Here the shared state is one 32-bit sequence number:
//!
//! - [`Condvar::wait`] reads the sequence while holding the mutex, unlocks, sleeps in
//!   `futex(FUTEX_WAIT)` as long as the sequence still has that value, then relocks;
//! - [`Condvar::notify_one`] / [`Condvar::notify_all`] increment the sequence, then
//!   `futex(FUTEX_WAKE)` one or all sleepers.
//!
//! A waiter keeps nothing in shared memory while it sleeps (the kernel's futex queue is the
//! only list of waiters, and the kernel drops a dead process from it), so a waiter killed at
//! any point leaves nothing behind that a notifier or another waiter could hang on.
//!
//! No wake-up is lost when the protocol below is followed: the waiter reads the sequence
//! before it unlocks, and a notifier changes the predicate under the mutex, so its increment
//! comes after that read. If it lands before the waiter is asleep, `FUTEX_WAIT` sees the changed
//! word and returns at once.
//!
//! # Protocol
//!
//! - Every waiter of one condvar uses the same mutex, and holds it while it checks the
//!   predicate and calls `wait`.
//! - A notifier changes the predicate's state while holding the mutex, then notifies (holding
//!   the mutex or after unlocking it, both work).
//! - Wake-ups may be spurious (a notify meant for an earlier wait, a wrapped sequence, a signal):
//!   always re-check the predicate in a loop, or use [`Condvar::wait_while`] /
//!   [`Condvar::wait_timeout_while`], which do.
//! - Relocking after the wait may find that the mutex's owner died: the wait then returns
//!   [`LockError::OwnerDied`] and the caller holds the lock, exactly as for
//!   [`RobustMutex::lock`](crate::RobustMutex::lock).
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::Ordering;
//! use std::time::Duration;
//!
//! use ipc_sync::{HeapSegment, LayoutBuilder, Shared};
//!
//! # fn main() -> Result<(), ipc_core::Error> {
//! let mut plan = LayoutBuilder::new();
//! let (m, c, flag) = (plan.mutex(), plan.condvar(), plan.bytes(8));
//! let shared = Shared::new(Arc::new(HeapSegment::new(plan.size(), "doc")));
//! let layout = plan.init(&shared)?;
//! let (mutex, condvar) = (layout.mutex(m)?, layout.condvar(c)?);
//! let ready = shared.u64_at(layout.regions()[flag].offset).unwrap();
//!
//! std::thread::scope(|s| -> Result<(), ipc_core::Error> {
//!     s.spawn(|| {
//!         let _guard = mutex.lock().unwrap();
//!         ready.store(1, Ordering::Relaxed);
//!         condvar.notify_all();
//!     });
//!     let guard = mutex.lock()?;
//!     let (_guard, timed_out) = condvar.wait_timeout_while(guard, Duration::from_secs(10), || {
//!         ready.load(Ordering::Relaxed) == 0
//!     })?;
//!     assert!(!timed_out);
//!     Ok(())
//! })?;
//! # Ok(())
//! # }
//! ```
//!
//! # Region layout
//!
//! ```text
//! 0    sequence u32 (the futex word): incremented by every notify, wrapping
//! 4    tag u32 "cvar", stored (release) by `init_at`; `at` requires it
//! ```
//!
//! # References
//!
//! `futex(2)`, `futex(7)`; Ulrich Drepper, *Futexes Are Tricky*; glibc bug 21422.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ipc_core::{Error, Result};

use ipc_core::Wait;

use crate::mutex::{LockError, MutexGuard};
use crate::process::Watch;
use crate::sys::futex::{self, Woke};
use crate::sys::mem::Shared;

/// Bytes a condvar region takes (a sequence word and a tag, rounded up to a cache line).
pub const CONDVAR_REGION_SIZE: usize = 64;

/// Offset of the sequence (futex) word within the region.
const SEQ_OFFSET: usize = 0;
/// Offset of the "initialised" tag within the region.
const TAG_OFFSET: usize = 4;
/// The tag: `b"cvar"` as a little-endian word.
const TAG: u32 = u32::from_le_bytes(*b"cvar");
/// Regions start on a cache line.
const REGION_ALIGN: usize = 64;

const _: () = assert!(TAG_OFFSET + 4 <= CONDVAR_REGION_SIZE && SEQ_OFFSET + 4 <= TAG_OFFSET);

/// What a wait returns when it may time out: the relocked guard, and whether the deadline
/// passed (`true`) rather than a wake-up ending the wait.
pub type WaitTimeoutResult<'a> = std::result::Result<(MutexGuard<'a>, bool), LockError<'a>>;

/// How a [`Condvar::wait_with`] ended (the caller holds the lock again in every case).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitOutcome {
    /// A notify, or a spurious wake-up: re-check the predicate.
    Notified,
    /// The deadline passed.
    TimedOut,
    /// The watched peer exited: whatever it was to do, it will not.
    PeerGone,
}

/// A process-shared condition variable inside a segment (see the [module docs](self)).
///
/// Holds a clone of the [`Shared`] segment, so the mapping outlives the handle. Cheap to clone;
/// all handles to one region, in any process, are the same condvar. `Send + Sync`.
#[derive(Clone)]
pub struct Condvar {
    shared: Shared,
    offset: usize,
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condvar")
            .field("segment", self.shared.segment().id())
            .field("offset", &self.offset)
            .finish()
    }
}

/// The sequence and tag words of the region at `offset`, if it is in bounds and aligned.
fn words(shared: &Shared, offset: usize) -> Option<(&AtomicU32, &AtomicU32)> {
    shared.ptr_at(offset, CONDVAR_REGION_SIZE, REGION_ALIGN)?;
    Some((
        shared.u32_at(offset + SEQ_OFFSET)?,
        shared.u32_at(offset + TAG_OFFSET)?,
    ))
}

impl Condvar {
    /// Initialises a condvar in the [`CONDVAR_REGION_SIZE`]-byte region at `offset` (a multiple
    /// of 64), before the segment is visible to others (as
    /// [`LayoutBuilder::init`](crate::LayoutBuilder::init) does).
    ///
    /// Errors: [`Error::Incompatible`] if the region is out of bounds, misaligned or already
    /// initialised.
    pub fn init_at(shared: &Shared, offset: usize) -> Result<()> {
        let object = || format!("{} (condvar at offset {offset})", shared.segment().id());
        let Some((seq, tag)) = words(shared, offset) else {
            return Err(Error::Incompatible {
                object: object(),
                reason: format!(
                    "a condvar needs {CONDVAR_REGION_SIZE} bytes aligned to {REGION_ALIGN} \
                     inside the segment of {} bytes",
                    shared.len()
                ),
            });
        };
        if tag.load(Ordering::Acquire) != 0 {
            return Err(Error::Incompatible {
                object: object(),
                reason: "the region is initialised already".into(),
            });
        }
        seq.store(0, Ordering::Relaxed);
        // Release: whoever sees the tag (acquire, in `at`) sees the initial sequence.
        tag.store(TAG, Ordering::Release);
        Ok(())
    }

    /// The condvar initialised by [`Condvar::init_at`] at `offset`.
    ///
    /// Errors: [`Error::Corrupted`] if the region is out of bounds, misaligned or holds no
    /// initialised condvar.
    pub fn at(shared: &Shared, offset: usize) -> Result<Condvar> {
        let id = shared.segment().id();
        let (_, tag) = words(shared, offset).ok_or_else(|| {
            Error::corrupted(format!(
                "{id}: a condvar region at offset {offset} is out of bounds or not aligned to \
                 {REGION_ALIGN}"
            ))
        })?;
        // Acquire: pairs with the release in `init_at`.
        let found = tag.load(Ordering::Acquire);
        if found != TAG {
            return Err(Error::corrupted(format!(
                "{id}: no initialised condvar at offset {offset} (tag {found:#010x})"
            )));
        }
        Ok(Condvar {
            shared: shared.clone(),
            offset,
        })
    }

    /// Offset of the condvar's region in the segment.
    pub fn offset(&self) -> usize {
        self.offset
    }

    fn seq(&self) -> &AtomicU32 {
        self.shared
            .u32_at(self.offset + SEQ_OFFSET)
            .expect("checked by Condvar::at; a mapping never shrinks")
    }

    /// Unlocks `guard`'s mutex, sleeps until notified (or spuriously), relocks.
    ///
    /// Errors: from relocking, as for [`RobustMutex::lock`](crate::RobustMutex::lock); with
    /// [`LockError::OwnerDied`] the caller holds the lock and must recover it. On any other
    /// error the caller does not hold the lock.
    pub fn wait<'a>(
        &self,
        guard: MutexGuard<'a>,
    ) -> std::result::Result<MutexGuard<'a>, LockError<'a>> {
        self.wait_until(guard, None).map(|(guard, _)| guard)
    }

    /// [`Condvar::wait`] for at most `timeout`; `true` with the guard if the time ran out.
    /// A timeout too large to represent waits forever.
    pub fn wait_timeout<'a>(
        &self,
        guard: MutexGuard<'a>,
        timeout: Duration,
    ) -> WaitTimeoutResult<'a> {
        self.wait_until(guard, Instant::now().checked_add(timeout))
    }

    /// [`Condvar::wait`] until `deadline` at the latest (`None`: forever); `true` with the guard
    /// if the deadline passed. Signals do not extend the deadline. With a deadline already
    /// past, returns at once without unlocking.
    ///
    /// The relock after the wait is not bounded by the deadline (a live process holding the
    /// mutex delays it; a dead one is reported as [`LockError::OwnerDied`]).
    pub fn wait_until<'a>(
        &self,
        guard: MutexGuard<'a>,
        deadline: Option<Instant>,
    ) -> WaitTimeoutResult<'a> {
        let remaining = || deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if remaining().is_some_and(|r| r.is_zero()) {
            return Ok((guard, true));
        }
        let word = self.seq();
        // Read while holding the mutex. Relaxed is enough: a notifier changes the predicate
        // under the mutex, so its increment is ordered after this read by the mutex's own
        // release (our unlock) / acquire (its lock); and the kernel compares the word
        // atomically with queueing us, so an increment after this read is never missed.
        let seq = word.load(Ordering::Relaxed);
        let mutex = guard.mutex();
        drop(guard);
        let timed_out = loop {
            let timeout = remaining();
            if timeout.is_some_and(|r| r.is_zero()) {
                break true;
            }
            match futex::wait(word, seq, timeout) {
                Woke::Woken | Woke::Changed => break false,
                Woke::TimedOut => break true,
                // A signal: wait again for the rest of the time, unless a notify came.
                Woke::Interrupted => {
                    if word.load(Ordering::Relaxed) != seq {
                        break false;
                    }
                }
            }
        };
        let guard = mutex.lock()?;
        Ok((guard, timed_out))
    }

    /// [`Condvar::wait`] bounded by `wait` and watching `peer`: sleeps in slices of at most
    /// [`PEER_CHECK`](crate::mutex::PEER_CHECK) and wakes with [`WaitOutcome::PeerGone`] once
    /// the watched process has exited, so that a waiter for its peer's answer never outlives
    /// the peer by more than that. [`Wait::Never`] returns at once (`TimedOut`) without
    /// unlocking.
    ///
    /// The relock is [`RobustMutex::lock_with`](crate::RobustMutex::lock_with) with the same
    /// deadline and peer: if it fails ([`LockError::TimedOut`], [`LockError::PeerGone`], ...)
    /// the caller does not hold the lock; with [`LockError::OwnerDied`] it does, and must
    /// recover.
    pub fn wait_with<'a>(
        &self,
        guard: MutexGuard<'a>,
        wait: Wait,
        peer: Option<&Watch>,
    ) -> std::result::Result<(MutexGuard<'a>, WaitOutcome), LockError<'a>> {
        let deadline = match wait {
            Wait::Never => return Ok((guard, WaitOutcome::TimedOut)),
            Wait::Forever => None,
            Wait::Until(at) => Some(at),
        };
        let word = self.seq();
        // As in `wait_until`: read under the mutex, so a notify after our unlock changes it.
        let seq = word.load(Ordering::Relaxed);
        let mutex = guard.mutex();
        drop(guard);
        let outcome = loop {
            let now = Instant::now();
            let left = deadline.map(|d| d.saturating_duration_since(now));
            if left.is_some_and(|l| l.is_zero()) {
                break WaitOutcome::TimedOut;
            }
            let slice = match (left, peer) {
                (Some(l), Some(_)) => Some(l.min(crate::mutex::PEER_CHECK)),
                (None, Some(_)) => Some(crate::mutex::PEER_CHECK),
                (left, None) => left,
            };
            match futex::wait(word, seq, slice) {
                Woke::Woken | Woke::Changed => break WaitOutcome::Notified,
                Woke::TimedOut | Woke::Interrupted => {
                    if word.load(Ordering::Relaxed) != seq {
                        break WaitOutcome::Notified;
                    }
                    if peer.is_some_and(|p| !p.is_alive()) {
                        break WaitOutcome::PeerGone;
                    }
                }
            }
        };
        let guard = mutex.lock_with(wait, peer)?;
        Ok((guard, outcome))
    }

    /// Waits while `condition()` holds: checks it with the lock held, and [`Condvar::wait`]s
    /// as long as it returns `true`. Returns the guard once it returns `false`.
    ///
    /// `condition` reads the state the mutex protects (in the segment).
    pub fn wait_while<'a>(
        &self,
        mut guard: MutexGuard<'a>,
        mut condition: impl FnMut() -> bool,
    ) -> std::result::Result<MutexGuard<'a>, LockError<'a>> {
        while condition() {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    /// [`Condvar::wait_while`] for at most `timeout` in all: `true` with the guard if
    /// `condition()` still held when the time ran out.
    pub fn wait_timeout_while<'a>(
        &self,
        mut guard: MutexGuard<'a>,
        timeout: Duration,
        mut condition: impl FnMut() -> bool,
    ) -> WaitTimeoutResult<'a> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            if !condition() {
                return Ok((guard, false));
            }
            let (g, timed_out) = self.wait_until(guard, deadline)?;
            guard = g;
            if timed_out {
                let still = condition();
                return Ok((guard, still));
            }
        }
    }

    /// Wakes one waiter, if any. Returns how many the kernel woke (0 or 1), for diagnostics.
    pub fn notify_one(&self) -> usize {
        let word = self.seq();
        // Relaxed: see `wait_until`; the mutex orders the predicate's change before this.
        word.fetch_add(1, Ordering::Relaxed);
        futex::wake(word, 1)
    }

    /// Wakes every waiter. Returns how many the kernel woke, for diagnostics. Never blocks:
    /// waiters leave no state behind, dead ones included.
    pub fn notify_all(&self) -> usize {
        let word = self.seq();
        // Relaxed: as in `notify_one`.
        word.fetch_add(1, Ordering::Relaxed);
        futex::wake_all(word)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;

    use super::*;
    use crate::{HeapSegment, RobustMutex};

    const LONG: Duration = Duration::from_secs(30);

    #[test]
    fn wait_with_wakes_when_the_watched_peer_dies_and_holds_the_lock_again() {
        let f = Fixture::new();
        let (mut child, peer) = crate::mutex::tests::watched_child();
        let guard = f.mutex.lock().unwrap();
        let (guard, outcome) = f
            .condvar
            .wait_with(guard, Wait::Never, Some(&peer))
            .unwrap();
        assert_eq!(outcome, WaitOutcome::TimedOut);
        let soon = Wait::Until(Instant::now() + Duration::from_millis(30));
        let (guard, outcome) = f.condvar.wait_with(guard, soon, Some(&peer)).unwrap();
        assert_eq!(outcome, WaitOutcome::TimedOut);
        std::thread::scope(|s| {
            s.spawn(|| {
                child.kill().unwrap();
                child.wait().unwrap();
            });
            let deadline = Wait::Until(Instant::now() + LONG);
            let (_guard, outcome) = f.condvar.wait_with(guard, deadline, Some(&peer)).unwrap();
            // Nobody notifies: only the peer's death (or the 30 s deadline) ends the wait.
            assert_eq!(outcome, WaitOutcome::PeerGone);
        });
    }

    struct Fixture {
        mutex: RobustMutex,
        condvar: Condvar,
        shared: Shared,
    }

    impl Fixture {
        fn new() -> Fixture {
            let shared = Shared::new(Arc::new(HeapSegment::new(4096, "condvar-test")));
            RobustMutex::init_at(&shared, 0).unwrap();
            Condvar::init_at(&shared, 64).unwrap();
            Fixture {
                mutex: RobustMutex::at(&shared, 0).unwrap(),
                condvar: Condvar::at(&shared, 64).unwrap(),
                shared,
            }
        }

        /// Application words, protected by the mutex.
        fn word(&self, i: usize) -> &AtomicU64 {
            self.shared.u64_at(128 + 8 * i).unwrap()
        }

        /// Spins (yielding, bounded) until a thread has announced, under the mutex, that it is
        /// about to wait: once we hold the mutex after that, it has read the sequence and
        /// released the mutex inside `wait`, so a notify cannot be missed.
        fn until_waiting(&self, waiters: u64) {
            let deadline = Instant::now() + LONG;
            loop {
                let g = self.mutex.lock().unwrap();
                if self.word(1).load(Ordering::Relaxed) >= waiters {
                    drop(g);
                    return;
                }
                drop(g);
                assert!(Instant::now() < deadline, "waiters never got ready");
                std::thread::yield_now();
            }
        }
    }

    #[test]
    fn handles_are_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Condvar>();
    }

    #[test]
    fn notify_all_wakes_waiting_threads() {
        let f = Fixture::new();
        std::thread::scope(|s| {
            let waiters: Vec<_> = (0..3)
                .map(|_| {
                    s.spawn(|| {
                        let g = f.mutex.lock().unwrap();
                        f.word(1).fetch_add(1, Ordering::Relaxed);
                        let (g, timed_out) = f
                            .condvar
                            .wait_timeout_while(g, LONG, || f.word(0).load(Ordering::Relaxed) == 0)
                            .unwrap();
                        drop(g);
                        timed_out
                    })
                })
                .collect();
            f.until_waiting(3);
            let g = f.mutex.lock().unwrap();
            f.word(0).store(1, Ordering::Relaxed);
            drop(g);
            f.condvar.notify_all();
            for w in waiters {
                assert!(!w.join().unwrap(), "a waiter timed out");
            }
        });
    }

    #[test]
    fn notify_one_wakes_a_plain_wait() {
        let f = Fixture::new();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let mut g = f.mutex.lock().unwrap();
                f.word(1).store(1, Ordering::Relaxed);
                while f.word(0).load(Ordering::Relaxed) == 0 {
                    g = f.condvar.wait(g).unwrap();
                }
                drop(g);
            });
            f.until_waiting(1);
            let g = f.mutex.lock().unwrap();
            f.word(0).store(1, Ordering::Relaxed);
            // Notifying while holding the mutex works too.
            f.condvar.notify_one();
            drop(g);
            waiter.join().unwrap();
        });
    }

    #[test]
    fn wait_while_returns_when_the_condition_is_false() {
        let f = Fixture::new();
        let g = f.mutex.lock().unwrap();
        let g = f.condvar.wait_while(g, || false).unwrap();
        drop(g);
    }

    #[test]
    fn wait_timeout_times_out_and_relocks() {
        let f = Fixture::new();
        let g = f.mutex.lock().unwrap();
        let start = Instant::now();
        let limit = Duration::from_millis(50);
        let (g, timed_out) = f.condvar.wait_timeout(g, limit).unwrap();
        assert!(timed_out);
        assert!(start.elapsed() >= limit);
        // Still held.
        std::thread::scope(|s| {
            s.spawn(|| assert!(matches!(f.mutex.try_lock(), Err(LockError::WouldBlock))));
        });
        let (g, timed_out) = f.condvar.wait_timeout_while(g, limit, || true).unwrap();
        assert!(timed_out);
        drop(g);
    }

    #[test]
    fn past_deadline_returns_at_once_holding_the_lock() {
        let f = Fixture::new();
        let g = f.mutex.lock().unwrap();
        let past = Instant::now() - Duration::from_millis(1);
        let (g, timed_out) = f.condvar.wait_until(g, Some(past)).unwrap();
        assert!(timed_out);
        drop(g);
    }

    #[test]
    fn notify_without_waiters_wakes_nobody() {
        let f = Fixture::new();
        assert_eq!(f.condvar.notify_one(), 0);
        assert_eq!(f.condvar.notify_all(), 0);
    }

    #[test]
    fn owner_died_while_waiting_is_passed_through() {
        let f = Fixture::new();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let g = f.mutex.lock().unwrap();
                f.word(1).store(1, Ordering::Relaxed);
                match f
                    .condvar
                    .wait_timeout_while(g, LONG, || f.word(0).load(Ordering::Relaxed) == 0)
                {
                    Err(LockError::OwnerDied(r)) => {
                        drop(r.mark_consistent());
                        true
                    }
                    Ok(_) => false,
                    Err(e) => panic!("{e}"),
                }
            });
            f.until_waiting(1);
            // A thread changes the state, notifies and dies holding the lock.
            s.spawn(|| {
                let g = f.mutex.lock().unwrap();
                f.word(0).store(1, Ordering::Relaxed);
                f.condvar.notify_all();
                std::mem::forget(g);
            })
            .join()
            .unwrap();
            assert!(waiter.join().unwrap(), "the waiter did not see OwnerDied");
        });
        drop(f.mutex.lock().unwrap());
    }

    #[test]
    fn regions_are_checked() {
        let shared = Shared::new(Arc::new(HeapSegment::new(4096, "condvar-test")));
        assert!(matches!(
            Condvar::at(&shared, 0),
            Err(Error::Corrupted { .. })
        ));
        for offset in [4, 4096 - 32, 4096, usize::MAX - 3] {
            assert!(matches!(
                Condvar::init_at(&shared, offset),
                Err(Error::Incompatible { .. })
            ));
            assert!(matches!(
                Condvar::at(&shared, offset),
                Err(Error::Corrupted { .. })
            ));
        }
        Condvar::init_at(&shared, 0).unwrap();
        assert!(matches!(
            Condvar::init_at(&shared, 0),
            Err(Error::Incompatible { .. })
        ));
        Condvar::at(&shared, 0).unwrap();
    }
}
