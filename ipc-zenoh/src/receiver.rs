//! The receiving end: a Zenoh subscriber whose callback fills a bounded queue.

use std::collections::{HashSet, VecDeque};
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use ipc_core::{
    Error, Interest, Readiness, Receiver, Result, TransportSpec, Wait, WaitStrategy,
    poll_before_sleep,
};
use zenoh::Wait as _;
use zenoh::bytes::ZBytes;
use zenoh::pubsub::Subscriber;
use zenoh::sample::{Sample, SampleFields, SampleKind};

use crate::notify::Notifier;
use crate::session::{self, zenoh_error};
use crate::{DEFAULT_CAPACITY, key_expr, max_message_size, sender_tokens};

#[derive(Debug, Default)]
struct State {
    /// The payloads as Zenoh handed them (reference-counted slices of its receive buffers):
    /// `recv` copies each once, into the caller's buffer.
    queue: VecDeque<ZBytes>,
    /// Whether `recv` waits on `arrived`, and how many callbacks wait on `room`: a condvar
    /// is only notified when someone waits, since notifying costs a system call (futex)
    /// per message, which on a stream of small messages was most of the receiving side.
    receiver_waits: bool,
    callbacks_wait: usize,
    /// Whether a reader said it is about to sleep on the eventfd (`prepare_wait` found the
    /// queue empty): only then does a message signal it. A write to the eventfd per message
    /// cost as much again as that futex, and a blocking `recv` never looks at the eventfd.
    armed: bool,
    /// Liveliness tokens of the senders alive now.
    senders: HashSet<String>,
    /// Whether a sender was ever seen: before that, no sender is not a disconnection.
    seen_sender: bool,
    /// The receiver is gone: callbacks stop waiting for room and drop what they get.
    closed: bool,
}

impl State {
    fn disconnected(&self) -> bool {
        self.seen_sender && self.senders.is_empty()
    }
}

/// What Zenoh's callbacks and the receiver share.
#[derive(Debug)]
struct Inbox {
    state: Mutex<State>,
    capacity: usize,
    /// A message arrived, or the last sender went.
    arrived: Condvar,
    /// A message was taken, or the receiver closed.
    room: Condvar,
    notifier: Notifier,
    /// Bumped (after the state changed) at every message and every sender change, so that a
    /// receiver polling before it sleeps (`wait=spin`) sees news without taking the lock.
    news: AtomicU64,
}

impl Inbox {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The subscriber's callback. It blocks Zenoh's reception while the queue is full: that
    /// is the back-pressure which, through TCP, ends up blocking the sender's `put`.
    fn push(&self, sample: Sample) {
        if sample.kind() != SampleKind::Put {
            return;
        }
        let mut state = self.lock();
        while state.queue.len() >= self.capacity && !state.closed {
            state.callbacks_wait += 1;
            state = self
                .room
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.callbacks_wait -= 1;
        }
        if state.closed {
            return;
        }
        state.queue.push_back(SampleFields::from(sample).payload);
        let receiver_waits = state.receiver_waits;
        let armed = std::mem::take(&mut state.armed);
        drop(state);
        self.news.fetch_add(1, Ordering::Release);
        if receiver_waits {
            self.arrived.notify_one();
        }
        if armed {
            self.notifier.signal();
        }
    }

    /// The liveliness subscriber's callback: a sender's token came or went.
    fn sender_changed(&self, sample: Sample) {
        let token = sample.key_expr().as_str().to_owned();
        let mut state = self.lock();
        match sample.kind() {
            SampleKind::Put => {
                state.seen_sender = true;
                state.senders.insert(token);
            }
            SampleKind::Delete => {
                state.senders.remove(&token);
            }
        }
        let gone = state.disconnected();
        drop(state);
        self.news.fetch_add(1, Ordering::Release);
        if gone {
            self.arrived.notify_all();
            self.notifier.signal();
        }
    }
}

/// A Zenoh subscriber on the key of a `zenoh:` string, with a queue of `capacity` messages.
/// See the [crate documentation](crate) for what it promises.
pub struct ZenohReceiver {
    declared: Option<(Subscriber<()>, Subscriber<()>)>,
    session: Option<zenoh::Session>,
    inbox: Arc<Inbox>,
    max: usize,
    /// How a receive that finds the queue empty waits (`wait=`; default `park`).
    wait: WaitStrategy,
}

impl std::fmt::Debug for ZenohReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZenohReceiver")
            .field("max", &self.max)
            .field("capacity", &self.inbox.capacity)
            .finish_non_exhaustive()
    }
}

