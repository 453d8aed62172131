//! Sockets as message channels: unix-domain `SOCK_SEQPACKET` sockets (`unix:`), TCP
//! (`tcp:`), and socket pairs handed to a child (`socketpair:`).
//!
//! # `unix:/path` and `unix:@name`
//!
//! A `SOCK_SEQPACKET` socket, so the kernel keeps message boundaries (each send is one record,
//! delivered whole or not at all). The receiver binds and listens, by a path in the file system
//! or a name in the abstract namespace (`@name`: no file, gone with the socket); any number of
//! senders connect.
//!
//! ```
//! use ipc_core::{Receiver, Sender, TransportSpec};
//! use ipc_socket::{UnixReceiver, UnixSender};
//!
//! # fn main() -> Result<(), ipc_core::Error> {
//! let spec: TransportSpec = format!("unix:@doc-{}", std::process::id()).parse()?;
//! let mut rx = UnixReceiver::open(&spec)?;
//! let mut tx = UnixSender::open(&spec)?;
//! tx.send(b"hello")?;
//! let mut buf = vec![0; rx.max_message_size()];
//! let n = rx.recv(&mut buf)?;
//! assert_eq!(&buf[..n], b"hello");
//! drop(tx);
//! assert!(matches!(rx.recv(&mut buf), Err(ipc_core::Error::Disconnected)));
//! # Ok(())
//! # }
//! ```
//!
//! Who may connect: the receiver asks the kernel who connected (`SO_PEERCRED`) and by default
//! accepts only its own effective uid, the rule every transport applies to objects it did not
//! create ([`ipc_core::Adoption`]); `owner=UID|NAME|any` and `group=GID|NAME` widen it. A peer
//! refused is told why before it is closed: its send fails with [`Error::PermissionDenied`]
//! naming its pid and uid, and the receiver keeps the latest refusals
//! ([`UnixReceiver::refused_peers`]). The sender applies the same rule to the receiver, so a
//! name squatted by another user (the abstract namespace has no permissions) is
//! [`Error::Incompatible`].
//!
//! The socket file gets `mode` (default `0600`) and is removed by the receiver that made it. A
//! socket file left by a receiver that died is replaced, only if nobody listens on it and it is
//! ours; a receiver listening there is [`Error::AlreadyExists`]; anything else at the path (a
//! regular file, a directory, another user's socket) is [`Error::Incompatible`] and left alone.
//!
//! Other programs speak it directly: each record is the message followed by one tag byte,
//! `M` (`0x4d`), so a record of the tag alone is an empty message and never reads as the end of
//! the connection. A record of no bytes is not this format and is [`Error::Corrupted`] (the
//! receiver drops that connection). A sender the receiver refuses gets one record before the
//! close: the reason, then `R`. From Python (`ipc-cli/tests/foreign_sockets.rs` runs such a
//! client):
//!
//! ```text
//! s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
//! s.connect("/run/app.sock")       # ipc recv unix:/run/app.sock
//! s.send(b"hello" + b"M")
//! ```
//!
//! A sender retries connecting until `open_timeout` (default 10 s) while nobody listens, then
//! gives [`Error::NotFound`]. `capacity` is the sender's socket buffer in bytes (at least one
//! message); `message_size` (default 64 KiB) must fit it, within `net.core.wmem_max` for
//! unprivileged processes ([`Error::LimitExceeded`] otherwise).
//!
//! # `tcp:HOST:PORT`
//!
//! **TCP has no authentication: anyone who reaches the port can send. Use it on loopback or a
//! trusted network only.** Messages are laid on each connection in the
//! [`framing`](ipc_core::framing) every byte stream of the workspace uses, with `TCP_NODELAY`.
//! The receiver listens (port 0: the kernel picks one, see [`TcpReceiver::spec`]; a port in use
//! is [`Error::AlreadyExists`]); senders connect, retrying until `open_timeout` (then
//! [`Error::NotFound`], or [`Error::Timeout`] when the host never answered). A closed or reset
//! connection is [`Error::Disconnected`]; a frame a dead sender left unfinished is dropped,
//! never delivered in part.
//!
//! `capacity` is the sender's *window*: the bytes of frames (a frame is its message and
//! 5 bytes, 65 from 4092 bytes on; see [`framing`](ipc_core::framing)) it may have sent that
//! the receiver has not yet taken out with a receive. Default [`DEFAULT_TCP_WINDOW`] (1 MiB),
//! grown to sixteen frames of `message_size` (at most `i32::MAX` bytes): a sender with less in
//! flight waits for acknowledgements while the connection idles (64 KiB messages in a 256 KiB
//! window ran at 1.4–1.5× the raw loop's time; 1 MiB messages with room for one frame, at 2×,
//! with four frames at 1.08–1.14×, with sixteen at 1.01–1.02×). The window is credit, not
//! memory: the sender's socket buffer is sized to hold it, but no larger than
//! `net.core.wmem_max` allows, and a send that finds the socket full waits (or is `Full`) as
//! when the credit is spent. A
//! `capacity` smaller than one frame is [`Error::InvalidSpec`]. A receiver's `capacity` has no
//! effect. When the window is used up, `try_send` is [`Error::Full`] and stays so until the
//! receiver takes messages out (TCP's own window cannot promise that: the receiver's kernel
//! merges small segments and reopens it with nobody reading); `send_timeout` and `send` wait
//! for credit, asleep in `poll`. A frame that meets the end of the window goes in part, and is
//! finished (or, after a timeout, abandoned) as any frame a full stream took in part.
//!
//! ## Wire protocol (both ends are this crate; not for foreign programs)
//!
//! | direction         | bytes | what                                                      |
//! |-------------------|-------|-----------------------------------------------------------|
//! | sender → receiver | 8     | [`TCP_HELLO_MAGIC`] (`ipc-tcp1`), once, first             |
//! | sender → receiver | 8     | the window, `u64` little endian (1..=`i32::MAX`), once     |
//! | sender → receiver | ...   | frames of [`ipc_core::framing`], counted against the window |
//! | receiver → sender | 8     | acknowledgement: total frame bytes taken out so far, `u64` LE |
//!
//! Frames the receiver drops (an aborted frame) count as taken out when dropped. The receiver
//! acknowledges only when the sender has used all of its window (everything it could send has
//! been read), and then once half the window, or every whole frame read, has been taken out
//! (the sender refills that half while the rest is taken out). So a stream of small messages
//! costs an 8-byte write per half window at most, not per message, and a receiver that keeps
//! up sends none. That is also why an acknowledgement never costs data: a sender that closed its
//! socket is reset by its kernel when one arrives, throwing away what it had not transmitted,
//! and when one is sent the sender has nothing left in flight. Acknowledgements are written
//! without waiting and without `SIGPIPE`; one the socket has no room for goes at the next
//! receive, and a sender gone is no error of the receiver's. The sender reads them, without
//! waiting, when it runs out of credit; one that does not move forward or covers more than was
//! sent is [`Error::Corrupted`], for good. A peer whose first bytes are not the hello, or a
//! sender writing past its window, is [`Error::Corrupted`] at the receiver (and its connection
//! dropped).
//!
//! ```
//! use ipc_core::{Receiver, Sender, TransportSpec};
//! use ipc_socket::{TcpReceiver, TcpSender};
//!
//! # fn main() -> Result<(), ipc_core::Error> {
//! let mut rx = TcpReceiver::open(&"tcp:127.0.0.1:0".parse()?)?;
//! let mut tx = TcpSender::open(rx.spec())?; // tcp:127.0.0.1:<the port picked>
//! tx.send(b"hello")?;
//! let mut buf = vec![0; rx.max_message_size()];
//! let n = rx.recv(&mut buf)?;
//! assert_eq!(&buf[..n], b"hello");
//! # Ok(())
//! # }
//! ```
//!
//! # Many senders
//!
//! A unix or TCP receiver owns its listening socket and every connection it accepted; its
//! readiness descriptor is one epoll set of them all. Senders take turns (one message each
//! from those ready, then the kernel is asked again); each sender's messages arrive in order.
//! As with a FIFO, a receiver that never had a sender waits; once one has connected,
//! [`Error::Disconnected`] comes when every sender has gone and its messages were received.
//! Senders that come later are received from again.
//!
//! # `socketpair:` — a pipe in both directions
//!
//! [`pair::channel`] makes a `SOCK_SEQPACKET` socket pair; each end is a [`Sender`](ipc_core::Sender) and a
//! [`Receiver`](ipc_core::Receiver). [`SocketPairEnd::inherit`] hands an end to the child a [`Command`] spawns,
//! exactly as `ipc_pipe::PipeReceiver::inherit` does, and returns the string the child opens
//! (`socketpair:fd=N`, e.g. through `ipc::open_receiver`, or [`pair::open`] for both
//! directions). Drop the [`Inherited`](pair::Inherited) after spawning, so each side sees the
//! other go away.
//!
//! ```
//! use ipc_core::{Receiver, Sender};
//! use ipc_socket::SocketConfig;
//!
//! # fn main() -> Result<(), ipc_core::Error> {
//! let (mut parent, mut child) = ipc_socket::pair::channel(&SocketConfig::default())?;
//! parent.send(b"job")?;
//! let mut buf = vec![0; 64 * 1024];
//! let n = child.recv(&mut buf)?;
//! child.send(&buf[..n])?; // and back
//! assert_eq!(parent.recv(&mut buf)?, 3);
//! // With a real child: `let handed = child.inherit(&mut cmd)?;`, pass
//! // `handed.spec().to_string()` to it, spawn, then drop `handed`.
//! # Ok(())
//! # }
//! ```
//!
//! [`Command`]: std::process::Command
//!
//! # Event loops
//!
//! Every endpoint is a [`Readiness`](ipc_core::Readiness) on one descriptor, level-triggered,
//! with nothing to arm or consume: a unix sender's (or socket pair end's) socket, writable when
//! its buffer has room and in error once the peer has gone; a receiver's epoll set, readable
//! when a sender connects, sends or leaves. A TCP receiver that read a whole frame ahead says
//! "retry now" in `prepare_wait`. A TCP sender's descriptor is an epoll set of its socket,
//! readable: `prepare_wait` points it at the acknowledgements (the socket readable, which the
//! receiver's going makes it too) when the window is used up, and at room in the socket
//! otherwise.
//!
//! # Signals
//!
//! Sends pass `MSG_NOSIGNAL`: a closed peer is [`Error::Disconnected`], never `SIGPIPE`.
//! `EINTR` is retried and deadlines are kept.
//!
//! # References
//!
//! `unix(7)` (`SO_PEERCRED`, abstract names), `socket(7)` (`SO_SNDBUF`), `tcp(7)`,
//! `socketpair(2)`, `epoll(7)`.
#![deny(unsafe_code)]

