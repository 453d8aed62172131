//! POSIX shared-memory segments: `shm_open`, sized and reserved at creation, mapped with
//! `mmap(MAP_SHARED)`, removed with `shm_unlink`.
//!
//! ```
//! use ipc_core::{Error, Segment};
//! use ipc_posix::PosixName;
//! use ipc_posix::shm::{Expect, SharedMemory};
//!
//! # fn main() -> Result<(), Error> {
//! let name = PosixName::new(&format!("/ipc-doc-shm-{}", std::process::id()))?;
//! // Exclusive creation, mode 0600; the Owner removes the name when dropped.
//! let owner = SharedMemory::create(&name, 4096, 0o600)?;
//! let map = owner.map()?;
//! map.write_at(0, b"hello")?;
//!
//! // Another handle (in this process or another) checks what it opens, then maps it.
//! let other = SharedMemory::open(&name, &Expect::size(4096))?.map()?;
//! let mut buf = [0; 5];
//! other.read_at(0, &mut buf)?;
//! assert_eq!(&buf, b"hello");
//!
//! map.unmap(); // consumed: no access after this
//! owner.destroy()?; // shm_unlink, reporting failure
//! assert!(matches!(
//!     SharedMemory::open(&name, &Expect::size(4096)),
//!     Err(Error::NotFound { .. })
//! ));
//! # Ok(())
//! # }
//! ```
//!
//! # Lifecycle
//!
//! - [`SharedMemory::create`] creates exclusively (`O_CREAT | O_EXCL`) with exactly the mode
//!   asked for (`fchmod` after `shm_open`, which applies the umask), sets the size and reserves
//!   every page with `fallocate`, so that a segment larger than `/dev/shm` can hold fails here
//!   with [`Error::LimitExceeded`] rather than later with `SIGBUS`. It returns an
//!   [`Owner`], which removes the name when dropped; a creation that fails half-way removes
//!   what it made before returning.
//! - [`SharedMemory::open`] opens an existing object and checks it against an [`Expect`]: a
//!   regular file owned by our effective uid, with no permission beyond the expected mode, and
//!   at least the expected size. Anything else is [`Error::Incompatible`] naming both values,
//!   so a name squatted by another user fails closed.
//! - [`SharedMemory::open_or_create`] does one or the other and says which ([`Opened`]).
//! - [`SharedMemory::map`] maps the whole object read-write; the [`Mapping`] is independent of
//!   the handle (it outlives `close`) and implements [`Segment`](ipc_core::Segment); [`Mapping::unmap`] consumes
//!   it. Dropping a handle closes it and never removes the object.
//!
//! A peer that may open the object read-write (our uid, within the mode) could still shrink
//! it with `ftruncate` after it was mapped; touching the lost pages then raises `SIGBUS`. Every
//! shared file mapping has that property; [`SharedMemory::map`] at least refuses to map an
//! object that is already smaller than the handle's size.
//!
//! # References
//!
//! `shm_overview(7)`, `shm_open(3)`, `shm_unlink(3)`, `ftruncate(2)`, `fallocate(2)`,
//! `mmap(2)`, `fstat(2)`, `statvfs(3)`, `getrlimit(2)` (`RLIMIT_FSIZE`, `RLIMIT_NOFILE`).

use std::ops::Deref;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use ipc_core::{Adoption, Create, Error, FileKind, ObjectId, Owner, Removable, Result};
use nix::NixPath;
use nix::errno::Errno;
use nix::fcntl::{FallocateFlags, OFlag, fallocate};
use nix::sys::stat::{FileStat, Mode, fchmod, fstat, lstat};

use crate::PosixName;
pub use crate::sys::shm::Mapping;
pub use ipc_core::Expect;

/// Permissions of a segment created without an explicit mode, and the widest mode
/// [`Expect::default`] accepts.
pub const DEFAULT_MODE: u32 = ipc_core::DEFAULT_SEGMENT_MODE;

/// Where the C library keeps POSIX shared-memory objects (and named semaphores, as `sem.NAME`).
pub(crate) const SHM_DIR: &str = "/dev/shm";

/// How many times [`SharedMemory::open_or_create`] retries when the object appears or
/// disappears between its two attempts.
const OPEN_OR_CREATE_ATTEMPTS: usize = 8;

/// An open POSIX shared-memory object. Dropping it closes the descriptor; the object stays
/// until removed ([`Removable::remove`], [`unlink`], or the [`Owner`] that created it).
#[derive(Debug)]
pub struct SharedMemory {
    name: PosixName,
    fd: OwnedFd,
    size: usize,
}

