//! The memfd and its hand-over: the creator serves the descriptor on a unix socket, an opener
//! fetches it from there with `SCM_RIGHTS`.

use std::fmt;
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use ipc::{Adoption, Error, Owner, Removable, Result};
use rustix::fs::{MemfdFlags, SealFlags};
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, Shutdown,
};

/// What a fetcher reads before the descriptor: served, or refused.
const SERVED: u8 = b'F';

/// The seals every served memfd carries: its size is fixed for good, so no process holding it
/// can make another's accesses fault (`SIGBUS`) by shrinking it.
const SEALS: SealFlags = SealFlags::SHRINK
    .union(SealFlags::GROW)
    .union(SealFlags::SEAL);

/// How long a fetcher waits for the creator's answer once connected: it answers at once unless
/// it is stopped or gone.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// A memfd holding a ring, and where it is served. The creator's serves it until removed (or
/// dropped); a fetched one only holds the descriptor.
pub struct MemfdSegment {
    path: String,
    memfd: OwnedFd,
    size: usize,
    server: Option<Server>,
}

impl MemfdSegment {
    /// Makes a sealed memfd of `size` bytes and serves it on a new socket at `path` with
    /// permissions `mode`. A socket at `path` that nobody serves (a dead creator's) is replaced;
    /// a live one is [`Error::AlreadyExists`]; any other file is [`Error::Incompatible`].
    pub(crate) fn create(path: &str, size: usize, mode: u32) -> Result<Owner<MemfdSegment>> {
        let object = object_name(path);
        let memfd =
            rustix::fs::memfd_create("ipc-ring", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
                .map_err(|e| Error::io(format!("memfd_create for {object}"), e.into()))?;
        rustix::fs::ftruncate(&memfd, size as u64)
            .map_err(|e| Error::io(format!("ftruncate of {object}"), e.into()))?;
        rustix::fs::fcntl_add_seals(&memfd, SEALS)
            .map_err(|e| Error::io(format!("sealing {object}"), e.into()))?;
        let listener = bind_replacing_stale(path, &object)?;
        // Binding applied the umask: the mode asked for is the mode the socket gets.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io(format!("chmod of {object}"), e))?;
        let inode = std::fs::symlink_metadata(path)
            .map_err(|e| Error::io(format!("stat of {object}"), e))?
            .ino();
        let served = memfd
            .try_clone()
            .map_err(|e| Error::io(format!("dup of {object}"), e))?;
        Ok(Owner::new(MemfdSegment {
            path: path.to_owned(),
            memfd,
            size,
            server: Some(Server::start(listener, served, inode)?),
        }))
    }

    /// Connects to the socket at `path` and receives its memfd, after checking that `adoption`
    /// accepts whoever serves it and that the memory is sealed. Nobody there (no file, or a
    /// socket nobody serves) is [`Error::NotFound`], so that a sender waits for its creator.
    pub(crate) fn fetch(path: &str, adoption: &Adoption) -> Result<MemfdSegment> {
        let object = object_name(path);
        let stream = UnixStream::connect(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => Error::NotFound {
                object: object.clone(),
            },
            _ => Error::io(format!("connecting to {object}"), e),
        })?;
        let server = rustix::net::sockopt::socket_peercred(&stream)
            .map_err(|e| Error::io(format!("SO_PEERCRED of {object}"), e.into()))?;
        let me = rustix::process::geteuid().as_raw();
        adoption
            .check_owner(me, server.uid.as_raw(), server.gid.as_raw())
            .map_err(|reason| Error::Incompatible {
                object: object.clone(),
                reason: format!(
                    "served by pid {}: {reason}",
                    rustix::process::Pid::as_raw(Some(server.pid))
                ),
            })?;
        stream
            .set_read_timeout(Some(ANSWER_TIMEOUT))
            .map_err(|e| Error::io(format!("timeout on {object}"), e))?;
        let memfd = receive_fd(&stream).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => Error::NotFound {
                object: object.clone(),
            },
            _ => Error::io(format!("receiving the memfd of {object}"), e),
        })?;
        let seals = rustix::fs::fcntl_get_seals(&memfd)
            .map_err(|e| Error::io(format!("seals of {object}"), e.into()))?;
        if !seals.contains(SealFlags::SHRINK | SealFlags::GROW) {
            return Err(Error::Incompatible {
                object,
                reason: "the memory served is not sealed against resizing".into(),
            });
        }
        let size = rustix::fs::fstat(&memfd)
            .map_err(|e| Error::io(format!("fstat of {object}"), e.into()))?
            .st_size;
        let size = usize::try_from(size)
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| Error::Incompatible {
                object: object.clone(),
                reason: format!("the memory served has {size} bytes"),
            })?;
        Ok(MemfdSegment {
            path: path.to_owned(),
            memfd,
            size,
            server: None,
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The memory's descriptor.
    pub fn memfd(&self) -> &OwnedFd {
        &self.memfd
    }

    /// The memory's size in bytes, fixed by its seals.
    pub fn size(&self) -> usize {
        self.size
    }
}

impl Removable for MemfdSegment {
    /// Stops serving and removes the socket, if the path still is the one we bound; the memory
    /// lives on in the processes that map it.
    fn remove(&self) -> Result<()> {
        let Some(server) = &self.server else {
            return Ok(());
        };
        server.stop();
        let object = self.object_name();
        match std::fs::symlink_metadata(&self.path) {
            Ok(st) if st.ino() == server.inode => std::fs::remove_file(&self.path)
                .map_err(|e| Error::io(format!("removing {object}"), e)),
            Ok(_) => Err(Error::Incompatible {
                object,
                reason: "the path was replaced since we bound it: left alone".into(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(format!("stat of {object}"), e)),
        }
    }

    fn object_name(&self) -> String {
        object_name(&self.path)
    }
}

impl fmt::Debug for MemfdSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemfdSegment")
            .field("path", &self.path)
            .field("size", &self.size)
            .field("serving", &self.server.is_some())
            .finish()
    }
}

fn object_name(path: &str) -> String {
    format!("memfd:{path}")
}

/// Binds a listening socket at `path`, first removing a socket there that nobody serves.
fn bind_replacing_stale(path: &str, object: &str) -> Result<UnixListener> {
    match UnixListener::bind(path) {
        Ok(listener) => return Ok(listener),
        Err(e) if e.kind() != io::ErrorKind::AddrInUse => {
            return Err(Error::io(format!("binding {object}"), e));
        }
        Err(_) => {}
    }
    let st =
        std::fs::symlink_metadata(path).map_err(|e| Error::io(format!("stat of {object}"), e))?;
    if !st.file_type().is_socket() {
        return Err(Error::Incompatible {
            object: object.to_owned(),
            reason: "the path exists and is not a socket: left alone".into(),
        });
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(Error::AlreadyExists {
            object: object.to_owned(),
        }),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            std::fs::remove_file(path)
                .map_err(|e| Error::io(format!("removing stale {object}"), e))?;
            UnixListener::bind(path).map_err(|e| match e.kind() {
                // Another creator replaced it first.
                io::ErrorKind::AddrInUse => Error::AlreadyExists {
                    object: object.to_owned(),
                },
                _ => Error::io(format!("binding {object}"), e),
            })
        }
        Err(e) => Err(Error::io(format!("probing {object}"), e)),
    }
}

