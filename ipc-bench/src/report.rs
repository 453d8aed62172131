//! The results: a table for people, or one JSON object per line for programs.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::Duration;

use crate::memcpy::{self, Memcpy};
use crate::pingpong::Latency;
use crate::protocol::{Api, BATCH, PeerReport};
use crate::text::{escape, json_f64, json_line, note};
use crate::throughput::Rate;

/// The figures of one variant (ours or raw) of one transport × size.
#[derive(Clone)]
pub struct Measurement {
    pub rtt_p50_ns: u64,
    pub rtt_p99_ns: u64,
    pub rtt_p999_ns: u64,
    /// Round trips the percentiles are of.
    pub rtt_samples: u64,
    pub msgs_per_s: f64,
    pub bytes_per_s: f64,
    /// CPU time per round trip of this process (which starts each) and of the peer (which
    /// echoes it), in nanoseconds.
    pub rtt_cpu_ns: Sides,
    /// CPU time per one-way message of this process (the sender) and of the peer (the
    /// receiver), in nanoseconds.
    pub msg_cpu_ns: Sides,
}

/// One figure for each of the two processes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sides {
    /// This process: the one that starts each round trip, the sender of a stream.
    pub ours: f64,
    /// The peer: the one that echoes, the receiver of a stream.
    pub peer: f64,
}

impl Measurement {
    /// From a ping-pong run with what its echoing peer reported, and a throughput run with what
    /// its receiving peer reported.
    pub fn new(
        latency: &Latency,
        echo: &PeerReport,
        rate: &Rate,
        sink: &PeerReport,
    ) -> Measurement {
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let per = |d: Duration, n: u64| d.as_nanos() as f64 / n as f64;
        Measurement {
            rtt_p50_ns: ns(latency.p50),
            rtt_p99_ns: ns(latency.p99),
            rtt_p999_ns: ns(latency.p999),
            rtt_samples: latency.samples,
            msgs_per_s: rate.msgs_per_s(),
            bytes_per_s: rate.bytes_per_s(),
            rtt_cpu_ns: Sides {
                ours: per(latency.cpu, latency.samples),
                peer: echo.cpu_ns_per_message(),
            },
            msg_cpu_ns: Sides {
                ours: per(rate.cpu, rate.messages),
                peer: sink.cpu_ns_per_message(),
            },
        }
    }

    /// From a throughput run alone (a `+batch` row): no round trips, shown as `-` / `null`.
    pub fn one_way(rate: &Rate, sink: &PeerReport) -> Measurement {
        let nan = Sides {
            ours: f64::NAN,
            peer: f64::NAN,
        };
        Measurement {
            rtt_p50_ns: 0,
            rtt_p99_ns: 0,
            rtt_p999_ns: 0,
            rtt_samples: 0,
            msgs_per_s: rate.msgs_per_s(),
            bytes_per_s: rate.bytes_per_s(),
            rtt_cpu_ns: nan,
            msg_cpu_ns: Sides {
                ours: rate.cpu.as_nanos() as f64 / rate.messages as f64,
                peer: sink.cpu_ns_per_message(),
            },
        }
    }

    /// Whether round trips were measured (not on a `+batch` row).
    fn has_rtt(&self) -> bool {
        self.rtt_samples > 0
    }
}

/// One line of the report.
pub struct Row {
    pub transport: &'static str,
    pub size: usize,
    /// How both processes drove ours: its blocking calls, or a readiness path (`ipc bench
    /// --async`).
    pub api: Api,
    pub ours: Measurement,
    /// `None` for a transport without a raw baseline. A readiness path's row repeats the raw
    /// baseline of its blocking row: the same transport objects, measured once.
    pub raw: Option<Measurement>,
    /// On a readiness path's row, the blocking row of the same transport × size, which its
    /// `vs blocking` ratios are against; `None` on a blocking row.
    pub blocking: Option<Baseline>,
}

/// What a readiness path's row is compared with: its blocking row's figures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Baseline {
    pub rtt_p50_ns: u64,
    pub msgs_per_s: f64,
}

impl Baseline {
    pub fn of(blocking: &Measurement) -> Baseline {
        Baseline {
            rtt_p50_ns: blocking.rtt_p50_ns,
            msgs_per_s: blocking.msgs_per_s,
        }
    }
}

impl Row {
    /// The row's name in the table and the plot: the transport, followed by `+async` or
    /// `+wait-set` on a readiness path's row.
    pub fn label(&self) -> String {
        label(self.transport, self.api)
    }

