//! How a FIFO receiver opened before any writer learns that one came, without `poll(2)` on
//! the FIFO.
//!
//! Until a writer opens a FIFO, its reader reads end of file, and `poll` is the only call that
//! tells "no writer yet" from "a writer came and went" (`POLLHUP` only for the latter). But
//! the first `poll`, `select` or `epoll` on a pipe sets its `poll_usage` for the pipe's
//! lifetime (Linux 5.16 on), and from then on every `write` wakes the readers' wait queue
//! (spinlock, interrupts off) even when the pipe was not empty. Our FIFO receiver used to wait
//! for its first writer that way, and the bench's 64 B FIFO stream then cost our sender 1.32x
//! the raw loop's CPU per message (1.11x without; `docs/measurements/pipe-poll-usage.md`).
//!
//! So a [`WriterWatch`] (an inotify watch on the FIFO's path, made before the receiver opens
//! it) tells of each open and of each writer's close. Reads without waiting tell the rest: data,
//! `EAGAIN` (a writer holds the FIFO open) or end of file (none does). Where inotify is not
//! available (`fs.inotify.max_user_instances` reached, a file system without it), the
//! receiver waits in `poll` as before.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

/// Reports the opens of a FIFO and the closes of its writers (see the module documentation).
#[derive(Debug)]
pub struct WriterWatch {
    inotify: Inotify,
}

impl WriterWatch {
    /// Watches the FIFO at `path`; `None` where inotify refuses. To miss no writer, make it
    /// before opening the FIFO for reading: until a reader has it open, no writer can open it.
    pub fn on(path: &Path) -> Option<WriterWatch> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).ok()?;
        inotify
            .add_watch(path, AddWatchFlags::IN_OPEN | AddWatchFlags::IN_CLOSE_WRITE)
            .ok()?;
        Some(WriterWatch { inotify })
    }

    /// Takes the events reported since the last call (see [`Seen`]); `None` if the watch
    /// can no longer be trusted (events were lost, the watch was removed, or reading it
    /// failed).
    pub(crate) fn take_events(&self) -> Option<Seen> {
        let mut seen = Seen::Nothing;
        loop {
            let events = match self.inotify.read_events() {
                Ok(events) => events,
                Err(Errno::EAGAIN) => return Some(seen),
                Err(Errno::EINTR) => continue,
                Err(_) => return None,
            };
            for event in events {
                if event
                    .mask
                    .intersects(AddWatchFlags::IN_Q_OVERFLOW | AddWatchFlags::IN_IGNORED)
                {
                    return None;
                }
                if event.mask.contains(AddWatchFlags::IN_CLOSE_WRITE) {
                    seen = Seen::WriterClosed;
                } else if seen == Seen::Nothing {
                    seen = Seen::Opened;
                }
            }
        }
    }
}

/// What a [`WriterWatch`] reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seen {
    Nothing,
    /// Someone opened the FIFO: a writer may be there now, which a read tells.
    Opened,
    /// A writer closed it (so one came, and may have gone).
    WriterClosed,
}

/// Readable when there are events to take.
impl AsFd for WriterWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inotify.as_fd()
    }
}
