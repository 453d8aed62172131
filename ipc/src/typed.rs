//! Typed messages on top of the byte traits [`Sender`] and [`Receiver`].
//!
//! Two encodings, each behind a cargo feature (both on by default):
//!
//! - `pod`: [`PodSender`] / [`PodReceiver`] carry a [`bytemuck::Pod`] type as its own bytes
//!   (one copy each way, no encoding). On the shared-memory rings, [`RecvPodInPlace`] reads a
//!   message where it lies ([`PodRecord`] derefs to `&T`) and [`LoanPod`] lets the sender build
//!   a `T` directly inside the segment ([`PodLoan`] derefs mutably to `T`).
//! - `serde`: [`SerdeSender`] / [`SerdeReceiver`] carry any serde type, encoded with
//!   [postcard](https://docs.rs/postcard).
//!
//! Both wrap any endpoint of the traits, so they work with every transport, boxed trait objects
//! from [`open_sender`](crate::open_sender) / [`open_receiver`](crate::open_receiver) included.
//! Both ends must of course agree on the type: nothing on the wire names it.
//!
//! ## A message of the wrong shape
//!
//! A message that is not a `T` (wrong length for a `Pod` type, bytes that do not decode for a
//! serde type) is [`Error::Corrupted`], naming the type and the length. The message **is
//! consumed**: the next call receives the next message, so one bad message does not wedge the
//! channel (unlike what `Corrupted` means for a transport's own shared state).
//!
//! ```
//! # #[cfg(all(feature = "pod", feature = "pipe"))]
//! # fn main() -> ipc::Result<()> {
//! use bytemuck::{Pod, Zeroable};
//! use ipc::pipe::{PipeConfig, channel};
//! use ipc::typed::{PodReceiver, PodSender};
//!
//! #[repr(C)]
//! #[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
//! struct Tick {
//!     seq: u64,
//!     price: f64,
//! }
//!
//! let (tx, rx) = channel(&PipeConfig::default())?;
//! let mut tx = PodSender::<Tick, _>::new(tx);
//! let mut rx = PodReceiver::<Tick, _>::new(rx);
//! tx.send(&Tick { seq: 1, price: 99.5 })?;
//! assert_eq!(rx.recv()?, Tick { seq: 1, price: 99.5 });
//! # Ok(())
//! # }
//! # #[cfg(not(all(feature = "pod", feature = "pipe")))]
//! # fn main() {}
//! ```
// The links above name items of both features; a build with only one has nothing to link to.
#![cfg_attr(
    not(all(feature = "pod", feature = "serde")),
    allow(rustdoc::broken_intra_doc_links)
)]

#[cfg(feature = "pod")]
pub use self::pod::{LoanPod, PodLoan, PodReceiver, PodRecord, PodSender, RecvPodInPlace};
#[cfg(feature = "serde")]
pub use self::serde_impl::{SerdeReceiver, SerdeSender};
/// The `bytemuck` crate the `pod` feature builds on.
#[cfg(feature = "pod")]
pub use bytemuck;
/// The `postcard` crate the `serde` feature encodes with.
#[cfg(feature = "serde")]
pub use postcard;

use crate::Error;
#[cfg(doc)]
use crate::{Receiver, Sender};

/// A message of `len` bytes that is not the `expected` type: [`Error::Corrupted`].
#[allow(dead_code)] // Unused with neither `pod` nor `serde`.
fn wrong_shape(type_name: &str, len: usize, why: &str) -> Error {
    Error::corrupted(format!(
        "message of {len} bytes is not a `{type_name}`: {why}"
    ))
}

#[cfg(feature = "pod")]
mod pod {
    use std::any::type_name;
    use std::fmt;
    use std::marker::PhantomData;
    use std::mem::size_of;
    use std::ops::{Deref, DerefMut};
    use std::time::Duration;

    use bytemuck::Pod;

    use super::wrong_shape;
    use crate::sync::ring::{Loan, Record, RingReceiver, RingSender};
    use crate::{Error, Receiver, Result, Sender, Wait};

