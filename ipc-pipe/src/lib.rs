//! Anonymous pipes as message channels, and the way to hand one end to a child process.
//!
//! A pipe (`pipe2(2)`) is a byte stream; messages are framed on it by
//! [`ipc_core::framing`], or laid on it as text lines or raw bytes with `framing=lines` /
//! `framing=raw` ([`PipeConfig::framing`], [`ipc_core::stream`]) so that a program that does
//! not use this crate (a C child reading its stdin, a shell) can be the other end. With
//! `framing=packets` the pipe is in packet mode and each message of up to 4096 bytes is one
//! packet, without a header: as fast as a plain `write`/`read` loop for messages of about a
//! page, and readable by one `read` per message. It lives as
//! long as a descriptor to it is open, so there is nothing to clean up, and it connects a
//! process with the children it spawns.
//!
//! ```
//! use ipc_core::{Receiver, Sender};
//! use ipc_pipe::PipeConfig;
//!
//! # fn main() -> Result<(), ipc_core::Error> {
//! let (mut tx, mut rx) = ipc_pipe::channel(&PipeConfig::default())?;
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
//! Messages of up to a page as packets (`pipe:fd=N?framing=packets` in a transport string):
//!
//! ```
//! use ipc_core::{Framing, Receiver, Sender};
//! use ipc_pipe::PipeConfig;
//!
//! # fn main() -> Result<(), ipc_core::Error> {
//! let config = PipeConfig {
//!     message_size: 4096,
//!     framing: Framing::Packets,
//!     ..PipeConfig::default()
//! };
//! let (mut tx, mut rx) = ipc_pipe::channel(&config)?;
//! tx.send(&[1; 4096])?;
//! tx.send(b"short")?;
//! // Both wait in the pipe; the kernel keeps them apart, and a receive takes one.
//! let mut buf = vec![0; 4096];
//! assert_eq!(rx.recv(&mut buf)?, 4096);
//! assert_eq!(rx.recv(&mut buf)?, 5);
//! // A zero-byte write makes no packet.
//! assert!(matches!(tx.send(b""), Err(ipc_core::Error::InvalidMessage { .. })));
//! # Ok(())
//! # }
//! ```
//!
//! # Handing an end to a child
//!
//! [`PipeReceiver::inherit`] (or [`PipeSender::inherit`]) arranges for the child that a
//! [`Command`] spawns to inherit the descriptor, and returns the transport string the child
//! opens it with (`pipe:fd=N`, e.g. through `ipc::open_receiver`). `FD_CLOEXEC` is cleared in
//! the child only, on that descriptor only. Drop the [`Inherited`] after spawning: that closes
//! the parent's copy, so each side sees the other go away. The string carries the options that
//! both ends must agree on (`message_size`, `framing`).
//!
//! A child that does not use this crate reads or writes the descriptor directly: give the
//! pipe `framing=lines`, `framing=raw` or `framing=packets` (one `read` per message), and pass
//! the descriptor number (the `fd=N` of the string) or make it the child's stdin/stdout
//! yourself.
//!
//! ```no_run
//! use std::process::Command;
//! use ipc_core::Sender;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let (mut tx, rx) = ipc_pipe::channel(&Default::default())?;
//! let mut cmd = Command::new("worker");
//! let handed = rx.inherit(&mut cmd)?;
//! cmd.arg(handed.spec().to_string()); // "pipe:fd=4", say
//! let mut child = cmd.spawn()?;
//! drop(handed);
//! tx.send(b"job")?;
//! # child.wait()?;
//! # Ok(())
//! # }
//! ```
//!
//! # Several writers
//!
//! The kernel writes up to `PIPE_BUF` (4096) bytes atomically, so frames of messages up to
//! [`ATOMIC_MESSAGE_MAX`] bytes never interleave, whoever writes them. A larger frame is written
//! in pieces that could interleave with another writer's, so a pipe whose `message_size`
//! exceeds [`ATOMIC_MESSAGE_MAX`] has exactly one writer: [`PipeSender::try_clone`] refuses
//! it with [`Error::LimitExceeded`]. (We refuse rather than lock: a lock on the pipe would cost
//! every message a system call, and cannot tell apart processes that share an inherited
//! descriptor.)
//!
//! The pieces are at most 8 KiB, even where the pipe has room for more: the kernel keeps two
//! spare pages per pipe, and a write of more takes the rest from the page allocator while it
//! holds the pipe's lock. Messages of 16 KiB to 1 MiB went through 1.6–2.5× as fast that way
//! as in one write (`docs/measurements/pipe-write-chunks.md` in the repository).
//!
//! # Disconnection and signals
//!
//! When every write end is closed, the receiver gets the messages already sent, then
//! [`Error::Disconnected`]. When the read end is closed, a send fails with
//! [`Error::Disconnected`], and no `SIGPIPE` is raised. In a process that ignores `SIGPIPE`
//! when the endpoint is made (every Rust program, unless it changed that), a blocking write
//! is a plain `write(2)`, which then fails with `EPIPE` and kills nothing. Otherwise (a C host
//! keeping the default disposition) writes use `pwritev2` with `RWF_NOSIGNAL`; on kernels
//! before 6.18 the signal is blocked around the write and consumed. A program that restores
//! the default disposition after making an endpoint must not rely on this: make endpoints
//! after changing it. `EINTR` is retried and deadlines are kept.
//!
//! # Event loops
//!
//! Every end ([`PipeSender`], [`PipeReceiver`], and the [`StreamSender`] / [`StreamReceiver`]
//! under them and under FIFOs) implements [`AsFd`] and is its own [`Readiness`](ipc_core::Readiness): the
//! descriptor is the pipe's, readable for a receiver and writable for a sender, so an event
//! loop registers it once. The kernel's readiness of a pipe is level-triggered and exact, so
//! nothing is armed or consumed and it costs nothing beyond the `poll`/`epoll_wait` itself.
//! The other side's leaving shows: a receiver's descriptor becomes readable (`POLLHUP`) when
//! the last writer closes, a sender's reports `POLLERR` when the last reader closes, and the
//! next `try_` call returns [`Error::Disconnected`].
//!
//! Two things the descriptor cannot show are covered: a receiver may have read a whole frame
//! ahead into its buffer, and then [`Readiness::prepare_wait`](ipc_core::Readiness::prepare_wait) says "retry now"; a frame may
//! be larger than the pipe's free room, and [`Sender::try_send_part`](ipc_core::Sender::try_send_part) then sends it in parts
//! across wake-ups without tearing it
//! ([`FrameWriter::send_part`](ipc_core::framing::FrameWriter::send_part)).
//!
//! A FIFO receiver opened before any writer came is not readable until a writer has come
//! (Linux reports no hang-up on a FIFO that never had a writer); once that writer leaves, it
//! is readable and the next `try_recv` returns `Disconnected`.
//!
//! # References
//!
//! `pipe(7)`, `pipe2(2)`, `fcntl(2)` (`F_SETPIPE_SZ`), `preadv2(2)` (`RWF_NOWAIT`).
#![deny(unsafe_code)]

