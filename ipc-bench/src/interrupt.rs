//! Removing what the bench made when it is interrupted (Ctrl-C, `SIGTERM`, `SIGHUP`).
//!
//! The bench's named objects outlive it: a POSIX queue stays in `/dev/mqueue`, counted against
//! the user's `RLIMIT_MSGQUEUE`, and a shared-memory segment in `/dev/shm`, holding its memory,
//! until removed. Their guards remove them on every way out of `run`, but a signal's default
//! action ends the process without running them. So these signals are blocked in every thread
//! of `ipc bench` and taken by one thread of its own (`sigwait`), which removes the objects
//! still [`track`]ed, then lets the signal end the process as it would have (the shell sees
//! the same "killed by SIGINT"). The peers inherit the blocked signals and unblock them first
//! thing ([`unblock_in_peer`]): they die of the Ctrl-C themselves, or else with us
//! (`PR_SET_PDEATHSIG`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::thread;

use ipc::posix::PosixName;
use ipc::posix::shm;
use ipc::sysv::Key;
use ipc::sysv::shm::SysvSegment;
use nix::sys::signal::{SigSet, Signal, raise};

/// Something on the system that the bench must remove.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Named {
    /// A POSIX message queue, by name (`/ipc-bench-…`).
    Queue(String),
    /// A POSIX shared-memory segment, by name (`/ipc-bench-shm-…`).
    Shm(String),
    /// A private directory and everything in it.
    Dir(PathBuf),
    /// A System V shared-memory segment, by key (`sysv-shm` bench).
    SysvShm(i32),
    /// A System V message queue, by id (`sysv-mq` bench).
    SysvQueue(i32),
    /// A file, by path (`file-shm` bench).
    File(PathBuf),
}

impl Named {
    /// Removes the object, if it is still there.
    pub fn remove(&self) {
        match self {
            Named::Queue(name) => {
                let _ = nix::mqueue::mq_unlink(name.as_str());
            }
            Named::Shm(name) => {
                let _ = PosixName::new(name).and_then(|name| shm::unlink(&name));
            }
            Named::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Named::SysvShm(key) => remove_sysv_shm(*key),
            Named::SysvQueue(id) => {
                let _ = ipc::sysv::msg::remove(*id);
            }
            Named::File(path) => {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// Removes the segment of `key`, if there is one (`IPC_RMID`).
fn remove_sysv_shm(key: i32) {
    if let Ok(seg) = SysvSegment::lookup(&Key::Explicit(key)) {
        let _ = seg.destroy();
    }
}

/// A name no other object of this process gets: `<prefix>-<pid>-<n>`.
pub fn fresh_name(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), serial())
}

/// A number no earlier call in this process returned (until it wraps), for naming objects.
pub fn serial() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

static LIVE: Mutex<Vec<Named>> = Mutex::new(Vec::new());

fn live() -> MutexGuard<'static, Vec<Named>> {
    // A panic elsewhere while holding the list leaves it as valid as before.
    LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Removes `object` if the bench is interrupted, until [`untrack`]ed (which its guard does
/// once it has removed it).
pub fn track(object: Named) {
    live().push(object);
}

pub fn untrack(object: &Named) {
    live().retain(|o| o != object);
}

fn interrupting() -> SigSet {
    let mut signals = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(signal);
    }
    signals
}

/// In a peer, which inherits its parent's signal mask across `exec`: back to the default, so
/// that a Ctrl-C ends it like any command.
pub fn unblock_in_peer() {
    let _ = interrupting().thread_unblock();
}

/// Takes the interrupting signals away from every thread started from now on (and this one)
/// and has one thread of its own wait for them. Best effort: if that thread cannot start, the
/// signals are left as they were.
pub fn clean_up_on_signals() {
    let signals = interrupting();
    if signals.thread_block().is_err() {
        return;
    }
    let waiter = thread::Builder::new()
        .name("bench-signals".into())
        .spawn(move || {
            let signal = loop {
                if let Ok(signal) = signals.wait() {
                    break signal;
                }
            };
            for object in live().drain(..) {
                object.remove();
            }
            // Not blocked in this thread any more, and still at its default action: raising
            // it ends the process by that signal.
            let _ = SigSet::from(signal).thread_unblock();
            let _ = raise(signal);
            std::process::exit(128 + signal as i32);
        });
    if waiter.is_err() {
        let _ = signals.thread_unblock();
    }
}
