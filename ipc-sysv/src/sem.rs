//! System V semaphore sets (`semget`, `semop`, `semtimedop`, `semctl`).
//!
//! A [`SemaphoreSet`] is a handle on a set of `count` semaphores, each a value in
//! `0..=32767` (`SEMVMX`). [`SemaphoreSet::op`] applies several [`SemOp`]s *atomically*: all
//! of them or none, blocking until all can proceed.
//!
//! ```
//! use ipc_sysv::Key;
//! use ipc_sysv::sem::{SemOp, SemaphoreSet};
//!
//! // A private set of two semaphores, removed when `set` (its owner) is dropped.
//! let set = SemaphoreSet::create(&Key::Private, 2, 0o600)?;
//! set.set(0, 1)?;
//! set.op(&[SemOp::wait(0)])?; // 1 -> 0, undone by the kernel if we die holding it
//! assert!(set.try_op(&[SemOp::wait(0)]).unwrap_err().is_transient());
//! set.op(&[SemOp::post(0)])?; // 0 -> 1
//! assert_eq!(set.get_all()?, vec![1, 0]);
//! # Ok::<(), ipc_core::Error>(())
//! ```
//!
//! # Initialisation race
//!
//! `semget` creates a set before its values can be set, so an opener can find a set whose
//! creator has not yet initialised it (or died before doing so). As Stevens describes (UNP
//! vol. 2, §11.2), the kernel's `sem_otime` (time of the last `semop`) is 0 until the first
//! `semop`; [`SemaphoreSet::create`] therefore sets the values (`SETALL`) and *then* performs
//! one `semop` that changes nothing (+1 and −1 on semaphore 0, atomically). An opener
//! ([`SemaphoreSet::open`], [`SemaphoreSet::open_id`]) that finds `sem_otime == 0` polls
//! `IPC_STAT` (with a short back-off; the kernel offers no notification) for at most
//! [`INIT_TIMEOUT`], then refuses the set as [`Error::Incompatible`]. A set made by a program
//! that never calls `semop` after creating it is therefore refused until someone has.
//!
//! Such sets are common: `ipcmk -S 1`, or a C program that does `semget` then `semctl(SETVAL)`
//! and leaves the first `semop` to its clients, make sets whose `sem_otime` stays 0 until a
//! client operates on them. [`SemaphoreSet::open_uninitialised`] (and
//! [`SemaphoreSet::open_id_uninitialised`]) open them without waiting, with the same owner,
//! mode and count checks. The caller then takes on what the wait protected against: it may be
//! looking at a set whose creator is still between `semget` and setting its values (all 0 until
//! then), so use these only for sets made by a program known to have finished (a tool such as
//! `ipcmk`, or a server that has said it is ready), and prefer [`SemaphoreSet::open`] for sets
//! this crate creates.
//!
//! # Errors
//!
//! * A call that would block with `IPC_NOWAIT` ([`SemaphoreSet::try_op`], or an op with
//!   [`SemOp::nowait`]) is [`Error::Empty`] (the semaphore has no units to take, or is not
//!   zero), which [`Error::is_transient`].
//! * A deadline passing in [`SemaphoreSet::op_timeout`] is [`Error::Timeout`].
//! * A set removed while waiting (`EIDRM`) or before a call (`EINVAL`) is
//!   [`Error::Disconnected`], for every method of the handle.
//! * Kernel limits are [`Error::LimitExceeded`] naming the `kernel.sem` field (`SEMMSL`,
//!   `SEMMNS`, `SEMOPM`, `SEMMNI`, see [`Limits`]) or `SEMVMX` (32767, the largest value).
//! * Bad arguments (index beyond the set, no operations, a delta of −32768 that could never
//!   succeed, a value above 32767, a slice of the wrong length) are [`Error::InvalidSpec`],
//!   detected before the kernel is called.
//!
//! `EINTR` is retried inside (the kernel never restarts `semop`), keeping the caller's deadline.

use std::fmt;
use std::io;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ipc_core::{Error, Owner, Removable, Result, Wait, check_adoptable};

use crate::Key;
use crate::sys::sem as sys;

/// The largest value of a semaphore (`SEMVMX`), also the largest undo adjustment (`SEMAEM`).
pub const SEMVMX: u16 = 32767;

