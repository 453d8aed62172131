//! The system calls of pipes that `nix` does not wrap safely, each behind a safe function.
//!
//! # Safety
//!
//! Every function here takes descriptors as `BorrowedFd` (so they are open for the call) and
//! buffers as slices (so pointer and length agree); the `unsafe` blocks only forward those to
//! the kernel.
#![allow(unsafe_code)]

use std::io::{self, IoSlice};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

/// `RWF_NOSIGNAL` (Linux 6.18): a write to a pipe without readers fails with `EPIPE` and raises
/// no `SIGPIPE`. Not yet in the `libc` crate.
const RWF_NOSIGNAL: libc::c_int = 0x100;

/// Cleared the first time the kernel rejects `RWF_NOSIGNAL` (older than 6.18).
static NOSIGNAL_SUPPORTED: AtomicBool = AtomicBool::new(true);

fn check(ret: isize) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// `pwritev2(fd, bufs, -1, flags | RWF_NOSIGNAL)`: one write at the current position that
/// never raises `SIGPIPE`, whatever the process's disposition (the library may live in a C
/// host that keeps the default, which kills). `nowait` adds `RWF_NOWAIT`: fail with `EAGAIN`
/// instead of waiting for room. `EINTR` is returned to the caller.
pub fn write_no_sigpipe(
    fd: BorrowedFd<'_>,
    bufs: &[IoSlice<'_>],
    nowait: bool,
) -> io::Result<usize> {
    let flags = if nowait { libc::RWF_NOWAIT } else { 0 };
    if NOSIGNAL_SUPPORTED.load(Ordering::Relaxed) {
        match pwritev2(fd, bufs, flags | RWF_NOSIGNAL) {
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                // Either flag may be the one refused (FIFOs refuse RWF_NOWAIT): without
                // RWF_NOSIGNAL, a different answer tells that it was RWF_NOSIGNAL.
                let result = write_masking_sigpipe(fd, bufs, flags);
                if !matches!(&result, Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP)) {
                    NOSIGNAL_SUPPORTED.store(false, Ordering::Relaxed);
                }
                return result;
            }
            result => return result,
        }
    }
    write_masking_sigpipe(fd, bufs, flags)
}

/// Whether this process ignores `SIGPIPE` now (`SIG_IGN`), so that a plain `write(2)` to a
/// pipe without readers fails with `EPIPE` and kills nothing. Rust programs ignore it from
/// the start; a C host may not.
pub fn sigpipe_ignored() -> bool {
    let mut current = std::mem::MaybeUninit::<libc::sigaction>::uninit();
    // SAFETY: with a null new action, `sigaction` only fills `current` (a writable
    // `struct sigaction`), which is read only after it succeeded.
    unsafe {
        libc::sigaction(libc::SIGPIPE, std::ptr::null(), current.as_mut_ptr()) == 0
            && current.assume_init().sa_sigaction == libc::SIG_IGN
    }
}

/// `O_NONBLOCK` on or off, for descriptors whose open file is this process's alone.
pub fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> io::Result<()> {
    set_status_flag(fd, nix::fcntl::OFlag::O_NONBLOCK, on)
}

/// Puts the open file of a pipe's writing end in packet mode (`O_DIRECT`, `pipe(7)`): each write
/// of up to `PIPE_BUF` bytes becomes a packet that a read takes alone.
pub fn set_packet_mode(fd: BorrowedFd<'_>) -> io::Result<()> {
    set_status_flag(fd, nix::fcntl::OFlag::O_DIRECT, true)
}

/// Sets or clears `flag` among the open file's status flags, keeping the others.
fn set_status_flag(fd: BorrowedFd<'_>, flag: nix::fcntl::OFlag, on: bool) -> io::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let mut flags =
        OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).map_err(io::Error::from)?);
    flags.set(flag, on);
    fcntl(fd, FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
    Ok(())
}

fn pwritev2(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>], flags: libc::c_int) -> io::Result<usize> {
    let count = bufs.len().min(libc::UIO_MAXIOV as usize) as libc::c_int;
    // SAFETY:
    // - `IoSlice` is ABI-compatible with `struct iovec`, and `bufs` holds `count` of them,
    //   each pointing to a live byte slice;
    // - `fd` is borrowed, so open for the duration of the call;
    // - offset -1 means "current position", as required for pipes.
    let ret = unsafe {
        libc::pwritev2(
            fd.as_raw_fd(),
            bufs.as_ptr().cast::<libc::iovec>(),
            count,
            -1,
            flags,
        )
    };
    check(ret)
}