mod credit;
mod multi;
pub mod pair;
mod seq;
mod sys;
mod tcp;
mod unix;

use std::time::Duration;

use ipc_core::framing::MAX_PAYLOAD;
use ipc_core::registry::Scheme;
use ipc_core::{Error, Options, Result, Transport, WaitStrategy};

pub use credit::TCP_HELLO_MAGIC;
pub use pair::SocketPairEnd;
pub use tcp::{DEFAULT_TCP_WINDOW, TcpReceiver, TcpSender};
pub use unix::{DEFAULT_MODE, RefusedPeer, SocketPath, UnixReceiver, UnixSender};

/// The transports of this crate, `unix:`, `tcp:` and `socketpair:`, for a
/// [`Registry`](ipc_core::registry::Registry).
pub static SCHEMES: &[&Scheme] = &[
    &Scheme::built_in(
        Transport::Unix,
        |spec| Ok(Box::new(UnixSender::open(spec)?)),
        |spec| Ok(Box::new(UnixReceiver::open(spec)?)),
    ),
    &Scheme::built_in(
        Transport::Tcp,
        |spec| Ok(Box::new(TcpSender::open(spec)?)),
        |spec| Ok(Box::new(TcpReceiver::open(spec)?)),
    ),
    &Scheme::built_in(
        Transport::SocketPair,
        |spec| Ok(Box::new(pair::open(spec)?)),
        |spec| Ok(Box::new(pair::open(spec)?)),
    ),
];

