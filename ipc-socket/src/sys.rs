//! The calls of sockets that hand back a raw descriptor, each behind a safe function.
//!
//! # Safety
//!
//! A descriptor the kernel just returned (`accept4`) is owned by nobody else; one named by a
//! transport string (`socketpair:fd=N`) is checked open and recorded as adopted by the caller
//! before it is owned. Buffers are passed as exactly-sized locals.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

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

/// What a descriptor named by a transport string is, looked at without taking it.
pub struct FdFacts {
    /// `SO_TYPE`, if it is a socket (`SOCK_SEQPACKET`, ...).
    pub socket_type: Option<libc::c_int>,
    /// Device and inode: which socket it is (a descriptor number is reused once closed).
    pub identity: (u64, u64),
}

/// `fstat` and `getsockopt(SO_TYPE)` of descriptor `fd`; `EBADF` if it is not open.
pub fn inspect_fd(fd: RawFd) -> io::Result<FdFacts> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is a writable `stat` buffer; the kernel validates `fd` (EBADF if closed).
    if unsafe { libc::fstat(fd, st.as_mut_ptr()) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fstat` succeeded, so it filled `st`.
    let st = unsafe { st.assume_init() };
    let mut socket_type: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    let is_socket = st.st_mode & libc::S_IFMT == libc::S_IFSOCK;
    // SAFETY: `socket_type` is a writable int and `len` says so; `fd` was open just above (a
    // closed one fails with EBADF, which is handled like any error).
    let ok = is_socket
        && unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_TYPE,
                (&raw mut socket_type).cast(),
                &mut len,
            )
        } == 0;
    Ok(FdFacts {
        socket_type: ok.then_some(socket_type),
        identity: (st.st_dev, st.st_ino),
    })
}

/// Takes ownership of descriptor `fd`, inherited from the parent as the transport string said.
///
/// The caller has checked that `fd` is open (with [`inspect_fd`]) and records adopted numbers so
/// that one number is adopted once.
pub fn adopt(fd: RawFd) -> OwnedFd {
    // SAFETY:
    // - the descriptor is open (checked by the caller just before);
    // - the transport string `socketpair:fd=N` hands descriptor N to the transport that opens
    //   it, and the caller refuses a second adoption of the same number, so nothing else in
    //   this process owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}