/// The fallback for kernels without `RWF_NOSIGNAL`: block `SIGPIPE` in this thread around the
/// write, and consume the one the write raised, so it is never delivered.
#[doc(hidden)]
pub fn write_masking_sigpipe(
    fd: BorrowedFd<'_>,
    bufs: &[IoSlice<'_>],
    flags: libc::c_int,
) -> io::Result<usize> {
    use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
    let pipe_only = SigSet::from(Signal::SIGPIPE);
    let mut previous = SigSet::empty();
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&pipe_only), Some(&mut previous))
        .map_err(io::Error::from)?;
    // A SIGPIPE already pending for another reason must stay pending.
    let was_pending = sigpipe_pending();
    let result = pwritev2(fd, bufs, flags);
    if matches!(&result, Err(e) if e.raw_os_error() == Some(libc::EPIPE)) && !was_pending {
        consume_pending_sigpipe();
    }
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&previous), None);
    result
}

fn sigpipe_pending() -> bool {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: `sigpending` fills `set` (a writable sigset_t); `sigismember` reads it only
    // after that succeeded.
    unsafe {
        libc::sigpending(set.as_mut_ptr()) == 0
            && libc::sigismember(set.as_ptr(), libc::SIGPIPE) == 1
    }
}

fn consume_pending_sigpipe() {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY:
    // - `sigemptyset` initialises `set` before `sigaddset` and `sigtimedwait` read it;
    // - `zero` is a valid timespec, so `sigtimedwait` returns at once; a null `siginfo_t`
    //   pointer is allowed.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), libc::SIGPIPE);
        libc::sigtimedwait(set.as_ptr(), std::ptr::null_mut(), &zero);
    }
}

/// `read(2)`, or with `nowait` `preadv2(RWF_NOWAIT)`: `EAGAIN` instead of waiting, decided
/// per call, so the descriptor's `O_NONBLOCK` (shared with every process holding the same open
/// file) is never touched. `EINTR` is returned to the caller.
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8], nowait: bool) -> io::Result<usize> {
    if !nowait {
        // Plain read(2): the vectored call costs ~0.3 us more per message (measured).
        // SAFETY: `buf` is writable for `buf.len()` bytes and outlives the call; `fd` is open.
        let ret = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        return check(ret);
    }
    let iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let flags = if nowait { libc::RWF_NOWAIT } else { 0 };
    // SAFETY:
    // - `iov` describes exactly `buf`, which is writable and outlives the call;
    // - `fd` is borrowed, so open; offset -1 means "current position".
    let ret = unsafe { libc::preadv2(fd.as_raw_fd(), &iov, 1, -1, flags) };
    check(ret)
}

/// `F_SETPIPE_SZ`; returns the size the kernel chose (rounded up to a power of two pages).
pub fn set_pipe_size(fd: BorrowedFd<'_>, bytes: usize) -> io::Result<usize> {
    let bytes =
        libc::c_int::try_from(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `F_SETPIPE_SZ` takes an int argument and touches no memory of ours.
    let ret = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, bytes) };
    check(ret as isize)
}

/// `F_GETPIPE_SZ`.
pub fn pipe_size(fd: BorrowedFd<'_>) -> io::Result<usize> {
    // SAFETY: `F_GETPIPE_SZ` takes no argument and touches no memory of ours.
    let ret = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETPIPE_SZ) };
    check(ret as isize)
}

