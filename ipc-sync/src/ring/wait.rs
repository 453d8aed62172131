//! Waiting for the peer: busy-polling, spinning then parking, or parking, on a futex word in
//! the segment.
//!
//! The parking protocol: the waiter stores 1 in its word, issues a full fence, polls once more,
//! then sleeps in `futex_wait(word, 1)`. The other side publishes its progress, issues a full
//! fence and only then loads the word: if it reads 1 it resets it and makes the wake-up call.
//! Either the waiter's last poll sees the progress, or the publisher sees the 1, so no wake-up
//! is lost, and while the waiter is awake the publisher makes no system call at all.
//!
//! The publisher's fence is the expensive part of a message (it drains the store buffer, with
//! the payload's cache lines still owned by the peer). A busy-polling endpoint never parks, so
//! each side advertises in the control block whether it may park, and the other side skips the
//! fence and the check when it cannot. An endpoint attaching while its peer is mid-message may
//! be missed once: its first park then lasts one slice (25 ms) at most.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ipc_core::{Error, Result, Wait};

use super::WaitStrategy;
use crate::sys::futex;

/// How long a spinning endpoint polls before it parks: the figure of every transport (a ring's
/// round trip is well under a microsecond, a futex wake-up ~10 µs).
pub use ipc_core::SPIN_FOR;

/// Longest single sleep: a parked endpoint wakes at least this often to check its peer's
/// liveness, which bounds how late a dead peer is noticed.
pub const PARK_SLICE: Duration = Duration::from_millis(25);

/// Polls between two reads of the clock while spinning.
pub const POLLS_PER_CLOCK: u32 = 64;

/// A wait word's value while its endpoint sleeps in `futex_wait`.
pub const PARKED: u32 = 1;
/// A wait word's value while its endpoint's event loop waits on its doorbell (see
/// [`super::bell`]).
pub const BELL: u32 = 2;

/// After publishing progress: whether an endpoint may be waiting (`may_park` non-zero), and if
/// so, the fence that orders the progress before the look at its wait word. A peer that never
/// waits costs one load of a line nobody writes.
#[inline]
pub fn may_wait(may_park: &AtomicU32) -> bool {
    if may_park.load(Ordering::Relaxed) == 0 {
        return false;
    }
    std::sync::atomic::fence(Ordering::SeqCst);
    true
}

/// After [`may_wait`]: wakes the endpoint waiting on `word`, if one does: a parked one with
/// `FUTEX_WAKE`, one waiting on its doorbell with `ring`. A waiter that is awake costs one
/// load.
#[inline]
pub fn wake_waiter(word: &AtomicU32, ring: impl FnOnce()) {
    let waiting = word.load(Ordering::Relaxed);
    if waiting != 0 {
        // Cleared before the wake-up, so that a waiter arming again after it is woken again.
        word.store(0, Ordering::Relaxed);
        if waiting != BELL {
            futex::wake_all(word);
        }
        if waiting & BELL != 0 {
            ring();
        }
    }
}

/// Waits until `poll` yields a value. `poll(force)` returns `Ok(None)` to keep waiting and
/// `Err` to stop; `force` asks it to check the peer's liveness now rather than at its usual
/// rate (after a park slice ran out). `not_ready` is returned for [`Wait::Never`], and for a
/// deadline turned into [`Error::Timeout`].
#[inline]
pub fn wait_for<T>(
    strategy: WaitStrategy,
    wait: Wait,
    word: &AtomicU32,
    not_ready: fn() -> Error,
    mut poll: impl FnMut(bool) -> Result<Option<T>>,
) -> Result<T> {
    if let Some(t) = poll(false)? {
        return Ok(t);
    }
    let deadline = match wait {
        Wait::Never => return Err(not_ready()),
        Wait::Forever => None,
        Wait::Until(at) => Some(at),
    };
    let spin_until = match strategy {
        WaitStrategy::Busy => None,
        WaitStrategy::Spin => Some(Instant::now() + SPIN_FOR),
        // Parks at once: no CPU spent polling, a futex round trip per wake-up.
        WaitStrategy::Park => Some(Instant::now()),
    };
    if strategy != WaitStrategy::Park {
        if let Some(t) = spin(&mut poll, spin_until, deadline)? {
            return Ok(t);
        }
    }
    // Park phase.
    loop {
        word.store(PARKED, Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::SeqCst);
        if let Some(t) = poll(false)? {
            word.store(0, Ordering::Relaxed);
            return Ok(t);
        }
        let now = Instant::now();
        let slice = match deadline {
            Some(d) if d <= now => {
                word.store(0, Ordering::Relaxed);
                return poll(true)?.ok_or_else(timeout);
            }
            Some(d) => (d - now).min(PARK_SLICE),
            None => PARK_SLICE,
        };
        let woke = futex::wait(word, PARKED, Some(slice));
        if let Some(t) = poll(woke == futex::Woke::TimedOut)? {
            word.store(0, Ordering::Relaxed);
            return Ok(t);
        }
    }
}

/// Polls until a value comes, `until` passes (`Ok(None)`), or the deadline passes
/// ([`Error::Timeout`]).
#[inline]
fn spin<T>(
    poll: &mut impl FnMut(bool) -> Result<Option<T>>,
    until: Option<Instant>,
    deadline: Option<Instant>,
) -> Result<Option<T>> {
    loop {
        for _ in 0..POLLS_PER_CLOCK {
            std::hint::spin_loop();
            if let Some(t) = poll(false)? {
                return Ok(Some(t));
            }
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return poll(true)?.ok_or_else(timeout).map(Some);
        }
        if until.is_some_and(|s| now >= s) {
            return Ok(None);
        }
    }
}

fn timeout() -> Error {
    Error::Timeout
}