mod first_writer;
pub mod raw;
mod stream;
mod sys;

use std::os::fd::{AsFd, OwnedFd};
use std::process::Command;

use ipc_core::framing::{MAX_PAYLOAD, frame_len};
use ipc_core::registry::Scheme;
use ipc_core::stream::PACKET_MAX;
use ipc_core::{
    Address, Error, Framing, Options, Result, Transport, TransportSpec, Wait, WaitStrategy,
};

pub use first_writer::WriterWatch;
pub use raw::End;
pub use stream::{StreamReceiver, StreamSender};

/// The transport of this crate, `pipe:`, for a [`Registry`](ipc_core::registry::Registry).
pub static SCHEMES: &[&Scheme] = &[&Scheme::built_in(
    Transport::Pipe,
    |spec| Ok(Box::new(open_sender(spec)?)),
    |spec| Ok(Box::new(open_receiver(spec)?)),
)];

/// `PIPE_BUF`: writes up to this size are atomic.
pub const PIPE_BUF: usize = 4096;

/// Largest message whose frame is written atomically (`PIPE_BUF` less the framing).
pub const ATOMIC_MESSAGE_MAX: usize = PIPE_BUF - ipc_core::framing::FRAME_OVERHEAD;

/// `message_size` when the transport string gives none.
pub const DEFAULT_MESSAGE_SIZE: usize = 64 * 1024;

