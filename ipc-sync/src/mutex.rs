//! STUB — to be replaced: robust process-shared pthread mutex placed in a segment.
use std::time::{Duration, Instant};

use ipc_core::Result;

use crate::sys::mem::Shared;

/// Bytes a mutex region takes (a `pthread_mutex_t` rounded up to a cache line).
pub const MUTEX_REGION_SIZE: usize = 64;

/// A robust, process-shared mutex inside a segment.
#[derive(Debug)]
pub struct RobustMutex {
    _shared: Shared,
}

/// Holds the lock; unlocks on drop.
#[must_use]
#[derive(Debug)]
pub struct MutexGuard<'a> {
    _m: &'a RobustMutex,
}

/// Holds the lock of a mutex whose previous owner died.
#[must_use]
#[derive(Debug)]
pub struct Recovery<'a> {
    _m: &'a RobustMutex,
}

impl<'a> Recovery<'a> {
    /// Marks the state repaired.
    pub fn mark_consistent(self) -> MutexGuard<'a> {
        todo!()
    }
}

/// Why a lock was not simply acquired.
#[must_use]
#[derive(Debug)]
pub enum LockError<'a> {
    /// The previous owner died holding it.
    OwnerDied(Recovery<'a>),
    /// Not recoverable.
    Unrecoverable,
    /// Held elsewhere (`try_lock`).
    WouldBlock,
    /// Deadline passed.
    TimedOut,
    /// Other failure.
    Sys(ipc_core::Error),
}

impl RobustMutex {
    /// Initialises a mutex at `offset`.
    pub fn init_at(_shared: &Shared, _offset: usize) -> Result<()> {
        todo!()
    }
    /// The mutex at `offset`.
    pub fn at(_shared: &Shared, _offset: usize) -> Result<RobustMutex> {
        todo!()
    }
    /// Locks.
    pub fn lock(&self) -> std::result::Result<MutexGuard<'_>, LockError<'_>> {
        todo!()
    }
    /// Tries.
    pub fn try_lock(&self) -> std::result::Result<MutexGuard<'_>, LockError<'_>> {
        todo!()
    }
    /// Times out.
    pub fn lock_timeout(&self, _d: Duration) -> std::result::Result<MutexGuard<'_>, LockError<'_>> {
        todo!()
    }
    /// Deadline (`None`: forever).
    pub fn lock_until(
        &self,
        _deadline: Option<Instant>,
    ) -> std::result::Result<MutexGuard<'_>, LockError<'_>> {
        todo!()
    }
}
