//! The synchronisation shared memory lacks, and the shared-memory channel built on it.
//!
//! - [`RobustMutex`] and [`Condvar`]: a process-shared, robust pthread mutex and a futex-based
//!   condition variable, placed inside any [`Segment`](ipc_core::Segment) at offsets recorded in
//!   the segment's [layout header](layout). A process killed while holding the lock does not
//!   wedge the others: the next locker is told, repairs, and marks the lock consistent.
//! - [`ring`]: a ring of variable-length records in a segment, single- or multi-producer,
//!   zero-copy (`loan` / `commit`, read in place), with busy, spin-then-park and park waiting,
//!   that reports a dead peer as [`Disconnected`](ipc_core::Error::Disconnected) and anything
//!   inconsistent it reads from the segment as [`Corrupted`](ipc_core::Error::Corrupted).
//!
//! The shared-memory backends (`ipc-posix`, `ipc-sysv`) expose the ring as the `posix-shm:` and
//! `sysv-shm:` transports.
#![deny(unsafe_code)]

pub mod condvar;
pub mod layout;
pub mod mutex;
pub mod process;
pub mod ring;
mod sys;

pub use condvar::{Condvar, WaitOutcome};
pub use layout::{Layout, LayoutBuilder, LayoutKind, Region, RegionKind};
pub use mutex::{LockError, LockState, MutexGuard, Recovery, RobustMutex};
pub use process::{ProcessId, Watch};
pub use sys::mem::{HeapSegment, Shared};

/// Futex calls on a 32-bit word in shared memory (for code building its own waiting on a
/// segment, such as benchmarks' raw baselines).
pub mod futex {
    pub use crate::sys::futex::{Woke, wait, wake, wake_all};
}
