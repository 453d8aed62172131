//! Robust, process-shared `pthread_mutex_t` placed in shared memory: `pthread_mutex_init`,
//! `pthread_mutex_lock` / `trylock` / `clocklock` (CLOCK_MONOTONIC), `unlock`, `consistent`.
//!
//! # Safety
//!
//! What every call here relies on:
//!
//! - The `pthread_mutex_t` lies inside a live mapping: [`RawMutex`] holds a [`Shared`] (which
//!   keeps the segment mapped) and was built from a pointer [`Shared::ptr_at`] checked for bounds
//!   and alignment. A `pthread_mutex_t` that lives in shared memory must never move; it does not,
//!   since it is only ever reached through its address in the mapping.
//! - The mutex was initialised by [`RawMutex::init`] (robust, process-shared, error-checking).
//!   The safe layer ([`crate::mutex`]) checks a tag written after initialisation before it builds
//!   a [`RawMutex`]; all-zero memory is also a valid (default, non-robust) glibc mutex, so even a
//!   missed check is not undefined behaviour in practice.
//! - glibc keeps the calling thread's *robust list* in the mutexes it holds (`__list`): while a
//!   thread holds a robust mutex, that mutex carries pointers into the owner's address space,
//!   which only the owner's glibc and, when the owner dies, the kernel follow. Other processes
//!   never dereference them. A peer that overwrites a held mutex's bytes could make the owner's
//!   glibc follow a bad pointer when it unlocks: like every pthread object in shared memory, this
//!   trusts the processes sharing the segment not to scribble over it (they already share its
//!   owner's uid and mode, see the segment's permissions).
//! - The owner is a thread id stored in the futex word: robust recovery works between processes
//!   of one PID namespace only.
//! - Unlocking is safe to offer as a safe function because these mutexes are robust and
//!   error-checking: glibc checks the owner and returns `EPERM` to a thread that does not hold
//!   the mutex, instead of corrupting it.
//!
//! # References
//!
//! `pthread_mutexattr_setrobust(3)`, `pthread_mutexattr_setpshared(3)`,
//! `pthread_mutex_consistent(3)`, `pthread_mutex_lock(3p)`, `pthread_mutex_clocklock(3)`
//! (glibc 2.30), `get_robust_list(2)`.

use std::io;
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use crate::sys::mem::Shared;

/// Size of a `pthread_mutex_t` on this target.
pub const MUTEX_SIZE: usize = size_of::<libc::pthread_mutex_t>();
/// Alignment of a `pthread_mutex_t` on this target.
pub const MUTEX_ALIGN: usize = align_of::<libc::pthread_mutex_t>();

// `libc` does not declare it (glibc >= 2.30; POSIX.1-2024).
unsafe extern "C" {
    fn pthread_mutex_clocklock(
        mutex: *mut libc::pthread_mutex_t,
        clockid: libc::clockid_t,
        abstime: *const libc::timespec,
    ) -> libc::c_int;
}

/// How a lock attempt ended.
#[derive(Debug)]
pub enum Acquire {
    /// The caller holds the lock.
    Locked,
    /// `EOWNERDEAD`: the caller holds the lock, the previous owner died holding it.
    OwnerDied,
    /// `EBUSY` (`trylock`): held by someone else.
    Busy,
    /// `ETIMEDOUT`: the deadline passed.
    TimedOut,
    /// `ENOTRECOVERABLE`: an owner died and the state was never marked consistent.
    NotRecoverable,
    /// `EDEADLK`: the calling thread already holds it.
    Deadlock,
    /// Anything else, with its errno.
    Failed(io::Error),
}

impl Acquire {
    fn from_rc(rc: libc::c_int) -> Acquire {
        match rc {
            0 => Acquire::Locked,
            libc::EOWNERDEAD => Acquire::OwnerDied,
            libc::EBUSY => Acquire::Busy,
            libc::ETIMEDOUT => Acquire::TimedOut,
            libc::ENOTRECOVERABLE => Acquire::NotRecoverable,
            libc::EDEADLK => Acquire::Deadlock,
            e => Acquire::Failed(io::Error::from_raw_os_error(e)),
        }
    }
}

/// A `pthread_mutex_t` at a checked place in a mapped segment.
#[derive(Clone)]
pub struct RawMutex {
    // Keeps the mapping (and so `ptr`) alive.
    shared: Shared,
    ptr: NonNull<libc::pthread_mutex_t>,
}

