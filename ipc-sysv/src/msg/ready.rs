//! What stands in for the descriptor a System V queue lacks (see the `msg` module
//! documentation, "Event loops"): a helper thread and an `eventfd` for a receiver, a back-off
//! timer for a sender.
//!
//! # The receiver's helper
//!
//! The helper sleeps in a blocking `msgrcv(msqid, buf, 0, 0, 0)`: for a message of non-zero
//! length the kernel answers `E2BIG` and leaves it queued, so the helper learns that a message
//! is there without taking it; a message of zero length fits and is taken, and kept in a
//! one-message slot that the receiver delivers first. Either way the helper then signals the
//! `eventfd` and waits for the receiver to re-arm it ([`Helper::prepare_wait`]) before it looks
//! again, since looking at once would find the same message and spin.
//!
//! | state (under one mutex) | set by                            | cleared by                  |
//! |-------------------------|-----------------------------------|-----------------------------|
//! | `armed`                 | receiver, `prepare_wait`          | helper, when it looks       |
//! | `taken`                 | helper, a zero-length message     | receiver, delivering it     |
//! | `ended`                 | helper, queue removed or an error | never (the helper has gone) |
//! | `stop`, `event` = None  | receiver, when dropped            | never                       |
//!
//! The helper looks only while `armed` and the slot is empty, so the slot never overflows.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::{BACKOFF_MAX, BACKOFF_MIN, errno};
use crate::sys::{event, msg as sys};

/// Stack of a helper thread: it only waits in `msgrcv` and on a condition variable.
const HELPER_STACK: usize = 64 * 1024;

/// A receiver's readiness helper, from the receiver's side. Dropping it tells the helper to
/// stop (see [`Helper`]'s `Drop`).
#[derive(Debug)]
pub(super) struct Helper {
    msqid: i32,
    shared: Arc<Shared>,
    /// Signalled by the helper; the receiver's readiness descriptor.
    event: Arc<File>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// The receiver is about to sleep: the helper is to look for a message.
    armed: bool,
    /// The type of a zero-length message the helper took off the queue, not yet delivered.
    taken: Option<i64>,
    /// Why the helper has ended, if it has.
    ended: Option<Ended>,
    /// The receiver is gone: the helper is to end at its next wake-up.
    stop: bool,
    /// The helper's way to the `eventfd`: taken away when the receiver goes, so that a helper
    /// left blocked in the kernel holds no descriptor.
    event: Option<Arc<File>>,
}

#[derive(Debug, Clone, Copy)]
enum Ended {
    /// The queue was removed (`EIDRM`, or `EINVAL` for an id that names nothing now).
    Removed,
    /// `msgrcv` failed otherwise, with this `errno`.
    Failed(i32),
}

/// What the helper holds for the next receive.
#[derive(Debug, Clone, Copy)]
pub(super) struct Status {
    /// The type of a zero-length message taken off the queue (delivered before the queue).
    pub taken: Option<i64>,
    /// The queue was removed.
    pub removed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent whatever panicked: each field is one plain value.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed.wait(guard).unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    fn signal(&self) {
        if let Some(event) = &self.event {
            // Fails only when the counter would overflow, which leaves it readable anyway.
            let _ = event::signal(event);
        }
    }
}

/// Puts a zero-length message of type `mtype` back on the queue (at its back).
fn give_back(msqid: i32, mtype: i64, flags: libc::c_int) -> io::Result<()> {
    let mut buf = sys::MsgBuf::new(0);
    buf.fill(mtype, &[]).expect("an empty text fits any buffer");
    loop {
        match sys::send(msqid, &buf, 0, flags) {
            Err(e) if errno(&e) == libc::EINTR => continue,
            result => return result,
        }
    }
}

impl Helper {
    /// Starts the helper thread for queue `msqid`, unarmed.
    pub fn start(msqid: i32) -> io::Result<Helper> {
        let event = Arc::new(event::eventfd()?);
        let shared = Arc::new(Shared::default());
        shared.lock().event = Some(Arc::clone(&event));
        let theirs = Arc::clone(&shared);
        std::thread::Builder::new()
            .name(format!("sysv-mq {msqid} ready"))
            .stack_size(HELPER_STACK)
            .spawn(move || run(msqid, &theirs))?;
        Ok(Helper {
            msqid,
            shared,
            event,
        })
    }

