//! The one call of FIFOs that `nix` does not wrap without taking ownership of the descriptor.
//!
//! # Safety
//!
//! Descriptors come in as `BorrowedFd`, so they are open for the duration of each call.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;

/// `flock(fd, LOCK_EX | LOCK_NB)` or `flock(fd, LOCK_SH | LOCK_NB)`. The lock belongs to the
/// open file and goes away when it is closed (also when the process dies).
pub fn try_flock(fd: BorrowedFd<'_>, exclusive: bool) -> Result<(), Errno> {
    let op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    } | libc::LOCK_NB;
    loop {
        // SAFETY: `flock` takes a descriptor (open: it is borrowed) and an int; no memory.
        match unsafe { libc::flock(fd.as_raw_fd(), op) } {
            0 => return Ok(()),
            _ => match Errno::last() {
                Errno::EINTR => continue,
                e => return Err(e),
            },
        }
    }
}
