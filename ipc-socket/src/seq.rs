//! One `SOCK_SEQPACKET` connection as a message channel: what unix sockets and socket pairs
//! share.
//!
//! A record on the wire is the message, then one tag byte. The tag is what tells an empty
//! message from the end of the connection (a zero-length record reads as 0 bytes, as end of
//! stream does), and it lets a receiver tell a refused sender why ([`TAG_REFUSED`]). It comes
//! last so that the message starts where the record does: the kernel's copy into the
//! receiver's buffer (`rep movsb` here) runs about 15× slower when the destination is 1 to 15
//! bytes past the source modulo 4 KiB, which a tag first put every buffer from `malloc` into
//! (measured: 1 MiB records took 2.5–2.9× the raw loop, all of it in that copy).
//!
//! The kernel sends a record whole or not at all, so `try_send` and `send_timeout` are exact
//! with nothing to withdraw. A call with a deadline (or none to wait) passes `MSG_DONTWAIT` and
//! waits in `poll(2)` with the caller's deadline. A call that may wait forever is one blocking
//! system call, as a raw loop's: a send that found the socket full was `send`, `poll`, `send`
//! (three calls where a raw loop makes one). The descriptor's own `O_NONBLOCK` (shared with a
//! child that inherited a socket pair end) is never relied on either way: with it set, such a
//! call gets `EAGAIN` and waits in `poll` as a call with a deadline does.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use ipc_core::{Error, Result, Wait, WaitStrategy, poll_before_sleep, poll_fd};
use nix::errno::Errno;
use nix::poll::PollFlags;
use nix::sys::socket::{MsgFlags, getsockopt, recvmsg, send, sendmsg, setsockopt, sockopt};
use rustix::net::RecvFlags;

/// Flags of a send: a closed peer is an error, not a `SIGPIPE`; only a send that may wait
/// forever leaves the wait to the kernel (see the module documentation).
fn send_flags(wait: Wait) -> MsgFlags {
    if wait.is_forever() {
        MsgFlags::MSG_NOSIGNAL
    } else {
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL
    }
}

/// Last byte of a record carrying a message.
pub const TAG_MESSAGE: u8 = 0x4d;
/// Last byte of the record a receiver sends a sender it refuses, after the reason.
pub const TAG_REFUSED: u8 = 0x52;

/// Bytes the kernel keeps of a socket's send buffer for itself (`sk_sndbuf - 32` is the largest
/// record, `unix(7)`), with room for the record's bookkeeping.
const SEND_BUFFER_OVERHEAD: usize = 32 + 1024;

/// Records of a payload up to this long go as one buffer each way, copied once more in our
/// process: `send`/`recv` with one buffer cost about 0.15–0.25 µs less than `sendmsg`/`recvmsg`
/// with two (the message and its tag) here, more than the copy of up to 4 KiB.
const JOIN_UP_TO: usize = 4096;

/// The joined buffer of a small record: small messages do not pay for clearing a page.
const JOIN_SMALL: usize = 256;

/// A receive that found nothing yet ([`Error::Empty`]) as `None`: what [`poll_before_sleep`]
/// polls with.
pub(crate) fn nothing_yet<T>(received: Result<T>) -> Result<Option<T>> {
    match received {
        Err(Error::Empty) => Ok(None),
        done => done.map(Some),
    }
}

/// Sizes the send buffer of `fd` so that one record of `message_size` fits (and to `capacity`
/// bytes if asked). Past `net.core.wmem_max`, root may force it (`SO_SNDBUFFORCE`); otherwise
/// a message that cannot fit is [`Error::LimitExceeded`] naming the limit.
pub(crate) fn size_send_buffer(
    fd: BorrowedFd<'_>,
    message_size: usize,
    capacity: Option<usize>,
) -> Result<()> {
    let needed = message_size + 1 + SEND_BUFFER_OVERHEAD;
    let current = getsockopt(&fd, sockopt::SndBuf).map_err(|e| Error::io("SO_SNDBUF", e.into()))?;
    // The kernel doubles what it is asked for (bookkeeping), so ask for half.
    let wanted = match capacity {
        Some(c) => c.max(needed),
        None if current >= needed => return Ok(()),
        None => needed,
    }
    .div_ceil(2);
    if setsockopt(&fd, sockopt::SndBufForce, &wanted).is_err() {
        setsockopt(&fd, sockopt::SndBuf, &wanted).map_err(|e| Error::io("SO_SNDBUF", e.into()))?;
    }
    let got = getsockopt(&fd, sockopt::SndBuf).map_err(|e| Error::io("SO_SNDBUF", e.into()))?;
    if got < needed {
        return Err(Error::LimitExceeded {
            what: format!("socket send buffer (net.core.wmem_max) for message_size {message_size}"),
            limit: got.saturating_sub(1 + SEND_BUFFER_OVERHEAD) as u64,
        });
    }
    Ok(())
}

