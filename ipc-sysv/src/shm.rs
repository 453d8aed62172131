//! System V shared-memory segments: `shmget`, attached with `shmat`, detached with `shmdt`,
//! removed with `shmctl(IPC_RMID)`.
//!
//! ```
//! use ipc_core::{Error, Segment};
//! use ipc_sysv::Key;
//! use ipc_sysv::shm::{Access, Expect, SysvSegment};
//!
//! # fn main() -> Result<(), Error> {
//! let key = Key::Explicit(0x5e00_0000 | (std::process::id() as i32 & 0xff_ffff));
//! // Exclusive creation (IPC_CREAT | IPC_EXCL), mode 0600; the Owner removes it when dropped.
//! let owner = SysvSegment::create(&key, 4096, 0o600)?;
//! let mem = owner.attach(Access::ReadWrite)?;
//! mem.write_at(0, b"hello")?;
//!
//! // Another handle (in this process or another) checks what it opens, then attaches.
//! let other = SysvSegment::open(&key, &Expect::size(4096))?.attach(Access::ReadOnly)?;
//! let mut buf = [0; 5];
//! other.read_at(0, &mut buf)?;
//! assert_eq!(&buf, b"hello");
//! assert!(other.write_at(0, b"x").is_err()); // read-only
//!
//! owner.destroy()?; // IPC_RMID: the key is free at once, the memory stays while attached
//! assert!(matches!(SysvSegment::open(&key, &Expect::size(1)), Err(Error::NotFound { .. })));
//! mem.write_at(0, b"still")?;
//! # Ok(())
//! # }
//! ```
//!
//! # Lifecycle
//!
//! - [`SysvSegment::create`] creates exclusively (`IPC_CREAT | IPC_EXCL`) with exactly the mode
//!   asked for (System V ignores the umask) and returns an [`Owner`] that removes the segment
//!   when dropped. A key already in use is [`Error::AlreadyExists`], whatever its size or
//!   owner: an existing segment is never adopted by `create`. [`Key::Private`] always makes a
//!   new segment, reachable only by its id.
//! - [`SysvSegment::open`] finds the segment of a key and checks it (`IPC_STAT`) against an
//!   [`Expect`]: owned by our effective uid, granting nothing beyond the expected mode, at least
//!   the expected size; anything else is [`Error::Incompatible`] with both values, so a key
//!   squatted by another user (or an `ftok` collision) fails closed.
//! - [`SysvSegment::lookup`] and [`SysvSegment::open_id`] find a segment without those checks,
//!   for tools that work on other programs' segments (the kernel still checks permissions at
//!   attach).
//! - [`SysvSegment::attach`] maps the whole segment ([`Access::ReadWrite`] or
//!   [`Access::ReadOnly`]); the [`Attachment`] implements [`Segment`](ipc_core::Segment) and
//!   detaches when dropped ([`Attachment::detach`] consumes it). Dropping a handle never
//!   removes the segment.
//! - [`SysvSegment::destroy`] (or [`Removable::remove`]) is `IPC_RMID`. **A segment removed
//!   while attached stays usable by every attachment until the last detach**: the key is free
//!   at once (a new segment may be created under it), `ipcs -m` shows the old one with key 0
//!   and status `dest`, and its memory is released when its attach count drops to zero. Its id
//!   then stops working ([`Error::NotFound`]).
//!
//! Unlike a POSIX (file) mapping, a System V segment cannot be resized, so a peer cannot make
//! an access within an attachment fault; it can still write any byte at any time, so every
//! value read from shared memory is untrusted input.
//!
//! # References
//!
//! `sysvipc(7)`, `shmget(2)`, `shmat(2)`, `shmctl(2)`, `ftok(3)`, `ipcs(1)`, `ipcrm(1)`.

use std::io;

use ipc_core::{Error, ObjectId, Owner, Removable, Result};

use crate::Key;
use crate::sys::shm as sys;
pub use crate::sys::shm::Attachment;
pub use ipc_core::Expect;

/// Permissions of a segment created without an explicit mode, and the widest mode
/// [`Expect::default`] accepts.
pub const DEFAULT_MODE: u32 = ipc_core::DEFAULT_SEGMENT_MODE;

/// How to attach a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read and write.
    ReadWrite,
    /// Read only (`SHM_RDONLY`): [`Segment::write_at`](ipc_core::Segment::write_at) fails.
    ReadOnly,
}

/// What `IPC_STAT` says of a segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShmStat {
    /// The key (0 once removed while attached: the key is free again).
    pub key: libc::key_t,
    /// Size in bytes.
    pub size: usize,
    /// Pid of the creator (`shm_cpid`).
    pub creator_pid: i32,
    /// Pid of the last `shmat` / `shmdt` (`shm_lpid`).
    pub last_pid: i32,
    /// How many attachments exist (`shm_nattch`).
    pub attach_count: u64,
    /// Time of the last attach, seconds since the epoch (0: never).
    pub attach_time: i64,
    /// Time of the last detach.
    pub detach_time: i64,
    /// Time of the creation or last change by `IPC_SET`.
    pub change_time: i64,
    /// Owner's uid.
    pub uid: u32,
    /// Owner's gid.
    pub gid: u32,
    /// Creator's uid.
    pub creator_uid: u32,
    /// Creator's gid.
    pub creator_gid: u32,
    /// Permission bits (`0o777`).
    pub mode: u32,
    /// Whether it was removed (`IPC_RMID`) and lives on only until the last detach.
    pub removed: bool,
}

