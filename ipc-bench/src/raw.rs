//! The baseline: fixed-size messages as plain `write(2)` / `read(2)` loops on a descriptor (a
//! pipe, a FIFO, a seqpacket socket, a TCP connection), and how the sockets are connected.
//!
//! [`FdSender`] and [`FdReceiver`] implement the same traits as our transports only so that
//! the workloads run unchanged on both; per message they make the system calls and nothing
//! else (a receiver loops because `read` may return part of a message).

use std::fs::OpenOptions;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use ipc::{Address, Receiver, Sender, TransportSpec, Wait};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::PollFlags;
use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockType, getsockopt, send, setsockopt, socketpair, sockopt,
};
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

/// A connected `SOCK_SEQPACKET` pair whose send buffers hold a `size`-byte message, as ours
/// sizes its own: `write` sends one record, `read` of `size` bytes takes one whole.
///
/// Also the raw baseline of `unix:`: once connected, a socket accepted from a listener and one
/// of a pair are the same kernel object (`unix_seqpacket_ops`), so the measured loop is the
/// same; only the setup differs, and a safe `accept` returning an `OwnedFd` is not in nix.
pub fn seqpacket_pair(size: usize) -> ipc::Result<(OwnedFd, OwnedFd)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| ipc::Error::io("socketpair", e.into()))?;
    for fd in [&a, &b] {
        send_buffer_for(fd.as_fd(), size)?;
    }
    Ok((a, b))
}

/// Adopts the seqpacket socket `fd` that the parent handed down (`socketpair:fd=N`).
pub fn adopt_seqpacket(spec: &str) -> ipc::Result<OwnedFd> {
    let Address::Fd(fd) = spec.parse::<TransportSpec>()?.address else {
        return Err(ipc::Error::invalid_spec(spec, "expected `socketpair:fd=N`"));
    };
    ipc::pipe::raw::adopt_inherited(fd, spec, |fd| match getsockopt(&fd, sockopt::SockType) {
        Ok(SockType::SeqPacket) => Ok(()),
        _ => Err(ipc::Error::Incompatible {
            object: spec.to_owned(),
            reason: "not a SOCK_SEQPACKET socket".into(),
        }),
    })
}

/// What a seqpacket send buffer holds besides a record, as ours counts it: its tag byte, the
/// 32 bytes the kernel keeps (`unix(7)`) and the record's bookkeeping.
pub const RECORD_OVERHEAD: usize = 1 + 32 + 1024;

/// Grows `fd`'s send buffer to hold a `size`-byte record as ours grows its own (the kernel
/// doubles what it is asked for; past `net.core.wmem_max` only with `CAP_NET_ADMIN`).
fn send_buffer_for(fd: BorrowedFd<'_>, size: usize) -> ipc::Result<()> {
    let needed = size + RECORD_OVERHEAD;
    let current =
        getsockopt(&fd, sockopt::SndBuf).map_err(|e| ipc::Error::io("SO_SNDBUF", e.into()))?;
    if current < needed {
        let half = needed.div_ceil(2);
        if setsockopt(&fd, sockopt::SndBufForce, &half).is_err() {
            setsockopt(&fd, sockopt::SndBuf, &half)
                .map_err(|e| ipc::Error::io("SO_SNDBUF", e.into()))?;
        }
    }
    Ok(())
}

/// Why a `size`-byte record cannot be sent on a seqpacket socket here, if it cannot: tried
/// once on a pair. The limits are the send buffer (twice `net.core.wmem_max` without
/// `CAP_NET_ADMIN`) and the kernel's largest allocation (a few MiB), which no sysctl says.
pub fn seqpacket_unsupported(size: usize) -> Option<String> {
    let tried = seqpacket_pair(size).and_then(|(a, _b)| {
        send(a.as_raw_fd(), &vec![0; size], MsgFlags::MSG_DONTWAIT)
            .map_err(|e| ipc::Error::io("send", e.into()))
    });
    tried.err().map(|e| {
        format!("a {size}-byte record cannot be sent on a socket here ({e}; net.core.wmem_max)")
    })
}

/// A TCP listener on a port of loopback the kernel picks.
pub fn tcp_listen() -> ipc::Result<TcpListener> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| ipc::Error::io("bind 127.0.0.1:0", e))
}

/// The `tcp:127.0.0.1:PORT` string of `listener`.
pub fn tcp_spec(listener: &TcpListener) -> ipc::Result<String> {
    let addr = listener
        .local_addr()
        .map_err(|e| ipc::Error::io("getsockname", e))?;
    Ok(format!("tcp:{addr}"))
}

/// Connects to the listener of `spec` (`tcp:HOST:PORT`), which is listening already.
pub fn tcp_connect(spec: &str) -> ipc::Result<OwnedFd> {
    let Address::Host { host, port } = spec.parse::<TransportSpec>()?.address else {
        return Err(ipc::Error::invalid_spec(spec, "expected `tcp:HOST:PORT`"));
    };
    let stream = TcpStream::connect((host.as_str(), port))
        .map_err(|e| ipc::Error::from_os("connect", spec, e))?;
    no_delay(stream)
}

/// Accepts the one connection `listener` waits for, within `timeout`.
pub fn tcp_accept(listener: &TcpListener, timeout: Duration) -> ipc::Result<OwnedFd> {
    if !ipc::poll_fd(listener.as_fd(), PollFlags::POLLIN, Wait::timeout(timeout))? {
        return Err(ipc::Error::Timeout);
    }
    let (stream, _) = listener.accept().map_err(|e| ipc::Error::io("accept", e))?;
    no_delay(stream)
}

/// As ours: every write goes out at once.
fn no_delay(stream: TcpStream) -> ipc::Result<OwnedFd> {
    stream
        .set_nodelay(true)
        .map_err(|e| ipc::Error::io("TCP_NODELAY", e))?;
    Ok(OwnedFd::from(stream))
}
