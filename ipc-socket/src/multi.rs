//! A receiver of many senders: the listening socket and every connection it accepted, in one
//! epoll set, served in turn.
//!
//! The epoll descriptor is the receiver's readiness descriptor: it is readable when a sender
//! is waiting to connect, a connection has data, or a connection has gone, so an event loop
//! registers one descriptor however many senders come and go.
//!
//! # Turns and order
//!
//! The connections epoll reports ready are served one message each, in the order reported.
//! A connection just received from goes to the back of the line, since it may well hold more:
//! a busy sender costs one `recv` per message, not an `epoll_wait` and a `recv`. Epoll is asked
//! again whenever the line is empty and at least every [`POLL_EVERY`] messages, so a busy
//! sender cannot starve one that epoll has not reported yet. Messages of one sender arrive in
//! the order it sent them (one connection, read in order).
//!
//! # Disconnection
//!
//! As with a FIFO: a receiver that never had a sender waits (`Empty`, `Timeout`); once at
//! least one sender has connected, [`Error::Disconnected`] is returned when every sender that
//! connected has gone, their messages have all been received and nobody is waiting to
//! connect. A sender that connects later is received from as before.

use std::collections::{HashMap, VecDeque};
use std::os::fd::{AsFd, BorrowedFd};

use ipc_core::{
    Error, Interest, Readiness, Receiver, Result, Wait, WaitStrategy, poll_before_sleep,
};
use nix::errno::Errno;
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

/// Most messages received between two looks at epoll (see the module documentation).
const POLL_EVERY: u32 = 16;

/// The listener, its connections, and whose turn it is.
pub(crate) struct Multi<L: Listen> {
    listener: L,
    epoll: Epoll,
    conns: HashMap<u64, L::Conn>,
    next_token: u64,
    /// Connections (or the listener) known to be ready, served front first.
    ready: VecDeque<u64>,
    /// Messages received since epoll was last asked.
    served: u32,
    ever_connected: bool,
    max: usize,
    /// How a receive polls before it sleeps in `epoll_wait`.
    wait: WaitStrategy,
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
        })
    }

    /// Polls for a message as `wait` says before sleeping in `epoll_wait` (`park` unless set).
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
            self.epoll
                .add(
                    conn.as_fd(),
                    EpollEvent::new(EpollFlags::EPOLLIN | EpollFlags::EPOLLRDHUP, token),
                )
                .map_err(|e| Error::io("epoll_ctl", e.into()))?;
            self.conns.insert(token, conn);
            self.ever_connected = true;
            // It may have sent before we looked: give it a turn.
            self.ready.push_back(token);
            n += 1;
        }
        Ok(n)
    }

    fn remove(&mut self, token: u64) {
        if let Some(conn) = self.conns.remove(&token) {
            let _ = self.epoll.delete(conn.as_fd());
        }
    }

    /// Waits in epoll (within `wait`) and queues what it reports; `Ok(false)` when nothing was.
    fn poll(&mut self, wait: Wait) -> Result<bool> {
        self.served = 0;
        let mut events = [EpollEvent::empty(); 64];
        loop {
            let timeout =
                EpollTimeout::try_from(wait.poll_timeout_ms()).unwrap_or(EpollTimeout::MAX);
            match self.epoll.wait(&mut events, timeout) {
                Ok(0) if wait == Wait::Never || wait.expired() => return Ok(false),
                // epoll rounds to milliseconds: go round again until the deadline has passed.
                Ok(0) | Err(Errno::EINTR) => continue,
                Ok(n) => {
                    for token in events[..n].iter().map(|e| e.data()) {
                        // Already in line when it was received from last.
                        if !self.ready.contains(&token) {
                            self.ready.push_back(token);
                        }
                    }
                    return Ok(true);
                }
                Err(e) => return Err(Error::io("epoll_wait", e.into())),
            }
        }
    }

    /// One message without waiting, from the next connection in turn. With `probe`, epoll is
    /// asked (without waiting) when the line is empty; a caller about to wait in epoll anyway
    /// passes `false`, saving that call.
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
        // A receive that parks waits in epoll next, which reports anything a probe would: one
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

    pub(crate) fn epoll_fd(&self) -> BorrowedFd<'_> {
        self.epoll.0.as_fd()
    }
}

/// The epoll set: readable when a sender waits to connect, a connection has data or has gone.
/// A message read ahead (TCP frames) says "retry now" instead, which epoll cannot show.
impl<L: Listen> Readiness for Multi<L> {
    fn ready_fd(&mut self) -> Result<(BorrowedFd<'_>, Interest)> {
        Ok((self.epoll_fd(), Interest::Readable))
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

impl<L: Listen> AsFd for Multi<L> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.epoll_fd()
    }
}
