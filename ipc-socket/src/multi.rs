//! A receiver of many senders: the listening socket and every connection it accepted, served
//! in turn.
//!
//! An epoll set of them all is the receiver's readiness descriptor: it is readable when a
//! sender is waiting to connect, a connection has data, or a connection has gone, so an event
//! loop registers one descriptor however many senders come and go.
//!
//! # Waiting without epoll
//!
//! A socket in an epoll set costs its sender at every message, whether anyone waits or not:
//! the kernel runs epoll's callback (two locks with interrupts off) on each arrival. A `unix:`
//! stream of 64 B messages took 1.1-1.3x the raw loop's time that way, against 1.0x for a
//! socket pair, and a C model of one seqpacket pair was 5-21% slower with the reader's socket
//! merely registered (`docs/measurements/epoll-registered.md`). So connections join the epoll
//! set only once the set is handed out (as the readiness descriptor, or by `as_fd`), or once
//! there are more than [`POLL_LIMIT`] of them; until then a receive that must sleep waits in
//! `poll(2)` on the listener and the connections, which hooks them only for that call.
//!
//! # Turns and order
//!
//! The connections the kernel reports ready (through `poll` or epoll) are served one
//! message each, in the order reported. A connection just received from goes to the back of
//! the line, since it may well hold more: a busy sender costs one `recv` per message, not a
//! `poll` and a `recv`. The kernel is asked again whenever the line is empty and at least every
//! [`POLL_EVERY`] messages, so a busy sender cannot starve one not reported yet. Messages of
//! one sender arrive in the order it sent them (one connection, read in order).
//!
//! # Disconnection
//!
//! As with a FIFO: a receiver that never had a sender waits (`Empty`, `Timeout`); once at
//! least one sender has connected, [`Error::Disconnected`] is returned when every sender that
//! connected has gone, their messages have all been received and nobody is waiting to
//! connect. A sender that connects later is received from as before.

use std::collections::{HashMap, VecDeque};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use ipc_core::{
    Error, Interest, Readiness, Receiver, Result, Wait, WaitStrategy, poll_before_sleep, poll_fds,
};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};

use crate::seq::nothing_yet;

/// A connection as the receiver sees it.
pub(crate) trait Conn: AsFd + Send {
    /// One message without waiting: `Empty` when none is whole yet, `Disconnected` when the
    /// sender has gone (a message it left unfinished is dropped, never delivered).
    fn try_recv(&mut self, buf: &mut [u8]) -> Result<usize>;
}

/// A listening socket.
pub(crate) trait Listen: AsFd + Send {
    /// The connections it hands out.
    type Conn: Conn;

    /// The next sender waiting to connect, without waiting; `Ok(None)` when none is. A sender
    /// the receiver refuses is turned away here and not returned.
    fn accept(&mut self) -> Result<Option<Self::Conn>>;
}

/// The token of the listening socket in the epoll set; connections have their own.
const LISTENER: u64 = 0;

/// Most messages received between two looks at what is ready (see the module documentation).
const POLL_EVERY: u32 = 16;

/// Most connections waited on with `poll(2)`; past that, they join the epoll set (see the
/// module documentation), where waking costs the same however many there are.
const POLL_LIMIT: usize = 15;

/// What epoll watches on a connection.
fn conn_event(token: u64) -> EpollEvent {
    EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP, token)
}

/// Puts `token` in `line` of those ready, unless it is there already (received from last, it
/// went back).
fn queue_ready(line: &mut VecDeque<u64>, token: u64) {
    if !line.contains(&token) {
        line.push_back(token);
    }
}

/// The listener, its connections, and whose turn it is.
pub(crate) struct Multi<L: Listen> {
    listener: L,
    epoll: Epoll,
    conns: HashMap<u64, L::Conn>,
    next_token: u64,
    /// Connections (or the listener) known to be ready, served front first.
    ready: VecDeque<u64>,
    /// Messages received since the kernel was last asked what is ready.
    served: u32,
    ever_connected: bool,
    max: usize,
    /// How a receive polls before it sleeps in the kernel.
    wait: WaitStrategy,
    /// Whether the connections are in the epoll set (see the module documentation); atomic
    /// only so that `as_fd`, which takes `&self`, can put them there.
    conns_in_epoll: AtomicBool,
}

impl<L: Listen> std::fmt::Debug for Multi<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Multi")
            .field("connections", &self.conns.len())
            .field("ready", &self.ready)
            .field("ever_connected", &self.ever_connected)
            .finish_non_exhaustive()
    }
}

