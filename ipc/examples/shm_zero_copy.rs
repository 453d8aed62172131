//! Zero-copy ping-pong over `posix-shm` between two processes: each hop copies its payload
//! once, from its own buffer into a loan inside the segment, and the other side takes the
//! record in place (checking its length, not reading its bytes). This is how iceoryx2's
//! figures for this machine were taken ("payload copied in"), so it is the like-for-like
//! comparison; `ipc bench` goes through the copying `Sender` / `Receiver` traits instead, where
//! the receiver also copies every byte out. Pass `--read` to have each side also sum the bytes
//! it receives.
//!
//! `cargo run --release -p ipc --example shm_zero_copy -- [SIZE] [ROUND_TRIPS] [busy|spin|park]`
//!
//! The program starts a copy of itself as the echoing peer and prints round-trip percentiles.

use std::process::{Command, Stdio};
use std::time::Instant;

use ipc::posix::ring::{ShmReceiver, ShmSender};

fn spec(name: &str, size: usize, wait: &str, create: &str) -> ipc::Result<ipc::TransportSpec> {
    let capacity = (1usize << 20).max(16 * size);
    format!("posix-shm:{name}?capacity={capacity}&message_size={size}&wait={wait}&create={create}")
        .parse()
}

fn main() -> ipc::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--echo") {
        let read = args.iter().any(|a| a == "--read");
        return echo(
            &args[2],
            &args[3],
            args[4].parse().unwrap_or(64),
            &args[5],
            read,
        );
    }
    let size: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(64);
    let rounds: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let wait = args.get(3).cloned().unwrap_or_else(|| "busy".into());
    let read = args.iter().any(|a| a == "--read");
    let ping = format!("/ipc-zc-ping-{}", std::process::id());
    let pong = format!("/ipc-zc-pong-{}", std::process::id());
    // Receivers create (and on drop remove) their segments; the peer's sender waits for ours.
    let mut rx = ShmReceiver::open(&spec(&pong, size, &wait, "always")?)?;
    let mut peer =
        Command::new(std::env::current_exe().map_err(|e| ipc::Error::io("current_exe", e))?)
            .args(["--echo", &ping, &pong, &size.to_string(), &wait])
            .args(read.then_some("--read"))
            .stdin(Stdio::null())
            .spawn()
            .map_err(|e| ipc::Error::io("starting the echo peer", e))?;
    let mut tx = ShmSender::open(&spec(&ping, size, &wait, "never")?)?;
    let payload = vec![0x5a_u8; size];
    let mut samples = Vec::with_capacity(rounds);
    for round in 0..rounds + rounds / 10 {
        let start = Instant::now();
        let mut loan = tx.loan(size)?;
        loan.copy_from_slice(&payload);
        loan.commit();
        let record = rx.recv_in_place()?;
        assert_eq!(record.len(), size);
        if read {
            std::hint::black_box(record.iter().map(|&b| b as u64).sum::<u64>());
        }
        drop(record);
        if round >= rounds / 10 {
            samples.push(start.elapsed().as_nanos() as u64);
        }
    }
    drop(tx);
    let _ = peer.wait();
    samples.sort_unstable();
    let pct = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)];
    println!(
        "zero-copy ping-pong {size} B ({wait}), {rounds} round trips: p50 {} ns, p99 {} ns",
        pct(50),
        pct(99)
    );
    Ok(())
}

/// The peer: takes each record in place and answers with its own payload, copied into a loan.
fn echo(ping: &str, pong: &str, size: usize, wait: &str, read: bool) -> ipc::Result<()> {
    let mut rx = ShmReceiver::open(&spec(ping, size, wait, "always")?)?;
    let mut tx = ShmSender::open(&spec(pong, size, wait, "never")?)?;
    let payload = vec![0xa5_u8; size];
    loop {
        let record = match rx.recv_in_place() {
            Ok(record) => record,
            Err(ipc::Error::Disconnected) => return Ok(()),
            Err(e) => return Err(e),
        };
        if read {
            std::hint::black_box(record.iter().map(|&b| b as u64).sum::<u64>());
        }
        let len = record.len();
        drop(record);
        let mut loan = tx.loan(len)?;
        loan.copy_from_slice(&payload[..len]);
        loan.commit();
    }
}
