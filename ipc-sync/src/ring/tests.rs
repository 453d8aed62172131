//! In-process tests of the ring's endpoints (threads). The cross-process behaviour (killed
//! peers, hostile writers) is tested in the `ipc-tests` crate with real processes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ipc_core::{Error, Receiver, Sender};

use super::*;
use crate::sys::mem::HeapSegment;

fn ring(config: RingConfig) -> Shared {
    let shared = Shared::new(Arc::new(HeapSegment::new(config.segment_size(), "ring")));
    init(&shared, &config).unwrap();
    shared
}

fn pair(config: RingConfig, wait: WaitStrategy) -> (RingSender, RingReceiver) {
    let shared = ring(config);
    let options = EndpointOptions::default().wait(wait);
    let rx = RingReceiver::attach(shared.clone(), &options).unwrap();
    let tx = RingSender::attach(shared, &options).unwrap();
    (tx, rx)
}

/// A message whose content is derived from its sequence number, so the receiver can check it.
fn message(seq: u64, max: usize) -> Vec<u8> {
    let mut x = seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let len = 8 + (x as usize >> 7) % (max - 8 + 1);
    let mut msg = Vec::with_capacity(len);
    msg.extend_from_slice(&seq.to_le_bytes());
    while msg.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        msg.push(x as u8);
    }
    msg
}

#[test]
fn copies_loans_and_reads_in_place() {
    let (mut tx, mut rx) = pair(RingConfig::new(4096), WaitStrategy::Spin);
    tx.send(b"hello").unwrap();
    let mut loan = tx.loan(6).unwrap();
    loan.copy_from_slice(b"loaned");
    loan.commit();
    let loan = tx.loan(100).unwrap();
    drop(loan); // abandoned: nothing published
    let mut loan = tx.loan(100).unwrap();
    loan[..3].copy_from_slice(b"abc");
    loan.commit_len(3).unwrap();
    tx.send(b"").unwrap();

    let mut buf = [0u8; 64];
    let n = rx.recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello");
    assert_eq!(&*rx.recv_in_place().unwrap(), b"loaned");
    assert_eq!(&*rx.recv_in_place().unwrap(), b"abc");
    assert_eq!(rx.recv(&mut buf).unwrap(), 0);
    assert!(matches!(rx.try_recv(&mut buf), Err(Error::Empty)));
}

#[test]
fn small_buffer_keeps_the_message_and_large_message_is_refused() {
    let (mut tx, mut rx) = pair(RingConfig::new(4096), WaitStrategy::Spin);
    assert!(matches!(
        tx.send(&vec![0; 1025]),
        Err(Error::MessageTooLarge {
            len: 1025,
            max: 1024
        })
    ));
    tx.send(b"0123456789").unwrap();
    let mut small = [0u8; 4];
    assert!(matches!(
        rx.recv(&mut small),
        Err(Error::BufferTooSmall { len: 4, needed: 10 })
    ));
    let mut buf = [0u8; 16];
    assert_eq!(rx.recv(&mut buf).unwrap(), 10);
}

#[test]
fn full_ring_refuses_try_send_and_times_out() {
    let (mut tx, mut rx) = pair(RingConfig::new(1024), WaitStrategy::Park);
    let mut sent = 0;
    while tx.try_send(&[7; 100]).is_ok() {
        sent += 1;
    }
    assert!(
        sent >= 8,
        "a 1 KiB ring holds 8 records of 108 bytes, got {sent}"
    );
    assert!(matches!(tx.try_send(&[7; 100]), Err(Error::Full)));
    let start = Instant::now();
    assert!(matches!(
        tx.send_timeout(&[7; 100], Duration::from_millis(50)),
        Err(Error::Timeout)
    ));
    assert!(start.elapsed() >= Duration::from_millis(50));
    let mut buf = [0u8; 128];
    for _ in 0..sent {
        assert_eq!(rx.try_recv(&mut buf).unwrap(), 100);
    }
    assert!(matches!(
        rx.recv_timeout(&mut buf, Duration::from_millis(30)),
        Err(Error::Timeout)
    ));
}

#[test]
fn one_consumer_and_one_single_producer_at_a_time() {
    let shared = ring(RingConfig::new(4096));
    let options = EndpointOptions::default();
    let rx = RingReceiver::attach(shared.clone(), &options).unwrap();
    assert!(matches!(
        RingReceiver::attach(shared.clone(), &options),
        Err(Error::LimitExceeded { limit: 1, .. })
    ));
    let tx = RingSender::attach(shared.clone(), &options).unwrap();
    assert!(matches!(
        RingSender::attach(shared.clone(), &options),
        Err(Error::LimitExceeded { limit: 1, .. })
    ));
    drop(tx);
    let _tx = RingSender::attach(shared.clone(), &options).unwrap();
    drop(rx);
    let _rx = RingReceiver::attach(shared, &options).unwrap();
}

