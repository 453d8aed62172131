//! A robust, process-shared pthread mutex placed inside a segment.
//!
//! [`RobustMutex`] is a `pthread_mutex_t` initialised `PTHREAD_PROCESS_SHARED`,
//! `PTHREAD_MUTEX_ROBUST` and `PTHREAD_MUTEX_ERRORCHECK`, living in a 64-byte region of a
//! [`Segment`](ipc_core::Segment) (see [`LayoutBuilder::mutex`](crate::LayoutBuilder::mutex)).
//! Any thread of any process that maps the segment can lock it. Deadlines are on
//! `CLOCK_MONOTONIC` (`pthread_mutex_clocklock`), so changing the wall clock does not move them.
//!
//! # When the owner dies
//!
//! If a thread dies holding the lock (its process was killed, or the thread exited), the kernel
//! marks the lock, and the next locker gets [`LockError::OwnerDied`]. That locker **holds the
//! lock**; the data it protects may be half-updated. The protocol is:
//!
//! 1. repair the protected state (or check that it is consistent);
//! 2. call [`Recovery::mark_consistent`] (`pthread_mutex_consistent`), which turns the
//!    [`Recovery`] into an ordinary [`MutexGuard`];
//! 3. carry on, and unlock by dropping the guard.
//!
//! If the [`Recovery`] is dropped without step 2 (the state cannot be repaired, or the code
//! bailed out with `?`), the lock is released *unrecoverable*: every later attempt fails at once
//! with [`LockError::Unrecoverable`], in every process, rather than hanging or handing out
//! broken data. Only re-creating the segment makes it usable again.
//!
//! Do not retry the lock in a loop after `OwnerDied`: the caller already holds it, so the retry
//! is a self-deadlock (reported as [`LockError::Deadlock`] by these error-checking mutexes, or
//! an unbounded wait with other mutex types).
//!
//! Unmapping a segment while holding one of its locks defeats recovery: glibc links the mutexes
//! a thread holds into its *robust list* through the mutexes themselves, and the kernel walks
//! that list when the thread dies. A lock in memory that is no longer mapped is never marked
//! owner-died (and breaks the walk for the others), so its peers wait forever. The types here
//! rule it out in safe code: a [`MutexGuard`] borrows its [`RobustMutex`], which keeps the
//! mapping alive. Do not `mem::forget` a guard and then drop the segment.
//!
//! The owner is recorded as a kernel thread id, so recovery only works between processes in one
//! PID namespace. A guard is `!Send`: a pthread mutex must be unlocked by the thread that locked
//! it.
//!
//! # Trust: for cooperating processes only
//!
//! A `pthread_mutex_t` is glibc's object, not ours: while a thread holds it, glibc keeps the
//! links of that thread's robust list *inside the mutex* (absolute addresses of the holder's
//! other mutexes), and unlocking writes through them; its kind word selects code paths that
//! assert on values they do not expect. A process that can write the segment can therefore make
//! a holder's unlock write where it chose (a crash, or worse), or abort it. Nothing here can
//! validate glibc's words first. So:
//!
//! - use a `RobustMutex` only in segments that no untrusted process can write (mode `0600`,
//!   or a group of processes that trust each other);
//! - the ring channel does not use it: its producers' lock is a word of our own that a peer
//!   can corrupt (giving [`Error::Corrupted`]) but not turn into a write or a crash (see
//!   [`ring::lock`](crate::ring::lock)).
//!
//! Every wait can be bounded and told to watch a peer: [`RobustMutex::lock_with`] and
//! [`Condvar::wait_with`](crate::Condvar::wait_with) take a [`Wait`] deadline and an optional
//! [`Watch`], and give up with [`LockError::PeerGone`] within [`PEER_CHECK`] of that peer's
//! death.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::Ordering;
//!
//! use ipc_sync::{HeapSegment, LayoutBuilder, LockError, Shared};
//!
//! # fn main() -> Result<(), ipc_core::Error> {
//! let mut plan = LayoutBuilder::new();
//! let m = plan.mutex();
//! let counters = plan.bytes(16);
//! let shared = Shared::new(Arc::new(HeapSegment::new(plan.size(), "doc")));
//! let layout = plan.init(&shared)?;
//! let mutex = layout.mutex(m)?;
//!
//! // The protected state: two counters that must always be equal.
//! let at = layout.regions()[counters].offset;
//! let (a, b) = (shared.u64_at(at).unwrap(), shared.u64_at(at + 8).unwrap());
//!
//! let guard = match mutex.lock() {
//!     Ok(guard) => guard,
//!     Err(LockError::OwnerDied(recovery)) => {
//!         // We hold the lock, but a dead process may have left the state half-updated.
//!         b.store(a.load(Ordering::Relaxed), Ordering::Relaxed);
//!         recovery.mark_consistent()
//!     }
//!     // Unrecoverable, a deadlock, a system error: give up (dropping the error).
//!     Err(e) => return Err(e.into()),
//! };
//! a.fetch_add(1, Ordering::Relaxed);
//! b.fetch_add(1, Ordering::Relaxed);
//! drop(guard);
//!
//! assert_eq!(a.load(Ordering::Relaxed), b.load(Ordering::Relaxed));
//! # Ok(())
//! # }
//! ```
//!
//! # Region layout
//!
//! ```text
//! 0    pthread_mutex_t (40 bytes with glibc on x86_64)
//! 60   tag u32 "rmtx", stored (release) after pthread_mutex_init; `at` requires it
//! ```
//!
//! # References
//!
//! `pthread_mutexattr_setrobust(3)`, `pthread_mutex_consistent(3)`, `pthread_mutex_lock(3p)`,
//! `pthread_mutex_clocklock(3)`, `get_robust_list(2)`, the kernel's
//! `Documentation/locking/robust-futexes.rst`.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ipc_core::{Error, Result, Wait};