/// The mode sets are created with unless the caller asks otherwise, and the mode
/// [`SemaphoreSet::open`] accepts at most.
pub const DEFAULT_MODE: u32 = 0o600;

/// How long an opener waits for the creator of a set to finish initialising it (see the
/// [module documentation](self#initialisation-race)).
pub const INIT_TIMEOUT: Duration = Duration::from_secs(2);

/// One operation of an atomic [`SemaphoreSet::op`].
///
/// A negative `delta` waits until the value is at least `-delta` and subtracts it; a positive
/// one adds it (never blocks); zero waits until the value is 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SemOp {
    /// Which semaphore of the set.
    pub index: usize,
    /// The change (`sem_op`). −32768 is refused: no value can satisfy it.
    pub delta: i16,
    /// `SEM_UNDO`: the kernel reverts this change when the process exits, even by `SIGKILL`.
    pub undo: bool,
    /// `IPC_NOWAIT`: fail with [`Error::Empty`] instead of blocking.
    pub nowait: bool,
}

impl SemOp {
    /// Takes one unit (−1) with `SEM_UNDO`: a lock or a counted resource that the kernel gives
    /// back if the holder dies.
    pub fn wait(index: usize) -> SemOp {
        SemOp::add(index, -1).undo(true)
    }

    /// Gives one unit back (+1) with `SEM_UNDO`, cancelling the adjustment of a
    /// [`SemOp::wait`]. To *signal* (a producer posting for a consumer), use
    /// [`SemOp::add`]`(index, 1)` without undo, or the kernel takes the unit back when the
    /// poster exits.
    pub fn post(index: usize) -> SemOp {
        SemOp::add(index, 1).undo(true)
    }

    /// Waits until the value is 0.
    pub fn zero(index: usize) -> SemOp {
        SemOp::add(index, 0)
    }

    /// Adds `delta` (negative: waits to subtract it), without `SEM_UNDO` or `IPC_NOWAIT`.
    pub fn add(index: usize, delta: i16) -> SemOp {
        SemOp {
            index,
            delta,
            undo: false,
            nowait: false,
        }
    }

    /// Sets or clears `SEM_UNDO`.
    pub fn undo(self, undo: bool) -> SemOp {
        SemOp { undo, ..self }
    }

    /// Sets or clears `IPC_NOWAIT`.
    pub fn nowait(self, nowait: bool) -> SemOp {
        SemOp { nowait, ..self }
    }
}

/// The limits of `/proc/sys/kernel/sem`, in its order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `SEMMSL`: most semaphores in one set.
    pub semmsl: u64,
    /// `SEMMNS`: most semaphores in all sets together.
    pub semmns: u64,
    /// `SEMOPM`: most operations in one `semop` call.
    pub semopm: u64,
    /// `SEMMNI`: most sets.
    pub semmni: u64,
}

impl Limits {
    /// Reads `/proc/sys/kernel/sem`.
    pub fn read() -> Result<Limits> {
        const PATH: &str = "/proc/sys/kernel/sem";
        let text =
            std::fs::read_to_string(PATH).map_err(|e| Error::io(format!("read {PATH}"), e))?;
        let fields: Vec<u64> = text
            .split_whitespace()
            .map(str::parse)
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| {
                Error::corrupted(format!("{PATH}: expected four numbers, got {text:?}"))
            })?;
        match fields[..] {
            [semmsl, semmns, semopm, semmni] => Ok(Limits {
                semmsl,
                semmns,
                semopm,
                semmni,
            }),
            _ => Err(Error::corrupted(format!(
                "{PATH}: expected four numbers, got {text:?}"
            ))),
        }
    }

    fn exceeded(what: &str, limit: u64) -> Error {
        Error::LimitExceeded {
            what: format!("kernel.sem {what}"),
            limit,
        }
    }
}

/// What `IPC_STAT` says about a set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SemStat {
    /// Number of semaphores (`sem_nsems`).
    pub count: usize,
    /// Owner's uid.
    pub uid: u32,
    /// Owner's gid.
    pub gid: u32,
    /// Creator's uid.
    pub cuid: u32,
    /// Permission bits.
    pub mode: u32,
    /// Time of the last `semop` (`sem_otime`); `None` before the first, i.e. while the set is
    /// not initialised (see the [module documentation](self#initialisation-race)).
    pub otime: Option<SystemTime>,
    /// Time of creation or of the last change by `semctl` (`sem_ctime`).
    pub ctime: SystemTime,
}

