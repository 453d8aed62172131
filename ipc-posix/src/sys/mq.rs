//! POSIX message queues (`mq_overview(7)`). On Linux a queue descriptor is a file descriptor,
//! so it is held as an `OwnedFd` and closed with it.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `mq_open(name, oflag | O_CLOEXEC, mode, attr)`. `O_CLOEXEC` must be passed explicitly:
/// unlike `shm_open`, `mq_open` does not set it.
pub fn open(
    name: &CStr,
    oflag: libc::c_int,
    mode: libc::mode_t,
    attr: Option<(i64, i64)>,
) -> io::Result<OwnedFd> {
    // SAFETY: a zeroed `mq_attr` is a valid value (all integers).
    let mut raw: libc::mq_attr = unsafe { std::mem::zeroed() };
    let attr_ptr = match attr {
        Some((maxmsg, msgsize)) => {
            raw.mq_maxmsg = maxmsg;
            raw.mq_msgsize = msgsize;
            &mut raw as *mut libc::mq_attr
        }
        None => std::ptr::null_mut(),
    };
    // SAFETY:
    // - `name` is NUL-terminated (a `CStr`);
    // - `attr_ptr` is null or points to `raw`, alive for the call; `mq_open` reads it only with
    //   `O_CREAT`, and takes the variadic mode and attribute arguments in this order.
    let fd = unsafe { libc::mq_open(name.as_ptr(), oflag | libc::O_CLOEXEC, mode, attr_ptr) };
    if fd == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `mq_open` just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `mq_unlink(name)`.
pub fn unlink(name: &CStr) -> io::Result<()> {
    // SAFETY: `name` is NUL-terminated.
    if unsafe { libc::mq_unlink(name.as_ptr()) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `mq_getattr`: `(mq_maxmsg, mq_msgsize, mq_curmsgs)`.
pub fn getattr(fd: BorrowedFd<'_>) -> io::Result<(i64, i64, i64)> {
    // SAFETY: a zeroed `mq_attr` is a valid value.
    let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is an open queue descriptor (borrowed); `attr` is writable.
    if unsafe { libc::mq_getattr(fd.as_raw_fd(), &mut attr) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok((attr.mq_maxmsg, attr.mq_msgsize, attr.mq_curmsgs))
}

/// `mq_timedsend(fd, msg, prio, deadline)`: `deadline` is absolute `CLOCK_REALTIME`; one in the
/// past makes the call not wait (`ETIMEDOUT` when full). `EINTR` is returned to the caller.
pub fn timedsend(
    fd: BorrowedFd<'_>,
    msg: &[u8],
    prio: u32,
    deadline: &libc::timespec,
) -> io::Result<()> {
    // SAFETY: `msg` is readable for `msg.len()` bytes; `deadline` is a valid timespec; `fd` is
    // open (borrowed).
    let ret = unsafe {
        libc::mq_timedsend(
            fd.as_raw_fd(),
            msg.as_ptr().cast(),
            msg.len(),
            prio,
            deadline,
        )
    };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `mq_timedreceive(fd, buf, &prio, deadline)`: returns `(length, priority)`. `buf` must hold
/// `mq_msgsize` bytes (else `EMSGSIZE`, and nothing is taken off the queue).
pub fn timedreceive(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    deadline: &libc::timespec,
) -> io::Result<(usize, u32)> {
    let mut prio: libc::c_uint = 0;
    // SAFETY: `buf` is writable for `buf.len()` bytes; `prio` and `deadline` are valid for the
    // call; `fd` is open (borrowed).
    let ret = unsafe {
        libc::mq_timedreceive(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut prio,
            deadline,
        )
    };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok((ret as usize, prio))
}