use crate::process::Watch;
use crate::sys::mem::Shared;
use crate::sys::pthread::{self, Acquire, RawMutex};

/// Bytes a mutex region takes (a `pthread_mutex_t` and a tag, rounded up to a cache line).
pub const MUTEX_REGION_SIZE: usize = 64;

/// How often a wait that watches a peer ([`RobustMutex::lock_with`],
/// [`Condvar::wait_with`](crate::Condvar::wait_with)) polls whether it still lives.
pub const PEER_CHECK: Duration = Duration::from_millis(25);

/// Offset of the "initialised" tag within the region.
const TAG_OFFSET: usize = MUTEX_REGION_SIZE - 4;
/// The tag: `b"rmtx"` as a little-endian word.
const TAG: u32 = u32::from_le_bytes(*b"rmtx");
/// Regions start on a cache line.
const REGION_ALIGN: usize = 64;

const _: () = assert!(
    MUTEX_REGION_SIZE >= pthread::MUTEX_SIZE,
    "a pthread_mutex_t must fit its region"
);
const _: () = assert!(
    pthread::MUTEX_SIZE <= TAG_OFFSET,
    "the tag must not overlap the pthread_mutex_t"
);
const _: () = assert!(REGION_ALIGN % pthread::MUTEX_ALIGN == 0);

/// A robust, process-shared mutex inside a segment (see the [module docs](self) for the
/// owner-died protocol).
///
/// It holds a clone of the [`Shared`] segment, so the mapping outlives the handle and every
/// guard borrowed from it. Handles are cheap to clone; all handles to one region (in any
/// process) are the same lock. `Send + Sync`: share it between threads freely; each locking
/// thread gets its own `!Send` guard.
#[derive(Clone)]
pub struct RobustMutex {
    // Holds a clone of the `Shared` segment and the address of the `pthread_mutex_t`.
    raw: RawMutex,
    offset: usize,
}

impl fmt::Debug for RobustMutex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RobustMutex")
            .field("segment", self.raw.shared().segment().id())
            .field("offset", &self.offset)
            .finish()
    }
}

/// Proof that the calling thread holds a [`RobustMutex`]; unlocks it when dropped.
///
/// `!Send` (and `!Sync`): the thread that locked must be the one that unlocks.
///
/// ```compile_fail,E0277
/// fn needs_send<T: Send>() {}
/// needs_send::<ipc_sync::MutexGuard<'static>>();
/// ```
#[must_use = "the mutex unlocks as soon as the guard is dropped"]
#[derive(Debug)]
pub struct MutexGuard<'a> {
    mutex: &'a RobustMutex,
    _not_send: PhantomData<*const ()>,
}

/// The lock of a [`RobustMutex`] whose previous owner died holding it: the calling thread holds
/// it now, and the protected state may be inconsistent.
///
/// Repair the state, then call [`Recovery::mark_consistent`]. Dropping a `Recovery` instead
/// unlocks the mutex and leaves it permanently unrecoverable: every later lock attempt, in every
/// process, fails with [`LockError::Unrecoverable`]. `!Send`, like [`MutexGuard`].
#[must_use = "repair the state and call mark_consistent; dropping it makes the mutex unrecoverable"]
#[derive(Debug)]
pub struct Recovery<'a> {
    mutex: &'a RobustMutex,
    _not_send: PhantomData<*const ()>,
}

