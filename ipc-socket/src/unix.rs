//! `unix:/path` and `unix:@name`: a listening `SOCK_SEQPACKET` socket that any number of
//! senders connect to (see the crate documentation).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use ipc_core::{
    Address, Adoption, Create, Error, FileKind, Interest, Owner, Readiness, Removable, Result,
    Sender, Transport, TransportSpec, Wait,
};
use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, Backlog, SockFlag, SockType, UnixAddr, bind, connect, getsockopt, listen,
    socket, sockopt,
};
use nix::sys::stat::{FileStat, lstat};

use crate::multi::{Conn, Listen, Multi};
use crate::seq::{SeqSocket, TAG_REFUSED, size_send_buffer};
use crate::{DEFAULT_OPEN_TIMEOUT, MAX_BACKOFF, SocketConfig, sys};

/// Permissions of a socket file we create when the string gives no `mode`.
pub const DEFAULT_MODE: u32 = 0o600;

/// Connections the kernel queues for a receiver that has not accepted them yet.
const BACKLOG: i32 = 128;

/// How many refused peers a receiver remembers (the latest ones).
const REFUSED_KEPT: usize = 16;

/// Where the socket lives.
#[derive(Clone, Debug)]
enum Place {
    Path(PathBuf),
    Abstract(String),
}

/// What both ends need to know.
struct Target {
    place: Place,
    name: String,
    create: Create,
    mode: u32,
    adoption: Adoption,
    config: SocketConfig,
}

impl Target {
    fn from_spec(spec: &TransportSpec, receiver: bool) -> Result<Target> {
        if spec.transport != Transport::Unix {
            return Err(Error::invalid_spec(
                spec.to_string(),
                "not a unix transport string",
            ));
        }
        let place = match &spec.address {
            Address::Path(p) => Place::Path(PathBuf::from(p)),
            Address::Abstract(n) => Place::Abstract(n.clone()),
            _ => {
                return Err(Error::invalid_spec(
                    spec.to_string(),
                    "a unix socket is `unix:/path` or `unix:@abstract-name`",
                ));
            }
        };
        let default_create = if receiver {
            Create::IfMissing
        } else {
            Create::Never
        };
        let create = spec.options.create.unwrap_or(default_create);
        let refused = match (receiver, create) {
            (true, Create::Never) => Some("a unix receiver binds its socket: create=never"),
            (false, Create::Always | Create::IfMissing) => {
                Some("a unix sender connects to a receiver's socket and creates nothing")
            }
            _ => None,
        };
        if let Some(why) = refused {
            return Err(Error::invalid_spec(spec.to_string(), why));
        }
        Ok(Target {
            place,
            name: format!("unix:{}", spec.address),
            create,
            mode: spec.options.mode.unwrap_or(DEFAULT_MODE),
            adoption: Adoption::from_options(&spec.options, DEFAULT_MODE)?,
            config: SocketConfig::from_options(&spec.options)?,
        })
    }

    fn addr(&self) -> Result<UnixAddr> {
        match &self.place {
            Place::Path(p) => UnixAddr::new(p.as_path()),
            Place::Abstract(n) => UnixAddr::new_abstract(n.as_bytes()),
        }
        .map_err(|e| Error::invalid_spec(self.name.clone(), e.desc()))
    }

    fn socket(&self, flags: SockFlag) -> Result<OwnedFd> {
        socket(
            AddressFamily::Unix,
            SockType::SeqPacket,
            flags | SockFlag::SOCK_CLOEXEC,
            None,
        )
        .map_err(|e| Error::io("socket(AF_UNIX, SOCK_SEQPACKET)", e.into()))
    }

    fn incompatible(&self, reason: impl Into<String>) -> Error {
        Error::Incompatible {
            object: self.name.clone(),
            reason: reason.into(),
        }
    }

