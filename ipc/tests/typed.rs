//! Typed messages (`ipc::typed`) over real transports.
#![cfg(all(
    feature = "pod",
    feature = "serde",
    feature = "pipe",
    feature = "posix"
))]

use std::sync::atomic::{AtomicUsize, Ordering};

use bytemuck::{Pod, Zeroable};
use ipc::pipe::{PipeConfig, channel};
use ipc::posix::ring::{ShmReceiver, ShmSender};
use ipc::typed::{LoanPod, PodReceiver, PodSender, RecvPodInPlace, SerdeReceiver, SerdeSender};
use ipc::{Error, Receiver, Sender};
use serde::{Deserialize, Serialize};

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
struct Sample {
    seq: u64,
    value: f64,
    channel: u32,
    flags: u32,
}

#[repr(C, align(64))]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
struct Overaligned {
    bytes: [u8; 64],
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u32,
    symbol: String,
    fills: Vec<f64>,
    note: Option<String>,
}

fn sample(seq: u64) -> Sample {
    Sample {
        seq,
        value: seq as f64 * 0.5,
        channel: 3,
        flags: 0xdead_beef,
    }
}

fn order() -> Order {
    Order {
        id: 42,
        symbol: "ACME".into(),
        fills: vec![1.25, 2.5, 1e9],
        note: Some("ünïcode".into()),
    }
}

/// A fresh posix-shm ring; the receiver creates it and removes it on drop.
fn shm_pair() -> (ShmSender, ShmReceiver) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let spec = format!(
        "posix-shm:/ipc-typed-test-{}-{}?capacity=64KiB",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
    .parse()
    .unwrap();
    let rx = ShmReceiver::open(&spec).unwrap();
    assert!(rx.owns_segment());
    let tx = ShmSender::open(&spec).unwrap();
    (tx, rx)
}

fn assert_corrupted(err: Error, type_word: &str) {
    match &err {
        Error::Corrupted { what } => assert!(what.contains(type_word), "{err}"),
        other => panic!("expected Corrupted naming {type_word}, got {other:?}"),
    }
}

#[test]
fn pod_round_trip_over_pipe() {
    let (tx, rx) = channel(&PipeConfig::default()).unwrap();
    let mut tx = PodSender::<Sample, _>::new_checked(tx).unwrap();
    let mut rx = PodReceiver::<Sample, _>::new(rx);
    for seq in 0..10 {
        tx.send(&sample(seq)).unwrap();
    }
    for seq in 0..10 {
        assert_eq!(rx.recv().unwrap(), sample(seq));
    }
    assert!(matches!(rx.try_recv(), Err(Error::Empty)));
}

#[test]
fn pod_round_trip_over_boxed_posix_shm() {
    let (tx, rx) = shm_pair();
    let tx: Box<dyn Sender> = Box::new(tx);
    let rx: Box<dyn Receiver> = Box::new(rx);
    let mut tx = PodSender::<Sample, _>::new(tx);
    let mut rx = PodReceiver::<Sample, _>::new(rx);
    tx.send(&sample(7)).unwrap();
    assert_eq!(rx.recv().unwrap(), sample(7));
}

#[test]
fn pod_in_place_over_posix_shm() {
    let (mut tx, mut rx) = shm_pair();
    // Loan: the value is written inside the segment.
    let mut loan = tx.loan_pod::<Sample>().unwrap();
    *loan = sample(1);
    loan.seq = 100;
    loan.commit();
    // Copying send, read in place.
    tx.send(bytemuck::bytes_of(&sample(2))).unwrap();
    {
        let record = rx.recv_pod_in_place::<Sample>().unwrap();
        assert_eq!(
            *record,
            Sample {
                seq: 100,
                ..sample(1)
            }
        );
    }
    let record = rx.recv_pod_in_place::<Sample>().unwrap();
    assert_eq!(record.seq, 2);
    assert_eq!(*record, sample(2));
}

#[test]
fn uncommitted_loan_publishes_nothing() {
    let (mut tx, mut rx) = shm_pair();
    drop(tx.loan_pod::<Sample>().unwrap());
    assert!(matches!(
        rx.recv_pod_in_place_with::<Sample>(ipc::Wait::Never),
        Err(Error::Empty)
    ));
}

