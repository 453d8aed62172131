//! Async endpoints on tokio: any [`Sender`] or [`Receiver`] awaited through its readiness
//! descriptor (feature `tokio`, off by default).
//!
//! [`AsyncReceiver`] and [`AsyncSender`] wrap an endpoint of any transport, a boxed one from
//! [`open_receiver`](crate::open_receiver) included, and run the [`Readiness`] protocol on
//! tokio's reactor: try the operation, and when it finds the transport empty or full, register
//! interest and await the endpoint's descriptor (a pipe's or a POSIX queue's own descriptor, a
//! ring's doorbell, what a System V queue's transport provides) with [`AsyncFd`]. This layer
//! adds no thread per endpoint, and registers the descriptor once, when the wrapper is made.
//! Message boundaries, ordering, errors and the dead-peer bound are those of the transport: a
//! dead peer wakes the task, and the call returns [`Error::Disconnected`].
//!
//! ```
//! # #[cfg(feature = "posix")]
//! # fn main() -> ipc::Result<()> {
//! use std::time::Duration;
//!
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! rt.block_on(async {
//!     let spec = format!("posix-shm:/ipc-doc-async-{}?capacity=64KiB", std::process::id());
//!     let mut rx = ipc::open_async_receiver(&spec).await?; // creates the ring
//!     let mut tx = ipc::open_async_sender(&spec).await?;
//!     tx.send(b"hello").await?;
//!     let mut buf = vec![0; rx.max_message_size()];
//!     // Deadlines are tokio's: a timed-out receive is a dropped future, which loses nothing.
//!     let n = tokio::time::timeout(Duration::from_secs(5), rx.recv(&mut buf))
//!         .await
//!         .expect("the message is there")?;
//!     assert_eq!(&buf[..n], b"hello");
//!     Ok(())
//! })
//! # }
//! # #[cfg(not(feature = "posix"))]
//! # fn main() {}
//! ```
//!
//! # Cancellation
//!
//! Both futures may be dropped at any await point (`tokio::select!`, `tokio::time::timeout`),
//! and the channel stays whole:
//!
//! - a dropped [`recv`](AsyncReceiver::recv) future has taken no message: messages are taken
//!   only by the non-blocking `try_recv`, and a successful one completes the future in the same
//!   poll;
//! - a dropped [`send`](AsyncSender::send) future has sent the whole message or none of it. On
//!   pipes and FIFOs a large message may have gone in part when the future is dropped; the
//!   next send aborts that part ([`Sender::try_send_part`] with `resume == false`), so the
//!   receiver never gets a torn message.
//!
//! # Typed messages
//!
//! With the `pod` and `serde` features, [`AsyncPodSender`] / [`AsyncPodReceiver`] and
//! [`AsyncSerdeSender`] / [`AsyncSerdeReceiver`] are the async forms of the wrappers of
//! [`typed`](crate::typed), with the same encodings and the same cancellation safety.
//!
//! # Not here
//!
//! No `futures::Stream` / `Sink`: a stream of messages would allocate a `Vec` per message (the
//! caller's buffer cannot be lent out by `poll_next`), and a `Sink` would copy each message,
//! since `start_send` cannot wait. Both are a few lines over `recv` / `send` where wanted (e.g.
//! `futures::stream::unfold`).
// The links above name items of both typed features; a build with only one has nothing to
// link to.
#![cfg_attr(
    not(all(feature = "pod", feature = "serde")),
    allow(rustdoc::broken_intra_doc_links)
)]

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use ::tokio::io::Interest as TokioInterest;
use ::tokio::io::unix::AsyncFd;

use crate::{Error, Interest, Readiness, Receiver, Result, Sender, TransportSpec};

#[cfg(any(feature = "pod", feature = "serde"))]
mod typed;
#[cfg(feature = "pod")]
pub use self::typed::{AsyncPodReceiver, AsyncPodSender};
#[cfg(feature = "serde")]
pub use self::typed::{AsyncSerdeReceiver, AsyncSerdeSender};