    /// How much slower than the blocking row (1.00 = as fast): the round trip's p50 ratio and
    /// the inverse throughput ratio, as the table's other ratios (higher = slower).
    fn vs_blocking(&self) -> Option<(f64, f64)> {
        self.blocking.map(|b| {
            (
                self.ours.rtt_p50_ns as f64 / b.rtt_p50_ns as f64,
                b.msgs_per_s / self.ours.msgs_per_s,
            )
        })
    }
}

/// The label of `transport`'s row for `api` (see [`Row::label`]).
pub fn label(transport: &str, api: Api) -> String {
    match api {
        Api::Blocking => transport.to_owned(),
        Api::Async | Api::WaitSet | Api::Batch => format!("{transport}+{api}"),
    }
}

/// The round trips a shared-memory transport cannot beat, when measured: the raw busy-polling
/// mailbox's (`spin`) and the raw futex mailbox's (`futex`), both at 64 B.
#[derive(Default)]
pub struct Floors {
    pub spin_ns: Option<u64>,
    pub futex_ns: Option<u64>,
}

pub enum Format {
    Table,
    Json,
}

/// Writes rows as they are measured, so that a long run shows progress.
pub struct Report {
    format: Format,
    out: io::Stdout,
    /// Standard output's reader has left (`EPIPE`).
    closed: bool,
    /// The table's columns: the first one's width, and whether the `vs blocking` column is
    /// there.
    layout: Layout,
}

/// How the table is laid out. The default is the table without readiness rows, as it always
/// was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Width of the first column: the longest label, or more.
    pub label_width: usize,
    /// Whether there are readiness rows, and so the `vs blocking` column.
    pub vs_blocking: bool,
    /// Whether rows have a line of ranges under them (`--repeat`), and so wider figures.
    pub ranges: bool,
}

impl Default for Layout {
    fn default() -> Layout {
        Layout {
            label_width: WIDTHS[0],
            vs_blocking: false,
            ranges: false,
        }
    }
}

impl Layout {
    /// A table for rows labelled as `labels`, with the `vs blocking` column if `vs_blocking`.
    pub fn new<'a>(labels: impl Iterator<Item = &'a str>, vs_blocking: bool) -> Layout {
        Layout {
            label_width: labels
                .map(|l| l.chars().count())
                .fold(WIDTHS[0], usize::max),
            vs_blocking,
            ranges: false,
        }
    }

    /// The same, with room for a line of ranges (`min–max`) under each row if `ranges`.
    pub fn with_ranges(self, ranges: bool) -> Layout {
        Layout { ranges, ..self }
    }
}

/// Width of a figure's column with `--repeat`: a range such as `41.3–49.1µs` fits.
const RANGE_WIDTH: usize = 12;

const COLUMNS: usize = 16;
const HEADER: [&str; COLUMNS] = [
    "transport",
    "size",
    "rtt p50",
    "p99",
    "p99.9",
    "raw p50",
    "p99",
    "p99.9",
    "ratio",
    "msg/s",
    "MB/s",
    "raw msg/s",
    "MB/s",
    "ratio",
    "cpu/msg snd+rcv",
    "raw cpu/msg",
];
const WIDTHS: [usize; COLUMNS] = [15, 7, 8, 8, 8, 8, 8, 8, 6, 8, 8, 9, 8, 6, 15, 15];
/// The column of readiness rows (`ipc bench --async`), last: rtt and throughput ratios.
const VS_BLOCKING: &str = "vs blocking";
const VS_BLOCKING_WIDTH: usize = 11;

impl Report {
    pub fn new(format: Format, layout: Layout) -> Report {
        Report {
            format,
            out: io::stdout(),
            closed: false,
            layout,
        }
    }

    /// Whether standard output's reader has left (`ipc bench | head -3`): nothing written from
    /// now on is read.
    pub fn closed(&self) -> bool {
        self.closed
    }

    pub fn start(&mut self) {
        if let Format::Table = self.format {
            let mut header = HEADER.map(String::from).to_vec();
            if self.layout.vs_blocking {
                header.push(VS_BLOCKING.into());
            }
            self.emit(&table_line(&header, self.layout));
        }
    }

    pub fn row(&mut self, row: &Row) {
        self.row_of_rounds(row, &[]);
    }

