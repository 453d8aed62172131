//! POSIX named semaphores: `sem_open`, `sem_wait` / `sem_trywait` / `sem_clockwait`,
//! `sem_post`, `sem_unlink`.
//!
//! ```
//! use ipc_core::Error;
//! use ipc_posix::PosixName;
//! use ipc_posix::sem::NamedSemaphore;
//! use std::time::Duration;
//!
//! # fn main() -> Result<(), Error> {
//! let name = PosixName::new(&format!("/ipc-doc-sem-{}", std::process::id()))?;
//! // Exclusive creation with value 0, mode 0600; the Owner removes the name when dropped.
//! let owner = NamedSemaphore::create(&name, 0, 0o600)?;
//! let peer = NamedSemaphore::open(&name, 0o600)?; // in another process, usually
//!
//! assert!(matches!(peer.try_wait(), Err(Error::Empty)));
//! owner.post()?;
//! assert_eq!(peer.value()?, 1);
//! peer.wait_timeout(Duration::from_secs(1))?;
//! assert!(matches!(peer.wait_timeout(Duration::from_millis(10)), Err(Error::Timeout)));
//! owner.destroy()?; // sem_unlink, reporting failure
//! # Ok(())
//! # }
//! ```
//!
//! # Lifecycle
//!
//! [`NamedSemaphore::create`] creates exclusively with exactly the mode asked for (the C
//! library applies the umask, which can only narrow it; the mode is then set with `chmod`) and
//! returns an [`Owner`] that removes the name when dropped. [`NamedSemaphore::open`] opens an
//! existing semaphore and checks it: glibc keeps it as the file `/dev/shm/sem.NAME`, which must
//! be a regular file owned by our effective uid, with no permission beyond the expected mode,
//! and large enough to hold a `sem_t` (a smaller file would make the first operation on it die
//! of `SIGBUS`). The file checked is the one mapped: its device and inode are compared with the
//! mapping `sem_open` made (from `/proc/self/maps`). Anything else is
//! [`Error::Incompatible`], so a squatted name fails closed. Dropping a handle closes it
//! (`sem_close`) and never removes the semaphore.
//!
//! # Waiting
//!
//! All waits go through [`NamedSemaphore::wait_with`] and a [`Wait`]: `try_wait` on zero is
//! [`Error::Empty`], a timed wait past its deadline [`Error::Timeout`]. Timed waits use
//! `sem_clockwait(CLOCK_MONOTONIC)` (glibc 2.30), so a change of the wall clock does not
//! stretch or cut them; `EINTR` is retried with the time left to the original deadline.
//!
//! # References
//!
//! `sem_overview(7)`, `sem_open(3)`, `sem_wait(3)` (`sem_clockwait`), `sem_post(3)`,
//! `sem_getvalue(3)`, `sem_close(3)`, `sem_unlink(3)`, `proc_pid_maps(5)`.

use std::time::{Duration, Instant};

use ipc_core::{Adoption, Create, Error, Owner, Removable, Result, Wait};
use nix::errno::Errno;
use nix::sys::stat::{FchmodatFlags, FileStat, Mode, fchmodat, lstat};

use crate::PosixName;
pub use crate::shm::Opened;
use crate::shm::{Identity, SHM_DIR, check_mode, check_object, ensure_identity, os_error};
use crate::sys::sem::{self as sys, RawSemaphore};

/// Permissions of a semaphore created without an explicit mode.
pub const DEFAULT_MODE: u32 = 0o600;

/// The largest value a semaphore holds (`SEM_VALUE_MAX`, `INT_MAX` on Linux).
pub const SEM_VALUE_MAX: u32 = i32::MAX as u32;

/// How many times [`NamedSemaphore::open_or_create`] retries when the semaphore appears or
/// disappears between its two attempts.
const OPEN_OR_CREATE_ATTEMPTS: usize = 8;

/// An open POSIX named semaphore. It is `Send + Sync`: any number of threads may wait on and
/// post the same handle.
#[derive(Debug)]
pub struct NamedSemaphore {
    name: PosixName,
    sem: RawSemaphore,
    identity: Identity,
}

