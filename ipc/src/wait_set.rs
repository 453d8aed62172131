//! [`WaitSet`]: one thread waiting for several endpoints of any transports at once.
//!
//! ```
//! use ipc::{Receiver, Sender, Wait, WaitSet};
//!
//! # fn main() -> Result<(), ipc::Error> {
//! # let dir = std::env::temp_dir();
//! # let fifo = dir.join(format!("ipc-waitset-doc-{}.fifo", std::process::id()));
//! # let shm = format!("/ipc-waitset-doc-{}", std::process::id());
//! let fifo_spec = format!("fifo:{}", fifo.display());
//! let shm_spec = format!("posix-shm:{shm}");
//! let mut set = WaitSet::new();
//! let from_fifo = set.add_receiver(ipc::open_receiver(&fifo_spec)?)?;
//! let from_ring = set.add_receiver(ipc::open_receiver(&shm_spec)?)?;
//!
//! let mut ring_tx = ipc::open_sender(&shm_spec)?;
//! ring_tx.send(b"from the ring")?;
//!
//! let mut buf = vec![0; 64 * 1024];
//! let (key, got) = set.recv(&mut buf, Wait::timeout(std::time::Duration::from_secs(5)))?;
//! assert_eq!(key, from_ring);
//! assert_eq!(&buf[..got?], b"from the ring");
//! # let _ = from_fifo;
//! # Ok(())
//! # }
//! ```
//!
//! Members are owned by the set and reached by their [`Key`]. [`WaitSet::wait`] says which
//! members may make progress; [`WaitSet::recv`] receives one message from whichever receiver
//! has one, taking turns so that a busy member cannot starve the others.
//!
//! Each member is waited for through its [`Readiness`] descriptor (see [`ipc_core::ready`]),
//! all of them in one `poll(2)`: a ring waits on its doorbell, which its peers ring only while
//! it is armed, so a set costs the senders nothing while it is busy receiving. A member whose
//! peer left or died is reported ready, and its next call returns `Disconnected`: remove it.
//! The set holds a duplicate of each member's descriptor, so it never touches descriptors it
//! does not own.

use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::{Error, Interest, Readiness, Receiver, Result, Sender, Wait};

/// What `poll` reports whatever was asked: the peer hung up, or the descriptor failed.
const HANG_UP: PollFlags = PollFlags::POLLHUP.union(PollFlags::POLLERR);

/// Names a member of a [`WaitSet`]. Keys are not reused while the set lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(u64);

/// A member of a [`WaitSet`], as given back by [`WaitSet::remove`].
pub enum Member {
    /// A receiver, waited for until a message (or its peers' departure) is there.
    Receiver(Box<dyn Receiver>),
    /// A sender, waited for until there is room (or its receiver left).
    Sender(Box<dyn Sender>),
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Member::Receiver(_) => f.write_str("Member::Receiver"),
            Member::Sender(_) => f.write_str("Member::Sender"),
        }
    }
}

impl Member {
    fn readiness(&mut self) -> Option<&mut dyn Readiness> {
        match self {
            Member::Receiver(rx) => rx.readiness(),
            Member::Sender(tx) => tx.readiness(),
        }
    }
}

struct Entry {
    key: Key,
    member: Member,
    fd: OwnedFd,
    events: PollFlags,
}

/// Waits for several receivers and senders at once (see the [module documentation](self)).
#[derive(Default)]
pub struct WaitSet {
    entries: Vec<Entry>,
    ready: Vec<Key>,
    next_key: u64,
    /// Where [`WaitSet::recv`] starts looking, so that members take turns.
    turn: usize,
}

impl std::fmt::Debug for WaitSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WaitSet")
            .field("members", &self.entries.len())
            .finish()
    }
}

impl WaitSet {
    /// An empty set.
    pub fn new() -> WaitSet {
        WaitSet::default()
    }

    /// Adds a receiver; it is ready when a message can be received (or its peers are gone).
    pub fn add_receiver(&mut self, rx: impl Receiver + 'static) -> Result<Key> {
        self.add(Member::Receiver(Box::new(rx)))
    }

    /// Adds a sender; it is ready when there is room for a message (or its receiver is gone).
    pub fn add_sender(&mut self, tx: impl Sender + 'static) -> Result<Key> {
        self.add(Member::Sender(Box::new(tx)))
    }

    fn add(&mut self, mut member: Member) -> Result<Key> {
        let Some(ready) = member.readiness() else {
            return Err(Error::Incompatible {
                object: "wait set member".into(),
                reason: "this endpoint has no readiness descriptor (Readiness)".into(),
            });
        };
        let (fd, interest) = ready.ready_fd()?;
        let fd = fd
            .try_clone_to_owned()
            .map_err(|e| Error::io("dup readiness descriptor", e))?;
        let events = match interest {
            Interest::Readable => PollFlags::POLLIN,
            Interest::Writable => PollFlags::POLLOUT,
        };
        let key = Key(self.next_key);
        self.next_key += 1;
        self.entries.push(Entry {
            key,
            member,
            fd,
            events,
        });
        Ok(key)
    }