    /// Sends values of a [`Pod`] type `T` as their bytes (`size_of::<T>()` bytes, copied once
    /// into the transport) over any [`Sender`].
    ///
    /// A `T` larger than the transport's message size is [`Error::MessageTooLarge`] on every
    /// send; [`PodSender::new_checked`] refuses it up front.
    pub struct PodSender<T, S> {
        inner: S,
        _type: PhantomData<fn(&T)>,
    }

    impl<T: Pod, S: Sender> PodSender<T, S> {
        /// Wraps `inner`.
        pub fn new(inner: S) -> PodSender<T, S> {
            PodSender {
                inner,
                _type: PhantomData,
            }
        }

        /// Wraps `inner`, refusing with [`Error::MessageTooLarge`] a transport whose messages
        /// cannot hold a `T`.
        pub fn new_checked(inner: S) -> Result<PodSender<T, S>> {
            check_fits::<T>(inner.max_message_size())?;
            Ok(PodSender::new(inner))
        }

        /// Sends `value`, waiting for room as long as it takes.
        pub fn send(&mut self, value: &T) -> Result<()> {
            self.send_with(value, Wait::Forever)
        }

        /// Sends `value` if there is room now ([`Error::Full`] otherwise).
        pub fn try_send(&mut self, value: &T) -> Result<()> {
            self.send_with(value, Wait::Never)
        }

        /// Sends `value`, waiting at most `timeout` for room.
        pub fn send_timeout(&mut self, value: &T, timeout: Duration) -> Result<()> {
            self.send_with(value, Wait::timeout(timeout))
        }

        /// Sends `value`, waiting for room as `wait` says.
        pub fn send_with(&mut self, value: &T, wait: Wait) -> Result<()> {
            self.inner.send_with(bytemuck::bytes_of(value), wait)
        }

        /// The byte endpoint.
        pub fn get_ref(&self) -> &S {
            &self.inner
        }

        /// The byte endpoint, mutably.
        pub fn get_mut(&mut self) -> &mut S {
            &mut self.inner
        }

        /// Unwraps the byte endpoint.
        pub fn into_inner(self) -> S {
            self.inner
        }
    }