    /// Binds the receiver's socket; for a path, returns the file made (removed when the
    /// receiver goes).
    fn bind(&self, fd: BorrowedFd<'_>) -> Result<Option<SocketPath>> {
        use std::os::fd::AsRawFd;
        let addr = self.addr()?;
        let Place::Path(path) = &self.place else {
            return match bind(fd.as_raw_fd(), &addr) {
                Ok(()) => Ok(None),
                Err(Errno::EADDRINUSE) => Err(Error::AlreadyExists {
                    object: format!("{} (another socket has the abstract name)", self.name),
                }),
                Err(e) => Err(Error::from_os("bind", &self.name, e.into())),
            };
        };
        let mut replaced_stale = false;
        loop {
            match bind(fd.as_raw_fd(), &addr) {
                Ok(()) => break,
                Err(Errno::EADDRINUSE) if !replaced_stale => {
                    self.remove_stale(path)?;
                    replaced_stale = true;
                }
                Err(Errno::EADDRINUSE) => {
                    return Err(Error::AlreadyExists {
                        object: self.name.clone(),
                    });
                }
                Err(e) => return Err(Error::from_os("bind", &self.name, e.into())),
            }
        }
        // bind applies the umask; the mode asked for is what the file gets. Nobody can connect
        // before `listen`, so no one connects through a wider mode meanwhile.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(self.mode))
            .map_err(|e| Error::from_os("chmod", &self.name, e))?;
        let st = lstat(path).map_err(|e| Error::from_os("stat", &self.name, e.into()))?;
        Ok(Some(SocketPath {
            path: path.clone(),
            identity: (st.st_dev, st.st_ino),
        }))
    }

    /// Something is at the path: removes it if it is a socket of ours that nobody listens on
    /// (left by a receiver that died); anything else is refused.
    fn remove_stale(&self, path: &std::path::Path) -> Result<()> {
        let st = lstat(path).map_err(|e| Error::from_os("stat", &self.name, e.into()))?;
        self.check_file(&st)?;
        let probe = self.socket(SockFlag::SOCK_NONBLOCK)?;
        use std::os::fd::AsRawFd;
        match connect(probe.as_raw_fd(), &self.addr()?) {
            Ok(()) | Err(Errno::EAGAIN) => Err(Error::AlreadyExists {
                object: format!("{} (a receiver is listening on it)", self.name),
            }),
            Err(Errno::ECONNREFUSED) if self.create == Create::Always => {
                Err(Error::AlreadyExists {
                    object: format!("{} (a stale socket file; create=always)", self.name),
                })
            }
            Err(Errno::ECONNREFUSED) => {
                // Unlink only the file we looked at, not one put there since.
                let now = lstat(path).map_err(|e| Error::from_os("stat", &self.name, e.into()))?;
                if (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino) {
                    return Err(self.incompatible("the path was replaced while it was checked"));
                }
                std::fs::remove_file(path).map_err(|e| Error::from_os("unlink", &self.name, e))
            }
            Err(e) => Err(Error::from_os("connect", &self.name, e.into())),
        }
    }

    /// Refuses anything at the path but a socket file of an owner we accept.
    fn check_file(&self, st: &FileStat) -> Result<()> {
        self.adoption.check_file(
            &self.name,
            FileKind::Socket,
            st.st_mode,
            st.st_uid,
            st.st_gid,
        )
    }
}

/// A socket file this process bound; removing it unlinks the path only if it is still that
/// file.
#[derive(Debug)]
pub struct SocketPath {
    path: PathBuf,
    identity: (u64, u64),
}

impl Removable for SocketPath {
    fn remove(&self) -> Result<()> {
        match lstat(&self.path) {
            Ok(st) if (st.st_dev, st.st_ino) == self.identity => std::fs::remove_file(&self.path)
                .map_err(|e| Error::from_os("unlink", &self.object_name(), e)),
            // Gone already, or replaced by someone else's file: not ours to remove.
            _ => Ok(()),
        }
    }

    fn object_name(&self) -> String {
        format!("unix:{}", self.path.display())
    }
}

/// A peer the receiver turned away, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusedPeer {
    /// Its process id, as the kernel saw it connect (`SO_PEERCRED`).
    pub pid: i32,
    /// Its effective uid.
    pub uid: u32,
    /// Its effective gid.
    pub gid: u32,
    /// Why, naming the option that would accept it.
    pub reason: String,
}