/// One byte, and the descriptor with it.
fn receive_fd(stream: &UnixStream) -> io::Result<OwnedFd> {
    let mut byte = [0u8; 1];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = rustix::net::recvmsg(
        stream,
        &mut [IoSliceMut::new(&mut byte)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut fds = control.drain().filter_map(|m| match m {
        RecvAncillaryMessage::ScmRights(fds) => Some(fds),
        _ => None,
    });
    let fd = fds.next().and_then(|mut fds| fds.next());
    match (got.bytes, byte[0], fd) {
        (0, _, _) => Err(io::ErrorKind::UnexpectedEof.into()),
        (1, SERVED, Some(fd)) => Ok(fd),
        _ => Err(io::Error::other("the server's answer is not a descriptor")),
    }
}

/// A thread that hands the memfd to every connection, until stopped.
struct Server {
    listener: Arc<UnixListener>,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// The socket file's inode, so that removal leaves a path replaced since alone.
    inode: u64,
}

impl Server {
    fn start(listener: UnixListener, memfd: OwnedFd, inode: u64) -> Result<Server> {
        let listener = Arc::new(listener);
        let stopping = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("memfd-server".into())
            .spawn({
                let listener = Arc::clone(&listener);
                let stopping = Arc::clone(&stopping);
                move || serve(&listener, &memfd, &stopping)
            })
            .map_err(|e| Error::io("starting the memfd server thread", e))?;
        Ok(Server {
            listener,
            stopping,
            thread: Some(thread),
            inode,
        })
    }

    fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        // Wakes the thread's `accept` with an error (Linux), after which it sees `stopping`.
        let _ = rustix::net::shutdown(self.listener.as_fd(), Shutdown::Both);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(listener: &UnixListener, memfd: &OwnedFd, stopping: &AtomicBool) {
    while !stopping.load(Ordering::Acquire) {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            // Out of descriptors, say: back off rather than spin, and try again.
            Err(_) => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if stopping.load(Ordering::Acquire) {
            break;
        }
        let fds = [memfd.as_fd()];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        control.push(SendAncillaryMessage::ScmRights(&fds));
        // A fetcher that went away meanwhile is no concern of the others.
        let _ = rustix::net::sendmsg(
            &stream,
            &[IoSlice::new(&[SERVED])],
            &mut control,
            SendFlags::NOSIGNAL,
        );
    }
}
