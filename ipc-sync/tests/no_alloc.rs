//! The ring allocates nothing per message: a counting global allocator watches a few thousand
//! sends and receives (copying and zero-copy) after the endpoints are set up.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use ipc_core::{Receiver, Sender};
use ipc_sync::ring::{
    self, EndpointOptions, Producers, RingConfig, RingReceiver, RingSender, WaitStrategy,
};
use ipc_sync::{HeapSegment, Shared};

struct Counting;

thread_local! {
    // Per thread: the test harness's own threads allocate at times of their choosing, and only
    // the thread that sends and receives is under test. (A const-initialised thread local
    // needs no allocation, so the allocator may use it.)
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    ALLOCATIONS.with(|n| n.set(n.get() + 1));
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as ours, passed through.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout (via `alloc` above).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as ours, passed through.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn sending_and_receiving_allocate_nothing() {
    let modes = [Producers::Single, Producers::Multi];
    for (wait, producers) in [WaitStrategy::Busy, WaitStrategy::Spin, WaitStrategy::Park]
        .into_iter()
        .flat_map(|w| modes.map(|p| (w, p)))
    {
        // Multi: the producers' lock is taken and given at every message.
        let config = RingConfig::new(64 * 1024).producers(producers);
        let shared = Shared::new(Arc::new(HeapSegment::new(config.segment_size(), "alloc")));
        ring::init(&shared, &config).unwrap();
        let options = EndpointOptions::default().wait(wait);
        let mut rx = RingReceiver::attach(shared.clone(), &options).unwrap();
        let mut tx = RingSender::attach(shared, &options).unwrap();
        let msg = vec![7u8; 1000];
        let mut buf = vec![0u8; 4096];
        // Warm up: the first liveness checks may open a pidfd watch (allocating once).
        for _ in 0..10 {
            tx.send(&msg).unwrap();
            rx.recv(&mut buf).unwrap();
        }
        let before = allocations();
        for i in 0..5_000 {
            if i % 2 == 0 {
                tx.send(&msg[..i % 1000]).unwrap();
                let n = rx.recv(&mut buf).unwrap();
                assert_eq!(n, i % 1000);
            } else {
                let mut loan = tx.loan(i % 1000).unwrap();
                loan.fill(3);
                loan.commit();
                let record = rx.recv_in_place().unwrap();
                assert_eq!(record.len(), i % 1000);
            }
            assert!(matches!(rx.try_recv(&mut buf), Err(ipc_core::Error::Empty)));
        }
        let allocated = allocations() - before;
        assert_eq!(
            allocated, 0,
            "{wait}, producers {producers}: {allocated} allocations in 5000 messages"
        );
    }
}
