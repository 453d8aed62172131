//! The typed wrappers of [`crate::typed`], awaited on tokio.
//!
//! Receivers wrap the blocking typed receiver itself and call its `try_recv`, so decoding, the
//! handling of a message of the wrong shape and the buffers are exactly those of
//! [`crate::typed`]. Senders encode, then send the bytes with [`AsyncSender::send`], which
//! takes a large message in parts on pipes (a blocking typed sender's `try_send` would not).

#[cfg(any(feature = "pod", feature = "serde"))]
use std::any::type_name;
use std::fmt;
use std::marker::PhantomData;

use super::{AsyncSender, ReadinessOf, Registration};
use crate::{Error, Receiver, Result, Sender};

#[cfg(feature = "pod")]
use crate::typed::PodReceiver;
#[cfg(feature = "serde")]
use crate::typed::SerdeReceiver;
#[cfg(feature = "pod")]
use bytemuck::Pod;
#[cfg(feature = "serde")]
use serde::{Serialize, de::DeserializeOwned};

/// The loop of [`AsyncReceiver::recv`](super::AsyncReceiver::recv) for a typed receiver:
/// `try_recv` until a value comes, waiting on `reg` (the registration of the byte endpoint
/// inside `typed`) in between.
async fn recv_typed<V, E>(
    reg: &Registration,
    typed: &mut E,
    try_recv: fn(&mut E) -> Result<V>,
    readiness: ReadinessOf<E>,
) -> Result<V> {
    loop {
        match try_recv(typed) {
            Err(Error::Empty) => {}
            done => return done,
        }
        reg.wait(typed, readiness).await?;
    }
}

/// Sends values of a [`Pod`] type `T` as their bytes, the async form of
/// [`PodSender`](crate::typed::PodSender).
#[cfg(feature = "pod")]
pub struct AsyncPodSender<T, S: Sender = Box<dyn Sender>> {
    inner: AsyncSender<S>,
    _type: PhantomData<fn(&T)>,
}

#[cfg(feature = "pod")]
impl<T: Pod, S: Sender> AsyncPodSender<T, S> {
    /// Wraps `inner` (as [`AsyncSender::new`], and panics where it does).
    pub fn new(inner: S) -> Result<AsyncPodSender<T, S>> {
        Ok(AsyncPodSender::from_async(AsyncSender::new(inner)?))
    }

    /// Sends typed values over an async byte sender.
    pub fn from_async(inner: AsyncSender<S>) -> AsyncPodSender<T, S> {
        AsyncPodSender {
            inner,
            _type: PhantomData,
        }
    }

    /// Sends `value`, waiting for room as long as it takes. Cancel safe as
    /// [`AsyncSender::send`]: the value is sent whole or not at all.
    pub async fn send(&mut self, value: &T) -> Result<()> {
        self.inner.send(bytemuck::bytes_of(value)).await
    }

    /// The async byte sender.
    pub fn get_ref(&self) -> &AsyncSender<S> {
        &self.inner
    }

    /// The async byte sender, mutably.
    pub fn get_mut(&mut self) -> &mut AsyncSender<S> {
        &mut self.inner
    }

    /// Unwraps the async byte sender.
    pub fn into_inner(self) -> AsyncSender<S> {
        self.inner
    }
}

#[cfg(feature = "pod")]
impl<T, S: Sender> fmt::Debug for AsyncPodSender<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncPodSender")
            .field("type", &type_name::<T>())
            .field("inner", &self.inner)
            .finish()
    }
}

/// Receives values of a [`Pod`] type `T`, the async form of [`PodReceiver`] (whose
/// `try_recv` it calls: a message of the wrong length is [`Error::Corrupted`], and consumed).
#[cfg(feature = "pod")]
pub struct AsyncPodReceiver<T, R: Receiver = Box<dyn Receiver>> {
    // Declared (so dropped) before the endpoint inside `typed`, as in `AsyncReceiver`.
    reg: Registration,
    typed: PodReceiver<T, R>,
}

#[cfg(feature = "pod")]
impl<T: Pod, R: Receiver> AsyncPodReceiver<T, R> {
    /// Wraps `inner` (as [`AsyncReceiver::new`](super::AsyncReceiver::new), and panics where
    /// it does).
    pub fn new(mut inner: R) -> Result<AsyncPodReceiver<T, R>> {
        let reg = Registration::new(Receiver::readiness(&mut inner))?;
        Ok(AsyncPodReceiver {
            reg,
            typed: PodReceiver::new(inner),
        })
    }

    /// The next value, waiting as long as it takes.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a dropped future took no message (as
    /// [`AsyncReceiver::recv`](super::AsyncReceiver::recv)).
    pub async fn recv(&mut self) -> Result<T> {
        recv_typed(&self.reg, &mut self.typed, PodReceiver::try_recv, |typed| {
            Receiver::readiness(typed.get_mut())
        })
        .await
    }

    /// The byte endpoint.
    pub fn get_ref(&self) -> &R {
        self.typed.get_ref()
    }

    /// The byte endpoint, mutably.
    pub fn get_mut(&mut self) -> &mut R {
        self.typed.get_mut()
    }

