//! `ipc bench --async`: the endpoints ours opens, driven through a readiness path instead of
//! their blocking calls, in both processes.
//!
//! Each path is an adapter that implements [`Sender`] / [`Receiver`] again, so that the
//! workloads (ping-pong, throughput, the peer's echo and sink) run unchanged on it:
//!
//! - [`Api::Async`]: `ipc::AsyncSender` / `AsyncReceiver` on a current-thread tokio runtime
//!   of the process's own, each call's future driven by [`drive`]: polled once in place, and
//!   handed to `block_on` only if that poll is pending, which then parks the thread in the
//!   runtime's `epoll_wait`, as a task awaiting the endpoint would park. A `block_on` per call
//!   instead would add its own cost to every message, which a task that awaits one message
//!   after another does not pay (see [`drive`]).
//! - [`Api::WaitSet`]: each end alone in an `ipc::WaitSet`, which runs the same readiness
//!   protocol with poll(2): what an event loop without tokio pays.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use ipc::{AsyncReceiver, AsyncSender, Key, Receiver, Sender, Wait, WaitSet};
use tokio::runtime::Runtime;

use crate::protocol::Api;

/// This process's ends, driven through `api`; unchanged for the blocking calls.
pub fn wrap(
    api: Api,
    tx: Box<dyn Sender>,
    rx: Box<dyn Receiver>,
) -> ipc::Result<(Box<dyn Sender>, Box<dyn Receiver>)> {
    match api {
        // Batches are the endpoints' own calls, made by the workloads.
        Api::Blocking | Api::Batch => Ok((tx, rx)),
        Api::Async => {
            let runtime = Arc::new(
                tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()
                    .map_err(|e| ipc::Error::io("starting the bench's tokio runtime", e))?,
            );
            let (rx, tx) = {
                // Registering a descriptor needs the runtime's reactor.
                let _entered = runtime.enter();
                (AsyncReceiver::new(rx)?, AsyncSender::new(tx)?)
            };
            Ok((
                Box::new(TokioSender {
                    tx,
                    runtime: Arc::clone(&runtime),
                }),
                Box::new(TokioReceiver { rx, runtime }),
            ))
        }
        Api::WaitSet => {
            let rx = SetReceiver::new(rx)?;
            let tx = SetSender::new(tx)?;
            Ok((Box::new(tx), Box::new(rx)))
        }
    }
}

/// Runs `future` to completion on `runtime` as a task of a current-thread runtime would go
/// through it: the first poll in place, and only a pending future on to `block_on`, which
/// polls it again with the runtime's waker (tokio's readiness future takes the new waker) and
/// parks in the reactor until the descriptor is ready.
///
/// Why not `block_on` every call: measured on the 64 B ring in one process (send then receive,
/// message always there, 2 × 10^6 pairs), a `block_on` per call costs 365 ns per pair, against
/// 96 ns for the same awaits inside one `block_on` (a task's loop) and 78 ns this way (71 ns
/// for the blocking calls): about 140 ns per call of runtime entry and exit, which no task pays
/// per message and which would halve the ring's async throughput. The first poll cannot lose a
/// wake-up: the reactor only dispatches readiness while `block_on` parks, by then with the
/// runtime's waker in place.
fn drive<F: Future>(runtime: &Runtime, future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => runtime.block_on(future),
    }
}

/// The bench waits forever or not at all; a deadline would need tokio's timer, which this
/// runtime leaves out (it would wrap every park of the reactor).
fn no_deadlines() -> ipc::Error {
    ipc::Error::Incompatible {
        object: "bench async endpoint".into(),
        reason: "it waits forever or not at all, never until a deadline".into(),
    }
}

/// An [`AsyncSender`] driven to completion on each call.
struct TokioSender {
    // Declared (so dropped) before the runtime whose reactor it is registered with.
    tx: AsyncSender,
    runtime: Arc<Runtime>,
}

impl Sender for TokioSender {
    fn max_message_size(&self) -> usize {
        self.tx.max_message_size()
    }

    fn send_with(&mut self, msg: &[u8], wait: Wait) -> ipc::Result<()> {
        match wait {
            Wait::Never => self.tx.get_mut().try_send(msg),
            Wait::Forever => drive(&self.runtime, self.tx.send(msg)),
            Wait::Until(_) => Err(no_deadlines()),
        }
    }
}

/// An [`AsyncReceiver`] driven to completion on each call.
struct TokioReceiver {
    rx: AsyncReceiver,
    runtime: Arc<Runtime>,
}

impl Receiver for TokioReceiver {
    fn max_message_size(&self) -> usize {
        self.rx.max_message_size()
    }

    fn recv_with(&mut self, buf: &mut [u8], wait: Wait) -> ipc::Result<usize> {
        match wait {
            Wait::Never => self.rx.get_mut().try_recv(buf),
            Wait::Forever => drive(&self.runtime, self.rx.recv(buf)),
            Wait::Until(_) => Err(no_deadlines()),
        }
    }
}

/// A sender alone in a [`WaitSet`], which waits for its room.
struct SetSender {
    set: WaitSet,
    key: Key,
    max_message: usize,
}

impl SetSender {
    fn new(tx: Box<dyn Sender>) -> ipc::Result<SetSender> {
        let max_message = tx.max_message_size();
        let mut set = WaitSet::new();
        let key = set.add_sender(tx)?;
        Ok(SetSender {
            set,
            key,
            max_message,
        })
    }
}

impl Sender for SetSender {
    fn max_message_size(&self) -> usize {
        self.max_message
    }

    /// The protocol's send: a message that goes into a pipe in parts is resumed after each
    /// wait rather than started over, as `AsyncSender::send` does.
    fn send_with(&mut self, msg: &[u8], wait: Wait) -> ipc::Result<()> {
        let mut resume = false;
        loop {
            let tx = self
                .set
                .sender(self.key)
                .expect("the set's only member is this sender");
            match tx.try_send_part(msg, resume) {
                Err(ipc::Error::Full) => {}
                done => return done,
            }
            resume = true;
            // `Empty` for `Wait::Never`, `Timeout` past a deadline: what the caller asked for
            // (a part left in a pipe is aborted by the next send, never delivered).
            self.set.wait(wait).map_err(|e| match e {
                ipc::Error::Empty => ipc::Error::Full,
                e => e,
            })?;
        }
    }
}

/// A receiver alone in a [`WaitSet`], which waits for its messages.
struct SetReceiver {
    set: WaitSet,
    max_message: usize,
}

impl SetReceiver {
    fn new(rx: Box<dyn Receiver>) -> ipc::Result<SetReceiver> {
        let max_message = rx.max_message_size();
        let mut set = WaitSet::new();
        set.add_receiver(rx)?;
        Ok(SetReceiver { set, max_message })
    }
}

impl Receiver for SetReceiver {
    fn max_message_size(&self) -> usize {
        self.max_message
    }

    fn recv_with(&mut self, buf: &mut [u8], wait: Wait) -> ipc::Result<usize> {
        // The outer result is the set's (nothing came in time), the inner the receiver's.
        self.set.recv(buf, wait)?.1
    }
}