impl<'a> Recovery<'a> {
    /// Declares the protected state repaired (`pthread_mutex_consistent`) and returns the
    /// ordinary guard: the mutex works normally again once it is unlocked.
    pub fn mark_consistent(self) -> MutexGuard<'a> {
        let mutex = self.mutex;
        // Ownership passes to the guard: no unlock here.
        std::mem::forget(self);
        let marked = mutex.raw.make_consistent();
        // Cannot fail: the mutex is robust and this thread holds it in the owner-died state
        // (only a peer overwriting the mutex's bytes could change that). Should it fail
        // anyway, the guard's unlock leaves the mutex unrecoverable: an error for later
        // lockers, never a hang.
        debug_assert!(marked.is_ok(), "{marked:?}");
        MutexGuard::new(mutex)
    }

    /// The mutex this recovery holds.
    pub fn mutex(&self) -> &'a RobustMutex {
        self.mutex
    }
}

impl Drop for Recovery<'_> {
    fn drop(&mut self) {
        // Unlocking without pthread_mutex_consistent makes glibc mark the mutex
        // ENOTRECOVERABLE and wake every waiter, who then fail instead of waiting forever.
        let unlocked = self.mutex.raw.unlock();
        debug_assert!(unlocked.is_ok(), "{unlocked:?}");
    }
}

/// A mutex's state as [`RobustMutex::state`] sees it, without taking it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockState {
    /// Nobody holds it.
    Free,
    /// Held by thread `tid` (in the pid namespace of the holder); `waiters` if others sleep on
    /// it.
    Held {
        /// Kernel thread id of the holder.
        tid: u32,
        /// Whether threads are parked waiting for it.
        waiters: bool,
    },
    /// Its holder died; the next locker gets `OwnerDied` and must repair.
    OwnerDied {
        /// Thread id of the dead holder (0 if the kernel cleared it).
        tid: u32,
    },
    /// A recovery was abandoned: every locker gets `Unrecoverable`.
    Unrecoverable,
    /// The region could not be read.
    Unknown,
}

/// Why a lock attempt did not simply return a guard.
#[must_use]
#[derive(Debug)]
pub enum LockError<'a> {
    /// The previous owner died holding the lock. The caller holds it now: repair the state and
    /// call [`Recovery::mark_consistent`]. Do not retry the lock.
    OwnerDied(Recovery<'a>),
    /// An owner died earlier and the state was never marked consistent: the mutex is unusable
    /// until the segment is re-created.
    Unrecoverable,
    /// Held elsewhere ([`RobustMutex::try_lock`] only).
    WouldBlock,
    /// The deadline passed while the mutex was held elsewhere.
    TimedOut,
    /// The calling thread already holds this mutex (`EDEADLK`): a relock that would otherwise
    /// wait forever.
    Deadlock,
    /// The peer the caller asked to watch ([`RobustMutex::lock_with`]) exited while the lock
    /// was held elsewhere. The caller does not hold the lock.
    PeerGone,
    /// Any other failure of the system call, with its `errno`.
    Sys(Error),
}

impl fmt::Display for LockError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(_) => f.write_str(
                "the previous owner of the lock died holding it; the state it protects must be \
                 repaired and the lock marked consistent",
            ),
            LockError::Unrecoverable => f.write_str(
                "the lock is unrecoverable: an owner died holding it and the state was never \
                 marked consistent",
            ),
            LockError::WouldBlock => f.write_str("the lock is held elsewhere"),
            LockError::TimedOut => f.write_str("timed out waiting for the lock"),
            LockError::Deadlock => f.write_str("this thread already holds the lock"),
            LockError::PeerGone => {
                f.write_str("the watched peer exited while waiting for the lock")
            }
            LockError::Sys(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for LockError<'_> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LockError::Sys(e) => Some(e),
            _ => None,
        }
    }
}

/// For callers that cannot handle a lock failure themselves (`?`):
///
/// - `OwnerDied` → [`Error::Corrupted`]. The [`Recovery`] is dropped unrepaired, so the mutex
///   becomes unrecoverable: a caller that can repair the state must match on
///   [`LockError::OwnerDied`] before converting.
/// - `Unrecoverable` → [`Error::Corrupted`]: shared state failed, the lock is unusable.
/// - `TimedOut` → [`Error::Timeout`].
/// - `WouldBlock` → [`Error::Timeout`]: a `try_lock` is a lock with a zero timeout, and like
///   `Timeout` it is transient ([`Error::is_transient`]).
/// - `Deadlock` → [`Error::Io`] with `EDEADLK` (a bug in the caller).
/// - `PeerGone` → [`Error::Disconnected`].
/// - `Sys(e)` → `e`.
impl From<LockError<'_>> for Error {
    fn from(e: LockError<'_>) -> Error {
        match e {
            LockError::OwnerDied(recovery) => {
                let what = format!(
                    "{}: the lock owner died holding it, the state was not repaired and the \
                     lock is now unrecoverable",
                    recovery.mutex().describe()
                );
                drop(recovery);
                Error::corrupted(what)
            }
            LockError::Unrecoverable => Error::corrupted(
                "the lock is unrecoverable: an owner died holding it and the state it protects \
                 was never marked consistent",
            ),
            LockError::TimedOut | LockError::WouldBlock => Error::Timeout,
            LockError::PeerGone => Error::Disconnected,
            LockError::Deadlock => Error::io(
                "pthread_mutex_lock: this thread already holds the lock",
                std::io::Error::from_raw_os_error(libc::EDEADLK),
            ),
            LockError::Sys(e) => e,
        }
    }
}

