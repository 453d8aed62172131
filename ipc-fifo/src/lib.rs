//! Named pipes (FIFOs) as message channels between unrelated processes.
//!
//! A FIFO is a pipe with a name in the file system (`mkfifo(3)`); messages are framed on it
//! exactly as on an anonymous pipe ([`ipc_pipe::StreamSender`] / [`ipc_pipe::StreamReceiver`]).
//!
//! ```no_run
//! use ipc_core::{Receiver, TransportSpec};
//! use ipc_fifo::FifoReceiver;
//!
//! # fn main() -> Result<(), ipc_core::Error> {
//! // One process receives (creating the FIFO, mode 0600) ...
//! let spec: TransportSpec = "fifo:/tmp/app.fifo".parse()?;
//! let mut rx = FifoReceiver::open(&spec)?;
//! let mut buf = vec![0; rx.max_message_size()];
//! let n = rx.recv(&mut buf)?; // waits for a writer, then for a message
//! # Ok(())
//! # }
//! ```
//!
//! ```no_run
//! # use ipc_core::{Sender, TransportSpec};
//! # fn main() -> Result<(), ipc_core::Error> {
//! // ... another sends (waiting up to open_timeout for the receiver to be there).
//! let spec: TransportSpec = "fifo:/tmp/app.fifo?open_timeout=2s".parse()?;
//! let mut tx = ipc_fifo::FifoSender::open(&spec)?;
//! tx.send(b"hello")?;
//! # Ok(())
//! # }
//! ```
//!
//! # Lifecycle
//!
//! The receiver creates the FIFO unless `create=never` (senders default to `create=never`).
//! Whoever created it removes it when dropped, unless [`FifoReceiver::release_path`] says
//! otherwise. An existing path is used only if it is a FIFO owned by this user whose mode grants
//! nothing beyond the requested one; a regular file, a symbolic link, another user's FIFO or a
//! wider mode is [`Error::Incompatible`] — a name squatted by someone else fails closed.
//!
//! # Waiting for the other side
//!
//! Opening never hangs: the receiver opens without waiting, and its first receive waits (within
//! its deadline) for a writer. It learns of it from an inotify watch on the path (one
//! descriptor, until a writer has come), not by polling the FIFO: the first `poll` of a pipe
//! makes every later write on it costlier (see [`ipc_pipe::WriterWatch`]). Where inotify is
//! not available (`fs.inotify.max_user_instances` reached), the receiver polls. A sender
//! waits up to `open_timeout` (default 10 s) for the FIFO to exist and a reader to open it,
//! then gives [`Error::NotFound`] (never created) or [`Error::Timeout`] (no reader). Linux
//! gives no notification for either, so the sender retries with a backoff of up to 10 ms.
//!
//! # Several writers, disconnection
//!
//! As with pipes, messages up to [`ipc_pipe::ATOMIC_MESSAGE_MAX`] bytes are atomic and any
//! number of senders may share a FIFO. A sender whose `message_size` is larger holds an
//! exclusive `flock` on the FIFO, and senders with small messages a shared one, so a second
//! sender that could interleave is refused at open with [`Error::LimitExceeded`]. When all
//! senders close, the receiver gets the remaining messages then [`Error::Disconnected`]; when
//! the receiver closes, sends fail with [`Error::Disconnected`], never `SIGPIPE`.
//!
//! # Event loops
//!
//! Both ends implement [`AsFd`] and are their own [`Readiness`](ipc_core::Readiness) on the FIFO's descriptor,
//! exactly as pipe ends are (see `ipc_pipe`, "Event loops"): level-triggered, nothing to arm
//! or consume, and [`Sender::try_send_part`](ipc_core::Sender::try_send_part) for messages larger than the FIFO's free room. A
//! receiver opened before any writer came does not become readable until a writer comes (its
//! first `try_recv`s return [`Error::Empty`]); once the last writer has gone it is readable
//! (`POLLHUP`) and `try_recv` returns [`Error::Disconnected`]. A sender's descriptor reports
//! `POLLERR` once the receiver has gone, and `try_send` then returns `Disconnected`.
//!
//! # References
//!
//! `fifo(7)`, `mkfifo(3)`, `open(2)` (`ENXIO` for a write-only open without readers), `flock(2)`.
#![deny(unsafe_code)]

