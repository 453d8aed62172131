//! `ipc clean [--stale] [--dry-run] [NAME...]`: remove IPC objects.
//!
//! Named objects (in the form `ipc ls` prints, see [`crate::objects`]) are removed whoever
//! made them. `--stale` removes only objects of this framework (shared memory with an
//! ipc-sync layout header) whose creator is dead and that nobody has attached, mapped or
//! open, and (for a ring) with no live endpoint and no undelivered record; with names as
//! well, only those of the named objects that are stale. Another program's object is never
//! removed unless named.
//!
//! Liveness is judged only where this process can see it: an object whose creator or an
//! endpoint lives in another PID namespace is kept, and so is a ring holding records no
//! receiver took (unless `--discard-undelivered`). Each of our objects kept says why.

use std::io;

use crate::failure::{Failure, say};
use crate::objects::{self, Object};

/// Remove IPC objects: the ones named, or with --stale the abandoned ones ipc made.
///
/// NAME: posix-shm:/NAME (or /NAME), posix-sem:/NAME, posix-mq:/NAME, sysv-shm:id=N,
/// sysv-shm:key=0xKEY, sysv-mq:id=N|key=…, sysv-sem:id=N|key=… (as `ipc ls` prints them).
#[derive(clap::Args)]
pub struct Args {
    /// Only objects made by ipc (by their layout header) whose creator is dead and which no
    /// process has attached, mapped or open, no ring endpoint is alive, and no ring holds
    /// undelivered records. Creators and endpoints in another PID namespace count as alive.
    #[arg(long)]
    stale: bool,
    /// With --stale: also remove abandoned rings that still hold records no receiver took
    /// (those records are lost).
    #[arg(long, requires = "stale")]
    discard_undelivered: bool,
    /// Print what would be removed; remove nothing.
    #[arg(long)]
    dry_run: bool,
    /// Objects to remove.
    names: Vec<String>,
}

pub fn run(args: Args) -> Result<(), Failure> {
    if args.names.is_empty() && !args.stale {
        return Err(Failure::Usage(
            "name the objects to remove, or pass --stale (see `ipc clean --help`)".into(),
        ));
    }
    let targets = args
        .names
        .iter()
        .map(|n| objects::parse_target(n))
        .collect::<Result<Vec<_>, _>>()?;
    let scan = objects::scan();
    let mut chosen: Vec<(&Object, String)> = Vec::new();
    let mut failures = Vec::new();
    // What was removed is the point, the lines only report it: a reader that leaves (`ipc
    // clean --stale | head -1`) does not stop the removals, and the exit code still tells
    // whether they all succeeded.
    let mut out = io::stdout().lock();
    let mut closed = false;
    let mut report = |line: String| -> Result<(), Failure> {
        if closed {
            return Ok(());
        }
        match say(&mut out, &line) {
            Err(Failure::Closed { .. }) => {
                closed = true;
                Ok(())
            }
            other => other,
        }
    };
    if targets.is_empty() {
        for o in &scan.objects {
            match o.stale_reason(args.discard_undelivered) {
                Ok(why) => chosen.push((o, why)),
                // Another program's objects are not ours to judge: only ours say why they stay.
                Err(why) if o.ours.is_some() => report(format!("kept {}: {why}", o.name))?,
                Err(_) => {}
            }
        }
    }
    for target in &targets {
        let Some(o) = objects::find(&scan, target) else {
            failures.push(format!("{target}: not found"));
            continue;
        };
        if args.stale {
            match o.stale_reason(args.discard_undelivered) {
                Ok(why) => chosen.push((o, why)),
                Err(why) => report(format!("kept {}: {why}", o.name))?,
            }
        } else {
            chosen.push((o, "named".to_owned()));
        }
    }
    for (o, why) in chosen {
        if args.dry_run {
            report(format!("would remove {} ({why})", o.name))?;
            continue;
        }
        match objects::remove(o) {
            Ok(()) => report(format!("removed {} ({why})", o.name))?,
            Err(e) => failures.push(format!("removing {}: {e}", o.name)),
        }
    }
    match failures.len() {
        0 => Ok(()),
        _ => Err(Failure::Runtime(failures.join("; "))),
    }
}
