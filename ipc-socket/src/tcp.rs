//! `tcp:HOST:PORT`: the [`framing`](ipc_core::framing) of every byte-stream transport over TCP
//! connections; the receiver listens, any number of senders connect (see the crate
//! documentation).

use std::io::IoSlice;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::thread;
use std::time::Duration;

use ipc_core::framing::{FrameReader, FrameWriter, StreamIo, frame_len, join_small};
use ipc_core::{
    Address, Error, Interest, Readiness, Result, Sender, Transport, TransportSpec, Wait, poll_fd,
};
use nix::errno::Errno;
use nix::poll::PollFlags;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::socket::{MsgFlags, recv, sendmsg, setsockopt, sockopt};

use crate::credit::{ACK_LEN, Acks, Credit, HELLO_LEN, hello, parse_hello};
use crate::multi::{Conn, Listen, Multi};
use crate::{DEFAULT_OPEN_TIMEOUT, MAX_BACKOFF, SocketConfig};

/// Writes a prefix of `bufs` on `fd`, waiting for room only with `block` (`MSG_DONTWAIT`
/// otherwise, so the descriptor itself stays in blocking mode).
fn send_on(fd: BorrowedFd<'_>, bufs: &[IoSlice<'_>], block: bool) -> Result<Option<usize>> {
    let mut flags = MsgFlags::MSG_NOSIGNAL;
    if !block {
        flags |= MsgFlags::MSG_DONTWAIT;
    }
    loop {
        match sendmsg::<()>(fd.as_raw_fd(), bufs, &[], flags, None) {
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

/// Reads from `fd` into `buf`; `Some(0)` at end of stream, `None` (only without `block`) when
/// nothing is there.
fn recv_on(fd: BorrowedFd<'_>, buf: &mut [u8], block: bool) -> Result<Option<usize>> {
    let flags = if block {
        MsgFlags::empty()
    } else {
        MsgFlags::MSG_DONTWAIT
    };
    loop {
        match recv(fd.as_raw_fd(), buf, flags) {
            Ok(n) => return Ok(Some(n)),
            Err(Errno::EINTR) => {}
            Err(Errno::EAGAIN) if !block => return Ok(None),
            // A reset ends the stream as a close does: a frame it cut is dropped.
            Err(Errno::ECONNRESET) => return Ok(Some(0)),
            Err(e) => return Err(Error::io("receive on tcp", e.into())),
        }
    }
}

/// The framing asked a connection for the direction it does not carry frames in (never, as
/// a sender only writes frames and a receiver only reads them).
fn not_its_direction(why: &'static str) -> Error {
    Error::io("tcp", std::io::Error::other(why))
}

/// A sender's connection as the framing sees it: writes only what its credit allows, and
/// reads the receiver's acknowledgements when it needs more.
#[derive(Debug)]
struct SenderIo {
    fd: OwnedFd,
    credit: Credit,
    /// Where the parts of a small frame (or of a batch's group of frames) are joined: the
    /// kernel copies one segment faster than three. Empty until the first such send.
    staging: Vec<u8>,
}

impl SenderIo {
    /// Reads the acknowledgements that have arrived, without waiting. The receiver gone is
    /// [`Error::Disconnected`]; bytes that are no acknowledgement, [`Error::Corrupted`].
    fn take_acks(&mut self) -> Result<()> {
        self.credit.check()?;
        let mut buf = [0; 64 * ACK_LEN];
        loop {
            match recv_on(self.fd.as_fd(), &mut buf, false)? {
                Some(0) => return Err(Error::Disconnected),
                Some(n) => self.credit.take(&buf[..n])?,
                None => return Ok(()),
            }
        }
    }

    /// The credit there is, having read acknowledgements if there was none.
    fn available(&mut self) -> Result<u64> {
        self.credit.check()?;
        if self.credit.available() == 0 {
            self.take_acks()?;
        }
        Ok(self.credit.available())
    }
}

impl StreamIo for SenderIo {
    fn write(&mut self, bufs: &[IoSlice<'_>], block: bool) -> Result<Option<usize>> {
        let mut credit = self.available()?;
        while credit == 0 {
            if !block {
                return Ok(None);
            }
            poll_fd(self.fd.as_fd(), PollFlags::POLLIN, Wait::Forever)?;
            credit = self.available()?;
        }
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let written = if total as u64 <= credit {
            match join_small(bufs, &mut self.staging) {
                Some(one) => send_on(self.fd.as_fd(), &[IoSlice::new(one)], block)?,
                None => send_on(self.fd.as_fd(), bufs, block)?,
            }
        } else {
            // Rare (the window's last bytes): the frame goes in part, and is owed as any frame a
            // full socket took in part.
            let mut left = credit as usize;
            let mut cut = Vec::with_capacity(bufs.len());
            for b in bufs {
                let n = b.len().min(left);
                cut.push(IoSlice::new(&b[..n]));
                left -= n;
            }
            send_on(self.fd.as_fd(), &cut, block)?
        };
        if let Some(n) = written {
            self.credit.spend(n);
        }
        Ok(written)
    }

    fn wait_writable(&mut self, wait: Wait) -> Result<bool> {
        if self.available()? > 0 {
            return poll_fd(self.fd.as_fd(), PollFlags::POLLOUT, wait);
        }
        // Credit comes as bytes from the receiver; its going makes the socket readable too.
        poll_fd(self.fd.as_fd(), PollFlags::POLLIN, wait)
    }

    fn read(&mut self, _buf: &mut [u8], _block: bool) -> Result<Option<usize>> {
        Err(not_its_direction("a sender does not read frames"))
    }

    fn wait_readable(&mut self, _wait: Wait) -> Result<bool> {
        Err(not_its_direction("a sender does not read frames"))
    }
}

/// A receiver's connection as the framing sees it: counts the bytes read, for the
/// acknowledgements.
#[derive(Debug)]
struct ConnIo {
    fd: OwnedFd,
    acks: Acks,
}

impl StreamIo for ConnIo {
    fn write(&mut self, _bufs: &[IoSlice<'_>], _block: bool) -> Result<Option<usize>> {
        Err(not_its_direction("a receiver writes acknowledgements only"))
    }

    fn wait_writable(&mut self, _wait: Wait) -> Result<bool> {
        Err(not_its_direction("a receiver writes acknowledgements only"))
    }

    fn read(&mut self, buf: &mut [u8], block: bool) -> Result<Option<usize>> {
        let got = recv_on(self.fd.as_fd(), buf, block)?;
        if let Some(n) = got {
            self.acks.received(n)?;
        }
        Ok(got)
    }

    fn wait_readable(&mut self, wait: Wait) -> Result<bool> {
        poll_fd(self.fd.as_fd(), PollFlags::POLLIN, wait)
    }
}

/// Window of a TCP sender when the string gives no `capacity`, in bytes of frames (grown to
/// sixteen frames of `message_size`).
pub const DEFAULT_TCP_WINDOW: usize = 1024 * 1024;

/// Frames of `message_size` the default window holds at least. A sender that has used its
/// window waits until the receiver has read all of it (only then may an acknowledgement come,
/// see the crate documentation), so the connection drains once per window: with four 1 MiB
/// frames the sender idled about 9% of the time and the stream ran at 1.08-1.14x the raw
/// loop's; with sixteen, 1.01-1.02x (three interleaved runs of `ipc bench --transports tcp
/// --sizes 1MiB --repeat 5`). Up to 64 KiB messages the 1 MiB default is as large.
const FRAMES_IN_DEFAULT_WINDOW: usize = 16;

/// The window of a sender configured so: `capacity`, or the default grown to hold
/// [`FRAMES_IN_DEFAULT_WINDOW`] frames.
fn window(config: &SocketConfig, spec: &TransportSpec) -> Result<u64> {
    let frame = frame_len(config.message_size);
    match config.capacity {
        // The hello carries at most `i32::MAX`, which still holds one frame of the largest
        // message (`MAX_PAYLOAD`, 1 GiB).
        None => Ok(DEFAULT_TCP_WINDOW
            .max(FRAMES_IN_DEFAULT_WINDOW * frame)
            .min(i32::MAX as usize) as u64),
        Some(c) if c < frame => Err(Error::invalid_spec(
            spec.to_string(),
            format!(
                "capacity={c} is less than one frame of message_size={} ({frame} bytes)",
                config.message_size
            ),
        )),
        Some(c) => Ok(c as u64),
    }
}

/// `TCP_NODELAY` (a message goes out when sent, not when more follow); for a sender, a send
/// buffer that holds its whole window (twice over, for the kernel's bookkeeping of small
/// segments), so that a write the credit allows finds room: then only the credit says `Full`.
fn configure(stream: TcpStream, window: Option<u64>) -> Result<OwnedFd> {
    stream
        .set_nodelay(true)
        .map_err(|e| Error::io("TCP_NODELAY", e))?;
    let fd = OwnedFd::from(stream);
    if let Some(window) = window {
        // The kernel doubles what it is asked for; past `net.core.wmem_max` it takes that.
        let size = (2 * window).min(i32::MAX as u64 / 2) as usize;
        setsockopt(&fd, sockopt::SndBuf, &size).map_err(|e| Error::io("SO_SNDBUF", e.into()))?;
    }
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
    name: String,
}

impl AsFd for TcpListen {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }
}

/// An accepted connection: its hello, the frames read ahead from it, and the acknowledgements
/// owed to its sender.
#[derive(Debug)]
struct TcpConn {
    io: ConnIo,
    /// The hello as far as it has arrived; `None` once read.
    hello: Option<([u8; HELLO_LEN], usize)>,
    reader: FrameReader,
}

impl AsFd for TcpConn {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.fd.as_fd()
    }
}

impl TcpConn {
    /// Reads the sender's hello, without waiting: `Empty` until it is whole.
    fn read_hello(&mut self) -> Result<()> {
        while let Some((bytes, got)) = &mut self.hello {
            match recv_on(self.io.fd.as_fd(), &mut bytes[*got..], false)? {
                Some(0) => return Err(Error::Disconnected),
                Some(n) => *got += n,
                None => return Err(Error::Empty),
            }
            if *got == HELLO_LEN {
                self.io.acks = Acks::new(parse_hello(bytes)?);
                self.hello = None;
            }
        }
        Ok(())
    }

    /// Writes the acknowledgement due, if one is. Without waiting, and never an error: an
    /// acknowledgement the socket has no room for now goes out at the next call (the sender,
    /// which reads them whenever it runs out of credit, makes that room), and a sender gone
    /// is seen on the reading side.
    fn acknowledge(&mut self) {
        let unread = self.reader.buffered();
        let drained = !self.reader.next_is_buffered();
        let Some((record, done)) = self.io.acks.due(unread, drained) else {
            return;
        };
        let rest = [IoSlice::new(&record[*done..])];
        if let Ok(Some(n)) = send_on(self.io.fd.as_fd(), &rest, false) {
            self.io.acks.wrote(n);
        }
    }
}

impl Conn for TcpConn {
    fn try_recv(&mut self, buf: &mut [u8]) -> Result<usize> {
        self.read_hello()?;
        let got = self.reader.recv(&mut self.io, buf, Wait::Never);
        if matches!(got, Ok(_) | Err(Error::Empty)) {
            self.acknowledge();
        }
        got
    }
}

impl Listen for TcpListen {
    type Conn = TcpConn;

    fn accept(&mut self) -> Result<Option<TcpConn>> {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    return Ok(Some(TcpConn {
                        io: ConnIo {
                            fd: configure(stream, None)?,
                            // Replaced by the sender's window once its hello is read.
                            acks: Acks::new(0),
                        },
                        hello: Some(([0; HELLO_LEN], 0)),
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
                    name,
                },
                config.message_size,
            )?
            .with_wait(config.wait),
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
    io: SenderIo,
    writer: FrameWriter,
    /// The readiness descriptor, made at the first [`Readiness::ready_fd`]: an epoll set of the
    /// socket alone, so that what it waits for (credit, or room in the socket) can change
    /// under an event loop that registered it once.
    ready: Option<Epoll>,
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
        let window = window(&config, spec)?;
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
        let fd = configure(stream, Some(window))?;
        // A fresh socket has room for the hello: it goes out whole.
        let hello = hello(window);
        let mut sent = 0;
        while sent < HELLO_LEN {
            let rest = [IoSlice::new(&hello[sent..])];
            sent += send_on(fd.as_fd(), &rest, true)?.unwrap_or(0);
        }
        Ok(TcpSender {
            io: SenderIo {
                fd,
                credit: Credit::new(window),
                staging: Vec::new(),
            },
            writer: FrameWriter::new(config.message_size),
            ready: None,
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

    /// Frames go many to a send, up to 4 KiB of them (the framing's group).
    fn send_batch(&mut self, msgs: &[&[u8]], wait: Wait) -> Result<usize> {
        self.writer.send_batch(&mut self.io, msgs, wait)
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

/// An epoll set of the socket, readable when the sender may get on: for acknowledgements
/// when it has no credit (which the receiver's going also wakes), for room in the socket when
/// it has some; `prepare_wait` picks which.
impl Readiness for TcpSender {
    fn ready_fd(&mut self) -> Result<(BorrowedFd<'_>, Interest)> {
        if self.ready.is_none() {
            let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
                .map_err(|e| Error::io("epoll_create", e.into()))?;
            epoll
                .add(&self.io.fd, EpollEvent::new(EpollFlags::EPOLLIN, 0))
                .map_err(|e| Error::io("epoll_ctl", e.into()))?;
            self.ready = Some(epoll);
        }
        let epoll = self.ready.as_ref().expect("made above");
        Ok((epoll.0.as_fd(), Interest::Readable))
    }

    fn prepare_wait(&mut self) -> Result<bool> {
        // An error (the receiver gone, garbage) is for the retry to say.
        let Ok(credit) = self.io.available() else {
            return Ok(true);
        };
        let mut events = EpollFlags::EPOLLIN;
        if credit > 0 {
            if poll_fd(self.io.fd.as_fd(), PollFlags::POLLOUT, Wait::Never)? {
                return Ok(true);
            }
            events |= EpollFlags::EPOLLOUT;
        }
        if self.ready.is_none() {
            self.ready_fd()?;
        }
        let epoll = self.ready.as_ref().expect("made above");
        epoll
            .modify(&self.io.fd, &mut EpollEvent::new(events, 0))
            .map_err(|e| Error::io("epoll_ctl", e.into()))?;
        Ok(false)
    }

    fn after_wake(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_window(message_size: usize) -> u64 {
        let spec: TransportSpec = "tcp:127.0.0.1:1".parse().unwrap();
        let config = SocketConfig {
            message_size,
            ..SocketConfig::default()
        };
        window(&config, &spec).unwrap()
    }

    #[test]
    fn the_default_window_holds_sixteen_frames_within_what_the_hello_carries() {
        assert_eq!(default_window(64), DEFAULT_TCP_WINDOW as u64);
        assert_eq!(default_window(1 << 20), 16 * frame_len(1 << 20) as u64);
        // The receiver refuses a hello above i32::MAX as corrupted.
        let largest = default_window(ipc_core::framing::MAX_PAYLOAD);
        assert_eq!(largest, i32::MAX as u64);
        assert!(largest >= frame_len(ipc_core::framing::MAX_PAYLOAD) as u64);
        assert_eq!(
            crate::credit::parse_hello(&hello(largest)).unwrap(),
            largest
        );
    }
}
