//! Streams messages through a ring between two threads of one process and prints the rate:
//! a quick look at the ring's own cost, without process start-up or a kernel object.
//!
//! `cargo run --release -p ipc-sync --example ring_threads -- [SIZE] [COUNT] [busy|spin|park] [CAPACITY]`

use std::sync::Arc;
use std::time::Instant;

use ipc_core::{Receiver, Sender};
use ipc_sync::ring::{self, EndpointOptions, RingConfig, RingReceiver, RingSender};
use ipc_sync::{HeapSegment, Shared};

fn main() -> ipc_core::Result<()> {
    let mut args = std::env::args().skip(1);
    let size: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(64);
    let count: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(5_000_000);
    let wait = args.next().unwrap_or_else(|| "busy".into()).parse()?;
    let capacity: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or((1 << 20).max(16 * size as u64));
    let config = RingConfig::new(capacity).max_message(size);
    let shared = Shared::new(Arc::new(HeapSegment::new(config.segment_size(), "threads")));
    ring::init(&shared, &config)?;
    let options = EndpointOptions::default().wait(wait);
    let mut rx = RingReceiver::attach(shared.clone(), &options)?;
    let mut tx = RingSender::attach(shared, &options)?;
    let start = Instant::now();
    let producer = std::thread::spawn(move || -> ipc_core::Result<()> {
        let msg = vec![0x5a; size];
        for _ in 0..count {
            tx.send(&msg)?;
        }
        Ok(())
    });
    let mut buf = vec![0; size];
    for _ in 0..count {
        rx.recv(&mut buf)?;
    }
    let elapsed = start.elapsed();
    producer.join().expect("producer thread")?;
    let rate = count as f64 / elapsed.as_secs_f64();
    println!(
        "{count} × {size} B ({wait}): {:.2} M msg/s, {:.0} MB/s",
        rate / 1e6,
        rate * size as f64 / 1e6
    );
    Ok(())
}
