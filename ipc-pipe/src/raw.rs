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

/// `O_NONBLOCK` on or off, for a descriptor whose open file is the caller's alone (one it made):
/// the flag belongs to the open file, so it changes for everyone sharing that.
pub fn set_nonblocking(fd: BorrowedFd<'_>, on: bool) -> Result<()> {
    sys::set_nonblocking(fd, on).map_err(|e| Error::io("fcntl O_NONBLOCK", e))
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

/// Descriptors adopted by this process, by number: the same open file under the same number is
/// refused a second owner; a number closed and reused for another file is not.
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
    adopt_inherited(fd, &object, |borrowed| {
        let incompatible = |reason: String| Error::Incompatible {
            object: object.clone(),
            reason,
        };
        let st = nix::sys::stat::fstat(borrowed)
            .map_err(|e| Error::io(format!("fstat {object}"), e.into()))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFIFO {
            return Err(incompatible("descriptor is not a pipe".into()));
        }
        let access = fcntl(borrowed, FcntlArg::F_GETFL)
            .map_err(|e| Error::io(format!("F_GETFL {object}"), e.into()))?
            & libc::O_ACCMODE;
        let expected = match end {
            End::Read => libc::O_RDONLY,
            End::Write => libc::O_WRONLY,
        };
        if access != expected {
            return Err(incompatible(
                format!("descriptor is not the {end:?} end of a pipe").to_lowercase(),
            ));
        }
        Ok(())
    })
}

/// Takes ownership of descriptor `fd`, inherited from the parent under the transport string
/// `object` (`pipe:fd=N`, `socketpair:fd=N`), once `check` accepted it: [`Error::NotFound`] if
/// it is not open, [`Error::AlreadyExists`] if this process adopted the same open file under
/// that number already (two owners would close it twice). It gets `FD_CLOEXEC` again, so it
/// does not leak further.
pub fn adopt_inherited(
    fd: RawFd,
    object: &str,
    check: impl FnOnce(BorrowedFd<'_>) -> Result<()>,
) -> Result<OwnedFd> {
    let identity = sys::with_inherited(fd, |borrowed| {
        check(borrowed)?;
        let st = nix::sys::stat::fstat(borrowed)
            .map_err(|e| Error::io(format!("fstat {object}"), e.into()))?;
        Ok((st.st_dev, st.st_ino))
    })
    .map_err(|e| match e.raw_os_error() {
        Some(libc::EBADF) => Error::NotFound {
            object: format!("{object} (descriptor not open: was it handed over with inherit?)"),
        },
        _ => Error::io(format!("F_GETFD {object}"), e),
    })??;
    let mut adopted = ADOPTED.lock().unwrap_or_else(|e| e.into_inner());
    if adopted
        .get_or_insert_with(HashMap::new)
        .insert(fd, identity)
        == Some(identity)
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
