//! A mapped region of shared memory, as the shared-memory backends provide it and the ring
//! channel consumes it.
#![allow(unsafe_code)]

use std::fmt;
use std::ptr::NonNull;

use crate::{Error, Result};

/// Which object a segment (or any kernel object) is, for messages and headers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ObjectId {
    /// The family, as in a transport string (`posix-shm`, `sysv-shm`, ...).
    pub family: &'static str,
    /// Its name, key or id within the family (`/ticks`, `key=0x66`, `shmid=32769`).
    pub name: String,
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.family, self.name)
    }
}

/// A mapping of shared memory: base, length, identity.
///
/// The memory is shared with other processes, which may write it at any time: treat every byte
/// read from it as untrusted input, and never store an absolute pointer in it (each process maps
/// it at its own address).
///
/// # Safety
///
/// Implementors guarantee that `base()` points to `len()` bytes that are readable and writable
/// (unless the segment documents itself read-only, when writes fail), aligned to a page, and
/// stay mapped for as long as the implementing value lives. The value must not hand out
/// `&mut` references to that memory.
pub unsafe trait Segment: Send + Sync {
    /// Start of the mapping in this process.
    fn base(&self) -> NonNull<u8>;

    /// Length of the mapping in bytes.
    fn len(&self) -> usize;

    /// Which kernel object is mapped.
    fn id(&self) -> &ObjectId;

    /// Whether the mapping is empty (never, for the backends' segments).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies `dst.len()` bytes at `offset` out of the segment. Out of bounds is
    /// [`Error::LimitExceeded`] and copies nothing.
    fn read_at(&self, offset: usize, dst: &mut [u8]) -> Result<()> {
        check_range(self.len(), offset, dst.len())?;
        // SAFETY:
        // - `offset + dst.len() <= len()` was checked, and the trait guarantees `len()` mapped
        //   bytes at `base()`, so the source range is valid for reads;
        // - `dst` is a distinct `&mut` slice of this process's memory, so the ranges cannot
        //   overlap. A peer writing concurrently can only change which bytes are copied (`u8`
        //   has no invalid values).
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.base().as_ptr().add(offset),
                dst.as_mut_ptr(),
                dst.len(),
            );
        }
        Ok(())
    }

    /// Copies `src` into the segment at `offset`. Out of bounds is [`Error::LimitExceeded`]
    /// and writes nothing.
    fn write_at(&self, offset: usize, src: &[u8]) -> Result<()> {
        check_range(self.len(), offset, src.len())?;
        // SAFETY:
        // - `offset + src.len() <= len()` was checked and the trait guarantees the range is
        //   mapped writable;
        // - no `&mut` to the segment exists (trait contract), and `src` is ordinary memory of
        //   this process, not inside the segment's range of a `&mut`, so nothing aliases
        //   mutably.
        unsafe {
            std::ptr::copy_nonoverlapping(
                src.as_ptr(),
                self.base().as_ptr().add(offset),
                src.len(),
            );
        }
        Ok(())
    }
}

fn check_range(len: usize, offset: usize, count: usize) -> Result<()> {
    match offset.checked_add(count) {
        Some(end) if end <= len => Ok(()),
        _ => Err(Error::LimitExceeded {
            what: format!("segment size (access at offset {offset} of {count} bytes)"),
            limit: len as u64,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct HeapSegment {
        mem: Box<[std::cell::UnsafeCell<u8>]>,
        id: ObjectId,
    }
    // SAFETY: test-only; accessed from one thread.
    unsafe impl Sync for HeapSegment {}
    // SAFETY: `mem` is a live boxed slice for the value's lifetime and no `&mut` is handed out.
    unsafe impl Segment for HeapSegment {
        fn base(&self) -> NonNull<u8> {
            NonNull::new(self.mem.as_ptr() as *mut u8).unwrap()
        }
        fn len(&self) -> usize {
            self.mem.len()
        }
        fn id(&self) -> &ObjectId {
            &self.id
        }
    }

    #[test]
    fn bounds_are_checked() {
        let seg = HeapSegment {
            mem: (0..16).map(|_| std::cell::UnsafeCell::new(0)).collect(),
            id: ObjectId {
                family: "heap",
                name: "t".into(),
            },
        };
        seg.write_at(12, b"abcd").unwrap();
        let mut out = [0u8; 4];
        seg.read_at(12, &mut out).unwrap();
        assert_eq!(&out, b"abcd");
        assert!(matches!(
            seg.write_at(13, b"abcd"),
            Err(Error::LimitExceeded { limit: 16, .. })
        ));
        assert!(seg.read_at(usize::MAX, &mut out).is_err());
        assert_eq!(seg.id().to_string(), "heap:t");
    }
}
