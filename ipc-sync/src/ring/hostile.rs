//! Property tests: a peer writing random bytes over a live ring (its layout header, control
//! block and records) can make the endpoints fail, never panic, hang or return a message that
//! was not in the ring.

use std::sync::Arc;

use ipc_core::{Error, Receiver, Sender};
use proptest::prelude::*;

use super::core::{HEADER, record_size};
use super::*;
use crate::layout::HEADER_SIZE;
use crate::sys::mem::HeapSegment;

const CAPACITY: u64 = 2048;

/// A byte range of the segment a scribble overwrote.
#[derive(Clone, Debug)]
struct Scribble {
    offset: usize,
    bytes: Vec<u8>,
}

fn scribbles(segment_len: usize) -> impl Strategy<Value = Vec<Scribble>> {
    prop::collection::vec(
        (0..segment_len, prop::collection::vec(any::<u8>(), 1..24))
            .prop_map(|(offset, bytes)| Scribble { offset, bytes }),
        1..6,
    )
}

fn message(seq: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seq * 31 + i * 7) as u8).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn scribbled_ring_yields_true_messages_or_corrupted(
        lens in prop::collection::vec(0usize..300, 1..20),
        skip in 0usize..8,
        marks in scribbles(RingConfig::new(CAPACITY).segment_size()),
    ) {
        let config = RingConfig::new(CAPACITY).max_message_size(300);
        let shared = Shared::new(Arc::new(HeapSegment::new(config.segment_size(), "hostile")));
        init(&shared, &config).unwrap();
        let options = EndpointOptions::default().wait(WaitStrategy::Busy);
        let mut rx = RingReceiver::attach(shared.clone(), &options).unwrap();
        let mut tx = RingSender::attach(shared.clone(), &options).unwrap();
        // Move the ring's start so that records wrap.
        let mut buf = vec![0u8; 512];
        for _ in 0..skip {
            tx.send(&[0; 250]).unwrap();
            rx.recv(&mut buf).unwrap();
        }
        let data = shared_data_offset(&shared);
        let mut records = Vec::new();
        for (seq, &len) in lens.iter().enumerate() {
            let at = tx.position();
            match tx.try_send(&message(seq, len)) {
                Ok(()) => {
                    // The record may follow a pad: it lies at the end of what was written.
                    let end = tx.position();
                    let start = end - record_size(len);
                    records.push((seq, len, at, start));
                }
                Err(Error::Full) => break,
                Err(e) => panic!("send: {e}"),
            }
        }
        for m in &marks {
            shared.copy_in(m.offset, &m.bytes[..m.bytes.len().min(shared.len() - m.offset)]);
        }
        let hit = |a: usize, b: usize| marks.iter().any(|m| m.offset < b && m.offset + m.bytes.len() > a);
        let touched = |from: u64, to: u64| {
            // Positions `from..to` of the ring as segment offsets: a pad and the record after it
            // wrap around the end once.
            let a = (from % CAPACITY) as usize;
            let len = (to - from) as usize;
            let first = len.min(CAPACITY as usize - a);
            hit(data + a, data + a + first) || hit(data, data + (len - first))
        };
        let mut corrupted = false;
        for &(seq, len, at, start) in &records {
            match rx.try_recv(&mut buf) {
                Ok(n) => {
                    prop_assert!(n <= 300);
                    if !touched(at, start + HEADER + len as u64) {
                        prop_assert_eq!(&buf[..n], &message(seq, len)[..]);
                    }
                }
                Err(Error::Corrupted { .. }) => {
                    prop_assert!(touched(at, start + HEADER), "corrupted without a scribble on the header");
                    corrupted = true;
                    break;
                }
                Err(Error::Empty) => {
                    prop_assert!(touched(at, start + HEADER), "a record vanished without a scribble on it");
                    break;
                }
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }
        if corrupted {
            let again = matches!(rx.try_recv(&mut buf), Err(Error::Corrupted { .. }));
            prop_assert!(again, "corrupted is sticky");
        }
        // The producer reads the consumer's head from the scribbled control block: it may
        // fail, never panic.
        for seq in 0..20 {
            match tx.try_send(&message(seq, 100)) {
                Ok(()) | Err(Error::Full | Error::Corrupted { .. } | Error::Disconnected) => {}
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }
        // And attaching anew reads the scribbled header and control block.
        drop(rx);
        match RingReceiver::attach(shared.clone(), &options) {
            Ok(mut rx) => {
                for _ in 0..40 {
                    match rx.try_recv(&mut buf) {
                        Ok(n) => prop_assert!(n <= 300),
                        Err(_) => break,
                    }
                }
            }
            Err(Error::Corrupted { .. } | Error::Incompatible { .. } | Error::LimitExceeded { .. }) => {}
            Err(e) => prop_assert!(false, "unexpected {e}"),
        }
    }

    #[test]
    fn scribbled_layout_header_fails_attach_cleanly(marks in scribbles(HEADER_SIZE + 512)) {
        let config = RingConfig::new(CAPACITY);
        let shared = Shared::new(Arc::new(HeapSegment::new(config.segment_size(), "hostile")));
        init(&shared, &config).unwrap();
        for m in &marks {
            shared.copy_in(m.offset, &m.bytes);
        }
        let options = EndpointOptions {
            wait: WaitStrategy::Busy,
            init_timeout: std::time::Duration::ZERO,
        };
        for attempt in [
            RingReceiver::attach(shared.clone(), &options).map(drop),
            RingSender::attach(shared.clone(), &options).map(drop),
            inspect(&shared).map(drop),
        ] {
            match attempt {
                Ok(()) | Err(Error::Corrupted { .. } | Error::Incompatible { .. } | Error::LimitExceeded { .. }) => {}
                Err(e) => prop_assert!(false, "unexpected {e}"),
            }
        }
    }
}

fn shared_data_offset(shared: &Shared) -> usize {
    let layout =
        crate::Layout::attach(shared, crate::LayoutKind::Ring, std::time::Duration::ZERO).unwrap();
    layout.regions()[REGION_DATA].offset
}
