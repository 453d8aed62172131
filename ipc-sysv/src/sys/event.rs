//! Descriptors that stand in for the readiness System V queues lack: an `eventfd(2)` a helper
//! thread signals, a `timerfd_create(2)` timer, `poll(2)` on one descriptor, and the signal
//! mask of a helper thread.
//!
//! The descriptors are returned as `File`s (the `OwnedFd` wrapped at once), so that reading
//! and writing their 8-byte counters needs no further `unsafe`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd};
use std::time::Duration;

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)`: readable while its counter is not zero.
pub fn eventfd() -> io::Result<File> {
    // SAFETY: eventfd takes plain integers and touches no memory of ours.
    let fd = check(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
    // SAFETY: `fd` was just returned by eventfd, is open, and nothing else owns it.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// `timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)`: readable once it expired.
pub fn timerfd() -> io::Result<File> {
    // SAFETY: timerfd_create takes plain integers and touches no memory of ours.
    let fd = check(unsafe {
        libc::timerfd_create(
            libc::CLOCK_MONOTONIC,
            libc::TFD_CLOEXEC | libc::TFD_NONBLOCK,
        )
    })?;
    // SAFETY: `fd` was just returned by timerfd_create, is open, and nothing else owns it.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// `timerfd_settime`: expires once, `after` from now (at least 1 ns: zero would disarm it).
/// Replaces any earlier setting.
pub fn arm_timer(timer: &File, after: Duration) -> io::Result<()> {
    let after = after.max(Duration::from_nanos(1));
    let spec = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: libc::timespec {
            tv_sec: after.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: after.subsec_nanos() as libc::c_long,
        },
    };
    // SAFETY: `timer` is an open timerfd (a borrowed File); `spec` is a valid itimerspec read
    // during the call; a null old value is allowed.
    check(unsafe { libc::timerfd_settime(timer.as_raw_fd(), 0, &spec, std::ptr::null_mut()) })
        .map(drop)
}

/// Adds 1 to an eventfd's counter, making it readable.
pub fn signal(event: &File) -> io::Result<()> {
    (&*event).write_all(&1u64.to_ne_bytes())
}

/// Reads (and so resets) the counter of an eventfd or timerfd; `Ok(false)` if it was zero.
pub fn consume(fd: &File) -> io::Result<bool> {
    let mut counter = [0u8; 8];
    match (&*fd).read(&mut counter) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(e),
    }
}

/// `poll(2)` on `fd` for `POLLIN`, at most `timeout` (`None`: no limit), once: whether it
/// became ready (or reported an error or hang-up). `EINTR` is `Ok(false)`; the caller checks
/// its deadline and calls again.
pub fn poll_readable(fd: BorrowedFd<'_>, timeout: Option<Duration>) -> io::Result<bool> {
    let ms = match timeout {
        None => -1,
        // Rounded up, so that a wait never ends before the caller's deadline.
        Some(t) => t.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as libc::c_int,
    };
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pfd` is one valid, writable pollfd for the call; `fd` is borrowed, so open.
    match unsafe { libc::poll(&mut pfd, 1, ms) } {
        -1 => {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                Ok(false)
            } else {
                Err(e)
            }
        }
        n => Ok(n > 0),
    }
}

/// Blocks every signal in the calling thread, so that a helper thread that sleeps in the
/// kernel never takes a signal meant for the process's own threads.
pub fn block_all_signals() -> io::Result<()> {
    let mut all = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: `sigfillset` initialises `all` before `pthread_sigmask` reads it; a null old
    // set is allowed.
    let ret = unsafe {
        libc::sigfillset(all.as_mut_ptr());
        libc::pthread_sigmask(libc::SIG_BLOCK, all.as_ptr(), std::ptr::null_mut())
    };
    if ret != 0 {
        return Err(io::Error::from_raw_os_error(ret));
    }
    Ok(())
}