    /// The row of `--repeat`'s medians, `median`, of the per-round rows `rounds`: with a line
    /// of each figure's range under it, or in JSON with each round's figures.
    pub fn row_of_rounds(&mut self, median: &Row, rounds: &[Row]) {
        let line = match self.format {
            Format::Table if rounds.is_empty() => table_row(median, self.layout),
            Format::Table => format!(
                "{}\n{}",
                table_row(median, self.layout),
                range_line(rounds, self.layout)
            ),
            Format::Json => json_row(median, rounds),
        };
        self.emit(&line);
    }

    /// Says that `transport` cannot carry `size`-byte messages here, and why: a row of the
    /// table, or a note on stderr beside JSON (every JSON line is a measurement).
    pub fn skipped(&mut self, transport: &str, size: usize, reason: &str) {
        match self.format {
            Format::Table => self.emit(&skipped_row(transport, size, reason, self.layout)),
            Format::Json => note(&format!(
                "ipc bench: {transport} {size} B skipped: {reason}"
            )),
        }
    }

    /// The memcpy reference: a line under the table, or a JSON object of its own
    /// (`"reference":"memcpy"`).
    pub fn memcpy(&mut self, m: &Memcpy) {
        let line = match self.format {
            Format::Table => memcpy_line(m),
            Format::Json => memcpy_json(m),
        };
        self.emit(&line);
    }

    /// The floors, if any was measured: a line under the table, or a JSON object of its own
    /// (`"reference":"floors"`). With `--repeat`, `floors` are the medians of `rounds`, each
    /// round's (none otherwise).
    pub fn floors(&mut self, floors: &Floors, rounds: &[Floors]) {
        if floors.spin_ns.is_none() && floors.futex_ns.is_none() {
            return;
        }
        let line = match self.format {
            Format::Table => floors_line(floors, rounds),
            Format::Json => floors_json(floors, rounds),
        };
        self.emit(&line);
    }

    /// Ends the report with the total wall time: in the table, or on stderr beside JSON so that
    /// stdout stays JSON lines.
    pub fn finish(&mut self, wall: Duration) {
        let wall = format!("total wall time: {:.1} s", wall.as_secs_f64());
        match self.format {
            Format::Table => {
                self.emit(
                    "rtt: round trip (ping-pong), from an HDR histogram. First ratio = rtt p50 / \
                     raw p50; second = raw msg/s / msg/s (both: 1.00x = as fast as the raw \
                     system calls, higher = slower).\n\
                     msg/s, MB/s: one way (MB = 10^6 bytes). cpu/msg: CPU time per one-way \
                     message of the sender + the receiver process (busy-polling shows here).",
                );
                if self.layout.vs_blocking {
                    self.emit(
                        "+async: both processes through ipc::AsyncSender/AsyncReceiver on a \
                         current-thread tokio runtime; +wait-set: each end waited for in an \
                         ipc::WaitSet (poll). vs blocking = rtt p50 / the blocking row's, then \
                         the blocking row's msg/s / msg/s (1.00x = as fast, higher = slower).",
                    );
                }
                self.emit(&wall);
            }
            Format::Json => note(&format!("ipc bench: {wall}")),
        }
    }

    /// Writes `text` line by line, escaped (a skipped cell's reason quotes the system). A
    /// closed stdout is remembered for [`Report::closed`]; other write errors are ignored: the
    /// measurements go on (into `--plot`, if asked) and the next write fails the same way.
    fn emit(&mut self, text: &str) {
        if self.closed {
            return;
        }
        let mut out = self.out.lock();
        let written = text
            .lines()
            .try_for_each(|line| writeln!(out, "{}", escape(line)))
            .and_then(|()| out.flush());
        if written.is_err_and(|e| e.kind() == io::ErrorKind::BrokenPipe) {
            self.closed = true;
        }
    }
}

/// The widths of `layout`'s columns.
fn widths(layout: Layout) -> impl Iterator<Item = usize> {
    let last = layout.vs_blocking.then_some(VS_BLOCKING_WIDTH);
    let figure = if layout.ranges { RANGE_WIDTH } else { 0 };
    std::iter::once(layout.label_width)
        .chain(WIDTHS[1..].iter().enumerate().map(move |(i, &w)| {
            if FIGURES.contains(&(i + 1)) {
                w.max(figure)
            } else {
                w
            }
        }))
        .chain(last)
}

/// The columns of figures (round trips, throughputs and their ratios), which have a range
/// with `--repeat`.
const FIGURES: std::ops::RangeInclusive<usize> = 2..=13;

