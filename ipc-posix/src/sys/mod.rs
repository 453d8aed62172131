//! Every `unsafe` call of the crate, one file per POSIX object kind, each behind safe
//! functions that take validated names and borrowed descriptors.
//!
//! # Safety
//!
//! Names come in as [`PosixName`](crate::PosixName) (NUL-terminated, validated), descriptors as
//! `BorrowedFd` or owned handles (open for the call), buffers as slices (pointer and length
//! agree). The `unsafe` blocks only forward these to the C library.
#![allow(unsafe_code)]

pub mod mq;
pub mod sem;
pub mod shm;

/// `poll(2)` on one descriptor for `POLLIN` (`readable`) or `POLLOUT`, at most `within`
/// (retrying `EINTR` with the time left): whether it became ready (or reported an error or a
/// hang-up). For tests of readiness.
#[cfg(test)]
pub fn poll_one(
    fd: std::os::fd::BorrowedFd<'_>,
    readable: bool,
    within: std::time::Duration,
) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    let deadline = std::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: if readable {
                libc::POLLIN
            } else {
                libc::POLLOUT
            },
            revents: 0,
        };
        let ms = left.as_nanos().div_ceil(1_000_000).min(60_000) as libc::c_int;
        // SAFETY: `pfd` is one valid, writable pollfd for the call, and `fd` is borrowed, so
        // open while it is polled.
        match unsafe { libc::poll(&mut pfd, 1, ms) } {
            -1 => {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EINTR) {
                    return Err(e);
                }
            }
            0 if left.is_zero() => return Ok(false),
            0 => {}
            _ => return Ok(true),
        }
    }
}