/// The listening socket, and the rule for whom it accepts.
#[derive(Debug)]
struct UnixListen {
    fd: OwnedFd,
    adoption: Adoption,
    max: usize,
    name: String,
    refused: Vec<RefusedPeer>,
}

impl AsFd for UnixListen {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// An accepted connection.
#[derive(Debug)]
struct UnixConn(SeqSocket);

impl AsFd for UnixConn {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl Conn for UnixConn {
    fn try_recv(&mut self, buf: &mut [u8]) -> Result<usize> {
        self.0.recv(buf, Wait::Never, ipc_core::WaitStrategy::Park)
    }
}

impl Listen for UnixListen {
    type Conn = UnixConn;

    fn accept(&mut self) -> Result<Option<UnixConn>> {
        loop {
            let fd = match sys::accept(self.fd.as_fd()) {
                Ok(fd) => fd,
                Err(e) => match e.raw_os_error() {
                    Some(libc::EAGAIN) => return Ok(None),
                    // The sender gave up before we looked; the next one may be there.
                    Some(libc::ECONNABORTED) => continue,
                    _ => return Err(Error::from_os("accept", &self.name, e)),
                },
            };
            let cred = getsockopt(&fd, sockopt::PeerCredentials)
                .map_err(|e| Error::from_os("SO_PEERCRED", &self.name, e.into()))?;
            let me = nix::unistd::geteuid().as_raw();
            let Err(reason) = self.adoption.check_owner(me, cred.uid(), cred.gid()) else {
                return Ok(Some(UnixConn(SeqSocket::new(fd, self.max))));
            };
            let peer = RefusedPeer {
                pid: cred.pid(),
                uid: cred.uid(),
                gid: cred.gid(),
                reason: format!(
                    "refused sender pid {} uid {}: {}",
                    cred.pid(),
                    cred.uid(),
                    reason.replace("it is owned by", "it runs as")
                ),
            };
            // Tell it why before closing, so its send fails with the reason, not a bare
            // disconnection; it may be gone already, which changes nothing.
            let _ = SeqSocket::new(fd, self.max).send_record(
                TAG_REFUSED,
                peer.reason.as_bytes(),
                Wait::Never,
            );
            if self.refused.len() == REFUSED_KEPT {
                self.refused.remove(0);
            }
            self.refused.push(peer);
        }
    }
}

/// The receiving end of a unix socket: binds and listens; any number of senders connect.
#[derive(Debug)]
pub struct UnixReceiver {
    multi: Multi<UnixListen>,
    _created: Option<Owner<SocketPath>>,
}

impl UnixReceiver {
    /// Binds the socket `spec` names (`unix:/path` or `unix:@name`) and listens. Does not
    /// wait for a sender.
    ///
    /// Errors: [`Error::AlreadyExists`] when a receiver listens there already (or the abstract
    /// name is taken, or `create=always` finds a stale file), [`Error::Incompatible`] when the
    /// path is anything but a socket file of ours (a regular file, a directory, another user's
    /// socket).
    pub fn open(spec: &TransportSpec) -> Result<UnixReceiver> {
        let target = Target::from_spec(spec, true)?;
        let fd = target.socket(SockFlag::SOCK_NONBLOCK)?;
        let created = target.bind(fd.as_fd())?.map(Owner::new);
        let backlog = Backlog::new(BACKLOG).unwrap_or(Backlog::MAXCONN);
        listen(&fd, backlog).map_err(|e| Error::from_os("listen", &target.name, e.into()))?;
        let max = target.config.message_size;
        Ok(UnixReceiver {
            multi: Multi::new(
                UnixListen {
                    fd,
                    adoption: target.adoption,
                    max,
                    name: target.name,
                    refused: Vec::new(),
                },
                max,
            )?
            .with_wait(target.config.wait),
            _created: created,
        })
    }

    /// The peers turned away by the owner check (`SO_PEERCRED`), latest last (the last 16).
    pub fn refused_peers(&self) -> &[RefusedPeer] {
        &self.multi.listener().refused
    }