impl<'a> MutexGuard<'a> {
    fn new(mutex: &'a RobustMutex) -> MutexGuard<'a> {
        MutexGuard {
            mutex,
            _not_send: PhantomData,
        }
    }

    /// The mutex this guard holds (what a [`Condvar`](crate::Condvar) relocks after waiting).
    pub fn mutex(&self) -> &'a RobustMutex {
        self.mutex
    }
}

impl Drop for MutexGuard<'_> {
    fn drop(&mut self) {
        // Cannot fail: this thread holds the mutex (the guard is !Send).
        let unlocked = self.mutex.raw.unlock();
        debug_assert!(unlocked.is_ok(), "{unlocked:?}");
    }
}

/// The tag word of the region at `offset`, if the region is in bounds and aligned.
fn tag(shared: &Shared, offset: usize) -> Option<&AtomicU32> {
    shared.ptr_at(offset, MUTEX_REGION_SIZE, REGION_ALIGN)?;
    shared.u32_at(offset + TAG_OFFSET)
}

impl RobustMutex {
    /// Initialises a robust, process-shared, error-checking mutex in the
    /// [`MUTEX_REGION_SIZE`]-byte region at `offset` (a multiple of 64).
    ///
    /// Call it once, while the segment is not yet visible to other threads or processes (as
    /// [`LayoutBuilder::init`](crate::LayoutBuilder::init) does): initialising a mutex someone
    /// uses is undefined. A region initialised already is refused.
    ///
    /// Errors: [`Error::Incompatible`] if the region is out of bounds, misaligned or already
    /// initialised; [`Error::Io`] if `pthread_mutex_init` fails.
    pub fn init_at(shared: &Shared, offset: usize) -> Result<()> {
        let object = || format!("{} (mutex at offset {offset})", shared.segment().id());
        let Some(tag) = tag(shared, offset) else {
            return Err(Error::Incompatible {
                object: object(),
                reason: format!(
                    "a mutex needs {MUTEX_REGION_SIZE} bytes aligned to {REGION_ALIGN} inside the \
                     segment of {} bytes",
                    shared.len()
                ),
            });
        };
        if tag.load(Ordering::Acquire) != 0 {
            return Err(Error::Incompatible {
                object: object(),
                reason: "the region is initialised already".into(),
            });
        }
        RawMutex::init(shared, offset).map_err(|e| Error::io(object(), e))?;
        // Release: whoever sees the tag (acquire, in `at`) sees the initialised mutex.
        tag.store(TAG, Ordering::Release);
        Ok(())
    }

    /// The mutex initialised by [`RobustMutex::init_at`] at `offset`.
    ///
    /// Errors: [`Error::Corrupted`] if the region is out of bounds, misaligned, or holds no
    /// initialised mutex.
    pub fn at(shared: &Shared, offset: usize) -> Result<RobustMutex> {
        let id = shared.segment().id();
        let tag = tag(shared, offset).ok_or_else(|| {
            Error::corrupted(format!(
                "{id}: a mutex region at offset {offset} is out of bounds or not aligned to \
                 {REGION_ALIGN}"
            ))
        })?;
        // Acquire: pairs with the release in `init_at`.
        let found = tag.load(Ordering::Acquire);
        if found != TAG {
            return Err(Error::corrupted(format!(
                "{id}: no initialised mutex at offset {offset} (tag {found:#010x})"
            )));
        }
        let raw = RawMutex::new(shared, offset).ok_or_else(|| {
            Error::corrupted(format!("{id}: mutex at offset {offset} is out of bounds"))
        })?;
        Ok(RobustMutex { raw, offset })
    }

