//! A deadline on each run of the bench: a run that has not ended long after its budget (a peer
//! or a transport wedged while alive) fails, naming itself, instead of hanging the whole bench.
//!
//! The bench's own waits have no deadline: a peer that fails exits, and every link ends the
//! parent's wait once its peer is gone (see [`crate::watch`]). A peer that is alive but stuck
//! is the one case that leaves the parent waiting for good; one combined run here once sat for
//! more than 15 minutes with no sign of which cell it was in. So when a run's deadline passes,
//! its peer is killed, which ends the parent's wait through that same path, and the run's error
//! says what happened. If even that does not end it, a second line on stderr names the run.

use std::os::fd::OwnedFd;
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};

/// How long after the peer was killed a run that still has not ended is reported again.
const AFTER_KILL: Duration = Duration::from_secs(30);

/// How long a run of `budget` may take before its peer is killed: starting two processes and
/// connecting them, the budget, then ending the stream, with room for a loaded machine.
pub fn limit(budget: Duration) -> Duration {
    Duration::from_secs(60) + budget * 20
}

/// The deadline of one run, from [`arm`] until [`Deadline::disarm`].
pub struct Deadline {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    fired: Arc<AtomicBool>,
}

/// Kills `peer` if the run named `what` has not disarmed the deadline within `limit`.
///
/// The peer is reached through a pidfd, opened here while the process is ours and not yet
/// reaped, so the signal can never hit another process that reused its id later.
pub fn arm(what: String, peer: &Child, limit: Duration) -> std::io::Result<Deadline> {
    let pidfd = pidfd_open(Pid::from_child(peer), PidfdFlags::empty())?;
    let (stop, stopped) = mpsc::channel();
    let fired = Arc::new(AtomicBool::new(false));
    let thread = thread::Builder::new()
        .name("bench-deadline".into())
        .spawn({
            let fired = Arc::clone(&fired);
            move || watch(&what, pidfd, limit, &stopped, &fired)
        })?;
    Ok(Deadline {
        stop: Some(stop),
        thread: Some(thread),
        fired,
    })
}

fn watch(
    what: &str,
    pidfd: OwnedFd,
    limit: Duration,
    stopped: &mpsc::Receiver<()>,
    fired: &AtomicBool,
) {
    // A message or a dropped sender alike mean the run ended.
    if stopped.recv_timeout(limit) != Err(RecvTimeoutError::Timeout) {
        return;
    }
    fired.store(true, Ordering::Release);
    eprintln!(
        "ipc bench: {what} has not ended after {} s; killing its peer",
        limit.as_secs()
    );
    // Fails only if the peer has exited already, which ends the run anyway.
    let _ = pidfd_send_signal(&pidfd, Signal::KILL);
    if stopped.recv_timeout(AFTER_KILL) == Err(RecvTimeoutError::Timeout) {
        eprintln!(
            "ipc bench: {what} still waits {} s after its peer was killed: this transport \
             does not see its peer die",
            AFTER_KILL.as_secs()
        );
    }
}

impl Deadline {
    /// Ends the watch; whether the deadline had passed (and the peer was killed).
    pub fn disarm(mut self) -> bool {
        self.stop_watching();
        self.fired.load(Ordering::Acquire)
    }

    fn stop_watching(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A run that unwinds stops the watch too.
impl Drop for Deadline {
    fn drop(&mut self) {
        self.stop_watching();
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Command;

    use super::*;

    /// A peer that never ends on its own within a test's time.
    fn sleeper() -> Child {
        Command::new("sleep").arg("60").spawn().unwrap()
    }

    #[test]
    fn a_run_past_its_deadline_has_its_peer_killed() {
        let mut peer = sleeper();
        let deadline = arm("test run".into(), &peer, Duration::from_millis(50)).unwrap();
        // Ends by the deadline's kill, else after a minute, failing.
        let status = peer.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(nix::sys::signal::Signal::SIGKILL as i32),
            "{status}"
        );
        assert!(deadline.disarm());
    }

    #[test]
    fn a_run_that_ends_in_time_leaves_its_peer_alone() {
        let mut peer = sleeper();
        let deadline = arm("test run".into(), &peer, Duration::from_secs(600)).unwrap();
        assert!(!deadline.disarm());
        assert_eq!(peer.try_wait().unwrap(), None, "the peer was signalled");
        peer.kill().unwrap();
        peer.wait().unwrap();
    }
}