fn time(secs: libc::time_t) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

/// A handle on a System V semaphore set. Dropping it does nothing (there is nothing to close);
/// the set lives until [`SemaphoreSet::destroy`] or the [`Owner`] returned by
/// [`SemaphoreSet::create`] removes it.
#[derive(Debug)]
pub struct SemaphoreSet {
    id: i32,
    count: usize,
    name: String,
}

impl SemaphoreSet {
    /// Creates a set of `count` semaphores, all 0, exclusively (`IPC_CREAT | IPC_EXCL`), with
    /// permission bits `mode` (normally [`DEFAULT_MODE`]). The returned owner removes the set
    /// when dropped; [`Owner::release`] keeps it.
    pub fn create(key: &Key, count: usize, mode: u32) -> Result<Owner<SemaphoreSet>> {
        SemaphoreSet::create_with_values(key, &vec![0; count], mode)
    }

    /// Like [`SemaphoreSet::create`], with one semaphore per element of `values`, set to it
    /// before any opener can use the set.
    pub fn create_with_values(key: &Key, values: &[u16], mode: u32) -> Result<Owner<SemaphoreSet>> {
        let what = format!("sysv-sem:{key}");
        if mode & !0o777 != 0 {
            return Err(Error::invalid_spec(
                format!("mode={mode:o}"),
                "only permission bits (0o777) are allowed",
            ));
        }
        let count = values.len();
        if count == 0 {
            return Err(Error::invalid_spec(
                what,
                "a semaphore set needs at least one semaphore",
            ));
        }
        if let Some(v) = values.iter().find(|v| **v > SEMVMX) {
            return Err(value_too_large(*v));
        }
        let nsems =
            i32::try_from(count).map_err(|_| Limits::exceeded("SEMMSL", i32::MAX as u64))?;
        let raw_key = key.resolve()?;
        let flags = libc::IPC_CREAT | libc::IPC_EXCL | mode as i32;
        let id = sys::semget(raw_key, nsems, flags).map_err(|e| create_error(&what, count, e))?;
        let name = match key {
            Key::Private => format!("sysv-sem:private (id {id})"),
            _ => what,
        };
        // From here on the set exists: the owner removes it if initialisation fails.
        let set = Owner::new(SemaphoreSet { id, count, name });
        sys::set_all(id, values).map_err(|e| set.error("semctl SETALL", e))?;
        // A semop that changes nothing sets sem_otime: the mark that initialisation is done.
        let (first, second) = if values[0] < SEMVMX { (1, -1) } else { (-1, 1) };
        let mut mark = [
            sys::sembuf(0, first, libc::IPC_NOWAIT as i16),
            sys::sembuf(0, second, libc::IPC_NOWAIT as i16),
        ];
        sys::semop(id, &mut mark, None).map_err(|e| set.error("semop", e))?;
        Ok(set)
    }

    /// Opens the existing set `key` with exactly `count` semaphores, which must belong to us and
    /// grant nothing beyond [`DEFAULT_MODE`]; see [`SemaphoreSet::open_with_mode`].
    pub fn open(key: &Key, count: usize) -> Result<SemaphoreSet> {
        SemaphoreSet::open_with_mode(key, count, DEFAULT_MODE)
    }

    /// Opens the existing set `key`. It is refused as [`Error::Incompatible`] (with the reason)
    /// unless it belongs to our effective uid, grants nothing beyond `mode`, has exactly
    /// `count` semaphores and is initialised within [`INIT_TIMEOUT`]. A missing set is
    /// [`Error::NotFound`]; a private key is [`Error::InvalidSpec`] (use
    /// [`SemaphoreSet::open_id`]).
    pub fn open_with_mode(key: &Key, count: usize, mode: u32) -> Result<SemaphoreSet> {
        let (id, name) = existing(key)?;
        SemaphoreSet::adopt(id, count, mode, name, Init::Wait)
    }

