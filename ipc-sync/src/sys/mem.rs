//! Typed access to a shared segment at checked offsets.
//!
//! [`Shared`] holds the segment (so the mapping outlives every reference it hands out) and turns
//! an offset into a reference only after checking bounds and alignment. It hands out atomics and
//! byte ranges, never references to structured data: another process may write any byte at any
//! time, and only atomics and `u8` stay valid Rust values whatever it writes.

use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64};

use ipc_core::Segment;

/// A mapped segment, shared by every structure placed in it.
#[derive(Clone)]
pub struct Shared {
    // Keeps the mapping alive as long as any `Shared` (and any reference it handed out, which
    // borrows it) exists.
    segment: Arc<dyn Segment>,
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: `Shared` only adds a cached copy of the segment's base and length to an
// `Arc<dyn Segment>`, which is `Send + Sync` (the trait requires both); the memory itself is
// process-wide and accessed through atomics or raw copies only.
unsafe impl Send for Shared {}
// SAFETY: as for `Send`: no method takes `&self` and mutates non-atomic state.
unsafe impl Sync for Shared {}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("segment", self.segment.id())
            .field("len", &self.len)
            .finish()
    }
}

impl Shared {
    /// Wraps a segment. Its base must be page aligned (the `Segment` contract), which this
    /// checks, so every offset aligned to 64 is aligned in memory too.
    pub fn new(segment: Arc<dyn Segment>) -> Shared {
        let base = segment.base();
        let len = segment.len();
        assert_eq!(
            base.as_ptr() as usize % 64,
            0,
            "Segment contract: the base is page aligned"
        );
        Shared { segment, base, len }
    }

    /// The segment.
    pub fn segment(&self) -> &Arc<dyn Segment> {
        &self.segment
    }

    /// Length of the mapping.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mapping is empty (never, for a real segment).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn check(&self, offset: usize, size: usize, align: usize) -> Option<*mut u8> {
        let end = offset.checked_add(size)?;
        if end > self.len || offset % align != 0 {
            return None;
        }
        // SAFETY: `offset + size <= len`, so the result stays inside the mapping (or one past
        // its end when `size == 0`).
        Some(unsafe { self.base.as_ptr().add(offset) })
    }

    /// The 32-bit atomic at `offset`, or `None` if it is out of bounds or misaligned.
    #[inline]
    pub fn u32_at(&self, offset: usize) -> Option<&AtomicU32> {
        let ptr = self.check(offset, 4, 4)?;
        // SAFETY: in bounds and 4-aligned (checked); the mapping lives as long as `self`, which
        // the returned reference borrows; `AtomicU32` has no invalid bit patterns and all
        // accesses to shared words go through atomics.
        Some(unsafe { AtomicU32::from_ptr(ptr.cast()) })
    }

    /// The 64-bit atomic at `offset`, or `None` if it is out of bounds or misaligned.
    #[inline]
    pub fn u64_at(&self, offset: usize) -> Option<&AtomicU64> {
        let ptr = self.check(offset, 8, 8)?;
        // SAFETY: as for `u32_at`, with 8 bytes and 8-alignment checked.
        Some(unsafe { AtomicU64::from_ptr(ptr.cast()) })
    }

    /// Raw pointer to `size` bytes at `offset` aligned to `align`, for the FFI structures placed
    /// in the segment (pthread mutexes). `None` if out of bounds or misaligned.
    pub fn ptr_at(&self, offset: usize, size: usize, align: usize) -> Option<*mut u8> {
        self.check(offset, size, align)
    }

    /// Copies `dst.len()` bytes at `offset` out of the segment; `false` (and nothing copied)
    /// if out of bounds.
    #[inline]
    pub fn copy_out(&self, offset: usize, dst: &mut [u8]) -> bool {
        let Some(src) = self.check(offset, dst.len(), 1) else {
            return false;
        };
        // SAFETY: the source range is inside the mapping (checked); `dst` is private memory of
        // this process, so the ranges do not overlap. A concurrent writer can only change
        // which bytes are copied.
        unsafe { copy_bytes(src, dst.as_mut_ptr(), dst.len()) };
        true
    }

    /// Copies `src` into the segment at `offset`; `false` (and nothing written) if out of
    /// bounds.
    #[inline]
    pub fn copy_in(&self, offset: usize, src: &[u8]) -> bool {
        let Some(dst) = self.check(offset, src.len(), 1) else {
            return false;
        };
        // SAFETY: the destination range is inside the mapping (checked) and no `&`/`&mut` to
        // segment bytes outlives the ring's slot protocol (see `slot`); `src` is not inside
        // a slot this endpoint owns while it is copied into another.
        unsafe { copy_bytes(src.as_ptr(), dst, src.len()) };
        true
    }

    /// The bytes `offset..offset + len`, as a slice this endpoint owns by protocol.
    ///
    /// The ring hands a range to exactly one endpoint at a time (a producer's reserved record
    /// before commit, the consumer's record before release), and only through a guard that
    /// borrows the endpoint mutably, so no two slices to one range exist in this process. A
    /// misbehaving peer process writing the range only changes byte values, which `u8`
    /// tolerates; lengths and indices are never read through these slices.
    #[inline]
    pub fn slot(&self, offset: usize, len: usize) -> Option<&[u8]> {
        let ptr = self.check(offset, len, 1)?;
        // SAFETY: in bounds (checked), mapping alive as long as `self`; see above for aliasing.
        Some(unsafe { std::slice::from_raw_parts(ptr, len) })
    }

    /// Mutable form of [`Shared::slot`], for a producer's loan.
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub fn slot_mut(&self, offset: usize, len: usize) -> Option<&mut [u8]> {
        let ptr = self.check(offset, len, 1)?;
        // SAFETY: in bounds (checked), mapping alive as long as `self`. Exclusive in this
        // process by the ring protocol (see `slot`): the loan guard borrows the producer
        // mutably and the range is reserved to it until commit.
        Some(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
    }
}