    /// Offset of the mutex's region in the segment.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// What the mutex looks like right now, for inspection tools: read without locking, so it
    /// may be stale by the time it is printed, and it changes nothing (taking the lock to look
    /// would consume an owner-died state).
    ///
    /// It reads glibc's lock word and owner field (`__lock` at offset 0: owner tid, bit 30 set
    /// when the owner died, bit 31 for waiters; `__owner` at offset 8, `INT_MAX - 1` once the
    /// mutex is unrecoverable), the layout of every 64-bit glibc target.
    pub fn state(&self) -> LockState {
        let shared = self.raw.shared();
        let (Some(lock), Some(owner)) =
            (shared.u32_at(self.offset), shared.u32_at(self.offset + 8))
        else {
            return LockState::Unknown;
        };
        let lock = lock.load(std::sync::atomic::Ordering::Relaxed);
        let owner = owner.load(std::sync::atomic::Ordering::Relaxed);
        const WAITERS: u32 = 0x8000_0000;
        const OWNER_DIED: u32 = 0x4000_0000;
        // glibc's PTHREAD_MUTEX_NOTRECOVERABLE (INT_MAX is PTHREAD_MUTEX_INCONSISTENT: held by
        // a locker that is repairing, shown as held).
        const NOT_RECOVERABLE: u32 = 0x7fff_fffe;
        let tid = lock & !(WAITERS | OWNER_DIED);
        if owner == NOT_RECOVERABLE {
            LockState::Unrecoverable
        } else if lock & OWNER_DIED != 0 {
            LockState::OwnerDied { tid }
        } else if tid == 0 {
            LockState::Free
        } else {
            LockState::Held {
                tid,
                waiters: lock & WAITERS != 0,
            }
        }
    }

    /// The segment the mutex lives in.
    pub fn shared(&self) -> &Shared {
        self.raw.shared()
    }

    /// `SEGMENT (mutex at offset N)`, for error messages.
    fn describe(&self) -> String {
        format!(
            "{} (mutex at offset {})",
            self.shared().segment().id(),
            self.offset
        )
    }

    /// Blocks until the calling thread holds the lock (`pthread_mutex_lock`).
    ///
    /// Errors: [`LockError::OwnerDied`] (the caller holds the lock; see the
    /// [module docs](self)), [`LockError::Unrecoverable`], [`LockError::Deadlock`],
    /// [`LockError::Sys`].
    pub fn lock(&self) -> std::result::Result<MutexGuard<'_>, LockError<'_>> {
        self.finish("pthread_mutex_lock", self.raw.lock())
    }

    /// Takes the lock only if that needs no waiting.
    ///
    /// This is `pthread_mutex_clocklock` with a deadline in the past, not
    /// `pthread_mutex_trylock`, which in glibc leaves an unrecoverable mutex locked for good.
    ///
    /// Errors: [`LockError::WouldBlock`] if held elsewhere, or as for [`RobustMutex::lock`].
    pub fn try_lock(&self) -> std::result::Result<MutexGuard<'_>, LockError<'_>> {
        self.finish("pthread_mutex_clocklock (try)", self.raw.try_lock())
    }

    /// Blocks for at most `timeout` (`pthread_mutex_clocklock` on `CLOCK_MONOTONIC`). A
    /// timeout too large to represent waits forever. A free mutex is taken even with a zero
    /// timeout.
    ///
    /// Errors: [`LockError::TimedOut`], or as for [`RobustMutex::lock`].
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> std::result::Result<MutexGuard<'_>, LockError<'_>> {
        self.lock_until(Instant::now().checked_add(timeout))
    }

    /// Blocks until `deadline` at the latest (`None`: forever). The deadline is absolute, so
    /// interruptions by signals do not extend it. A free mutex is taken even if the deadline
    /// has passed.
    ///
    /// Errors: [`LockError::TimedOut`], or as for [`RobustMutex::lock`].
    pub fn lock_until(
        &self,
        deadline: Option<Instant>,
    ) -> std::result::Result<MutexGuard<'_>, LockError<'_>> {
        match deadline {
            None => self.lock(),
            Some(deadline) => self.finish("pthread_mutex_clocklock", self.raw.lock_until(deadline)),
        }
    }

