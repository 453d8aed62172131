//! Plain pipe descriptors, for code that wants the system calls themselves (benchmark
//! baselines, interoperation with programs that do not frame their messages).

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::process::Command;
use std::sync::Mutex;

use ipc_core::{Error, Result};
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};

use crate::sys;

/// `pipe2(O_CLOEXEC)`: returns `(read end, write end)`.
pub fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::io("pipe2", e.into()))
}

/// `fcntl(F_SETPIPE_SZ)`: asks for a pipe buffer of at least `bytes`; returns the size the
/// kernel chose. Above `/proc/sys/fs/pipe-max-size` (for an unprivileged process) it is
/// [`Error::LimitExceeded`] naming `fs.pipe-max-size`.
pub fn set_pipe_size(fd: BorrowedFd<'_>, bytes: usize) -> Result<usize> {
    sys::set_pipe_size(fd, bytes).map_err(|e| match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EINVAL) => Error::LimitExceeded {
            what: "fs.pipe-max-size (or fs.pipe-user-pages-soft)".into(),
            limit: std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0),
        },
        _ => Error::io(format!("F_SETPIPE_SZ {bytes}"), e),
    })
}

/// `fcntl(F_GETPIPE_SZ)`: the pipe's buffer size in bytes.
pub fn pipe_size(fd: BorrowedFd<'_>) -> Result<usize> {
    sys::pipe_size(fd).map_err(|e| Error::io("F_GETPIPE_SZ", e))
}

/// A descriptor that a child process will inherit under the same number.
///
/// Keep it until the child is spawned, then drop it: that closes the parent's copy, which
/// is what lets each side see end-of-file or `EPIPE` when the other goes away.
#[derive(Debug)]
pub struct InheritedFd {
    fd: OwnedFd,
}

impl InheritedFd {
    /// The descriptor number the child will have.
    pub fn fd_number(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Makes `cmd` pass `fd` to its child under the same number. `FD_CLOEXEC` is cleared in the
/// child only (between `fork` and `exec`), so children spawned by other threads meanwhile do
/// not inherit it.
pub fn inherit_fd(fd: OwnedFd, cmd: &mut Command) -> InheritedFd {
    sys::clear_cloexec_in_child(cmd, fd.as_raw_fd());
    InheritedFd { fd }
}

/// Pipes adopted by this process, by descriptor number: the same pipe under the same number is
/// refused a second owner; a number closed and reused for another pipe is not.
static ADOPTED: Mutex<Option<HashMap<RawFd, (u64, u64)>>> = Mutex::new(None);

/// Which end of a pipe a descriptor must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The read end.
    Read,
    /// The write end.
    Write,
}

/// Takes ownership of descriptor `fd`, inherited from the parent: it must be open, a pipe or
/// FIFO, and opened for `end`. It gets `FD_CLOEXEC` again, so it does not leak further. A
/// second adoption of the same pipe under the same number is [`Error::AlreadyExists`] (two
/// owners would close it twice).
pub fn adopt_fd(fd: RawFd, end: End) -> Result<OwnedFd> {
    let object = format!("pipe:fd={fd}");
    let facts = sys::inspect_fd(fd).map_err(|e| match e.raw_os_error() {
        Some(libc::EBADF) => Error::NotFound {
            object: format!("{object} (descriptor not open: was it handed over with inherit?)"),
        },
        _ => Error::io(format!("fstat {object}"), e),
    })?;
    if !facts.is_pipe {
        return Err(Error::Incompatible {
            object,
            reason: "descriptor is not a pipe".into(),
        });
    }
    let expected = match end {
        End::Read => libc::O_RDONLY,
        End::Write => libc::O_WRONLY,
    };
    if facts.access != expected {
        return Err(Error::Incompatible {
            object,
            reason: format!("descriptor is not the {end:?} end of a pipe").to_lowercase(),
        });
    }
    let mut adopted = ADOPTED.lock().unwrap_or_else(|e| e.into_inner());
    if adopted
        .get_or_insert_with(HashMap::new)
        .insert(fd, facts.identity)
        == Some(facts.identity)
    {
        return Err(Error::AlreadyExists {
            object: format!("{object} (already adopted by this process)"),
        });
    }
    let owned = sys::adopt(fd);
    fcntl(owned.as_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))
        .map_err(|e| Error::io(format!("F_SETFD {object}"), e.into()))?;
    Ok(owned)
}
