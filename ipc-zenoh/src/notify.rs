//! The readiness descriptor of an endpoint: Zenoh hands us callbacks, not a descriptor, so a
//! callback that makes progress possible signals an eventfd that event loops wait on.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::event::{EventfdFlags, eventfd};

/// An eventfd, non-blocking: readable once signalled, until drained.
#[derive(Debug)]
pub(crate) struct Notifier(OwnedFd);

impl Notifier {
    pub(crate) fn new() -> io::Result<Notifier> {
        Ok(Notifier(eventfd(
            0,
            EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK,
        )?))
    }

    /// Makes the descriptor readable. The counter cannot overflow in practice (2^64 - 2
    /// signals without a drain); a failed write would only cost a wake-up, which the waiter's
    /// `prepare_wait` does not rely on.
    pub(crate) fn signal(&self) {
        let _ = rustix::io::write(&self.0, &1u64.to_ne_bytes());
    }

    /// Consumes every signal so far (`EAGAIN` when there was none).
    pub(crate) fn drain(&self) {
        let mut count = [0; 8];
        let _ = rustix::io::read(&self.0, &mut count);
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