#[test]
fn wrong_length_is_an_error_and_consumed_over_pipe() {
    let (mut tx, rx) = channel(&PipeConfig::default()).unwrap();
    let mut rx = PodReceiver::<Sample, _>::new(rx);
    tx.send(&[1, 2, 3]).unwrap(); // too short
    tx.send(&[0; 100]).unwrap(); // too long
    tx.send(bytemuck::bytes_of(&sample(9))).unwrap();
    assert_corrupted(rx.recv().unwrap_err(), "Sample");
    assert_corrupted(rx.recv().unwrap_err(), "Sample");
    // Both bad messages were consumed: the good one comes next.
    assert_eq!(rx.recv().unwrap(), sample(9));
}

#[test]
fn wrong_length_in_place_is_an_error_and_consumed() {
    let (mut tx, mut rx) = shm_pair();
    tx.send(&[1, 2, 3]).unwrap();
    tx.send(bytemuck::bytes_of(&sample(5))).unwrap();
    assert_corrupted(rx.recv_pod_in_place::<Sample>().unwrap_err(), "Sample");
    assert_eq!(*rx.recv_pod_in_place::<Sample>().unwrap(), sample(5));
    // Over the copying receiver too.
    tx.send(&[0; 7]).unwrap();
    let mut rx = PodReceiver::<Sample, _>::new(rx);
    assert_corrupted(rx.recv().unwrap_err(), "Sample");
}

#[test]
fn overaligned_type_in_place_is_an_error_not_a_panic() {
    let (mut tx, mut rx) = shm_pair();
    // Sent by copy; an in-place view may or may not be aligned to 64: either it works or it is
    // an error, never a panic.
    let value = Overaligned { bytes: [7; 64] };
    tx.send(bytemuck::bytes_of(&value)).unwrap();
    match rx.recv_pod_in_place::<Overaligned>() {
        Ok(record) => assert_eq!(*record, value),
        Err(e) => assert_corrupted(e, "Overaligned"),
    }
    match tx.loan_pod::<Overaligned>() {
        Ok(loan) => loan.commit(),
        Err(e) => assert_corrupted(e, "Overaligned"),
    }
    // The copying receiver has no alignment requirement.
    tx.send(bytemuck::bytes_of(&value)).unwrap();
    let mut rx = PodReceiver::<Overaligned, _>::new(rx);
    loop {
        // Skip the loan above, if it was published.
        let got = rx.recv().unwrap();
        if got == value {
            break;
        }
    }
}

#[test]
fn serde_round_trip_over_pipe() {
    let (tx, rx) = channel(&PipeConfig::default()).unwrap();
    let mut tx = SerdeSender::<Order, _>::new(tx);
    let mut rx = SerdeReceiver::<Order, _>::new(rx);
    tx.send(&order()).unwrap();
    let big = Order {
        fills: vec![0.5; 2000], // 16 KB: larger than the receiver's first buffer
        note: None,
        ..order()
    };
    tx.send(&big).unwrap();
    assert_eq!(rx.recv().unwrap(), order());
    assert_eq!(rx.recv().unwrap(), big);
}

#[test]
fn serde_round_trip_over_posix_mq() {
    let spec = format!("posix-mq:/ipc-typed-test-mq-{}", std::process::id());
    let rx = ipc::open_receiver(&spec).unwrap();
    let tx = ipc::open_sender(&spec).unwrap();
    let mut tx = SerdeSender::<Order, _>::new(tx);
    let mut rx = SerdeReceiver::<Order, _>::new(rx);
    tx.send(&order()).unwrap();
    assert_eq!(rx.recv().unwrap(), order());
}

#[test]
fn undecodable_bytes_are_corrupted_and_consumed() {
    let (mut tx, rx) = channel(&PipeConfig::default()).unwrap();
    let mut rx = SerdeReceiver::<Order, _>::new(rx);
    // A string length far past the end of the message.
    tx.send(&[1, 0xff, 0xff, 0x03]).unwrap();
    // A whole Order followed by trailing garbage.
    let mut trailing = ipc::typed::postcard::to_stdvec(&order()).unwrap();
    trailing.push(0);
    tx.send(&trailing).unwrap();
    tx.send(&ipc::typed::postcard::to_stdvec(&order()).unwrap())
        .unwrap();
    assert_corrupted(rx.recv().unwrap_err(), "Order");
    assert_corrupted(rx.recv().unwrap_err(), "Order");
    assert_eq!(rx.recv().unwrap(), order());
}
