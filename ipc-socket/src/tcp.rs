//! `tcp:HOST:PORT`: the [`framing`](ipc_core::framing) of every byte-stream transport over TCP
//! connections; the receiver listens, any number of senders connect (see the crate
//! documentation).

use std::io::IoSlice;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::thread;
use std::time::Duration;

use ipc_core::framing::{FrameReader, FrameWriter, StreamIo};
use ipc_core::{
    Address, Error, Interest, Readiness, Result, Sender, Transport, TransportSpec, Wait,
};
use nix::errno::Errno;
use nix::poll::PollFlags;
use nix::sys::socket::{MsgFlags, recv, sendmsg, setsockopt, sockopt};

use crate::multi::{Conn, Listen, Multi};
use crate::seq::poll_fd;
use crate::{DEFAULT_OPEN_TIMEOUT, MAX_BACKOFF, SocketConfig};

/// A TCP connection as the framing sees it. Each call picks its own wait (`MSG_DONTWAIT`), so
/// the descriptor stays in blocking mode.
#[derive(Debug)]
struct TcpIo {
    fd: OwnedFd,
}

impl StreamIo for TcpIo {
    fn write(&mut self, bufs: &[IoSlice<'_>], block: bool) -> Result<Option<usize>> {
        let mut flags = MsgFlags::MSG_NOSIGNAL;
        if !block {
            flags |= MsgFlags::MSG_DONTWAIT;
        }
        loop {
            match sendmsg::<()>(self.fd.as_raw_fd(), bufs, &[], flags, None) {
                Ok(n) => return Ok(Some(n)),
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) if !block => return Ok(None),
                Err(Errno::EPIPE | Errno::ECONNRESET | Errno::ENOTCONN) => {
                    return Err(Error::Disconnected);
                }
                Err(e) => return Err(Error::io("send on tcp", e.into())),
            }
        }
    }

    fn wait_writable(&mut self, wait: Wait) -> Result<bool> {
        poll_fd(self.fd.as_fd(), PollFlags::POLLOUT, wait)
    }

    fn read(&mut self, buf: &mut [u8], block: bool) -> Result<Option<usize>> {
        let flags = if block {
            MsgFlags::empty()
        } else {
            MsgFlags::MSG_DONTWAIT
        };
        loop {
            match recv(self.fd.as_raw_fd(), buf, flags) {
                Ok(n) => return Ok(Some(n)),
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) if !block => return Ok(None),
                // A reset ends the stream as a close does: a frame it cut is dropped.
                Err(Errno::ECONNRESET) => return Ok(Some(0)),
                Err(e) => return Err(Error::io("receive on tcp", e.into())),
            }
        }
    }

    fn wait_readable(&mut self, wait: Wait) -> Result<bool> {
        poll_fd(self.fd.as_fd(), PollFlags::POLLIN, wait)
    }
}

/// Send buffer of a TCP sender when the string gives no `capacity`.
pub const DEFAULT_TCP_SEND_BUFFER: usize = 1024 * 1024;
/// Receive buffer of a TCP receiver's connections when the string gives no `capacity`: smaller
/// than the sender's, so that a sender finds its buffer full only once the receiver's window
/// has closed (nothing in flight whose acknowledgement would make room).
pub const DEFAULT_TCP_RECV_BUFFER: usize = 128 * 1024;

/// `TCP_NODELAY` (a message goes out when sent, not when more follow) and a fixed buffer
/// (`SO_SNDBUF` of a sender, `SO_RCVBUF` of a receiver's connection); returns the descriptor.
///
/// A buffer set explicitly is not grown by the kernel's autotuning, which is what makes `Full`
/// mean something: with autotuning, room appears after a `try_send` said `Full` without the
/// receiver reading anything.
fn configure(stream: TcpStream, capacity: Option<usize>, send: bool) -> Result<OwnedFd> {
    stream
        .set_nodelay(true)
        .map_err(|e| Error::io("TCP_NODELAY", e))?;
    let fd = OwnedFd::from(stream);
    // The kernel doubles what it is asked for (bookkeeping), so ask for half.
    let set = if send {
        let half = capacity.unwrap_or(DEFAULT_TCP_SEND_BUFFER).div_ceil(2);
        setsockopt(&fd, sockopt::SndBuf, &half)
    } else {
        let half = capacity.unwrap_or(DEFAULT_TCP_RECV_BUFFER).div_ceil(2);
        setsockopt(&fd, sockopt::RcvBuf, &half)
    };
    set.map_err(|e| Error::io("SO_SNDBUF/SO_RCVBUF", e.into()))?;
    Ok(fd)
}