/// The readiness descriptor of an endpoint as tokio sees it: a duplicate of it, which this
/// owns.
///
/// [`AsyncFd`] requires that the descriptor it is given stays open, and names the same open
/// file description, for as long as it is registered (the safety contract of
/// `AsyncFd::register_with_interest`). A descriptor we own satisfies that by construction,
/// whatever the endpoint does meanwhile and in whatever order the two are dropped; this is why
/// the registration needs no `unsafe`. The duplicate shares the endpoint's open file
/// description (its readiness is the endpoint's) and costs one descriptor per async endpoint.
#[derive(Debug)]
struct ReadyFd(OwnedFd);

impl AsRawFd for ReadyFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// One endpoint's readiness descriptor, registered with tokio's reactor for the readiness the
/// endpoint names.
pub(crate) struct Registration {
    fd: AsyncFd<ReadyFd>,
    interest: Interest,
}

/// How [`Registration::wait`] asks the endpoint for its readiness each time: a function rather
/// than a `&mut dyn Readiness` kept across the await, which would make the future `!Send`.
pub(crate) type ReadinessOf<E> = fn(&mut E) -> Option<&mut dyn Readiness>;

impl Registration {
    /// Registers the descriptor of `readiness` (`None`: the endpoint has none, an error).
    pub(crate) fn new(readiness: Option<&mut dyn Readiness>) -> Result<Registration> {
        let ready = readiness.ok_or_else(no_readiness)?;
        let (fd, interest) = ready.ready_fd()?;
        let own = fd
            .try_clone_to_owned()
            .map_err(|e| Error::io("duplicating the readiness descriptor", e))?;
        let wanted = match interest {
            Interest::Readable => TokioInterest::READABLE,
            Interest::Writable => TokioInterest::WRITABLE,
        };
        // tokio deprecates its safe constructors because a caller could hand them a descriptor
        // that is closed or replaced while registered; an `OwnedFd` cannot be, which is the
        // whole contract of the `unsafe` `register_with_interest`.
        #[allow(deprecated)]
        let fd = AsyncFd::with_interest(ReadyFd(own), wanted)
            .map_err(|e| Error::io("registering the readiness descriptor with tokio", e))?;
        Ok(Registration { fd, interest })
    }

    /// One turn of the protocol after the operation found the transport empty or full:
    /// announce the wait, await the descriptor, consume the notification. Returns when the
    /// operation is worth trying again (possibly spuriously).
    ///
    /// Cancel safe: dropped at the await, the endpoint is left armed, which costs a spurious
    /// wake-up at most; the next wait starts over with `prepare_wait`.
    pub(crate) async fn wait<E: ?Sized>(
        &self,
        endpoint: &mut E,
        readiness: ReadinessOf<E>,
    ) -> Result<()> {
        if readiness(endpoint).ok_or_else(lost)?.prepare_wait()? {
            // "Retry now" makes no await: spend the task's budget, so that an endpoint saying
            // it again and again still lets tokio run timers and other tasks.
            ::tokio::task::consume_budget().await;
            return Ok(());
        }
        // A peer's end shows as readiness too: a pipe whose last writer left is readable
        // (`EPOLLHUP`), a full one whose reader left reports a bare `EPOLLERR`, which tokio
        // takes for write-closed, so it wakes a writer. The retry then says `Disconnected`.
        let mut guard = match self.interest {
            Interest::Readable => self.fd.readable().await,
            Interest::Writable => self.fd.writable().await,
        }
        .map_err(|e| Error::io("awaiting the readiness descriptor", e))?;
        // The endpoint consumes its notification first (a ring drains its doorbell), then
        // tokio forgets the readiness this guard saw, and the caller retries. Progress after
        // the drain makes a new edge: one tokio has already seen carries a later tick, which
        // `clear_ready` leaves set, and one it sees later sets readiness again. Either way the
        // next wait wakes, so nothing is lost between the two calls.
        readiness(endpoint).ok_or_else(lost)?.after_wake();
        guard.clear_ready();
        Ok(())
    }