/// A System V shared-memory segment, by id. Dropping it does nothing to the segment: it stays
/// until removed ([`SysvSegment::destroy`], or the [`Owner`] that created it) and then until
/// its last detach.
#[derive(Debug)]
pub struct SysvSegment {
    shmid: i32,
    size: usize,
    name: String,
}

impl SysvSegment {
    /// Creates a segment of `size` bytes under `key` exclusively (`IPC_CREAT | IPC_EXCL`), with
    /// exactly `mode` (`0o600` is [`DEFAULT_MODE`]). The [`Owner`] removes it when dropped.
    ///
    /// Errors: [`Error::AlreadyExists`] if the key is in use (whatever that segment's size or
    /// owner); [`Error::NotFound`] for an `ftok` path that does not exist;
    /// [`Error::InvalidSpec`] for size 0 or a mode beyond `0o777`; [`Error::LimitExceeded`]
    /// naming `kernel.shmmax`, `kernel.shmmni` or `kernel.shmall` (or the memory the kernel
    /// would commit) when the kernel refuses the size or count.
    ///
    /// Pages are allocated when first touched, as for any anonymous shared memory: a machine
    /// that runs out of memory later meets the OOM killer, not an error here.
    pub fn create(key: &Key, size: usize, mode: u32) -> Result<Owner<SysvSegment>> {
        let name = object_name(key);
        if mode > 0o777 {
            return Err(Error::invalid_spec(
                format!("mode {mode:04o}"),
                format!("mode of {name} must be at most 0777"),
            ));
        }
        if size == 0 {
            return Err(Error::invalid_spec(
                "size 0",
                format!("size of {name} must be at least 1 byte"),
            ));
        }
        let k = key.resolve()?;
        let flags = libc::IPC_CREAT | libc::IPC_EXCL | mode as i32;
        let shmid = sys::shmget(k, size, flags).map_err(|e| match e.raw_os_error() {
            Some(libc::EINVAL) => Error::LimitExceeded {
                what: format!("kernel.shmmax (segment size, for {name} of {size} bytes)"),
                limit: ipc_core::sysctl("kernel.shmmax").unwrap_or(0),
            },
            Some(libc::ENOSPC) => Error::LimitExceeded {
                what: format!("kernel.shmmni or kernel.shmall (segments, creating {name})"),
                limit: ipc_core::sysctl("kernel.shmmni").unwrap_or(0),
            },
            Some(libc::ENOMEM) => Error::LimitExceeded {
                what: format!(
                    "memory the kernel would commit (vm.overcommit_memory, kernel.shmall), for \
                     {name} of {size} bytes"
                ),
                limit: ipc_core::sysctl("kernel.shmall").unwrap_or(0),
            },
            _ => Error::from_os("shmget", &name, e),
        })?;
        Ok(Owner::new(SysvSegment { shmid, size, name }))
    }

    /// Finds the segment of `key` and checks it: owned by our effective uid, granting nothing
    /// beyond `expect.mode`, at least `expect.min_size` bytes.
    ///
    /// Errors: [`Error::NotFound`] (no segment under the key, or a missing `ftok` path);
    /// [`Error::Incompatible`] naming what differs, with both values; [`Error::InvalidSpec`]
    /// for [`Key::Private`], which names no existing segment.
    pub fn open(key: &Key, expect: &Expect) -> Result<SysvSegment> {
        let seg = SysvSegment::lookup(key)?;
        let st = seg.stat()?;
        let euid = sys::geteuid();
        let incompatible = |reason: String| Error::Incompatible {
            object: seg.name.clone(),
            reason,
        };
        let adoption = expect.adoption();
        adoption
            .check_as(euid, st.uid, st.gid, st.mode)
            .map_err(incompatible)?;
        // The owner can be given away with IPC_SET; the creator cannot: it is accepted by the
        // same rule, so that a squatter cannot hand us a segment it made.
        adoption
            .check_owner(euid, st.creator_uid, st.creator_gid)
            .map_err(|reason| incompatible(format!("as creator: {reason}")))?;
        expect.check_size(&seg.name, st.size as u64)?;
        Ok(seg)
    }

    /// Finds the segment of `key` without checking owner, mode or size: for tools that work
    /// on segments other programs made. The kernel still checks permissions at attach.
    pub fn lookup(key: &Key) -> Result<SysvSegment> {
        let name = object_name(key);
        if *key == Key::Private {
            return Err(Error::invalid_spec(
                "private",
                "a private segment has no key to be found by: open it by id",
            ));
        }
        let k = key.resolve()?;
        let shmid = sys::shmget(k, 0, 0).map_err(|e| Error::from_os("shmget", &name, e))?;
        let size = stat_of(shmid, &name)?.size;
        Ok(SysvSegment { shmid, size, name })
    }

