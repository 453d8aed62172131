//! In-process tests of the ring's endpoints (threads). The cross-process behaviour (killed
//! peers, hostile writers) is tested in the `ipc-tests` crate with real processes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ipc_core::{Error, Readiness, Receiver, Sender};

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
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let blocked = std::thread::spawn(move || {
        tid_tx.send(crate::sys::process::gettid()).unwrap();
        // Fills the ring, then blocks until the receiver goes away.
        loop {
            if let Err(e) = tx.send(&[1; 500]) {
                return e;
            }
        }
    });
    // The receiver goes once the sender is seen parked on the full ring (asleep in futex).
    let tid = tid_rx.recv().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !in_futex(tid) {
        assert!(Instant::now() < deadline, "the sender never parked");
        // Polling the kernel's view of the thread, not synchronising with it.
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(rx);
    assert!(matches!(blocked.join().unwrap(), Error::Disconnected));
}

/// Whether thread `tid` of this process is blocked in `futex(2)` now (the first field of its
/// `/proc/self/task/TID/syscall` file).
fn in_futex(tid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<i64>().ok())
        == Some(libc::SYS_futex)
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
        stream(RingConfig::new(4096).max_message_size(1000), wait, 20_000);
    }
}

#[test]
fn streams_messages_as_large_as_the_ring_allows() {
    let config = RingConfig::new(1024);
    let config = config.max_message_size(Geometry::max_message_for(config.capacity));
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

/// The producers' lock word of the ring in `shared`.
fn lock_word(shared: &Shared) -> &std::sync::atomic::AtomicU32 {
    let a = attach(shared, Duration::ZERO).unwrap();
    shared.u32_at(a.ctl + ctl::LOCK).unwrap()
}

fn multi(wait: WaitStrategy) -> (Shared, RingReceiver, EndpointOptions) {
    let shared = ring(RingConfig::new(8192).producers(Producers::Multi));
    let options = EndpointOptions::default().wait(wait);
    let rx = RingReceiver::attach(shared.clone(), &options).unwrap();
    (shared, rx, options)
}

#[test]
fn a_lock_left_by_a_forgotten_loan_is_taken_back() {
    let (shared, mut rx, options) = multi(WaitStrategy::Spin);
    let mut buf = [0u8; 64];
    // Its own leftover: the same sender takes the lock back at its next send.
    let mut tx = RingSender::attach(shared.clone(), &options).unwrap();
    std::mem::forget(tx.loan(8).unwrap());
    assert_ne!(lock_word(&shared).load(Ordering::Relaxed), 0);
    tx.send(b"again").unwrap();
    assert_eq!(rx.recv(&mut buf).unwrap(), 5);
    // A closed producer's leftover: the slot's claim is over, so the lock is anybody's.
    std::mem::forget(tx.loan(8).unwrap());
    drop(tx);
    let mut other = RingSender::attach(shared.clone(), &options).unwrap();
    other
        .send_timeout(b"other", Duration::from_secs(30))
        .unwrap();
    assert_eq!(rx.recv(&mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"other");
}

#[test]
fn an_invalid_lock_word_is_corrupted_for_every_producer() {
    let (shared, _rx, options) = multi(WaitStrategy::Busy);
    let mut a = RingSender::attach(shared.clone(), &options).unwrap();
    let mut b = RingSender::attach(shared.clone(), &options).unwrap();
    for word in [0x40 | 1, 63, 0x80, u32::MAX] {
        lock_word(&shared).store(word, Ordering::Relaxed);
        for tx in [&mut a, &mut b] {
            let got = tx.send_timeout(b"x", Duration::from_secs(5));
            assert!(
                matches!(got, Err(Error::Corrupted { .. })),
                "{word:#x}: {got:?}"
            );
        }
    }
}

#[test]
fn a_lock_word_changed_under_its_holder_makes_it_corrupted() {
    let (shared, mut rx, options) = multi(WaitStrategy::Spin);
    let mut tx = RingSender::attach(shared.clone(), &options).unwrap();
    let mut loan = tx.loan(3).unwrap();
    loan.copy_from_slice(b"abc");
    // Another process rewrites the word while we hold the lock (a valid-looking holder).
    lock_word(&shared).store(5 << 8 | 2, Ordering::Relaxed);
    loan.commit();
    let mut buf = [0u8; 8];
    assert_eq!(rx.recv(&mut buf).unwrap(), 3, "the record itself was whole");
    assert!(matches!(tx.send(b"next"), Err(Error::Corrupted { .. })));
    assert!(matches!(tx.send(b"next"), Err(Error::Corrupted { .. })));
}

#[test]
fn a_producer_waiting_for_the_lock_sees_its_consumer_leave() {
    for wait in [WaitStrategy::Busy, WaitStrategy::Spin, WaitStrategy::Park] {
        let (shared, rx, options) = multi(wait);
        let mut holder = RingSender::attach(shared.clone(), &options).unwrap();
        let mut waiter = RingSender::attach(shared.clone(), &options).unwrap();
        let loan = holder.loan(8).unwrap();
        std::thread::scope(|s| {
            let blocked = s.spawn(move || waiter.send_timeout(b"x", Duration::from_secs(60)));
            // Only the consumer's departure can end the wait: the lock stays held throughout.
            drop(rx);
            let got = blocked.join().unwrap();
            assert!(matches!(got, Err(Error::Disconnected)), "{wait}: {got:?}");
        });
        drop(loan);
    }
}

#[test]
fn a_held_lock_is_full_for_try_send_and_a_timeout_for_a_deadline() {
    for wait in [WaitStrategy::Busy, WaitStrategy::Spin, WaitStrategy::Park] {
        let (shared, _rx, options) = multi(wait);
        let mut holder = RingSender::attach(shared.clone(), &options).unwrap();
        let mut waiter = RingSender::attach(shared.clone(), &options).unwrap();
        let loan = holder.loan(8).unwrap();
        std::thread::scope(|s| {
            s.spawn(|| {
                assert!(matches!(waiter.try_send(b"x"), Err(Error::Full)));
                let start = Instant::now();
                let limit = Duration::from_millis(40);
                let got = waiter.send_timeout(b"x", limit);
                assert!(matches!(got, Err(Error::Timeout)), "{wait}: {got:?}");
                assert!(start.elapsed() >= limit);
            });
        });
        loan.commit();
        waiter.try_send(b"y").unwrap();
    }
}

#[test]
fn a_sleeping_producer_is_woken_when_the_lock_is_released() {
    let (shared, mut rx, options) = multi(WaitStrategy::Park);
    let mut holder = RingSender::attach(shared.clone(), &options).unwrap();
    let mut waiter = RingSender::attach(shared.clone(), &options).unwrap();
    let loan = holder.loan(1).unwrap();
    std::thread::scope(|s| {
        let blocked = s.spawn(move || waiter.send_timeout(b"second", Duration::from_secs(60)));
        // The waiter announces itself in the word before it sleeps.
        let deadline = Instant::now() + Duration::from_secs(60);
        while lock_word(&shared).load(Ordering::Relaxed) & 0x80 == 0 {
            assert!(Instant::now() < deadline, "the waiter never went to sleep");
            std::thread::yield_now();
        }
        let mut loan = loan;
        loan.copy_from_slice(b"1");
        loan.commit();
        blocked.join().unwrap().unwrap();
    });
    let mut buf = [0u8; 16];
    assert_eq!(rx.recv(&mut buf).unwrap(), 1);
    assert_eq!(rx.recv(&mut buf).unwrap(), 6);
    assert_eq!(lock_word(&shared).load(Ordering::Relaxed), 0);
}

/// A slot word whose state byte is none of empty, attached or closed was written by another
/// process: it is `Corrupted`, never taken for a closed slot (which a late producer would claim
/// from under a live one, robbing its lock while it writes).
#[test]
fn a_slot_word_with_no_valid_state_is_corrupted() {
    let (shared, mut rx, options) = multi(WaitStrategy::Spin);
    let mut tx = RingSender::attach(shared.clone(), &options).unwrap();
    tx.send(b"before").unwrap();
    let ctl = attach(&shared, Duration::ZERO).unwrap().ctl;
    let slot = |off: usize| shared.u64_at(ctl + off).unwrap();
    let producer = slot(ctl::SLOTS).load(Ordering::Relaxed);
    slot(ctl::SLOTS).store(producer & !0xff | 0x81, Ordering::Relaxed);
    assert!(matches!(
        RingSender::attach(shared.clone(), &options),
        Err(Error::Corrupted { .. })
    ));
    let mut buf = [0u8; 16];
    assert_eq!(rx.recv(&mut buf).unwrap(), 6);
    // The receiver meets it when it looks for its producers: an empty ring.
    let got = rx.recv_timeout(&mut buf, Duration::from_secs(5));
    assert!(matches!(got, Err(Error::Corrupted { .. })), "{got:?}");
    let consumer = slot(ctl::CONSUMER).load(Ordering::Relaxed);
    slot(ctl::CONSUMER).store(consumer & !0xff | 0x7f, Ordering::Relaxed);
    let got = tx.send(b"after");
    assert!(matches!(got, Err(Error::Corrupted { .. })), "{got:?}");
}

/// A tail moved back into records not yet read would have the next producer write over them:
/// the slot at a true tail is always zero, so such a tail is `Corrupted`.
#[test]
fn a_tail_pointing_into_records_is_corrupted() {
    let (shared, mut rx, options) = multi(WaitStrategy::Spin);
    let mut tx = RingSender::attach(shared.clone(), &options).unwrap();
    for msg in [&b"first"[..], b"second"] {
        tx.send(msg).unwrap();
    }
    let ctl = attach(&shared, Duration::ZERO).unwrap().ctl;
    shared
        .u64_at(ctl + ctl::TAIL)
        .unwrap()
        .store(0, Ordering::Relaxed);
    let got = tx.send(b"third");
    assert!(matches!(got, Err(Error::Corrupted { .. })), "{got:?}");
    let mut buf = [0u8; 16];
    assert_eq!(rx.recv(&mut buf).unwrap(), 5);
    assert_eq!(
        &buf[..5],
        b"first",
        "the unread records were not written over"
    );
    assert_eq!(rx.recv(&mut buf).unwrap(), 6);
}

use crate::sys::bell::readable_within;

/// Runs the readiness protocol once: arms, and if told to sleep, sleeps on the descriptor for
/// at most `timeout`; `true` if progress may now be possible.
fn wait_ready(endpoint: &mut dyn ipc_core::Readiness, timeout: Duration) -> bool {
    if endpoint.prepare_wait().unwrap() {
        return true;
    }
    let (fd, interest) = endpoint.ready_fd().unwrap();
    assert_eq!(interest, ipc_core::Interest::Readable);
    let woke = readable_within(fd, timeout);
    endpoint.after_wake();
    woke
}

/// Arms until the endpoint would really sleep (a fresh doorbell and a moved head say "try
/// again" first).
fn arm_until_asleep(endpoint: &mut dyn ipc_core::Readiness) {
    for _ in 0..4 {
        if !endpoint.prepare_wait().unwrap() {
            return;
        }
    }
    panic!("endpoint never ready to sleep");
}

#[test]
fn doorbell_wakes_an_armed_receiver_and_only_when_armed() {
    for strategy in [WaitStrategy::Busy, WaitStrategy::Spin, WaitStrategy::Park] {
        let (mut tx, mut rx) = pair(RingConfig::new(4096), strategy);
        let mut buf = [0u8; 64];
        assert!(matches!(rx.try_recv(&mut buf), Err(Error::Empty)));
        arm_until_asleep(&mut rx);
        let fd = rx.ready_fd().unwrap().0.try_clone_to_owned().unwrap();
        use std::os::fd::AsFd;
        assert!(!readable_within(fd.as_fd(), Duration::ZERO), "{strategy:?}");
        tx.send(b"ding").unwrap();
        assert!(
            readable_within(fd.as_fd(), Duration::from_secs(5)),
            "{strategy:?}"
        );
        rx.after_wake();
        assert!(
            !readable_within(fd.as_fd(), Duration::ZERO),
            "drained: {strategy:?}"
        );
        assert_eq!(rx.try_recv(&mut buf).unwrap(), 4);
        // Not armed: a message rings nothing.
        tx.send(b"dong").unwrap();
        assert!(!readable_within(fd.as_fd(), Duration::ZERO), "{strategy:?}");
        // Armed with a message waiting: no sleep.
        assert!(rx.prepare_wait().unwrap());
        assert_eq!(rx.try_recv(&mut buf).unwrap(), 4);
    }
}

#[test]
fn doorbell_carries_a_stream_across_threads() {
    for strategy in [WaitStrategy::Busy, WaitStrategy::Park] {
        let config = RingConfig::new(1024).producers(Producers::Multi);
        let shared = ring(config);
        let options = EndpointOptions::default().wait(strategy);
        let mut rx = RingReceiver::attach(shared.clone(), &options).unwrap();
        const PER: u64 = 2000;
        let producers: Vec<_> = (0..2u64)
            .map(|p| {
                let mut tx = RingSender::attach(shared.clone(), &options).unwrap();
                std::thread::spawn(move || {
                    for seq in 0..PER {
                        let msg = message(p << 32 | seq, 200);
                        loop {
                            match tx.try_send(&msg) {
                                Ok(()) => break,
                                Err(Error::Full) => {
                                    assert!(
                                        wait_ready(&mut tx, Duration::from_secs(10)),
                                        "sender never woken"
                                    );
                                }
                                Err(e) => panic!("{e}"),
                            }
                        }
                    }
                })
            })
            .collect();
        let mut next = [0u64; 2];
        let mut buf = [0u8; 256];
        while next.iter().sum::<u64>() < 2 * PER {
            match rx.try_recv(&mut buf) {
                Ok(n) => {
                    let seq = u64::from_le_bytes(buf[..8].try_into().unwrap());
                    let p = (seq >> 32) as usize;
                    assert_eq!(seq & 0xffff_ffff, next[p]);
                    assert_eq!(&buf[..n], message(seq, 200));
                    next[p] += 1;
                }
                Err(Error::Empty) => {
                    assert!(
                        wait_ready(&mut rx, Duration::from_secs(10)),
                        "receiver never woken"
                    );
                }
                Err(e) => panic!("{e}"),
            }
        }
        for p in producers {
            p.join().unwrap();
        }
        // Both producers left: the armed receiver is woken and told.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match rx.try_recv(&mut buf) {
                Err(Error::Disconnected) => break,
                Err(Error::Empty) => {
                    assert!(Instant::now() < deadline);
                    wait_ready(&mut rx, Duration::from_secs(5));
                }
                other => panic!("{other:?}"),
            }
        }
    }
}