    /// The registered descriptor's number (our duplicate's).
    fn raw_fd(&self) -> RawFd {
        self.fd.get_ref().as_raw_fd()
    }

    fn interest(&self) -> Interest {
        self.interest
    }
}

fn no_readiness() -> Error {
    Error::Incompatible {
        object: "endpoint".into(),
        reason: "it has no readiness descriptor (`readiness()` is None), so tokio cannot wait \
                 for it"
            .into(),
    }
}

/// The endpoint offered readiness when it was wrapped and no longer does: a broken transport.
fn lost() -> Error {
    Error::io(
        "readiness",
        io::Error::other("the endpoint no longer offers the readiness it had when wrapped"),
    )
}

/// A [`Receiver`] awaited on tokio: [`recv`](AsyncReceiver::recv) is an `async fn` that sleeps
/// in the reactor, not in a thread.
///
/// The default type parameter is the boxed receiver that [`open_receiver`](crate::open_receiver)
/// returns; [`open_async_receiver`](crate::open_async_receiver) makes one from a transport
/// string.
pub struct AsyncReceiver<R: Receiver = Box<dyn Receiver>> {
    // Declared (so dropped) before `endpoint`: the duplicate descriptor closes first, so that
    // what the endpoint's drop does (a pipe's last writer closing, say) has its usual effect.
    reg: Registration,
    endpoint: R,
}

impl<R: Receiver> AsyncReceiver<R> {
    /// Wraps `endpoint`, registering its readiness descriptor with the current tokio runtime.
    ///
    /// Errors: [`Error::Incompatible`] if the endpoint has no readiness (every transport of
    /// the workspace has it), or what making the descriptor failed with.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, or in one without I/O enabled (as tokio's [`AsyncFd::new`]).
    pub fn new(mut endpoint: R) -> Result<AsyncReceiver<R>> {
        let reg = Registration::new(Receiver::readiness(&mut endpoint))?;
        Ok(AsyncReceiver { reg, endpoint })
    }

    /// Receives one message into `buf`, waiting as long as it takes; returns its length.
    ///
    /// Errors are those of [`Receiver::recv`]: [`Error::Disconnected`] once the sender is gone
    /// (within the transport's dead-peer bound if it died), [`Error::BufferTooSmall`] for a
    /// message larger than `buf` (which stays queued). For a deadline, wrap the call in
    /// `tokio::time::timeout`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: if the future is dropped before it completes, no message was taken. It
    /// takes a message only in a non-blocking `try_recv`, and completes in the same poll.
    pub async fn recv(&mut self, buf: &mut [u8]) -> Result<usize> {
        loop {
            match self.endpoint.try_recv(buf) {
                Err(Error::Empty) => {}
                done => return done,
            }
            self.reg
                .wait(&mut self.endpoint, <R as Receiver>::readiness)
                .await?;
        }
    }

    /// Largest message the endpoint accepts: a buffer this long always suffices.
    pub fn max_message_size(&self) -> usize {
        self.endpoint.max_message_size()
    }

    /// The endpoint.
    pub fn get_ref(&self) -> &R {
        &self.endpoint
    }

    /// The endpoint, mutably: its blocking and `try_` calls work as ever (they do not disturb
    /// the registration).
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.endpoint
    }

    /// Deregisters the descriptor and returns the endpoint.
    pub fn into_inner(self) -> R {
        let AsyncReceiver { reg, endpoint } = self;
        drop(reg);
        endpoint
    }
}

impl<R: Receiver> fmt::Debug for AsyncReceiver<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncReceiver")
            .field("ready_fd", &self.reg.raw_fd())
            .field("interest", &self.reg.interest())
            .finish_non_exhaustive()
    }
}