/// The result of an open that may create: either this call created the object (and its
/// [`Owner`] removes it when dropped), or it opened and checked an existing one.
#[derive(Debug)]
pub enum Opened<T: Removable> {
    /// Created by this call.
    Created(Owner<T>),
    /// Found and checked; dropping it never removes the object.
    Existing(T),
}

impl<T: Removable> Opened<T> {
    /// Whether this call created the object.
    pub fn was_created(&self) -> bool {
        matches!(self, Opened::Created(_))
    }

    /// The owner, if this call created the object.
    pub fn into_owner(self) -> Option<Owner<T>> {
        match self {
            Opened::Created(owner) => Some(owner),
            Opened::Existing(_) => None,
        }
    }
}

impl<T: Removable> Deref for Opened<T> {
    type Target = T;
    fn deref(&self) -> &T {
        match self {
            Opened::Created(owner) => owner,
            Opened::Existing(object) => object,
        }
    }
}

impl SharedMemory {
    /// Creates the object `name` exclusively, `size` bytes long (all reserved), with exactly
    /// `mode` (`0o600` is [`DEFAULT_MODE`]). The returned [`Owner`] removes the name when dropped.
    ///
    /// Errors: [`Error::AlreadyExists`] if the name is taken; [`Error::InvalidSpec`] for size 0
    /// or a mode beyond `0o777`; [`Error::LimitExceeded`] for a size above `isize::MAX`,
    /// `RLIMIT_FSIZE` or the free space of `/dev/shm` (then nothing is left behind).
    pub fn create(name: &PosixName, size: usize, mode: u32) -> Result<Owner<SharedMemory>> {
        let object = object_name(name);
        check_mode(&object, mode)?;
        check_size(&object, size, SHM_DIR)?;
        let fd = nix::sys::mman::shm_open(
            name.as_c_str(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(mode),
        )
        .map_err(|e| os_error("shm_open", &object, e))?;
        // From here on, an early return drops the owner, which removes the half-made object.
        let owner = Owner::new(SharedMemory {
            name: name.clone(),
            fd,
            size,
        });
        // shm_open applied the umask: the mode asked for is the mode the object gets.
        fchmod(owner.fd.as_fd(), Mode::from_bits_truncate(mode))
            .map_err(|e| os_error("fchmod", &object, e))?;
        reserve(&owner.fd, size, &object, SHM_DIR)?;
        Ok(owner)
    }

    /// Opens the existing object `name` read-write and checks it: a regular file owned by our
    /// effective uid, granting nothing beyond `expect.mode`, at least `expect.min_size` bytes
    /// (and not empty). The handle's size is the object's actual size.
    ///
    /// Errors: [`Error::NotFound`]; [`Error::Incompatible`] naming what differs, with both
    /// values; [`Error::PermissionDenied`] if the mode does not let us open it.
    pub fn open(name: &PosixName, expect: &Expect) -> Result<SharedMemory> {
        let shm = SharedMemory::open_any_size(name, &expect.adoption())?;
        expect.check_size(&object_name(name), shm.size as u64)?;
        Ok(shm)
    }

    /// [`SharedMemory::open`] without the size check: an empty object is returned too (with
    /// [`size`](SharedMemory::size) 0, which cannot be mapped), for a caller that waits for a
    /// creator between `shm_open` and sizing. The size is the one of this very open, so no
    /// second look at the name can disagree with it.
    pub(crate) fn open_any_size(name: &PosixName, adoption: &Adoption) -> Result<SharedMemory> {
        let object = object_name(name);
        if *adoption != Adoption::anything() {
            // A tool's `Adoption::anything` takes every mode; an endpoint's is permission bits.
            check_mode(&object, adoption.mode)?;
        }
        let fd = nix::sys::mman::shm_open(
            name.as_c_str(),
            OFlag::O_RDWR | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| os_error("shm_open", &object, e))?;
        // fstat of the descriptor: what we check is what we opened, whatever the name does.
        let st = fstat(fd.as_fd()).map_err(|e| os_error("fstat", &object, e))?;
        check_object(&object, &st, adoption)?;
        let size = mappable_size(&object, &st)?;
        Ok(SharedMemory {
            name: name.clone(),
            fd,
            size,
        })
    }

    /// Opens `name` if it exists (checked as by [`SharedMemory::open`] with at least `size`
    /// bytes and mode no wider than `mode`), else creates it as [`SharedMemory::create`] does.
    /// A race with another process creating or removing the same name is retried.
    pub fn open_or_create(
        name: &PosixName,
        size: usize,
        mode: u32,
    ) -> Result<Opened<SharedMemory>> {
        SharedMemory::open_as(name, Create::IfMissing, size, mode)
    }

    /// Opens according to a transport string's `create` option: [`Create::Always`] creates
    /// exclusively, [`Create::Never`] opens an existing object of at least `size` bytes and mode
    /// no wider than `mode`, [`Create::IfMissing`] does either.
    pub fn open_as(
        name: &PosixName,
        create: Create,
        size: usize,
        mode: u32,
    ) -> Result<Opened<SharedMemory>> {
        let expect = Expect::size(size).mode(mode);
        match create {
            Create::Always => SharedMemory::create(name, size, mode).map(Opened::Created),
            Create::Never => SharedMemory::open(name, &expect).map(Opened::Existing),
            Create::IfMissing => {
                let mut last = None;
                for _ in 0..OPEN_OR_CREATE_ATTEMPTS {
                    match SharedMemory::create(name, size, mode) {
                        Ok(owner) => return Ok(Opened::Created(owner)),
                        Err(Error::AlreadyExists { .. }) => {}
                        Err(e) => return Err(e),
                    }
                    match SharedMemory::open(name, &expect) {
                        Ok(shm) => return Ok(Opened::Existing(shm)),
                        // Removed between the two attempts: create again.
                        Err(e @ Error::NotFound { .. }) => last = Some(e),
                        Err(e) => return Err(e),
                    }
                }
                Err(last.expect("the loop ran at least once"))
            }
        }
    }

    /// The object's name.
    pub fn name(&self) -> &PosixName {
        &self.name
    }

    /// Its size in bytes: what [`SharedMemory::map`] maps.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Maps the whole object (this handle's [`size`](SharedMemory::size)) read-write and
    /// shared. The object is checked first: one that shrank below that size since it was
    /// opened is [`Error::Incompatible`], never a mapping beyond its end.
    pub fn map(&self) -> Result<Mapping> {
        let id = ObjectId {
            family: "posix-shm",
            name: self.name.as_str().to_owned(),
        };
        map_checked(self.fd.as_fd(), self.size, &self.object_name(), id)
    }
}

impl Removable for SharedMemory {
    /// `shm_unlink`, if the name still refers to the object this handle has open; an object
    /// put in its place since is left alone ([`Error::Incompatible`]).
    fn remove(&self) -> Result<()> {
        let object = self.object_name();
        let mine = fstat(self.fd.as_fd()).map_err(|e| os_error("fstat", &object, e))?;
        ensure_same_object(&object, shm_path(&self.name).as_str(), &mine)?;
        unlink(&self.name)
    }