impl NamedSemaphore {
    /// Creates the semaphore `name` exclusively with `value` and exactly `mode` (`0o600` is
    /// [`DEFAULT_MODE`]). The returned [`Owner`] removes the name when dropped.
    ///
    /// Errors: [`Error::AlreadyExists`]; [`Error::LimitExceeded`] for a value above
    /// [`SEM_VALUE_MAX`] or a full `/dev/shm`; [`Error::InvalidSpec`] for a mode beyond `0o777`
    /// or a name too long for `/dev/shm/sem.NAME`.
    pub fn create(name: &PosixName, value: u32, mode: u32) -> Result<Owner<NamedSemaphore>> {
        let object = object_name(name);
        check_mode(&object, mode)?;
        if value > SEM_VALUE_MAX {
            return Err(Error::LimitExceeded {
                what: "SEM_VALUE_MAX".into(),
                limit: SEM_VALUE_MAX.into(),
            });
        }
        let sem = RawSemaphore::create(name.as_c_str(), mode, value)
            .map_err(|e| sem_error("sem_open", name, e))?;
        let path = sem_path(name);
        let identity = match mapped_identity(&sem, &path, &object) {
            Ok(identity) => identity,
            Err(e) => {
                let _ = sys::unlink(name.as_c_str());
                return Err(e);
            }
        };
        // From here on, an early return drops the owner, which removes the semaphore.
        let owner = Owner::new(NamedSemaphore {
            name: name.clone(),
            sem,
            identity,
        });
        // sem_open applied the umask (it can only have narrowed the mode): set it exactly, on
        // the file we created (checked by inode first).
        let st = lstat(path.as_str()).map_err(|e| os_error("stat", &object, e))?;
        if Identity::from(&st) != identity {
            return Err(Error::Incompatible {
                object,
                reason: "the semaphore was replaced right after it was created".into(),
            });
        }
        chmod_regular_file(&path, mode).map_err(|e| os_error("chmod", &object, e))?;
        Ok(owner)
    }

    /// Opens the existing semaphore `name` and checks it: a regular file owned by our
    /// effective uid, granting nothing beyond `mode`, large enough for a `sem_t`, and the very
    /// file `sem_open` mapped.
    ///
    /// Errors: [`Error::NotFound`]; [`Error::Incompatible`] naming what differs, with both
    /// values; [`Error::PermissionDenied`].
    pub fn open(name: &PosixName, mode: u32) -> Result<NamedSemaphore> {
        let object = object_name(name);
        check_mode(&object, mode)?;
        let path = sem_path(name);
        // Check before sem_open too: glibc maps the file without looking at its size, and
        // nothing is touched through the mapping before the check below confirms it.
        let before = lstat(path.as_str()).map_err(|e| sem_error("stat", name, e))?;
        check_semaphore_file(&object, &before, mode)?;
        let sem =
            RawSemaphore::open(name.as_c_str()).map_err(|e| sem_error("sem_open", name, e))?;
        let identity = mapped_identity(&sem, &path, &object)?;
        if identity != Identity::from(&before) {
            // Replaced between the check and the open: check what was actually mapped.
            let st = lstat(path.as_str()).map_err(|e| sem_error("stat", name, e))?;
            if Identity::from(&st) != identity {
                return Err(Error::Incompatible {
                    object,
                    reason: "the semaphore was replaced while it was being opened".into(),
                });
            }
            check_semaphore_file(&object, &st, mode)?;
        }
        Ok(NamedSemaphore {
            name: name.clone(),
            sem,
            identity,
        })
    }

    /// Opens `name` if it exists (checked as by [`NamedSemaphore::open`]), else creates it with
    /// `value` as [`NamedSemaphore::create`] does. A race with another process creating or
    /// removing the same name is retried.
    pub fn open_or_create(
        name: &PosixName,
        value: u32,
        mode: u32,
    ) -> Result<Opened<NamedSemaphore>> {
        NamedSemaphore::open_as(name, Create::IfMissing, value, mode)
    }

