//! `futex(2)` on a 32-bit word in shared memory.
//!
//! The word is in memory mapped by several processes, so the calls are the shared (not
//! `FUTEX_PRIVATE_FLAG`) forms: the kernel keys the waiter by the backing object and offset,
//! which is the same in every process whatever address it is mapped at.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

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
    let ts = timeout.map(|d| libc::timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, aligned 32-bit atomic for the call (a reference); the kernel
    // only reads it. `ts_ptr` is null or points to `ts`, alive for the call. FUTEX_WAIT takes a
    // relative CLOCK_MONOTONIC timeout and ignores the last two arguments.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            ts_ptr,
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    if rc == 0 {
        return Woke::Woken;
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::EAGAIN) => Woke::Changed,
        Some(libc::ETIMEDOUT) => Woke::TimedOut,
        Some(libc::EINTR) => Woke::Interrupted,
        // EFAULT/EINVAL cannot happen for a valid aligned word; treat anything else as a
        // spurious wake-up, which every caller must tolerate anyway.
        _ => Woke::Woken,
    }
}

/// Wakes up to `count` waiters on `word`; returns how many were woken.
pub fn wake(word: &AtomicU32, count: u32) -> usize {
    let count = count.min(i32::MAX as u32) as i32;
    // SAFETY: `word` is a live, aligned 32-bit atomic (a reference); FUTEX_WAKE does not access
    // it beyond hashing its address and ignores the remaining arguments.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            count,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    rc.max(0) as usize
}

/// Wakes every waiter on `word`.
pub fn wake_all(word: &AtomicU32) -> usize {
    wake(word, i32::MAX as u32)
}
