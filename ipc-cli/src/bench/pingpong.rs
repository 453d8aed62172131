//! Round-trip latency: send one message, wait for the peer to send it back, repeat.

use std::time::{Duration, Instant};

use super::transport::{Link, recv_message};

/// Fewest round trips measured whatever the budget, so that p99 means something.
const MIN_SAMPLES: usize = 200;

/// Percentiles of individual round trips.
pub struct Latency {
    pub p50: Duration,
    pub p99: Duration,
}

/// Ping-pongs `size`-byte messages for `budget`, the first tenth as warm-up.
pub fn run(link: &mut Link, size: usize, budget: Duration) -> ipc::Result<Latency> {
    let (tx, rx) = link.ends()?;
    let msg = vec![0x5a; size];
    let mut buf = vec![0; rx.max_message_size().max(size)];
    let start = Instant::now();
    let measure_from = start + budget / 10;
    let end = start + budget;
    let mut samples: Vec<u64> = Vec::with_capacity(1 << 16);
    loop {
        let sent_at = Instant::now();
        if sent_at >= end && samples.len() >= MIN_SAMPLES {
            break;
        }
        tx.send(&msg)?;
        let len = recv_message(rx, &mut buf)?;
        let rtt = sent_at.elapsed();
        if len != size {
            return Err(ipc::Error::corrupted(format!(
                "sent {size} bytes, {len} came back"
            )));
        }
        if sent_at >= measure_from {
            samples.push(u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX));
        }
    }
    samples.sort_unstable();
    Ok(Latency {
        p50: Duration::from_nanos(percentile(&samples, 50)),
        p99: Duration::from_nanos(percentile(&samples, 99)),
    })
}

/// Nearest-rank percentile of sorted, non-empty `samples`.
fn percentile(samples: &[u64], pct: usize) -> u64 {
    let rank = (samples.len() * pct).div_ceil(100).max(1);
    samples[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank() {
        let samples: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&samples, 50), 50);
        assert_eq!(percentile(&samples, 99), 99);
        assert_eq!(percentile(&[7], 99), 7);
        assert_eq!(percentile(&[1, 2, 3], 50), 2);
    }
}