    /// Takes the lock, waiting as `wait` says ([`Wait::Never`] is [`RobustMutex::try_lock`]),
    /// and gives up with [`LockError::PeerGone`] once the process `peer` watches has exited
    /// while someone else still holds the lock: a process waiting for its peer's answer
    /// under this lock should not outlive that peer by more than [`PEER_CHECK`].
    ///
    /// The wait is cut into slices of at most [`PEER_CHECK`] (`pthread_mutex_clocklock` on
    /// `CLOCK_MONOTONIC` each), between which the peer's pidfd is polled.
    ///
    /// Errors: [`LockError::PeerGone`], [`LockError::TimedOut`], [`LockError::WouldBlock`]
    /// (for [`Wait::Never`]), or as for [`RobustMutex::lock`].
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use ipc_sync::{HeapSegment, LayoutBuilder, ProcessId, Shared, Watch};
    /// # let mut plan = LayoutBuilder::new();
    /// # let m = plan.mutex();
    /// # let shared = Shared::new(Arc::new(HeapSegment::new(plan.size(), "doc")));
    /// # let mutex = plan.init(&shared)?.mutex(m)?;
    /// use std::time::{Duration, Instant};
    /// use ipc_core::Wait;
    ///
    /// // The process whose work this lock guards (here: ourselves, who never die).
    /// let peer = Watch::open(ProcessId::current()).expect("alive");
    /// let deadline = Wait::Until(Instant::now() + Duration::from_secs(5));
    /// let guard = mutex.lock_with(deadline, Some(&peer)).map_err(ipc_core::Error::from)?;
    /// drop(guard);
    /// # Ok::<(), ipc_core::Error>(())
    /// ```
    pub fn lock_with(
        &self,
        wait: Wait,
        peer: Option<&Watch>,
    ) -> std::result::Result<MutexGuard<'_>, LockError<'_>> {
        let deadline = match (wait, peer) {
            (Wait::Never, _) => return self.try_lock(),
            (Wait::Forever, None) => return self.lock(),
            (Wait::Forever, Some(_)) => None,
            (Wait::Until(at), _) => Some(at),
        };
        loop {
            let slice_end = Instant::now() + PEER_CHECK;
            let until = match (deadline, peer) {
                (Some(d), Some(_)) => d.min(slice_end),
                (Some(d), None) => d,
                (None, _) => slice_end,
            };
            match self.raw.lock_until(until) {
                Acquire::TimedOut => {
                    if peer.is_some_and(|p| !p.is_alive()) {
                        return Err(LockError::PeerGone);
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Err(LockError::TimedOut);
                    }
                }
                outcome => return self.finish("pthread_mutex_clocklock", outcome),
            }
        }
    }

