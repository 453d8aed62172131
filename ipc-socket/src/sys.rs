//! The call of sockets that hands back a raw descriptor, behind a safe function.
//!
//! # Safety
//!
//! A descriptor the kernel just returned (`accept4`) is owned by nobody else. (Descriptors
//! named by a transport string, `socketpair:fd=N`, are adopted by `ipc_pipe::raw`.)
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `accept4(listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)`, retrying `EINTR`. The new
/// connection is non-blocking: every call on it picks its own wait with `MSG_DONTWAIT` and
/// `poll`. `EAGAIN` when nobody is waiting to connect.
pub fn accept(listener: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    loop {
        // SAFETY: `listener` is borrowed, so open for the call; null address pointers are
        // allowed and make the kernel write no address.
        let fd = unsafe {
            libc::accept4(
                listener.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            )
        };
        if fd >= 0 {
            // SAFETY: the kernel just created `fd` for this call; nothing else owns it.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}