    /// How many senders are connected, as far as this receiver has looked.
    pub fn connections(&self) -> usize {
        self.multi.connections()
    }

    /// Keeps the socket file after this receiver is dropped (it then is stale: the next
    /// receiver replaces it).
    pub fn release_path(&mut self) {
        if let Some(owner) = self._created.take() {
            owner.release();
        }
    }
}

// The epoll set of the listener and its connections is the descriptor.
ipc_core::forward_receiver!(UnixReceiver => multi, AsFd);

/// The sending end of a unix socket: one connection to the receiver.
#[derive(Debug)]
pub struct UnixSender {
    sock: SeqSocket,
    name: String,
}

impl UnixSender {
    /// Connects to the receiver `spec` names, retrying up to `open_timeout` (default 10 s)
    /// while nobody listens, then [`Error::NotFound`]. The receiver's uid is checked as the
    /// receiver checks ours (`owner=`, `group=`): [`Error::Incompatible`] otherwise. A path
    /// that is not a socket is [`Error::Incompatible`] at once.
    pub fn open(spec: &TransportSpec) -> Result<UnixSender> {
        let target = Target::from_spec(spec, false)?;
        let wait = Wait::timeout(spec.options.open_timeout.unwrap_or(DEFAULT_OPEN_TIMEOUT));
        let addr = target.addr()?;
        let mut pause = Duration::from_micros(250);
        let fd = loop {
            use std::os::fd::AsRawFd;
            // Non-blocking, so that a full backlog is EAGAIN (retried within the deadline)
            // rather than a wait in the kernel without one.
            let fd = target.socket(SockFlag::SOCK_NONBLOCK)?;
            match connect(fd.as_raw_fd(), &addr) {
                Ok(()) => break fd,
                Err(Errno::ENOENT | Errno::ECONNREFUSED | Errno::EAGAIN) => {}
                Err(e) => return Err(Error::from_os("connect", &target.name, e.into())),
            }
            if let Place::Path(path) = &target.place {
                // A regular file (say) will never listen: refused now, not after the timeout.
                match lstat(path) {
                    Ok(st) if FileKind::of_mode(st.st_mode) != FileKind::Socket => {
                        target.check_file(&st)?;
                    }
                    _ => {}
                }
            }
            let Some(left) = wait.remaining().filter(|left| !left.is_zero()) else {
                return Err(Error::NotFound {
                    object: format!("{} (no receiver listening)", target.name),
                });
            };
            // Nothing tells us when a receiver starts listening: retry with a backoff.
            thread::sleep(pause.min(left));
            pause = (pause * 2).min(MAX_BACKOFF);
        };
        let cred = getsockopt(&fd, sockopt::PeerCredentials)
            .map_err(|e| Error::from_os("SO_PEERCRED", &target.name, e.into()))?;
        let me = nix::unistd::geteuid().as_raw();
        target
            .adoption
            .check_owner(me, cred.uid(), cred.gid())
            .map_err(|reason| {
                target.incompatible(format!("the receiver (pid {}): {reason}", cred.pid()))
            })?;
        size_send_buffer(
            fd.as_fd(),
            target.config.message_size,
            target.config.capacity,
        )?;
        // Connected: a send that may wait forever can now wait in the kernel (see `seq`); the
        // socket is ours alone.
        ipc_pipe::raw::set_nonblocking(fd.as_fd(), false)?;
        Ok(UnixSender {
            sock: SeqSocket::new(fd, target.config.message_size),
            name: target.name,
        })
    }
}

impl Sender for UnixSender {
    fn max_message_size(&self) -> usize {
        self.sock.max_message_size()
    }

    fn send_with(&mut self, msg: &[u8], wait: Wait) -> Result<()> {
        match self.sock.send(msg, wait) {
            Err(Error::Disconnected) => Err(self.sock.why_closed(&self.name)),
            other => other,
        }
    }

    fn readiness(&mut self) -> Option<&mut dyn Readiness> {
        Some(self)
    }
}

impl AsFd for UnixSender {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

/// The socket, writable when its send buffer has room (or in error once the receiver is gone).
impl Readiness for UnixSender {
    fn ready_fd(&mut self) -> Result<(BorrowedFd<'_>, Interest)> {
        Ok((self.sock.as_fd(), Interest::Writable))
    }