    /// Opens according to a transport string's `create` option: [`Create::Always`] creates
    /// exclusively with `value`, [`Create::Never`] opens an existing semaphore with mode no
    /// wider than `mode`, [`Create::IfMissing`] does either.
    pub fn open_as(
        name: &PosixName,
        create: Create,
        value: u32,
        mode: u32,
    ) -> Result<Opened<NamedSemaphore>> {
        match create {
            Create::Always => NamedSemaphore::create(name, value, mode).map(Opened::Created),
            Create::Never => NamedSemaphore::open(name, mode).map(Opened::Existing),
            Create::IfMissing => {
                let mut last = None;
                for _ in 0..OPEN_OR_CREATE_ATTEMPTS {
                    match NamedSemaphore::create(name, value, mode) {
                        Ok(owner) => return Ok(Opened::Created(owner)),
                        Err(Error::AlreadyExists { .. }) => {}
                        Err(e) => return Err(e),
                    }
                    match NamedSemaphore::open(name, mode) {
                        Ok(sem) => return Ok(Opened::Existing(sem)),
                        Err(e @ Error::NotFound { .. }) => last = Some(e),
                        Err(e) => return Err(e),
                    }
                }
                Err(last.expect("the loop ran at least once"))
            }
        }
    }

    /// The semaphore's name.
    pub fn name(&self) -> &PosixName {
        &self.name
    }

    /// Decrements the semaphore, waiting as `wait` allows for it to be positive:
    /// [`Error::Empty`] for [`Wait::Never`] on zero, [`Error::Timeout`] once a deadline has
    /// passed. A signal (`EINTR`) does not end the wait; the deadline is kept.
    pub fn wait_with(&self, wait: Wait) -> Result<()> {
        loop {
            let result = match wait {
                Wait::Forever => self.sem.wait(),
                Wait::Never => self.sem.try_wait(),
                // Recomputed on each retry: the deadline, not the duration, is what holds.
                Wait::Until(at) => self
                    .sem
                    .wait_for(at.saturating_duration_since(Instant::now())),
            };
            return match result {
                Ok(()) => Ok(()),
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => Err(wait.empty_error()),
                Err(Errno::ETIMEDOUT) => Err(Error::Timeout),
                Err(e) => Err(os_error("sem_wait", &self.object_name(), e)),
            };
        }
    }

    /// Waits as long as it takes for the semaphore to be positive, then decrements it.
    pub fn wait(&self) -> Result<()> {
        self.wait_with(Wait::Forever)
    }

    /// Decrements the semaphore if it is positive, else [`Error::Empty`] at once.
    pub fn try_wait(&self) -> Result<()> {
        self.wait_with(Wait::Never)
    }

    /// Waits up to `timeout` for the semaphore to be positive, then decrements it; else
    /// [`Error::Timeout`]. A timeout too large to represent waits forever.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<()> {
        self.wait_with(Wait::timeout(timeout))
    }

    /// Increments the semaphore, waking one waiter. At [`SEM_VALUE_MAX`] it is
    /// [`Error::LimitExceeded`] and the value is unchanged.
    pub fn post(&self) -> Result<()> {
        match self.sem.post() {
            Ok(()) => Ok(()),
            Err(Errno::EOVERFLOW) => Err(Error::LimitExceeded {
                what: "SEM_VALUE_MAX".into(),
                limit: SEM_VALUE_MAX.into(),
            }),
            Err(e) => Err(os_error("sem_post", &self.object_name(), e)),
        }
    }

    /// The current value: a snapshot, which other processes may change at once.
    pub fn value(&self) -> Result<u32> {
        let value = self
            .sem
            .value()
            .map_err(|e| os_error("sem_getvalue", &self.object_name(), e))?;
        // Linux reports 0, not a negative count, while there are waiters.
        Ok(u32::try_from(value).unwrap_or(0))
    }
}

