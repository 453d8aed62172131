//! System V shm calls (`shmget`, `shmat`, `shmdt`, `shmctl`), and the one `unsafe` promise the
//! crate makes about shared memory: the [`Segment`] contract of an [`Attachment`].

use std::io;
use std::ptr::{self, NonNull};

use ipc_core::{Error, ObjectId, Result, Segment};

/// `shmget(key, size, flags)`: the id of the segment.
pub fn shmget(key: libc::key_t, size: usize, flags: i32) -> io::Result<i32> {
    // SAFETY: plain system call on integer arguments.
    let id = unsafe { libc::shmget(key, size, flags) };
    if id == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(id)
}

/// The effective uid of this process (`geteuid`, which cannot fail).
pub fn geteuid() -> u32 {
    // SAFETY: plain system call without arguments.
    unsafe { libc::geteuid() }
}

/// `shmctl(id, IPC_STAT)`.
pub fn stat(id: i32) -> io::Result<libc::shmid_ds> {
    // SAFETY: `shmid_ds` is a plain C struct of integers, for which all zeroes is a valid value.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: `ds` is a valid, writable `shmid_ds` for the duration of the call.
    let r = unsafe { libc::shmctl(id, libc::IPC_STAT, &mut ds) };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(ds)
}

/// `shmctl(id, IPC_SET)` of owner and mode (the fields `IPC_SET` takes besides them are
/// left as they are).
pub fn set(id: i32, uid: u32, gid: u32, mode: u16) -> io::Result<()> {
    let mut ds = stat(id)?;
    ds.shm_perm.uid = uid;
    ds.shm_perm.gid = gid;
    ds.shm_perm.mode = mode;
    // SAFETY: `ds` is a valid `shmid_ds` for the duration of the call.
    let r = unsafe { libc::shmctl(id, libc::IPC_SET, &mut ds) };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `shmctl(id, IPC_RMID)`: marks the segment for removal; it goes at the last detach.
pub fn remove(id: i32) -> io::Result<()> {
    // SAFETY: IPC_RMID ignores the buffer argument; a null pointer is allowed.
    let r = unsafe { libc::shmctl(id, libc::IPC_RMID, ptr::null_mut()) };
    if r == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// An attachment (`shmat`) of a whole System V segment into this process, detached
/// (`shmdt`) when dropped.
///
/// Bytes are read and written through [`Segment::read_at`] / [`Segment::write_at`] (or raw
/// pointers from [`Segment::base`]): other processes write the same memory at any time, so no
/// `&mut [u8]` (nor `&[u8]`) to it is ever handed out. A read-only attachment (`SHM_RDONLY`)
/// refuses [`Segment::write_at`] with [`Error::PermissionDenied`]; writing through
/// [`Segment::base`] into it would fault, so never hand one to code that writes (the ring
/// channel attaches read-write).
#[derive(Debug)]
pub struct Attachment {
    base: NonNull<u8>,
    len: usize,
    read_only: bool,
    shmid: i32,
    id: ObjectId,
}

impl Attachment {
    /// Attaches the segment `shmid` at an address the kernel picks, read-only or read-write,
    /// and returns it with the segment's size as seen while attached (a segment cannot be
    /// resized, and an attached one cannot go away, so that size holds for the attachment's
    /// life).
    pub(crate) fn attach(shmid: i32, read_only: bool, id: ObjectId) -> io::Result<Attachment> {
        let flags = if read_only { libc::SHM_RDONLY } else { 0 };
        // SAFETY: a null address lets the kernel choose where to map; the call creates a new
        // mapping and touches no memory of ours.
        let addr = unsafe { libc::shmat(shmid, ptr::null(), flags) };
        if addr as isize == -1 {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(addr.cast::<u8>())
            .ok_or_else(|| io::Error::other("shmat returned a null address"))?;
        // From here on, dropping `attachment` detaches.
        let mut attachment = Attachment {
            base,
            len: 0,
            read_only,
            shmid,
            id,
        };
        // Attached, the segment cannot be destroyed nor its id reused: this is its size.
        let ds = stat(shmid)?;
        let len = ds.shm_segsz;
        if len == 0 || len > isize::MAX as usize {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        attachment.len = len;
        Ok(attachment)
    }

    /// Whether this attachment is read-only (`SHM_RDONLY`).
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The segment's id (`shmid`).
    pub fn shmid(&self) -> i32 {
        self.shmid
    }

    /// Detaches (`shmdt`). Taking `self` by value means nothing can touch the memory
    /// afterwards.
    pub fn detach(self) {
        drop(self);
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        // SAFETY: `base` is the address `shmat` returned for this attachment, detached only
        // here, once; no reference into the memory outlives `self` (none is handed out).
        unsafe {
            libc::shmdt(self.base.as_ptr().cast::<libc::c_void>());
        }
    }
}

// SAFETY: the attachment is a process-wide mapping, usable from any thread; the type holds no
// thread-bound state, and all access to the memory goes through raw pointers.
unsafe impl Send for Attachment {}
// SAFETY: as for `Send`: shared access hands out only raw pointers and copies.
unsafe impl Sync for Attachment {}

// SAFETY: the `Segment` contract holds:
// - `base()` is the address `shmat` returned (page aligned: `SHMLBA` is the page size on
//   x86-64 and the kernel picked the address), mapping the whole segment of `len()` bytes
//   (`shm_segsz`, read while attached): readable, and writable unless `read_only`, in which
//   case `write_at` fails and the type documents itself read-only;
// - it stays attached until this value is dropped (`detach` consumes it); `IPC_RMID` by anyone
//   does not unmap it (the segment lives until the last detach), and a System V segment cannot
//   be resized, so no access within `len()` can fault the way a shrunk file mapping does;
// - no `&mut` (nor `&`) into the memory is created here: only `base`, `len` and `id`.
unsafe impl Segment for Attachment {
    fn base(&self) -> NonNull<u8> {
        self.base
    }

    fn len(&self) -> usize {
        self.len
    }

    fn id(&self) -> &ObjectId {
        &self.id
    }

    fn write_at(&self, offset: usize, src: &[u8]) -> Result<()> {
        if self.read_only {
            return Err(Error::PermissionDenied {
                object: format!("{} (attached read-only)", self.id),
            });
        }
        let end = offset.checked_add(src.len()).filter(|e| *e <= self.len);
        if end.is_none() {
            return Err(Error::LimitExceeded {
                what: format!(
                    "segment size of {} (write at offset {offset} of {} bytes)",
                    self.id,
                    src.len()
                ),
                limit: self.len as u64,
            });
        }
        // SAFETY: `offset + src.len() <= len()` was checked and the attachment is writable
        // (not read-only); `src` is memory of this process outside the segment (no `&` into
        // the segment is ever handed out), so the ranges do not overlap.
        unsafe {
            ptr::copy_nonoverlapping(src.as_ptr(), self.base.as_ptr().add(offset), src.len());
        }
        Ok(())
    }
}