#[test]
fn dropped_endpoints_disconnect_their_peer() {
    let (mut tx, mut rx) = pair(RingConfig::new(4096), WaitStrategy::Spin);
    tx.send(b"last words").unwrap();
    drop(tx);
    let mut buf = [0u8; 64];
    assert_eq!(rx.recv(&mut buf).unwrap(), 10);
    assert!(matches!(rx.recv(&mut buf), Err(Error::Disconnected)));

    let (mut tx, rx) = pair(RingConfig::new(4096), WaitStrategy::Park);
    let blocked = std::thread::spawn(move || {
        // Fills the ring, then blocks until the receiver goes away.
        loop {
            if let Err(e) = tx.send(&[1; 500]) {
                return e;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(20));
    drop(rx);
    assert!(matches!(blocked.join().unwrap(), Error::Disconnected));
}

#[test]
fn a_receiver_waits_for_its_first_producer() {
    let shared = ring(RingConfig::new(4096));
    let mut rx = RingReceiver::attach(shared.clone(), &EndpointOptions::default()).unwrap();
    let mut buf = [0u8; 16];
    assert!(matches!(
        rx.recv_timeout(&mut buf, Duration::from_millis(20)),
        Err(Error::Timeout)
    ));
    let sender = std::thread::spawn(move || {
        let mut tx = RingSender::attach(shared, &EndpointOptions::default()).unwrap();
        tx.send(b"hi").unwrap();
    });
    assert_eq!(
        rx.recv_timeout(&mut buf, Duration::from_secs(10)).unwrap(),
        2
    );
    sender.join().unwrap();
}

fn stream(config: RingConfig, wait: WaitStrategy, count: u64) {
    let max = config.max_message;
    let (mut tx, mut rx) = pair(config, wait);
    let producer = std::thread::spawn(move || {
        for seq in 0..count {
            tx.send(&message(seq, max)).unwrap();
        }
    });
    let mut buf = vec![0u8; max];
    for seq in 0..count {
        let n = rx
            .recv_timeout(&mut buf, Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("message {seq}: {e}"));
        assert_eq!(buf[..n], message(seq, max)[..], "message {seq}");
    }
    producer.join().unwrap();
    assert!(matches!(
        rx.recv_timeout(&mut buf, Duration::from_secs(10)),
        Err(Error::Disconnected)
    ));
}

#[test]
fn streams_random_sizes_with_every_wait_strategy() {
    for wait in [WaitStrategy::Busy, WaitStrategy::Spin, WaitStrategy::Park] {
        stream(RingConfig::new(4096).max_message(1000), wait, 20_000);
    }
}

#[test]
fn streams_messages_as_large_as_the_ring_allows() {
    let config = RingConfig::new(1024);
    let config = config.max_message(Geometry::max_message_for(config.capacity));
    stream(config, WaitStrategy::Spin, 2_000);
}

#[test]
fn many_producers_keep_their_own_order() {
    const PRODUCERS: u64 = 4;
    const EACH: u64 = 5_000;
    let shared = ring(RingConfig::new(8192).producers(Producers::Multi));
    let options = EndpointOptions::default();
    let mut rx = RingReceiver::attach(shared.clone(), &options).unwrap();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let mut tx = RingSender::attach(shared.clone(), &options).unwrap();
            std::thread::spawn(move || {
                for seq in 0..EACH {
                    let mut msg = message(seq, 200);
                    msg[7] = p as u8;
                    tx.send(&msg).unwrap();
                }
            })
        })
        .collect();
    let mut next = [0u64; PRODUCERS as usize];
    let mut buf = [0u8; 256];
    for _ in 0..PRODUCERS * EACH {
        let n = rx.recv_timeout(&mut buf, Duration::from_secs(20)).unwrap();
        let p = buf[7] as usize;
        let mut expect = message(next[p], 200);
        expect[7] = p as u8;
        assert_eq!(buf[..n], expect[..]);
        next[p] += 1;
    }
    for p in producers {
        p.join().unwrap();
    }
    assert!(matches!(rx.try_recv(&mut buf), Err(Error::Disconnected)));
}

#[test]
fn attaching_to_something_else_is_incompatible() {
    let shared = Shared::new(Arc::new(HeapSegment::new(8192, "junk")));
    shared.copy_in(0, b"not a ring at all");
    assert!(matches!(
        RingReceiver::attach(shared, &EndpointOptions::default()),
        Err(Error::Incompatible { .. })
    ));
}