/// A connected `SOCK_SEQPACKET` socket carrying tagged records.
#[derive(Debug)]
pub struct SeqSocket {
    fd: OwnedFd,
    max: usize,
}

impl SeqSocket {
    /// Messages of up to `max` bytes on the connected socket `fd`.
    pub(crate) fn new(fd: OwnedFd, max: usize) -> SeqSocket {
        SeqSocket { fd, max }
    }

    /// Largest message.
    pub fn max_message_size(&self) -> usize {
        self.max
    }

    /// The descriptor.
    pub(crate) fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// Sends one record: `msg`, then `tag`.
    pub(crate) fn send_record(&self, tag: u8, msg: &[u8], wait: Wait) -> Result<()> {
        let flags = send_flags(wait);
        loop {
            let sent = if msg.len() < JOIN_SMALL {
                self.send_joined::<JOIN_SMALL>(tag, msg, flags)
            } else if msg.len() <= JOIN_UP_TO {
                self.send_joined::<{ JOIN_UP_TO + 1 }>(tag, msg, flags)
            } else {
                let tag = [tag];
                let iov = [IoSlice::new(msg), IoSlice::new(&tag)];
                sendmsg::<()>(self.fd.as_raw_fd(), &iov, &[], flags, None).map(drop)
            };
            match sent {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => {
                    if wait == Wait::Never || !poll_fd(self.fd.as_fd(), PollFlags::POLLOUT, wait)? {
                        return Err(wait.full_error());
                    }
                }
                Err(Errno::EPIPE | Errno::ECONNRESET | Errno::ENOTCONN) => {
                    return Err(Error::Disconnected);
                }
                Err(Errno::EMSGSIZE) => {
                    return Err(Error::LimitExceeded {
                        what: "socket send buffer (net.core.wmem_max)".into(),
                        limit: msg.len() as u64,
                    });
                }
                Err(e) => return Err(Error::io("send on socket", e.into())),
            }
        }
    }

    /// One `send` of `msg` and `tag` joined in an `N`-byte buffer (`msg` is shorter than `N`).
    fn send_joined<const N: usize>(&self, tag: u8, msg: &[u8], flags: MsgFlags) -> nix::Result<()> {
        let mut joined = [0u8; N];
        joined[..msg.len()].copy_from_slice(msg);
        joined[msg.len()] = tag;
        send(self.fd.as_raw_fd(), &joined[..=msg.len()], flags).map(drop)
    }

    /// Sends one message.
    pub fn send(&self, msg: &[u8], wait: Wait) -> Result<()> {
        if msg.len() > self.max {
            return Err(Error::MessageTooLarge {
                len: msg.len(),
                max: self.max,
            });
        }
        self.send_record(TAG_MESSAGE, msg, wait)
    }

    /// Receives one record without waiting (unless `block`: then in the kernel, for as long as
    /// it takes): its tag and the length of its payload, written to `buf`. `Empty` when none is
    /// there, `Disconnected` at the end of the connection. A record longer than `buf` stays
    /// queued ([`Error::BufferTooSmall`]); one longer than `max` is dropped
    /// ([`Error::MessageTooLarge`]).
    pub(crate) fn try_recv_record(&self, buf: &mut [u8], block: bool) -> Result<(u8, usize)> {
        let room = buf.len().min(self.max);
        if room < self.max {
            // Learn the length first, so that a record the buffer cannot take stays queued.
            let len = self.recv_raw(&mut [], true, block)?.1;
            if len <= self.max && len > buf.len() {
                return Err(Error::BufferTooSmall {
                    len: buf.len(),
                    needed: len,
                });
            }
        }
        match self.recv_raw(&mut buf[..room], false, block)? {
            (Some(tag), len) => Ok((tag, len)),
            // Only a peer with a larger message_size sends more than `max`: the rest was cut
            // off and is gone, so say how long it was.
            (None, len) => Err(Error::MessageTooLarge { len, max: self.max }),
        }
    }

    /// One receive (`MSG_TRUNC`, with `MSG_PEEK` if `peek`, `MSG_DONTWAIT` unless `block`) into
    /// `buf` and one byte after it: the tag (`None` if the record was longer than that, so its
    /// last byte was cut off) and the payload's full length. The tag lands in `buf` right after
    /// a shorter payload.
    fn recv_raw(&self, buf: &mut [u8], peek: bool, block: bool) -> Result<(Option<u8>, usize)> {
        let mut flags = RecvFlags::TRUNC;
        if peek {
            flags |= RecvFlags::PEEK;
        }
        if !block {
            flags |= RecvFlags::DONTWAIT;
        }
        let mut seen_end = false;
        loop {
            let received = if buf.len() <= JOIN_UP_TO {
                self.recv_joined(buf, flags)
            } else {
                self.recv_split(buf, flags)
            };
            match received {
                // Linux's receive that does not wait looks at the queue, then at whether the
                // peer is gone, and says end of stream if so: a last record and the close that
                // land between the two looks are taken for the end (seen in about 1 in 10,000
                // polls racing a send and close). The close follows its records, so a look
                // after it sees them all. A record of no bytes reads as 0 too, with the peer
                // still there: that is not our format (we always send the tag).
                Ok((_, 0)) if !seen_end => {
                    if !poll_fd(
                        self.fd.as_fd(),
                        PollFlags::from_bits_retain(libc::POLLRDHUP),
                        Wait::Never,
                    )? {
                        return Err(Error::corrupted(
                            "an empty record on a message socket: the peer does not speak \
                             ipc-socket's record format",
                        ));
                    }
                    seen_end = true;
                }
                Ok((_, 0)) => return Err(Error::Disconnected),
                Ok((tag, record)) => return Ok((tag, record - 1)),
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return Err(Error::Empty),
                // The peer closed with records of ours unread. The error is reported once
                // (and cleared) before any record it sent us: go on to those, then to the end.
                Err(Errno::ECONNRESET) => {}
                Err(e) => return Err(Error::io("receive on socket", e.into())),
            }
        }
    }