/// The least pipe size, unless a `capacity` is given, for frames that may exceed a page
/// (`message_size` above [`ATOMIC_MESSAGE_MAX`], not packets): twice the kernel's default. The
/// default `message_size` gets it anyway, its 64 KiB frame being rounded up to a power of two
/// pages.
pub const LARGE_FRAME_PIPE_SIZE: usize = 128 * 1024;

/// How a pipe (or FIFO) is sized, from a transport string's options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipeConfig {
    /// Largest message in bytes.
    pub message_size: usize,
    /// Pipe buffer size in bytes, if asked for; by default the smallest that holds one whole
    /// frame of `message_size` (so that `try_send` can always succeed on an empty pipe), and
    /// at least [`LARGE_FRAME_PIPE_SIZE`] when that frame may exceed a page.
    pub capacity: Option<usize>,
    /// How messages are laid on the pipe (`framing=`): frames by default; `lines` or `raw` to
    /// talk to programs that do not use this crate; `packets` for messages of 1 to 4096 bytes
    /// as packets of a packet-mode pipe (see [`ipc_core::stream`]).
    pub framing: Framing,
    /// How a receiver waits for data (`wait=`): sleeps in `read` at once (`park`, the
    /// default), polls for [`SPIN_FOR`](ipc_core::SPIN_FOR) first (`spin`), or never sleeps
    /// (`busy`). Spinning turns a round trip of tens of microseconds (a wake-up each way) into
    /// one or two, for up to 20 µs of CPU each time the pipe runs dry.
    pub wait: WaitStrategy,
}

impl Default for PipeConfig {
    fn default() -> PipeConfig {
        PipeConfig {
            message_size: DEFAULT_MESSAGE_SIZE,
            capacity: None,
            framing: Framing::Frames,
            wait: WaitStrategy::Park,
        }
    }
}

impl PipeConfig {
    /// Reads `message_size`, `capacity` and `framing` from `options`.
    ///
    /// Errors: [`Error::InvalidSpec`] for a `message_size` above [`MAX_PAYLOAD`] (the frame
    /// format's bound) or a `capacity` above `i32::MAX` (`F_SETPIPE_SZ` takes an `int`): no
    /// machine takes them, whatever its settings. What this machine's `fs.pipe-max-size`
    /// refuses is found when the pipe is sized.
    pub fn from_options(options: &Options) -> Result<PipeConfig> {
        let too_big = |name: &str, value: u64, limit: usize, why: &str| {
            (value > limit as u64).then(|| {
                Error::invalid_spec(
                    format!("{name}={value}"),
                    format!("{name} of a pipe is at most {limit} bytes ({why})"),
                )
            })
        };
        let framing = options.framing.unwrap_or_default();
        let (default_size, largest, why) = match framing {
            Framing::Packets => (PACKET_MAX, PACKET_MAX, "PIPE_BUF, the largest packet"),
            _ => (DEFAULT_MESSAGE_SIZE, MAX_PAYLOAD, "the largest frame"),
        };
        let message_size = options.message_size.unwrap_or(default_size as u64);
        if let Some(e) = too_big("message_size", message_size, largest, why) {
            return Err(e);
        }
        let capacity = match options.capacity {
            Some(c) => {
                if let Some(e) = too_big(
                    "capacity",
                    c,
                    i32::MAX as usize,
                    "F_SETPIPE_SZ takes an int",
                ) {
                    return Err(e);
                }
                Some(c as usize)
            }
            None => None,
        };
        Ok(PipeConfig {
            message_size: message_size as usize,
            capacity,
            framing,
            wait: options.wait.unwrap_or(WaitStrategy::Park),
        })
    }

    /// Whether every message is written with one atomic write, so that several writers' messages
    /// never interleave: frames (and lines, raw bytes) up to `PIPE_BUF`, and every packet.
    pub fn atomic(&self) -> bool {
        self.framing == Framing::Packets || self.message_size <= ATOMIC_MESSAGE_MAX
    }

