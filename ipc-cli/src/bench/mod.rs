//! `ipc bench`: each transport against a plain loop of its own system calls, between two
//! processes.
//!
//! For every transport × size, four runs, each with a fresh peer process (`ipc bench-peer`):
//! ping-pong on the raw baseline and on ours, then one-way throughput on both. Each gets a
//! quarter of the per-cell budget, the first tenth of which is warm-up.

mod cpu;
mod fifo;
mod interrupt;
pub mod peer;
mod pingpong;
mod pipe;
mod posix_mq;
mod raw;
mod report;
mod throughput;
mod transport;

use std::time::{Duration, Instant};

use crate::failure::Failure;
use report::{Format, Measurement, Report, Row};
use transport::{BenchTransport, Link, Role, Scratch, Variant};

/// The transports `ipc bench` knows, in the order it runs them. A new transport is one more
/// entry here.
static TRANSPORTS: &[&dyn BenchTransport] = &[&pipe::Pipe, &fifo::Fifo, &posix_mq::PosixMq];

fn lookup(name: &str) -> Result<&'static dyn BenchTransport, Failure> {
    TRANSPORTS
        .iter()
        .copied()
        .find(|t| t.name() == name)
        .ok_or_else(|| {
            let known: Vec<_> = TRANSPORTS.iter().map(|t| t.name()).collect();
            Failure::Usage(format!(
                "unknown bench transport `{name}` (built in: {})",
                known.join(", ")
            ))
        })
}

/// Benchmark transports between two processes against raw system calls.
///
/// Round-trip latency (ping-pong) and one-way throughput for each transport and message size,
/// each beside the same figure for a plain loop of the underlying system calls. A size a
/// transport cannot carry on this machine (posix-mq above fs.mqueue.msgsize_max) is skipped:
/// "n/a" in the table, a note on stderr with --json.
#[derive(clap::Args)]
pub struct Args {
    /// Transports to measure, comma separated [default: every built-in one]
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    transports: Vec<String>,
    /// Message sizes in bytes, comma separated (units accepted: 64KiB)
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        value_parser = parse_message_size,
        default_values_t = [64, 4096, 65536]
    )]
    sizes: Vec<usize>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    /// Time for each transport × size, split evenly over its four runs (tests shorten it).
    #[arg(long, value_name = "MS", default_value_t = 3000, hide = true)]
    budget_ms: u64,
}

fn parse_message_size(text: &str) -> Result<usize, String> {
    let size = ipc::spec::parse_size(text)?;
    match usize::try_from(size) {
        Ok(size) if size > 0 => Ok(size),
        _ => Err(format!("message size `{text}` must be at least 1 byte")),
    }
}

pub fn run(args: Args) -> Result<(), Failure> {
    let started = Instant::now();
    // Before any thread starts: they all inherit the blocked signals.
    interrupt::clean_up_on_signals();
    let transports = if args.transports.is_empty() {
        TRANSPORTS.to_vec()
    } else {
        args.transports
            .iter()
            .map(|name| lookup(name))
            .collect::<Result<_, _>>()?
    };
    let scratch = Scratch::new()
        .map_err(|e| Failure::Runtime(format!("creating a private temporary directory: {e}")))?;
    let bench = Bench {
        scratch: &scratch,
        peer_cpu: cpu::pin_apart(),
        budget: Duration::from_millis(args.budget_ms) / 4,
    };
    let mut report = Report::new(if args.json {
        Format::Json
    } else {
        Format::Table
    });
    report.start();
    for transport in transports {
        for &size in &args.sizes {
            match transport.unsupported(size) {
                Some(reason) => report.skipped(transport.name(), size, &reason),
                None => report.row(&bench.cell(transport, size)?),
            }
        }
    }
    report.finish(started.elapsed());
    Ok(())
}

/// What every run of one `ipc bench` shares.
struct Bench<'a> {
    scratch: &'a Scratch,
    /// The CPU the peer pins itself to, when this process could pin itself to another.
    peer_cpu: Option<usize>,
    /// Time for each of the four runs of a cell, warm-up included.
    budget: Duration,
}

impl Bench<'_> {
    fn cell(&self, transport: &dyn BenchTransport, size: usize) -> Result<Row, Failure> {
        let measure = |variant| -> Result<Measurement, Failure> {
            let latency = self.run(transport, variant, Role::Echo, size, |link| {
                pingpong::run(link, size, self.budget)
            })?;
            let rate = self.run(transport, variant, Role::Sink, size, |link| {
                throughput::run(link, size, self.budget)
            })?;
            Ok(Measurement::new(&latency, &rate))
        };
        let raw = if transport.has_raw_baseline() {
            Some(measure(Variant::Raw)?)
        } else {
            None
        };
        let ours = measure(Variant::Ours)?;
        Ok(Row {
            transport: transport.name(),
            size,
            ours,
            raw,
        })
    }

    /// Starts a peer in `role`, connects to it, runs `workload` on the link and checks that the
    /// peer finished cleanly.
    fn run<T>(
        &self,
        transport: &dyn BenchTransport,
        variant: Variant,
        role: Role,
        size: usize,
        workload: impl FnOnce(&mut Link) -> ipc::Result<T>,
    ) -> Result<T, Failure> {
        let what = || format!("bench {} {variant} {role} {size} B", transport.name());
        let cmd = peer::command(transport, variant, role, size, self.peer_cpu)
            .map_err(|e| Failure::Runtime(format!("{}: {e}", what())))?;
        let mut link = transport
            .connect(variant, size, self.scratch, cmd)
            .map_err(|e| Failure::context(what(), e))?;
        let result = link.await_ready().and_then(|()| workload(&mut link));
        let peer = link.finish(result.is_ok());
        match (result, peer) {
            (Ok(value), Ok(())) => Ok(value),
            (Ok(_), Err(peer)) => Err(Failure::Runtime(format!("{}: {peer}", what()))),
            (Err(e), Ok(())) => Err(Failure::context(what(), e)),
            // The peer failing first is the usual cause of our error: say both.
            (Err(e), Err(peer)) => Err(Failure::Runtime(format!("{}: {e}; {peer}", what()))),
        }
    }
}
