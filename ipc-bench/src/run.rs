//! One `ipc bench` run: every chosen transport × size measured, reported as it goes.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::args::Args;
use crate::error::{Error, doing};
use crate::protocol::{Api, PeerReport, Role, Variant};
use crate::report::{self, Baseline, Floors, Format, Layout, Measurement, Report, Row};
use crate::transport::{BenchTransport, Link, Scratch, Setup};
use crate::transports::{TRANSPORTS, select};
use crate::{cpu, interrupt, memcpy, peer, pingpong, plot, posix_shm, repeat, stall, throughput};

/// Runs `ipc bench` with `args`: the table (or JSON lines) on stdout, the plot if asked.
pub fn run(args: Args) -> Result<(), Error> {
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
                Error::Runtime(format!("cannot write the plot to {}: {e}", path.display()))
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
        .map_err(|e| Error::Runtime(format!("creating a private temporary directory: {e}")))?;
    let bench = Bench {
        scratch: &scratch,
        peer_cpu: cpu::pin_apart(),
        budget: Duration::from_millis(args.budget_ms) / 4,
        raw_twice: args.raw_twice,
    };
    if args.raw_twice {
        eprintln!(
            "ipc bench: --raw-twice: the `ours` figures of the blocking rows are the raw loop's"
        );
    }
    let extra = |transport: &dyn BenchTransport| -> &'static [Api] {
        if args.readiness {
            transport.readiness_apis()
        } else {
            &[]
        }
    };
    // The readiness and batch rows' labels are the longest: the first column fits them.
    // Without --async and --batch there are none, and the table is as it always was.
    let batch: &[Api] = if args.batch { &[Api::Batch] } else { &[] };
    let labels: Vec<String> = transports
        .iter()
        .flat_map(|&t| {
            extra(t)
                .iter()
                .chain(batch)
                .map(move |&api| report::label(t.name(), api))
        })
        .collect();
    let rounds = args.repeat as usize;
    let layout =
        Layout::new(labels.iter().map(String::as_str), args.readiness).with_ranges(rounds > 1);
    let mut report = Report::new(
        if args.json {
            Format::Json
        } else {
            Format::Table
        },
        layout,
    );
    let progress = progress_bar(rounds * transports.len() * args.sizes.len());
    progress.suspend(|| report.start());
    let mut floors = Vec::new();
    let mut memcpys = Vec::new();
    // Each row's measurement of every round, and each skipped cell, in the order of the first
    // round (every round measures the same rows in the same order); printed as measured with
    // one round, in that order after the last round with several.
    let mut measured: Vec<Cell> = Vec::new();
    // Once standard output's reader has left (`ipc bench | head -3`), nobody reads the rest of
    // the table: stop between cells (every peer has exited then), unless the rows also go
    // into a --plot. The peers' stdout is theirs, not ours, so this never cuts a run short.
    let unread = |report: &Report| report.closed() && args.plot.is_none();
    for round in 0..rounds {
        let mut round_floors = Floors::default();
        let mut shm_measured = false;
        let mut index = 0;
        for &transport in &transports {
            for &size in &args.sizes {
                if unread(&report) {
                    progress.finish_and_clear();
                    return Err(Error::Closed);
                }
                let of_rounds = if rounds > 1 {
                    format!(" (round {}/{rounds})", round + 1)
                } else {
                    String::new()
                };
                progress.set_message(format!("{} {size} B{of_rounds}", transport.name()));
                match transport.unsupported(size) {
                    Some(reason) if round == 0 => {
                        if rounds == 1 {
                            progress.suspend(|| report.skipped(transport.name(), size, &reason));
                        }
                        measured.push(Cell::Skipped(transport.name(), size, reason));
                        index += 1;
                    }
                    Some(_) => index += 1,
                    None => {
                        for row in bench.cell(transport, size, extra(transport), args.batch)? {
                            shm_measured |= posix_shm::is_one(transport);
                            posix_shm::note_floors(&row, &mut round_floors);
                            if rounds == 1 {
                                progress.suspend(|| report.row(&row));
                            }
                            match measured.get_mut(index) {
                                Some(Cell::Rounds(row_rounds)) => row_rounds.push(row),
                                Some(Cell::Skipped(..)) => {
                                    unreachable!("every round measures the same cells in order")
                                }
                                None => measured.push(Cell::Rounds(vec![row])),
                            }
                            index += 1;
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
            memcpys.push(memcpy::measure(&args.sizes, budget));
        }
        floors.push(round_floors);
    }
    let rows: Vec<Row> = measured
        .into_iter()
        .filter_map(|cell| match cell {
            Cell::Rounds(mut row_rounds) if rounds == 1 => row_rounds.pop(),
            Cell::Rounds(row_rounds) => {
                let median = repeat::median_row(&row_rounds);
                progress.suspend(|| report.row_of_rounds(&median, &row_rounds));
                Some(median)
            }
            Cell::Skipped(transport, size, reason) => {
                if rounds > 1 {
                    progress.suspend(|| report.skipped(transport, size, &reason));
                }
                None
            }
        })
        .collect();
    if !memcpys.is_empty() {
        let memcpy = repeat::median_memcpy(&memcpys);
        progress.suspend(|| report.memcpy(&memcpy));
    }
    progress.finish_and_clear();
    if rounds == 1 {
        report.floors(&floors[0], &[]);
    } else {
        report.floors(&repeat::median_floors(&floors), &floors);
    }
    if let Some(path) = &args.plot {
        plot::draw(path, &rows).map_err(|e| {
            Error::Runtime(format!("drawing the plot into {}: {e}", path.display()))
        })?;
    }
    report.finish(started.elapsed());
    Ok(())
}

/// One row of the table over the rounds of `--repeat`.
enum Cell {
    /// A row's measurement in each round.
    Rounds(Vec<Row>),
    /// A transport × size the transport cannot carry, and why.
    Skipped(&'static str, usize, String),
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
    /// The blocking row measures the raw loop in place of ours (`--raw-twice`).
    raw_twice: bool,
}

impl Bench<'_> {
    /// The row of `transport` × `size`, then one per readiness path of `readiness` (the same
    /// endpoints driven otherwise), each against it, then with `batch` the `+batch` row.
    fn cell(
        &self,
        transport: &dyn BenchTransport,
        size: usize,
        readiness: &[Api],
        batch: bool,
    ) -> Result<Vec<Row>, Error> {
        let stream = |variant, api| {
            self.run(transport, variant, api, Role::Sink, size, |link| {
                throughput::run(link, size, self.budget, api == Api::Batch)
            })
        };
        let measure = |variant, api| -> Result<Measurement, Error> {
            let (latency, echo) = self.run(transport, variant, api, Role::Echo, size, |link| {
                pingpong::run(link, size, self.budget)
            })?;
            let (rate, sink) = stream(variant, api)?;
            Ok(Measurement::new(&latency, &echo, &rate, &sink))
        };
        let raw = if transport.has_raw_baseline() {
            Some(measure(Variant::Raw, Api::Blocking)?)
        } else {
            None
        };
        let ours = match raw {
            Some(_) if self.raw_twice => measure(Variant::Raw, Api::Blocking)?,
            _ => measure(Variant::Ours, Api::Blocking)?,
        };
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
        if batch {
            let (rate, sink) = stream(Variant::Ours, Api::Batch)?;
            rows.push(Row {
                transport: transport.name(),
                size,
                api: Api::Batch,
                ours: Measurement::one_way(&rate, &sink),
                raw,
                blocking: None,
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
    ) -> Result<(T, PeerReport), Error> {
        let what = || {
            let variant = match api {
                Api::Blocking => variant.to_string(),
                api => format!("{variant} {api}"),
            };
            format!("bench {} {variant} {role} {size} B", transport.name())
        };
        let cmd = peer::command(transport, variant, api, role, size, self.peer_cpu)
            .map_err(|e| Error::Runtime(format!("{}: {e}", what())))?;
        let mut link = transport
            .connect(Setup {
                variant,
                size,
                scratch: self.scratch,
                cmd,
            })
            .and_then(|link| link.through(api))
            .map_err(doing(what))?;
        let limit = stall::limit(self.budget);
        let deadline = stall::arm(what(), link.peer_process(), limit)
            .map_err(|e| Error::Runtime(format!("{}: arming its deadline: {e}", what())))?;
        let result = link.await_ready().and_then(|()| workload(&mut link));
        let peer = link.finish(result.is_ok());
        if deadline.disarm() {
            let cause = match (&result, &peer) {
                (Err(e), _) => format!(" ({e})"),
                (_, Err(peer)) => format!(" ({peer})"),
                _ => String::new(),
            };
            return Err(Error::Runtime(format!(
                "{}: had not ended after {} s, so its peer was killed{cause}",
                what(),
                limit.as_secs()
            )));
        }
        match (result, peer) {
            (Ok(value), Ok(peer)) => Ok((value, peer)),
            (Ok(_), Err(peer)) => Err(Error::Runtime(format!("{}: {peer}", what()))),
            (Err(e), Ok(_)) => Err(doing(what)(e)),
            // The peer failing first is the usual cause of our error: say both.
            (Err(e), Err(peer)) => Err(Error::Runtime(format!("{}: {e}; {peer}", what()))),
        }
    }
}