    /// The segment with id `shmid` (as `ipcs -m` or `ipcmk -M` print it), unchecked as by
    /// [`SysvSegment::lookup`]. An id that names no segment is [`Error::NotFound`].
    pub fn open_id(shmid: i32) -> Result<SysvSegment> {
        let name = format!("sysv-shm:id={shmid}");
        if shmid < 0 {
            return Err(Error::NotFound { object: name });
        }
        let size = stat_of(shmid, &name)?.size;
        Ok(SysvSegment { shmid, size, name })
    }

    /// Attaches the whole segment. The [`Attachment`] detaches when dropped and keeps
    /// working after the segment is removed.
    ///
    /// Errors: [`Error::NotFound`] if the segment is gone; [`Error::PermissionDenied`] if its
    /// mode does not allow `access`.
    pub fn attach(&self, access: Access) -> Result<Attachment> {
        let id = ObjectId {
            family: "sysv-shm",
            name: self
                .name
                .strip_prefix("sysv-shm:")
                .unwrap_or(&self.name)
                .to_owned(),
        };
        Attachment::attach(self.shmid, access == Access::ReadOnly, id)
            .map_err(|e| id_error("shmat", &self.name, e))
    }

    /// `IPC_STAT`: size, pids, attach count, times, owner, mode.
    pub fn stat(&self) -> Result<ShmStat> {
        stat_of(self.shmid, &self.name)
    }

    /// Removes the segment (`IPC_RMID`): the key is free at once; attachments keep working
    /// until the last one is detached, when the memory goes.
    pub fn destroy(&self) -> Result<()> {
        remove_id(self.shmid, &self.name)
    }

    /// Changes the segment's owner and permissions (`IPC_SET`); allowed to its owner, its
    /// creator and `CAP_IPC_OWNER`. Errors: [`Error::PermissionDenied`], [`Error::NotFound`],
    /// [`Error::InvalidSpec`] for a mode beyond `0o777`.
    pub fn set_owner_and_mode(&self, uid: u32, gid: u32, mode: u32) -> Result<()> {
        let mode = u16::try_from(mode)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| {
                Error::invalid_spec(
                    format!("mode {mode:04o}"),
                    format!("mode of {} must be at most 0777", self.name),
                )
            })?;
        sys::set(self.shmid, uid, gid, mode).map_err(|e| id_error("shmctl(IPC_SET)", &self.name, e))
    }

    /// The segment's id (`shmid`).
    pub fn id(&self) -> i32 {
        self.shmid
    }

    /// Its size in bytes, when it was found or created.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Its name for messages: `sysv-shm:key=0x…`, `sysv-shm:ftok=…`, `sysv-shm:id=N`.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Removable for SysvSegment {
    /// `IPC_RMID` of this segment's id. A segment already removed is [`Error::NotFound`].
    fn remove(&self) -> Result<()> {
        remove_id(self.shmid, &self.name)
    }

    fn object_name(&self) -> String {
        self.name.clone()
    }
}

/// Removes the segment with id `shmid` (`IPC_RMID`) without checking it: for clean-up tools.
pub fn remove_id(shmid: i32, name: &str) -> Result<()> {
    sys::remove(shmid).map_err(|e| id_error("shmctl(IPC_RMID)", name, e))
}

fn stat_of(shmid: i32, name: &str) -> Result<ShmStat> {
    let ds = sys::stat(shmid).map_err(|e| id_error("shmctl(IPC_STAT)", name, e))?;
    let mode = u32::from(ds.shm_perm.mode);
    Ok(ShmStat {
        key: ds.shm_perm.__key,
        size: ds.shm_segsz,
        creator_pid: ds.shm_cpid,
        last_pid: ds.shm_lpid,
        attach_count: ds.shm_nattch,
        attach_time: ds.shm_atime,
        detach_time: ds.shm_dtime,
        change_time: ds.shm_ctime,
        uid: ds.shm_perm.uid,
        gid: ds.shm_perm.gid,
        creator_uid: ds.shm_perm.cuid,
        creator_gid: ds.shm_perm.cgid,
        mode: mode & 0o777,
        removed: mode & SHM_DEST != 0,
    })
}

/// An error of a call on an id: `EINVAL` / `EIDRM` there mean the segment is gone.
fn id_error(op: &str, name: &str, e: io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::EINVAL | libc::EIDRM) => Error::NotFound {
            object: name.to_owned(),
        },
        _ => Error::from_os(op, name, e),
    }
}

/// The mode bit the kernel sets on a segment removed while attached (`SHM_DEST`, from
/// `<linux/shm.h>`; `libc` does not export it).
const SHM_DEST: u32 = 0o1000;

fn object_name(key: &Key) -> String {
    format!("sysv-shm:{key}")
}
