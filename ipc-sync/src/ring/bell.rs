//! Readiness for ring endpoints: a doorbell descriptor that joins the futex protocol.
//!
//! An endpoint that an event loop waits on (see [`ipc_core::Readiness`]) gets a doorbell: a
//! pipe that its peers reach through `/proc/PID/fd/N` (see [`crate::sys::bell`]), published in
//! the endpoint's slot, inside an epoll set together with the pidfds of the peers whose death
//! must wake it. The epoll descriptor is what the event loop sees.
//!
//! Arming is the futex protocol's "I may sleep" with another value: a consumer stores
//! [`BELL`](super::wait::BELL) in its wait word, a producer sets its bit in the
//! [`SPACE_BELLS`](super::ctl::SPACE_BELLS) mask; then a full fence and one more look. A peer
//! that publishes progress already fences and loads that word whenever the waiter may park, so
//! a waiter that is awake costs the peer nothing more, and one that armed costs it one
//! `write` of one byte (and an `open` the first time). Everything else (a message arriving while the loop is busy, a
//! release that finds nobody armed) stays free of system calls.
//!
//! Why this mechanism rather than an eventfd or a FIFO, and what it costs, is measured in
//! `docs/measurements/doorbell.md` and summarised in ARCHITECTURE.md.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex};

use ipc_core::{Error, Result};

use crate::sys::bell::{self, Bell, Epoll, Timer};

/// Identifies one watched peer: its slot's offset and the owner word judged alive.
pub type PeerKey = (usize, u64);

/// The tokens of the doorbell pipe and of the fallback timer in the epoll set (pidfds get
/// small numbers).
const BELL_TOKEN: u64 = u64::MAX;
const TIMER_TOKEN: u64 = u64::MAX - 1;

/// The waiting side: the doorbell and the peers it watches.
#[derive(Debug)]
pub(crate) struct Doorbell {
    bell: Bell,
    epoll: Epoll,
    /// Made when a peer could not ring the doorbell: wakes the waiter every park slice instead,
    /// as a parked endpoint wakes.
    fallback: Option<Timer>,
    /// When the fallback timer fires, if it is armed and has not fired yet.
    fallback_due: Option<std::time::Instant>,
    watched: Vec<Watched>,
    next_token: u64,
}

#[derive(Debug)]
struct Watched {
    key: PeerKey,
    token: u64,
    pidfd: OwnedFd,
}

fn io_error(what: &str, e: std::io::Error) -> Error {
    Error::io(what, e)
}

impl Doorbell {
    pub fn new() -> Result<Doorbell> {
        let bell = Bell::new().map_err(|e| io_error("ring doorbell pipe", e))?;
        let epoll = Epoll::new().map_err(|e| io_error("epoll_create1", e))?;
        epoll
            .add(bell.fd(), BELL_TOKEN)
            .map_err(|e| io_error("epoll_ctl", e))?;
        Ok(Doorbell {
            bell,
            epoll,
            fallback: None,
            fallback_due: None,
            watched: Vec::new(),
            next_token: 0,
        })
    }

