//! The sending end: a Zenoh publisher that waits for its subscriber.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Instant;

use ipc_core::{Error, Interest, Readiness, Result, Sender, TransportSpec, Wait};
use zenoh::Wait as _;
use zenoh::liveliness::LivelinessToken;
use zenoh::matching::MatchingListener;
use zenoh::pubsub::Publisher;
use zenoh::qos::CongestionControl;
use zenoh::query::{ConsolidationMode, QueryTarget};

use crate::notify::Notifier;
use crate::session::{self, zenoh_error};
use crate::{
    DEFAULT_OPEN_TIMEOUT, FLUSH_TIMEOUT, flush_key, key_expr, max_message_size, sender_token,
};

/// Whether a subscriber matches, as Zenoh's matching listener last said.
#[derive(Debug)]
struct Matching {
    matched: Mutex<bool>,
    changed: Condvar,
    notifier: Notifier,
}

impl Matching {
    fn set(&self, matched: bool) {
        *self.matched.lock().unwrap_or_else(PoisonError::into_inner) = matched;
        self.changed.notify_all();
        self.notifier.signal();
    }

    fn get(&self) -> bool {
        *self.matched.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until a subscriber matches; `false` if `until` passes first.
    fn wait(&self, until: Instant) -> bool {
        let mut matched = self.matched.lock().unwrap_or_else(PoisonError::into_inner);
        while !*matched {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            matched = self
                .changed
                .wait_timeout(matched, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

/// What is declared on the session, dropped (undeclared) before it closes.
struct Declared {
    listener: MatchingListener<()>,
    publisher: Publisher<'static>,
    token: LivelinessToken,
}

/// A Zenoh publisher on the key of a `zenoh:` string: reliable, blocking when Zenoh's queue
/// is congested, in order. See the [crate documentation](crate) for what it promises.
pub struct ZenohSender {
    declared: Option<Declared>,
    session: Option<zenoh::Session>,
    matching: Arc<Matching>,
    max: usize,
    /// Where the receivers answer this sender's flush query when it closes.
    flush_key: String,
}

impl std::fmt::Debug for ZenohSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZenohSender")
            .field("max", &self.max)
            .field("matched", &self.matching.get())
            .finish_non_exhaustive()
    }
}

impl ZenohSender {
    /// Opens a session as `spec` says, declares the publisher and this sender's liveliness
    /// token, then waits up to `open_timeout` (default [`DEFAULT_OPEN_TIMEOUT`]) for a
    /// subscriber to match: Zenoh drops what is published while none does.
    ///
    /// Errors: [`Error::InvalidSpec`] for a string that is not `zenoh:`, [`Error::Timeout`]
    /// when no receiver came in time, [`Error::Io`] when Zenoh cannot open the session.
    pub fn open(spec: &TransportSpec) -> Result<ZenohSender> {
        let key = key_expr(spec)?;
        let deadline = Instant::now() + spec.options.open_timeout.unwrap_or(DEFAULT_OPEN_TIMEOUT);
        let matching = Arc::new(Matching {
            matched: Mutex::new(false),
            changed: Condvar::new(),
            notifier: Notifier::new().map_err(|e| Error::io("eventfd", e))?,
        });
        let session = session::open(spec)?;
        let declare = || -> zenoh::Result<Declared> {
            // Declared first: its removal, after our last message, is how the receiver learns
            // that we are gone (see `session::config` for the order on the link).
            let token = session
                .liveliness()
                .declare_token(sender_token(&key, &session.zid()))
                .wait()?;
            let publisher = session
                .declare_publisher(key.clone())
                .congestion_control(CongestionControl::Block)
                .wait()?;
            let on_change = Arc::clone(&matching);
            let listener = publisher
                .matching_listener()
                .callback(move |status| on_change.set(status.matching()))
                .wait()?;
            matching.set(publisher.matching_status().wait()?.matching());
            Ok(Declared {
                listener,
                publisher,
                token,
            })
        };
        let declared = match session::off_thread(declare) {
            Ok(d) => d,
            Err(e) => {
                session::close(session, ());
                return Err(zenoh_error(&format!("declare publisher for {spec}"), e));
            }
        };
        let sender = ZenohSender {
            declared: Some(declared),
            session: Some(session),
            matching,
            max: max_message_size(spec),
            flush_key: flush_key(&key),
        };
        if !sender.matching.wait(deadline) {
            return Err(Error::Timeout);
        }
        Ok(sender)
    }
}

impl Sender for ZenohSender {
    fn max_message_size(&self) -> usize {
        self.max
    }

    /// Publishes `msg` if a subscriber matches, else [`Error::Disconnected`]. Zenoh's `put`
    /// has no deadline: on a congested link it blocks (whatever `wait` says) until Zenoh's
    /// queue has room, and `Ok` means Zenoh took the message.
    fn send_with(&mut self, msg: &[u8], _wait: Wait) -> Result<()> {
        if msg.len() > self.max {
            return Err(Error::MessageTooLarge {
                len: msg.len(),
                max: self.max,
            });
        }
        if !self.matching.get() {
            return Err(Error::Disconnected);
        }
        let declared = self.declared.as_ref().ok_or(Error::Disconnected)?;
        declared
            .publisher
            .put(msg)
            .wait()
            .map_err(|e| zenoh_error("zenoh put", e))
    }

    fn readiness(&mut self) -> Option<&mut dyn Readiness> {
        Some(self)
    }
}

/// A sender never reports `Full`, so it is always worth trying: `prepare_wait` says so. The
/// descriptor (signalled when a subscriber comes or goes) is there for the protocol's sake.
impl Readiness for ZenohSender {
    fn ready_fd(&mut self) -> Result<(std::os::fd::BorrowedFd<'_>, Interest)> {
        Ok((self.matching.notifier.fd(), Interest::Readable))
    }

    fn prepare_wait(&mut self) -> Result<bool> {
        Ok(true)
    }

    fn after_wake(&mut self) {
        self.matching.notifier.drain();
    }
}

/// Waits (up to [`FLUSH_TIMEOUT`]) until every receiver has read off the link what we
/// published: the query goes behind our last message (one queue on the link, see
/// `session::config`) and each receiver answers it only after those messages.
///
/// Zenoh 1.10's close cancels a batch it is still writing into a full socket
/// (`run_until_cancelled` around the send loop in zenoh-transport's `unicast/universal/link.rs`)
/// and then writes the queued batches after the part that went out. The receiver takes the
/// next batch's bytes for the rest of the cut one: a message torn, the link out of step, the
/// rest lost. Once every receiver has answered, nothing of ours is queued or being written, and
/// closing cuts nothing. A receiver that answers no more within the timeout (stuck, or gone
/// without its link closing) leaves the old risk.
fn flush(session: &zenoh::Session, key: &str) {
    let asked = session
        .get(key)
        .target(QueryTarget::All)
        .consolidation(ConsolidationMode::None)
        .timeout(FLUSH_TIMEOUT)
        .wait();
    if let Ok(replies) = asked {
        // Ends with the last answer, or when the timeout finalises the query.
        while replies.recv().is_ok() {}
    }
}

impl Drop for ZenohSender {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            session::off_thread(|| flush(&session, &self.flush_key));
            // The token goes after the publisher: it follows our last message on the link.
            let declared = self
                .declared
                .take()
                .map(|d| (d.listener, d.publisher, d.token));
            session::close(session, declared);
        }
    }
}
