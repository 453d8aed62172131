//! A `loom` model of the ring's index protocol: the real [`ProducerCore`] and [`ConsumerCore`]
//! over modelled atomics, every interleaving (and every weak-memory outcome loom models)
//! explored. Run with `RUSTFLAGS="--cfg loom" cargo test -p ipc-sync --release --lib loom`.
//!
//! Payload bytes live in modelled atomic words written with relaxed ordering: if the protocol
//! did not order them before the header that publishes them, loom would find a run where the
//! consumer reads stale bytes and the content check below fails.

use std::sync::atomic::Ordering;

use loom::sync::Arc;
use loom::sync::atomic::AtomicU64;

use super::core::{ConsumerCore, Geometry, ProducerCore, RingMem};

struct LoomMem {
    words: Vec<AtomicU64>,
    head: AtomicU64,
    tail: AtomicU64,
}

impl LoomMem {
    fn new(capacity: usize) -> LoomMem {
        LoomMem {
            words: (0..capacity / 8).map(|_| AtomicU64::new(0)).collect(),
            head: AtomicU64::new(0),
            tail: AtomicU64::new(0),
        }
    }
}

impl RingMem for LoomMem {
    fn word_load(&self, off: u64, order: Ordering) -> u64 {
        self.words[off as usize / 8].load(order)
    }
    fn word_store(&self, off: u64, value: u64, order: Ordering) {
        self.words[off as usize / 8].store(value, order)
    }
    fn copy_in(&self, off: u64, src: &[u8]) {
        // Whole words only in this model (the messages below are multiples of 8 bytes).
        for (i, chunk) in src.chunks(8).enumerate() {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.words[off as usize / 8 + i].store(u64::from_le_bytes(word), Ordering::Relaxed);
        }
    }
    fn copy_out(&self, off: u64, dst: &mut [u8]) {
        for (i, chunk) in dst.chunks_mut(8).enumerate() {
            let word = self.words[off as usize / 8 + i]
                .load(Ordering::Relaxed)
                .to_le_bytes();
            chunk.copy_from_slice(&word[..chunk.len()]);
        }
    }
    fn head_load(&self, order: Ordering) -> u64 {
        self.head.load(order)
    }
    fn head_publish(&self, head: u64) {
        self.head.store(head, Ordering::Release);
    }
    fn tail_load(&self, order: Ordering) -> u64 {
        self.tail.load(order)
    }
    fn tail_publish(&self, tail: u64) {
        self.tail.store(tail, Ordering::Release);
    }
}

fn message(seq: u8, len: usize) -> Vec<u8> {
    (0..len as u8)
        .map(|i| i.wrapping_add(seq * 16) | 1)
        .collect()
}

/// Producer and consumer on a 64-byte ring: the second and third messages do not fit before
/// the first is consumed, and the third needs a pad to wrap.
#[test]
fn loom_spsc_delivers_every_message_whole_and_in_order() {
    const LENS: [usize; 3] = [16, 24, 32];
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = None;
    builder.check(|| {
        let geo = Geometry {
            capacity: 64,
            max_message: 32,
        };
        let mem = Arc::new(LoomMem::new(64));
        let producer = {
            let mem = Arc::clone(&mem);
            loom::thread::spawn(move || {
                let mut core = ProducerCore::new(geo, 0, 0).unwrap();
                for (seq, len) in LENS.into_iter().enumerate() {
                    let slot = loop {
                        match core.reserve(&*mem, len).unwrap() {
                            Some(slot) => break slot,
                            None => loom::thread::yield_now(),
                        }
                    };
                    mem.copy_in(slot.payload(), &message(seq as u8, len));
                    core.commit(&*mem, slot, len);
                }
            })
        };
        let mut core = ConsumerCore::new(geo, 0).unwrap();
        for (seq, len) in LENS.into_iter().enumerate() {
            let found = loop {
                match core.peek(&*mem).unwrap() {
                    Some(found) => break found,
                    None => loom::thread::yield_now(),
                }
            };
            assert_eq!(found.len, len);
            let mut got = vec![0u8; len];
            mem.copy_out(found.payload, &mut got);
            assert_eq!(got, message(seq as u8, len));
            core.release(&*mem, found.size);
        }
        producer.join().unwrap();
        assert!(core.peek(&*mem).unwrap().is_none());
    });
}

/// Two producers taking turns behind a lock with the orderings of the ring's producers' lock
/// (taking it acquires, giving it releases; modelled by loom's mutex, whose waiting loom can
/// explore without a spin loop), each re-syncing its `ProducerCore` from the published tail
/// after taking it, as `RingSender` does, and reading the consumer's `head` only when its cached
/// one is too old. The consumer checks that each producer's messages arrive whole and in order.
/// A 64-byte ring makes records wait for space and wrap behind a pad. (A producer whose cached
/// `head` is a lap old is the unit test `a_producer_whose_head_is_a_lap_old_rereads_it` in
/// `core.rs`: in this model it would take more messages than loom explores in reasonable time.)
#[test]
fn loom_two_producers_behind_the_lock_deliver_whole_and_in_order() {
    use loom::sync::Mutex;
    const LENS: [&[usize]; 2] = [&[16, 24], &[24]];
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(|| {
        let geo = Geometry {
            capacity: 64,
            max_message: 32,
        };
        let mem = Arc::new(LoomMem::new(64));
        let lock = Arc::new(Mutex::new(()));
        let producers: Vec<_> = (0..2u8)
            .map(|id| {
                let (mem, lock) = (Arc::clone(&mem), Arc::clone(&lock));
                loom::thread::spawn(move || {
                    let mut core = ProducerCore::new(geo, 0, 0).unwrap();
                    for (n, &len) in LENS[id as usize].iter().enumerate() {
                        loop {
                            let guard = lock.lock().unwrap();
                            core.resync(&*mem).unwrap();
                            if let Some(slot) = core.reserve(&*mem, len).unwrap() {
                                mem.copy_in(slot.payload(), &message(id * 2 + n as u8, len));
                                core.commit(&*mem, slot, len);
                                break;
                            }
                            // No room: let the consumer (and the other producer) on.
                            drop(guard);
                            loom::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let mut core = ConsumerCore::new(geo, 0).unwrap();
        let mut next = [0usize; 2];
        for _ in 0..3 {
            let found = loop {
                match core.peek(&*mem).unwrap() {
                    Some(found) => break found,
                    None => loom::thread::yield_now(),
                }
            };
            let mut got = vec![0u8; found.len];
            mem.copy_out(found.payload, &mut got);
            let id = (0..2)
                .find(|&id| {
                    LENS[id].get(next[id]) == Some(&found.len)
                        && got == message(id as u8 * 2 + next[id] as u8, found.len)
                })
                .expect("a whole message, next in its producer's order");
            next[id] += 1;
            core.release(&*mem, found.size);
        }
        for p in producers {
            p.join().unwrap();
        }
        assert!(core.peek(&*mem).unwrap().is_none());
    });
}