    fn object_name(&self) -> String {
        object_name(&self.name)
    }
}

/// Removes the name `name` (`shm_unlink`) without opening or checking it: for clean-up tools.
/// Processes that have it open or mapped keep it until they close and unmap.
pub fn unlink(name: &PosixName) -> Result<()> {
    nix::sys::mman::shm_unlink(name.as_c_str())
        .map_err(|e| os_error("shm_unlink", &object_name(name), e))
}

fn object_name(name: &PosixName) -> String {
    format!("posix-shm:{name}")
}

/// Where the object `name` appears in the file system (`/dev/shm/NAME`).
pub(crate) fn shm_path(name: &PosixName) -> String {
    format!("{SHM_DIR}{name}")
}

/// The size `st` gives, if it can be mapped: Rust addresses at most `isize::MAX` bytes.
pub(crate) fn mappable_size(object: &str, st: &FileStat) -> Result<usize> {
    let actual = u64::try_from(st.st_size).unwrap_or(0);
    usize::try_from(actual)
        .ok()
        .filter(|s| *s <= isize::MAX as usize)
        .ok_or_else(|| Error::LimitExceeded {
            what: format!("isize::MAX (largest mapping), for {object} of {actual} bytes"),
            limit: isize::MAX as u64,
        })
}

/// Maps `size` bytes of the file `fd` read-write and shared, after checking that it still has
/// them: a file that shrank below `size` since it was opened is [`Error::Incompatible`], never
/// a mapping beyond its end.
/// Maps the first `size` bytes of a descriptor of shared memory you hold (a `memfd` a peer
/// handed over, say), read-write and shared; `id` names it in errors and to [`Segment`] users.
/// A descriptor of fewer than `size` bytes is [`Error::Incompatible`], never a mapping beyond
/// its end. Opened read-write, of a type `mmap` shares (a memfd, a shared-memory object, a
/// regular file); anything else fails with the `mmap` error.
///
/// The object can still be shrunk afterwards by whoever may truncate it, making an access raise
/// `SIGBUS`: seal a memfd against that (`F_SEAL_SHRINK`) where peers are not trusted.
///
/// [`Segment`]: ipc_core::Segment
pub fn map_fd(fd: BorrowedFd<'_>, size: usize, id: ObjectId) -> Result<Mapping> {
    let object = id.to_string();
    map_checked(fd, size, &object, id)
}

pub(crate) fn map_checked(
    fd: BorrowedFd<'_>,
    size: usize,
    object: &str,
    id: ObjectId,
) -> Result<Mapping> {
    let st = fstat(fd).map_err(|e| os_error("fstat", object, e))?;
    let actual = u64::try_from(st.st_size).unwrap_or(0);
    if actual < size as u64 {
        return Err(Error::Incompatible {
            object: object.to_owned(),
            reason: format!("it shrank to {actual} bytes since it was opened with {size} bytes"),
        });
    }
    Mapping::new(fd, size, id).map_err(|e| os_error("mmap", object, errno_of(&e)))
}

/// Zero is not a segment; above `isize::MAX` Rust cannot address it; above `RLIMIT_FSIZE`
/// the kernel would send `SIGXFSZ`; above the free space of `dir` (where the file is made) it
/// cannot be reserved.
pub(crate) fn check_size(object: &str, size: usize, dir: &str) -> Result<()> {
    if size == 0 {
        return Err(Error::invalid_spec(
            "size=0",
            format!("{object}: a shared-memory segment needs at least 1 byte"),
        ));
    }
    if size > isize::MAX as usize {
        return Err(Error::LimitExceeded {
            what: "isize::MAX (largest mapping)".into(),
            limit: isize::MAX as u64,
        });
    }
    let (soft, _) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_FSIZE)
        .map_err(|e| os_error("getrlimit", object, e))?;
    if soft != libc::RLIM_INFINITY && size as u64 > soft {
        return Err(Error::LimitExceeded {
            what: "RLIMIT_FSIZE (largest file this process may write)".into(),
            limit: soft,
        });
    }
    match Space::of(dir) {
        Some(space) if space.blocks_for(size as u64) > space.free_blocks => {
            Err(Error::LimitExceeded {
                what: format!("{dir} free space"),
                limit: space.free_bytes(),
            })
        }
        _ => Ok(()),
    }
}

