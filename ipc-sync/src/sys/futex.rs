//! `futex(2)` on a 32-bit word in shared memory.
//!
//! The word is in memory mapped by several processes, so the calls are the shared (not
//! `FUTEX_PRIVATE_FLAG`) forms: the kernel keys the waiter by the backing object and offset,
//! which is the same in every process whatever address it is mapped at.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::io::Errno;
use rustix::thread::futex;

/// How a [`wait`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Woke {
    /// Woken by [`wake`], or spuriously: re-check the condition.
    Woken,
    /// The word did not hold the expected value when the kernel looked.
    Changed,
    /// The relative timeout passed.
    TimedOut,
    /// A signal interrupted the wait: re-check and wait again with the remaining time.
    Interrupted,
}

/// Sleeps while `*word == expected`, for at most `timeout` (`None`: no limit).
pub fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> Woke {
    let ts = timeout.map(|d| futex::Timespec {
        // Saturates: a wait of ~292 billion years is no limit either.
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: d.subsec_nanos().into(),
    });
    // `Flags::empty()`: the shared form (see the module comment). FUTEX_WAIT's timeout is
    // relative, on CLOCK_MONOTONIC.
    match futex::wait(word, futex::Flags::empty(), expected, ts.as_ref()) {
        Ok(()) => Woke::Woken,
        Err(Errno::AGAIN) => Woke::Changed,
        Err(Errno::TIMEDOUT) => Woke::TimedOut,
        Err(Errno::INTR) => Woke::Interrupted,
        // EFAULT/EINVAL cannot happen for a valid aligned word; treat anything else as a
        // spurious wake-up, which every caller must tolerate anyway.
        Err(_) => Woke::Woken,
    }
}

/// Wakes up to `count` waiters on `word`; returns how many were woken.
pub fn wake(word: &AtomicU32, count: u32) -> usize {
    // The kernel reads the count as a signed int: more than `i32::MAX` would be negative.
    let count = count.min(i32::MAX as u32);
    // An error (none is possible for a valid word) woke nobody.
    futex::wake(word, futex::Flags::empty(), count).unwrap_or(0)
}

/// Wakes every waiter on `word`.
pub fn wake_all(word: &AtomicU32) -> usize {
    wake(word, i32::MAX as u32)
}