impl Removable for NamedSemaphore {
    /// `sem_unlink`, if the name still refers to the semaphore this handle has open; one put
    /// in its place since is left alone ([`Error::Incompatible`]).
    fn remove(&self) -> Result<()> {
        ensure_identity(
            &self.object_name(),
            sem_path(&self.name).as_str(),
            self.identity,
        )?;
        unlink(&self.name)
    }

    fn object_name(&self) -> String {
        object_name(&self.name)
    }
}

/// Removes the name `name` (`sem_unlink`) without opening or checking it: for clean-up tools.
/// Processes that have it open keep using it until they close it.
pub fn unlink(name: &PosixName) -> Result<()> {
    sys::unlink(name.as_c_str()).map_err(|e| sem_error("sem_unlink", name, e))
}

fn object_name(name: &PosixName) -> String {
    format!("posix-sem:{name}")
}

/// Where glibc keeps the semaphore `/NAME`.
fn sem_path(name: &PosixName) -> String {
    format!("{SHM_DIR}/sem.{}", &name.as_str()[1..])
}

/// [`os_error`], plus the one error particular to semaphore names: `/NAME` becomes the file
/// `sem.NAME`, 4 bytes longer, so a name valid elsewhere can be too long here.
fn sem_error(op: &str, name: &PosixName, errno: Errno) -> Error {
    if errno == Errno::ENAMETOOLONG {
        return Error::invalid_spec(
            name.as_str(),
            format!(
                "a semaphore name may have at most {} bytes after the `/` (it is stored as sem.NAME)",
                libc::NAME_MAX as usize - "sem.".len()
            ),
        );
    }
    os_error(op, &object_name(name), errno)
}

/// [`check_object`], and large enough for a `sem_t`.
fn check_semaphore_file(object: &str, st: &FileStat, mode: u32) -> Result<()> {
    check_object(object, st, &Adoption::strict(mode))?;
    let needed = std::mem::size_of::<libc::sem_t>() as u64;
    let actual = u64::try_from(st.st_size).unwrap_or(0);
    if actual < needed {
        return Err(Error::Incompatible {
            object: object.to_owned(),
            reason: format!(
                "its size of {actual} bytes is smaller than a semaphore ({needed} bytes)"
            ),
        });
    }
    Ok(())
}

/// `chmod` without following a symbolic link where the C library can (the path was just
/// checked to be a regular file, so following is the fallback).
fn chmod_regular_file(path: &str, mode: u32) -> std::result::Result<(), Errno> {
    let mode = Mode::from_bits_truncate(mode);
    fchmodat(
        nix::fcntl::AT_FDCWD,
        path,
        mode,
        FchmodatFlags::NoFollowSymlink,
    )
    .or_else(|_| {
        fchmodat(
            nix::fcntl::AT_FDCWD,
            path,
            mode,
            FchmodatFlags::FollowSymlink,
        )
    })
}

/// The device and inode of the file `sem_open` mapped, from the line of `/proc/self/maps` that
/// contains the semaphore's address: the `fstat` of a semaphore, which has no descriptor.
/// Without `/proc`, the identity of `path` now stands in (then the caller compares it with
/// what it checked before opening, which still catches a replacement that stays).
fn mapped_identity(sem: &RawSemaphore, path: &str, object: &str) -> Result<Identity> {
    let mapped = std::fs::read_to_string("/proc/self/maps")
        .ok()
        .and_then(|maps| find_mapping(&maps, sem.address()));
    match mapped {
        Some(identity) => Ok(identity),
        None => lstat(path)
            .map(|st| Identity::from(&st))
            .map_err(|e| os_error("stat", object, e)),
    }
}