    fn finish(
        &self,
        op: &str,
        outcome: Acquire,
    ) -> std::result::Result<MutexGuard<'_>, LockError<'_>> {
        match outcome {
            Acquire::Locked => Ok(MutexGuard::new(self)),
            Acquire::OwnerDied => Err(LockError::OwnerDied(Recovery {
                mutex: self,
                _not_send: PhantomData,
            })),
            Acquire::Busy => Err(LockError::WouldBlock),
            Acquire::TimedOut => Err(LockError::TimedOut),
            Acquire::NotRecoverable => Err(LockError::Unrecoverable),
            Acquire::Deadlock => Err(LockError::Deadlock),
            Acquire::Failed(e) => Err(LockError::Sys(Error::io(
                format!("{op} {}", self.describe()),
                e,
            ))),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::HeapSegment;

    fn mutex() -> RobustMutex {
        let shared = Shared::new(Arc::new(HeapSegment::new(4096, "mutex-test")));
        RobustMutex::init_at(&shared, 64).unwrap();
        RobustMutex::at(&shared, 64).unwrap()
    }

    /// Makes the mutex's owner die: a thread locks it and exits without unlocking.
    fn die_holding(m: &RobustMutex) {
        std::thread::scope(|s| {
            s.spawn(|| {
                let guard = m.lock().expect("lock in the doomed thread");
                std::mem::forget(guard);
            })
            // An explicit join waits for the thread itself to end (`pthread_join`), after the
            // kernel has walked its robust list; the scope's implicit join only waits for the
            // closure to return.
            .join()
            .unwrap();
        });
    }

    fn describe(r: std::result::Result<MutexGuard<'_>, LockError<'_>>) -> String {
        match r {
            Ok(_) => "Ok".into(),
            Err(LockError::OwnerDied(_)) => "OwnerDied".into(),
            Err(e) => format!("{e:?}"),
        }
    }

    /// A real process to watch, and its watch; killed and reaped by `kill`.
    pub(crate) fn watched_child() -> (std::process::Child, Watch) {
        let child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .expect("spawn sleep");
        let id = crate::ProcessId {
            pid: child.id(),
            start_time: crate::process::start_time(child.id()).expect("child alive"),
        };
        (child, Watch::open(id).expect("child alive"))
    }

    #[test]
    fn lock_with_takes_a_free_mutex_and_bounds_a_held_one() {
        let m = mutex();
        let (mut child, peer) = watched_child();
        drop(m.lock_with(Wait::Forever, Some(&peer)).unwrap());
        drop(m.lock_with(Wait::Never, None).unwrap());
        let _g = m.lock().unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                assert_eq!(
                    describe(m.lock_with(Wait::Never, Some(&peer))),
                    "WouldBlock"
                );
                let soon = Instant::now() + Duration::from_millis(60);
                assert_eq!(
                    describe(m.lock_with(Wait::Until(soon), Some(&peer))),
                    "TimedOut"
                );
                assert!(Instant::now() >= soon);
            });
        });
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn lock_with_gives_up_when_the_watched_peer_dies() {
        let m = mutex();
        let (mut child, peer) = watched_child();
        let _g = m.lock().unwrap();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let deadline = Wait::Until(Instant::now() + Duration::from_secs(60));
                describe(m.lock_with(deadline, Some(&peer)))
            });
            child.kill().unwrap();
            child.wait().unwrap();
            // Bounded by the 60 s deadline at worst; PeerGone comes one slice after the death.
            assert_eq!(waiter.join().unwrap(), "PeerGone");
        });
        assert!(matches!(
            Error::from(LockError::PeerGone),
            Error::Disconnected
        ));
    }

    #[test]
    fn handles_are_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<RobustMutex>();
    }

    #[test]
    fn lock_unlock_relock() {
        let m = mutex();
        drop(m.lock().unwrap());
        drop(m.try_lock().unwrap());
        drop(m.lock_timeout(Duration::from_millis(10)).unwrap());
        drop(m.lock_until(None).unwrap());
        let g = m.lock().unwrap();
        assert_eq!(g.mutex().offset(), 64);
    }

    #[test]
    fn relock_by_the_owner_is_an_error_not_a_hang() {
        let m = mutex();
        let _g = m.lock().unwrap();
        assert!(matches!(m.lock(), Err(LockError::Deadlock)));
        assert!(matches!(
            m.lock_timeout(Duration::from_secs(5)),
            Err(LockError::Deadlock)
        ));
        assert!(matches!(m.try_lock(), Err(LockError::Deadlock)));
    }

    #[test]
    fn held_elsewhere_try_lock_would_block_and_timeout_times_out() {
        let m = mutex();
        let _g = m.lock().unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                assert!(matches!(m.try_lock(), Err(LockError::WouldBlock)));
                let start = Instant::now();
                let limit = Duration::from_millis(50);
                assert!(matches!(m.lock_timeout(limit), Err(LockError::TimedOut)));
                assert!(start.elapsed() >= limit);
                let past = Instant::now() - Duration::from_millis(1);
                assert!(matches!(m.lock_until(Some(past)), Err(LockError::TimedOut)));
            });
        });
    }

    #[test]
    fn free_mutex_is_taken_even_past_the_deadline() {
        let m = mutex();
        let past = Instant::now() - Duration::from_secs(1);
        drop(m.lock_until(Some(past)).unwrap());
        drop(m.lock_timeout(Duration::ZERO).unwrap());
    }

    #[test]
    fn lock_released_by_another_thread_is_taken_by_a_waiter() {
        let m = mutex();
        let g = m.lock().unwrap();
        std::thread::scope(|s| {
            let waiter = s.spawn(|| describe(m.lock_timeout(Duration::from_secs(30))));
            drop(g);
            assert_eq!(waiter.join().unwrap(), "Ok");
        });
    }

    #[test]
    fn owner_died_then_repair_and_mark_consistent() {
        let m = mutex();
        die_holding(&m);
        let recovery = match m.lock_timeout(Duration::from_secs(5)) {
            Err(LockError::OwnerDied(r)) => r,
            other => panic!("expected OwnerDied, got {}", describe(other)),
        };
        // We hold it: nobody else gets it.
        std::thread::scope(|s| {
            s.spawn(|| assert!(matches!(m.try_lock(), Err(LockError::WouldBlock))));
        });
        drop(recovery.mark_consistent());
        // Normal from now on, in this thread and others.
        drop(m.lock_timeout(Duration::from_secs(5)).unwrap());
        std::thread::scope(|s| {
            s.spawn(|| drop(m.lock_timeout(Duration::from_secs(5)).unwrap()));
        });
        drop(m.try_lock().unwrap());
    }

    #[test]
    fn state_reads_free_held_owner_died_and_unrecoverable_without_locking() {
        let m = mutex();
        assert_eq!(m.state(), LockState::Free);
        let guard = m.lock().unwrap();
        let me = crate::sys::process::gettid();
        assert_eq!(
            m.state(),
            LockState::Held {
                tid: me,
                waiters: false
            }
        );
        drop(guard);
        assert_eq!(m.state(), LockState::Free);
        die_holding(&m);
        assert!(matches!(m.state(), LockState::OwnerDied { .. }));
        // Looking did not consume the owner-died state.
        match m.lock_timeout(Duration::from_secs(5)) {
            Err(LockError::OwnerDied(r)) => drop(r),
            other => panic!("expected OwnerDied, got {}", describe(other)),
        }
        assert_eq!(m.state(), LockState::Unrecoverable);
    }

    #[test]
    fn owner_died_is_reported_by_try_lock_too() {
        let m = mutex();
        die_holding(&m);
        match m.try_lock() {
            Err(LockError::OwnerDied(r)) => drop(r.mark_consistent()),
            other => panic!("expected OwnerDied, got {}", describe(other)),
        }
        drop(m.try_lock().unwrap());
    }

    #[test]
    fn dropped_recovery_makes_the_mutex_unrecoverable() {
        let m = mutex();
        die_holding(&m);
        match m.lock_timeout(Duration::from_secs(5)) {
            Err(LockError::OwnerDied(r)) => drop(r),
            other => panic!("expected OwnerDied, got {}", describe(other)),
        }
        // Bounded forms first, so a regression fails instead of hanging.
        assert_eq!(
            describe(m.lock_timeout(Duration::from_secs(5))),
            "Unrecoverable"
        );
        assert_eq!(describe(m.try_lock()), "Unrecoverable");
        assert_eq!(describe(m.lock()), "Unrecoverable");
        std::thread::scope(|s| {
            s.spawn(|| assert_eq!(describe(m.lock()), "Unrecoverable"));
        });
    }

    #[test]
    fn try_lock_on_an_unrecoverable_mutex_does_not_wedge_it() {
        // Regression: glibc's pthread_mutex_trylock returns ENOTRECOVERABLE still holding the
        // lock word, after which other threads wait forever.
        let m = mutex();
        die_holding(&m);
        match m.lock_timeout(Duration::from_secs(5)) {
            Err(LockError::OwnerDied(r)) => drop(r),
            other => panic!("expected OwnerDied, got {}", describe(other)),
        }
        for _ in 0..3 {
            assert_eq!(describe(m.try_lock()), "Unrecoverable");
        }
        std::thread::scope(|s| {
            s.spawn(|| {
                assert_eq!(
                    describe(m.lock_timeout(Duration::from_secs(5))),
                    "Unrecoverable"
                );
                assert_eq!(describe(m.try_lock()), "Unrecoverable");
            });
        });
        assert_eq!(
            describe(m.lock_timeout(Duration::from_secs(5))),
            "Unrecoverable"
        );
    }

    #[test]
    fn owner_died_converted_with_question_mark_is_corrupted_and_unrecoverable() {
        let m = mutex();
        die_holding(&m);
        let err: Error = m.lock_timeout(Duration::from_secs(5)).unwrap_err().into();
        assert!(matches!(err, Error::Corrupted { .. }), "{err}");
        let err: Error = m.lock_timeout(Duration::from_secs(5)).unwrap_err().into();
        assert!(matches!(err, Error::Corrupted { .. }), "{err}");
    }

    #[test]
    fn lock_errors_convert_to_actionable_errors() {
        assert!(matches!(Error::from(LockError::TimedOut), Error::Timeout));
        assert!(Error::from(LockError::WouldBlock).is_transient());
        assert_eq!(
            Error::from(LockError::Deadlock).errno(),
            Some(libc::EDEADLK)
        );
        assert!(matches!(
            Error::from(LockError::Sys(Error::Full)),
            Error::Full
        ));
        assert!(
            LockError::Unrecoverable
                .to_string()
                .contains("unrecoverable")
        );
    }

    #[test]
    fn regions_are_checked() {
        let shared = Shared::new(Arc::new(HeapSegment::new(4096, "mutex-test")));
        // Never initialised: all zeroes.
        assert!(matches!(
            RobustMutex::at(&shared, 0),
            Err(Error::Corrupted { .. })
        ));
        // Misaligned, out of bounds, overflowing.
        for offset in [8, 4096 - 32, 4096, usize::MAX - 3] {
            assert!(matches!(
                RobustMutex::init_at(&shared, offset),
                Err(Error::Incompatible { .. })
            ));
            assert!(matches!(
                RobustMutex::at(&shared, offset),
                Err(Error::Corrupted { .. })
            ));
        }
        RobustMutex::init_at(&shared, 4096 - 64).unwrap();
        assert!(matches!(
            RobustMutex::init_at(&shared, 4096 - 64),
            Err(Error::Incompatible { .. })
        ));
        drop(RobustMutex::at(&shared, 4096 - 64).unwrap().lock().unwrap());
    }
}
