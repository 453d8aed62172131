//! Stress runs across real processes, longer than the test suite can afford.
//!
//! ```text
//! ipc-stress kill-producers N [--transports posix-shm,sysv-shm,file-shm] [--waits busy,spin,park]
//!                             [--seed S] [--per-producer M] [--message-size B]
//!                             [--stall-secs T] [--limit-secs L]
//! ```
//!
//! `kill-producers`: for each transport and wait strategy, `N` trials of
//! [`ipc_tests::kill_producers`]: three producer processes stream self-checking messages into
//! one `producers=multi` ring, this process consumes, one producer is SIGKILLed at a random
//! moment, the survivors send their `M` messages (default 2000) and stop, the consumer
//! drains. Messages are of up to `B` bytes (default 1024; from 2 KiB the ring copies in its
//! own loop, not `memcpy`, so 4096 puts kills inside those copies too). Each trial is
//! classified: *wedged* (no message for `T` seconds, default 5, while producers remain, or the
//! trial not over after `L` seconds, default 30), *lost* (a committed message missing),
//! *duplicated*, *torn* (damaged), *phantom* (more of the victim's messages than it could
//! have committed). It prints, per combination and in total, one line per
//! class (`wedged 0`, `lost 0`, ...), and exits 1 if any is not zero. The seed is printed
//! first; `--seed` replays the same choices (timing, and so where kills land, still varies).
//!
//! The producers are this program re-executed as `ipc-stress peer ...`, which runs the roles
//! of `ipc-shm-peer` (the same source file, included below), so that `cargo run --bin
//! ipc-stress` needs no other binary built. Every ring and board has a unique name and is
//! removed when its trial ends, whatever the outcome (a wedged trial's consumer thread is
//! abandoned, its segment removed all the same). Ctrl-C stops after the trial in progress.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ipc_tests::board;
use ipc_tests::kill_producers::{self, Outcome, Trial};
use ipc_tests::message::splitmix64;
use ipc_tests::process::PeerExe;
use ipc_tests::shm_ring::ShmTransport;

// Its `main`, and helpers that only the tests' copies use, are unused here.
#[allow(dead_code)]
#[path = "ipc-shm-peer.rs"]
mod shm_peer;

const USAGE: &str = "usage: ipc-stress kill-producers N [--transports posix-shm,sysv-shm,file-shm] \
                     [--waits busy,spin,park] [--seed S] [--per-producer M] [--message-size B] \
                     [--stall-secs T] [--limit-secs L]";

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    // Atomics are async-signal-safe.
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Ctrl-C ends the run after the trial in progress, so that its guards remove its segments
/// (a process killed by the signal's default action would leave them behind).
fn catch_interrupt() {
    // SAFETY: an all-zero `sigaction` is a valid value (empty mask, no flags), filled in below.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: `sa_mask` is a valid sigset_t owned by `action`.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic (async-signal-safe); `action` outlives
        // the call; a null old-action pointer is allowed.
        unsafe { libc::sigaction(sig, &action, std::ptr::null_mut()) };
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("peer") => shm_peer::run(args[1..].to_vec()),
        Some("kill-producers") => match Options::parse(&args[1..]) {
            Ok(options) => kill_producers_run(&options),
            Err(why) => {
                eprintln!("ipc-stress: {why}\n{USAGE}");
                ExitCode::from(2)
            }
        },
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

struct Options {
    trials: u64,
    transports: Vec<ShmTransport>,
    waits: Vec<&'static str>,
    seed: u64,
    per_producer: u64,
    message_size: usize,
    stall: Duration,
    limit: Duration,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut it = args.iter();
        let trials = it
            .next()
            .ok_or("the number of trials is missing")?
            .parse()
            .map_err(|_| "N must be a number")?;
        let mut options = Options {
            trials,
            transports: ShmTransport::ALL.to_vec(),
            waits: vec!["busy", "spin", "park"],
            seed: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
                ^ u64::from(std::process::id()) << 32,
            per_producer: 2000,
            message_size: kill_producers::MESSAGE_SIZE,
            stall: Duration::from_secs(5),
            limit: Duration::from_secs(30),
        };
        while let Some(flag) = it.next() {
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            let number = || -> Result<u64, String> {
                value
                    .parse()
                    .map_err(|_| format!("{flag} takes a number, not `{value}`"))
            };
            match flag.as_str() {
                "--transports" => {
                    options.transports = value
                        .split(',')
                        .map(|t| {
                            ShmTransport::from_name(t).ok_or_else(|| {
                                format!("unknown transport `{t}` (posix-shm, sysv-shm)")
                            })
                        })
                        .collect::<Result<_, _>>()?;
                }
                "--waits" => {
                    options.waits = value
                        .split(',')
                        .map(|w| match w {
                            "busy" => Ok("busy"),
                            "spin" => Ok("spin"),
                            "park" => Ok("park"),
                            other => Err(format!("unknown wait `{other}` (busy, spin, park)")),
                        })
                        .collect::<Result<_, _>>()?;
                }
                "--seed" => options.seed = number()?,
                "--per-producer" => options.per_producer = number()?.max(2),
                "--message-size" => options.message_size = number()? as usize,
                "--stall-secs" => options.stall = Duration::from_secs(number()?.max(1)),
                "--limit-secs" => options.limit = Duration::from_secs(number()?.max(1)),
                other => return Err(format!("unknown option `{other}`")),
            }
        }
        Ok(options)
    }
}