#[test]
fn doorbell_wakes_a_sender_when_the_receiver_leaves() {
    let (mut tx, rx) = pair(RingConfig::new(256), WaitStrategy::Busy);
    while tx.try_send(&[7; 32]).is_ok() {}
    arm_until_asleep(&mut tx);
    let fd = tx.ready_fd().unwrap().0.try_clone_to_owned().unwrap();
    use std::os::fd::AsFd;
    assert!(!readable_within(fd.as_fd(), Duration::ZERO));
    drop(rx);
    assert!(readable_within(fd.as_fd(), Duration::from_secs(5)));
    tx.after_wake();
    assert!(matches!(tx.try_send(&[7; 32]), Err(Error::Disconnected)));
}

#[test]
fn a_multi_producer_sender_waits_for_space_without_spinning() {
    let shared = ring(RingConfig::new(256).producers(Producers::Multi));
    let options = EndpointOptions::default().wait(WaitStrategy::Park);
    let mut rx = RingReceiver::attach(shared.clone(), &options).unwrap();
    let mut tx = RingSender::attach(shared, &options).unwrap();
    while tx.try_send(&[7; 32]).is_ok() {}
    // The lock is free and the ring full: the sender must come to sleep, not retry forever.
    arm_until_asleep(&mut tx);
    let fd = tx.ready_fd().unwrap().0.try_clone_to_owned().unwrap();
    use std::os::fd::AsFd;
    let mut buf = [0u8; 64];
    while rx.try_recv(&mut buf).is_ok() {}
    assert!(readable_within(fd.as_fd(), Duration::from_secs(5)));
    tx.after_wake();
    tx.try_send(&[7; 32]).unwrap();
}