    /// Opens the existing set `key` like [`SemaphoreSet::open_with_mode`], but accepts a set
    /// nobody has operated on yet (`sem_otime == 0`) at once instead of waiting for its first
    /// `semop`: for sets made by other programs (`ipcmk -S`, a C server that sets values with
    /// `semctl` and never calls `semop` itself), which [`SemaphoreSet::open`] refuses after
    /// [`INIT_TIMEOUT`].
    ///
    /// The wait exists because System V creates a set (`semget`) before its values can be set:
    /// a set with `sem_otime == 0` may be one whose creator has not set them yet, or died
    /// before doing so (see the [module documentation](self#initialisation-race)). Use this only
    /// when the creator is known to have finished.
    ///
    /// ```no_run
    /// # use ipc_sysv::Key;
    /// # use ipc_sysv::sem::{SemOp, SemaphoreSet};
    /// // `ipcmk -S 1 -p 0600` printed nothing but an id; its key is in `ipcs -s`.
    /// let set = SemaphoreSet::open_uninitialised(&Key::Explicit(0x1234), 1, 0o600)?;
    /// set.op(&[SemOp::post(0)])?; // from now on, sem_otime is set: `open` accepts it too
    /// # Ok::<(), ipc_core::Error>(())
    /// ```
    pub fn open_uninitialised(key: &Key, count: usize, mode: u32) -> Result<SemaphoreSet> {
        let (id, name) = existing(key)?;
        SemaphoreSet::adopt(id, count, mode, name, Init::Accept)
    }

    /// Opens the set with id `id` (e.g. a private set handed over by its creator), with the
    /// checks of [`SemaphoreSet::open`].
    pub fn open_id(id: i32, count: usize) -> Result<SemaphoreSet> {
        SemaphoreSet::adopt(
            id,
            count,
            DEFAULT_MODE,
            format!("sysv-sem:id={id}"),
            Init::Wait,
        )
    }

    /// Opens the set with id `id` (the number `ipcmk -S` prints), accepting it before its
    /// first `semop`, with the checks and the caveat of [`SemaphoreSet::open_uninitialised`].
    pub fn open_id_uninitialised(id: i32, count: usize, mode: u32) -> Result<SemaphoreSet> {
        SemaphoreSet::adopt(id, count, mode, format!("sysv-sem:id={id}"), Init::Accept)
    }

    fn adopt(id: i32, count: usize, mode: u32, name: String, init: Init) -> Result<SemaphoreSet> {
        let set = SemaphoreSet { id, count, name };
        let stat = set.stat().map_err(|e| match e {
            Error::Disconnected => Error::NotFound {
                object: set.name.clone(),
            },
            e => e,
        })?;
        let incompatible = |reason: String| Error::Incompatible {
            object: set.name.clone(),
            reason,
        };
        check_adoptable(stat.uid, sys::euid(), stat.mode, mode).map_err(incompatible)?;
        if stat.count != count {
            return Err(incompatible(format!(
                "it has {} semaphores, expected {count}",
                stat.count
            )));
        }
        if stat.otime.is_none() && init == Init::Wait {
            set.wait_initialised()?;
        }
        Ok(set)
    }