    /// Deregisters the descriptor and returns the byte endpoint.
    pub fn into_inner(self) -> R {
        let AsyncPodReceiver { reg, typed } = self;
        drop(reg);
        typed.into_inner()
    }
}

#[cfg(feature = "pod")]
impl<T, R: Receiver> fmt::Debug for AsyncPodReceiver<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncPodReceiver")
            .field("type", &type_name::<T>())
            .field("ready_fd", &self.reg.raw_fd())
            .finish_non_exhaustive()
    }
}

/// Sends values of a serde type `T` encoded with postcard, the async form of
/// [`SerdeSender`](crate::typed::SerdeSender) (same encoding, into a buffer it keeps).
#[cfg(feature = "serde")]
pub struct AsyncSerdeSender<T: ?Sized, S: Sender = Box<dyn Sender>> {
    inner: AsyncSender<S>,
    buf: Vec<u8>,
    _type: PhantomData<fn(&T)>,
}

#[cfg(feature = "serde")]
impl<T: Serialize + ?Sized, S: Sender> AsyncSerdeSender<T, S> {
    /// Wraps `inner` (as [`AsyncSender::new`], and panics where it does).
    pub fn new(inner: S) -> Result<AsyncSerdeSender<T, S>> {
        Ok(AsyncSerdeSender::from_async(AsyncSender::new(inner)?))
    }

    /// Sends typed values over an async byte sender.
    pub fn from_async(inner: AsyncSender<S>) -> AsyncSerdeSender<T, S> {
        AsyncSerdeSender {
            inner,
            buf: Vec::new(),
            _type: PhantomData,
        }
    }

    /// Sends `value`, waiting for room as long as it takes. A value serde cannot encode is
    /// [`Error::Io`] (kind `InvalidData`), and nothing is sent. Cancel safe as
    /// [`AsyncSender::send`]: the value is sent whole or not at all.
    pub async fn send(&mut self, value: &T) -> Result<()> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        self.buf = postcard::to_extend(value, buf).map_err(|e| {
            Error::io(
                format!("encoding a `{}` with postcard", type_name::<T>()),
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })?;
        self.inner.send(&self.buf).await
    }

    /// The async byte sender.
    pub fn get_ref(&self) -> &AsyncSender<S> {
        &self.inner
    }

    /// The async byte sender, mutably.
    pub fn get_mut(&mut self) -> &mut AsyncSender<S> {
        &mut self.inner
    }

    /// Unwraps the async byte sender.
    pub fn into_inner(self) -> AsyncSender<S> {
        self.inner
    }
}

#[cfg(feature = "serde")]
impl<T: ?Sized, S: Sender> fmt::Debug for AsyncSerdeSender<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncSerdeSender")
            .field("type", &type_name::<T>())
            .field("inner", &self.inner)
            .finish()
    }
}

/// Receives values of a serde type `T` encoded with postcard, the async form of
/// [`SerdeReceiver`] (whose `try_recv` it calls: a message that does not decode is
/// [`Error::Corrupted`], and consumed).
#[cfg(feature = "serde")]
pub struct AsyncSerdeReceiver<T, R: Receiver = Box<dyn Receiver>> {
    // Declared (so dropped) before the endpoint inside `typed`, as in `AsyncReceiver`.
    reg: Registration,
    typed: SerdeReceiver<T, R>,
}

#[cfg(feature = "serde")]
impl<T: DeserializeOwned, R: Receiver> AsyncSerdeReceiver<T, R> {
    /// Wraps `inner` (as [`AsyncReceiver::new`](super::AsyncReceiver::new), and panics where
    /// it does).
    pub fn new(mut inner: R) -> Result<AsyncSerdeReceiver<T, R>> {
        let reg = Registration::new(Receiver::readiness(&mut inner))?;
        Ok(AsyncSerdeReceiver {
            reg,
            typed: SerdeReceiver::new(inner),
        })
    }

    /// The next value, waiting as long as it takes.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: a dropped future took no message (as
    /// [`AsyncReceiver::recv`](super::AsyncReceiver::recv)).
    pub async fn recv(&mut self) -> Result<T> {
        recv_typed(
            &self.reg,
            &mut self.typed,
            SerdeReceiver::try_recv,
            |typed| Receiver::readiness(typed.get_mut()),
        )
        .await
    }

    /// The byte endpoint.
    pub fn get_ref(&self) -> &R {
        self.typed.get_ref()
    }

    /// The byte endpoint, mutably.
    pub fn get_mut(&mut self) -> &mut R {
        self.typed.get_mut()
    }

    /// Deregisters the descriptor and returns the byte endpoint.
    pub fn into_inner(self) -> R {
        let AsyncSerdeReceiver { reg, typed } = self;
        drop(reg);
        typed.into_inner()
    }
}

#[cfg(feature = "serde")]
impl<T, R: Receiver> fmt::Debug for AsyncSerdeReceiver<T, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncSerdeReceiver")
            .field("type", &type_name::<T>())
            .field("ready_fd", &self.reg.raw_fd())
            .finish_non_exhaustive()
    }
}
