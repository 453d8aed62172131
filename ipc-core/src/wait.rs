//! How long a call may wait: the one notion of a deadline that every transport shares.

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};

use crate::{Error, Result, WaitStrategy};

/// How long a blocking call may wait. The `try_`, plain and `_timeout` forms of the
/// [`Sender`](crate::Sender) and [`Receiver`](crate::Receiver) methods map onto these.
///
/// A deadline is an [`Instant`], not a duration, so that retries after `EINTR` or spurious
/// wake-ups keep the caller's deadline instead of restarting the clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Wait as long as it takes (until success, disconnection or an error).
    Forever,
    /// Do not wait at all.
    Never,
    /// Wait until this instant at the latest.
    Until(Instant),
}

impl Wait {
    /// A deadline `timeout` from now; a timeout too large to represent waits forever.
    pub fn timeout(timeout: Duration) -> Wait {
        Instant::now()
            .checked_add(timeout)
            .map_or(Wait::Forever, Wait::Until)
    }

    /// Whether this is a blocking wait without a deadline.
    pub fn is_forever(self) -> bool {
        matches!(self, Wait::Forever)
    }

    /// Time left before the deadline: `None` for [`Wait::Forever`], zero when passed or `Never`.
    pub fn remaining(self) -> Option<Duration> {
        match self {
            Wait::Forever => None,
            Wait::Never => Some(Duration::ZERO),
            Wait::Until(at) => Some(at.saturating_duration_since(Instant::now())),
        }
    }

    /// Whether the deadline has passed (always for `Never`, never for `Forever`).
    pub fn expired(self) -> bool {
        self.remaining().is_some_and(|left| left.is_zero())
    }

    /// The time left as a `poll(2)` timeout in milliseconds: `-1` for forever, rounded *up* so
    /// that a wait never ends before the deadline (callers re-check [`Wait::expired`]).
    pub fn poll_timeout_ms(self) -> i32 {
        match self.remaining() {
            None => -1,
            Some(left) => {
                let ms = left.as_nanos().div_ceil(1_000_000);
                i32::try_from(ms).unwrap_or(i32::MAX)
            }
        }
    }

    /// The error for a receive that found nothing in time: `Empty` for `try_`, else `Timeout`.
    pub fn empty_error(self) -> Error {
        match self {
            Wait::Never => Error::Empty,
            _ => Error::Timeout,
        }
    }

    /// The error for a send that found no room in time: `Full` for `try_`, else `Timeout`.
    pub fn full_error(self) -> Error {
        match self {
            Wait::Never => Error::Full,
            _ => Error::Timeout,
        }
    }
}

/// How long an endpoint that spins ([`WaitStrategy::Spin`]) polls before it sleeps: long enough
/// to catch a peer that is awake and answering, short against the wake-up a sleep costs (a
/// futex or a pipe's wait queue, several microseconds, tens on some placements of this VM).
pub const SPIN_FOR: Duration = Duration::from_micros(20);