mod sys;

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use ipc_core::registry::Scheme;
use ipc_core::{
    Address, Adoption, Create, Error, FileKind, Owner, Removable, Result, Transport, TransportSpec,
    Wait,
};
use ipc_pipe::{PipeConfig, StreamReceiver, StreamSender, WriterWatch};
use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::stat::{FileStat, Mode, fstat, lstat};

/// The transport of this crate, `fifo:`, for a [`Registry`](ipc_core::registry::Registry).
pub static SCHEMES: &[&Scheme] = &[&Scheme::built_in(
    Transport::Fifo,
    |spec| Ok(Box::new(FifoSender::open(spec)?)),
    |spec| Ok(Box::new(FifoReceiver::open(spec)?)),
)];

/// How long a sender waits for the FIFO and its reader when the string gives no
/// `open_timeout`.
pub const DEFAULT_OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Permissions of a FIFO we create when the string gives no `mode`.
pub const DEFAULT_MODE: u32 = 0o600;

/// Longest pause between two attempts of a sender waiting for its reader.
const MAX_BACKOFF: Duration = Duration::from_millis(10);

/// The receiving end of a FIFO.
#[derive(Debug)]
pub struct FifoReceiver {
    stream: StreamReceiver,
    _created: Option<Owner<FifoPath>>,
    path: PathBuf,
}

impl FifoReceiver {
    /// Opens (by default creating) the FIFO that `spec` names, for reading. Does not wait for
    /// a writer.
    pub fn open(spec: &TransportSpec) -> Result<FifoReceiver> {
        let target = Target::from_spec(spec, Create::IfMissing)?;
        let created = target.create_if_asked()?;
        // Before the open: from then on, writers may come.
        let watch = WriterWatch::on(&target.path);
        let fd = target.open_checked(OFlag::O_RDONLY)?;
        let created = created.map(|identity| {
            Owner::new(FifoPath {
                path: target.path.clone(),
                identity,
            })
        });
        target.config.apply(fd.as_fd())?;
        Ok(FifoReceiver {
            stream: StreamReceiver::new_fifo(
                fd,
                target.config.message_size,
                target.config.framing,
                watch,
            )
            .with_wait(target.config.wait),
            _created: created,
            path: target.path,
        })
    }

    /// The FIFO's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps the FIFO in the file system after this receiver is dropped (if it created it).
    pub fn release_path(&mut self) {
        if let Some(owner) = self._created.take() {
            owner.release();
        }
    }
}

ipc_core::forward_receiver!(FifoReceiver => stream, AsFd);

/// The sending end of a FIFO.
#[derive(Debug)]
pub struct FifoSender {
    stream: StreamSender,
    _created: Option<Owner<FifoPath>>,
}

impl FifoSender {
    /// Opens the FIFO that `spec` names for writing, waiting up to `open_timeout` for it to
    /// exist (unless `create` allows creating it) and for a reader.
    pub fn open(spec: &TransportSpec) -> Result<FifoSender> {
        let target = Target::from_spec(spec, Create::Never)?;
        let wait = Wait::timeout(spec.options.open_timeout.unwrap_or(DEFAULT_OPEN_TIMEOUT));
        let created = target.create_if_asked()?.map(|identity| {
            Owner::new(FifoPath {
                path: target.path.clone(),
                identity,
            })
        });
        let fd = target.open_writer_waiting(wait)?;
        let exclusive = !target.config.atomic();
        match sys::try_flock(fd.as_fd(), exclusive) {
            Ok(()) => {}
            Err(Errno::EWOULDBLOCK) => {
                return Err(ipc_pipe::several_writers_refused(
                    target.config.message_size,
                ));
            }
            Err(e) => return Err(Error::io(format!("flock {}", target.name), e.into())),
        }
        target.config.apply(fd.as_fd())?;
        Ok(FifoSender {
            stream: StreamSender::new_private(
                fd,
                target.config.message_size,
                target.config.framing,
            )?,
            _created: created,
        })
    }
}

ipc_core::forward_sender!(FifoSender => stream, AsFd);

/// Device and inode: what tells "the FIFO we made" from a file put in its place later.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
}

impl From<&FileStat> for Identity {
    fn from(st: &FileStat) -> Identity {
        Identity {
            dev: st.st_dev,
            ino: st.st_ino,
        }
    }
}