    /// Polls `sem_otime` until the creator's first `semop`, for at most [`INIT_TIMEOUT`].
    fn wait_initialised(&self) -> Result<()> {
        let deadline = Instant::now() + INIT_TIMEOUT;
        let mut pause = Duration::from_millis(1);
        loop {
            if self.stat()?.otime.is_some() {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::Incompatible {
                    object: self.name.clone(),
                    reason: format!(
                        "not initialised after {INIT_TIMEOUT:?}: no semop yet (sem_otime is 0); \
                         its creator may have died between semget and its first semop, or never \
                         calls semop (ipcmk -S): SemaphoreSet::open_uninitialised opens it as it is"
                    ),
                });
            }
            // No notification exists for this; poll with a bounded back-off.
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// The kernel's id of the set (`semid`), valid in every process.
    pub fn id(&self) -> i32 {
        self.id
    }

    /// Number of semaphores in the set.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Removes the set (`IPC_RMID`); waiters fail with [`Error::Disconnected`].
    pub fn destroy(self) -> Result<()> {
        self.remove()
    }

    /// Applies `ops` atomically, blocking as long as needed.
    pub fn op(&self, ops: &[SemOp]) -> Result<()> {
        self.op_until(ops, Wait::Forever)
    }

    /// Applies `ops` atomically if that is possible now (`IPC_NOWAIT` on all), else
    /// [`Error::Empty`] and nothing changes.
    pub fn try_op(&self, ops: &[SemOp]) -> Result<()> {
        self.op_until(ops, Wait::Never)
    }

    /// Applies `ops` atomically, waiting at most `timeout` (`semtimedop`), else
    /// [`Error::Timeout`] and nothing changes.
    pub fn op_timeout(&self, ops: &[SemOp], timeout: Duration) -> Result<()> {
        self.op_until(ops, Wait::timeout(timeout))
    }

    /// Applies `ops` atomically, waiting as `wait` says: [`Wait::Never`] is
    /// [`SemaphoreSet::try_op`], a deadline [`SemaphoreSet::op_timeout`] (kept across `EINTR`).
    pub fn op_until(&self, ops: &[SemOp], wait: Wait) -> Result<()> {
        let mut bufs = self.sembufs(ops, wait == Wait::Never)?;
        loop {
            let timeout = match wait {
                Wait::Forever => None,
                Wait::Never => Some(Duration::ZERO),
                Wait::Until(_) => wait.remaining(),
            };
            match sys::semop(self.id, &mut bufs, timeout) {
                Ok(()) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => {
                    let nowait = matches!(wait, Wait::Never) || ops.iter().any(|op| op.nowait);
                    return Err(if nowait { Error::Empty } else { Error::Timeout });
                }
                Err(e) => return Err(self.op_error(e)),
            }
        }
    }

    fn sembufs(&self, ops: &[SemOp], nowait: bool) -> Result<Vec<libc::sembuf>> {
        if ops.is_empty() {
            return Err(Error::invalid_spec(
                format!("semop on {}", self.name),
                "no operations given",
            ));
        }
        ops.iter()
            .map(|op| {
                let index = self.index(op.index)?;
                if op.delta == i16::MIN {
                    return Err(Error::invalid_spec(
                        format!("delta {} on semaphore {}", op.delta, op.index),
                        format!(
                            "no semaphore can ever reach {} (SEMVMX is {SEMVMX})",
                            -i32::from(op.delta)
                        ),
                    ));
                }
                let mut flags = 0;
                if op.undo {
                    flags |= libc::SEM_UNDO;
                }
                if op.nowait || nowait {
                    flags |= libc::IPC_NOWAIT;
                }
                Ok(sys::sembuf(index, op.delta, flags as i16))
            })
            .collect()
    }

    fn index(&self, index: usize) -> Result<u16> {
        if index >= self.count {
            return Err(Error::invalid_spec(
                format!("semaphore index {index}"),
                format!("{} has {} semaphores", self.name, self.count),
            ));
        }
        u16::try_from(index).map_err(|_| {
            Error::invalid_spec(
                format!("semaphore index {index}"),
                "semop addresses semaphores 0..=65535 only",
            )
        })
    }

    fn op_error(&self, e: io::Error) -> Error {
        match e.raw_os_error() {
            Some(libc::E2BIG) => Limits::exceeded("SEMOPM", Limits::read().map_or(0, |l| l.semopm)),
            Some(libc::ERANGE) => Error::LimitExceeded {
                what: "SEMVMX/SEMAEM (largest semaphore value / undo adjustment)".into(),
                limit: u64::from(SEMVMX),
            },
            _ => self.error("semop", e),
        }
    }

    /// Classifies an error of a call on this set: a removed set is [`Error::Disconnected`].
    fn error(&self, op: &str, e: io::Error) -> Error {
        match e.raw_os_error() {
            Some(libc::EIDRM | libc::EINVAL) => Error::Disconnected,
            _ => Error::from_os(op, &self.name, e),
        }
    }

    /// The value of semaphore `index` (`GETVAL`).
    pub fn get(&self, index: usize) -> Result<u16> {
        self.query(index, sys::Query::Value, "GETVAL")
            .map(|v| v as u16)
    }

    /// Sets semaphore `index` to `value` (`SETVAL`, clearing every process's undo adjustment
    /// for it), waking waiters that can now proceed.
    pub fn set(&self, index: usize, value: u16) -> Result<()> {
        let index = self.index(index)?;
        if value > SEMVMX {
            return Err(value_too_large(value));
        }
        sys::set_value(self.id, index, value).map_err(|e| self.error("semctl SETVAL", e))
    }

    /// All values, atomically (`GETALL`).
    pub fn get_all(&self) -> Result<Vec<u16>> {
        let mut values = vec![0; self.count];
        sys::get_all(self.id, &mut values).map_err(|e| self.error("semctl GETALL", e))?;
        Ok(values)
    }

    /// Sets all values atomically (`SETALL`); `values` must have one element per semaphore.
    pub fn set_all(&self, values: &[u16]) -> Result<()> {
        if values.len() != self.count {
            return Err(Error::invalid_spec(
                format!("{} values", values.len()),
                format!("{} has {} semaphores", self.name, self.count),
            ));
        }
        if let Some(v) = values.iter().find(|v| **v > SEMVMX) {
            return Err(value_too_large(*v));
        }
        sys::set_all(self.id, values).map_err(|e| self.error("semctl SETALL", e))
    }

    /// Number of processes (threads) blocked waiting for semaphore `index` to increase
    /// (`GETNCNT`).
    pub fn waiting_for_increase(&self, index: usize) -> Result<usize> {
        self.query(index, sys::Query::WaitingForIncrease, "GETNCNT")
            .map(|v| v as usize)
    }

    /// Number of processes (threads) blocked waiting for semaphore `index` to become zero
    /// (`GETZCNT`).
    pub fn waiting_for_zero(&self, index: usize) -> Result<usize> {
        self.query(index, sys::Query::WaitingForZero, "GETZCNT")
            .map(|v| v as usize)
    }

    /// The pid of the last process that operated on semaphore `index` (`GETPID`), `None` if
    /// none has.
    pub fn last_pid(&self, index: usize) -> Result<Option<u32>> {
        self.query(index, sys::Query::LastPid, "GETPID")
            .map(|pid| (pid > 0).then_some(pid as u32))
    }

    fn query(&self, index: usize, query: sys::Query, name: &str) -> Result<i32> {
        let index = self.index(index)?;
        sys::query(self.id, index, query).map_err(|e| self.error(&format!("semctl {name}"), e))
    }

    /// Owner, mode, size and times of the set (`IPC_STAT`).
    pub fn stat(&self) -> Result<SemStat> {
        let ds = sys::stat(self.id).map_err(|e| self.error("semctl IPC_STAT", e))?;
        Ok(SemStat {
            count: ds.sem_nsems as usize,
            uid: ds.sem_perm.uid,
            gid: ds.sem_perm.gid,
            cuid: ds.sem_perm.cuid,
            mode: u32::from(ds.sem_perm.mode) & 0o777,
            otime: (ds.sem_otime != 0).then(|| time(ds.sem_otime)),
            ctime: time(ds.sem_ctime),
        })
    }
}

impl Removable for SemaphoreSet {
    /// `IPC_RMID`. A set already removed is [`Error::NotFound`].
    fn remove(&self) -> Result<()> {
        sys::remove(self.id).map_err(|e| match e.raw_os_error() {
            Some(libc::EIDRM | libc::EINVAL) => Error::NotFound {
                object: self.name.clone(),
            },
            _ => Error::from_os("semctl IPC_RMID", &self.name, e),
        })
    }

