//! The two traits every transport implements.
//!
//! A message is a byte slice of `0..=max_message_size()` bytes. It is delivered whole, once and
//! in order, or the call returns an [`Error`](crate::Error) saying why. Both traits are object
//! safe, so a transport chosen at run time from a [`TransportSpec`](crate::TransportSpec) can be
//! held as `Box<dyn Sender>` / `Box<dyn Receiver>`.
//!
//! Each transport implements one method per direction ([`Sender::send_with`],
//! [`Receiver::recv_with`]) taking a [`Wait`]; the blocking, `try_` and `_timeout` forms are
//! provided on top of it so that every transport gives them the same meaning.

use std::time::Duration;

use crate::{Result, Wait};

/// The sending end of a transport.
pub trait Sender: Send {
    /// Largest message this sender accepts, in bytes.
    fn max_message_size(&self) -> usize;

    /// Sends one message, waiting for room at most as `wait` allows.
    ///
    /// On `Err(Full)`, `Err(Timeout)` or `Err(MessageTooLarge)` nothing of the message is
    /// delivered; on `Ok` it will be, unless the receiver goes away first.
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
}

impl<S: Sender + ?Sized> Sender for Box<S> {
    fn max_message_size(&self) -> usize {
        (**self).max_message_size()
    }
    fn send_with(&mut self, msg: &[u8], wait: Wait) -> Result<()> {
        (**self).send_with(msg, wait)
    }
}

impl<R: Receiver + ?Sized> Receiver for Box<R> {
    fn max_message_size(&self) -> usize {
        (**self).max_message_size()
    }
    fn recv_with(&mut self, buf: &mut [u8], wait: Wait) -> Result<usize> {
        (**self).recv_with(buf, wait)
    }
}
