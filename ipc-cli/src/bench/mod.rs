//! `ipc bench`: each transport against a plain loop of its own system calls, between two
//! processes.
//!
//! For every transport × size, four runs, each with a fresh peer process (`ipc bench-peer`):
//! ping-pong on the raw baseline and on ours, then one-way throughput on both. Each gets a
//! quarter of the per-cell budget, the first tenth of which is warm-up.
//!
//! Round trips go into an HDR histogram (p50, p99, p99.9). Both processes measure their CPU
//! time (`CLOCK_PROCESS_CPUTIME_ID`) over the measured interval, which starts at the first
//! message marked [`transport::MEASURED`]; the peer prints its figure on its stdout, which
//! [`Link::finish`] reads ([`transport::PeerReport`]). `--plot` draws the rows into an SVG
//! ([`plot`]); a progress bar goes to stderr when it is a terminal, between the rows.
//!
//! When a posix-shm row is measured, the report ends with references for it: single-process
//! memcpy speed, and the "spin floor" and "futex floor" (the 64 B round trip of the raw busy
//! and park mailboxes).
//!
//! With `--async`, a cell also measures ours through the readiness paths its transport names
//! ([`BenchTransport::readiness_apis`]: tokio, a `WaitSet`), both processes alike
//! ([`readiness`]), two more runs each, and reports each as a row of its own under the
//! blocking one, with its ratios to it.

mod cpu;
mod fifo;
mod interrupt;
mod mailbox;
mod memcpy;
pub mod peer;
mod pingpong;
mod pipe;
mod plot;
mod posix_mq;
mod posix_shm;
mod raw;
mod readiness;
mod report;
mod sysv_mq;
mod sysv_shm;
mod throughput;
mod transport;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::failure::Failure;
use report::{Baseline, Floors, Format, Layout, Measurement, Report, Row};
use transport::{Api, BenchTransport, Link, PeerReport, Role, Scratch, Variant};

/// The transports `ipc bench` knows, in the order it runs them. A new transport is one more
/// entry here.
static TRANSPORTS: &[&dyn BenchTransport] = &[
    &pipe::Pipe,
    &fifo::Fifo,
    &posix_mq::PosixMq,
    &posix_shm::BUSY,
    &posix_shm::SPIN,
    &posix_shm::PARK,
    &posix_shm::MULTI,
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
/// "n/a" in the table, a note on stderr with --json. Round trips: p50, p99 and p99.9; each
/// side's CPU time per one-way message (busy-polling shows there). With posix-shm, the report
/// ends with single-process memcpy speed and the spin and futex floors (the raw mailbox's
/// 64 B round trips). A progress bar goes to stderr when it is a terminal.
#[derive(clap::Args)]
pub struct Args {
    /// Transports to measure, comma separated; a leading part of names selects every one it
    /// begins, e.g. `posix-shm` for posix-shm-busy, -spin, -park and -multi [default: every built-in
    /// one]
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    transports: Vec<String>,
    /// Message sizes in bytes, comma separated (units accepted: 64KiB), at most 64 MiB
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        value_parser = parse_message_size,
        default_values_t = [64, 4096, 65536, 1 << 20]
    )]
    sizes: Vec<usize>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    /// Also draw round-trip latency (p50) and throughput (MB/s) by message size, one line per
    /// transport (and per readiness path with --async), into this SVG file.
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// Time for each transport × size, split evenly over its four runs (the default run,
    /// every transport at the default sizes, takes under a minute on two CPUs); each readiness
    /// path of --async adds two runs of the same length.
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_BUDGET_MS)]
    budget_ms: u64,
    /// Also measure each transport with both processes driving the same endpoints through
    /// `ipc::AsyncSender`/`AsyncReceiver` on a current-thread tokio runtime (rows `+async`),
    /// and through an `ipc::WaitSet` (rows `+wait-set`), each under its blocking row with the
    /// ratios to it. The rings do so on posix-shm-park (and tokio on posix-shm-multi): an async
    /// endpoint never uses the blocking waiting strategy.
    #[arg(long = "async")]
    readiness: bool,
}

/// The default `--budget-ms`.
const DEFAULT_BUDGET_MS: u64 = 1200;

/// The largest `--sizes` entry. Each process holds several buffers of the message size (and a
/// ring holds twice it), so a size of gigabytes is not measured but killed by the OOM killer
/// partway through the run; above this it is a usage error before anything starts. 64 MiB is
/// well past where every transport's rate is flat (memcpy-bound).
const MAX_MESSAGE_SIZE: u64 = 64 << 20;

fn parse_message_size(text: &str) -> Result<usize, String> {
    let size = ipc::spec::parse_size(text)?;
    if size > MAX_MESSAGE_SIZE {
        return Err(format!(
            "message size `{text}` is above the bench's limit of 64 MiB ({MAX_MESSAGE_SIZE} \
             bytes): each process would hold several buffers of it"
        ));
    }
    match usize::try_from(size) {
        Ok(size) if size > 0 => Ok(size),
        _ => Err(format!("message size `{text}` must be at least 1 byte")),
    }
}