/// Sums of a set of trials.
#[derive(Default)]
struct Totals {
    trials: u64,
    wedged: u64,
    lost: u64,
    duplicated: u64,
    torn: u64,
    phantom: u64,
    harness: u64,
    messages: u64,
    kills: [u64; board::NAMES.len()],
    no_kill: u64,
    elapsed: Duration,
    slowest: Duration,
}

impl Totals {
    fn add(&mut self, o: &Outcome) {
        self.trials += 1;
        self.wedged += u64::from(o.wedged);
        self.lost += o.lost;
        self.duplicated += o.duplicated;
        self.torn += o.torn;
        self.phantom += o.phantom;
        self.harness += u64::from(o.harness);
        self.messages += o.messages;
        match o.killed_in {
            Some(phase) => {
                if let Some(n) = self.kills.get_mut(phase as usize) {
                    *n += 1;
                }
            }
            None => self.no_kill += 1,
        }
        self.elapsed += o.elapsed;
        self.slowest = self.slowest.max(o.elapsed);
    }

    fn merge(&mut self, other: &Totals) {
        self.trials += other.trials;
        self.wedged += other.wedged;
        self.lost += other.lost;
        self.duplicated += other.duplicated;
        self.torn += other.torn;
        self.phantom += other.phantom;
        self.harness += other.harness;
        self.messages += other.messages;
        for (a, b) in self.kills.iter_mut().zip(other.kills) {
            *a += b;
        }
        self.no_kill += other.no_kill;
        self.elapsed += other.elapsed;
        self.slowest = self.slowest.max(other.slowest);
    }

    fn clean(&self) -> bool {
        self.wedged + self.lost + self.duplicated + self.torn + self.phantom + self.harness == 0
    }

    fn print(&self, title: &str) {
        let kills: Vec<String> = self
            .kills
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(p, n)| format!("{} {n}", board::name(p as u64)))
            .collect();
        let inside: u64 = (0..board::NAMES.len() as u64)
            .filter(|p| board::inside_send(*p))
            .map(|p| self.kills[p as usize])
            .sum();
        let mean = self.elapsed.as_secs_f64() / self.trials.max(1) as f64;
        println!(
            "{title}: trials {}, {:.1} s (mean {:.0} ms, slowest {:.0} ms), messages {}",
            self.trials,
            self.elapsed.as_secs_f64(),
            mean * 1e3,
            self.slowest.as_secs_f64() * 1e3,
            self.messages
        );
        println!(
            "  kills by phase: {} (inside a send {inside}, none {})",
            if kills.is_empty() {
                "-".into()
            } else {
                kills.join(", ")
            },
            self.no_kill
        );
        println!("wedged {}", self.wedged);
        println!("lost {}", self.lost);
        println!("duplicated {}", self.duplicated);
        println!("torn {}", self.torn);
        println!("phantom {}", self.phantom);
        println!("harness {}", self.harness);
    }
}

fn kill_producers_run(o: &Options) -> ExitCode {
    catch_interrupt();
    let exe = match std::env::current_exe() {
        Ok(path) => PeerExe::with_prefix(path, &["peer"]),
        Err(e) => {
            eprintln!("ipc-stress: cannot find its own executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "kill-producers: {} trials per combination, {} producers x {} messages, stall bound \
         {:?}, seed {} (replay with --seed {})",
        o.trials,
        kill_producers::PRODUCERS,
        o.per_producer,
        o.stall,
        o.seed,
        o.seed
    );
    let started = Instant::now();
    let mut master = o.seed;
    let mut all = Totals::default();
    'run: for &transport in &o.transports {
        for &wait in &o.waits {
            let mut combo = Totals::default();
            let title = format!("{} wait={wait}", transport.name());
            for n in 0..o.trials {
                if INTERRUPTED.load(Ordering::SeqCst) {
                    combo.print(&format!("{title} (interrupted)"));
                    all.merge(&combo);
                    break 'run;
                }
                let trial = Trial {
                    transport,
                    wait,
                    per_producer: o.per_producer,
                    message_size: o.message_size,
                    stall: o.stall,
                    limit: o.limit,
                    seed: splitmix64(&mut master),
                };
                let outcome = kill_producers::run(&exe, &trial);
                if INTERRUPTED.load(Ordering::SeqCst) {
                    // Ctrl-C reached the producers too: this trial's findings are its own.
                    combo.print(&format!("{title} (interrupted)"));
                    all.merge(&combo);
                    break 'run;
                }
                if !outcome.clean() {
                    println!(
                        "{title} trial {n} (trial seed {}, {:.0} ms): {}",
                        trial.seed,
                        outcome.elapsed.as_secs_f64() * 1e3,
                        outcome.notes.join("; ")
                    );
                }
                combo.add(&outcome);
            }
            combo.print(&title);
            all.merge(&combo);
        }
    }
    all.print(&format!("total ({:.1} s)", started.elapsed().as_secs_f64()));
    if INTERRUPTED.load(Ordering::SeqCst) {
        println!("interrupted");
        return ExitCode::from(130);
    }
    if all.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