/// A [`Sender`] awaited on tokio: [`send`](AsyncSender::send) is an `async fn` that sleeps in
/// the reactor while the transport is full, not in a thread.
///
/// The default type parameter is the boxed sender that [`open_sender`](crate::open_sender)
/// returns; [`open_async_sender`](crate::open_async_sender) makes one from a transport string.
pub struct AsyncSender<S: Sender = Box<dyn Sender>> {
    // Declared (so dropped) before `endpoint`, as in `AsyncReceiver`.
    reg: Registration,
    endpoint: S,
}

impl<S: Sender> AsyncSender<S> {
    /// Wraps `endpoint`, registering its readiness descriptor with the current tokio runtime.
    ///
    /// Errors: [`Error::Incompatible`] if the endpoint has no readiness (every transport of
    /// the workspace has it), or what making the descriptor failed with.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, or in one without I/O enabled (as tokio's [`AsyncFd::new`]).
    pub fn new(mut endpoint: S) -> Result<AsyncSender<S>> {
        let reg = Registration::new(Sender::readiness(&mut endpoint))?;
        Ok(AsyncSender { reg, endpoint })
    }

    /// Sends one message, waiting for room as long as it takes.
    ///
    /// A message larger than the free room of a pipe or FIFO goes in parts as the reader makes
    /// room ([`Sender::try_send_part`]), so any message up to
    /// [`max_message_size`](AsyncSender::max_message_size) gets through, however large the
    /// pipe. Errors are those of [`Sender::send`]: [`Error::MessageTooLarge`] (nothing sent),
    /// [`Error::Disconnected`] once the receiver is gone (within the transport's dead-peer
    /// bound if it died). For a deadline, wrap the call in `tokio::time::timeout`.
    ///
    /// # Cancel safety
    ///
    /// If the future is dropped before it completes, the message was sent whole or not at all,
    /// never torn: a part already in a pipe is aborted by the next send on this endpoint (each
    /// send starts with `try_send_part(msg, false)`), and the receiver never delivers it. Which
    /// of the two happened is not known; a caller that must know resends, or uses a transport
    /// that takes messages whole (the rings, the queues: there a dropped future sent nothing,
    /// unless it had completed).
    pub async fn send(&mut self, msg: &[u8]) -> Result<()> {
        let mut resume = false;
        loop {
            match self.endpoint.try_send_part(msg, resume) {
                Err(Error::Full) => {}
                done => return done,
            }
            // Whatever of `msg` went in stays there: continue it rather than start over.
            resume = true;
            self.reg
                .wait(&mut self.endpoint, <S as Sender>::readiness)
                .await?;
        }
    }

    /// Largest message the endpoint accepts.
    pub fn max_message_size(&self) -> usize {
        self.endpoint.max_message_size()
    }

    /// The endpoint.
    pub fn get_ref(&self) -> &S {
        &self.endpoint
    }

    /// The endpoint, mutably: its blocking and `try_` calls work as ever (they do not disturb
    /// the registration; a message a dropped `send` left in part is aborted by them too).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.endpoint
    }

    /// Deregisters the descriptor and returns the endpoint.
    pub fn into_inner(self) -> S {
        let AsyncSender { reg, endpoint } = self;
        drop(reg);
        endpoint
    }
}

impl<S: Sender> fmt::Debug for AsyncSender<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncSender")
            .field("ready_fd", &self.reg.raw_fd())
            .field("interest", &self.reg.interest())
            .finish_non_exhaustive()
    }
}

/// Runs `open` on tokio's blocking pool: opening may wait for the peer (a FIFO sender for its
/// reader, a ring for its segment, up to `open_timeout`), which must not stall the reactor.
pub(crate) async fn open_blocking<T: Send + 'static>(
    spec: &TransportSpec,
    open: fn(&TransportSpec) -> Result<T>,
) -> Result<T> {
    let spec = spec.clone();
    match ::tokio::task::spawn_blocking(move || open(&spec)).await {
        Ok(opened) => opened,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(Error::io(
            "opening on tokio's blocking pool",
            io::Error::other(e.to_string()),
        )),
    }
}