    /// The pipe buffer size to ask the kernel for: the capacity asked for, else one whole
    /// frame, but no more than `fs.pipe-max-size` (a frame larger than the pipe is written in
    /// pieces as the reader drains it; only `try_send` of it then needs a reader that keeps up).
    ///
    /// A frame of more than a page takes two of the pipe's page buffers, or one and a share of
    /// another, so a default pipe of 16 pages holds about 10 of 4 KiB messages' frames against
    /// 16 raw 4096-byte writes: such pipes get at least [`LARGE_FRAME_PIPE_SIZE`]. A packet is
    /// at most a page, so packets keep the kernel's default.
    pub fn pipe_size(&self) -> usize {
        self.capacity.unwrap_or_else(|| {
            let floor = if self.atomic() {
                0
            } else {
                LARGE_FRAME_PIPE_SIZE
            };
            frame_len(self.message_size).max(floor).min(pipe_max_size())
        })
    }

    /// Sizes the pipe behind `fd`. Grows it only when needed unless a capacity was asked for,
    /// and tolerates `EBUSY` (a FIFO whose other side already holds more data than we asked).
    pub fn apply(&self, fd: std::os::fd::BorrowedFd<'_>) -> Result<()> {
        let wanted = self.pipe_size();
        let current = raw::pipe_size(fd)?;
        if current == wanted || (self.capacity.is_none() && current >= wanted) {
            return Ok(());
        }
        match raw::set_pipe_size(fd, wanted) {
            Err(Error::Io { source, .. }) if source.raw_os_error() == Some(libc::EBUSY) => Ok(()),
            other => other.map(drop),
        }
    }

    /// Adds the options that differ from the defaults to `options`, so a peer opened from the
    /// resulting string frames messages (and waits for them) the same way.
    fn write_options(&self, options: &mut Options) {
        // Always said for packets: their default differs.
        if self.message_size != DEFAULT_MESSAGE_SIZE || self.framing == Framing::Packets {
            options.message_size = Some(self.message_size as u64);
        }
        options.capacity = self.capacity.map(|c| c as u64);
        if self.framing != Framing::Frames {
            options.framing = Some(self.framing);
        }
        if self.wait != WaitStrategy::Park {
            options.wait = Some(self.wait);
        }
    }
}

/// `/proc/sys/fs/pipe-max-size`: the largest pipe an unprivileged process may ask for.
pub fn pipe_max_size() -> usize {
    static MAX: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(1 << 20)
    })
}

/// Creates a pipe and returns its two ends as a message channel.
pub fn channel(config: &PipeConfig) -> Result<(PipeSender, PipeReceiver)> {
    let (read, write) = raw::pipe()?;
    config.apply(read.as_fd())?;
    Ok((
        PipeSender {
            stream: StreamSender::new(write, config.message_size, config.framing)?,
            config: *config,
        },
        PipeReceiver {
            stream: StreamReceiver::new(read, config.message_size, config.framing)
                .with_wait(config.wait),
            config: *config,
        },
    ))
}

/// Opens the sending end named by `spec` (`pipe:fd=N`), inherited from the parent.
pub fn open_sender(spec: &TransportSpec) -> Result<PipeSender> {
    let (fd, config) = adopt(spec, End::Write)?;
    Ok(PipeSender {
        stream: StreamSender::new(fd, config.message_size, config.framing)?,
        config,
    })
}

/// Opens the receiving end named by `spec` (`pipe:fd=N`), inherited from the parent.
pub fn open_receiver(spec: &TransportSpec) -> Result<PipeReceiver> {
    let (fd, config) = adopt(spec, End::Read)?;
    Ok(PipeReceiver {
        stream: StreamReceiver::new(fd, config.message_size, config.framing).with_wait(config.wait),
        config,
    })
}

fn adopt(spec: &TransportSpec, end: End) -> Result<(OwnedFd, PipeConfig)> {
    if spec.transport != Transport::Pipe {
        return Err(Error::invalid_spec(
            spec.to_string(),
            "not a pipe transport string",
        ));
    }
    let config = PipeConfig::from_options(&spec.options)?;
    match spec.address {
        Address::Fd(fd) => Ok((raw::adopt_fd(fd, end)?, config)),
        _ => Err(Error::invalid_spec(
            spec.to_string(),
            "an unnamed pipe is opened with ipc_pipe::channel() and handed to a child with \
             inherit(); the child opens `pipe:fd=N`",
        )),
    }
}

fn inherited_spec(fd: &OwnedFd, config: &PipeConfig) -> TransportSpec {
    use std::os::fd::AsRawFd;
    let mut spec = TransportSpec {
        transport: Transport::Pipe,
        address: Address::Fd(fd.as_raw_fd()),
        options: Options::default(),
    };
    config.write_options(&mut spec.options);
    spec
}