    /// [`SeqSocket::recv_raw`] through one `recv` into a buffer of our own, then copied: the
    /// tag and the record's full length.
    fn recv_joined(&self, buf: &mut [u8], flags: RecvFlags) -> nix::Result<(Option<u8>, usize)> {
        let mut joined = [MaybeUninit::<u8>::uninit(); JOIN_UP_TO + 1];
        let room = buf.len();
        let ((got, _), record) = rustix::net::recv(&self.fd, &mut joined[..=room], flags)
            .map_err(|e| Errno::from_raw(e.raw_os_error()))?;
        // The tag is the last byte received, when the whole record fitted.
        let payload = record.saturating_sub(1);
        let tag = got.get(payload).copied();
        let copied = payload.min(room);
        buf[..copied].copy_from_slice(&got[..copied]);
        Ok((tag, record))
    }

    /// [`SeqSocket::recv_raw`] through one `recvmsg` into `buf` and a byte of its own.
    fn recv_split(&self, buf: &mut [u8], flags: RecvFlags) -> nix::Result<(Option<u8>, usize)> {
        // The same bits in both crates' types: they are the kernel's `MSG_*`.
        let flags = MsgFlags::from_bits_truncate(flags.bits() as i32);
        let mut last = [0u8; 1];
        let room = buf.len();
        let mut iov = [IoSliceMut::new(buf), IoSliceMut::new(&mut last)];
        let record = recvmsg::<()>(self.fd.as_raw_fd(), &mut iov, None, flags)?.bytes;
        let payload = record.saturating_sub(1);
        let tag = match payload.cmp(&room) {
            std::cmp::Ordering::Less => Some(buf[payload]),
            std::cmp::Ordering::Equal => Some(last[0]),
            std::cmp::Ordering::Greater => None,
        };
        Ok((tag, record))
    }

    /// Receives one message, polling for it first as `strategy` says before sleeping in
    /// `poll`.
    pub fn recv(&self, buf: &mut [u8], wait: Wait, strategy: WaitStrategy) -> Result<usize> {
        // One blocking call when it may wait forever and would sleep at once anyway (see the
        // module documentation); `Empty` from it means a descriptor in `O_NONBLOCK`.
        let block = wait.is_forever() && strategy == WaitStrategy::Park;
        if let Some(len) = nothing_yet(self.try_recv_message(buf, block))? {
            return Ok(len);
        }
        let mut attempt = || nothing_yet(self.try_recv_message(buf, false));
        if let Some(len) = poll_before_sleep(strategy, wait, &mut attempt)? {
            return Ok(len);
        }
        loop {
            if wait == Wait::Never || !poll_fd(self.fd.as_fd(), PollFlags::POLLIN, wait)? {
                return Err(wait.empty_error());
            }
            if let Some(len) = attempt()? {
                return Ok(len);
            }
        }
    }

    /// One message if one is there ([`Error::Empty`] if not).
    fn try_recv_message(&self, buf: &mut [u8], block: bool) -> Result<usize> {
        match self.try_recv_record(buf, block)? {
            (TAG_MESSAGE, len) => Ok(len),
            (tag, _) => Err(Error::corrupted(format!(
                "a record with tag {tag:#04x} on a message socket: the peer does not speak \
                 ipc-socket's record format"
            ))),
        }
    }

    /// After a send found the connection closed: the reason the receiver gave, if it refused
    /// us, as [`Error::PermissionDenied`]; else `Disconnected`.
    pub(crate) fn why_closed(&self, object: &str) -> Error {
        let mut reason = [0u8; 1024];
        match self.try_recv_record(&mut reason, false) {
            Ok((TAG_REFUSED, len)) => Error::PermissionDenied {
                object: format!(
                    "{object}: {}",
                    String::from_utf8_lossy(&reason[..len.min(reason.len())])
                ),
            },
            _ => Error::Disconnected,
        }
    }
}

impl AsFd for SeqSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