impl<L: Listen> Multi<L> {
    /// Receives messages of up to `max` bytes from the senders `listener` accepts.
    pub(crate) fn new(listener: L, max: usize) -> Result<Multi<L>> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map_err(|e| Error::io("epoll_create", e.into()))?;
        epoll
            .add(
                listener.as_fd(),
                EpollEvent::new(EpollFlags::EPOLLIN, LISTENER),
            )
            .map_err(|e| Error::io("epoll_ctl", e.into()))?;
        Ok(Multi {
            listener,
            epoll,
            conns: HashMap::new(),
            next_token: LISTENER + 1,
            ready: VecDeque::new(),
            served: 0,
            ever_connected: false,
            max,
            wait: WaitStrategy::Park,
            conns_in_epoll: AtomicBool::new(false),
        })
    }

    /// Polls for a message as `wait` says before sleeping in the kernel (`park` unless set).
    pub(crate) fn with_wait(mut self, wait: WaitStrategy) -> Multi<L> {
        self.wait = wait;
        self
    }

    pub(crate) fn listener(&self) -> &L {
        &self.listener
    }

    /// How many senders are connected (as far as this receiver has looked).
    pub(crate) fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Accepts every sender waiting to connect; returns how many.
    fn accept_all(&mut self) -> Result<usize> {
        let mut n = 0;
        while let Some(conn) = self.listener.accept()? {
            let token = self.next_token;
            self.next_token += 1;
            if self.conns_in_epoll.load(Ordering::Relaxed) {
                self.epoll
                    .add(conn.as_fd(), conn_event(token))
                    .map_err(|e| Error::io("epoll_ctl", e.into()))?;
            }
            self.conns.insert(token, conn);
            self.ever_connected = true;
            // It may have sent before we looked: give it a turn.
            self.ready.push_back(token);
            n += 1;
        }
        Ok(n)
    }

    /// Puts the connections in the epoll set, for good (see the module documentation).
    fn conns_to_epoll(&self) -> Result<()> {
        if self.conns_in_epoll.load(Ordering::Relaxed) {
            return Ok(());
        }
        for (&token, conn) in &self.conns {
            match self.epoll.add(conn.as_fd(), conn_event(token)) {
                // Added by an earlier attempt that failed part way.
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(Error::io("epoll_ctl", e.into())),
            }
        }
        self.conns_in_epoll.store(true, Ordering::Relaxed);
        Ok(())
    }

    fn remove(&mut self, token: u64) {
        if let Some(conn) = self.conns.remove(&token)
            && self.conns_in_epoll.load(Ordering::Relaxed)
        {
            let _ = self.epoll.delete(conn.as_fd());
        }
    }

    /// Waits (within `wait`) for the listener or a connection and queues what is ready;
    /// `Ok(false)` when nothing was.
    fn poll(&mut self, wait: Wait) -> Result<bool> {
        self.served = 0;
        if self.conns.len() > POLL_LIMIT {
            self.conns_to_epoll()?;
        }
        if self.conns_in_epoll.load(Ordering::Relaxed) {
            self.poll_epoll(wait)
        } else {
            self.poll_each(wait)
        }
    }

    /// [`Multi::poll`] through `poll(2)` on the listener and every connection.
    fn poll_each(&mut self, wait: Wait) -> Result<bool> {
        let mut tokens = [LISTENER; POLL_LIMIT + 1];
        let listener = self.listener.as_fd();
        let mut fds: [PollFd<'_>; POLL_LIMIT + 1] =
            std::array::from_fn(|_| PollFd::new(listener, PollFlags::POLLIN));
        let mut n = 1;
        for (&token, conn) in self.conns.iter().take(POLL_LIMIT) {
            tokens[n] = token;
            // A sender gone makes its socket readable (end of stream) or hung up.
            fds[n] = PollFd::new(conn.as_fd(), PollFlags::POLLIN);
            n += 1;
        }
        if !poll_fds(&mut fds[..n], wait)? {
            return Ok(false);
        }
        for (fd, &token) in fds[..n].iter().zip(&tokens) {
            if fd.revents().is_some_and(|r| !r.is_empty()) {
                queue_ready(&mut self.ready, token);
            }
        }
        Ok(true)
    }

    /// [`Multi::poll`] through `epoll_wait`.
    fn poll_epoll(&mut self, wait: Wait) -> Result<bool> {
        let mut events = [EpollEvent::empty(); 64];
        loop {
            let timeout =
                EpollTimeout::try_from(wait.poll_timeout_ms()).unwrap_or(EpollTimeout::MAX);
            match self.epoll.wait(&mut events, timeout) {
                Ok(0) if wait == Wait::Never || wait.expired() => return Ok(false),
                // epoll rounds to milliseconds: go round again until the deadline has passed.
                Ok(0) | Err(Errno::EINTR) => continue,
                Ok(n) => {
                    for event in &events[..n] {
                        queue_ready(&mut self.ready, event.data());
                    }
                    return Ok(true);
                }
                Err(e) => return Err(Error::io("epoll_wait", e.into())),
            }
        }
    }

    /// One message without waiting, from the next connection in turn. With `probe`, the kernel
    /// is asked what is ready (without waiting) when the line is empty; a caller about to wait
    /// there anyway passes `false`, saving that call.
    fn try_recv(&mut self, buf: &mut [u8], probe: bool) -> Result<usize> {
        let mut asked = !probe;
        if self.served >= POLL_EVERY {
            asked = true;
            self.poll(Wait::Never)?;
        }
        loop {
            let Some(token) = self.ready.pop_front() else {
                if !asked {
                    asked = true;
                    if self.poll(Wait::Never)? {
                        continue;
                    }
                }
                let all_gone = self.ever_connected && self.conns.is_empty();
                // A sender still in the backlog (epoll asked just before it came) keeps us
                // connected.
                if all_gone && self.accept_all()? > 0 {
                    asked = false;
                    continue;
                }
                return Err(if all_gone {
                    Error::Disconnected
                } else {
                    Error::Empty
                });
            };
            if token == LISTENER {
                self.accept_all()?;
                continue;
            }
            let Some(conn) = self.conns.get_mut(&token) else {
                continue;
            };
            match conn.try_recv(buf) {
                Ok(n) => {
                    self.served += 1;
                    self.ready.push_back(token);
                    return Ok(n);
                }
                Err(Error::Empty) => {}
                Err(Error::Disconnected) => self.remove(token),
                Err(e @ Error::BufferTooSmall { .. }) => {
                    // The message stays first in line for a larger buffer.
                    self.ready.push_front(token);
                    return Err(e);
                }
                Err(e @ Error::MessageTooLarge { .. }) => {
                    self.ready.push_back(token);
                    return Err(e);
                }
                Err(e) => {
                    // A connection that fails otherwise (a peer that does not frame) is
                    // dropped, and the error said; the others go on.
                    self.remove(token);
                    return Err(e);
                }
            }
        }
    }

    fn recv(&mut self, buf: &mut [u8], wait: Wait) -> Result<usize> {
        // A receive that parks waits in the kernel next, which reports anything a probe would: one
        // call fewer each time the line runs dry (a large message over TCP, in several reads).
        let parks = wait != Wait::Never && self.wait == WaitStrategy::Park;
        if let Some(len) = nothing_yet(self.try_recv(buf, !parks))? {
            return Ok(len);
        }
        if wait == Wait::Never {
            return Err(Error::Empty);
        }
        let strategy = self.wait;
        if let Some(len) =
            poll_before_sleep(strategy, wait, || nothing_yet(self.try_recv(buf, true)))?
        {
            return Ok(len);
        }
        loop {
            if !self.poll(wait)? {
                return Err(Error::Timeout);
            }
            if let Some(len) = nothing_yet(self.try_recv(buf, false))? {
                return Ok(len);
            }
        }
    }

    /// Whether a receive may get on without epoll reporting anything.
    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// The epoll set, the connections in it from now on.
    fn epoll_fd(&self) -> Result<BorrowedFd<'_>> {
        self.conns_to_epoll()?;
        Ok(self.epoll.0.as_fd())
    }
}

