//! The receiving end: a Zenoh subscriber whose callback feeds a bounded channel.
//!
//! The channel is `flume`, the one Zenoh's own `FifoChannel` handler is built on: a mutex and
//! two condition variables of ours, shared by the callback thread and the receiver, cost about
//! twice Zenoh's own loop per 64-byte message (lock hand-overs between the two threads).

use std::collections::HashSet;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::sync::{Arc, Mutex, PoisonError};

use flume::{RecvTimeoutError, TryRecvError};
use ipc_core::{
    Error, Interest, Readiness, Receiver, Result, TransportSpec, Wait, WaitStrategy,
    poll_before_sleep,
};
use zenoh::Wait as _;
use zenoh::bytes::ZBytes;
use zenoh::pubsub::Subscriber;
use zenoh::query::{Query, Queryable};
use zenoh::sample::{Sample, SampleKind};

use crate::notify::Notifier;
use crate::session::{self, zenoh_error};
use crate::{DEFAULT_CAPACITY, flush_key, key_expr, max_message_size, sender_tokens};

/// What the callbacks put in the channel.
enum Item {
    /// A sample as Zenoh handed it, its payload reference-counted slices of Zenoh's receive
    /// buffers: `recv` copies the payload once, into the caller's buffer. Whole, so that taking
    /// it apart and dropping the rest (key, encoding) is done by the receiving thread, not by
    /// Zenoh's, which carries every message of the session.
    Message(Sample),
    /// The last sender left: wakes a receiver blocked on the channel, to look again.
    SendersGone,
}

/// The liveliness tokens of the senders.
#[derive(Debug, Default)]
struct Senders {
    alive: HashSet<String>,
    /// Whether a sender was ever seen: before that, no sender is not a disconnection.
    seen: bool,
}

/// What Zenoh's callbacks and the receiver share besides the channel.
#[derive(Debug)]
struct Inbox {
    senders: Mutex<Senders>,
    /// Every sender seen has gone (kept with `senders`, read without its lock).
    gone: AtomicBool,
    /// A reader said it is about to sleep on the eventfd (`prepare_wait` found nothing to
    /// take): only then does a message signal it, a write per message costing as much as the
    /// rest of the callback.
    armed: AtomicBool,
    notifier: Notifier,
}

impl Inbox {
    /// After a message went into the channel: signals the eventfd if a reader armed it. The
    /// fence pairs with `prepare_wait`'s: either it sees the message, or this sees it armed.
    fn message_in(&self) {
        fence(Ordering::SeqCst);
        if self.armed.load(Ordering::Relaxed) && self.armed.swap(false, Ordering::AcqRel) {
            self.notifier.signal();
        }
    }

    /// The liveliness subscriber's callback: a sender's token came or went.
    fn sender_changed(&self, sample: Sample, wake: &flume::Sender<Item>) {
        let token = sample.key_expr().as_str().to_owned();
        let mut senders = self.senders.lock().unwrap_or_else(PoisonError::into_inner);
        match sample.kind() {
            SampleKind::Put => {
                senders.seen = true;
                senders.alive.insert(token);
            }
            SampleKind::Delete => {
                senders.alive.remove(&token);
            }
        }
        let gone = senders.seen && senders.alive.is_empty();
        self.gone.store(gone, Ordering::SeqCst);
        drop(senders);
        if gone {
            // A full channel has no receiver blocked on it to wake.
            let _ = wake.try_send(Item::SendersGone);
            self.notifier.signal();
        }
    }
}

/// A Zenoh subscriber on the key of a `zenoh:` string, with a queue of `capacity` messages.
/// See the [crate documentation](crate) for what it promises.
pub struct ZenohReceiver {
    declared: Option<(Subscriber<()>, Subscriber<()>, Queryable<()>)>,
    session: Option<zenoh::Session>,
    inbox: Arc<Inbox>,
    queue: flume::Receiver<Item>,
    capacity: usize,
    /// A message taken from the channel that the caller's buffer was too small for: the next
    /// receive delivers it first.
    held: Option<Sample>,
    max: usize,
    /// How a receive that finds the queue empty waits (`wait=`; default `park`).
    wait: WaitStrategy,
}