/// A heap-backed segment, page aligned and zeroed, for tests and single-process use.
pub struct HeapSegment {
    ptr: NonNull<u8>,
    len: usize,
    id: ipc_core::ObjectId,
}

impl std::fmt::Debug for HeapSegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeapSegment")
            .field("len", &self.len)
            .field("id", &self.id)
            .finish()
    }
}

impl HeapSegment {
    /// Allocates `len` zeroed bytes aligned to 4096.
    pub fn new(len: usize, name: &str) -> HeapSegment {
        assert!(len > 0);
        let layout = std::alloc::Layout::from_size_align(len, 4096).expect("valid layout");
        // SAFETY: `layout` has a non-zero size.
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        HeapSegment {
            ptr,
            len,
            id: ipc_core::ObjectId {
                family: "heap",
                name: name.to_owned(),
            },
        }
    }
}

impl Drop for HeapSegment {
    fn drop(&mut self) {
        let layout = std::alloc::Layout::from_size_align(self.len, 4096).expect("valid layout");
        // SAFETY: allocated in `new` with this same layout, freed once.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), layout) };
    }
}

// SAFETY: the allocation is plain process memory owned by the value; shared access goes
// through atomics or raw copies.
unsafe impl Send for HeapSegment {}
// SAFETY: as above; `&HeapSegment` exposes no references into the memory.
unsafe impl Sync for HeapSegment {}

// SAFETY: `ptr` is a live allocation of `len` bytes aligned to 4096, freed only on drop; no
// references into it are handed out.
unsafe impl Segment for HeapSegment {
    fn base(&self) -> NonNull<u8> {
        self.ptr
    }
    fn len(&self) -> usize {
        self.len
    }
    fn id(&self) -> &ipc_core::ObjectId {
        &self.id
    }
}

/// Copies of at least this many bytes go through [`copy_large`] instead of `memcpy`: from
/// about there (2112 bytes in this machine's glibc 2.36, `glibc.cpu.x86_rep_movsb_threshold`)
/// `memcpy` takes `rep movsb`.
const LARGE_COPY: usize = 2 * 1024;

/// Copies `len` bytes from `src` to `dst`.
///
/// # Safety
/// As `ptr::copy_nonoverlapping`: both ranges valid for `len` bytes, not overlapping.
#[inline]
unsafe fn copy_bytes(src: *const u8, dst: *mut u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    if len >= LARGE_COPY {
        // SAFETY: the caller's contract, passed on.
        unsafe { copy_large(src, dst, len) };
        return;
    }
    // SAFETY: the caller's contract, passed on.
    unsafe { std::ptr::copy_nonoverlapping(src, dst, len) }
}

/// A large copy between processes' cores, in plain 16-byte moves.
///
/// glibc's `memcpy` takes `rep movsb` for such sizes, whose speed here (AMD, in a VM) swings
/// with where source and destination lie: a C model of a 4 MiB ring streaming 64 KiB records
/// at our records' 8-byte offsets moved 11–40 GB/s with `memcpy` and 36–43 GB/s with this loop,
/// interleaved (AVX2 moves did no better than SSE2's, which every x86_64 has). Through the
/// ring (`ipc bench --transports posix-shm`, interleaved), 64 KiB streams went from 1–3 of 5
/// rounds at 0.6× memcpy or better to 4–5 of 5 (0.8–0.88×), 16 KiB from 12 to 45–47 GB/s and
/// 4 KiB from 13–14 to 15–46 GB/s; round trips did not move.
///
/// # Safety
/// As `ptr::copy_nonoverlapping`: both ranges valid for `len` bytes, not overlapping.
#[cfg(target_arch = "x86_64")]
#[inline(never)]
unsafe fn copy_large(src: *const u8, dst: *mut u8, len: usize) {
    use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_storeu_si128};
    let blocks = len / 64;
    for i in 0..blocks {
        // SAFETY: block `i` ends at most at `blocks * 64 <= len` bytes from either start,
        // inside both ranges; the moves are unaligned ones, and SSE2 is part of x86_64.
        unsafe {
            let from = src.add(i * 64).cast::<__m128i>();
            let to = dst.add(i * 64).cast::<__m128i>();
            let parts = [
                _mm_loadu_si128(from),
                _mm_loadu_si128(from.add(1)),
                _mm_loadu_si128(from.add(2)),
                _mm_loadu_si128(from.add(3)),
            ];
            for (k, part) in parts.into_iter().enumerate() {
                _mm_storeu_si128(to.add(k), part);
            }
        }
    }
    let done = blocks * 64;
    // SAFETY: the rest of both ranges, `len - done < 64` bytes.
    unsafe { std::ptr::copy_nonoverlapping(src.add(done), dst.add(done), len - done) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_of_every_size_and_alignment_are_exact() {
        let src: Vec<u8> = (0..70_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        for len in [0, 1, 63, 64, 2047, 2048, 2049, 4095, 4097, 65_544] {
            for (from, to) in [(0, 0), (1, 0), (0, 3), (8, 40), (17, 5)] {
                let mut dst = vec![0xEEu8; len + 80];
                // SAFETY: `from + len <= src.len()` and `to + len <= dst.len()`; two vectors do
                // not overlap.
                unsafe { copy_bytes(src.as_ptr().add(from), dst.as_mut_ptr().add(to), len) };
                assert_eq!(
                    &dst[to..to + len],
                    &src[from..from + len],
                    "len {len} +{from}/+{to}"
                );
                assert!(dst[..to].iter().chain(&dst[to + len..]).all(|&b| b == 0xEE));
            }
        }
    }
}
