//! Process identity and liveness: `pidfd_open`, `poll` on a pidfd, the coarse monotonic clock.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use rustix::process::{Pid, PidfdFlags};

/// Opens a pidfd for `pid` (`pidfd_open(2)`, Linux 5.3). `ESRCH` means no such process.
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    // Pid 0 is not a process: EINVAL, as the kernel answers for it.
    let pid = Pid::from_raw(pid).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    Ok(rustix::process::pidfd_open(pid, PidfdFlags::empty())?)
}

/// Whether the process behind `pidfd` has exited (the pidfd polls readable), without waiting.
pub fn pidfd_exited(pidfd: &OwnedFd) -> bool {
    let mut pfd = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: `pfd` is one valid pollfd for the call; the descriptor is open (owned).
        let rc = unsafe { libc::poll(&mut pfd, 1, 0) };
        if rc >= 0 {
            return rc > 0 && pfd.revents & (libc::POLLIN | libc::POLLHUP) != 0;
        }
        if io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            // A pidfd that cannot be polled tells us nothing; assume alive, the caller has
            // other ways to notice (a closed endpoint marks itself).
            return false;
        }
    }
}

/// `CLOCK_MONOTONIC_COARSE` in nanoseconds: a vDSO read of a variable, cheap enough for every
/// message, with a resolution of one scheduler tick (1–4 ms). Through rustix, which calls the
/// vDSO directly rather than through libc's wrapper.
#[inline]
pub fn coarse_now_ns() -> u64 {
    let ts = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// This thread's kernel thread id (what a robust mutex records as its owner).
#[cfg(test)]
pub fn gettid() -> u32 {
    // SAFETY: `gettid` takes no arguments and cannot fail.
    unsafe { libc::gettid() as u32 }
}