    /// The descriptor an event loop waits on (readable when rung or a watched peer died).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.epoll.fd()
    }

    /// The doorbell's name word, for the endpoint's slot.
    pub fn name(&self) -> u64 {
        self.bell.name()
    }

    /// Makes the watched peers exactly `peers` (adding and dropping pidfds as they changed).
    pub fn watch<'a>(
        &mut self,
        peers: impl Iterator<Item = (PeerKey, BorrowedFd<'a>)> + Clone,
    ) -> Result<()> {
        // The usual case, at every wait: the same peers as last time. Nothing to allocate then.
        let mut same = 0;
        for (i, (key, _)) in peers.clone().enumerate() {
            if self.watched.get(i).is_none_or(|w| w.key != key) {
                same = usize::MAX;
                break;
            }
            same = i + 1;
        }
        if same == self.watched.len() {
            return Ok(());
        }
        let wanted: Vec<(PeerKey, BorrowedFd<'a>)> = peers.collect();
        let epoll = &self.epoll;
        self.watched.retain(|w| {
            let keep = wanted.iter().any(|(key, _)| *key == w.key);
            if !keep {
                epoll.remove(w.pidfd.as_fd());
            }
            keep
        });
        for &(key, fd) in &wanted {
            if self.watched.iter().any(|w| w.key == key) {
                continue;
            }
            let pidfd = fd
                .try_clone_to_owned()
                .map_err(|e| io_error("dup pidfd", e))?;
            let token = self.next_token;
            self.next_token += 1;
            self.epoll
                .add(pidfd.as_fd(), token)
                .map_err(|e| io_error("epoll_ctl", e))?;
            self.watched.push(Watched { key, token, pidfd });
        }
        // In the peers' order, so that the next wait finds them unchanged without allocating.
        self.watched
            .sort_by_key(|w| wanted.iter().position(|(key, _)| *key == w.key));
        Ok(())
    }

    /// For a doorbell a peer could not ring: arms a timer that makes the descriptor ready in
    /// `after` at the latest, so that the waiter looks for itself.
    pub fn arm_fallback(&mut self, after: std::time::Duration) -> Result<()> {
        if self.fallback.is_none() {
            let timer = Timer::new().map_err(|e| io_error("timerfd_create", e))?;
            self.epoll
                .add(timer.fd(), TIMER_TOKEN)
                .map_err(|e| io_error("epoll_ctl", e))?;
            self.fallback = Some(timer);
        }
        // Armed already to fire before `after` from now: that will do, and saves a system
        // call per wait while the peer keeps waking us first.
        let now = std::time::Instant::now();
        if self
            .fallback_due
            .is_some_and(|due| due > now && due <= now + after)
        {
            return Ok(());
        }
        let timer = self.fallback.as_ref().expect("made above");
        timer
            .arm(after)
            .map_err(|e| io_error("timerfd_settime", e))?;
        self.fallback_due = Some(now + after);
        Ok(())
    }

    /// After the descriptor reported ready: drains the doorbell and forgets the peers that
    /// exited; returns whether any did, or the fallback timer fired (peers must then be
    /// checked at once, not at the usual interval).
    pub fn after_wake(&mut self) -> bool {
        let mut tokens = [0u64; 8];
        let n = self.epoll.ready_now(&mut tokens);
        let mut exited = false;
        for &token in &tokens[..n] {
            if token == BELL_TOKEN {
                self.bell.drain();
            } else if token == TIMER_TOKEN {
                if let Some(timer) = &self.fallback {
                    timer.consume();
                }
                self.fallback_due = None;
                exited = true;
            } else if let Some(at) = self.watched.iter().position(|w| w.token == token) {
                let gone = self.watched.swap_remove(at);
                self.epoll.remove(gone.pidfd.as_fd());
                exited = true;
            }
        }
        exited
    }
}

/// The ringing side: the doorbells this endpoint has opened, by the slot that published them.
/// Most endpoints never ring (nobody waits on a descriptor), and then hold nothing. Shared by
/// the clones of one endpoint's memory handle.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ringer {
    opened: Arc<Mutex<Vec<Opened>>>,
}

#[derive(Debug)]
struct Opened {
    slot: usize,
    /// The slot's owner word and doorbell name it was opened for: either changing means
    /// another doorbell.
    owner: u64,
    name: u64,
    /// `None`: it could not be opened (not a pipe with that inode, or not ours to open).
    bell: Option<File>,
}

/// A doorbell to ring, as read from the slot at `slot`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Target {
    pub slot: usize,
    pub owner: u64,
    pub pid: u32,
    pub pidns: u64,
    pub name: u64,
}

impl Ringer {
    /// Rings `target`, opening it the first time; `false` if it cannot be rung from here.
    /// Everything in it was read from the segment: what it names is checked to be a pipe with
    /// the published inode before a byte is written, and one that is not is never rung.
    #[cold]
    pub fn ring(&self, target: Target) -> bool {
        let Ok(mut opened) = self.opened.lock() else {
            return false;
        };
        let at = match opened.iter().position(|o| o.slot == target.slot) {
            Some(at) if opened[at].owner == target.owner && opened[at].name == target.name => at,
            found => {
                let fresh = Opened {
                    slot: target.slot,
                    owner: target.owner,
                    name: target.name,
                    // Its pid means something in `/proc` only in its own PID namespace. Looked
                    // up once per doorbell, not per ring (it costs a `getpid`).
                    bell: crate::process::same_pid_namespace(target.pidns)
                        .then(|| bell::open(target.pid, target.name))
                        .flatten(),
                };
                match found {
                    Some(at) => {
                        opened[at] = fresh;
                        at
                    }
                    None => {
                        opened.push(fresh);
                        opened.len() - 1
                    }
                }
            }
        };
        match &opened[at].bell {
            Some(bell) => {
                bell::ring(bell);
                true
            }
            None => false,
        }
    }
}
