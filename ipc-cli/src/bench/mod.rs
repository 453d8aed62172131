//! `ipc bench`: each transport against a plain loop of its own system calls, between two
//! processes.
//!
//! For every transport × size, four runs, each with a fresh peer process (`ipc bench-peer`):
//! ping-pong on the raw baseline and on ours, then one-way throughput on both. Each gets a
//! quarter of the per-cell budget, the first tenth of which is warm-up.
//!
//! When a posix-shm row is measured, the report ends with references for it: single-process
//! memcpy speed, and the "spin floor" and "futex floor" (the 64 B round trip of the raw busy
//! and park mailboxes).

mod cpu;
mod fifo;
mod interrupt;
mod mailbox;
mod memcpy;
pub mod peer;
mod pingpong;
mod pipe;
mod posix_mq;
mod posix_shm;
mod raw;
mod report;
mod sysv_mq;
mod sysv_shm;
mod throughput;
mod transport;

use std::time::{Duration, Instant};

use crate::failure::Failure;
use report::{Floors, Format, Measurement, Report, Row};
use transport::{BenchTransport, Link, Role, Scratch, Variant};

/// The transports `ipc bench` knows, in the order it runs them. A new transport is one more
/// entry here.
static TRANSPORTS: &[&dyn BenchTransport] = &[
    &pipe::Pipe,
    &fifo::Fifo,
    &posix_mq::PosixMq,
    &posix_shm::BUSY,
    &posix_shm::SPIN,
    &posix_shm::PARK,
    &sysv_mq::SysvMq,
    &sysv_shm::SysvShm,
];

/// The transport called `name` (as the peer's command line names it).
fn lookup(name: &str) -> Result<&'static dyn BenchTransport, Failure> {
    TRANSPORTS
        .iter()
        .copied()
        .find(|t| t.name() == name)
        .ok_or_else(|| unknown(name))
}

/// The transports `name` selects on the command line: the one of that name, or else every
/// one whose name continues it after a dash (`posix-shm`: `posix-shm-busy`, `-spin`, `-park`).
fn select(name: &str) -> Result<Vec<&'static dyn BenchTransport>, Failure> {
    if let Ok(transport) = lookup(name) {
        return Ok(vec![transport]);
    }
    let group: Vec<_> = TRANSPORTS
        .iter()
        .copied()
        .filter(|t| {
            t.name()
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('-'))
        })
        .collect();
    if group.is_empty() {
        Err(unknown(name))
    } else {
        Ok(group)
    }
}

fn unknown(name: &str) -> Failure {
    let known: Vec<_> = TRANSPORTS.iter().map(|t| t.name()).collect();
    Failure::Usage(format!(
        "unknown bench transport `{name}` (built in: {}; a leading part such as `posix-shm` \
         selects every one it begins)",
        known.join(", ")
    ))
}

/// Benchmark transports between two processes against raw system calls.
///
/// Round-trip latency (ping-pong) and one-way throughput for each transport and message size,
/// each beside the same figure for a plain loop of the underlying system calls. A size a
/// transport cannot carry on this machine (posix-mq above fs.mqueue.msgsize_max) is skipped:
/// "n/a" in the table, a note on stderr with --json. With posix-shm, the report ends with
/// single-process memcpy speed and the spin and futex floors (the raw mailbox's 64 B round
/// trips).
#[derive(clap::Args)]
pub struct Args {
    /// Transports to measure, comma separated; a leading part of names selects every one it
    /// begins, e.g. `posix-shm` for posix-shm-busy, -spin and -park [default: every built-in
    /// one]
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
        let mut chosen: Vec<&'static dyn BenchTransport> = Vec::new();
        for name in &args.transports {
            for transport in select(name)? {
                if !chosen.iter().any(|t| t.name() == transport.name()) {
                    chosen.push(transport);
                }
            }
        }
        chosen
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
    let mut floors = Floors::default();
    let mut shm_measured = false;
    for transport in transports {
        for &size in &args.sizes {
            match transport.unsupported(size) {
                Some(reason) => report.skipped(transport.name(), size, &reason),
                None => {
                    let row = bench.cell(transport, size)?;
                    shm_measured |= posix_shm::is_one(transport);
                    posix_shm::note_floors(&row, &mut floors);
                    report.row(&row);
                }
            }
        }
    }
    if shm_measured {
        // Alone on its CPU: every peer has exited.
        let budget = Duration::from_millis(args.budget_ms) / 8;
        report.memcpy(&memcpy::measure(&args.sizes, budget));
    }
    report.floors(&floors);
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
