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
//! ([`Error::InvalidMessage`](crate::Error::InvalidMessage)), and `framing=packets` refuses the
//! empty message (a pipe makes no packet of a zero-byte write).
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

    /// Sends `msgs` in order, waiting for room at most as `wait` allows, in as few system calls
    /// as the transport can (pipes, FIFOs and tcp put many small frames in one `writev`).
    ///
    /// Returns how many messages were sent, counted from the front: all of them, or fewer when
    /// `wait` ran out, the receiver went away or a message was refused after at least one was
    /// sent (send the rest again to learn why). When not even the first could be sent, that
    /// error is returned, as [`send_with`](Sender::send_with) would return it. Each message is
    /// delivered whole or not at all, exactly as if sent alone.
    fn send_batch(&mut self, msgs: &[&[u8]], wait: Wait) -> Result<usize> {
        send_each(msgs, |msg| self.send_with(msg, wait))
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

    /// Receives several messages into `buf`, back to back: waits (as `wait` allows) for the
    /// first, then takes those already waiting, without waiting again, while they fit in the
    /// rest of `buf` and `lens` has room. `lens[i]` is set to the length of message `i`, which
    /// starts where message `i - 1` ends ([`batch_messages`](crate::batch_messages) walks
    /// them). Returns how many were received (at least one), or the error of the first receive.
    ///
    /// A message that does not fit in what is left of `buf` stays queued for the next call.
    fn recv_batch(&mut self, buf: &mut [u8], lens: &mut [usize], wait: Wait) -> Result<usize> {
        let Some((first, rest)) = lens.split_first_mut() else {
            return Ok(0);
        };
        *first = self.recv_with(buf, wait)?;
        let mut used = *first;
        let mut received = 1;
        for len in rest {
            // Whatever ends the batch early (nothing waiting, no room, the sender gone) is
            // met again, and reported, by the next call.
            let Ok(n) = self.recv_with(&mut buf[used..], Wait::Never) else {
                break;
            };
            *len = n;
            used += n;
            received += 1;
        }
        Ok(received)
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
    fn send_batch(&mut self, msgs: &[&[u8]], wait: Wait) -> Result<usize> {
        (**self).send_batch(msgs, wait)
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
    fn recv_batch(&mut self, buf: &mut [u8], lens: &mut [usize], wait: Wait) -> Result<usize> {
        (**self).recv_batch(buf, lens, wait)
    }
    fn readiness(&mut self) -> Option<&mut dyn Readiness> {
        (**self).readiness()
    }
}

/// The messages of a batch that [`Receiver::recv_batch`] put in `buf`, given the lengths it
/// recorded (`&lens[..count]`).
///
/// ```
/// let buf = b"onetwothree";
/// let got: Vec<&[u8]> = ipc_core::batch_messages(buf, &[3, 3, 5]).collect();
/// assert_eq!(got, [&b"one"[..], b"two", b"three"]);
/// ```
pub fn batch_messages<'a>(buf: &'a [u8], lens: &'a [usize]) -> impl Iterator<Item = &'a [u8]> {
    lens.iter().scan(0, move |start, &len| {
        let message = buf.get(*start..*start + len)?;
        *start += len;
        Some(message)
    })
}

/// [`Sender::send_batch`] by one `send` per message: how many went before the first error, or
/// that error if none did. For transports whose batch has no faster path in some mode.
pub fn send_each(msgs: &[&[u8]], mut send: impl FnMut(&[u8]) -> Result<()>) -> Result<usize> {
    for (sent, msg) in msgs.iter().enumerate() {
        if let Err(e) = send(msg) {
            return if sent == 0 { Err(e) } else { Ok(sent) };
        }
    }
    Ok(msgs.len())
}