    impl<T, S: fmt::Debug> fmt::Debug for PodSender<T, S> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("PodSender")
                .field("type", &type_name::<T>())
                .field("inner", &self.inner)
                .finish()
        }
    }

    /// Receives values of a [`Pod`] type `T` from any [`Receiver`], straight into the returned
    /// value (one copy, out of the transport).
    ///
    /// A message whose length is not `size_of::<T>()` is [`Error::Corrupted`] naming `T` and
    /// both lengths; the message is consumed (a longer one through a scratch buffer grown to
    /// its size, kept for the next time).
    pub struct PodReceiver<T, R> {
        inner: R,
        scratch: Vec<u8>,
        _type: PhantomData<fn() -> T>,
    }

    impl<T: Pod, R: Receiver> PodReceiver<T, R> {
        /// Wraps `inner`.
        pub fn new(inner: R) -> PodReceiver<T, R> {
            PodReceiver {
                inner,
                scratch: Vec::new(),
                _type: PhantomData,
            }
        }

        /// The next value, waiting as long as it takes.
        pub fn recv(&mut self) -> Result<T> {
            self.recv_with(Wait::Forever)
        }

        /// The next value if one is there ([`Error::Empty`] otherwise).
        pub fn try_recv(&mut self) -> Result<T> {
            self.recv_with(Wait::Never)
        }

        /// The next value, waiting at most `timeout`.
        pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T> {
            self.recv_with(Wait::timeout(timeout))
        }

        /// The next value, waiting as `wait` says.
        pub fn recv_with(&mut self, wait: Wait) -> Result<T> {
            let mut value = T::zeroed();
            match self
                .inner
                .recv_with(bytemuck::bytes_of_mut(&mut value), wait)
            {
                Ok(n) if n == size_of::<T>() => Ok(value),
                Ok(n) => Err(length_error::<T>(n)),
                Err(Error::BufferTooSmall { needed, .. }) => {
                    // Take the oversized message off the channel, then report it.
                    if self.scratch.len() < needed {
                        self.scratch.resize(needed, 0);
                    }
                    let n = self.inner.recv_with(&mut self.scratch, wait)?;
                    Err(length_error::<T>(n))
                }
                Err(e) => Err(e),
            }
        }

        /// The byte endpoint.
        pub fn get_ref(&self) -> &R {
            &self.inner
        }

        /// The byte endpoint, mutably.
        pub fn get_mut(&mut self) -> &mut R {
            &mut self.inner
        }

        /// Unwraps the byte endpoint.
        pub fn into_inner(self) -> R {
            self.inner
        }
    }

    impl<T, R: fmt::Debug> fmt::Debug for PodReceiver<T, R> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("PodReceiver")
                .field("type", &type_name::<T>())
                .field("inner", &self.inner)
                .finish()
        }
    }

    fn length_error<T>(len: usize) -> Error {
        wrong_shape(
            type_name::<T>(),
            len,
            &format!("expected exactly {} bytes", size_of::<T>()),
        )
    }

    fn check_fits<T>(max: usize) -> Result<()> {
        if size_of::<T>() > max {
            return Err(Error::MessageTooLarge {
                len: size_of::<T>(),
                max,
            });
        }
        Ok(())
    }

    /// Checks that `bytes` can be viewed as a `T` in place: length and alignment.
    fn check_view<T: Pod>(bytes: &[u8]) -> Result<()> {
        bytemuck::try_from_bytes::<T>(bytes)
            .map(|_| ())
            .map_err(|e| match e {
                bytemuck::PodCastError::SizeMismatch => length_error::<T>(bytes.len()),
                other => wrong_shape(
                    type_name::<T>(),
                    bytes.len(),
                    &format!(
                        "cannot be viewed in place ({other:?}: the ring aligns payloads to 8 \
                         bytes, `{}` needs {}); receive it by copy with `PodReceiver`",
                        type_name::<T>(),
                        std::mem::align_of::<T>()
                    ),
                ),
            })
    }

    /// A message of a shared-memory ring viewed in place as a `T`: derefs to `&T` without
    /// copying. Its space goes back to the senders when it is dropped.
    pub struct PodRecord<'a, T> {
        record: Record<'a>,
        _type: PhantomData<&'a T>,
    }

    impl<'a, T: Pod> PodRecord<'a, T> {
        /// Views `record` as a `T`. A length other than `size_of::<T>()`, or a payload not
        /// aligned for `T` (ring payloads are aligned to 8 bytes, so only for a `T` aligned to
        /// more), is [`Error::Corrupted`]; the record is then dropped, so consumed.
        pub fn new(record: Record<'a>) -> Result<PodRecord<'a, T>> {
            check_view::<T>(&record)?;
            Ok(PodRecord {
                record,
                _type: PhantomData,
            })
        }

        /// The record underneath, as bytes.
        pub fn into_record(self) -> Record<'a> {
            self.record
        }
    }

    impl<T: Pod> Deref for PodRecord<'_, T> {
        type Target = T;
        #[inline]
        fn deref(&self) -> &T {
            // Length and alignment were checked in `new`, and the record does not move.
            bytemuck::from_bytes(&self.record)
        }
    }

    impl<T: Pod + fmt::Debug> fmt::Debug for PodRecord<'_, T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_tuple("PodRecord").field(&**self).finish()
        }
    }

    /// Room for one `T` inside a shared-memory ring: derefs mutably to `T`, written where the
    /// receiver will read it. Nothing is published until [`commit`](PodLoan::commit); the
    /// initial contents are whatever the ring held there (any bytes are a valid `T`).
    #[must_use = "a loan publishes nothing until committed"]
    pub struct PodLoan<'a, T> {
        loan: Loan<'a>,
        _type: PhantomData<&'a mut T>,
    }

    impl<'a, T: Pod> PodLoan<'a, T> {
        /// Views `loan` as a `T`: its length must be `size_of::<T>()` and its payload aligned
        /// for `T`, else [`Error::Corrupted`] (and the loan is dropped, publishing nothing).
        pub fn new(loan: Loan<'a>) -> Result<PodLoan<'a, T>> {
            check_view::<T>(&loan)?;
            Ok(PodLoan {
                loan,
                _type: PhantomData,
            })
        }

        /// Publishes the value.
        pub fn commit(self) {
            self.loan.commit();
        }
    }

    impl<T: Pod> Deref for PodLoan<'_, T> {
        type Target = T;
        #[inline]
        fn deref(&self) -> &T {
            bytemuck::from_bytes(&self.loan)
        }
    }

    impl<T: Pod> DerefMut for PodLoan<'_, T> {
        #[inline]
        fn deref_mut(&mut self) -> &mut T {
            bytemuck::from_bytes_mut(&mut self.loan)
        }
    }

    impl<T: Pod + fmt::Debug> fmt::Debug for PodLoan<'_, T> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_tuple("PodLoan").field(&**self).finish()
        }
    }

    /// In-place reads of [`Pod`] values from a shared-memory ring: implemented for
    /// [`RingReceiver`], `ipc::posix::ring::ShmReceiver` and `ipc::sysv::ring::SysvShmReceiver`.
    ///
    /// ```
    /// # #[cfg(feature = "posix")]
    /// # fn main() -> ipc::Result<()> {
    /// use ipc::posix::ring::{ShmReceiver, ShmSender};
    /// use ipc::typed::{LoanPod, RecvPodInPlace};
    ///
    /// let spec = format!("posix-shm:/ipc-doc-pod-{}?capacity=64KiB", std::process::id())
    ///     .parse()?;
    /// let mut rx = ShmReceiver::open(&spec)?; // creates the segment, removes it on drop
    /// let mut tx = ShmSender::open(&spec)?;
    /// let mut loan = tx.loan_pod::<[u32; 4]>()?;
    /// *loan = [1, 2, 3, 4]; // written inside the segment
    /// loan.commit();
    /// let record = rx.recv_pod_in_place::<[u32; 4]>()?; // read where it lies
    /// assert_eq!(*record, [1, 2, 3, 4]);
    /// # Ok(())
    /// # }
    /// # #[cfg(not(feature = "posix"))]
    /// # fn main() {}
    /// ```
    pub trait RecvPodInPlace {
        /// The next message viewed in place as a `T`, waiting as `wait` says. A message of the
        /// wrong length (or, for a `T` aligned to more than 8, alignment) is
        /// [`Error::Corrupted`], and consumed.
        fn recv_pod_in_place_with<T: Pod>(&mut self, wait: Wait) -> Result<PodRecord<'_, T>>;

        /// [`recv_pod_in_place_with`](RecvPodInPlace::recv_pod_in_place_with), waiting as long
        /// as it takes.
        fn recv_pod_in_place<T: Pod>(&mut self) -> Result<PodRecord<'_, T>> {
            self.recv_pod_in_place_with(Wait::Forever)
        }
    }

    /// Zero-copy sends of [`Pod`] values into a shared-memory ring: implemented for
    /// [`RingSender`], `ipc::posix::ring::ShmSender` and `ipc::sysv::ring::SysvShmSender`.
    /// See [`RecvPodInPlace`] for an example.
    pub trait LoanPod {
        /// Reserves room for one `T` in the ring, waiting as `wait` says (`Full` / `Timeout`
        /// when it ends). Write the value through the [`PodLoan`] and commit it.
        fn loan_pod_with<T: Pod>(&mut self, wait: Wait) -> Result<PodLoan<'_, T>>;

        /// [`loan_pod_with`](LoanPod::loan_pod_with), waiting as long as it takes.
        fn loan_pod<T: Pod>(&mut self) -> Result<PodLoan<'_, T>> {
            self.loan_pod_with(Wait::Forever)
        }
    }

    impl RecvPodInPlace for RingReceiver {
        fn recv_pod_in_place_with<T: Pod>(&mut self, wait: Wait) -> Result<PodRecord<'_, T>> {
            PodRecord::new(self.recv_in_place_with(wait)?)
        }
    }

    impl LoanPod for RingSender {
        fn loan_pod_with<T: Pod>(&mut self, wait: Wait) -> Result<PodLoan<'_, T>> {
            check_fits::<T>(Sender::max_message_size(self))?;
            PodLoan::new(self.loan_with(size_of::<T>(), wait)?)
        }
    }

    #[cfg(feature = "posix")]
    impl RecvPodInPlace for crate::posix::ring::ShmReceiver {
        fn recv_pod_in_place_with<T: Pod>(&mut self, wait: Wait) -> Result<PodRecord<'_, T>> {
            self.ring_mut().recv_pod_in_place_with(wait)
        }
    }

    #[cfg(feature = "posix")]
    impl LoanPod for crate::posix::ring::ShmSender {
        fn loan_pod_with<T: Pod>(&mut self, wait: Wait) -> Result<PodLoan<'_, T>> {
            self.ring_mut().loan_pod_with(wait)
        }
    }

    #[cfg(feature = "sysv")]
    impl RecvPodInPlace for crate::sysv::ring::SysvShmReceiver {
        fn recv_pod_in_place_with<T: Pod>(&mut self, wait: Wait) -> Result<PodRecord<'_, T>> {
            self.ring_mut().recv_pod_in_place_with(wait)
        }
    }

    #[cfg(feature = "sysv")]
    impl LoanPod for crate::sysv::ring::SysvShmSender {
        fn loan_pod_with<T: Pod>(&mut self, wait: Wait) -> Result<PodLoan<'_, T>> {
            self.ring_mut().loan_pod_with(wait)
        }
    }
}

