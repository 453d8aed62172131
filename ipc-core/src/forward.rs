//! Endpoints that are another endpoint with extra state (a FIFO's path, a pipe's hand-over)
//! forward the traits to it. Written once here, so that a method added to [`Sender`] or
//! [`Receiver`] later is forwarded everywhere, not forgotten in one backend.
//!
//! [`Sender`]: crate::Sender
//! [`Receiver`]: crate::Receiver

/// Implements [`Sender`](crate::Sender) for `$outer` by forwarding every method that an
/// endpoint may override to its field `$inner`; with `, AsFd` also
/// [`AsFd`](std::os::fd::AsFd).
///
/// ```
/// use ipc_core::Sender;
///
/// /// A sender that also remembers where it sends.
/// struct Labelled { inner: Box<dyn Sender>, label: String }
/// ipc_core::forward_sender!(Labelled => inner);
///
/// fn check(sender: Labelled) -> (Box<dyn Sender>, String) {
///     let label = sender.label.clone();
///     (Box::new(sender), label)
/// }
/// ```
#[macro_export]
macro_rules! forward_sender {
    ($outer:ty => $inner:ident) => {
        impl $crate::Sender for $outer {
            fn max_message_size(&self) -> usize {
                $crate::Sender::max_message_size(&self.$inner)
            }
            fn send_with(&mut self, msg: &[u8], wait: $crate::Wait) -> $crate::Result<()> {
                $crate::Sender::send_with(&mut self.$inner, msg, wait)
            }
            fn send_batch(
                &mut self,
                msgs: &[&[u8]],
                wait: $crate::Wait,
            ) -> $crate::Result<usize> {
                $crate::Sender::send_batch(&mut self.$inner, msgs, wait)
            }
            fn try_send_part(&mut self, msg: &[u8], resume: bool) -> $crate::Result<()> {
                $crate::Sender::try_send_part(&mut self.$inner, msg, resume)
            }
            fn readiness(&mut self) -> Option<&mut dyn $crate::Readiness> {
                $crate::Sender::readiness(&mut self.$inner)
            }
        }
    };
    ($outer:ty => $inner:ident, AsFd) => {
        $crate::forward_sender!($outer => $inner);
        $crate::forward_as_fd!($outer => $inner);
    };
}

/// Implements [`Receiver`](crate::Receiver) for `$outer` by forwarding every method that an
/// endpoint may override to its field `$inner`; with `, AsFd` also
/// [`AsFd`](std::os::fd::AsFd).
#[macro_export]
macro_rules! forward_receiver {
    ($outer:ty => $inner:ident) => {
        impl $crate::Receiver for $outer {
            fn max_message_size(&self) -> usize {
                $crate::Receiver::max_message_size(&self.$inner)
            }
            fn recv_with(&mut self, buf: &mut [u8], wait: $crate::Wait) -> $crate::Result<usize> {
                $crate::Receiver::recv_with(&mut self.$inner, buf, wait)
            }
            fn recv_batch(
                &mut self,
                buf: &mut [u8],
                lens: &mut [usize],
                wait: $crate::Wait,
            ) -> $crate::Result<usize> {
                $crate::Receiver::recv_batch(&mut self.$inner, buf, lens, wait)
            }
            fn readiness(&mut self) -> Option<&mut dyn $crate::Readiness> {
                $crate::Receiver::readiness(&mut self.$inner)
            }
        }
    };
    ($outer:ty => $inner:ident, AsFd) => {
        $crate::forward_receiver!($outer => $inner);
        $crate::forward_as_fd!($outer => $inner);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! forward_as_fd {
    ($outer:ty => $inner:ident) => {
        impl ::std::os::fd::AsFd for $outer {
            fn as_fd(&self) -> ::std::os::fd::BorrowedFd<'_> {
                ::std::os::fd::AsFd::as_fd(&self.$inner)
            }
        }
    };
}
