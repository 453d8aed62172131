//! A ring's readiness doorbell: an anonymous pipe that peers reach through `/proc`, and the
//! epoll set that joins a doorbell with the pidfds of the peers it waits for.
//!
//! The waiting endpoint makes a pipe and publishes, in its slot of the segment, the number of
//! its read end and the pipe's inode ([`Bell::name`]); its pid is in the slot already. A peer
//! rings by opening `/proc/PID/fd/N` (which opens that very pipe), checking that it is a pipe
//! with the published inode, and writing one byte. Nothing has a name in a filesystem, so
//! nothing is left behind when a process dies, and the pipe is reachable from any network
//! namespace. The peer opens it read-write: it then never lacks a reader, so a write can never
//! raise `SIGPIPE`, whenever the waiter dies. Measurements behind the choice:
//! `docs/measurements/doorbell.md`.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};

/// The waiting side of a doorbell: both ends of its pipe (the write end is kept so that the
/// read end never reports a hang-up).
#[derive(Debug)]
pub struct Bell {
    read: File,
    _write: OwnedFd,
    name: u64,
}

impl Bell {
    /// A new doorbell, its read end non-blocking.
    pub fn new() -> io::Result<Bell> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: `fds` is a valid out-array of two descriptors for the call.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: on success `pipe2` returned two new descriptors that nothing else owns.
        let (read, write) = unsafe { (File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let ino = read.metadata()?.ino();
        let name = (ino & 0xffff_ffff) << 32 | fds[0] as u32 as u64;
        Ok(Bell {
            read,
            _write: write,
            name,
        })
    }

    /// What peers need, besides the pid, to reach the doorbell: the read end's descriptor
    /// number (low half) and the low 32 bits of the pipe's inode (high half). Never zero.
    pub fn name(&self) -> u64 {
        self.name
    }

    /// The descriptor that is readable while the doorbell has been rung.
    pub fn fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.read.as_fd()
    }

    /// Consumes the rings (bounded: a doorbell left readable costs a spurious wake-up, not a
    /// lost one).
    pub fn drain(&self) {
        let mut buf = [0u8; 64];
        for _ in 0..16 {
            match (&self.read).read(&mut buf) {
                Ok(n) if n == buf.len() => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                _ => return,
            }
        }
    }
}

/// Opens the doorbell `name` of process `pid` for ringing; `None` if it is not (or no longer)
/// a pipe with the published inode, or we may not open it.
pub fn open(pid: u32, name: u64) -> Option<File> {
    let fd = name as u32;
    let ino = name >> 32;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(format!("/proc/{pid}/fd/{fd}"))
        .ok()?;
    let meta = file.metadata().ok()?;
    (meta.file_type().is_fifo() && meta.ino() & 0xffff_ffff == ino).then_some(file)
}

/// Rings an opened doorbell: one byte, never waiting (a full pipe is readable already).
pub fn ring(bell: &File) {
    let _ = (&*bell).write(&[1]);
}

/// A one-shot monotonic timer descriptor (non-blocking, close-on-exec).
#[derive(Debug)]
pub struct Timer(File);

impl Timer {
    pub fn new() -> io::Result<Timer> {
        // SAFETY: plain system call with integer arguments.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: on success the call returned a new descriptor that nothing else owns.
        Ok(Timer(unsafe { File::from_raw_fd(fd) }))
    }

    /// The descriptor, readable once the timer fired.
    pub fn fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.0.as_fd()
    }

    /// Fires once, `after` from now (replacing any earlier setting).
    pub fn arm(&self, after: std::time::Duration) -> io::Result<()> {
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: after.as_secs() as libc::time_t,
                // A zero value would disarm the timer.
                tv_nsec: after.subsec_nanos().max(1) as libc::c_long,
            },
        };
        // SAFETY: `spec` is a valid itimerspec for the call; a null old-value pointer is allowed.
        let rc =
            unsafe { libc::timerfd_settime(self.0.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Resets a fired timer (reads its expiration count).
    pub fn consume(&self) {
        let mut count = [0u8; 8];
        let _ = (&self.0).read(&mut count);
    }
}

/// An epoll instance: a doorbell and the pidfds of the peers it waits for, as one descriptor.
#[derive(Debug)]
pub struct Epoll(OwnedFd);

impl Epoll {
    /// A new, empty epoll instance (close-on-exec).
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: plain system call with an integer argument.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: on success the call returned a new descriptor that nothing else owns.
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// The instance's descriptor (readable when a member is ready).
    pub fn fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.0.as_fd()
    }

    /// Adds `fd`, reported as `token` when readable (level-triggered).
    pub fn add(&self, fd: BorrowedFd<'_>, token: u64) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: token,
        };
        // SAFETY: `event` is a valid epoll_event for the call; both descriptors are open.
        let rc = unsafe {
            libc::epoll_ctl(
                self.0.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                fd.as_raw_fd(),
                &mut event,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Removes `fd` (a descriptor that is not a member is ignored).
    pub fn remove(&self, fd: BorrowedFd<'_>) {
        // SAFETY: both descriptors are open; a null event is allowed for EPOLL_CTL_DEL since
        // Linux 2.6.9.
        unsafe {
            libc::epoll_ctl(
                self.0.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd.as_raw_fd(),
                std::ptr::null_mut(),
            )
        };
    }

    /// Writes the tokens of the members ready now to `out`, without waiting; returns how many
    /// (at most `out.len()` and 8).
    pub fn ready_now(&self, out: &mut [u64]) -> usize {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 8];
        let max = events.len().min(out.len());
        // SAFETY: `events` is valid for writes of `max` entries for the call.
        let n = unsafe { libc::epoll_wait(self.0.as_raw_fd(), events.as_mut_ptr(), max as i32, 0) };
        let n = usize::try_from(n).unwrap_or(0);
        for (slot, event) in out.iter_mut().zip(&events[..n]) {
            *slot = event.u64;
        }
        n
    }
}

/// Whether `fd` becomes readable within `timeout` (for tests, which wait as an event loop).
#[cfg(test)]
pub fn readable_within(fd: BorrowedFd<'_>, timeout: std::time::Duration) -> bool {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: one valid pollfd for the call, on an open descriptor.
    unsafe { libc::poll(&mut pfd, 1, ms) > 0 }
}
