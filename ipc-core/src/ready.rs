//! Readiness: waiting for an endpoint in an event loop, together with other descriptors.
//!
//! Every endpoint of the workspace can be waited on through one descriptor, so that a program
//! can wait for several endpoints, its own sockets and its timers in one `poll`/`epoll_wait`,
//! or `.await` them on tokio. Where the kernel object is a descriptor (pipe, FIFO, POSIX
//! queue), that is the descriptor; a shared-memory ring has a doorbell, and a System V queue a
//! helper (see each transport's documentation for what it costs).
//!
//! The protocol is the same for all of them, and it never loses a wake-up:
//!
//! 1. try the operation without waiting (`try_recv`, `try_send`,
//!    [`Sender::try_send_part`](crate::Sender::try_send_part)); go on while it succeeds;
//! 2. on `Empty` / `Full`, call [`Readiness::prepare_wait`]; if it returns `true`, progress may
//!    already be possible: go back to 1 without sleeping;
//! 3. wait until [`Readiness::ready_fd`] reports the [`Interest`] it names (it may report it
//!    spuriously);
//! 4. call [`Readiness::after_wake`], then go back to 1.
//!
//! A readiness descriptor reports peer death too (a dead peer's endpoint wakes the waiter,
//! and the next call returns `Disconnected`), within the bound a blocking call has.
//!
//! ```
//! use std::os::fd::AsRawFd;
//! use ipc_core::{Error, Interest, Readiness, Receiver};
//!
//! /// Receives one message, sleeping in `poll(2)` as an event loop would.
//! fn recv_in_event_loop(rx: &mut dyn Receiver, buf: &mut [u8]) -> Result<usize, Error> {
//!     loop {
//!         match rx.try_recv(buf) {
//!             Err(Error::Empty) => {}
//!             done => return done,
//!         }
//!         let Some(ready) = rx.readiness() else {
//!             unreachable!("every transport of the workspace has readiness");
//!         };
//!         if ready.prepare_wait()? {
//!             continue;
//!         }
//!         let (fd, interest) = ready.ready_fd()?;
//!         let events = match interest {
//!             Interest::Readable => libc_like::POLLIN,
//!             Interest::Writable => libc_like::POLLOUT,
//!         };
//!         libc_like::poll_one(fd.as_raw_fd(), events);
//!         ready.after_wake();
//!     }
//! }
//! # mod libc_like {
//! #     pub const POLLIN: i16 = 1;
//! #     pub const POLLOUT: i16 = 4;
//! #     pub fn poll_one(_fd: i32, _events: i16) {}
//! # }
//! ```
//!
//! `ipc::WaitSet` and the `tokio` feature of `ipc` run this protocol for you.

use std::os::fd::BorrowedFd;

use crate::Result;

/// What state of a readiness descriptor means "try again".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Interest {
    /// The descriptor becomes readable (`POLLIN`, `EPOLLIN`).
    Readable,
    /// The descriptor becomes writable (`POLLOUT`, `EPOLLOUT`).
    Writable,
}

/// An endpoint an event loop can wait for (see the [module documentation](self) for the
/// protocol). Obtained from [`Receiver::readiness`](crate::Receiver::readiness) or
/// [`Sender::readiness`](crate::Sender::readiness); object safe.
pub trait Readiness {
    /// The descriptor to wait on and the readiness to wait for. It stays the same descriptor
    /// for the endpoint's whole life (it may be created at the first call), so it can be
    /// registered once with `epoll` or tokio.
    fn ready_fd(&mut self) -> Result<(BorrowedFd<'_>, Interest)>;

    /// Announces that the caller is about to sleep on the descriptor. `Ok(true)`: progress may
    /// be possible already, try again instead of sleeping. After `Ok(false)`, anything that
    /// makes progress possible (a message, room, the peer leaving or dying) makes the
    /// descriptor ready.
    fn prepare_wait(&mut self) -> Result<bool>;

    /// Called after the descriptor reported ready, before trying again: consumes the
    /// notification, so that a level-triggered descriptor does not stay ready for nothing.
    fn after_wake(&mut self);
}