// SAFETY: the pointee is a process-shared pthread mutex, designed to be operated on
// concurrently by any thread of any process; `RawMutex` itself holds only a `Shared` (`Send`)
// and the address. Which thread may *unlock* is enforced by glibc (error-checking mutexes
// return `EPERM` to non-owners) and, above this, by the `!Send` guard types.
unsafe impl Send for RawMutex {}
// SAFETY: as for `Send`; every method takes `&self` and goes through the pthread functions,
// which synchronise internally.
unsafe impl Sync for RawMutex {}

impl std::fmt::Debug for RawMutex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawMutex")
            .field("segment", self.shared.segment().id())
            .field("ptr", &self.ptr)
            .finish()
    }
}

/// `pthread_*` functions return the error number instead of setting `errno`.
fn check(op: &str, rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        let e = io::Error::from_raw_os_error(rc);
        Err(io::Error::new(e.kind(), format!("{op}: {e}")))
    }
}

impl RawMutex {
    /// The mutex at `offset`, if `MUTEX_SIZE` bytes there are in bounds and aligned. Does not
    /// check that it was initialised (see the module's safety notes).
    pub fn new(shared: &Shared, offset: usize) -> Option<RawMutex> {
        let ptr = shared.ptr_at(offset, MUTEX_SIZE, MUTEX_ALIGN)?;
        Some(RawMutex {
            shared: shared.clone(),
            ptr: NonNull::new(ptr.cast())?,
        })
    }

    /// The segment the mutex lives in.
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Initialises the mutex at `offset` (`pthread_mutex_init`) as process-shared
    /// (`PTHREAD_PROCESS_SHARED`), robust (`PTHREAD_MUTEX_ROBUST`) and error-checking
    /// (`PTHREAD_MUTEX_ERRORCHECK`: a relock by the owner is `EDEADLK`, not a hang).
    ///
    /// The caller must make sure no thread of any process uses the mutex meanwhile (the
    /// segment is not published yet); `pthread_mutex_init` over a mutex in use is undefined.
    pub fn init(shared: &Shared, offset: usize) -> io::Result<()> {
        let Some(mutex) = RawMutex::new(shared, offset) else {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        };
        let mut attr = MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        // SAFETY: `attr` is writable storage for one attribute object, initialised by the call.
        check("pthread_mutexattr_init", unsafe {
            libc::pthread_mutexattr_init(attr.as_mut_ptr())
        })?;
        let attr_ptr = attr.as_mut_ptr();
        let configured = (|| {
            // SAFETY: `attr_ptr` points to the attribute object initialised above.
            check("pthread_mutexattr_setpshared", unsafe {
                libc::pthread_mutexattr_setpshared(attr_ptr, libc::PTHREAD_PROCESS_SHARED)
            })?;
            // SAFETY: as above.
            check("pthread_mutexattr_setrobust", unsafe {
                libc::pthread_mutexattr_setrobust(attr_ptr, libc::PTHREAD_MUTEX_ROBUST)
            })?;
            // SAFETY: as above.
            check("pthread_mutexattr_settype", unsafe {
                libc::pthread_mutexattr_settype(attr_ptr, libc::PTHREAD_MUTEX_ERRORCHECK)
            })?;
            // SAFETY:
            // - `mutex.ptr` is in bounds, aligned and mapped (checked by `RawMutex::new`; the
            //   mapping is kept alive by `mutex.shared`);
            // - nobody uses the mutex during initialisation (the caller's contract above);
            // - `attr_ptr` is an initialised attribute object.
            check("pthread_mutex_init", unsafe {
                libc::pthread_mutex_init(mutex.ptr.as_ptr(), attr_ptr)
            })
        })();
        // SAFETY: `attr_ptr` is initialised and not used after this; destroying the attribute
        // object does not affect mutexes initialised with it.
        unsafe { libc::pthread_mutexattr_destroy(attr_ptr) };
        configured
    }

    /// `pthread_mutex_lock`: blocks until the calling thread holds the mutex.
    pub fn lock(&self) -> Acquire {
        loop {
            // SAFETY: `self.ptr` is a live, aligned mutex in the mapping (see the module notes).
            let rc = unsafe { libc::pthread_mutex_lock(self.ptr.as_ptr()) };
            // POSIX forbids EINTR here, glibc never returns it; retried for safety's sake.
            if rc != libc::EINTR {
                return Acquire::from_rc(rc);
            }
        }
    }

