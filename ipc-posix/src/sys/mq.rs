//! POSIX message queues (`mq_overview(7)`). On Linux a queue descriptor is a file descriptor,
//! held as an [`Mq`] that closes it on drop.
//!
//! nix wraps every call used here but `mq_timedsend` (nix 0.30 has only the untimed
//! `mq_send`, and a send must wake up to notice the queue's removal), which stays a libc call.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::mqueue::{MQ_OFlag, MqAttr, MqdT};
use nix::sys::stat::Mode;
use nix::sys::time::TimeSpec;

/// An open queue descriptor. nix's `MqdT` does not close itself (closing is an explicit
/// `mq_close`, which consumes it), so this does it on drop.
#[derive(Debug)]
pub struct Mq(
    /// `Some` until dropped: `mq_close` takes the descriptor by value.
    Option<MqdT>,
);

impl Mq {
    fn mqd(&self) -> &MqdT {
        self.0.as_ref().expect("an Mq is open until dropped")
    }
}

impl Drop for Mq {
    fn drop(&mut self) {
        if let Some(mqd) = self.0.take() {
            // Nothing to do about a failed close (EBADF cannot happen: we own it).
            let _ = nix::mqueue::mq_close(mqd);
        }
    }
}

impl AsFd for Mq {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.mqd().as_fd()
    }
}

/// `mq_open(name, oflag | O_CLOEXEC, mode, attr)`, `attr` being `(mq_maxmsg, mq_msgsize)`.
/// `O_CLOEXEC` must be passed explicitly: unlike `shm_open`, `mq_open` does not set it.
/// `attr` is required with `O_CREAT`: nix passes the mode only together with attributes.
pub fn open(
    name: &CStr,
    oflag: libc::c_int,
    mode: libc::mode_t,
    attr: Option<(i64, i64)>,
) -> io::Result<Mq> {
    debug_assert!(oflag & libc::O_CREAT == 0 || attr.is_some());
    let attr = attr.map(|(maxmsg, msgsize)| MqAttr::new(0, maxmsg, msgsize, 0));
    let oflag = MQ_OFlag::from_bits_retain(oflag) | MQ_OFlag::O_CLOEXEC;
    let mqd = nix::mqueue::mq_open(name, oflag, Mode::from_bits_retain(mode), attr.as_ref())?;
    Ok(Mq(Some(mqd)))
}

/// `mq_unlink(name)`.
pub fn unlink(name: &CStr) -> io::Result<()> {
    Ok(nix::mqueue::mq_unlink(name)?)
}

/// `mq_getattr`: `(mq_maxmsg, mq_msgsize, mq_curmsgs)`.
pub fn getattr(mq: &Mq) -> io::Result<(i64, i64, i64)> {
    let attr = nix::mqueue::mq_getattr(mq.mqd())?;
    Ok((attr.maxmsg(), attr.msgsize(), attr.curmsgs()))
}

/// `mq_timedsend(fd, msg, prio, deadline)`: `deadline` is absolute `CLOCK_REALTIME`; one in the
/// past makes the call not wait (`ETIMEDOUT` when full). `EINTR` is returned to the caller.
pub fn timedsend(mq: &Mq, msg: &[u8], prio: u32, deadline: &libc::timespec) -> io::Result<()> {
    // SAFETY: `msg` is readable for `msg.len()` bytes; `deadline` is a valid timespec; `mq` is
    // open (borrowed).
    let ret = unsafe {
        libc::mq_timedsend(
            mq.as_fd().as_raw_fd(),
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
    mq: &Mq,
    buf: &mut [u8],
    deadline: &libc::timespec,
) -> io::Result<(usize, u32)> {
    let mut prio = 0;
    let len = nix::mqueue::mq_timedreceive(mq.mqd(), buf, &mut prio, &TimeSpec::from(*deadline))?;
    Ok((len, prio))
}