/// The epoll set: readable when a sender waits to connect, a connection has data or has gone.
/// A message read ahead (TCP frames) says "retry now" instead, which epoll cannot show.
impl<L: Listen> Readiness for Multi<L> {
    fn ready_fd(&mut self) -> Result<(BorrowedFd<'_>, Interest)> {
        Ok((self.epoll_fd()?, Interest::Readable))
    }

    fn prepare_wait(&mut self) -> Result<bool> {
        Ok(self.has_ready())
    }

    fn after_wake(&mut self) {}
}

impl<L: Listen> Receiver for Multi<L> {
    fn max_message_size(&self) -> usize {
        self.max
    }

    fn recv_with(&mut self, buf: &mut [u8], wait: Wait) -> Result<usize> {
        self.recv(buf, wait)
    }

    fn readiness(&mut self) -> Option<&mut dyn Readiness> {
        Some(self)
    }
}

/// The epoll set, as [`Readiness::ready_fd`] gives it. Should the connections fail to join it
/// (`epoll_ctl`: out of memory, or `fs.epoll.max_user_watches`), it would not show their data:
/// event loops should use [`Receiver::readiness`], which reports that error.
impl<L: Listen> AsFd for Multi<L> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        let _ = self.conns_to_epoll();
        self.epoll.0.as_fd()
    }
}