/// Sets the size and reserves every page, so that running out of room is `ENOSPC` now rather
/// than `SIGBUS` when a page is first touched.
pub(crate) fn reserve(fd: &OwnedFd, size: usize, object: &str, dir: &str) -> Result<()> {
    let len = libc::off_t::try_from(size).map_err(|_| Error::LimitExceeded {
        what: "off_t (largest file offset)".into(),
        limit: libc::off_t::MAX as u64,
    })?;
    loop {
        // Mode 0 allocates the range and extends the size to cover it.
        match fallocate(fd.as_fd(), FallocateFlags::empty(), 0, len) {
            Ok(()) => return Ok(()),
            // tmpfs gives up (and gives back what it allocated) when a signal arrives.
            Err(Errno::EINTR) => continue,
            Err(Errno::EOPNOTSUPP) => {
                // A file system without it: size it at least (the free space was checked
                // before creating).
                return nix::unistd::ftruncate(fd.as_fd(), len)
                    .map_err(|e| os_error_in("ftruncate", object, e, dir));
            }
            Err(e) => return Err(os_error_in("fallocate", object, e, dir)),
        }
    }
}

/// Refuses anything but a regular file that `adoption` accepts (by default: owned by our
/// effective uid, permissions within the requested mode).
pub(crate) fn check_object(object: &str, st: &FileStat, adoption: &Adoption) -> Result<()> {
    adoption.check_file(object, FileKind::Regular, st.st_mode, st.st_uid, st.st_gid)
}

