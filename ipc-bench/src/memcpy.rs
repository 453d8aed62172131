//! The memcpy reference: how fast this process copies memory on its own, the ceiling for a
//! shared-memory stream that copies each message in and out once.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// The buffer whose copy gives the bandwidth figure.
pub const BUFFER: usize = 1 << 20;

const PAGE: usize = 4096;

/// Copies between two reads of the clock.
const BATCH: u32 = 64;

/// Single-process copy speed: of a [`BUFFER`], and of one message of each size.
pub struct Memcpy {
    /// Bytes per second copying a [`BUFFER`]-byte buffer into another, over and over.
    pub bytes_per_s: f64,
    /// For each size, the time one copy of that many bytes takes, in nanoseconds.
    pub ns_per_copy: Vec<(usize, f64)>,
}

/// Measures for about `budget`: half of it for the bandwidth, the rest split over `sizes`.
pub fn measure(sizes: &[usize], budget: Duration) -> Memcpy {
    let largest = sizes
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .max(BUFFER)
        .next_multiple_of(PAGE);
    // Both page aligned. Where they lie matters: glibc's memcpy is over 20 times slower for
    // 4 KiB to 64 KiB when the destination is a few bytes past the source modulo 4096 (a
    // false store-to-load dependency), and `Vec`s may land that way. Written before use, so
    // that every page is faulted in before timing.
    let mut buf = vec![0x5a_u8; 2 * largest + PAGE];
    let start = buf.as_ptr().align_offset(PAGE).min(PAGE);
    let (src, dst) = buf[start..start + 2 * largest].split_at_mut(largest);
    let per_size = budget / 2 / u32::try_from(sizes.len().max(1)).unwrap_or(u32::MAX);
    let (copies, elapsed) = time_copies(&src[..BUFFER], &mut dst[..BUFFER], budget / 2);
    let bytes_per_s = (copies * BUFFER as u64) as f64 / elapsed.as_secs_f64();
    let ns_per_copy = sizes
        .iter()
        .map(|&size| {
            let (copies, elapsed) = time_copies(&src[..size], &mut dst[..size], per_size);
            (size, elapsed.as_nanos() as f64 / copies as f64)
        })
        .collect();
    Memcpy {
        bytes_per_s,
        ns_per_copy,
    }
}

/// Copies `src` into `dst` for `budget` after a tenth of it as warm-up; the copies timed and
/// the time they took.
fn time_copies(src: &[u8], dst: &mut [u8], budget: Duration) -> (u64, Duration) {
    let start = Instant::now();
    let warm_until = start + budget / 10;
    while Instant::now() < warm_until {
        copy_batch(src, dst);
    }
    let measured_from = Instant::now();
    let end = measured_from + budget - budget / 10;
    let mut copies = 0u64;
    loop {
        copy_batch(src, dst);
        copies += u64::from(BATCH);
        if Instant::now() >= end {
            break;
        }
    }
    (copies, measured_from.elapsed())
}

#[inline(never)]
fn copy_batch(src: &[u8], dst: &mut [u8]) {
    for _ in 0..BATCH {
        // black_box on both sides: each copy reads the source anew and is kept.
        black_box(&mut *dst).copy_from_slice(black_box(src));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gives_a_figure_for_each_size() {
        let m = measure(&[64, 4096], Duration::from_millis(40));
        assert!(m.bytes_per_s > 0.0);
        assert_eq!(m.ns_per_copy.len(), 2);
        assert!(m.ns_per_copy.iter().all(|&(_, ns)| ns > 0.0));
    }
}