/// Under a row of medians, each figure's smallest and largest value over `rounds` (the row's,
/// one per round): `min–max`. A ratio's is of the ratios of each round (ours and raw of the
/// same round), not of the medians.
fn range_line(rounds: &[Row], layout: Layout) -> String {
    type Figure = (fn(&Row) -> Option<f64>, fn(f64) -> String);
    fn ns(ns: f64) -> String {
        nanos(ns.round() as u64)
    }
    fn by(x: f64) -> String {
        ratio(x, 1.0)
    }
    // A `+batch` row has no round trips (see `table_row`).
    fn rtt(row: &Row) -> Option<&Measurement> {
        row.ours.has_rtt().then_some(&row.ours)
    }
    fn raw_rtt(row: &Row) -> Option<&Measurement> {
        row.raw.as_ref().filter(|_| row.ours.has_rtt())
    }
    let figures: [Figure; 12] = [
        (|r| rtt(r).map(|m| m.rtt_p50_ns as f64), ns),
        (|r| rtt(r).map(|m| m.rtt_p99_ns as f64), ns),
        (|r| rtt(r).map(|m| m.rtt_p999_ns as f64), ns),
        (|r| raw_rtt(r).map(|m| m.rtt_p50_ns as f64), ns),
        (|r| raw_rtt(r).map(|m| m.rtt_p99_ns as f64), ns),
        (|r| raw_rtt(r).map(|m| m.rtt_p999_ns as f64), ns),
        (
            |r| raw_rtt(r).map(|m| r.ours.rtt_p50_ns as f64 / m.rtt_p50_ns as f64),
            by,
        ),
        (|r| Some(r.ours.msgs_per_s), count),
        (|r| Some(r.ours.bytes_per_s), megabytes),
        (|r| r.raw.as_ref().map(|m| m.msgs_per_s), count),
        (|r| r.raw.as_ref().map(|m| m.bytes_per_s), megabytes),
        (
            |r| r.raw.as_ref().map(|m| m.msgs_per_s / r.ours.msgs_per_s),
            by,
        ),
    ];
    let mut cells = vec![format!("  min–max of {}", rounds.len()), String::new()];
    cells.extend(figures.iter().map(|&(value, show)| {
        min_max(rounds.iter().filter_map(value))
            .map_or_else(|| "-".to_string(), |(lo, hi)| range(&show(lo), &show(hi)))
    }));
    table_line(&cells, layout)
}

/// The smallest and largest of `values`, if any is finite.
fn min_max(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((v.min(lo), v.max(hi))),
        })
}

/// `lo–hi`, with a unit both share written once: `41.3–49.1µs`.
fn range(lo: &str, hi: &str) -> String {
    let unit = |s: &str| {
        s.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.')
            .len()
    };
    let (lo_unit, hi_unit) = (&lo[lo.len() - unit(lo)..], &hi[hi.len() - unit(hi)..]);
    if lo_unit == hi_unit {
        format!("{}–{hi}", &lo[..lo.len() - lo_unit.len()])
    } else {
        format!("{lo}–{hi}")
    }
}

fn table_line(cells: &[String], layout: Layout) -> String {
    let mut line = String::new();
    for (i, (cell, width)) in cells.iter().zip(widths(layout)).enumerate() {
        if i == 0 {
            let _ = write!(line, "{cell:<width$}");
        } else {
            let _ = write!(line, "  {cell:>width$}");
        }
    }
    line
}

fn table_row(row: &Row, layout: Layout) -> String {
    let ours = &row.ours;
    let raw = row.raw.as_ref();
    let dash = || "-".to_string();
    // A `+batch` row has no round trips: its raw ones are on the blocking row above it.
    let rtt_raw = raw.filter(|_| ours.has_rtt());
    let rtt = |ns| if ours.has_rtt() { nanos(ns) } else { dash() };
    let mut cells = vec![
        row.label(),
        row.size.to_string(),
        rtt(ours.rtt_p50_ns),
        rtt(ours.rtt_p99_ns),
        rtt(ours.rtt_p999_ns),
        rtt_raw.map_or_else(dash, |r| nanos(r.rtt_p50_ns)),
        rtt_raw.map_or_else(dash, |r| nanos(r.rtt_p99_ns)),
        rtt_raw.map_or_else(dash, |r| nanos(r.rtt_p999_ns)),
        rtt_raw.map_or_else(dash, |r| ratio(ours.rtt_p50_ns as f64, r.rtt_p50_ns as f64)),
        count(ours.msgs_per_s),
        megabytes(ours.bytes_per_s),
        raw.map_or_else(dash, |r| count(r.msgs_per_s)),
        raw.map_or_else(dash, |r| megabytes(r.bytes_per_s)),
        raw.map_or_else(dash, |r| ratio(r.msgs_per_s, ours.msgs_per_s)),
        sides(ours.msg_cpu_ns),
        raw.map_or_else(dash, |r| sides(r.msg_cpu_ns)),
    ];
    if layout.vs_blocking {
        cells.push(row.vs_blocking().map_or_else(dash, |(rtt, rate)| {
            format!("{}/{}", ratio(rtt, 1.0), ratio(rate, 1.0))
        }));
    }
    table_line(&cells, layout)
}

