//! Round-trip latency: send one message, wait for the peer to send it back, repeat.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::cpu;
use crate::protocol::{MEASURED, WARM_UP, recv_message};
use crate::transport::Link;

/// Fewest round trips measured whatever the budget, so that p99 means something (p99.9 needs
/// a thousand: with fewer it is about the slowest one).
const MIN_SAMPLES: u64 = 200;
/// Significant decimal digits the histogram keeps of each round trip.
const SIGNIFICANT_DIGITS: u8 = 3;

/// Percentiles of individual round trips, and what they cost this side.
pub struct Latency {
    pub p50: Duration,
    pub p99: Duration,
    pub p999: Duration,
    /// Round trips measured.
    pub samples: u64,
    /// CPU time of this process over the measured round trips.
    pub cpu: Duration,
}

/// Ping-pongs `size`-byte messages for `budget`, the first tenth as warm-up.
pub fn run(link: &mut Link, size: usize, budget: Duration) -> ipc::Result<Latency> {
    let (tx, rx) = link.ends()?;
    let mut msg = vec![WARM_UP; size];
    let mut buf = vec![0; rx.max_message_size().max(size)];
    let mut histogram = new_histogram();
    let start = Instant::now();
    let measure_from = start + budget / 10;
    let end = start + budget;
    let mut cpu_from = None;
    loop {
        let sent_at = Instant::now();
        if sent_at >= end && histogram.len() >= MIN_SAMPLES {
            break;
        }
        let measured = sent_at >= measure_from;
        if measured && cpu_from.is_none() {
            // From here on the peer counts too.
            msg[0] = MEASURED;
            cpu_from = Some(cpu::process_time());
        }
        tx.send(&msg)?;
        let len = recv_message(rx, &mut buf)?;
        let rtt = sent_at.elapsed();
        if len != size {
            return Err(ipc::Error::corrupted(format!(
                "sent {size} bytes, {len} came back"
            )));
        }
        if measured {
            histogram.saturating_record(u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX));
        }
    }
    let cpu = cpu_from.map_or(Duration::ZERO, |t| cpu::process_time().saturating_sub(t));
    Ok(Latency {
        p50: quantile(&histogram, 0.50),
        p99: quantile(&histogram, 0.99),
        p999: quantile(&histogram, 0.999),
        samples: histogram.len(),
        cpu,
    })
}

/// Longest round trip the histogram tells apart; longer ones count as this long.
const LONGEST_NS: u64 = 60_000_000_000;

/// An empty histogram of nanoseconds, from 1 ns to [`LONGEST_NS`].
fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LONGEST_NS, SIGNIFICANT_DIGITS)
        .expect("valid bounds and significant digits")
}

/// The round trip at `q` (0..=1) of those recorded.
fn quantile(histogram: &Histogram<u64>, q: f64) -> Duration {
    Duration::from_nanos(histogram.value_at_quantile(q))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_within_three_significant_digits() {
        let mut h = new_histogram();
        for ns in 1..=100_000u64 {
            h.saturating_record(ns * 10);
        }
        let close = |d: Duration, ns: u64| {
            let got = d.as_nanos() as f64;
            assert!((got - ns as f64).abs() <= ns as f64 * 1e-3, "{got} vs {ns}");
        };
        close(quantile(&h, 0.50), 500_000);
        close(quantile(&h, 0.99), 990_000);
        close(quantile(&h, 0.999), 999_000);
        assert_eq!(h.len(), 100_000);
        h.saturating_record(u64::MAX);
        assert_eq!(h.max(), h.highest_equivalent(LONGEST_NS));
    }
}