pub fn run(args: Args) -> Result<(), Failure> {
    let started = Instant::now();
    // A --plot that cannot be written would otherwise fail only after the whole run; opening
    // it now (without truncating: the plot replaces it at the end) fails before measuring.
    if let Some(path) = &args.plot {
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| {
                Failure::Runtime(format!("cannot write the plot to {}: {e}", path.display()))
            })?;
    }
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
    let extra = |transport: &dyn BenchTransport| -> &'static [Api] {
        if args.readiness {
            transport.readiness_apis()
        } else {
            &[]
        }
    };
    // The readiness rows' labels are the longest: the first column fits them. Without
    // --async there are none, and the table is as it always was.
    let labels: Vec<String> = transports
        .iter()
        .flat_map(|&t| {
            extra(t)
                .iter()
                .map(move |&api| report::label(t.name(), api))
        })
        .collect();
    let layout = Layout::new(labels.iter().map(String::as_str), args.readiness);
    let mut report = Report::new(
        if args.json {
            Format::Json
        } else {
            Format::Table
        },
        layout,
    );
    let progress = progress_bar(transports.len() * args.sizes.len());
    progress.suspend(|| report.start());
    let mut floors = Floors::default();
    let mut shm_measured = false;
    let mut rows = Vec::new();
    // Once standard output's reader has left (`ipc bench | head -3`), nobody reads the rest of
    // the table: stop between cells (every peer has exited then), unless the rows also go
    // into a --plot. The peers' stdout is theirs, not ours, so this never cuts a run short.
    let unread = |report: &Report| report.closed() && args.plot.is_none();
    for transport in transports {
        for &size in &args.sizes {
            if unread(&report) {
                progress.finish_and_clear();
                return Err(Failure::Closed { lost: false });
            }
            progress.set_message(format!("{} {size} B", transport.name()));
            match transport.unsupported(size) {
                Some(reason) => {
                    progress.suspend(|| report.skipped(transport.name(), size, &reason))
                }
                None => {
                    for row in bench.cell(transport, size, extra(transport))? {
                        shm_measured |= posix_shm::is_one(transport);
                        posix_shm::note_floors(&row, &mut floors);
                        progress.suspend(|| report.row(&row));
                        rows.push(row);
                    }
                }
            }
            progress.inc(1);
        }
    }
    if shm_measured && !unread(&report) {
        progress.set_message("memcpy reference");
        // Alone on its CPU: every peer has exited.
        let budget = Duration::from_millis(args.budget_ms) / 8;
        let memcpy = memcpy::measure(&args.sizes, budget);
        progress.suspend(|| report.memcpy(&memcpy));
    }
    progress.finish_and_clear();
    report.floors(&floors);
    if let Some(path) = &args.plot {
        plot::draw(path, &rows).map_err(|e| {
            Failure::Runtime(format!("drawing the plot into {}: {e}", path.display()))
        })?;
    }
    report.finish(started.elapsed());
    Ok(())
}

/// A bar of the cells measured, on stderr when it is a terminal; hidden otherwise (and never
/// on stdout, which may be JSON lines).
///
/// Redrawn only as cells start and end: no ticking thread, whose CPU time would count in the
/// measured processes' own.
fn progress_bar(cells: usize) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(cells as u64), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{elapsed:>4} [{bar:30}] {pos}/{len} cells  {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
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
    /// The row of `transport` × `size`, then one per readiness path of `readiness` (the same
    /// endpoints driven otherwise), each against it.
    fn cell(
        &self,
        transport: &dyn BenchTransport,
        size: usize,
        readiness: &[Api],
    ) -> Result<Vec<Row>, Failure> {
        let measure = |variant, api| -> Result<Measurement, Failure> {
            let (latency, echo) = self.run(transport, variant, api, Role::Echo, size, |link| {
                pingpong::run(link, size, self.budget)
            })?;
            let (rate, sink) = self.run(transport, variant, api, Role::Sink, size, |link| {
                throughput::run(link, size, self.budget)
            })?;
            Ok(Measurement::new(&latency, &echo, &rate, &sink))
        };
        let raw = if transport.has_raw_baseline() {
            Some(measure(Variant::Raw, Api::Blocking)?)
        } else {
            None
        };
        let ours = measure(Variant::Ours, Api::Blocking)?;
        let blocking = Baseline::of(&ours);
        let mut rows = vec![Row {
            transport: transport.name(),
            size,
            api: Api::Blocking,
            ours,
            raw: raw.clone(),
            blocking: None,
        }];
        for &api in readiness {
            rows.push(Row {
                transport: transport.name(),
                size,
                api,
                ours: measure(Variant::Ours, api)?,
                raw: raw.clone(),
                blocking: Some(blocking),
            });
        }
        Ok(rows)
    }

    /// Starts a peer in `role`, connects to it, runs `workload` on the link and checks that the
    /// peer finished cleanly; returns what the workload and the peer measured.
    fn run<T>(
        &self,
        transport: &dyn BenchTransport,
        variant: Variant,
        api: Api,
        role: Role,
        size: usize,
        workload: impl FnOnce(&mut Link) -> ipc::Result<T>,
    ) -> Result<(T, PeerReport), Failure> {
        let what = || {
            let variant = match api {
                Api::Blocking => variant.to_string(),
                api => format!("{variant} {api}"),
            };
            format!("bench {} {variant} {role} {size} B", transport.name())
        };
        let cmd = peer::command(transport, variant, api, role, size, self.peer_cpu)
            .map_err(|e| Failure::Runtime(format!("{}: {e}", what())))?;
        let mut link = transport
            .connect(variant, size, self.scratch, cmd)
            .and_then(|link| link.through(api))
            .map_err(|e| Failure::context(what(), e))?;
        let result = link.await_ready().and_then(|()| workload(&mut link));
        let peer = link.finish(result.is_ok());
        match (result, peer) {
            (Ok(value), Ok(peer)) => Ok((value, peer)),
            (Ok(_), Err(peer)) => Err(Failure::Runtime(format!("{}: {peer}", what()))),
            (Err(e), Ok(_)) => Err(Failure::context(what(), e)),
            // The peer failing first is the usual cause of our error: say both.
            (Err(e), Err(peer)) => Err(Failure::Runtime(format!("{}: {e}; {peer}", what()))),
        }
    }
}