fn megabytes(bytes_per_s: f64) -> String {
    format!("{:.1}", bytes_per_s / 1e6)
}

/// CPU time per message of the sender and the receiver: `0.52+0.61µs`.
fn sides(cpu: Sides) -> String {
    let unit = |ns: f64| {
        if !ns.is_finite() {
            "?".to_string()
        } else if ns < 10_000.0 {
            format!("{:.2}", ns / 1e3)
        } else {
            format!("{:.0}", ns / 1e3)
        }
    };
    format!("{}+{}µs", unit(cpu.ours), unit(cpu.peer))
}

fn memcpy_line(m: &Memcpy) -> String {
    let mut line = format!(
        "memcpy (one process): {} KiB buffer {:.1} MB/s",
        memcpy::BUFFER / 1024,
        m.bytes_per_s / 1e6
    );
    for (i, (size, ns)) in m.ns_per_copy.iter().enumerate() {
        let sep = if i == 0 { "; one copy of" } else { "," };
        let _ = write!(line, "{sep} {size} B {}", nanos(ns.round() as u64));
    }
    line
}

/// The floors, and with `rounds` (of `--repeat`) each one's range over them.
fn floors_line(floors: &Floors, rounds: &[Floors]) -> String {
    let parts: Vec<String> = [
        ("spin floor", "busy", floors.spin_ns),
        ("futex floor", "park", floors.futex_ns),
    ]
    .into_iter()
    .filter_map(|(what, wait, ns)| {
        ns.map(|ns| format!("{what} (raw posix-shm-{wait} 64 B rtt p50) {}", nanos(ns)))
    })
    .collect();
    let mut line = parts.join("; ");
    let spread = |get: fn(&Floors) -> Option<u64>| {
        min_max(rounds.iter().filter_map(get).map(|ns| ns as f64))
            .map(|(lo, hi)| range(&nanos(lo as u64), &nanos(hi as u64)))
    };
    let spreads: Vec<String> = [
        ("spin", spread(|f| f.spin_ns)),
        ("futex", spread(|f| f.futex_ns)),
    ]
    .into_iter()
    .filter_map(|(what, r)| r.map(|r| format!("{what} {r}")))
    .collect();
    if !spreads.is_empty() {
        let _ = write!(
            line,
            " (medians of {} rounds; min–max: {})",
            rounds.len(),
            spreads.join(", ")
        );
    }
    line
}

fn skipped_row(transport: &str, size: usize, reason: &str, layout: Layout) -> String {
    let (w0, w1) = (layout.label_width, WIDTHS[1]);
    format!("{transport:<w0$}  {size:>w1$}  n/a ({reason})")
}

fn nanos(ns: u64) -> String {
    let ns_f = ns as f64;
    if ns < 1_000 {
        format!("{ns}ns")
    } else if ns < 1_000_000 {
        format!("{:.1}µs", ns_f / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2}ms", ns_f / 1e6)
    } else {
        format!("{:.2}s", ns_f / 1e9)
    }
}

fn count(per_s: f64) -> String {
    if per_s >= 1e6 {
        format!("{:.2}M", per_s / 1e6)
    } else if per_s >= 1e3 {
        format!("{:.1}k", per_s / 1e3)
    } else {
        format!("{per_s:.0}")
    }
}

fn ratio(num: f64, den: f64) -> String {
    if den > 0.0 {
        format!("{:.2}x", num / den)
    } else {
        "-".to_string()
    }
}

