//! The baseline: fixed-size messages as plain `write(2)` / `read(2)` loops on a descriptor.
//!
//! [`FdSender`] and [`FdReceiver`] implement the same traits as our transports only so that
//! the workloads run unchanged on both; per message they make the system calls and nothing
//! else (a receiver loops because `read` may return part of a message).

use std::fs::OpenOptions;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use ipc::{Receiver, Sender, Wait};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::{read, write};

/// Writes each message with `write(2)` until all of it is written.
pub struct FdSender {
    fd: OwnedFd,
    size: usize,
}

impl FdSender {
    pub fn new(fd: OwnedFd, size: usize) -> FdSender {
        FdSender { fd, size }
    }
}

impl Sender for FdSender {
    fn max_message_size(&self) -> usize {
        self.size
    }

    /// Blocks regardless of `wait`: the bench only ever blocks.
    fn send_with(&mut self, msg: &[u8], _wait: Wait) -> ipc::Result<()> {
        // The stream has no framing: the receiver counts on exactly `size` bytes per message.
        assert_eq!(msg.len(), self.size, "raw baseline messages have one size");
        let mut rest = msg;
        while !rest.is_empty() {
            match write(&self.fd, rest) {
                Ok(n) => rest = &rest[n..],
                Err(Errno::EINTR) => {}
                Err(Errno::EPIPE) => return Err(ipc::Error::Disconnected),
                Err(e) => return Err(ipc::Error::io("write", e.into())),
            }
        }
        Ok(())
    }
}

/// Reads `size` bytes per message with `read(2)`.
pub struct FdReceiver {
    fd: OwnedFd,
    size: usize,
}

impl FdReceiver {
    pub fn new(fd: OwnedFd, size: usize) -> FdReceiver {
        FdReceiver { fd, size }
    }
}

impl Receiver for FdReceiver {
    fn max_message_size(&self) -> usize {
        self.size
    }

    /// Blocks regardless of `wait`: the bench only ever blocks.
    fn recv_with(&mut self, buf: &mut [u8], _wait: Wait) -> ipc::Result<usize> {
        let Some(buf) = buf.get_mut(..self.size) else {
            return Err(ipc::Error::BufferTooSmall {
                len: buf.len(),
                needed: self.size,
            });
        };
        let mut got = 0;
        while got < self.size {
            match read(&self.fd, &mut buf[got..]) {
                Ok(0) if got == 0 => return Err(ipc::Error::Disconnected),
                Ok(0) => {
                    return Err(ipc::Error::corrupted(format!(
                        "the stream ended {got} bytes into a {}-byte message",
                        self.size
                    )));
                }
                Ok(n) => got += n,
                Err(Errno::EINTR) => {}
                Err(e) => return Err(ipc::Error::io("read", e.into())),
            }
        }
        Ok(self.size)
    }
}

/// The raw baseline's ends on two descriptors, receiving (`rx`) first, for `size`-byte messages.
pub fn fd_ends(rx: OwnedFd, tx: OwnedFd, size: usize) -> (Box<dyn Receiver>, Box<dyn Sender>) {
    (
        Box::new(FdReceiver::new(rx, size)),
        Box::new(FdSender::new(tx, size)),
    )
}

/// Waits until `fd` has data or its writer came and went; false after `timeout`.
///
/// On a FIFO that no writer has opened yet, `read` returns end of file at once while `poll`
/// waits: this is how the parent waits for its peer to open the FIFO.
pub fn wait_readable(fd: impl AsFd, timeout: Duration) -> ipc::Result<bool> {
    let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    loop {
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(n) => return Ok(n > 0),
            // Restarting with the whole timeout only lengthens a wait that already failed.
            Err(Errno::EINTR) => {}
            Err(e) => return Err(ipc::Error::io("poll", e.into())),
        }
    }
}

/// Opens a FIFO without blocking, then makes the descriptor blocking for the measured loop.
///
/// Opening for reading then never waits for a writer; opening for writing fails with `ENXIO`
/// instead of waiting forever when no reader is there (a peer that died).
pub fn open_fifo(path: &str, write: bool) -> ipc::Result<OwnedFd> {
    let file = OpenOptions::new()
        .read(!write)
        .write(write)
        .custom_flags(OFlag::O_NONBLOCK.bits())
        .open(path)
        .map_err(|e| ipc::Error::from_os("open", path, e))?;
    let fd = OwnedFd::from(file);
    let flags = fcntl(&fd, FcntlArg::F_GETFL).map_err(|e| ipc::Error::io("fcntl", e.into()))?;
    let blocking = OFlag::from_bits_truncate(flags) - OFlag::O_NONBLOCK;
    fcntl(&fd, FcntlArg::F_SETFL(blocking)).map_err(|e| ipc::Error::io("fcntl", e.into()))?;
    Ok(fd)
}