/// How long a sender waits for its receiver when the string gives no `open_timeout`.
pub const DEFAULT_OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// `message_size` when the transport string gives none.
pub const DEFAULT_MESSAGE_SIZE: usize = 64 * 1024;

/// Longest pause between two attempts of a sender waiting for its receiver.
const MAX_BACKOFF: Duration = Duration::from_millis(10);

/// How a socket transport is sized, from a transport string's options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketConfig {
    /// Largest message in bytes.
    pub message_size: usize,
    /// Socket buffer in bytes (`SO_SNDBUF`) of a unix or socket pair sender, if asked for; by
    /// default the kernel's, grown to hold one message. For a TCP sender, its window in bytes
    /// of frames (see the crate documentation); a TCP receiver ignores it.
    pub capacity: Option<usize>,
    /// How a receiver waits for a message (`wait=`): sleeps in the kernel at once (`park`, the
    /// default), polls for [`SPIN_FOR`](ipc_core::SPIN_FOR) first (`spin`), or never sleeps
    /// (`busy`); see [`poll_before_sleep`](ipc_core::poll_before_sleep). A sender ignores it.
    pub wait: WaitStrategy,
}

impl Default for SocketConfig {
    fn default() -> SocketConfig {
        SocketConfig {
            message_size: DEFAULT_MESSAGE_SIZE,
            capacity: None,
            wait: WaitStrategy::Park,
        }
    }
}