impl std::fmt::Debug for ZenohReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZenohReceiver")
            .field("max", &self.max)
            .field("capacity", &self.capacity)
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
            senders: Mutex::new(Senders::default()),
            gone: AtomicBool::new(false),
            armed: AtomicBool::new(false),
            notifier: Notifier::new().map_err(|e| Error::io("eventfd", e))?,
        });
        let (to_queue, queue) = flume::bounded(capacity);
        let session = session::open(spec)?;
        let declare = || -> zenoh::Result<(Subscriber<()>, Subscriber<()>, Queryable<()>)> {
            // Senders first, with those already there: a message is never taken for one
            // from a sender we do not know yet.
            let on_sender = Arc::clone(&inbox);
            let wake = to_queue.clone();
            let senders = session
                .liveliness()
                .declare_subscriber(sender_tokens(&key))
                .history(true)
                .callback(move |sample| on_sender.sender_changed(sample, &wake))
                .wait()?;
            let on_message = Arc::clone(&inbox);
            let messages = session
                .declare_subscriber(key.clone())
                .callback(move |sample: Sample| {
                    if sample.kind() != SampleKind::Put {
                        return;
                    }
                    // Blocks Zenoh's reception while the channel is full: the back-pressure
                    // which, through TCP, ends up blocking the sender's `put`. Fails once the
                    // receiver is dropped, and the message goes with it.
                    if to_queue.send(Item::Message(sample)).is_ok() {
                        on_message.message_in();
                    }
                })
                .wait()?;
            // A closing sender's flush query comes behind its last message, and this callback
            // runs after the messages' (which wait while the queue is full): the answer says
            // that everything the sender published before is off the link.
            let flush = session
                .declare_queryable(flush_key(&key))
                .callback(|query: Query| {
                    let _ = query.reply(query.key_expr().clone(), ZBytes::new()).wait();
                })
                .wait()?;
            Ok((messages, senders, flush))
        };
        match session::off_thread(declare) {
            Ok(declared) => Ok(ZenohReceiver {
                declared: Some(declared),
                session: Some(session),
                inbox,
                queue,
                capacity,
                held: None,
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

impl ZenohReceiver {
    /// The next message already in the channel, if any.
    fn take_now(&mut self) -> Option<Sample> {
        loop {
            match self.queue.try_recv() {
                Ok(Item::Message(sample)) => return Some(sample),
                Ok(Item::SendersGone) => continue,
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return None,
            }
        }
    }

    /// Copies the sample's payload into `buf`, or keeps the sample for a larger buffer.
    fn deliver(&mut self, sample: Sample, buf: &mut [u8]) -> Result<usize> {
        let n = sample.payload().len();
        let Some(dest) = buf.get_mut(..n) else {
            self.held = Some(sample);
            return Err(Error::BufferTooSmall {
                len: buf.len(),
                needed: n,
            });
        };
        // A large message comes as the fragments Zenoh reassembled it from.
        let mut at = 0;
        for slice in sample.payload().slices() {
            dest[at..at + slice.len()].copy_from_slice(slice);
            at += slice.len();
        }
        Ok(n)
    }
}

impl Receiver for ZenohReceiver {
    fn max_message_size(&self) -> usize {
        self.max
    }

    fn recv_with(&mut self, buf: &mut [u8], wait: Wait) -> Result<usize> {
        let mut polled = self.wait == WaitStrategy::Park;
        // A receive that would block at once blocks on the channel without looking first,
        // which takes a message already there as well: one lock of the channel per message
        // rather than two, as in Zenoh's own loop.
        let mut look = wait == Wait::Never || !polled;
        loop {
            if let Some(sample) = self.held.take() {
                return self.deliver(sample, buf);
            }
            if std::mem::replace(&mut look, true) {
                if let Some(sample) = self.take_now() {
                    return self.deliver(sample, buf);
                }
            }
            if self.inbox.gone.load(Ordering::SeqCst) {
                // A message put before its sender left is delivered first.
                return match self.take_now() {
                    Some(sample) => self.deliver(sample, buf),
                    None => Err(Error::Disconnected),
                };
            }
            let left = wait.remaining();
            if left.is_some_and(|left| left.is_zero()) {
                return Err(wait.empty_error());
            }
            if !std::mem::replace(&mut polled, true) {
                let (queue, gone) = (&self.queue, &self.inbox.gone);
                poll_before_sleep(self.wait, wait, || {
                    Ok((!queue.is_empty() || gone.load(Ordering::Acquire)).then_some(()))
                })?;
                continue;
            }
            let item = match left {
                None => self
                    .queue
                    .recv()
                    .map_err(|_| RecvTimeoutError::Disconnected),
                Some(left) => self.queue.recv_timeout(left),
            };
            match item {
                Ok(Item::Message(sample)) => return self.deliver(sample, buf),
                // Looked at on the next round, as is a deadline that passed.
                Ok(Item::SendersGone) | Err(RecvTimeoutError::Timeout) => {}
                // Only the callbacks hold the channel's sending side: gone with the session.
                Err(RecvTimeoutError::Disconnected) => return Err(Error::Disconnected),
            }
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
        // The fence pairs with the callback's (`Inbox::message_in`).
        self.inbox.armed.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let ready =
            self.held.is_some() || !self.queue.is_empty() || self.inbox.gone.load(Ordering::SeqCst);
        if ready {
            self.inbox.armed.store(false, Ordering::Relaxed);
        }
        Ok(ready)
    }

    fn after_wake(&mut self) {
        self.inbox.notifier.drain();
    }
}

impl Drop for ZenohReceiver {
    fn drop(&mut self) {
        // A callback blocked on a full channel would hold up the undeclaration: without its
        // receiving side, the channel refuses it at once.
        drop(std::mem::replace(&mut self.queue, flume::bounded(1).1));
        if let Some(session) = self.session.take() {
            session::close(session, self.declared.take());
        }
    }
}