/// Parses `/proc/self/maps` lines (`start-end perms offset major:minor inode path`) for the one
/// containing `address`.
fn find_mapping(maps: &str, address: usize) -> Option<Identity> {
    maps.lines().find_map(|line| {
        let mut fields = line.split_ascii_whitespace();
        let (start, end) = fields.next()?.split_once('-')?;
        let start = usize::from_str_radix(start, 16).ok()?;
        let end = usize::from_str_radix(end, 16).ok()?;
        if !(start..end).contains(&address) {
            return None;
        }
        let _perms = fields.next()?;
        let _offset = fields.next()?;
        let (major, minor) = fields.next()?.split_once(':')?;
        let major = u64::from_str_radix(major, 16).ok()?;
        let minor = u64::from_str_radix(minor, 16).ok()?;
        let ino = fields.next()?.parse().ok()?;
        Some(Identity {
            dev: nix::sys::stat::makedev(major, minor),
            ino,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn unique() -> PosixName {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        PosixName::new(&format!("/ipc-unit-sem-{}-{n}", std::process::id())).unwrap()
    }

    #[test]
    fn maps_lines_are_parsed() {
        let maps = "\
5581d4a00000-5581d4a02000 r--p 00000000 fd:01 1234   /usr/bin/cat
7f0000001000-7f0000002000 rw-s 00000000 00:1a 98765  /dev/shm/sem.x
7ffd0000-7ffd1000 rw-p 00000000 00:00 0 [stack]
";
        let id = find_mapping(maps, 0x7f0000001010).unwrap();
        assert_eq!(id.ino, 98765);
        assert_eq!(id.dev, nix::sys::stat::makedev(0, 0x1a));
        assert!(find_mapping(maps, 0x7f0000002000).is_none());
        assert_eq!(
            find_mapping(maps, 0x5581d4a00000).unwrap().dev,
            nix::sys::stat::makedev(0xfd, 1)
        );
    }

    #[test]
    fn created_semaphore_has_exact_mode_and_is_the_mapped_file() {
        let name = unique();
        let owner = NamedSemaphore::create(&name, 3, 0o666).unwrap();
        let st = lstat(sem_path(&name).as_str()).unwrap();
        assert_eq!(st.st_mode & 0o7777, 0o666);
        assert_eq!(Identity::from(&st), owner.identity);
        assert_eq!(owner.value().unwrap(), 3);
        assert_eq!(owner.object_name(), format!("posix-sem:{name}"));
        drop(owner);
        assert!(lstat(sem_path(&name).as_str()).is_err());
    }

    #[test]
    fn value_above_sem_value_max_is_refused() {
        let name = unique();
        let err = NamedSemaphore::create(&name, SEM_VALUE_MAX + 1, DEFAULT_MODE).unwrap_err();
        assert!(
            matches!(&err, Error::LimitExceeded { what, .. } if what == "SEM_VALUE_MAX"),
            "{err}"
        );
        assert!(lstat(sem_path(&name).as_str()).is_err());
    }

    #[test]
    fn post_at_sem_value_max_is_limit_exceeded() {
        let name = unique();
        let sem = NamedSemaphore::create(&name, SEM_VALUE_MAX, DEFAULT_MODE).unwrap();
        let err = sem.post().unwrap_err();
        assert!(
            matches!(err, Error::LimitExceeded { limit, .. } if limit == u64::from(SEM_VALUE_MAX)),
            "{err}"
        );
        assert_eq!(sem.value().unwrap(), SEM_VALUE_MAX);
    }

    #[test]
    fn name_too_long_for_sem_prefix_is_invalid_spec() {
        let name = PosixName::new(&format!("/{}", "s".repeat(254))).unwrap();
        let err = NamedSemaphore::create(&name, 0, DEFAULT_MODE).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidSpec { reason, .. } if reason.contains("251")),
            "{err}"
        );
    }

    #[test]
    fn remove_leaves_a_replacement_alone() {
        let name = unique();
        let first = NamedSemaphore::create(&name, 0, DEFAULT_MODE).unwrap();
        unlink(&name).unwrap();
        let second = NamedSemaphore::create(&name, 0, DEFAULT_MODE).unwrap();
        let err = first.destroy().unwrap_err();
        assert!(matches!(err, Error::Incompatible { .. }), "{err}");
        second.destroy().unwrap();
        assert!(lstat(sem_path(&name).as_str()).is_err());
    }
}