/// An end of a pipe that a child process will inherit. Keep it until the child is spawned,
/// then drop it to close the parent's copy.
#[derive(Debug)]
pub struct Inherited {
    _fd: raw::InheritedFd,
    spec: TransportSpec,
}

impl Inherited {
    /// The transport string the child opens its end with (`pipe:fd=N`, with the options that
    /// make both ends agree).
    pub fn spec(&self) -> &TransportSpec {
        &self.spec
    }
}

/// The sending end of a pipe.
#[derive(Debug)]
pub struct PipeSender {
    stream: StreamSender,
    config: PipeConfig,
}

impl PipeSender {
    /// Another sender on the same pipe (`dup`). Only for pipes whose messages are written
    /// atomically (`message_size <= ATOMIC_MESSAGE_MAX`); else [`Error::LimitExceeded`].
    pub fn try_clone(&self) -> Result<PipeSender> {
        if !self.config.atomic() {
            return Err(several_writers_refused(self.config.message_size));
        }
        let fd = self
            .stream
            .fd()
            .try_clone_to_owned()
            .map_err(|e| Error::io("dup pipe", e))?;
        Ok(PipeSender {
            stream: StreamSender::new(fd, self.config.message_size, self.config.framing)?,
            config: self.config,
        })
    }

    /// Hands this end to the child `cmd` will spawn (see the crate documentation). A frame left
    /// half written by a timed-out send is completed first, waiting for the reader if need be.
    pub fn inherit(self, cmd: &mut Command) -> Result<Inherited> {
        let fd = self.stream.into_fd(Wait::Forever)?;
        let spec = inherited_spec(&fd, &self.config);
        Ok(Inherited {
            _fd: raw::inherit_fd(fd, cmd),
            spec,
        })
    }
}

/// Why a second writer is refused for messages above `PIPE_BUF`.
pub fn several_writers_refused(message_size: usize) -> Error {
    Error::LimitExceeded {
        what: format!(
            "writers of a pipe with message_size {message_size} (several writers need \
             message_size <= {ATOMIC_MESSAGE_MAX}, so each message is one atomic write)"
        ),
        limit: 1,
    }
}

ipc_core::forward_sender!(PipeSender => stream, AsFd);

/// The receiving end of a pipe.
#[derive(Debug)]
pub struct PipeReceiver {
    stream: StreamReceiver,
    config: PipeConfig,
}

impl PipeReceiver {
    /// Hands this end to the child `cmd` will spawn (see the crate documentation). Do it before
    /// receiving: messages already read ahead would be lost, so that is
    /// [`Error::Incompatible`].
    pub fn inherit(self, cmd: &mut Command) -> Result<Inherited> {
        let fd = self.stream.into_fd()?;
        let spec = inherited_spec(&fd, &self.config);
        Ok(Inherited {
            _fd: raw::inherit_fd(fd, cmd),
            spec,
        })
    }
}

ipc_core::forward_receiver!(PipeReceiver => stream, AsFd);

#[cfg(test)]
mod tests {
    use super::*;
    use ipc_core::{Receiver, Sender};
    use std::os::fd::IntoRawFd;

    #[test]
    fn frames_over_a_page_get_a_larger_pipe_unless_a_capacity_is_given() {
        let size_of = |message_size, framing, capacity| {
            let config = PipeConfig {
                message_size,
                capacity,
                framing,
                ..PipeConfig::default()
            };
            let (tx, _rx) = channel(&config).unwrap();
            raw::pipe_size(tx.stream.fd()).unwrap()
        };
        let default = size_of(64, Framing::Frames, None);
        assert_eq!(size_of(ATOMIC_MESSAGE_MAX, Framing::Frames, None), default);
        assert_eq!(
            size_of(ATOMIC_MESSAGE_MAX + 1, Framing::Frames, None),
            LARGE_FRAME_PIPE_SIZE.max(default)
        );
        assert_eq!(size_of(4096, Framing::Packets, None), default);
        assert_eq!(size_of(4096, Framing::Frames, Some(8192)), 8192);
    }