/// One row as JSON: `kind` (`row`), `transport`, `size`, `api` (`blocking`, or `async` /
/// `wait-set` for a readiness path with `--async`), ours's figures at the top level, `raw` (or
/// `null`) and `blocking`: `null` on a blocking row, else the blocking row's `rtt_p50_ns` and
/// `msgs_per_s` with this row's `rtt_p50_ratio` and `throughput_ratio` to them (higher =
/// slower, as in the table). A `+batch` row (`api` `batch`, `ipc bench --batch`) has `null`
/// round trips, and `batch`: `per_call` and its `throughput_ratio` to the raw per-message loop
/// (raw msg/s / msg/s). Keys are only ever added, so that readers of older output keep
/// working.
fn json_row(row: &Row, rounds: &[Row]) -> String {
    #[derive(serde::Serialize)]
    struct JsonRow<'a> {
        kind: &'static str,
        transport: &'a str,
        size: usize,
        api: String,
        #[serde(flatten)]
        ours: JsonMeasurement,
        raw: Option<JsonMeasurement>,
        blocking: Option<JsonBaseline>,
        #[serde(skip_serializing_if = "Option::is_none")]
        batch: Option<JsonBatch>,
        #[serde(skip_serializing_if = "Option::is_none")]
        rounds: Option<JsonRounds>,
    }
    /// Each round's figures, in the order measured (`--repeat`).
    #[derive(serde::Serialize)]
    struct JsonRounds {
        ours: Vec<JsonMeasurement>,
        raw: Option<Vec<JsonMeasurement>>,
    }
    #[derive(serde::Serialize)]
    struct JsonBatch {
        per_call: usize,
        throughput_ratio: Option<f64>,
    }
    #[derive(serde::Serialize)]
    struct JsonBaseline {
        rtt_p50_ns: u64,
        msgs_per_s: Option<f64>,
        rtt_p50_ratio: Option<f64>,
        throughput_ratio: Option<f64>,
    }
    json_line(&JsonRow {
        kind: "row",
        transport: row.transport,
        size: row.size,
        api: row.api.to_string(),
        ours: JsonMeasurement::of(&row.ours),
        raw: row.raw.as_ref().map(JsonMeasurement::of),
        blocking: match (row.blocking, row.vs_blocking()) {
            (Some(b), Some((rtt, rate))) => Some(JsonBaseline {
                rtt_p50_ns: b.rtt_p50_ns,
                msgs_per_s: json_number(b.msgs_per_s),
                rtt_p50_ratio: json_ratio(rtt),
                throughput_ratio: json_ratio(rate),
            }),
            _ => None,
        },
        batch: (row.api == Api::Batch).then(|| JsonBatch {
            per_call: BATCH,
            throughput_ratio: row
                .raw
                .as_ref()
                .and_then(|r| json_ratio(r.msgs_per_s / row.ours.msgs_per_s)),
        }),
        rounds: (!rounds.is_empty()).then(|| JsonRounds {
            ours: rounds
                .iter()
                .map(|r| JsonMeasurement::of(&r.ours))
                .collect(),
            raw: row.raw.as_ref().map(|_| {
                rounds
                    .iter()
                    .filter_map(|r| r.raw.as_ref().map(JsonMeasurement::of))
                    .collect()
            }),
        }),
    })
}

/// A ratio with the table's precision.
fn json_ratio(x: f64) -> Option<f64> {
    json_f64(x, 3)
}

/// The figures of one variant, with the JSON names of the two processes: `initiator` / `echo`
/// for a round trip, `sender` / `receiver` for a stream.
#[derive(serde::Serialize)]
struct JsonMeasurement {
    rtt_p50_ns: Option<u64>,
    rtt_p99_ns: Option<u64>,
    rtt_p999_ns: Option<u64>,
    rtt_samples: u64,
    msgs_per_s: Option<f64>,
    bytes_per_s: Option<f64>,
    rtt_cpu_ns: RttCpu,
    msg_cpu_ns: MsgCpu,
}

#[derive(serde::Serialize)]
struct RttCpu {
    initiator: Option<f64>,
    echo: Option<f64>,
}

#[derive(serde::Serialize)]
struct MsgCpu {
    sender: Option<f64>,
    receiver: Option<f64>,
}

impl JsonMeasurement {
    fn of(m: &Measurement) -> JsonMeasurement {
        let rtt = |ns| m.has_rtt().then_some(ns);
        JsonMeasurement {
            rtt_p50_ns: rtt(m.rtt_p50_ns),
            rtt_p99_ns: rtt(m.rtt_p99_ns),
            rtt_p999_ns: rtt(m.rtt_p999_ns),
            rtt_samples: m.rtt_samples,
            msgs_per_s: json_number(m.msgs_per_s),
            bytes_per_s: json_number(m.bytes_per_s),
            rtt_cpu_ns: RttCpu {
                initiator: json_number(m.rtt_cpu_ns.ours),
                echo: json_number(m.rtt_cpu_ns.peer),
            },
            msg_cpu_ns: MsgCpu {
                sender: json_number(m.msg_cpu_ns.ours),
                receiver: json_number(m.msg_cpu_ns.peer),
            },
        }
    }
}