#[cfg(feature = "serde")]
mod serde_impl {
    use std::any::type_name;
    use std::fmt;
    use std::marker::PhantomData;
    use std::time::Duration;

    use serde::Serialize;
    use serde::de::DeserializeOwned;

    use super::wrong_shape;
    use crate::{Error, Receiver, Result, Sender, Wait};

    /// The receive buffer a [`SerdeReceiver`] starts with, at most (it grows on demand).
    const INITIAL_BUFFER: usize = 4096;

    /// Sends values of a serde type `T` over any [`Sender`], encoded with postcard.
    ///
    /// Each value is encoded into a buffer the sender keeps, then sent from it: after the
    /// buffer has grown to the largest encoding so far, a send allocates nothing (beyond what
    /// `T`'s own `Serialize` might). An encoding longer than the transport's message size is
    /// [`Error::MessageTooLarge`]; nothing is sent.
    ///
    /// ```
    /// # #[cfg(feature = "pipe")]
    /// # fn main() -> ipc::Result<()> {
    /// use ipc::typed::{SerdeReceiver, SerdeSender};
    ///
    /// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    /// struct Order {
    ///     id: u32,
    ///     symbol: String,
    ///     fills: Vec<f64>,
    /// }
    ///
    /// let (tx, rx) = ipc::pipe::channel(&ipc::pipe::PipeConfig::default())?;
    /// let mut tx = SerdeSender::<Order, _>::new(tx);
    /// let mut rx = SerdeReceiver::<Order, _>::new(rx);
    /// let order = Order { id: 7, symbol: "ACME".into(), fills: vec![1.5, 2.0] };
    /// tx.send(&order)?;
    /// assert_eq!(rx.recv()?, order);
    /// # Ok(())
    /// # }
    /// # #[cfg(not(feature = "pipe"))]
    /// # fn main() {}
    /// ```
    pub struct SerdeSender<T: ?Sized, S> {
        inner: S,
        buf: Vec<u8>,
        _type: PhantomData<fn(&T)>,
    }