impl SocketConfig {
    /// Reads `message_size` and `capacity` from `options`.
    ///
    /// Errors: [`Error::InvalidSpec`] for a `message_size` above [`MAX_PAYLOAD`] (the frame
    /// format's bound) or a `capacity` above `i32::MAX` (`SO_SNDBUF` takes an `int`).
    pub fn from_options(options: &Options) -> Result<SocketConfig> {
        let message_size = options.message_size.unwrap_or(DEFAULT_MESSAGE_SIZE as u64);
        if message_size > MAX_PAYLOAD as u64 {
            return Err(Error::invalid_spec(
                format!("message_size={message_size}"),
                format!("message_size of a socket is at most {MAX_PAYLOAD} bytes"),
            ));
        }
        let capacity = match options.capacity {
            Some(c) if c > i32::MAX as u64 => {
                return Err(Error::invalid_spec(
                    format!("capacity={c}"),
                    "capacity of a socket is at most i32::MAX bytes (SO_SNDBUF takes an int)",
                ));
            }
            c => c.map(|c| c as usize),
        };
        Ok(SocketConfig {
            message_size: message_size as usize,
            capacity,
            wait: options.wait.unwrap_or(WaitStrategy::Park),
        })
    }

    /// Adds the options that differ from the defaults to `options`, so a peer opened from the
    /// resulting string sizes messages (and waits for them) the same way.
    fn write_options(&self, options: &mut Options) {
        if self.message_size != DEFAULT_MESSAGE_SIZE {
            options.message_size = Some(self.message_size as u64);
        }
        options.capacity = self.capacity.map(|c| c as u64);
        if self.wait != WaitStrategy::Park {
            options.wait = Some(self.wait);
        }
    }
}