/// A FIFO this process created; removing it unlinks the path only if it is still that FIFO.
#[derive(Debug)]
pub struct FifoPath {
    path: PathBuf,
    identity: Identity,
}

impl Removable for FifoPath {
    fn remove(&self) -> Result<()> {
        match lstat(&self.path) {
            Ok(st) if Identity::from(&st) == self.identity => std::fs::remove_file(&self.path)
                .map_err(|e| Error::from_os("unlink", &self.object_name(), e)),
            // Gone already, or replaced by someone else's file: not ours to remove.
            _ => Ok(()),
        }
    }

    fn object_name(&self) -> String {
        format!("fifo:{}", self.path.display())
    }
}

/// What both ends need to know to create, check and open the FIFO.
struct Target {
    path: PathBuf,
    name: String,
    create: Create,
    mode: u32,
    /// Which existing FIFO we accept (owner, group, widest mode).
    adoption: Adoption,
    config: PipeConfig,
}

impl Target {
    fn from_spec(spec: &TransportSpec, default_create: Create) -> Result<Target> {
        let Address::Path(path) = &spec.address else {
            return Err(Error::invalid_spec(
                spec.to_string(),
                "a FIFO is named by a path: `fifo:/tmp/app.fifo`",
            ));
        };
        if spec.transport != Transport::Fifo {
            return Err(Error::invalid_spec(
                spec.to_string(),
                "not a fifo transport string",
            ));
        }
        Ok(Target {
            path: PathBuf::from(path),
            name: format!("fifo:{path}"),
            create: spec.options.create.unwrap_or(default_create),
            mode: spec.options.mode.unwrap_or(DEFAULT_MODE),
            adoption: Adoption::from_options(&spec.options, DEFAULT_MODE)?,
            config: PipeConfig::from_options(&spec.options)?,
        })
    }

    /// Creates the FIFO if `create` says so; returns its identity if this call created it.
    fn create_if_asked(&self) -> Result<Option<Identity>> {
        if self.create == Create::Never {
            return Ok(None);
        }
        let mode = Mode::from_bits_truncate(self.mode);
        match nix::unistd::mkfifo(&self.path, mode) {
            Ok(()) => {}
            Err(Errno::EEXIST) if self.create == Create::IfMissing => return Ok(None),
            Err(e) => return Err(Error::from_os("mkfifo", &self.name, e.into())),
        }
        let st = lstat(&self.path).map_err(|e| Error::from_os("stat", &self.name, e.into()))?;
        // mkfifo applies the umask; the mode asked for is what the FIFO gets.
        nix::sys::stat::fchmodat(
            nix::fcntl::AT_FDCWD,
            &self.path,
            mode,
            nix::sys::stat::FchmodatFlags::NoFollowSymlink,
        )
        .or_else(|_| {
            // Some file systems refuse AT_SYMLINK_NOFOLLOW for chmod; the path is our fresh
            // FIFO (checked above), so follow it.
            nix::sys::stat::fchmodat(
                nix::fcntl::AT_FDCWD,
                &self.path,
                mode,
                nix::sys::stat::FchmodatFlags::FollowSymlink,
            )
        })
        .map_err(|e| Error::from_os("chmod", &self.name, e.into()))?;
        Ok(Some(Identity::from(&st)))
    }

    /// Refuses anything at the path but a FIFO of ours with no wider mode than asked.
    fn check(&self, st: &FileStat) -> Result<()> {
        self.adoption
            .check_file(&self.name, FileKind::Fifo, st.st_mode, st.st_uid, st.st_gid)
    }

    /// Checks the path, opens it without blocking and checks that what was opened is what was
    /// checked; then makes the descriptor blocking again (the framing picks per call).
    fn open_checked(&self, access: OFlag) -> Result<OwnedFd> {
        match self.try_open(access)? {
            Some(fd) => Ok(fd),
            None => Err(Error::Timeout),
        }
    }