/// The memcpy reference: `{"kind":"reference","reference":"memcpy",...}`.
fn memcpy_json(m: &Memcpy) -> String {
    #[derive(serde::Serialize)]
    struct Copy {
        size: usize,
        ns: Option<f64>,
    }
    #[derive(serde::Serialize)]
    struct Reference {
        kind: &'static str,
        reference: &'static str,
        buffer_bytes: usize,
        bytes_per_s: Option<f64>,
        copies: Vec<Copy>,
    }
    json_line(&Reference {
        kind: "reference",
        reference: "memcpy",
        buffer_bytes: memcpy::BUFFER,
        bytes_per_s: json_number(m.bytes_per_s),
        copies: m
            .ns_per_copy
            .iter()
            .map(|&(size, ns)| Copy {
                size,
                ns: json_number(ns),
            })
            .collect(),
    })
}

/// The floors reference: `{"kind":"reference","reference":"floors",...}`; with `rounds` (of
/// `--repeat`) the figures are their medians, and `rounds` has each round's.
fn floors_json(floors: &Floors, rounds: &[Floors]) -> String {
    #[derive(serde::Serialize)]
    struct Reference {
        kind: &'static str,
        reference: &'static str,
        spin_rtt_p50_ns: Option<u64>,
        futex_rtt_p50_ns: Option<u64>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        rounds: Vec<Round>,
    }
    #[derive(serde::Serialize)]
    struct Round {
        spin_rtt_p50_ns: Option<u64>,
        futex_rtt_p50_ns: Option<u64>,
    }
    json_line(&Reference {
        kind: "reference",
        reference: "floors",
        spin_rtt_p50_ns: floors.spin_ns,
        futex_rtt_p50_ns: floors.futex_ns,
        rounds: rounds
            .iter()
            .map(|f| Round {
                spin_rtt_p50_ns: f.spin_ns,
                futex_rtt_p50_ns: f.futex_ns,
            })
            .collect(),
    })
}

