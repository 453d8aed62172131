//! The two traits every transport implements.
//!
//! A message is a byte slice of `0..=max_message_size()` bytes. It is delivered whole, once and
//! in order, or the call returns an [`Error`](crate::Error) saying why. Both traits are object
//! safe, so a transport chosen at run time from a [`TransportSpec`](crate::TransportSpec) can be
//! held as `Box<dyn Sender>` / `Box<dyn Receiver>`.
//!
//! One exception, asked for by name: a pipe or FIFO opened with `framing=raw` promises no
//! message boundaries at all. Each receive returns what one `read(2)` got, so two sends may
//! arrive as one receive and one send as several; the bytes keep their order. It exists to talk
//! to programs that write or read plain bytes (see [`crate::stream`]). `framing=lines` keeps
//! boundaries but refuses messages holding `\n`
//! ([`Error::InvalidMessage`](crate::Error::InvalidMessage)).
//!
//! Each transport implements one method per direction ([`Sender::send_with`],
//! [`Receiver::recv_with`]) taking a [`Wait`]; the blocking, `try_` and `_timeout` forms are
//! provided on top of it so that every transport gives them the same meaning.

use std::time::Duration;

use crate::{Readiness, Result, Wait};

/// The sending end of a transport.
pub trait Sender: Send {
    /// Largest message this sender accepts, in bytes.
    fn max_message_size(&self) -> usize;

    /// Sends one message, waiting for room at most as `wait` allows.
    ///
    /// On `Err(Full)`, `Err(Timeout)` or `Err(MessageTooLarge)` nothing of the message is
    /// delivered; on `Ok` it will be, unless the receiver goes away first. (With
    /// `framing=lines`/`raw`, `Ok` may also mean that part of a long message went out before
    /// the deadline and the rest is written before anything else: see [`crate::stream`].)
    fn send_with(&mut self, msg: &[u8], wait: Wait) -> Result<()>;

    /// Sends one message, blocking until there is room.
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.send_with(msg, Wait::Forever)
    }

    /// Sends one message if there is room now, else returns [`Error::Full`](crate::Error::Full).
    fn try_send(&mut self, msg: &[u8]) -> Result<()> {
        self.send_with(msg, Wait::Never)
    }

    /// Sends one message, waiting at most `timeout` for room
    /// ([`Error::Timeout`](crate::Error::Timeout) after that).
    fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<()> {
        self.send_with(msg, Wait::timeout(timeout))
    }

    /// The event-loop form of [`try_send`](Sender::try_send), for transports that may take a
    /// large message in part (pipes and FIFOs: a frame larger than the free room of the pipe).
    ///
    /// With `resume == false` it sends `msg` afresh; with `resume == true` it continues the
    /// message that the previous call (with the same `msg`) left in part. It returns
    /// [`Error::Full`](crate::Error::Full) until the whole message is taken: wait for
    /// readiness and call again with `resume == true`. A message left in part and not resumed (the next call has
    /// `resume == false`, or is another send method) is never delivered, except with
    /// `framing=lines` or `raw`, where a started message cannot be withdrawn and is completed
    /// whole before anything else instead (see [`crate::stream`]). Other transports take a
    /// message whole or not at all, and this is `try_send`.
    fn try_send_part(&mut self, msg: &[u8], resume: bool) -> Result<()> {
        let _ = resume;
        self.try_send(msg)
    }

    /// How an event loop waits for room (see [`Readiness`]); `None` if this sender cannot be
    /// waited on (every transport of the workspace can).
    fn readiness(&mut self) -> Option<&mut dyn Readiness> {
        None
    }
}

/// The receiving end of a transport.
///
/// Messages are received into a buffer the caller owns and reuses, so the hot path allocates
/// nothing. A buffer of [`max_message_size`](Receiver::max_message_size) bytes always suffices;
/// a smaller one gets [`Error::BufferTooSmall`](crate::Error::BufferTooSmall) for a larger
/// message, which stays queued.
pub trait Receiver: Send {
    /// Largest message this receiver accepts, in bytes.
    fn max_message_size(&self) -> usize;

    /// Receives one message into `buf`, waiting at most as `wait` allows; returns its length.
    fn recv_with(&mut self, buf: &mut [u8], wait: Wait) -> Result<usize>;

    /// Receives one message, blocking until one arrives or the sender disconnects.
    fn recv(&mut self, buf: &mut [u8]) -> Result<usize> {
        self.recv_with(buf, Wait::Forever)
    }

    /// Receives a message if one is waiting, else returns [`Error::Empty`](crate::Error::Empty).
    fn try_recv(&mut self, buf: &mut [u8]) -> Result<usize> {
        self.recv_with(buf, Wait::Never)
    }

    /// Receives one message, waiting at most `timeout`
    /// ([`Error::Timeout`](crate::Error::Timeout) after that).
    fn recv_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> Result<usize> {
        self.recv_with(buf, Wait::timeout(timeout))
    }

    /// How an event loop waits for a message (see [`Readiness`]); `None` if this receiver cannot
    /// be waited on (every transport of the workspace can).
    fn readiness(&mut self) -> Option<&mut dyn Readiness> {
        None
    }
}

impl<S: Sender + ?Sized> Sender for Box<S> {
    fn max_message_size(&self) -> usize {
        (**self).max_message_size()
    }
    fn send_with(&mut self, msg: &[u8], wait: Wait) -> Result<()> {
        (**self).send_with(msg, wait)
    }
    fn try_send_part(&mut self, msg: &[u8], resume: bool) -> Result<()> {
        (**self).try_send_part(msg, resume)
    }
    fn readiness(&mut self) -> Option<&mut dyn Readiness> {
        (**self).readiness()
    }
}

impl<R: Receiver + ?Sized> Receiver for Box<R> {
    fn max_message_size(&self) -> usize {
        (**self).max_message_size()
    }
    fn recv_with(&mut self, buf: &mut [u8], wait: Wait) -> Result<usize> {
        (**self).recv_with(buf, wait)
    }
    fn readiness(&mut self) -> Option<&mut dyn Readiness> {
        (**self).readiness()
    }
}
