//! The mapping of a POSIX shared-memory object or of a regular file (`file-shm`: the same
//! thing at another path), and the one `unsafe` promise it makes: the [`Segment`] contract.
//!
//! Creating the mapping needs no `unsafe` (`memmap2::MmapRaw` hands out raw pointers only, never
//! references); promising that the pointer stays valid does.

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;

use ipc_core::{ObjectId, Segment};
use memmap2::{MmapOptions, MmapRaw};

/// A read-write, shared (`MAP_SHARED`) mapping of a whole POSIX shared-memory object or
/// regular file ([`MappedFile`](crate::file::MappedFile)).
///
/// It is independent of the handle it came from: closing the handle keeps the mapping, and
/// dropping the mapping (or [`Mapping::unmap`]) unmaps it. Bytes are read and written through
/// [`Segment::read_at`] / [`Segment::write_at`] (or raw pointers from [`Segment::base`]): other
/// processes write the same memory at any time, so no `&mut [u8]` to it is ever handed out.
pub struct Mapping {
    map: MmapRaw,
    id: ObjectId,
}

impl Mapping {
    /// Maps `len` bytes of `fd` from offset 0, read-write and shared. The caller has checked
    /// that the object is at least `len` bytes long (`fstat`), so no access within the mapping
    /// is beyond the end of the object when it is mapped; `len` is not zero.
    pub(crate) fn new(fd: BorrowedFd<'_>, len: usize, id: ObjectId) -> io::Result<Mapping> {
        if len == 0 {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        // `len` is explicit, so memmap2 does not look at the size itself; the descriptor is
        // borrowed, hence open for the call. The mapping keeps its own reference to the object.
        let map = MmapOptions::new().len(len).map_raw(fd.as_raw_fd())?;
        if map.as_mut_ptr().is_null() {
            return Err(io::Error::other("mmap returned a null mapping"));
        }
        Ok(Mapping { map, id })
    }

    /// Unmaps the segment (`munmap`). Taking `self` by value means nothing can touch the memory
    /// afterwards: the borrow checker rejects any later use of the mapping.
    pub fn unmap(self) {
        drop(self);
    }
}

// SAFETY: the `Segment` contract holds:
// - `base()` is the start of a successful `mmap(PROT_READ | PROT_WRITE, MAP_SHARED)` of
//   `len()` bytes at offset 0 (`MmapRaw` from a descriptor opened `O_RDWR`), so it is page
//   aligned, readable and writable;
// - the mapping belongs to `self.map` and is unmapped only when that is dropped, i.e. when this
//   value is dropped (`unmap` consumes it), so it stays mapped as long as the value lives;
// - no `&mut` (nor `&`) into the memory is ever created here: `MmapRaw` only gives pointers,
//   and this type exposes nothing but `base`, `len` and `id`;
// - it is `Send + Sync` because `MmapRaw` is (the mapping is process-wide memory);
// - the object was at least `len()` bytes long when mapped (checked by the caller with
//   `fstat`). A peer that shrinks it later (`ftruncate`, possible only for a process allowed to
//   open it read-write: our uid, within the checked mode) makes an access raise `SIGBUS`, a
//   crash and not a read of unrelated memory; this holds for every shared file mapping, a
//   `file-shm` file on a disk as much as an object in `/dev/shm`.
unsafe impl Segment for Mapping {
    fn base(&self) -> NonNull<u8> {
        NonNull::new(self.map.as_mut_ptr()).expect("checked non-null when mapped")
    }

    fn len(&self) -> usize {
        self.map.len()
    }

    fn id(&self) -> &ObjectId {
        &self.id
    }
}

impl fmt::Debug for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mapping")
            .field("id", &self.id)
            .field("base", &self.map.as_ptr())
            .field("len", &self.map.len())
            .finish()
    }
}