    #[test]
    fn capacity_sets_the_pipe_size_and_default_fits_one_frame() {
        let config = PipeConfig {
            message_size: 100,
            capacity: Some(1 << 20),
            ..PipeConfig::default()
        };
        let (tx, _rx) = channel(&config).unwrap();
        assert_eq!(raw::pipe_size(tx.stream.fd()).unwrap(), 1 << 20);
        let (tx, _rx) = channel(&PipeConfig::default()).unwrap();
        assert!(raw::pipe_size(tx.stream.fd()).unwrap() >= frame_len(DEFAULT_MESSAGE_SIZE));
        // Messages larger than the largest pipe still go through, in pieces.
        let big = 2 * pipe_max_size();
        let (mut tx, mut rx) = channel(&PipeConfig {
            message_size: big,
            capacity: None,
            ..PipeConfig::default()
        })
        .unwrap();
        let writer = std::thread::spawn(move || tx.send(&vec![7; big]));
        let mut buf = vec![0; big];
        assert_eq!(rx.recv(&mut buf).unwrap(), big);
        assert!(buf.iter().all(|&b| b == 7));
        writer.join().unwrap().unwrap();
    }

    #[test]
    fn adopting_checks_the_descriptor() {
        let file = std::fs::File::open("/proc/self/status").unwrap();
        let not_a_pipe = file.into_raw_fd();
        assert!(matches!(
            raw::adopt_fd(not_a_pipe, End::Read),
            Err(Error::Incompatible { .. })
        ));
        let (read, write) = raw::pipe().unwrap();
        let (read, write) = (read.into_raw_fd(), write.into_raw_fd());
        assert!(matches!(
            raw::adopt_fd(read, End::Write),
            Err(Error::Incompatible { .. })
        ));
        let owned = raw::adopt_fd(read, End::Read).unwrap();
        assert!(matches!(
            raw::adopt_fd(read, End::Read),
            Err(Error::AlreadyExists { .. })
        ));
        drop(owned);
        drop(raw::adopt_fd(write, End::Write).unwrap());
        assert!(matches!(
            raw::adopt_fd(100_000, End::Read),
            Err(Error::NotFound { .. })
        ));
        nix::unistd::close(not_a_pipe).unwrap();
    }

    #[test]
    fn a_fifo_handed_over_as_a_descriptor_supports_try_and_timeout() {
        use std::os::fd::IntoRawFd;
        let path = format!("/tmp/ipc-pipe-unit-{}.fifo", std::process::id());
        struct Remove<'a>(&'a str);
        impl Drop for Remove<'_> {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(self.0);
            }
        }
        let _remove = Remove(&path);
        nix::unistd::mkfifo(
            path.as_str(),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let open =
            |flags| nix::fcntl::open(path.as_str(), flags, nix::sys::stat::Mode::empty()).unwrap();
        let read = open(nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_NONBLOCK);
        let write = open(nix::fcntl::OFlag::O_WRONLY);
        let spec = |fd: i32| -> TransportSpec { format!("pipe:fd={fd}").parse().unwrap() };
        let mut rx = open_receiver(&spec(read.into_raw_fd())).unwrap();
        let mut tx = open_sender(&spec(write.into_raw_fd())).unwrap();
        let mut buf = vec![0; DEFAULT_MESSAGE_SIZE];
        assert!(matches!(rx.try_recv(&mut buf), Err(Error::Empty)));
        tx.try_send(b"via fd").unwrap();
        let n = rx
            .recv_timeout(&mut buf, std::time::Duration::from_secs(5))
            .unwrap();
        assert_eq!(&buf[..n], b"via fd");
    }

    #[test]
    fn clones_only_for_atomic_messages() {
        let (tx, _rx) = channel(&PipeConfig::default()).unwrap();
        assert!(matches!(
            tx.try_clone(),
            Err(Error::LimitExceeded { limit: 1, .. })
        ));
        let (tx, mut rx) = channel(&PipeConfig {
            message_size: ATOMIC_MESSAGE_MAX,
            capacity: None,
            ..PipeConfig::default()
        })
        .unwrap();
        let mut other = tx.try_clone().unwrap();
        other.send(&[5; ATOMIC_MESSAGE_MAX]).unwrap();
        let mut buf = vec![0; ATOMIC_MESSAGE_MAX];
        assert_eq!(rx.recv(&mut buf).unwrap(), ATOMIC_MESSAGE_MAX);
    }
}
