//! Streams messages through a ring between threads of one process and prints the rate: a quick
//! look at the ring's own cost, without process start-up or a kernel object.
//!
//! `cargo run --release -p ipc-sync --example ring_threads -- [SIZE] [COUNT] [busy|spin|park]
//! [CAPACITY] [PRODUCERS]`
//!
//! `PRODUCERS` is `single` (the default: a single-producer ring) or a number of producer
//! threads sharing a `producers=multi` ring, which share the `COUNT` messages between them
//! (`1` measures the multi-producer claim without contention).

use std::sync::Arc;
use std::time::Instant;

use ipc_core::{Producers, Receiver, Sender};
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
    let (mode, threads) = match args.next().as_deref() {
        None | Some("single") => (Producers::Single, 1),
        Some(n) => (Producers::Multi, n.parse::<u64>().unwrap_or(1).max(1)),
    };
    let config = RingConfig::new(capacity)
        .max_message_size(size)
        .producers(mode);
    let shared = Shared::new(Arc::new(HeapSegment::new(config.segment_size(), "threads")));
    ring::init(&shared, &config)?;
    let options = EndpointOptions::default().wait(wait);
    let mut rx = RingReceiver::attach(shared.clone(), &options)?;
    let per_thread = count / threads;
    let senders = (0..threads)
        .map(|_| RingSender::attach(shared.clone(), &options))
        .collect::<ipc_core::Result<Vec<_>>>()?;
    let start = Instant::now();
    let producers: Vec<_> = senders
        .into_iter()
        .map(|mut tx| {
            std::thread::spawn(move || -> ipc_core::Result<()> {
                let msg = vec![0x5a; size];
                for _ in 0..per_thread {
                    tx.send(&msg)?;
                }
                Ok(())
            })
        })
        .collect();
    let total = per_thread * threads;
    let mut buf = vec![0; size];
    for _ in 0..total {
        rx.recv(&mut buf)?;
    }
    let elapsed = start.elapsed();
    for producer in producers {
        producer.join().expect("producer thread")?;
    }
    let rate = total as f64 / elapsed.as_secs_f64();
    println!(
        "{total} × {size} B ({wait}, producers {mode}, {threads} thread(s)): {:.2} M msg/s, \
         {:.0} MB/s",
        rate / 1e6,
        rate * size as f64 / 1e6
    );
    Ok(())
}