fn check_spec(spec: &TransportSpec) -> Result<(String, u16)> {
    match (&spec.transport, &spec.address) {
        (Transport::Tcp, Address::Host { host, port }) => Ok((host.clone(), *port)),
        _ => Err(Error::invalid_spec(
            spec.to_string(),
            "a tcp transport string is `tcp:HOST:PORT` or `tcp:[IPV6]:PORT`",
        )),
    }
}

fn resolve(spec: &TransportSpec) -> Result<Vec<SocketAddr>> {
    let object = spec.to_string();
    let text = spec.address.to_string();
    let addrs: Vec<_> = text
        .to_socket_addrs()
        .map_err(|e| Error::NotFound {
            object: format!("{object} (cannot resolve {text}: {e})"),
        })?
        .collect();
    if addrs.is_empty() {
        return Err(Error::NotFound {
            object: format!("{object} ({text} has no address)"),
        });
    }
    Ok(addrs)
}

/// The listening socket.
#[derive(Debug)]
struct TcpListen {
    listener: TcpListener,
    max: usize,
    capacity: Option<usize>,
    name: String,
}

impl AsFd for TcpListen {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }
}

/// An accepted connection and the frames read ahead from it.
#[derive(Debug)]
struct TcpConn {
    io: TcpIo,
    reader: FrameReader,
}

impl AsFd for TcpConn {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.fd.as_fd()
    }
}

impl Conn for TcpConn {
    fn try_recv(&mut self, buf: &mut [u8]) -> Result<usize> {
        self.reader.recv(&mut self.io, buf, Wait::Never)
    }

    fn buffered(&self) -> bool {
        self.reader.next_is_buffered()
    }
}

impl Listen for TcpListen {
    type Conn = TcpConn;

    fn accept(&mut self) -> Result<Option<TcpConn>> {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    return Ok(Some(TcpConn {
                        io: TcpIo {
                            fd: configure(stream, self.capacity, false)?,
                        },
                        reader: FrameReader::over_socket(self.max),
                    }));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(None),
                // The sender gave up before we looked; the next one may be there.
                Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => {}
                Err(e) => return Err(Error::from_os("accept", &self.name, e)),
            }
        }
    }
}

/// The receiving end of a TCP transport: listens; any number of senders connect.
///
/// TCP has no authentication: anyone who can reach the port can send. Bind to loopback
/// (`tcp:127.0.0.1:PORT`, `tcp:[::1]:PORT`) unless the network is trusted.
#[derive(Debug)]
pub struct TcpReceiver {
    multi: Multi<TcpListen>,
    spec: TransportSpec,
}

impl TcpReceiver {
    /// Listens on the address `spec` names (port 0: a free port, see
    /// [`TcpReceiver::spec`]). A port in use is [`Error::AlreadyExists`].
    pub fn open(spec: &TransportSpec) -> Result<TcpReceiver> {
        check_spec(spec)?;
        let config = SocketConfig::from_options(&spec.options)?;
        let name = spec.to_string();
        let addrs = resolve(spec)?;
        let listener = TcpListener::bind(&addrs[..]).map_err(|e| match e.raw_os_error() {
            Some(libc::EADDRINUSE) => Error::AlreadyExists {
                object: format!("{name} (the port is in use)"),
            },
            _ => Error::from_os("bind", &name, e),
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::io("O_NONBLOCK", e))?;
        // Set on the listener, so that a connection waiting to be accepted has it already.
        let half = config
            .capacity
            .unwrap_or(DEFAULT_TCP_RECV_BUFFER)
            .div_ceil(2);
        setsockopt(&listener, sockopt::RcvBuf, &half)
            .map_err(|e| Error::io("SO_RCVBUF", e.into()))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::io("getsockname", e))?;
        let mut spec = spec.clone();
        spec.address = Address::Host {
            host: local.ip().to_string(),
            port: local.port(),
        };
        Ok(TcpReceiver {
            multi: Multi::new(
                TcpListen {
                    listener,
                    max: config.message_size,
                    capacity: config.capacity,
                    name,
                },
                config.message_size,
            )?,
            spec,
        })
    }

