//! Expectations several test files share: an error where success would be wrong, and a sender
//! that must give up waiting for its receiver neither early nor late.

use std::time::{Duration, Instant};

use ipc::Error;

use crate::process::{WATCHDOG, bounded};
use crate::suite::SLACK;

/// The error of `r`; panics (at the caller) if it is `Ok`.
#[track_caller]
pub fn err_of<T>(r: ipc::Result<T>) -> Error {
    match r {
        Ok(_) => panic!("expected an error, got Ok"),
        Err(e) => e,
    }
}

/// Opens a sender of `spec`, whose `open_timeout` is `timeout` and whose receiver is not there:
/// returns the error it gave up with, after checking that it waited out `timeout` (never a
/// hang, never early).
pub fn open_sender_gives_up(spec: String, timeout: Duration) -> Error {
    let (err, elapsed) = bounded("open a sender without receiver", WATCHDOG, move || {
        let start = Instant::now();
        (err_of(ipc::open_sender(&spec)), start.elapsed())
    });
    assert!(
        elapsed >= timeout,
        "gave up early, after {elapsed:?}: {err:?}"
    );
    assert!(
        elapsed < timeout + SLACK,
        "gave up late, after {elapsed:?}: {err:?}"
    );
    err
}
