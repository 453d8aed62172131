//! `ipc inspect SPEC`: the layout and state of a shared-memory segment made by ipc.

use std::io::{self, Write};
use std::sync::Arc;

use ipc::Segment;
use ipc::sync::ring::{self, Endpoint, LockState, RingState};
use ipc::sync::{Layout, LayoutKind, ProcessId, Shared};

use crate::failure::{Failure, say};
use crate::objects::{self, Kind, Which};

/// Show the layout header and ring state of a shared-memory segment made by ipc.
///
/// SPEC: posix-shm:/NAME (or /NAME), sysv-shm:id=N, sysv-shm:key=0xKEY or file-shm:/PATH.
/// Read without locking, so the figures may be a moment apart; nothing is written.
#[derive(clap::Args)]
pub struct Args {
    /// The segment.
    spec: String,
}

pub fn run(args: Args) -> Result<(), Failure> {
    // A mapped file is not one of the machine's objects `ipc ls` lists: it is found by path.
    if args.spec.starts_with("file-shm:") {
        let spec: ipc::TransportSpec = args.spec.parse()?;
        let ipc::Address::Path(path) = &spec.address else {
            unreachable!("file-shm addresses are paths");
        };
        let segment = objects::map_file(path)
            .map_err(|e| Failure::context(format!("opening {}", args.spec), e))?;
        return show(&args.spec, Arc::new(segment));
    }
    let target = objects::parse_target(&args.spec)?;
    let spec = target.to_string();
    let open_err = |e: ipc::Error| Failure::context(format!("opening {spec}"), e);
    let segment: Arc<dyn Segment> = match (&target.kind, &target.which) {
        (Kind::PosixShm, Which::Name(name)) => objects::map_posix(name).map_err(open_err)?,
        (Kind::SysvShm, Which::Id(id)) => objects::attach_sysv(*id).map_err(open_err)?,
        (Kind::SysvShm, Which::Key(_)) => {
            let scan = objects::scan();
            let id = objects::find(&scan, &target)
                .and_then(|o| o.id)
                .ok_or_else(|| Failure::Runtime(format!("opening {spec}: not found")))?;
            objects::attach_sysv(id).map_err(open_err)?
        }
        _ => {
            return Err(Failure::Usage(format!(
                "cannot inspect `{}`: only shared memory (posix-shm:/NAME, sysv-shm:id=N, \
                 sysv-shm:key=0x…, file-shm:/PATH) holds a layout",
                args.spec
            )));
        }
    };
    show(&spec, segment)
}

/// Prints the layout and state of a mapped segment.
fn show(spec: &str, segment: Arc<dyn Segment>) -> Result<(), Failure> {
    let size = segment.len();
    let shared = Shared::new(segment);
    let layout = Layout::attach(&shared, LayoutKind::Ring, std::time::Duration::ZERO)
        .or_else(|_| Layout::attach(&shared, LayoutKind::Custom, std::time::Duration::ZERO))
        .map_err(|e| Failure::context(format!("reading the layout of {spec}"), e))?;
    let out = &mut io::stdout().lock();
    say(out, &format!("object       {spec}"))?;
    say(out, &format!("size         {size} bytes"))?;
    say(
        out,
        &format!(
            "layout       ipc-sync version {}, {:?}, {} regions",
            ipc::sync::layout::VERSION,
            layout.kind(),
            layout.regions().len()
        ),
    )?;
    for (i, r) in layout.regions().iter().enumerate() {
        say(
            out,
            &format!(
                "  region {i}   {:?} at {} ({} bytes)",
                r.kind, r.offset, r.len
            ),
        )?;
    }
    say(out, &format!("creator      {}", who(layout.creator())))?;
    if layout.kind() == LayoutKind::Ring {
        let state =
            ring::inspect(&shared).map_err(|e| Failure::context(format!("reading {spec}"), e))?;
        print_ring(out, &state)?;
    }
    Ok(())
}

fn who(p: ProcessId) -> String {
    alive(p, p.is_alive())
}

fn alive(p: ProcessId, alive: bool) -> String {
    format!("pid {} ({})", p.pid, if alive { "alive" } else { "dead" })
}

/// An endpoint of a ring; one in another PID namespace cannot be checked from here.
fn endpoint(e: Endpoint, is_alive: bool) -> String {
    if ipc::sync::process::same_pid_namespace(e.pid_namespace) {
        alive(e.id, is_alive)
    } else {
        format!(
            "pid {} in another PID namespace (pid:[{}]), assumed alive",
            e.id.pid, e.pid_namespace
        )
    }
}

fn print_ring(out: &mut impl Write, state: &RingState) -> Result<(), Failure> {
    say(
        out,
        &format!("capacity     {} bytes", state.geometry.capacity),
    )?;
    say(
        out,
        &format!("max message  {} bytes", state.geometry.max_message),
    )?;
    say(out, &format!("producers    {:?}", state.producers_mode))?;
    let records = state
        .records
        .map_or("records not countable now".to_owned(), |n| {
            format!("{n} records")
        });
    say(
        out,
        &format!(
            "in flight    {} bytes, {records} (head {}, tail {})",
            state.bytes_in_flight(),
            state.head,
            state.tail
        ),
    )?;
    if state.uncounted_records > 0 {
        say(
            out,
            &format!(
                "past tail    {} records committed by a producer that died before counting \
                 them (the next producer counts them)",
                state.uncounted_records
            ),
        )?;
    }
    match state.consumer {
        Some((e, a)) => say(out, &format!("consumer     {}", endpoint(e, a)))?,
        None => say(out, "consumer     none attached")?,
    }
    if state.producers.is_empty() {
        say(out, "producer     none attached")?;
    }
    for (e, a) in &state.producers {
        say(out, &format!("producer     {}", endpoint(*e, *a)))?;
    }
    let lock = match state.lock {
        None => "none (single producer: lock-free)".to_owned(),
        Some(LockState::Free) => "free".to_owned(),
        Some(LockState::Held {
            slot,
            pid,
            alive,
            waiters,
        }) => format!(
            "held by producer slot {slot} ({}){}",
            match (pid, alive) {
                (Some(pid), true) => format!("pid {pid}, alive"),
                (Some(pid), false) => {
                    format!("pid {pid}, dead: the next producer takes it over and repairs")
                }
                (None, _) => "slot since left: the next producer takes it over".to_owned(),
            },
            if waiters { ", with waiters" } else { "" }
        ),
        Some(LockState::Invalid(word)) => {
            format!("corrupted (word {word:#010x}): producers get `corrupted`")
        }
    };
    say(out, &format!("lock         {lock}"))
}
