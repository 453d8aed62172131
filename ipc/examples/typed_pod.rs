//! Plain-old-data messages with `ipc::typed` (feature `pod`): a `#[repr(C)]` struct sent as
//! its bytes over a pipe, then over a `posix-shm` ring written and read in place.
//!
//! `cargo run -p ipc --example typed_pod`

use bytemuck::{Pod, Zeroable};
use ipc::pipe::{PipeConfig, channel};
use ipc::posix::ring::{ShmReceiver, ShmSender};
use ipc::typed::{LoanPod, PodReceiver, PodSender, RecvPodInPlace};

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
struct Tick {
    seq: u64,
    price: f64,
    size: u32,
    venue: u32,
}

fn main() -> ipc::Result<()> {
    // By copy, over any transport (here a pipe within one process).
    let (tx, rx) = channel(&PipeConfig::default())?;
    let mut tx = PodSender::<Tick, _>::new_checked(tx)?;
    let mut rx = PodReceiver::<Tick, _>::new(rx);
    for seq in 0..3 {
        tx.send(&Tick {
            seq,
            price: 100.0 + seq as f64,
            size: 10,
            venue: 1,
        })?;
    }
    for _ in 0..3 {
        println!("pipe: {:?}", rx.recv()?);
    }

    // Zero-copy, over a posix-shm ring: the sender builds the value inside the segment and
    // the receiver reads it where it lies. The receiver creates the segment and removes it.
    let spec = format!(
        "posix-shm:/ipc-example-typed-pod-{}?capacity=64KiB",
        std::process::id()
    )
    .parse()?;
    let mut rx = ShmReceiver::open(&spec)?;
    let mut tx = ShmSender::open(&spec)?;
    let mut loan = tx.loan_pod::<Tick>()?;
    loan.seq = 42;
    loan.price = 99.5;
    loan.size = 7;
    loan.venue = 2;
    loan.commit();
    let tick = rx.recv_pod_in_place::<Tick>()?;
    println!("posix-shm in place: {:?}", *tick);
    Ok(())
}