    /// Takes a member out of the set.
    pub fn remove(&mut self, key: Key) -> Option<Member> {
        let at = self.entries.iter().position(|e| e.key == key)?;
        Some(self.entries.remove(at).member)
    }

    /// How many members the set has.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the set has no member.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The receiver `key` names (`None` for a sender or a key not in the set).
    pub fn receiver(&mut self, key: Key) -> Option<&mut (dyn Receiver + 'static)> {
        match &mut self.entry(key)?.member {
            Member::Receiver(rx) => Some(rx.as_mut()),
            Member::Sender(_) => None,
        }
    }

    /// The sender `key` names (`None` for a receiver or a key not in the set).
    pub fn sender(&mut self, key: Key) -> Option<&mut (dyn Sender + 'static)> {
        match &mut self.entry(key)?.member {
            Member::Sender(tx) => Some(tx.as_mut()),
            Member::Receiver(_) => None,
        }
    }

    fn entry(&mut self, key: Key) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.key == key)
    }

    /// Waits as `wait` allows until at least one member may make progress, and returns those
    /// that may: a receiver's `try_recv` or a sender's `try_send` is then worth calling (it may
    /// still find nothing, e.g. when another process was faster, and then returns
    /// `Empty`/`Full`). `Empty` for [`Wait::Never`] and `Timeout` after a deadline when none
    /// is ready; `Empty` at once for an empty set, which nothing could ever wake.
    pub fn wait(&mut self, wait: Wait) -> Result<&[Key]> {
        self.wait_for(wait, |_| true)
    }

    /// [`WaitSet::wait`] for the members `wanted` selects.
    fn wait_for(&mut self, wait: Wait, wanted: fn(&Member) -> bool) -> Result<&[Key]> {
        if !self.entries.iter().any(|e| wanted(&e.member)) {
            return Err(Error::Empty);
        }
        self.ready.clear();
        loop {
            for entry in self.entries.iter_mut().filter(|e| wanted(&e.member)) {
                let ready = entry
                    .member
                    .readiness()
                    .expect("members were checked to have readiness when added");
                if ready.prepare_wait()? {
                    self.ready.push(entry.key);
                }
            }
            if !self.ready.is_empty() {
                return Ok(&self.ready);
            }
            if wait.expired() {
                return Err(wait.empty_error());
            }
            // Members not wanted are left out: a hung-up descriptor would wake every poll.
            let polled: Vec<usize> = (0..self.entries.len())
                .filter(|&i| wanted(&self.entries[i].member))
                .collect();
            let mut fds: Vec<PollFd<'_>> = polled
                .iter()
                .map(|&i| PollFd::new(self.entries[i].fd.as_fd(), self.entries[i].events))
                .collect();
            let timeout = PollTimeout::try_from(wait.poll_timeout_ms()).unwrap_or(PollTimeout::MAX);
            let woken: Vec<usize> = match nix::poll::poll(&mut fds, timeout) {
                Ok(_) => polled
                    .iter()
                    .zip(&fds)
                    .filter(|(_, fd)| {
                        fd.revents()
                            .is_some_and(|r| r.intersects(fd.events() | HANG_UP))
                    })
                    .map(|(&i, _)| i)
                    .collect(),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(Error::io("poll on a wait set", e.into())),
            };
            for i in woken {
                let entry = &mut self.entries[i];
                entry
                    .member
                    .readiness()
                    .expect("members were checked to have readiness when added")
                    .after_wake();
                self.ready.push(entry.key);
            }
            if !self.ready.is_empty() {
                return Ok(&self.ready);
            }
        }
    }

    /// Receives one message from whichever receiver of the set has one, waiting as `wait`
    /// allows; returns the receiver's key and the outcome of its receive: `Ok(len)`, or the
    /// error that receiver gave (`Disconnected`: remove it; `BufferTooSmall`: the message
    /// stays). Receivers take turns; senders in the set are left alone. The outer error is the set's: `Timeout`/`Empty` when no
    /// message came, or a failure to wait.
    pub fn recv(&mut self, buf: &mut [u8], wait: Wait) -> Result<(Key, Result<usize>)> {
        loop {
            if let Some(found) = self.try_each(buf) {
                return Ok(found);
            }
            self.wait_for(wait, |m| matches!(m, Member::Receiver(_)))?;
            if let Some(found) = self.try_each(buf) {
                return Ok(found);
            }
            if wait.expired() {
                return Err(wait.empty_error());
            }
        }
    }

    /// One `try_recv` on each receiver, starting after the last one served.
    fn try_each(&mut self, buf: &mut [u8]) -> Option<(Key, Result<usize>)> {
        let n = self.entries.len();
        for i in 0..n {
            let at = (self.turn + i) % n;
            let entry = &mut self.entries[at];
            let Member::Receiver(rx) = &mut entry.member else {
                continue;
            };
            match rx.try_recv(buf) {
                Err(Error::Empty) => {}
                outcome => {
                    self.turn = at + 1;
                    return Some((entry.key, outcome));
                }
            }
        }
        None
    }
}