/// A rate or a time with one decimal, as before serde: more would only be noise.
fn json_number(x: f64) -> Option<f64> {
    json_f64(x, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p50: u64) -> Measurement {
        Measurement {
            rtt_p50_ns: p50,
            rtt_p99_ns: 2 * p50,
            rtt_p999_ns: 3 * p50,
            rtt_samples: 1000,
            msgs_per_s: 1000.0,
            bytes_per_s: 64000.0,
            rtt_cpu_ns: Sides {
                ours: 900.0,
                peer: 800.0,
            },
            msg_cpu_ns: Sides {
                ours: 500.0,
                peer: 12_345.0,
            },
        }
    }

    #[test]
    fn json_row_has_the_documented_keys() {
        let row = Row {
            transport: "pipe",
            size: 64,
            api: Api::Blocking,
            ours: m(1500),
            raw: Some(m(1000)),
            blocking: None,
        };
        let fields = "\"rtt_samples\":1000,\"msgs_per_s\":1000.0,\"bytes_per_s\":64000.0,\
                      \"rtt_cpu_ns\":{\"initiator\":900.0,\"echo\":800.0},\
                      \"msg_cpu_ns\":{\"sender\":500.0,\"receiver\":12345.0}";
        assert_eq!(
            json_row(&row, &[]),
            format!(
                "{{\"kind\":\"row\",\"transport\":\"pipe\",\"size\":64,\"api\":\"blocking\",\"rtt_p50_ns\":1500,\
                 \"rtt_p99_ns\":3000,\"rtt_p999_ns\":4500,{fields},\"raw\":{{\"rtt_p50_ns\":1000,\
                 \"rtt_p99_ns\":2000,\"rtt_p999_ns\":3000,{fields}}},\"blocking\":null}}"
            )
        );
        let row = Row { raw: None, ..row };
        assert!(json_row(&row, &[]).ends_with(",\"raw\":null,\"blocking\":null}"));
    }

    #[test]
    fn a_readiness_row_says_its_api_and_its_ratios_to_the_blocking_row() {
        let blocking = m(1000);
        let mut slower = m(1500);
        slower.msgs_per_s = 800.0;
        let row = Row {
            transport: "posix-shm-park",
            size: 64,
            api: Api::Async,
            ours: slower,
            raw: None,
            blocking: Some(Baseline::of(&blocking)),
        };
        assert_eq!(row.label(), "posix-shm-park+async");
        let json = json_row(&row, &[]);
        assert!(
            json.starts_with(
                "{\"kind\":\"row\",\"transport\":\"posix-shm-park\",\"size\":64,\"api\":\"async\","
            ),
            "{json}"
        );
        assert!(
            json.ends_with(
                ",\"raw\":null,\"blocking\":{\"rtt_p50_ns\":1000,\"msgs_per_s\":1000.0,\
                 \"rtt_p50_ratio\":1.5,\"throughput_ratio\":1.25}}"
            ),
            "{json}"
        );
        let layout = Layout::new([row.label().as_str()].into_iter(), true);
        assert_eq!(layout.label_width, 20);
        let line = table_row(&row, layout);
        assert!(line.starts_with("posix-shm-park+async  "), "{line}");
        assert!(line.ends_with("  1.50x/1.25x"), "{line}");
        // The blocking row has a dash there, and the same column boundaries.
        let plain = Row {
            api: Api::Blocking,
            blocking: None,
            ..row
        };
        let line_plain = table_row(&plain, layout);
        assert!(line_plain.ends_with(" -"), "{line_plain}");
        assert_eq!(line_plain.chars().count(), line.chars().count());
        // Without readiness rows the table is as it always was.
        assert_eq!(
            Layout::new(["posix-shm-multi"].into_iter(), false),
            Layout::default()
        );
    }

    #[test]
    fn ranges() {
        assert_eq!(min_max([2.0, f64::NAN, 5.0, 1.0]), Some((1.0, 5.0)));
        assert_eq!(min_max([f64::NAN]), None);
        assert_eq!(range("41.3µs", "49.1µs"), "41.3–49.1µs");
        assert_eq!(range("950ns", "1.2µs"), "950ns–1.2µs");
        assert_eq!(range("0.98x", "1.05x"), "0.98–1.05x");
    }

    #[test]
    fn table_cells() {
        assert_eq!(nanos(850), "850ns");
        assert_eq!(nanos(12_345), "12.3µs");
        assert_eq!(nanos(2_500_000), "2.50ms");
        assert_eq!(count(1_234_567.0), "1.23M");
        assert_eq!(count(45_600.0), "45.6k");
        assert_eq!(ratio(3.0, 2.0), "1.50x");
        assert_eq!(
            sides(Sides {
                ours: 520.0,
                peer: 12_345.0
            }),
            "0.52+12µs"
        );
        assert_eq!(
            sides(Sides {
                ours: f64::NAN,
                peer: 0.0
            }),
            "?+0.00µs"
        );
    }

    #[test]
    fn references_in_both_formats() {
        let m = Memcpy {
            bytes_per_s: 10e9,
            ns_per_copy: vec![(64, 4.4), (65536, 5400.0)],
        };
        assert_eq!(
            memcpy_line(&m),
            "memcpy (one process): 1024 KiB buffer 10000.0 MB/s; one copy of 64 B 4ns, \
             65536 B 5.4µs"
        );
        assert_eq!(
            memcpy_json(&m),
            "{\"kind\":\"reference\",\"reference\":\"memcpy\",\"buffer_bytes\":1048576,\"bytes_per_s\":10000000000.0,\
             \"copies\":[{\"size\":64,\"ns\":4.4},{\"size\":65536,\"ns\":5400.0}]}"
        );
        let floors = Floors {
            spin_ns: Some(300),
            futex_ns: None,
        };
        assert_eq!(
            floors_line(&floors, &[]),
            "spin floor (raw posix-shm-busy 64 B rtt p50) 300ns"
        );
        assert_eq!(
            floors_json(&floors, &[]),
            "{\"kind\":\"reference\",\"reference\":\"floors\",\"spin_rtt_p50_ns\":300,\"futex_rtt_p50_ns\":null}"
        );
    }

    #[test]
    fn a_skipped_cell_lines_up_with_the_table() {
        let row = skipped_row("posix-mq", 65536, "too large", Layout::default());
        assert_eq!(row, "posix-mq           65536  n/a (too large)");
        let header = table_line(&HEADER.map(String::from), Layout::default());
        assert_eq!(
            row.find("65536").map(|i| i + 5),
            header.find("size").map(|i| i + 4)
        );
    }
}