/// Arranges for `fd` to survive `exec` in the child `cmd` spawns, and only there: the parent's
/// descriptor keeps `FD_CLOEXEC`, so other children spawned concurrently do not inherit it.
pub fn clear_cloexec_in_child(cmd: &mut Command, fd: RawFd) {
    let clear = move || {
        // SAFETY: `fcntl(F_SETFD)` is async-signal-safe and takes an int argument. If the
        // parent closed `fd` before spawning, this fails with EBADF and spawn reports it.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, 0) } == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    };
    // SAFETY: the closure runs between fork and exec and only calls `fcntl`, which is
    // async-signal-safe; it allocates nothing and takes no locks.
    unsafe {
        cmd.pre_exec(clear);
    }
}

/// Takes ownership of descriptor `fd`, inherited from the parent as the transport string said.
///
/// The caller has checked that `fd` is open (with [`with_inherited`]) and what it is, and
/// records adopted numbers so that one number is adopted once.
pub fn adopt(fd: RawFd) -> OwnedFd {
    // SAFETY:
    // - the descriptor is open (checked by the caller with `with_inherited` just before);
    // - the transport string (`pipe:fd=N`, `socketpair:fd=N`) hands descriptor N to the
    //   transport that opens it, and the caller refuses a second adoption of the same number,
    //   so nothing else in this process owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Runs `f` on descriptor `fd`, inherited from the parent as a transport string said, without
/// taking it; `EBADF` if it is not open.
pub fn with_inherited<T>(fd: RawFd, f: impl FnOnce(BorrowedFd<'_>) -> T) -> io::Result<T> {
    // SAFETY: `F_GETFD` takes no argument and touches no memory of ours; the kernel validates
    // `fd` (EBADF if closed).
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor is open (checked just above), and the transport string hands it
    // to the transport that opens it, so nothing else in this process owns it and closes it
    // while `f` runs; the borrow does not outlive `f`.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    Ok(f(borrowed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::process::Command;

    /// Runs `test` (this very test, by name) in a child process whose `SIGPIPE` disposition is
    /// the default, which kills on a write to a closed pipe; the child must exit normally.
    fn in_child_with_default_sigpipe(name: &str, body: impl FnOnce()) {
        const CHILD: &str = "IPC_PIPE_SIGPIPE_CHILD";
        if std::env::var_os(CHILD).is_some() {
            // SAFETY: restoring the default disposition is what a C host has; no handler runs.
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            }
            body();
            return;
        }
        let status = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", name, "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .status()
            .unwrap();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), None, "child killed by a signal: {status}");
        assert!(status.success(), "{status}");
    }

    fn closed_pipe_write_end() -> OwnedFd {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        drop(read);
        write
    }

    #[test]
    fn nosignal_write_to_closed_pipe_is_epipe_not_death() {
        in_child_with_default_sigpipe(
            "sys::tests::nosignal_write_to_closed_pipe_is_epipe_not_death",
            || {
                let fd = closed_pipe_write_end();
                let err = write_no_sigpipe(fd.as_fd(), &[IoSlice::new(b"x")], false).unwrap_err();
                assert_eq!(err.raw_os_error(), Some(libc::EPIPE));
            },
        );
    }

    #[test]
    fn masking_fallback_consumes_the_signal() {
        in_child_with_default_sigpipe("sys::tests::masking_fallback_consumes_the_signal", || {
            let fd = closed_pipe_write_end();
            let err = write_masking_sigpipe(fd.as_fd(), &[IoSlice::new(b"x")], 0).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EPIPE));
            // The mask is restored: a SIGPIPE left pending would kill us now.
            assert!(!sigpipe_pending());
        });
    }

    /// The choice of write call follows the disposition: Rust programs (this test harness)
    /// ignore `SIGPIPE`; a C host keeps the default. Both get `Disconnected`, neither dies.
    #[test]
    fn a_send_to_a_closed_pipe_is_disconnected_whatever_the_disposition() {
        use ipc_core::{Error, Framing, Sender};
        let send_to_closed = || {
            let mut tx =
                crate::StreamSender::new(closed_pipe_write_end(), 64, Framing::Frames).unwrap();
            assert!(matches!(tx.send(b"x"), Err(Error::Disconnected)));
            let batch: [&[u8]; 2] = [b"y", b"z"];
            assert!(matches!(
                tx.send_batch(&batch, ipc_core::Wait::Forever),
                Err(Error::Disconnected)
            ));
        };
        assert!(sigpipe_ignored(), "the Rust runtime ignores SIGPIPE");
        send_to_closed();
        in_child_with_default_sigpipe(
            "sys::tests::a_send_to_a_closed_pipe_is_disconnected_whatever_the_disposition",
            || {
                assert!(!sigpipe_ignored());
                send_to_closed();
            },
        );
    }
}
