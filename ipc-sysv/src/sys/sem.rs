//! System V semaphore calls: `semget`, `semop` / `semtimedop`, `semctl`.
//!
//! Every function returns the raw OS error; classifying it (and retrying `EINTR`, which the
//! kernel never restarts for `semop`/`semtimedop`) is the caller's job.

use std::io;
use std::mem::MaybeUninit;
use std::time::Duration;

use libc::{c_int, c_short, c_ushort};

unsafe extern "C" {
    // Not bound by the `libc` crate; glibc and musl both export it.
    fn semtimedop(
        semid: c_int,
        sops: *mut libc::sembuf,
        nsops: libc::size_t,
        timeout: *const libc::timespec,
    ) -> c_int;
}

fn check(ret: c_int) -> io::Result<c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `semget(key, nsems, flags)`: the id of the set.
pub fn semget(key: libc::key_t, nsems: c_int, flags: c_int) -> io::Result<c_int> {
    // SAFETY: plain integer arguments; no memory is passed.
    check(unsafe { libc::semget(key, nsems, flags) })
}

/// One operation of a `semop` call, in the kernel's layout.
pub fn sembuf(index: u16, delta: i16, flags: c_short) -> libc::sembuf {
    libc::sembuf {
        sem_num: index as c_ushort,
        sem_op: delta as c_short,
        sem_flg: flags,
    }
}

/// `semop(id, ops)` when `timeout` is `None`, else `semtimedop(id, ops, timeout)`.
/// The operations are applied atomically, all or none.
pub fn semop(id: c_int, ops: &mut [libc::sembuf], timeout: Option<Duration>) -> io::Result<()> {
    let ret = match timeout {
        None => {
            // SAFETY: `ops` is a valid, writable slice of `ops.len()` sembufs for the call.
            unsafe { libc::semop(id, ops.as_mut_ptr(), ops.len()) }
        }
        Some(timeout) => {
            let ts = libc::timespec {
                tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
                tv_nsec: timeout.subsec_nanos() as libc::c_long,
            };
            // SAFETY: `ops` is a valid, writable slice of `ops.len()` sembufs, and `ts` a valid
            // timespec (nanoseconds below 10^9) that outlives the call.
            unsafe { semtimedop(id, ops.as_mut_ptr(), ops.len(), &ts) }
        }
    };
    check(ret).map(drop)
}

/// `semctl(id, 0, IPC_STAT)`.
pub fn stat(id: c_int) -> io::Result<libc::semid_ds> {
    let mut ds = MaybeUninit::<libc::semid_ds>::zeroed();
    // SAFETY: IPC_STAT writes one `semid_ds` through the pointer, which points at writable
    // memory of that type; the variadic argument is the `union semun` member `buf`.
    check(unsafe { libc::semctl(id, 0, libc::IPC_STAT, ds.as_mut_ptr()) })?;
    // SAFETY: all-zero bytes are a valid `semid_ds` (integers only), and the kernel filled it.
    Ok(unsafe { ds.assume_init() })
}

/// `semctl(id, 0, IPC_RMID)`: removes the set, waking every waiter with `EIDRM`.
pub fn remove(id: c_int) -> io::Result<()> {
    // SAFETY: IPC_RMID reads no argument beyond the command.
    check(unsafe { libc::semctl(id, 0, libc::IPC_RMID) }).map(drop)
}

/// The per-semaphore queries of `semctl` that return their answer as the result.
#[derive(Clone, Copy, Debug)]
pub enum Query {
    /// `GETVAL`: the value.
    Value,
    /// `GETNCNT`: processes waiting for the value to increase.
    WaitingForIncrease,
    /// `GETZCNT`: processes waiting for the value to become zero.
    WaitingForZero,
    /// `GETPID`: the pid of the last process that operated on the semaphore.
    LastPid,
}

/// `semctl(id, index, GETVAL | GETNCNT | GETZCNT | GETPID)`.
pub fn query(id: c_int, index: u16, query: Query) -> io::Result<c_int> {
    let cmd = match query {
        Query::Value => libc::GETVAL,
        Query::WaitingForIncrease => libc::GETNCNT,
        Query::WaitingForZero => libc::GETZCNT,
        Query::LastPid => libc::GETPID,
    };
    // SAFETY: these commands read no argument beyond the command and write no memory.
    check(unsafe { libc::semctl(id, c_int::from(index), cmd) })
}

/// `semctl(id, index, SETVAL, value)`.
pub fn set_value(id: c_int, index: u16, value: u16) -> io::Result<()> {
    // SAFETY: SETVAL reads the `union semun` member `val`, an int, passed here by value.
    check(unsafe { libc::semctl(id, c_int::from(index), libc::SETVAL, c_int::from(value)) })
        .map(drop)
}

/// Checks that the set `id` has exactly `len` semaphores, so that `GETALL` / `SETALL` access
/// exactly the buffer given.
fn check_len(id: c_int, len: usize) -> io::Result<()> {
    let nsems = stat(id)?.sem_nsems;
    if usize::try_from(nsems).ok() != Some(len) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    Ok(())
}

/// `semctl(id, 0, GETALL, values)`. Fails with `EINVAL` unless the set has exactly
/// `values.len()` semaphores.
pub fn get_all(id: c_int, values: &mut [u16]) -> io::Result<()> {
    check_len(id, values.len())?;
    // SAFETY: GETALL writes `sem_nsems` unsigned shorts through the `union semun` member
    // `array`; the set under `id` was just checked to have exactly `values.len()` semaphores,
    // and a set's size never changes. The id could only name another set if this one were
    // removed and the id's 16-bit sequence number wrapped around in between.
    check(unsafe { libc::semctl(id, 0, libc::GETALL, values.as_mut_ptr()) }).map(drop)
}

/// `semctl(id, 0, SETALL, values)`. Fails with `EINVAL` unless the set has exactly
/// `values.len()` semaphores.
pub fn set_all(id: c_int, values: &[u16]) -> io::Result<()> {
    check_len(id, values.len())?;
    // SAFETY: SETALL only reads `sem_nsems` unsigned shorts through the `union semun` member
    // `array`; the set was just checked to have exactly `values.len()` semaphores (see
    // `get_all`).
    check(unsafe { libc::semctl(id, 0, libc::SETALL, values.as_ptr()) }).map(drop)
}

/// `geteuid()`: the uid that owns the sets we create.
pub fn euid() -> u32 {
    // SAFETY: geteuid takes no arguments, touches no memory and cannot fail.
    unsafe { libc::geteuid() }
}