/// `poll(2)` on `fds` within `wait`: `Ok(true)` once any of them reports (their `revents` say
/// which), `Ok(false)` once `wait` has expired. `EINTR` is retried within the deadline, and so
/// is a timeout that `poll`'s rounding to milliseconds ended before it.
pub fn poll_fds(fds: &mut [PollFd<'_>], wait: Wait) -> Result<bool> {
    loop {
        let timeout = PollTimeout::try_from(wait.poll_timeout_ms()).unwrap_or(PollTimeout::MAX);
        match nix::poll::poll(fds, timeout) {
            Ok(0) if wait.expired() => return Ok(false),
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => return Ok(true),
            Err(e) => return Err(Error::io("poll", e.into())),
        }
    }
}

/// [`poll_fds`] on one descriptor, for `events` (an error or a hang-up reports too).
pub fn poll_fd(fd: BorrowedFd<'_>, events: PollFlags, wait: Wait) -> Result<bool> {
    poll_fds(&mut [PollFd::new(fd, events)], wait)
}

/// The polling phase of a receive that found nothing, for the transports that otherwise sleep
/// in the kernel at once (pipes, FIFOs, sockets): retries `attempt` (a non-blocking receive,
/// `Ok(None)` when nothing came) as `strategy` says, before the caller's blocking wait.
///
/// - [`WaitStrategy::Park`]: no polling, `Ok(None)` at once.
/// - [`WaitStrategy::Spin`]: for up to [`SPIN_FOR`], or until the deadline if sooner.
/// - [`WaitStrategy::Busy`]: until the deadline (for ever for [`Wait::Forever`], until
///   `attempt` succeeds or fails, as a closed peer makes it).
///
/// `Ok(None)` means "go on and wait in the kernel" (whose own deadline check then says
/// `Timeout` if it has passed); an error of `attempt` is returned as it is.
pub fn poll_before_sleep<T>(
    strategy: WaitStrategy,
    wait: Wait,
    mut attempt: impl FnMut() -> Result<Option<T>>,
) -> Result<Option<T>> {
    let spin_until = match strategy {
        WaitStrategy::Park => return Ok(None),
        WaitStrategy::Spin => Some(Instant::now() + SPIN_FOR),
        WaitStrategy::Busy => None,
    };
    let until = match (spin_until, wait) {
        (_, Wait::Never) => return Ok(None),
        (Some(spin), Wait::Until(deadline)) => Some(spin.min(deadline)),
        (None, Wait::Until(deadline)) => Some(deadline),
        (spin, Wait::Forever) => spin,
    };
    loop {
        if let Some(got) = attempt()? {
            return Ok(Some(got));
        }
        std::hint::spin_loop();
        if until.is_some_and(|until| Instant::now() >= until) {
            return Ok(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn park_never_polls_and_spin_gives_up_after_its_time() {
        let mut calls = 0;
        let got: Option<()> = poll_before_sleep(WaitStrategy::Park, Wait::Forever, || {
            calls += 1;
            Ok(None)
        })
        .unwrap();
        assert_eq!((got, calls), (None, 0));
        let started = Instant::now();
        let got: Option<()> =
            poll_before_sleep(WaitStrategy::Spin, Wait::Forever, || Ok(None)).unwrap();
        assert_eq!(got, None);
        assert!(started.elapsed() >= SPIN_FOR);
        let got: Option<()> =
            poll_before_sleep(WaitStrategy::Busy, Wait::Never, || unreachable!()).unwrap();
        assert_eq!(got, None);
    }

    #[test]
    fn busy_polls_until_its_deadline_or_an_answer() {
        let deadline = Instant::now() + Duration::from_millis(5);
        let got: Option<()> =
            poll_before_sleep(WaitStrategy::Busy, Wait::Until(deadline), || Ok(None)).unwrap();
        assert_eq!(got, None);
        assert!(Instant::now() >= deadline);
        let mut calls = 0;
        let got = poll_before_sleep(WaitStrategy::Busy, Wait::Forever, || {
            calls += 1;
            Ok((calls == 1000).then_some(calls))
        })
        .unwrap();
        assert_eq!(got, Some(1000));
        let err = poll_before_sleep::<()>(WaitStrategy::Spin, Wait::Forever, || {
            Err(Error::Disconnected)
        });
        assert!(matches!(err, Err(Error::Disconnected)));
    }

    #[test]
    fn poll_timeout_rounds_up_and_never_is_zero() {
        assert_eq!(Wait::Forever.poll_timeout_ms(), -1);
        assert_eq!(Wait::Never.poll_timeout_ms(), 0);
        let w = Wait::Until(Instant::now() + Duration::from_micros(1500));
        let ms = w.poll_timeout_ms();
        assert!((1..=2).contains(&ms), "{ms}");
        assert!(Wait::Never.expired());
        assert!(!Wait::Forever.expired());
        assert!(Wait::timeout(Duration::MAX).is_forever());
    }
}