/// A mode is permission bits only.
pub(crate) fn check_mode(object: &str, mode: u32) -> Result<()> {
    if mode > 0o777 {
        return Err(Error::invalid_spec(
            format!("mode={mode:o}"),
            format!("{object}: a mode is permission bits, 0000..=0777"),
        ));
    }
    Ok(())
}

/// Device and inode: what tells the object we hold from another put under its name since.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) dev: u64,
    pub(crate) ino: u64,
}

impl From<&FileStat> for Identity {
    fn from(st: &FileStat) -> Identity {
        Identity {
            dev: st.st_dev,
            ino: st.st_ino,
        }
    }
}

/// Checks that `path` (the object's name in `/dev/shm`) still is the object `mine` before it is
/// unlinked. A missing path passes: the unlink then reports `NotFound` itself.
pub(crate) fn ensure_same_object<P: NixPath + ?Sized>(
    object: &str,
    path: &P,
    mine: &FileStat,
) -> Result<()> {
    ensure_identity(object, path, Identity::from(mine))
}

/// As [`ensure_same_object`], for an identity recorded earlier.
pub(crate) fn ensure_identity<P: NixPath + ?Sized>(
    object: &str,
    path: &P,
    mine: Identity,
) -> Result<()> {
    match lstat(path) {
        Ok(st) if Identity::from(&st) != mine => Err(Error::Incompatible {
            object: object.to_owned(),
            reason: format!(
                "the name now refers to another object (inode {}, ours is {}): not removed",
                st.st_ino, mine.ino
            ),
        }),
        _ => Ok(()),
    }
}

/// The free space of a file system, when it has a limit.
struct Space {
    free_blocks: u64,
    block_size: u64,
    files: u64,
    free_files: u64,
}

impl Space {
    /// `statvfs(dir)`; `None` if unknown or unlimited (a tmpfs mounted with `size=0` reports 0
    /// blocks).
    fn of(dir: &str) -> Option<Space> {
        let st = nix::sys::statvfs::statvfs(dir).ok()?;
        let block_size = st.fragment_size() as u64;
        if st.blocks() == 0 || block_size == 0 {
            return None;
        }
        Some(Space {
            free_blocks: st.blocks_available() as u64,
            block_size,
            files: st.files() as u64,
            free_files: st.files_available() as u64,
        })
    }

    fn blocks_for(&self, bytes: u64) -> u64 {
        bytes.div_ceil(self.block_size)
    }

    fn free_bytes(&self) -> u64 {
        self.free_blocks.saturating_mul(self.block_size)
    }
}