    fn object_name(&self) -> String {
        self.name.clone()
    }
}

impl fmt::Display for SemaphoreSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

fn value_too_large(value: u16) -> Error {
    Error::invalid_spec(
        format!("semaphore value {value}"),
        format!("values are at most {SEMVMX} (SEMVMX)"),
    )
}

/// Classifies a failed exclusive `semget`.
fn create_error(what: &str, count: usize, e: io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::ENOSPC) => {
            // Either the number of sets (SEMMNI) or of semaphores in all (SEMMNS) is reached.
            let limits = Limits::read();
            let sets = std::fs::read_to_string("/proc/sysvipc/sem")
                .map(|t| t.lines().count().saturating_sub(1) as u64)
                .unwrap_or(0);
            match limits {
                Ok(l) if sets >= l.semmni => Limits::exceeded("SEMMNI", l.semmni),
                Ok(l) => Limits::exceeded("SEMMNS", l.semmns),
                Err(_) => Error::from_os("semget", what, e),
            }
        }
        Some(libc::EINVAL) => match Limits::read() {
            Ok(l) if count as u64 > l.semmsl => Limits::exceeded("SEMMSL", l.semmsl),
            _ => Error::from_os("semget", what, e),
        },
        _ => Error::from_os("semget", what, e),
    }
}

