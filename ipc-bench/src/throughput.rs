//! One-way throughput: send as fast as the peer takes messages, then close and wait for the
//! peer's count, so that the time covers every message being received, not just sent.

use std::time::{Duration, Instant};

use ipc::{Sender, Wait};

use crate::cpu;
use crate::protocol::{BATCH, MEASURED, WARM_UP, matches_count, recv_message};
use crate::transport::Link;

/// Messages sent one by one between two looks at the clock.
const ROUND: u64 = 16;
/// Fewest messages measured whatever the budget.
const MIN_MESSAGES: u64 = 1000;

/// Messages received in the measured interval.
pub struct Rate {
    pub messages: u64,
    pub bytes: u64,
    pub elapsed: Duration,
    /// CPU time of this process (the sender) over the measured interval.
    pub cpu: Duration,
}

impl Rate {
    pub fn msgs_per_s(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }

    pub fn bytes_per_s(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64()
    }
}

/// Streams `size`-byte messages for `budget`, the first tenth as warm-up: one `send` each, or
/// with `batch` [`BATCH`] a `send_batch` call.
///
/// Timing starts after the warm-up, with the pipe already full of warm-up messages that are
/// then drained within the measured time but not counted: at most a pipe's capacity, a
/// negligible and equal handicap for ours and raw.
pub fn run(link: &mut Link, size: usize, budget: Duration, batch: bool) -> ipc::Result<Rate> {
    let mut msg = vec![WARM_UP; size];
    let start = Instant::now();
    let measure_from = start + budget / 10;
    let end = start + budget;
    let tx = link.tx()?;
    let mut sent = 0u64;
    while Instant::now() < measure_from {
        sent += send_round(tx, &msg, batch)?;
    }
    let warm_up = sent;
    // From here on the peer counts too.
    msg[0] = MEASURED;
    let cpu_from = cpu::process_time();
    let measured_from = Instant::now();
    loop {
        sent += send_round(tx, &msg, batch)?;
        if sent - warm_up >= MIN_MESSAGES && Instant::now() >= end {
            break;
        }
    }
    link.close_sender()?;
    let rx = link.rx();
    let mut ack = vec![0; rx.max_message_size().max(size)];
    let len = recv_message(rx, &mut ack)?;
    let elapsed = measured_from.elapsed();
    let cpu = cpu::process_time().saturating_sub(cpu_from);
    if !matches_count(sent, &ack[..len]) {
        return Err(ipc::Error::corrupted(format!(
            "sent {sent} messages, the peer counted otherwise"
        )));
    }
    let messages = sent - warm_up;
    Ok(Rate {
        messages,
        bytes: messages * size as u64,
        elapsed,
        cpu,
    })
}

/// Sends a round of `msg` between two looks at the clock: [`ROUND`] sends, or one
/// `send_batch` of [`BATCH`] (again with what it left, until all are taken).
fn send_round(tx: &mut dyn Sender, msg: &[u8], batch: bool) -> ipc::Result<u64> {
    if !batch {
        for _ in 0..ROUND {
            tx.send(msg)?;
        }
        return Ok(ROUND);
    }
    let msgs = [msg; BATCH];
    let mut rest = &msgs[..];
    while !rest.is_empty() {
        let sent = tx.send_batch(rest, Wait::Forever)?;
        rest = &rest[sent..];
    }
    Ok(BATCH as u64)
}
