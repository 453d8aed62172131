//! `ipc bench --repeat N`: the rounds of one row (or reference) folded into the median of each
//! figure, and the spread of a figure over the rounds.
//!
//! Each round measures every cell once, so a change of the machine's state (the scheduler
//! moving the processes to other cores) hits every row of a round alike; the median is of each
//! figure on its own, and a ratio of the medians is shown beside the per-round ratios' range.

use crate::memcpy::Memcpy;
use crate::report::{Baseline, Floors, Measurement, Row, Sides};

/// The median of `values` (the mean of the middle two for an even count); NaN for none.
pub fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.into_iter().collect();
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The median of a whole-number figure, rounded.
fn median_u64(values: impl IntoIterator<Item = u64>) -> u64 {
    median(values.into_iter().map(|v| v as f64)).round() as u64
}

/// The row of the rounds' medians (`rounds` are one row's, one per round, none empty).
pub fn median_row(rounds: &[Row]) -> Row {
    let first = &rounds[0];
    let raws: Vec<&Measurement> = rounds.iter().filter_map(|r| r.raw.as_ref()).collect();
    let baselines: Vec<Baseline> = rounds.iter().filter_map(|r| r.blocking).collect();
    Row {
        transport: first.transport,
        size: first.size,
        api: first.api,
        ours: median_measurement(&rounds.iter().map(|r| &r.ours).collect::<Vec<_>>()),
        raw: (raws.len() == rounds.len()).then(|| median_measurement(&raws)),
        blocking: (baselines.len() == rounds.len()).then(|| Baseline {
            rtt_p50_ns: median_u64(baselines.iter().map(|b| b.rtt_p50_ns)),
            msgs_per_s: median(baselines.iter().map(|b| b.msgs_per_s)),
        }),
    }
}

fn median_measurement(ms: &[&Measurement]) -> Measurement {
    let whole = |get: fn(&Measurement) -> u64| median_u64(ms.iter().map(|m| get(m)));
    let real = |get: fn(&Measurement) -> f64| median(ms.iter().map(|m| get(m)));
    let sides = |get: fn(&Measurement) -> Sides| Sides {
        ours: median(ms.iter().map(|m| get(m).ours)),
        peer: median(ms.iter().map(|m| get(m).peer)),
    };
    Measurement {
        rtt_p50_ns: whole(|m| m.rtt_p50_ns),
        rtt_p99_ns: whole(|m| m.rtt_p99_ns),
        rtt_p999_ns: whole(|m| m.rtt_p999_ns),
        rtt_samples: whole(|m| m.rtt_samples),
        msgs_per_s: real(|m| m.msgs_per_s),
        bytes_per_s: real(|m| m.bytes_per_s),
        rtt_cpu_ns: sides(|m| m.rtt_cpu_ns),
        msg_cpu_ns: sides(|m| m.msg_cpu_ns),
    }
}

/// The floors of the rounds' medians (each floor of the rounds that measured it).
pub fn median_floors(rounds: &[Floors]) -> Floors {
    let of = |get: fn(&Floors) -> Option<u64>| {
        let values: Vec<u64> = rounds.iter().filter_map(get).collect();
        (!values.is_empty()).then(|| median_u64(values))
    };
    Floors {
        spin_ns: of(|f| f.spin_ns),
        futex_ns: of(|f| f.futex_ns),
    }
}

/// The memcpy reference of the rounds' medians (`rounds` measured the same sizes, none empty).
pub fn median_memcpy(rounds: &[Memcpy]) -> Memcpy {
    Memcpy {
        bytes_per_s: median(rounds.iter().map(|m| m.bytes_per_s)),
        ns_per_copy: rounds[0]
            .ns_per_copy
            .iter()
            .enumerate()
            .map(|(i, &(size, _))| (size, median(rounds.iter().map(|m| m.ns_per_copy[i].1))))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Api;

    #[test]
    fn medians() {
        assert_eq!(median([3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median([4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median([]).is_nan());
    }

    fn m(p50: u64, rate: f64) -> Measurement {
        let sides = Sides {
            ours: 1.0,
            peer: 2.0,
        };
        Measurement {
            rtt_p50_ns: p50,
            rtt_p99_ns: 2 * p50,
            rtt_p999_ns: 3 * p50,
            rtt_samples: 100,
            msgs_per_s: rate,
            bytes_per_s: 64.0 * rate,
            rtt_cpu_ns: sides,
            msg_cpu_ns: sides,
        }
    }

    #[test]
    fn a_median_row_takes_each_figure_on_its_own() {
        let row = |p50, rate, raw| Row {
            transport: "pipe",
            size: 64,
            api: Api::Blocking,
            ours: m(p50, rate),
            raw,
            blocking: None,
        };
        let rounds = [
            row(10, 300.0, Some(m(5, 1.0))),
            row(30, 100.0, Some(m(7, 3.0))),
            row(20, 200.0, Some(m(6, 2.0))),
        ];
        let median = median_row(&rounds);
        assert_eq!(median.ours.rtt_p50_ns, 20);
        assert_eq!(median.ours.rtt_p999_ns, 60);
        assert_eq!(median.ours.msgs_per_s, 200.0);
        assert_eq!(median.raw.as_ref().map(|r| r.rtt_p50_ns), Some(6));
        // A round without a raw baseline: the median has none.
        let rounds = [row(10, 1.0, None), row(10, 1.0, Some(m(5, 1.0)))];
        assert!(median_row(&rounds).raw.is_none());
        let floors = median_floors(&[
            Floors {
                spin_ns: Some(300),
                futex_ns: None,
            },
            Floors {
                spin_ns: Some(100),
                futex_ns: None,
            },
            Floors {
                spin_ns: Some(200),
                futex_ns: None,
            },
        ]);
        assert_eq!((floors.spin_ns, floors.futex_ns), (Some(200), None));
    }
}