    /// The descriptor that becomes readable when a receive may get on.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.event.as_fd()
    }

    /// Arms the helper unless a receive can get on now (`Ok(true)`: a taken message waits, or
    /// the queue was removed). `Err` carries the `msgrcv` error that ended the helper.
    pub fn prepare_wait(&self) -> io::Result<bool> {
        let mut state = self.shared.lock();
        match state.ended {
            Some(Ended::Removed) => return Ok(true),
            Some(Ended::Failed(errno)) => return Err(io::Error::from_raw_os_error(errno)),
            None => {}
        }
        if state.taken.is_some() {
            return Ok(true);
        }
        state.armed = true;
        drop(state);
        self.shared.changed.notify_one();
        Ok(false)
    }

    /// Consumes the `eventfd`'s signal.
    pub fn after_wake(&self) {
        // Nothing to consume is no error (a spurious wake-up), and nothing else can fail.
        let _ = event::consume(&self.event);
    }

    /// What the helper holds for the next receive.
    pub fn status(&self) -> Status {
        let state = self.shared.lock();
        Status {
            taken: state.taken,
            removed: matches!(state.ended, Some(Ended::Removed)),
        }
    }

    /// Marks the taken message delivered (only the receiver clears the slot, so what
    /// [`Helper::status`] showed is still there).
    pub fn clear_taken(&self) {
        self.shared.lock().taken = None;
    }
}

/// The receiver is gone: the helper is told to stop, and loses its way to the `eventfd`. A
/// taken zero-length message goes back on the queue (at its back) for the next receiver: now
/// if there is room, else by the helper once there is (or never, if the queue is removed
/// first). The helper cannot be woken from `msgrcv` without a signal, so it stays blocked
/// there until its next wake-up (a message, which it leaves or gives back, or the queue's
/// removal), holding its stack and a few bytes of state, then ends.
impl Drop for Helper {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.stop = true;
        state.event = None;
        if let Some(mtype) = state.taken {
            let full = give_back(self.msqid, mtype, libc::IPC_NOWAIT)
                .is_err_and(|e| errno(&e) == libc::EAGAIN);
            if !full {
                state.taken = None;
            }
        }
        drop(state);
        self.shared.changed.notify_one();
    }
}

/// The helper thread.
fn run(msqid: i32, shared: &Shared) {
    // A thread that sleeps in the kernel must not take the process's signals (a handler
    // would run here, on a small stack, and msgrcv would be interrupted for nothing).
    let _ = event::block_all_signals();
    let mut buf = sys::MsgBuf::new(0);
    let mut state = shared.lock();
    loop {
        while !(state.stop || (state.armed && state.taken.is_none())) {
            state = shared.wait(state);
        }
        if state.stop {
            if let Some(mtype) = state.taken.take() {
                // The receiver found no room for it: wait for room (or the queue's removal).
                drop(state);
                let _ = give_back(msqid, mtype, 0);
            }
            return;
        }
        state.armed = false;
        drop(state);
        // Blocking, with room for no text: E2BIG leaves a message queued.
        let result = loop {
            match sys::recv(msqid, &mut buf, 0, 0, 0) {
                Err(e) if errno(&e) == libc::EINTR => continue,
                result => break result,
            }
        };
        state = shared.lock();
        let ended = match result {
            Ok(_) if state.stop => {
                drop(state);
                let mtype = buf.mtype();
                if give_back(msqid, mtype, libc::IPC_NOWAIT)
                    .is_err_and(|e| errno(&e) == libc::EAGAIN)
                {
                    let _ = give_back(msqid, mtype, 0);
                }
                return;
            }
            Ok(_) => {
                state.taken = Some(buf.mtype());
                None
            }
            Err(e) => match errno(&e) {
                libc::E2BIG => None,
                libc::EIDRM | libc::EINVAL => Some(Ended::Removed),
                other => Some(Ended::Failed(other)),
            },
        };
        if state.stop {
            return;
        }
        // A re-arm that came while we looked is answered by this signal.
        state.armed = false;
        state.ended = ended;
        state.signal();
        if ended.is_some() {
            return;
        }
    }
}

/// A sender's readiness: a `timerfd` that [`RoomTimer::arm`] sets to expire after a back-off
/// (from [`BACKOFF_MIN`] doubling up to [`BACKOFF_MAX`], as for timed calls), since nothing in
/// the kernel tells when a System V queue has room.
#[derive(Debug)]
pub(super) struct RoomTimer {
    timer: File,
    next: Duration,
}

impl RoomTimer {
    pub fn new() -> io::Result<RoomTimer> {
        Ok(RoomTimer {
            timer: event::timerfd()?,
            next: BACKOFF_MIN,
        })
    }

    /// The descriptor that becomes readable when the timer expires.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.timer.as_fd()
    }

    /// Sets the timer to expire after the current back-off, and doubles the back-off.
    pub fn arm(&mut self) -> io::Result<()> {
        event::arm_timer(&self.timer, self.next)?;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        Ok(())
    }

    /// A message went: the next wait starts with the shortest back-off again.
    pub fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }

    /// Consumes the timer's expiry.
    pub fn after_wake(&self) {
        let _ = event::consume(&self.timer);
    }
}
