//! How long a call may wait: the one notion of a deadline that every transport shares.

use std::time::{Duration, Instant};

use crate::Error;

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

#[cfg(test)]
mod tests {
    use super::*;

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