/// The `errno` of an `io::Error` from a system call.
pub(crate) fn errno_of(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// Classifies an `errno` from an operation on a POSIX object: the limits that can be raised
/// become [`Error::LimitExceeded`] naming the limit and its value; the rest as
/// [`Error::from_os`].
pub(crate) fn os_error(op: &str, object: &str, errno: Errno) -> Error {
    os_error_in(op, object, errno, SHM_DIR)
}

/// [`os_error`] for an object in the directory `dir`, whose file system `ENOSPC` is about.
pub(crate) fn os_error_in(op: &str, object: &str, errno: Errno, dir: &str) -> Error {
    use nix::sys::resource::{Resource, getrlimit};
    match errno {
        Errno::EMFILE => Error::LimitExceeded {
            what: "RLIMIT_NOFILE (open files per process)".into(),
            limit: getrlimit(Resource::RLIMIT_NOFILE).map_or(0, |(soft, _)| soft),
        },
        Errno::ENFILE => Error::LimitExceeded {
            what: "fs.file-max (open files system-wide)".into(),
            limit: std::fs::read_to_string("/proc/sys/fs/file-max")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0),
        },
        Errno::ENOSPC => match Space::of(dir) {
            Some(space) if space.files > 0 && space.free_files == 0 => Error::LimitExceeded {
                what: format!("{dir} inodes (nr_inodes)"),
                limit: space.files,
            },
            space => Error::LimitExceeded {
                what: format!("{dir} free space"),
                limit: space.map_or(0, |s| s.free_bytes()),
            },
        },
        e => Error::from_os(op, object, e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipc_core::Segment;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn unique() -> PosixName {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        PosixName::new(&format!("/ipc-unit-shm-{}-{n}", std::process::id())).unwrap()
    }

    fn exists(name: &PosixName) -> bool {
        std::fs::symlink_metadata(shm_path(name)).is_ok()
    }

    #[test]
    fn created_object_has_exact_mode_size_and_reserved_pages() {
        let name = unique();
        let owner = SharedMemory::create(&name, 10_000, 0o666).unwrap();
        let st = fstat(owner.fd.as_fd()).unwrap();
        assert_eq!(st.st_mode & 0o7777, 0o666);
        assert_eq!(st.st_size, 10_000);
        // fallocate reserved the pages: 10 000 bytes need 3 pages of 4 KiB (st_blocks is in
        // 512-byte units).
        assert!(st.st_blocks * 512 >= 10_000, "{} blocks", st.st_blocks);
        assert_eq!(owner.size(), 10_000);
        assert_eq!(owner.object_name(), format!("posix-shm:{name}"));
        drop(owner);
        assert!(!exists(&name));
    }

    #[test]
    fn mapping_has_the_segment_contract() {
        let name = unique();
        let owner = SharedMemory::create(&name, 5000, DEFAULT_MODE).unwrap();
        let map = owner.map().unwrap();
        assert_eq!(map.len(), 5000);
        assert_eq!(map.base().as_ptr() as usize % 4096, 0);
        assert_eq!(map.id().to_string(), format!("posix-shm:{name}"));
        // Fresh pages read as zero; the last byte is in bounds, one more is not.
        let mut last = [9u8; 1];
        map.read_at(4999, &mut last).unwrap();
        assert_eq!(last, [0]);
        assert!(matches!(
            map.write_at(4999, b"ab"),
            Err(Error::LimitExceeded { limit: 5000, .. })
        ));
        // The mapping outlives the handle and its name.
        owner.destroy().unwrap();
        map.write_at(0, b"still mapped").unwrap();
        map.unmap();
    }

    #[test]
    fn mode_beyond_permission_bits_is_invalid() {
        let name = unique();
        let err = SharedMemory::create(&name, 4096, 0o4600).unwrap_err();
        assert!(matches!(err, Error::InvalidSpec { .. }), "{err}");
        assert!(!exists(&name));
    }

    #[test]
    fn enospc_after_creation_removes_the_half_made_object() {
        // Past the pre-check (as if another process filled /dev/shm in between): fallocate
        // must fail with ENOSPC, and the owner must remove the object. Only where /dev/shm
        // has a size limit, so that the kernel refuses at once instead of allocating.
        let Some(space) = Space::of(SHM_DIR) else {
            eprintln!("skipped: /dev/shm has no size limit");
            return;
        };
        let total = space
            .block_size
            .saturating_mul(nix::sys::statvfs::statvfs(SHM_DIR).unwrap().blocks() as u64);
        let size = usize::try_from(total.saturating_mul(2))
            .unwrap()
            .min(isize::MAX as usize);
        let name = unique();
        let fd = nix::sys::mman::shm_open(
            name.as_c_str(),
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR,
            Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let owner = Owner::new(SharedMemory {
            name: name.clone(),
            fd,
            size,
        });
        let err = reserve(&owner.fd, size, "test", SHM_DIR).unwrap_err();
        assert!(
            matches!(&err, Error::LimitExceeded { what, .. } if what.contains("/dev/shm")),
            "{err}"
        );
        drop(owner);
        assert!(!exists(&name));
    }

    #[test]
    fn remove_leaves_a_replacement_alone() {
        let name = unique();
        let first = SharedMemory::create(&name, 4096, DEFAULT_MODE).unwrap();
        unlink(&name).unwrap();
        let second = SharedMemory::create(&name, 4096, DEFAULT_MODE).unwrap();
        let err = first.destroy().unwrap_err();
        assert!(matches!(err, Error::Incompatible { .. }), "{err}");
        assert!(exists(&name));
        second.destroy().unwrap();
        assert!(!exists(&name));
    }

    #[test]
    fn errno_classification_names_limits() {
        let err = os_error("shm_open", "posix-shm:/x", Errno::EMFILE);
        assert!(
            matches!(&err, Error::LimitExceeded { what, limit } if what.contains("RLIMIT_NOFILE") && *limit > 0),
            "{err}"
        );
        let err = os_error("shm_open", "posix-shm:/x", Errno::ENFILE);
        assert!(matches!(&err, Error::LimitExceeded { what, .. } if what.contains("file-max")));
        assert!(matches!(
            os_error("shm_open", "posix-shm:/x", Errno::ENOENT),
            Error::NotFound { .. }
        ));
        assert_eq!(
            os_error("mmap", "posix-shm:/x", Errno::ENODEV).errno(),
            Some(libc::ENODEV)
        );
    }
}