/// The id of the existing set `key`, and the name errors give it.
fn existing(key: &Key) -> Result<(i32, String)> {
    let name = format!("sysv-sem:{key}");
    if *key == Key::Private {
        return Err(Error::invalid_spec(
            name,
            "a private set can only be opened by its id",
        ));
    }
    let raw_key = key.resolve()?;
    let id = sys::semget(raw_key, 0, 0).map_err(|e| Error::from_os("semget", &name, e))?;
    Ok((id, name))
}

/// What an opener does with a set nobody has operated on yet (`sem_otime == 0`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Init {
    /// Wait up to [`INIT_TIMEOUT`] for the creator's first `semop`, then refuse the set.
    Wait,
    /// Take the set as it is: its creator is known to have finished.
    Accept,
}

/// Removes the set with id `id` (`IPC_RMID`) without opening or checking it: for clean-up
/// tools (`ipc clean`). A set already gone is [`Error::NotFound`].
pub fn remove_id(id: i32) -> Result<()> {
    let name = format!("sysv-sem:id={id}");
    sys::remove(id).map_err(|e| match e.raw_os_error() {
        Some(libc::EIDRM | libc::EINVAL) => Error::NotFound { object: name },
        _ => Error::from_os("semctl IPC_RMID", &name, e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_set_the_flags() {
        assert_eq!(
            SemOp::wait(3),
            SemOp {
                index: 3,
                delta: -1,
                undo: true,
                nowait: false
            }
        );
        assert_eq!(SemOp::post(1).delta, 1);
        assert!(SemOp::post(1).undo);
        assert_eq!(SemOp::zero(2), SemOp::add(2, 0));
        assert!(SemOp::add(0, 5).nowait(true).nowait);
        assert!(!SemOp::wait(0).undo(false).undo);
    }

    #[test]
    fn limits_parse_proc() {
        let l = Limits::read().unwrap();
        assert!(l.semmsl > 0 && l.semmns > 0 && l.semopm > 0 && l.semmni > 0);
    }

    #[test]
    fn create_marks_the_set_initialised() {
        let set = SemaphoreSet::create_with_values(&Key::Private, &[SEMVMX, 3], 0o600).unwrap();
        let stat = set.stat().unwrap();
        assert!(stat.otime.is_some());
        assert_eq!(stat.count, 2);
        assert_eq!(stat.mode, 0o600);
        assert_eq!(set.get_all().unwrap(), vec![SEMVMX, 3]);
    }

    #[test]
    fn opener_waits_for_initialisation_and_refuses_a_set_never_initialised() {
        // A set made the raw way: created, not yet initialised (sem_otime == 0).
        let id = sys::semget(libc::IPC_PRIVATE, 1, libc::IPC_CREAT | 0o600).unwrap();
        let raw = Owner::new(SemaphoreSet {
            id,
            count: 1,
            name: format!("raw id {id}"),
        });
        assert!(raw.stat().unwrap().otime.is_none());
        let started = Instant::now();
        match SemaphoreSet::open_id(id, 1) {
            Err(Error::Incompatible { reason, .. }) => assert!(reason.contains("sem_otime")),
            other => panic!("expected Incompatible, got {other:?}"),
        }
        assert!(started.elapsed() >= INIT_TIMEOUT);
        // Initialising while an opener polls: the opener succeeds whenever it looks.
        std::thread::scope(|s| {
            let opener = s.spawn(|| SemaphoreSet::open_id(id, 1));
            raw.set(0, 1).unwrap();
            raw.op(&[SemOp::add(0, 1), SemOp::add(0, -1)]).unwrap();
            let opened = opener.join().unwrap().unwrap();
            assert_eq!(opened.get(0).unwrap(), 1);
        });
    }
}