    /// As [`Target::open_checked`]; `Ok(None)` when a write-only open finds no reader.
    fn try_open(&self, access: OFlag) -> Result<Option<OwnedFd>> {
        let before = lstat(&self.path).map_err(|e| Error::from_os("stat", &self.name, e.into()))?;
        self.check(&before)?;
        let flags = access | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
        let fd = match nix::fcntl::open(&self.path, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENXIO) => return Ok(None),
            Err(e) => return Err(Error::from_os("open", &self.name, e.into())),
        };
        let after = fstat(fd.as_fd()).map_err(|e| Error::from_os("fstat", &self.name, e.into()))?;
        if Identity::from(&after) != Identity::from(&before) {
            return Err(Error::Incompatible {
                object: self.name.clone(),
                reason: "the path was replaced while it was being opened".into(),
            });
        }
        let blocking = OFlag::from_bits_truncate(
            fcntl(fd.as_fd(), FcntlArg::F_GETFL)
                .map_err(|e| Error::from_os("fcntl", &self.name, e.into()))?,
        ) - OFlag::O_NONBLOCK;
        fcntl(fd.as_fd(), FcntlArg::F_SETFL(blocking))
            .map_err(|e| Error::from_os("fcntl", &self.name, e.into()))?;
        Ok(Some(fd))
    }

    /// Opens for writing, waiting (within `wait`) for the path to appear and a reader to open.
    fn open_writer_waiting(&self, wait: Wait) -> Result<OwnedFd> {
        let mut pause = Duration::from_micros(250);
        loop {
            let missing = match self.try_open(OFlag::O_WRONLY) {
                Ok(Some(fd)) => return Ok(fd),
                Ok(None) => false,
                Err(Error::NotFound { .. }) => true,
                Err(e) => return Err(e),
            };
            let Some(left) = wait.remaining().filter(|left| !left.is_zero()) else {
                return Err(if missing {
                    Error::NotFound {
                        object: self.name.clone(),
                    }
                } else {
                    Error::Timeout
                });
            };
            // Linux has no notification for "a reader opened this FIFO": poll with backoff.
            thread::sleep(pause.min(left));
            pause = (pause * 2).min(MAX_BACKOFF);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipc_core::{Readiness, Receiver, Sender};
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn spec(s: &str) -> TransportSpec {
        s.parse().unwrap()
    }

    /// A unique path, removed when the test ends (also when it fails).
    struct TempPath(String);

    impl TempPath {
        fn new() -> TempPath {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            TempPath(format!(
                "/tmp/ipc-fifo-unit-{}-{n}.fifo",
                std::process::id()
            ))
        }
        fn spec(&self, options: &str) -> TransportSpec {
            spec(&format!("fifo:{}{options}", self.0))
        }
        fn mkfifo(&self, mode: u32) {
            nix::unistd::mkfifo(self.0.as_str(), Mode::empty()).unwrap();
            std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn incompatible_reason(result: Result<FifoReceiver>) -> String {
        match result {
            Err(Error::Incompatible { reason, .. }) => reason,
            other => panic!("expected Incompatible, got {other:?}"),
        }
    }

    #[test]
    fn created_fifo_has_mode_0600_and_is_removed_by_its_creator() {
        let path = TempPath::new();
        let rx = FifoReceiver::open(&path.spec("")).unwrap();
        let meta = std::fs::symlink_metadata(&path.0).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        drop(rx);
        assert!(std::fs::symlink_metadata(&path.0).is_err());
    }

    #[test]
    fn requested_mode_is_applied_despite_umask() {
        let path = TempPath::new();
        let _rx = FifoReceiver::open(&path.spec("?mode=0660")).unwrap();
        let meta = std::fs::symlink_metadata(&path.0).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    }

    #[test]
    fn regular_file_is_refused() {
        let path = TempPath::new();
        std::fs::write(&path.0, b"x").unwrap();
        let reason = incompatible_reason(FifoReceiver::open(&path.spec("")));
        assert!(reason.contains("regular file"), "{reason}");
    }

    #[test]
    fn symlink_to_a_fifo_is_refused() {
        let target = TempPath::new();
        target.mkfifo(0o600);
        let link = TempPath::new();
        std::os::unix::fs::symlink(&target.0, &link.0).unwrap();
        let reason = incompatible_reason(FifoReceiver::open(&link.spec("")));
        assert!(reason.contains("symbolic link"), "{reason}");
    }

    #[test]
    fn fifo_with_wider_mode_is_refused() {
        let path = TempPath::new();
        path.mkfifo(0o666);
        let reason = incompatible_reason(FifoReceiver::open(&path.spec("")));
        assert!(reason.contains("0666"), "{reason}");
        // Asking for that mode explicitly is accepted.
        assert!(FifoReceiver::open(&path.spec("?mode=0666")).is_ok());
    }

    #[test]
    fn fifo_of_another_user_is_refused() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: giving a FIFO to another user needs root");
            return;
        }
        let path = TempPath::new();
        path.mkfifo(0o600);
        let nobody = nix::unistd::Uid::from_raw(65534);
        nix::unistd::chown(path.0.as_str(), Some(nobody), None).unwrap();
        let reason = incompatible_reason(FifoReceiver::open(&path.spec("")));
        assert!(reason.contains("owned by uid 65534"), "{reason}");
        let err = FifoSender::open(&path.spec("?open_timeout=10ms")).unwrap_err();
        assert!(matches!(err, Error::Incompatible { .. }), "{err}");
    }

    #[test]
    fn existing_fifo_is_not_removed_by_a_receiver_that_did_not_create_it() {
        let path = TempPath::new();
        path.mkfifo(0o600);
        drop(FifoReceiver::open(&path.spec("")).unwrap());
        assert!(std::fs::symlink_metadata(&path.0).is_ok());
    }

    #[test]
    fn create_always_on_existing_is_already_exists() {
        let path = TempPath::new();
        path.mkfifo(0o600);
        let err = FifoReceiver::open(&path.spec("?create=always")).unwrap_err();
        assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    }

    #[test]
    fn sender_without_reader_times_out_and_without_fifo_is_not_found() {
        let path = TempPath::new();
        let started = std::time::Instant::now();
        let err = FifoSender::open(&path.spec("?open_timeout=50ms")).unwrap_err();
        assert!(matches!(err, Error::NotFound { .. }), "{err}");
        path.mkfifo(0o600);
        let err = FifoSender::open(&path.spec("?open_timeout=100ms")).unwrap_err();
        assert!(matches!(err, Error::Timeout), "{err}");
        assert!(started.elapsed() >= Duration::from_millis(150));
    }

    /// Long enough for anything that does happen; what must not happen is checked for a
    /// shorter while.
    const DEADLINE: Duration = Duration::from_secs(10);
    const QUIET: Duration = Duration::from_millis(50);

    /// One round of the readiness protocol's sleep, at most `within`: whether the endpoint
    /// said to try again.
    fn wait_ready(ready: &mut dyn Readiness, within: Duration) -> bool {
        use nix::poll::{PollFd, PollFlags, PollTimeout};
        if ready.prepare_wait().unwrap() {
            return true;
        }
        let woke = {
            let (fd, interest) = ready.ready_fd().unwrap();
            let events = match interest {
                ipc_core::Interest::Readable => PollFlags::POLLIN,
                ipc_core::Interest::Writable => PollFlags::POLLOUT,
            };
            let deadline = std::time::Instant::now() + within;
            loop {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                let ms = PollTimeout::from(left.as_millis().min(60_000) as u16);
                match nix::poll::poll(&mut [PollFd::new(fd, events)], ms) {
                    Ok(0) if left.is_zero() => break false,
                    Ok(0) | Err(Errno::EINTR) => continue,
                    Ok(_) => break true,
                    Err(e) => panic!("poll: {e}"),
                }
            }
        };
        if woke {
            ready.after_wake();
        }
        woke
    }

    #[test]
    fn a_receiver_before_any_writer_is_quiet_then_sees_messages_and_the_hang_up() {
        let path = TempPath::new();
        let mut rx = FifoReceiver::open(&path.spec("?message_size=64")).unwrap();
        let mut buf = [0u8; 64];
        assert!(matches!(rx.try_recv(&mut buf), Err(Error::Empty)));
        // No writer yet: end of file on read, but no hang-up for poll, and no Disconnected.
        assert!(!wait_ready(rx.readiness().unwrap(), QUIET));
        assert!(matches!(rx.try_recv(&mut buf), Err(Error::Empty)));
        let mut tx = FifoSender::open(&path.spec("?message_size=64&open_timeout=10s")).unwrap();
        assert!(!wait_ready(rx.readiness().unwrap(), QUIET));
        assert!(wait_ready(tx.readiness().unwrap(), DEADLINE));
        tx.try_send(b"hello").unwrap();
        assert!(wait_ready(rx.readiness().unwrap(), DEADLINE));
        assert_eq!(rx.try_recv(&mut buf).unwrap(), 5);
        assert!(matches!(rx.try_recv(&mut buf), Err(Error::Empty)));
        drop(tx);
        assert!(wait_ready(rx.readiness().unwrap(), DEADLINE));
        assert!(matches!(rx.try_recv(&mut buf), Err(Error::Disconnected)));
    }

    #[test]
    fn a_writer_that_leaves_without_writing_wakes_the_receiver() {
        let path = TempPath::new();
        let mut rx = FifoReceiver::open(&path.spec("?message_size=64")).unwrap();
        drop(FifoSender::open(&path.spec("?message_size=64&open_timeout=10s")).unwrap());
        assert!(wait_ready(rx.readiness().unwrap(), DEADLINE));
        let mut buf = [0u8; 64];
        assert!(matches!(rx.try_recv(&mut buf), Err(Error::Disconnected)));
    }

    /// Runs `recv` on a thread of its own and gives what it returned, or panics if it did not
    /// return within `DEADLINE` (a receive that waits forever and missed its wake-up).
    fn bounded<T: Send + 'static>(recv: impl FnOnce() -> T + Send + 'static) -> T {
        let (done, result) = std::sync::mpsc::channel();
        thread::spawn(move || done.send(recv()));
        result
            .recv_timeout(DEADLINE)
            .expect("the receive never returned")
    }

    /// The receiver learns of its first writer from an inotify watch and reads; a writer that
    /// opens between the read and the sleep must still wake it. Seen in the bench before the
    /// watch's open events counted: the receiver slept with the writer blocked on a full FIFO.
    #[test]
    fn a_first_receive_that_waits_forever_wakes_for_a_writer_however_close_the_race() {
        for round in 0..300 {
            let path = TempPath::new();
            let spec = path.spec("?message_size=64&open_timeout=10s");
            let mut rx = FifoReceiver::open(&path.spec("?message_size=64")).unwrap();
            let sender = thread::spawn(move || {
                // Spread the open over the receiver's read, look at the watch and sleep.
                for _ in 0..round % 50 {
                    std::hint::spin_loop();
                }
                let mut tx = FifoSender::open(&spec).unwrap();
                tx.send(b"first").unwrap();
                tx
            });
            let got = bounded(move || {
                let mut buf = [0u8; 64];
                rx.recv(&mut buf).map(|n| buf[..n].to_vec())
            });
            assert_eq!(got.unwrap(), b"first", "round {round}");
            drop(sender.join().unwrap());
        }
    }

    #[test]
    fn a_receive_waiting_for_its_first_writer_sees_it_leave_without_writing() {
        for forever in [true, false] {
            let path = TempPath::new();
            let mut rx = FifoReceiver::open(&path.spec("?message_size=64")).unwrap();
            let receiving = thread::spawn(move || {
                let mut buf = [0u8; 64];
                if forever {
                    rx.recv(&mut buf)
                } else {
                    rx.recv_timeout(&mut buf, DEADLINE)
                }
            });
            drop(FifoSender::open(&path.spec("?message_size=64&open_timeout=10s")).unwrap());
            let got = bounded(move || receiving.join().unwrap());
            assert!(matches!(got, Err(Error::Disconnected)), "{got:?}");
        }
    }

    #[test]
    fn a_full_fifo_waits_for_room_and_a_gone_receiver_wakes_the_sender() {
        let path = TempPath::new();
        let options = "?message_size=1000&capacity=4096";
        let mut rx = FifoReceiver::open(&path.spec(options)).unwrap();
        let mut tx = FifoSender::open(&path.spec(&format!("{options}&open_timeout=10s"))).unwrap();
        let msg = [3u8; 1000];
        let mut sent = 0;
        while tx.try_send(&msg).is_ok() {
            sent += 1;
            assert!(sent < 1000, "the FIFO never filled");
        }
        assert!(!wait_ready(tx.readiness().unwrap(), QUIET));
        let mut buf = [0u8; 1000];
        assert_eq!(rx.try_recv(&mut buf).unwrap(), 1000);
        while rx.try_recv(&mut buf).is_ok() {}
        assert!(wait_ready(tx.readiness().unwrap(), DEADLINE));
        while tx.try_send(&msg).is_ok() {}
        drop(rx);
        assert!(wait_ready(tx.readiness().unwrap(), DEADLINE));
        assert!(matches!(tx.try_send(&msg), Err(Error::Disconnected)));
    }

    #[test]
    fn a_message_larger_than_the_fifo_goes_through_an_event_loop_in_parts() {
        let path = TempPath::new();
        let size = 512 * 1024;
        let options = format!("?message_size={size}&capacity=65536");
        let mut rx = FifoReceiver::open(&path.spec(&options)).unwrap();
        let mut tx = FifoSender::open(&path.spec(&format!("{options}&open_timeout=10s"))).unwrap();
        use std::os::fd::AsRawFd;
        let fd = tx.as_fd().as_raw_fd();
        assert_eq!(
            tx.readiness().unwrap().ready_fd().unwrap().0.as_raw_fd(),
            fd
        );
        let msg: Vec<u8> = (0..size).map(|i| (i % 253) as u8).collect();
        let expected = msg.clone();
        let (filled, first_full) = std::sync::mpsc::channel();
        let sender = std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + DEADLINE;
            let (mut resume, mut rounds) = (false, 0);
            loop {
                match tx.try_send_part(&msg, resume) {
                    Ok(()) => return rounds,
                    Err(Error::Full) => {}
                    Err(e) => panic!("{e}"),
                }
                if rounds == 0 {
                    filled.send(()).unwrap();
                }
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                assert!(!left.is_zero(), "not sent in time");
                wait_ready(tx.readiness().unwrap(), left);
                (resume, rounds) = (true, rounds + 1);
            }
        });
        // Nothing is read before the FIFO is full: the rest must go in resumed parts.
        first_full.recv_timeout(DEADLINE).unwrap();
        let mut buf = vec![0u8; size];
        assert_eq!(rx.recv_timeout(&mut buf, DEADLINE).unwrap(), size);
        assert!(buf == expected, "the large message arrived damaged");
        assert!(sender.join().unwrap() >= 1);
    }

    fn nonblocking(fd: std::os::fd::BorrowedFd<'_>) -> bool {
        let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).unwrap());
        flags.contains(OFlag::O_NONBLOCK)
    }

    /// A FIFO refuses `RWF_NOWAIT`, so each end switches its own `O_NONBLOCK`: a call that may
    /// wait forever must find the descriptor blocking (one system call that sleeps, not a
    /// failed call, a `poll` and another call), and one that may not, non-blocking.
    #[test]
    fn the_descriptor_blocks_exactly_for_calls_that_may_wait_forever() {
        let path = TempPath::new();
        let options = "?message_size=64";
        let mut rx = FifoReceiver::open(&path.spec(options)).unwrap();
        let mut tx = FifoSender::open(&path.spec(&format!("{options}&open_timeout=10s"))).unwrap();
        let mut buf = [0u8; 64];

        tx.send(b"blocking").unwrap();
        assert!(!nonblocking(tx.as_fd()));
        assert_eq!(rx.recv(&mut buf).unwrap(), 8);
        assert!(!nonblocking(rx.as_fd()));

        tx.try_send(b"try").unwrap();
        assert!(nonblocking(tx.as_fd()));
        assert_eq!(rx.try_recv(&mut buf).unwrap(), 3);
        assert!(nonblocking(rx.as_fd()));
        assert!(matches!(rx.try_recv(&mut buf), Err(Error::Empty)));

        tx.send(b"again").unwrap();
        assert!(!nonblocking(tx.as_fd()));
        assert_eq!(rx.recv(&mut buf).unwrap(), 5);
        assert!(!nonblocking(rx.as_fd()));
    }

    #[test]
    fn second_writer_is_refused_above_pipe_buf_and_allowed_below() {
        let path = TempPath::new();
        let _rx = FifoReceiver::open(&path.spec("")).unwrap();
        let _big = FifoSender::open(&path.spec("")).unwrap();
        let err = FifoSender::open(&path.spec("?message_size=100")).unwrap_err();
        assert!(
            matches!(err, Error::LimitExceeded { limit: 1, .. }),
            "{err}"
        );
        drop(_big);
        let _small1 = FifoSender::open(&path.spec("?message_size=100")).unwrap();
        let _small2 = FifoSender::open(&path.spec("?message_size=100")).unwrap();
        let err = FifoSender::open(&path.spec("")).unwrap_err();
        assert!(matches!(err, Error::LimitExceeded { .. }), "{err}");
    }
}
