//! Regular files as shared memory: created exclusively at a path, sized and reserved, mapped
//! with `mmap(MAP_SHARED)`, removed with `unlink`. What [`shm`](crate::shm) does with a POSIX
//! shared-memory object (itself a file under `/dev/shm`), at a path the user picks: on a tmpfs
//! (`/dev/shm/app/ring`, `/run/user/UID/…`) it is memory, on a disk it is also written back to
//! the file, and either way it is listed, copied, owned and removed with ordinary tools.
//!
//! ```
//! use ipc_core::{Error, Segment};
//! use ipc_posix::file::MappedFile;
//! use ipc_posix::shm::Expect;
//! use std::path::Path;
//!
//! # fn main() -> Result<(), Error> {
//! let path = format!("/tmp/ipc-doc-file-{}", std::process::id());
//! // Exclusive creation, mode 0600; the Owner removes the file when dropped.
//! let owner = MappedFile::create(Path::new(&path), 4096, 0o600)?;
//! let map = owner.map()?;
//! map.write_at(0, b"hello")?;
//!
//! // Another handle (in this process or another) checks what it opens, then maps it.
//! let other = MappedFile::open(Path::new(&path), &Expect::size(4096))?.map()?;
//! let mut buf = [0; 5];
//! other.read_at(0, &mut buf)?;
//! assert_eq!(&buf, b"hello");
//! assert_eq!(std::fs::read(&path).unwrap()[..5], *b"hello"); // it is an ordinary file
//!
//! owner.destroy()?; // unlink, reporting failure; the mappings stay valid until dropped
//! assert!(matches!(
//!     MappedFile::open(Path::new(&path), &Expect::size(4096)),
//!     Err(Error::NotFound { .. })
//! ));
//! # Ok(())
//! # }
//! ```
//!
//! # Lifecycle
//!
//! - [`MappedFile::create`] creates exclusively (`O_CREAT | O_EXCL`, which also refuses a
//!   symbolic link at the path) with exactly the mode asked for, sets the size and reserves
//!   every block with `fallocate` (plain `ftruncate` on a file system without it), so that a
//!   file larger than its file system has room for fails here with [`Error::LimitExceeded`]
//!   naming the directory, rather than later with `SIGBUS`. The directory must exist: a
//!   missing one is [`Error::NotFound`] naming it.
//! - [`MappedFile::open`] opens an existing file and checks it as [`SharedMemory::open`]
//!   does: a regular file (not a symbolic link: `O_NOFOLLOW`, as a FIFO is opened) that the
//!   [`Expect`]'s adoption accepts, at least the expected size.
//! - [`MappedFile::map`] maps the whole file; the [`Mapping`] outlives the handle.
//!
//! A peer allowed to open the file read-write (our uid, within the mode, or anyone the
//! directory and mode let in) could shrink it with `ftruncate` after it was mapped; touching
//! the lost pages then raises `SIGBUS`, exactly as for a POSIX shared-memory object.
//! [`MappedFile::map`] refuses to map a file that is already smaller than the handle's size.
//!
//! # References
//!
//! `open(2)` (`O_EXCL`, `O_NOFOLLOW`), `fallocate(2)`, `mmap(2)`, `unlink(2)`.
//!
//! [`SharedMemory::open`]: crate::shm::SharedMemory::open

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use ipc_core::{Adoption, Error, Expect, ObjectId, Owner, Removable, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::{Mode, fchmod, fstat, lstat};

use crate::shm::{
    Identity, Mapping, check_mode, check_object, check_size, ensure_same_object, map_checked,
    mappable_size, os_error_in, reserve,
};

/// An open regular file to be mapped shared. Dropping it closes the descriptor; the file
/// stays until removed ([`Removable::remove`], or the [`Owner`] that created it).
#[derive(Debug)]
pub struct MappedFile {
    path: PathBuf,
    fd: OwnedFd,
    size: usize,
}

impl MappedFile {
    /// Creates the file `path` exclusively, `size` bytes long (all reserved), with exactly
    /// `mode`. The returned [`Owner`] removes it when dropped.
    ///
    /// Errors: [`Error::AlreadyExists`] if the path is taken (by anything, a symbolic link
    /// included); [`Error::NotFound`] naming the directory if it does not exist;
    /// [`Error::InvalidSpec`] for size 0 or a mode beyond `0o777`; [`Error::LimitExceeded`]
    /// for a size above `isize::MAX`, `RLIMIT_FSIZE` or the free space of the directory's
    /// file system (then nothing is left behind).
    pub fn create(path: &Path, size: usize, mode: u32) -> Result<Owner<MappedFile>> {
        let object = object_name(path);
        let dir = directory(path);
        check_mode(&object, mode)?;
        check_size(&object, size, &dir)?;
        let flags =
            OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
        let fd = nix::fcntl::open(path, flags, Mode::from_bits_truncate(mode))
            .map_err(|e| open_error(path, e))?;
        // From here on, an early return drops the owner, which removes the half-made file.
        let owner = Owner::new(MappedFile {
            path: path.to_owned(),
            fd,
            size,
        });
        // open applied the umask: the mode asked for is the mode the file gets.
        fchmod(owner.fd.as_fd(), Mode::from_bits_truncate(mode))
            .map_err(|e| os_error_in("fchmod", &object, e, &dir))?;
        reserve(&owner.fd, size, &object, &dir)?;
        Ok(owner)
    }

    /// Opens the existing file `path` read-write and checks it: a regular file that
    /// `expect`'s adoption accepts (by default ours, granting nothing beyond `expect.mode`), at
    /// least `expect.min_size` bytes and not empty.
    ///
    /// Errors: [`Error::NotFound`] (naming the directory if that is what is missing);
    /// [`Error::Incompatible`] naming what differs (a symbolic link, another kind of file,
    /// owner, mode, size); [`Error::PermissionDenied`].
    pub fn open(path: &Path, expect: &Expect) -> Result<MappedFile> {
        let file = MappedFile::open_any_size(path, &expect.adoption())?;
        expect.check_size(&object_name(path), file.size as u64)?;
        Ok(file)
    }

    /// [`MappedFile::open`] without the size check: an empty file is returned too (size 0,
    /// which cannot be mapped), for a caller that waits for its creator to size it.
    pub(crate) fn open_any_size(path: &Path, adoption: &Adoption) -> Result<MappedFile> {
        let object = object_name(path);
        let dir = directory(path);
        if *adoption != Adoption::anything() {
            check_mode(&object, adoption.mode)?;
        }
        // Checked before opening, so that a device or FIFO put at the path is never opened.
        let before = lstat(path).map_err(|e| open_error(path, e))?;
        check_object(&object, &before, adoption)?;
        let flags = OFlag::O_RDWR | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK;
        let fd = nix::fcntl::open(path, flags, Mode::empty()).map_err(|e| open_error(path, e))?;
        // What we check is what we opened, whatever the path does meanwhile.
        let st = fstat(fd.as_fd()).map_err(|e| os_error_in("fstat", &object, e, &dir))?;
        if Identity::from(&st) != Identity::from(&before) {
            return Err(Error::Incompatible {
                object,
                reason: "the path was replaced while it was being opened".into(),
            });
        }
        check_object(&object, &st, adoption)?;
        let size = mappable_size(&object, &st)?;
        Ok(MappedFile {
            path: path.to_owned(),
            fd,
            size,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its size in bytes: what [`MappedFile::map`] maps.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Maps the whole file (this handle's [`size`](MappedFile::size)) read-write and shared.
    /// A file that shrank below that size since it was opened is [`Error::Incompatible`],
    /// never a mapping beyond its end.
    pub fn map(&self) -> Result<Mapping> {
        let id = ObjectId {
            family: "file-shm",
            name: self.path.display().to_string(),
        };
        map_checked(self.fd.as_fd(), self.size, &self.object_name(), id)
    }
}

impl Removable for MappedFile {
    /// `unlink`, if the path still refers to the file this handle has open; a file put in its
    /// place since is left alone ([`Error::Incompatible`]).
    fn remove(&self) -> Result<()> {
        let object = self.object_name();
        let dir = directory(&self.path);
        let mine = fstat(self.fd.as_fd()).map_err(|e| os_error_in("fstat", &object, e, &dir))?;
        ensure_same_object(&object, self.path.as_path(), &mine)?;
        nix::unistd::unlink(&self.path).map_err(|e| os_error_in("unlink", &object, e, &dir))
    }

    fn object_name(&self) -> String {
        object_name(&self.path)
    }
}

/// The file as errors and `ipc ls` name it: its transport string without options.
pub fn object_name(path: &Path) -> String {
    format!("file-shm:{}", path.display())
}

/// The directory the file is (to be) in: the file system whose room and errors apply.
fn directory(path: &Path) -> String {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.display().to_string(),
        _ => ".".into(),
    }
}

/// An `open` error: a missing directory is named as such (the file cannot be made there, and
/// waiting for it would be waiting for someone to `mkdir`); a symbolic link is refused as the
/// adoption rule refuses anything but a regular file.
fn open_error(path: &Path, errno: Errno) -> Error {
    let object = object_name(path);
    let dir = directory(path);
    match errno {
        Errno::ENOENT if lstat(dir.as_str()).is_err() => Error::NotFound {
            object: format!("directory {dir} (of {object})"),
        },
        Errno::ELOOP => Error::Incompatible {
            object,
            reason: "it is a symbolic link, not a regular file".into(),
        },
        e => os_error_in("open", &object, e, &dir),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipc_core::Segment;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh directory, removed with what is left in it when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let dir = PathBuf::from(format!("/tmp/ipc-file-unit-{}-{n}", std::process::id()));
            std::fs::create_dir(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn created_file_has_exact_mode_size_and_is_removed_by_its_owner() {
        let dir = TempDir::new();
        let path = dir.0.join("ring");
        let owner = MappedFile::create(&path, 10_000, 0o640).unwrap();
        let st = lstat(&path).unwrap();
        assert_eq!(st.st_mode & 0o7777, 0o640);
        assert_eq!(st.st_size, 10_000);
        assert_eq!(owner.object_name(), format!("file-shm:{}", path.display()));
        let map = owner.map().unwrap();
        assert_eq!(map.id().to_string(), format!("file-shm:{}", path.display()));
        map.write_at(9_998, b"ok").unwrap();
        drop(owner);
        assert!(!path.exists());
        // The mapping outlives the name.
        map.write_at(0, b"still mapped").unwrap();
    }

    #[test]
    fn a_missing_directory_is_named() {
        let dir = TempDir::new();
        let path = dir.0.join("missing/ring");
        match MappedFile::create(&path, 4096, 0o600) {
            Err(Error::NotFound { object }) => {
                assert!(
                    object.contains(&format!("{}/missing", dir.0.display())),
                    "{object}"
                );
            }
            other => panic!("expected NotFound, got {other:?}"),
        }
        assert!(matches!(
            MappedFile::open(&path, &Expect::size(1)),
            Err(Error::NotFound { object }) if object.starts_with("directory")
        ));
    }

    #[test]
    fn symlinks_and_other_files_are_refused() {
        let dir = TempDir::new();
        let target = dir.0.join("target");
        let _owner = MappedFile::create(&target, 4096, 0o600).unwrap();
        let link = dir.0.join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = MappedFile::open(&link, &Expect::size(1)).unwrap_err();
        assert!(
            matches!(&err, Error::Incompatible { reason, .. } if reason.contains("symbolic link")),
            "{err}"
        );
        // O_EXCL does not follow the link either: the target is not truncated or adopted.
        assert!(matches!(
            MappedFile::create(&link, 4096, 0o600),
            Err(Error::AlreadyExists { .. })
        ));
        let err = MappedFile::open(&dir.0, &Expect::size(1)).unwrap_err();
        assert!(
            matches!(&err, Error::Incompatible { reason, .. } if reason.contains("directory")),
            "{err}"
        );
    }

    #[test]
    fn a_wider_mode_or_a_short_file_is_incompatible() {
        let dir = TempDir::new();
        let path = dir.0.join("ring");
        let _owner = MappedFile::create(&path, 4096, 0o644).unwrap();
        let err = MappedFile::open(&path, &Expect::size(1)).unwrap_err();
        assert!(
            matches!(&err, Error::Incompatible { reason, .. } if reason.contains("0644")),
            "{err}"
        );
        let wide = Expect::size(8192).mode(0o644);
        assert!(matches!(
            MappedFile::open(&path, &wide),
            Err(Error::Incompatible { .. })
        ));
        assert_eq!(
            MappedFile::open(&path, &Expect::size(4096).mode(0o644))
                .unwrap()
                .size(),
            4096
        );
    }

    #[test]
    fn shrinking_before_mapping_is_refused() {
        let dir = TempDir::new();
        let path = dir.0.join("ring");
        let owner = MappedFile::create(&path, 8192, 0o600).unwrap();
        let other = MappedFile::open(&path, &Expect::size(8192)).unwrap();
        nix::unistd::ftruncate(owner.fd.as_fd(), 4096).unwrap();
        let err = other.map().unwrap_err();
        assert!(
            matches!(&err, Error::Incompatible { reason, .. } if reason.contains("shrank")),
            "{err}"
        );
    }

    #[test]
    fn remove_leaves_a_replacement_alone() {
        let dir = TempDir::new();
        let path = dir.0.join("ring");
        let first = MappedFile::create(&path, 4096, 0o600).unwrap();
        std::fs::remove_file(&path).unwrap();
        let second = MappedFile::create(&path, 4096, 0o600).unwrap();
        let err = first.destroy().unwrap_err();
        assert!(matches!(err, Error::Incompatible { .. }), "{err}");
        assert!(path.exists());
        second.destroy().unwrap();
        assert!(!path.exists());
    }
}