impl ZenohReceiver {
    /// Opens a session as `spec` says and declares the subscriber (and a liveliness
    /// subscriber that watches the senders). It does not wait for a sender.
    ///
    /// Errors: [`Error::InvalidSpec`] for a string that is not `zenoh:`, [`Error::Io`] when
    /// Zenoh cannot open the session (e.g. a `listen` endpoint already in use).
    pub fn open(spec: &TransportSpec) -> Result<ZenohReceiver> {
        let key = key_expr(spec)?;
        let capacity = spec.options.capacity.map_or(DEFAULT_CAPACITY, |c| {
            usize::try_from(c).unwrap_or(usize::MAX)
        });
        let inbox = Arc::new(Inbox {
            state: Mutex::new(State::default()),
            capacity,
            arrived: Condvar::new(),
            room: Condvar::new(),
            notifier: Notifier::new().map_err(|e| Error::io("eventfd", e))?,
            news: AtomicU64::new(0),
        });
        let session = session::open(spec)?;
        let declare = || -> zenoh::Result<(Subscriber<()>, Subscriber<()>)> {
            // Senders first, with those already there: a message is never taken for one
            // from a sender we do not know yet.
            let on_sender = Arc::clone(&inbox);
            let senders = session
                .liveliness()
                .declare_subscriber(sender_tokens(&key))
                .history(true)
                .callback(move |sample| on_sender.sender_changed(sample))
                .wait()?;
            let on_message = Arc::clone(&inbox);
            let messages = session
                .declare_subscriber(key.clone())
                .callback(move |sample| on_message.push(sample))
                .wait()?;
            Ok((messages, senders))
        };
        match session::off_thread(declare) {
            Ok(declared) => Ok(ZenohReceiver {
                declared: Some(declared),
                session: Some(session),
                inbox,
                max: max_message_size(spec),
                wait: spec.options.wait.unwrap_or(WaitStrategy::Park),
            }),
            Err(e) => {
                session::close(session, ());
                Err(zenoh_error(&format!("declare subscriber for {spec}"), e))
            }
        }
    }
}

impl Receiver for ZenohReceiver {
    fn max_message_size(&self) -> usize {
        self.max
    }

    fn recv_with(&mut self, buf: &mut [u8], wait: Wait) -> Result<usize> {
        let mut polled = self.wait == WaitStrategy::Park;
        let mut state = self.inbox.lock();
        loop {
            if let Some(front) = state.queue.front() {
                let n = front.len();
                let Some(dest) = buf.get_mut(..n) else {
                    return Err(Error::BufferTooSmall {
                        len: buf.len(),
                        needed: n,
                    });
                };
                // A large message comes as the fragments Zenoh reassembled it from.
                let mut at = 0;
                for slice in front.slices() {
                    dest[at..at + slice.len()].copy_from_slice(slice);
                    at += slice.len();
                }
                state.queue.pop_front();
                let callbacks_wait = state.callbacks_wait > 0;
                drop(state);
                if callbacks_wait {
                    self.inbox.room.notify_one();
                }
                return Ok(n);
            }
            if state.disconnected() {
                return Err(Error::Disconnected);
            }
            let left = wait.remaining();
            if left.is_some_and(|left| left.is_zero()) {
                return Err(wait.empty_error());
            }
            if !std::mem::replace(&mut polled, true) {
                // Read with the queue found empty under the lock: a bump from a push already
                // taken may still come, which costs one more look, never a missed message.
                let mut news = self.inbox.news.load(Ordering::Acquire);
                // Without the lock, so that the callbacks push meanwhile; then look again.
                drop(state);
                let inbox = &self.inbox;
                poll_before_sleep(self.wait, wait, || {
                    let now = inbox.news.load(Ordering::Acquire);
                    Ok((now != news).then(|| news = now))
                })?;
                state = self.inbox.lock();
                continue;
            }
            state.receiver_waits = true;
            state = match left {
                None => self
                    .inbox
                    .arrived
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(left) => {
                    self.inbox
                        .arrived
                        .wait_timeout(state, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
            state.receiver_waits = false;
        }
    }

    fn readiness(&mut self) -> Option<&mut dyn Readiness> {
        Some(self)
    }
}

/// The eventfd that the callbacks signal for every message and for the last sender leaving.
impl Readiness for ZenohReceiver {
    fn ready_fd(&mut self) -> Result<(BorrowedFd<'_>, Interest)> {
        Ok((self.inbox.notifier.fd(), Interest::Readable))
    }

    /// Arms the eventfd when there is nothing to take: the next message signals it (the
    /// readiness protocol calls this before every sleep, so no wake-up is lost).
    fn prepare_wait(&mut self) -> Result<bool> {
        let mut state = self.inbox.lock();
        let ready = !state.queue.is_empty() || state.disconnected();
        state.armed = !ready;
        Ok(ready)
    }

    fn after_wake(&mut self) {
        self.inbox.notifier.drain();
    }
}

impl Drop for ZenohReceiver {
    fn drop(&mut self) {
        // A callback blocked on a full queue would hold up the undeclaration.
        self.inbox.lock().closed = true;
        self.inbox.room.notify_all();
        if let Some(session) = self.session.take() {
            session::close(session, self.declared.take());
        }
    }
}
