//! A ring's readiness doorbell: abstract unix datagram sockets, and the epoll set that joins a
//! doorbell with the pidfds of the peers it waits for.
//!
//! The waiting endpoint binds an *autobind* abstract address (the kernel picks a free name of
//! five hex digits), so nobody can squat it and nothing is left in a filesystem when the
//! process dies; the name goes into the endpoint's slot in the segment, encoded as one word
//! ([`name_word`]). A peer rings by sending one byte there from a socket of its own.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// Longest abstract name a name word carries.
const MAX_NAME: usize = 7;

/// A unix datagram socket, non-blocking and close-on-exec.
fn dgram_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain system call with integer arguments.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success `socket` returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// An unbound datagram socket to ring doorbells from.
pub fn ringer() -> io::Result<OwnedFd> {
    dgram_socket()
}

/// A datagram socket bound to a fresh autobind abstract address, and that address as a name
/// word.
pub fn doorbell() -> io::Result<(OwnedFd, u64)> {
    let fd = dgram_socket()?;
    let family = libc::sa_family_t::try_from(libc::AF_UNIX).expect("AF_UNIX fits sa_family_t");
    let addr = libc::sockaddr_un {
        sun_family: family,
        sun_path: [0; 108],
    };
    // SAFETY: `addr` is a valid sockaddr_un; passing only the family's size asks the kernel to
    // autobind an abstract name (unix(7)).
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            std::mem::size_of::<libc::sa_family_t>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut bound = libc::sockaddr_un {
        sun_family: 0,
        sun_path: [0; 108],
    };
    let mut len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
    // SAFETY: `bound` and `len` are valid out-pointers; `len` holds the buffer's size.
    let rc = unsafe {
        libc::getsockname(
            fd.as_raw_fd(),
            (&mut bound as *mut libc::sockaddr_un).cast(),
            &mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let path_len = (len as usize).saturating_sub(std::mem::size_of::<libc::sa_family_t>());
    // An abstract name starts with a NUL; what follows is the name proper.
    let name: Vec<u8> = bound.sun_path[..path_len.min(108)]
        .iter()
        .map(|&c| c as u8)
        .collect();
    match name.split_first() {
        Some((0, rest)) if !rest.is_empty() && rest.len() <= MAX_NAME => Ok((fd, name_word(rest))),
        _ => Err(io::Error::other(format!(
            "autobind gave an unexpected abstract address {name:?}"
        ))),
    }
}

/// Packs an abstract name of up to [`MAX_NAME`] bytes: its length in the low byte, the bytes
/// above. Never zero (zero means "no doorbell").
fn name_word(name: &[u8]) -> u64 {
    let mut word = name.len() as u64;
    for (i, &b) in name.iter().enumerate() {
        word |= (b as u64) << (8 * (i + 1));
    }
    word
}

/// Sends one byte from `from` to the doorbell named by `word`, without waiting. A word that
/// names nothing valid (it is read from shared memory), a full doorbell (it is ready already)
/// and a doorbell nobody holds any more are all ignored.
pub fn ring(from: BorrowedFd<'_>, word: u64) {
    let len = (word & 0xff) as usize;
    if len == 0 || len > MAX_NAME {
        return;
    }
    let family = libc::sa_family_t::try_from(libc::AF_UNIX).expect("AF_UNIX fits sa_family_t");
    let mut addr = libc::sockaddr_un {
        sun_family: family,
        sun_path: [0; 108],
    };
    for i in 0..len {
        addr.sun_path[1 + i] = (word >> (8 * (i + 1))) as u8 as libc::c_char;
    }
    let addr_len = std::mem::size_of::<libc::sa_family_t>() + 1 + len;
    // SAFETY: the buffer is one valid byte; `addr` is a valid sockaddr_un of which the first
    // `addr_len` bytes are passed.
    unsafe {
        libc::sendto(
            from.as_raw_fd(),
            [1u8].as_ptr().cast(),
            1,
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            (&addr as *const libc::sockaddr_un).cast(),
            addr_len as libc::socklen_t,
        )
    };
}

/// Reads every queued ring from a doorbell (bounded: a doorbell left ready costs a spurious
/// wake-up, not a lost one).
pub fn drain(bell: BorrowedFd<'_>) {
    let mut buf = [0u8; 16];
    for _ in 0..64 {
        // SAFETY: `buf` is valid for writes of its length for the call.
        let n = unsafe {
            libc::recv(
                bell.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
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
