//! The ring protocol's memory ([`RingMem`]) over a real segment.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use super::bell::Ringer;
use super::core::RingMem;
use super::wait;
use super::{Attached, ctl};
use crate::sys::mem::Shared;

/// A ring's words and records in a mapped segment. Offsets were validated against the mapping
/// when the endpoint attached (the layout's regions lie inside it), and record offsets come
/// from the endpoint's own validated state, so an out-of-bounds access here is a bug in this
/// crate, not something a peer can cause: it panics rather than touching memory.
#[derive(Debug, Clone)]
pub struct SegmentMem {
    shared: Shared,
    ctl: usize,
    data: usize,
    capacity: u64,
    ringer: Ringer,
}

impl SegmentMem {
    pub fn new(shared: Shared, attached: &Attached) -> SegmentMem {
        SegmentMem {
            shared,
            ctl: attached.ctl,
            data: attached.data,
            capacity: attached.geo.capacity,
            ringer: Ringer::default(),
        }
    }

    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    #[inline]
    pub fn ctl64(&self, off: usize) -> &AtomicU64 {
        self.shared
            .u64_at(self.ctl + off)
            .expect("control offsets lie inside the validated control region")
    }

    #[inline]
    pub fn ctl32(&self, off: usize) -> &AtomicU32 {
        self.shared
            .u32_at(self.ctl + off)
            .expect("control offsets lie inside the validated control region")
    }

    #[inline]
    fn data_at(&self, off: u64, len: usize) -> usize {
        debug_assert!(off + len as u64 <= self.capacity);
        self.data + off as usize
    }

    /// The payload bytes of a record, in place.
    #[inline]
    pub fn slot(&self, off: u64, len: usize) -> &[u8] {
        self.shared
            .slot(self.data_at(off, len), len)
            .expect("record offsets are validated against the ring")
    }

    /// The payload bytes of a reserved record, writable.
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub fn slot_mut(&self, off: u64, len: usize) -> &mut [u8] {
        self.shared
            .slot_mut(self.data_at(off, len), len)
            .expect("record offsets are validated against the ring")
    }
}

impl SegmentMem {
    /// After committing: wakes the consumer if it is parked or waits on its doorbell. Against
    /// a busy-polling consumer this is one load, inlined into the message path.
    #[inline(always)]
    pub fn wake_consumer(&self) {
        if wait::may_wait(self.ctl32(ctl::CONSUMER_PARKS)) {
            self.wake_consumer_waiting();
        }
    }

    #[inline(never)]
    fn wake_consumer_waiting(&self) {
        wait::wake_waiter(self.ctl32(ctl::DATA_WAIT), || {
            self.ring_slot(ctl::CONSUMER, ctl::CONSUMER_BIT)
        });
    }

    /// After releasing space: wakes the producers parked on a full ring or waiting on their
    /// doorbells. Against busy-polling producers this is one load, inlined.
    #[inline(always)]
    pub fn wake_producers(&self) {
        if wait::may_wait(self.ctl32(ctl::PRODUCERS_PARK)) {
            self.wake_producers_waiting();
        }
    }

    #[inline(never)]
    fn wake_producers_waiting(&self) {
        wait::wake_waiter(self.ctl32(ctl::SPACE_WAIT), || {});
        // Same line as the wait word: no extra miss.
        if self.ctl32(ctl::SPACE_BELLS).load(Ordering::Relaxed) != 0 {
            self.ring_space_bells();
        }
    }

    /// Rings the doorbell of every producer armed in the space mask, clearing it.
    #[cold]
    pub fn ring_space_bells(&self) {
        let mut armed = self.ctl32(ctl::SPACE_BELLS).swap(0, Ordering::AcqRel);
        while armed != 0 {
            let slot = armed.trailing_zeros() as usize;
            armed &= armed - 1;
            if slot < super::MAX_PRODUCERS {
                self.ring_slot(ctl::SLOTS + slot * ctl::SLOT_SIZE, 1 << slot);
            }
        }
    }

    /// Whether a peer found this endpoint's doorbell (`bit` of the missed mask) armed but could
    /// not ring it; `forget` clears the bit (for a fresh doorbell).
    pub fn bell_missed(&self, bit: u32, forget: bool) -> bool {
        let missed = self.ctl32(ctl::BELLS_MISSED);
        if forget {
            missed.fetch_and(!bit, Ordering::Relaxed);
            return false;
        }
        missed.load(Ordering::Relaxed) & bit != 0
    }

    /// Rings the doorbell published in the endpoint slot at `slot` of the control block; one
    /// that cannot be rung from here (another user's, or in another PID namespace) gets `bit`
    /// in the missed mask, and its owner falls back to a timer.
    #[cold]
    fn ring_slot(&self, slot: usize, bit: u32) {
        let target = super::peers::Slot::at(self.ctl + slot).bell_target(&self.shared);
        if !target.is_some_and(|target| self.ringer.ring(target)) {
            self.ctl32(ctl::BELLS_MISSED)
                .fetch_or(bit, Ordering::Relaxed);
        }
    }
}

impl RingMem for SegmentMem {
    #[inline]
    fn word_load(&self, off: u64, order: Ordering) -> u64 {
        self.shared
            .u64_at(self.data_at(off, 8))
            .expect("record offsets are validated against the ring")
            .load(order)
    }

    #[inline]
    fn word_store(&self, off: u64, value: u64, order: Ordering) {
        self.shared
            .u64_at(self.data_at(off, 8))
            .expect("record offsets are validated against the ring")
            .store(value, order)
    }

    #[inline]
    fn copy_in(&self, off: u64, src: &[u8]) {
        let ok = self.shared.copy_in(self.data_at(off, src.len()), src);
        assert!(ok, "record offsets are validated against the ring");
    }

    #[inline]
    fn copy_out(&self, off: u64, dst: &mut [u8]) {
        let ok = self.shared.copy_out(self.data_at(off, dst.len()), dst);
        assert!(ok, "record offsets are validated against the ring");
    }

    #[inline]
    fn head_load(&self, order: Ordering) -> u64 {
        self.ctl64(ctl::HEAD).load(order)
    }

    #[inline]
    fn head_publish(&self, head: u64) {
        self.ctl64(ctl::HEAD).store(head, Ordering::Release);
    }

    #[inline]
    fn tail_load(&self, order: Ordering) -> u64 {
        self.ctl64(ctl::TAIL).load(order)
    }

    #[inline]
    fn tail_publish(&self, tail: u64) {
        self.ctl64(ctl::TAIL).store(tail, Ordering::Release);
    }
}