    fn prepare_wait(&mut self) -> Result<bool> {
        Ok(false)
    }

    fn after_wake(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipc_core::Receiver;
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    use std::sync::atomic::{AtomicU32, Ordering};

    fn unique_abstract_name() -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        format!("unix:@ipc-socket-unit-{}-{n}", std::process::id())
    }

    /// A connected sender's socket is in blocking mode, so that `send` waits in the kernel;
    /// `try_send` and `send_timeout` still return at once / at their deadline.
    #[test]
    fn a_connected_sender_blocks_in_the_kernel_only_for_sends_that_may_wait_forever() {
        let spec: TransportSpec = format!("{}?message_size=1024", unique_abstract_name())
            .parse()
            .unwrap();
        let _receiver = UnixReceiver::open(&spec).unwrap();
        let mut sender = UnixSender::open(&spec).unwrap();
        let flags = OFlag::from_bits_truncate(fcntl(sender.as_fd(), FcntlArg::F_GETFL).unwrap());
        assert!(!flags.contains(OFlag::O_NONBLOCK));
        // The receiver never reads: the socket fills up.
        let full = (0..1_000_000).find_map(|_| sender.try_send(&[7; 1024]).err());
        assert!(matches!(full, Some(Error::Full)), "{full:?}");
        let late = sender.send_timeout(&[7; 1024], Duration::from_millis(20));
        assert!(matches!(late, Err(Error::Timeout)), "{late:?}");
    }

    /// Whether `fd` turns readable within 10 s.
    fn readable_soon(fd: BorrowedFd<'_>) -> bool {
        ipc_core::poll_fd(
            fd,
            nix::poll::PollFlags::POLLIN,
            Wait::timeout(Duration::from_secs(10)),
        )
        .unwrap()
    }

    /// A connection accepted while the receiver waited with `poll` joins the epoll set once an
    /// event loop asks for it, and the set then shows that connection's messages.
    #[test]
    fn the_readiness_descriptor_shows_connections_accepted_before_it_was_asked_for() {
        let spec: TransportSpec = unique_abstract_name().parse().unwrap();
        let mut receiver = UnixReceiver::open(&spec).unwrap();
        let mut sender = UnixSender::open(&spec).unwrap();
        let mut buf = [0u8; 64];
        sender.send(b"first").unwrap();
        assert_eq!(receiver.recv(&mut buf).unwrap(), 5);
        assert_eq!(receiver.connections(), 1);
        let readiness = receiver.readiness().unwrap();
        let (fd, _) = readiness.ready_fd().unwrap();
        let fd = fd.try_clone_to_owned().unwrap();
        sender.send(b"second").unwrap();
        assert!(
            readable_soon(fd.as_fd()),
            "the epoll set missed the message"
        );
        assert_eq!(receiver.try_recv(&mut buf).unwrap(), 6);
    }

    /// Past `POLL_LIMIT` senders the connections move into the epoll set; none of their
    /// messages is lost on the way, those sent before the move or after.
    #[test]
    fn many_senders_are_all_heard_before_and_after_they_outgrow_poll() {
        let spec: TransportSpec = unique_abstract_name().parse().unwrap();
        let mut receiver = UnixReceiver::open(&spec).unwrap();
        let mut senders: Vec<UnixSender> =
            (0..40).map(|_| UnixSender::open(&spec).unwrap()).collect();
        let mut buf = [0u8; 64];
        for round in 0..2u8 {
            for (i, sender) in senders.iter_mut().enumerate() {
                sender.send(&[round, i as u8]).unwrap();
            }
            let mut seen = std::collections::BTreeSet::new();
            while seen.len() < senders.len() {
                let n = receiver
                    .recv_timeout(&mut buf, Duration::from_secs(10))
                    .unwrap();
                assert_eq!((n, buf[0]), (2, round));
                assert!(seen.insert(buf[1]), "sender {} twice", buf[1]);
            }
        }
        assert_eq!(receiver.connections(), 40);
    }
}
