//! The `sem_*` calls of named semaphores (not in `nix`), each behind a safe method of
//! [`RawSemaphore`], which owns the `sem_t *` that `sem_open` returned.

use std::ffi::CStr;
use std::fmt;
use std::ptr::NonNull;
use std::time::Duration;

use nix::errno::Errno;

unsafe extern "C" {
    /// `sem_clockwait(3)` (glibc 2.30): `sem_timedwait` against a chosen clock. Not in the
    /// `libc` crate yet.
    fn sem_clockwait(
        sem: *mut libc::sem_t,
        clock: libc::clockid_t,
        abstime: *const libc::timespec,
    ) -> libc::c_int;
}

/// A named semaphore opened with `sem_open`; `sem_close` when dropped.
///
/// glibc maps the semaphore (`/dev/shm/sem.NAME`) and keeps one mapping per semaphore and
/// process, counting `sem_open`s: two values for the same name share the pointer, and each
/// `sem_close` drops one count.
pub struct RawSemaphore {
    sem: NonNull<libc::sem_t>,
}

// SAFETY: the pointer designates a process-shared semaphore in a shared mapping that stays
// mapped until `sem_close` (in `Drop`, once per `sem_open`); `sem_close` may run on any thread.
unsafe impl Send for RawSemaphore {}
// SAFETY: `sem_wait`, `sem_trywait`, `sem_clockwait`, `sem_post` and `sem_getvalue` are
// thread-safe (POSIX: the semaphore is shared even between processes) and take the pointer
// only; nothing in this type is mutated through `&self`.
unsafe impl Sync for RawSemaphore {}

fn opened(sem: *mut libc::sem_t) -> Result<RawSemaphore, Errno> {
    if sem == libc::SEM_FAILED {
        return Err(Errno::last());
    }
    NonNull::new(sem)
        .map(|sem| RawSemaphore { sem })
        .ok_or(Errno::EINVAL)
}

fn check(ret: libc::c_int) -> Result<(), Errno> {
    if ret == 0 { Ok(()) } else { Err(Errno::last()) }
}

impl RawSemaphore {
    /// `sem_open(name, O_CREAT | O_EXCL, mode, value)`. The C library applies the umask to
    /// `mode`. `value` must not exceed `SEM_VALUE_MAX` (else `EINVAL`).
    pub fn create(name: &CStr, mode: u32, value: u32) -> Result<RawSemaphore, Errno> {
        // SAFETY:
        // - `name` is NUL-terminated and outlives the call;
        // - with `O_CREAT`, `sem_open` reads two more arguments, a `mode_t` and an
        //   `unsigned int`, passed here as `c_uint` (what `mode_t` is on Linux and what the
        //   variadic promotion of both is).
        let sem = unsafe {
            libc::sem_open(
                name.as_ptr(),
                libc::O_CREAT | libc::O_EXCL,
                mode as libc::c_uint,
                value as libc::c_uint,
            )
        };
        opened(sem)
    }

    /// `sem_open(name, 0)`: an existing semaphore (glibc opens it `O_RDWR | O_NOFOLLOW`).
    pub fn open(name: &CStr) -> Result<RawSemaphore, Errno> {
        // SAFETY: `name` is NUL-terminated and outlives the call; without `O_CREAT` no
        // variadic argument is read.
        let sem = unsafe { libc::sem_open(name.as_ptr(), 0) };
        opened(sem)
    }

    /// The address of the semaphore in this process, to find its mapping (and so the file it
    /// maps) in `/proc/self/maps`.
    pub fn address(&self) -> usize {
        self.sem.as_ptr() as usize
    }

    /// `sem_wait`: blocks until the value is positive, then decrements it. `EINTR` is returned.
    pub fn wait(&self) -> Result<(), Errno> {
        // SAFETY: `self.sem` came from `sem_open` and stays valid until `Drop`.
        check(unsafe { libc::sem_wait(self.sem.as_ptr()) })
    }

    /// `sem_trywait`: `EAGAIN` when the value is zero.
    pub fn try_wait(&self) -> Result<(), Errno> {
        // SAFETY: `self.sem` came from `sem_open` and stays valid until `Drop`.
        check(unsafe { libc::sem_trywait(self.sem.as_ptr()) })
    }

    /// `sem_clockwait(CLOCK_MONOTONIC)` with a deadline `left` from now: `ETIMEDOUT` when it
    /// passes (after one attempt, also for `left == 0`), `EINTR` on a signal. The monotonic
    /// clock is the one `Instant` reads, and a change of the wall clock does not move it.
    pub fn wait_for(&self, left: Duration) -> Result<(), Errno> {
        let deadline = monotonic_after(left)?;
        // SAFETY:
        // - `self.sem` came from `sem_open` and stays valid until `Drop`;
        // - `deadline` is a valid `timespec` (`tv_nsec` < 1e9) that outlives the call.
        check(unsafe { sem_clockwait(self.sem.as_ptr(), libc::CLOCK_MONOTONIC, &deadline) })
    }

    /// `sem_post`: `EOVERFLOW` at `SEM_VALUE_MAX`.
    pub fn post(&self) -> Result<(), Errno> {
        // SAFETY: `self.sem` came from `sem_open` and stays valid until `Drop`.
        check(unsafe { libc::sem_post(self.sem.as_ptr()) })
    }

    /// `sem_getvalue` (glibc never reports waiters as a negative value).
    pub fn value(&self) -> Result<i32, Errno> {
        let mut value: libc::c_int = 0;
        // SAFETY: `self.sem` came from `sem_open` and is valid; `value` is a writable int.
        check(unsafe { libc::sem_getvalue(self.sem.as_ptr(), &mut value) })?;
        Ok(value)
    }
}

impl Drop for RawSemaphore {
    fn drop(&mut self) {
        // SAFETY: `self.sem` came from `sem_open` and is closed exactly once, here; no method
        // can run after `drop`.
        unsafe {
            libc::sem_close(self.sem.as_ptr());
        }
    }
}

impl fmt::Debug for RawSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RawSemaphore").field(&self.sem).finish()
    }
}

/// `sem_unlink(name)`.
pub fn unlink(name: &CStr) -> Result<(), Errno> {
    // SAFETY: `name` is NUL-terminated and outlives the call.
    check(unsafe { libc::sem_unlink(name.as_ptr()) })
}

/// `CLOCK_MONOTONIC` now plus `left`, as an absolute `timespec` (saturating far in the future).
fn monotonic_after(left: Duration) -> Result<libc::timespec, Errno> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a writable `timespec`; `CLOCK_MONOTONIC` always exists on Linux.
    check(unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) })?;
    let nanos = now.tv_nsec as u64 + u64::from(left.subsec_nanos());
    let secs = i64::try_from(left.as_secs())
        .ok()
        .and_then(|s| s.checked_add(now.tv_sec))
        .and_then(|s| s.checked_add((nanos / 1_000_000_000) as i64));
    Ok(match secs {
        Some(secs) => libc::timespec {
            tv_sec: secs,
            tv_nsec: (nanos % 1_000_000_000) as libc::c_long,
        },
        None => libc::timespec {
            tv_sec: libc::time_t::MAX,
            tv_nsec: 999_999_999,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_is_normalised_and_saturates() {
        let d = monotonic_after(Duration::from_nanos(999_999_999)).unwrap();
        assert!((0..1_000_000_000).contains(&d.tv_nsec));
        let far = monotonic_after(Duration::MAX).unwrap();
        assert_eq!(far.tv_sec, libc::time_t::MAX);
    }
}
