//! The Zenoh baseline: Zenoh's own publisher and FIFO-channel subscriber, without our layer
//! (no liveliness token, no matching check per send, no queue of ours, no readiness
//! descriptor), on the very sessions `ipc-zenoh` opens for the same strings
//! ([`ipc::zenoh::session_config`]) and with its publisher's settings (reliable, blocking
//! when congested).
//!
//! [`RawZenohSender`] and [`RawZenohReceiver`] implement our traits only so that the workloads
//! run unchanged on both. Per message: one `put` of the caller's bytes, and one `recv` from
//! Zenoh's channel copied into the caller's buffer (a receiver has to hand its caller the
//! bytes somewhere).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ::zenoh::Wait as _;
use ::zenoh::handlers::{FifoChannel, FifoChannelHandler};
use ::zenoh::key_expr::KeyExpr;
use ::zenoh::pubsub::{Publisher, Subscriber};
use ::zenoh::qos::CongestionControl;
use ::zenoh::sample::Sample;
use ipc::{Address, Receiver, Sender, TransportSpec, Wait};

use crate::protocol::OPEN_TIMEOUT;

/// How often a receiver with nothing to receive looks whether its peer is gone: never while
/// messages flow, so it costs the measured loops nothing.
const PEER_CHECK: Duration = Duration::from_millis(20);

/// The spec, its key and its session, as `ipc-zenoh` would open them.
fn open_session(spec: &str) -> ipc::Result<(TransportSpec, KeyExpr<'static>, ::zenoh::Session)> {
    let parsed: TransportSpec = spec.parse()?;
    let Address::KeyExpr(key) = &parsed.address else {
        return Err(ipc::Error::invalid_spec(spec, "expected `zenoh:KEY?...`"));
    };
    let key = KeyExpr::try_from(key.clone())
        .map_err(|e| ipc::Error::invalid_spec(spec, format!("not a Zenoh key expression: {e}")))?;
    let config = ipc::zenoh::session_config(&parsed)?;
    let session = ::zenoh::open(config)
        .wait()
        .map_err(|e| zenoh_error("open zenoh session", e))?;
    Ok((parsed, key, session))
}

fn zenoh_error(op: &str, e: impl std::fmt::Display) -> ipc::Error {
    ipc::Error::io(op, std::io::Error::other(e.to_string()))
}

/// A Zenoh publisher; `put` blocks on a congested link rather than dropping, as ours does.
pub struct RawZenohSender {
    publisher: Option<Publisher<'static>>,
    session: ::zenoh::Session,
    size: usize,
}

impl RawZenohSender {
    /// Opens the session and publisher of `spec` and waits (up to [`OPEN_TIMEOUT`]) until a
    /// subscriber matches: Zenoh drops what is published before, ready message included.
    pub fn open(spec: &str, size: usize) -> ipc::Result<RawZenohSender> {
        let (_, key, session) = open_session(spec)?;
        let publisher = session
            .declare_publisher(key)
            .congestion_control(CongestionControl::Block)
            .wait()
            .map_err(|e| zenoh_error("declare publisher", e))?;
        let deadline = Instant::now() + OPEN_TIMEOUT;
        let listener = publisher
            .matching_listener()
            .wait()
            .map_err(|e| zenoh_error("declare matching listener", e))?;
        let mut matched = publisher
            .matching_status()
            .wait()
            .map_err(|e| zenoh_error("matching status", e))?
            .matching();
        while !matched {
            match listener.recv_deadline(deadline) {
                Ok(Some(status)) => matched = status.matching(),
                _ => return Err(ipc::Error::Timeout),
            }
        }
        Ok(RawZenohSender {
            publisher: Some(publisher),
            session,
            size,
        })
    }
}

impl Sender for RawZenohSender {
    fn max_message_size(&self) -> usize {
        self.size
    }

    /// Blocks regardless of `wait`: the bench only ever blocks.
    fn send_with(&mut self, msg: &[u8], _wait: Wait) -> ipc::Result<()> {
        let publisher = self.publisher.as_ref().ok_or(ipc::Error::Disconnected)?;
        publisher
            .put(msg)
            .wait()
            .map_err(|e| zenoh_error("zenoh put", e))
    }
}

impl Drop for RawZenohSender {
    /// Closing flushes what Zenoh still queues (the empty message that ends the stream).
    fn drop(&mut self) {
        drop(self.publisher.take());
        let _ = self.session.close().wait();
    }
}

/// A Zenoh subscriber with a FIFO channel of `capacity` samples, Zenoh's own queue.
pub struct RawZenohReceiver {
    subscriber: Option<Subscriber<FifoChannelHandler<Sample>>>,
    session: ::zenoh::Session,
    size: usize,
    /// Set by the link's watcher once the peer has exited: raw Zenoh does not tell.
    peer_gone: Arc<AtomicBool>,
}

impl RawZenohReceiver {
    /// Opens the session and subscriber of `spec`, with Zenoh's channel as deep as the
    /// `capacity` of the string (ours queues as many).
    pub fn open(spec: &str, size: usize, peer_gone: Arc<AtomicBool>) -> ipc::Result<Self> {
        let (parsed, key, session) = open_session(spec)?;
        let capacity = parsed
            .options
            .capacity
            .map_or(ipc::zenoh::DEFAULT_CAPACITY, |c| {
                usize::try_from(c).unwrap_or(usize::MAX)
            });
        let subscriber = session
            .declare_subscriber(key)
            .with(FifoChannel::new(capacity))
            .wait()
            .map_err(|e| zenoh_error("declare subscriber", e))?;
        Ok(RawZenohReceiver {
            subscriber: Some(subscriber),
            session,
            size,
            peer_gone,
        })
    }
}

impl Receiver for RawZenohReceiver {
    fn max_message_size(&self) -> usize {
        self.size
    }

    /// Blocks regardless of `wait` until a message comes or the peer is gone.
    fn recv_with(&mut self, buf: &mut [u8], _wait: Wait) -> ipc::Result<usize> {
        let subscriber = self.subscriber.as_ref().ok_or(ipc::Error::Disconnected)?;
        let sample = loop {
            match subscriber.recv_timeout(PEER_CHECK) {
                Ok(Some(sample)) => break sample,
                Ok(None) if !self.peer_gone.load(Ordering::Acquire) => {}
                _ => return Err(ipc::Error::Disconnected),
            }
        };
        let payload = sample.payload();
        let n = payload.len();
        let Some(dest) = buf.get_mut(..n) else {
            return Err(ipc::Error::BufferTooSmall {
                len: buf.len(),
                needed: n,
            });
        };
        // Zenoh hands a large message as the fragments it arrived in.
        let mut at = 0;
        for slice in payload.slices() {
            dest[at..at + slice.len()].copy_from_slice(slice);
            at += slice.len();
        }
        Ok(n)
    }
}

impl Drop for RawZenohReceiver {
    fn drop(&mut self) {
        drop(self.subscriber.take());
        let _ = self.session.close().wait();
    }
}