    /// Takes the mutex only if that needs no waiting: `pthread_mutex_clocklock` with a deadline
    /// in the past, whose `ETIMEDOUT` means `EBUSY`.
    ///
    /// Not `pthread_mutex_trylock`: on an unrecoverable robust mutex glibc's trylock (seen with
    /// glibc 2.36, the code is the same in later sources) acquires the lock word, then tests the result of its compare-and-swap (0 on
    /// success) against its own thread id before releasing it, so it returns `ENOTRECOVERABLE`
    /// *still holding the lock word*, off its robust list: the mutex then blocks every other
    /// locker forever, even after the thread exits. The timed lock releases it correctly, and
    /// with a negative `tv_sec` it gives up after one attempt without setting `FUTEX_WAITERS`.
    pub fn try_lock(&self) -> Acquire {
        let past = libc::timespec {
            tv_sec: -1,
            tv_nsec: 0,
        };
        match self.clocklock(&past) {
            Acquire::TimedOut => Acquire::Busy,
            other => other,
        }
    }

    /// `pthread_mutex_clocklock(CLOCK_MONOTONIC)`: blocks until the calling thread holds the
    /// mutex or `deadline` passes. A mutex free now is taken even if the deadline has passed.
    /// `EINTR` is retried with the same (absolute) deadline.
    pub fn lock_until(&self, deadline: Instant) -> Acquire {
        self.clocklock(&monotonic_deadline(deadline))
    }

    fn clocklock(&self, abstime: &libc::timespec) -> Acquire {
        loop {
            // SAFETY:
            // - `self.ptr` is a live, aligned mutex in the mapping (see the module notes);
            // - `abstime` is a valid, normalised timespec that lives across the call.
            let rc = unsafe {
                pthread_mutex_clocklock(self.ptr.as_ptr(), libc::CLOCK_MONOTONIC, abstime)
            };
            // POSIX forbids EINTR here; retried, with the same absolute deadline, all the same.
            if rc != libc::EINTR {
                return Acquire::from_rc(rc);
            }
        }
    }

    /// `pthread_mutex_unlock`. Fails (`EPERM`) unless the calling thread holds the mutex.
    /// Unlocking after `EOWNERDEAD` without [`RawMutex::make_consistent`] makes the mutex
    /// permanently unrecoverable (`ENOTRECOVERABLE` for every later locker).
    pub fn unlock(&self) -> io::Result<()> {
        // SAFETY: as for `lock`; for a robust error-checking mutex glibc checks that the caller
        // owns it and fails with EPERM otherwise.
        check("pthread_mutex_unlock", unsafe {
            libc::pthread_mutex_unlock(self.ptr.as_ptr())
        })
    }

    /// `pthread_mutex_consistent`: after `EOWNERDEAD`, declares the protected state repaired.
    /// Fails (`EINVAL`) if the mutex is not in the owner-died state.
    pub fn make_consistent(&self) -> io::Result<()> {
        // SAFETY: as for `lock`.
        check("pthread_mutex_consistent", unsafe {
            libc::pthread_mutex_consistent(self.ptr.as_ptr())
        })
    }
}

/// `CLOCK_MONOTONIC` now.
fn monotonic_now() -> libc::timespec {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer for the call; CLOCK_MONOTONIC always exists on Linux,
    // so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts
}

/// `deadline` as an absolute `CLOCK_MONOTONIC` time (the clock `Instant` reads on Linux),
/// saturating far in the future. Never later than `deadline`.
fn monotonic_deadline(deadline: Instant) -> libc::timespec {
    let now = monotonic_now();
    // Measured after the clock read: the result errs early, never late.
    let remaining = deadline.saturating_duration_since(Instant::now());
    add(now, remaining)
}

fn add(ts: libc::timespec, d: Duration) -> libc::timespec {
    let secs = libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX);
    let mut tv_sec = ts.tv_sec.saturating_add(secs);
    let mut tv_nsec = ts.tv_nsec + d.subsec_nanos() as libc::c_long;
    if tv_nsec >= 1_000_000_000 {
        tv_nsec -= 1_000_000_000;
        tv_sec = tv_sec.saturating_add(1);
    }
    libc::timespec { tv_sec, tv_nsec }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_are_normalised_and_saturate() {
        let ts = libc::timespec {
            tv_sec: 5,
            tv_nsec: 999_999_999,
        };
        let t = add(ts, Duration::new(1, 2));
        assert_eq!((t.tv_sec, t.tv_nsec), (7, 1));
        let t = add(ts, Duration::MAX);
        assert_eq!(t.tv_sec, libc::time_t::MAX);
        assert!(t.tv_nsec < 1_000_000_000);
    }

    #[test]
    fn monotonic_deadline_matches_instant() {
        let now = monotonic_now();
        let ts = monotonic_deadline(Instant::now() + Duration::from_secs(2));
        let diff = (ts.tv_sec - now.tv_sec) as f64 + (ts.tv_nsec - now.tv_nsec) as f64 / 1e9;
        assert!((1.9..=2.1).contains(&diff), "{diff}");
    }
}