    /// The transport string senders connect with: the one opened, with the port the kernel
    /// picked if it was 0.
    pub fn spec(&self) -> &TransportSpec {
        &self.spec
    }

    /// How many senders are connected, as far as this receiver has looked.
    pub fn connections(&self) -> usize {
        self.multi.connections()
    }
}

// The epoll set of the listener and its connections is the descriptor.
ipc_core::forward_receiver!(TcpReceiver => multi, AsFd);

/// The sending end of a TCP transport: one connection to the receiver.
#[derive(Debug)]
pub struct TcpSender {
    io: TcpIo,
    writer: FrameWriter,
}

impl TcpSender {
    /// Connects to the receiver `spec` names, retrying up to `open_timeout` (default 10 s)
    /// while nobody listens, then [`Error::NotFound`] (or [`Error::Timeout`] when the host
    /// never answered).
    pub fn open(spec: &TransportSpec) -> Result<TcpSender> {
        let (_, port) = check_spec(spec)?;
        if port == 0 {
            return Err(Error::invalid_spec(
                spec.to_string(),
                "a sender connects to a port: 0 is for a receiver to pick one",
            ));
        }
        let config = SocketConfig::from_options(&spec.options)?;
        let wait = Wait::timeout(spec.options.open_timeout.unwrap_or(DEFAULT_OPEN_TIMEOUT));
        let addrs = resolve(spec)?;
        let mut pause = Duration::from_micros(250);
        let stream = 'connect: loop {
            let mut timed_out = false;
            for addr in &addrs {
                let left = wait.remaining().unwrap_or(Duration::from_secs(3600));
                if left.is_zero() {
                    break;
                }
                match TcpStream::connect_timeout(addr, left) {
                    Ok(stream) => break 'connect stream,
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => timed_out = true,
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                    Err(e) => return Err(Error::from_os("connect", &spec.to_string(), e)),
                }
            }
            let Some(left) = wait.remaining().filter(|left| !left.is_zero()) else {
                return Err(if timed_out {
                    Error::Timeout
                } else {
                    Error::NotFound {
                        object: format!("{spec} (no receiver listening)"),
                    }
                });
            };
            // Nothing tells us when a receiver starts listening: retry with a backoff.
            thread::sleep(pause.min(left));
            pause = (pause * 2).min(MAX_BACKOFF);
        };
        Ok(TcpSender {
            io: TcpIo {
                fd: configure(stream, config.capacity, true)?,
            },
            writer: FrameWriter::new(config.message_size),
        })
    }
}

impl Sender for TcpSender {
    fn max_message_size(&self) -> usize {
        self.writer.max_message_size()
    }

    fn send_with(&mut self, msg: &[u8], wait: Wait) -> Result<()> {
        self.writer.send(&mut self.io, msg, wait)
    }

    fn try_send_part(&mut self, msg: &[u8], resume: bool) -> Result<()> {
        self.writer.send_part(&mut self.io, msg, resume)
    }

    fn readiness(&mut self) -> Option<&mut dyn Readiness> {
        Some(self)
    }
}

impl AsFd for TcpSender {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.fd.as_fd()
    }
}

/// The socket, writable when its send buffer has room (or in error once the receiver is gone).
impl Readiness for TcpSender {
    fn ready_fd(&mut self) -> Result<(BorrowedFd<'_>, Interest)> {
        Ok((self.io.fd.as_fd(), Interest::Writable))
    }

    fn prepare_wait(&mut self) -> Result<bool> {
        Ok(false)
    }

    fn after_wake(&mut self) {}
}
