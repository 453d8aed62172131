//! A thread that speaks for a peer once it has exited, for the transports whose objects do not
//! tell (a queue, a mailbox, a ring whose producer never attached): without it, the parent
//! would wait for good on an object nobody serves, where a pipe would see end of file or
//! `EPIPE`.
//!
//! The thread waits for the peer's exit, whatever way it exits, then every [`PERIOD`] does
//! what the transport says ([`start`]'s `act`: send the parent an empty message, empty the
//! object to the peer), until the link's objects are dropped ([`Stop`]). It takes no part in
//! the measured runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;

use crate::transport::Peer;

/// How often a watcher whose peer has exited acts for it.
pub const PERIOD: Duration = Duration::from_millis(5);

/// Tells a link's watcher to stop; held by the guard of the link's objects, which calls
/// [`Stop::now`] before it removes them.
#[derive(Default)]
pub struct Stop(Arc<AtomicBool>);

impl Stop {
    /// The watcher stops at its next step.
    pub fn now(&self) {
        self.0.store(true, Ordering::Release);
    }
}

/// Starts the watcher of `peer` (thread `bench-<what>-watcher`). Once the peer has exited,
/// `act` runs every [`PERIOD`] until `stop` says so, or until it returns `false`: nothing more
/// it can do.
pub fn start(
    peer: &Peer,
    what: &str,
    stop: &Stop,
    mut act: impl FnMut() -> bool + Send + 'static,
) -> ipc::Result<()> {
    let pid = Pid::from_raw(i32::try_from(peer.id()).unwrap_or(i32::MAX));
    let stop = Arc::clone(&stop.0);
    thread::Builder::new()
        .name(format!("bench-{what}-watcher"))
        .spawn(move || {
            // WNOWAIT: the peer stays to be reaped by `Link::finish`. Any error (ECHILD:
            // already reaped) also means the peer is gone.
            while let Err(Errno::EINTR) =
                waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)
            {}
            while !stop.load(Ordering::Acquire) && act() {
                thread::sleep(PERIOD);
            }
        })
        .map(drop)
        .map_err(|e| ipc::Error::io(format!("starting the bench's {what} watcher thread"), e))
}

/// The `act` for a ring from the peer: ends the parent's stream with one empty message on the
/// ring of `spec` (a ring only reports a dead producer that had attached), then keeps that
/// sender attached until the link is done.
pub fn end_ring(spec: String) -> impl FnMut() -> bool + Send + 'static {
    let mut ring: Option<Box<dyn ipc::Sender>> = None;
    let mut told = false;
    move || {
        if told {
            return true;
        }
        if ring.is_none() {
            match ipc::open_sender(&spec) {
                Ok(tx) => ring = Some(tx),
                // Removed already (the link is being dropped), or never usable.
                Err(_) => return false,
            }
        }
        match ring.as_mut().map(|tx| tx.try_send(&[])) {
            Some(Ok(())) => told = true,
            Some(Err(ipc::Error::Full)) => {}
            _ => return false,
        }
        true
    }
}