    impl<T: Serialize + ?Sized, S: Sender> SerdeSender<T, S> {
        /// Wraps `inner`.
        pub fn new(inner: S) -> SerdeSender<T, S> {
            SerdeSender {
                inner,
                buf: Vec::new(),
                _type: PhantomData,
            }
        }

        /// Sends `value`, waiting for room as long as it takes.
        pub fn send(&mut self, value: &T) -> Result<()> {
            self.send_with(value, Wait::Forever)
        }

        /// Sends `value` if there is room now ([`Error::Full`] otherwise).
        pub fn try_send(&mut self, value: &T) -> Result<()> {
            self.send_with(value, Wait::Never)
        }

        /// Sends `value`, waiting at most `timeout` for room.
        pub fn send_timeout(&mut self, value: &T, timeout: Duration) -> Result<()> {
            self.send_with(value, Wait::timeout(timeout))
        }

        /// Sends `value`, waiting for room as `wait` says. A value serde cannot encode is
        /// [`Error::Io`] (kind `InvalidData`), and nothing is sent.
        pub fn send_with(&mut self, value: &T, wait: Wait) -> Result<()> {
            let mut buf = std::mem::take(&mut self.buf);
            buf.clear();
            let buf = postcard::to_extend(value, buf).map_err(|e| {
                Error::io(
                    format!("encoding a `{}` with postcard", type_name::<T>()),
                    std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                )
            })?;
            self.buf = buf;
            self.inner.send_with(&self.buf, wait)
        }

        /// The byte endpoint.
        pub fn get_ref(&self) -> &S {
            &self.inner
        }

        /// The byte endpoint, mutably.
        pub fn get_mut(&mut self) -> &mut S {
            &mut self.inner
        }

        /// Unwraps the byte endpoint.
        pub fn into_inner(self) -> S {
            self.inner
        }
    }

    impl<T: ?Sized, S: fmt::Debug> fmt::Debug for SerdeSender<T, S> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("SerdeSender")
                .field("type", &type_name::<T>())
                .field("inner", &self.inner)
                .finish()
        }
    }

    /// Receives values of a serde type `T` from any [`Receiver`], decoding postcard.
    ///
    /// Messages are received into a buffer the receiver keeps: it starts at the transport's
    /// message size or 4 KiB, whichever is less, and grows to fit a larger message. A message
    /// that does not decode as exactly one `T` (trailing bytes included) is
    /// [`Error::Corrupted`] naming `T`; it is consumed.
    pub struct SerdeReceiver<T, R> {
        inner: R,
        buf: Vec<u8>,
        _type: PhantomData<fn() -> T>,
    }

    impl<T: DeserializeOwned, R: Receiver> SerdeReceiver<T, R> {
        /// Wraps `inner`.
        pub fn new(inner: R) -> SerdeReceiver<T, R> {
            let len = inner.max_message_size().min(INITIAL_BUFFER);
            SerdeReceiver {
                inner,
                buf: vec![0; len],
                _type: PhantomData,
            }
        }

        /// The next value, waiting as long as it takes.
        pub fn recv(&mut self) -> Result<T> {
            self.recv_with(Wait::Forever)
        }

        /// The next value if one is there ([`Error::Empty`] otherwise).
        pub fn try_recv(&mut self) -> Result<T> {
            self.recv_with(Wait::Never)
        }

        /// The next value, waiting at most `timeout`.
        pub fn recv_timeout(&mut self, timeout: Duration) -> Result<T> {
            self.recv_with(Wait::timeout(timeout))
        }

        /// The next value, waiting as `wait` says.
        pub fn recv_with(&mut self, wait: Wait) -> Result<T> {
            let n = match self.inner.recv_with(&mut self.buf, wait) {
                Err(Error::BufferTooSmall { needed, .. }) => {
                    self.buf.resize(needed, 0);
                    self.inner.recv_with(&mut self.buf, wait)?
                }
                other => other?,
            };
            let bytes = &self.buf[..n];
            match postcard::take_from_bytes::<T>(bytes) {
                Ok((value, [])) => Ok(value),
                Ok((_, rest)) => Err(wrong_shape(
                    type_name::<T>(),
                    n,
                    &format!("{} bytes left over after decoding", rest.len()),
                )),
                Err(e) => Err(wrong_shape(type_name::<T>(), n, &format!("postcard: {e}"))),
            }
        }

        /// The byte endpoint.
        pub fn get_ref(&self) -> &R {
            &self.inner
        }

        /// The byte endpoint, mutably.
        pub fn get_mut(&mut self) -> &mut R {
            &mut self.inner
        }

        /// Unwraps the byte endpoint.
        pub fn into_inner(self) -> R {
            self.inner
        }
    }

    impl<T, R: fmt::Debug> fmt::Debug for SerdeReceiver<T, R> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("SerdeReceiver")
                .field("type", &type_name::<T>())
                .field("inner", &self.inner)
                .finish()
        }
    }
}
