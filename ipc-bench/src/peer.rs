//! `ipc bench-peer`: the second process of a bench run, started by `ipc bench`.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use ipc::{Receiver, Sender};
use nix::sys::signal::Signal;

use crate::error::{Error, doing};
use crate::protocol::{
    Api, BATCH, MEASURED, PeerReport, Role, Variant, encode_count, recv_message,
};
use crate::transport::BenchTransport;
use crate::transports::lookup;
use crate::{cpu, interrupt, readiness};

/// The command line of `ipc bench-peer`, which `ipc bench` writes (`command`).
#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    transport: String,
    #[arg(long, value_enum)]
    variant: Variant,
    #[arg(long, value_enum, default_value_t = Api::Blocking)]
    api: Api,
    #[arg(long, value_enum)]
    role: Role,
    #[arg(long)]
    size: usize,
    /// Spec of the end to receive on, as the transport's `connect` wrote it.
    #[arg(long)]
    rx: String,
    /// Spec of the end to send on.
    #[arg(long)]
    tx: String,
    #[arg(long)]
    cpu: Option<usize>,
    /// The `ipc bench` process, which this peer must not outlive.
    #[arg(long)]
    parent: u32,
}

/// The command line of a peer, without its transport ends (`BenchTransport::connect` adds
/// them).
pub fn command(
    transport: &dyn BenchTransport,
    variant: Variant,
    api: Api,
    role: Role,
    size: usize,
    cpu: Option<usize>,
) -> std::io::Result<Command> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("bench-peer")
        .args(["--transport", transport.name()])
        .args(["--variant", &variant.to_string()])
        .args(["--role", &role.to_string()])
        .args(["--size", &size.to_string()])
        .args(["--parent", &std::process::id().to_string()]);
    // Only when it is not the default, so that a blocking peer's command line reads as it
    // always did (`--variant raw --role echo`: what a watching test or person looks for).
    if api != Api::Blocking {
        cmd.args(["--api", &api.to_string()]);
    }
    if let Some(cpu) = cpu {
        cmd.args(["--cpu", &cpu.to_string()]);
    }
    // The peer's stdout is its report to the parent (`Link::finish` reads it), never the
    // parent's stdout, which may be JSON lines; its errors still reach the user.
    cmd.stdin(Stdio::null()).stdout(Stdio::piped());
    Ok(cmd)
}

/// Runs the peer: opens the ends, says it is ready, echoes or sinks until the stream ends,
/// then prints its CPU time for the parent.
pub fn run(args: Args) -> Result<(), Error> {
    interrupt::unblock_in_peer();
    die_with_parent(args.parent)?;
    if let Some(cpu) = args.cpu {
        cpu::pin(cpu);
    }
    let transport = lookup(&args.transport)?;
    let (rx, tx) = match args.variant {
        // Receiving end first: the parent's sender may be waiting for it (FIFO).
        Variant::Ours => transport
            .open_ours_peer(&args.rx, &args.tx)
            .map_err(doing(|| format!("opening {} and {}", args.rx, args.tx)))?,
        Variant::Raw => transport
            .open_raw_peer(args.size, &args.rx, &args.tx)
            .map_err(doing(|| "opening the raw baseline"))?,
    };
    // Both processes go through the same path: a readiness path measured against a blocking
    // peer would say little of what two async programs get.
    let (mut tx, mut rx) = readiness::wrap(args.api, tx, rx)
        .map_err(doing(|| format!("driving the ends ({})", args.api)))?;
    let mut buf = vec![0; rx.max_message_size().max(args.size)];
    if args.api == Api::Batch {
        // Room for a whole batch, within reason: one that does not fit waits for the next call.
        buf.resize(buf.len().max((args.size * BATCH).min(BATCH_BYTES)), 0);
    }
    let msg = vec![0; args.size];
    tx.send(&msg)
        .map_err(doing(|| "sending the ready message"))?;
    let mut clock = Clock::default();
    match args.role {
        Role::Echo => echo(&mut *rx, &mut *tx, &mut buf, &mut clock),
        Role::Sink if args.api == Api::Batch => sink(&mut *tx, msg, &mut clock, |clock| {
            recv_batch(&mut *rx, &mut buf, clock)
        }),
        Role::Sink => sink(&mut *tx, msg, &mut clock, |clock| {
            recv_message(&mut *rx, &mut buf).map(|len| {
                clock.received(&buf[..len]);
                (1, false)
            })
        }),
    }
    .map_err(doing(|| format!("bench peer ({})", args.role)))?;
    // Read by `Link::finish`; a parent that is gone no longer needs it (`Error::Closed`).
    writeln!(std::io::stdout().lock(), "{}", clock.report().line()).map_err(Error::stdout)
}

/// The peer's CPU clock and message count over the measured interval, which starts at the
/// first message marked [`MEASURED`].
#[derive(Default)]
struct Clock {
    started: Option<Duration>,
    messages: u64,
    stopped: Option<PeerReport>,
}

impl Clock {
    #[inline]
    fn received(&mut self, msg: &[u8]) {
        if self.started.is_none() {
            if msg.first() != Some(&MEASURED) {
                return;
            }
            self.started = Some(cpu::process_time());
        }
        self.messages += 1;
    }

    /// Ends the measured interval: at the end of the stream.
    fn stop(&mut self) {
        self.stopped = Some(self.report());
    }

    /// The measured interval so far, or as [stopped](Clock::stop).
    fn report(&self) -> PeerReport {
        self.stopped.unwrap_or_else(|| PeerReport {
            cpu: self
                .started
                .map_or(Duration::ZERO, |t| cpu::process_time().saturating_sub(t)),
            messages: self.messages,
        })
    }
}

/// Has the kernel kill this process when `ipc bench` exits. A pipe's reader sees its writer
/// die; a message queue's does not, so a peer blocked on a queue would otherwise outlive a
/// killed `ipc bench` for good.
fn die_with_parent(parent: u32) -> Result<(), Error> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .map_err(|e| Error::Runtime(format!("bench peer: prctl(PR_SET_PDEATHSIG): {e}")))?;
    // The parent may have died before the call above, which then never fires.
    if std::os::unix::process::parent_id() != parent {
        return Err(Error::Runtime(
            "bench peer: the `ipc bench` process that started it is gone".into(),
        ));
    }
    Ok(())
}

fn echo(
    rx: &mut dyn Receiver,
    tx: &mut dyn Sender,
    buf: &mut [u8],
    clock: &mut Clock,
) -> ipc::Result<()> {
    loop {
        match recv_message(rx, buf) {
            Ok(len) => {
                clock.received(&buf[..len]);
                tx.send(&buf[..len])?;
            }
            Err(ipc::Error::Disconnected) => {
                clock.stop();
                return Ok(());
            }
            Err(e) => return Err(e),
        }
    }
}

/// Counts the messages `recv` takes (each seen by the clock) until the end of the stream
/// (`Disconnected`, or `recv` saying that it met it after the messages it counted), then sends
/// the count back.
fn sink(
    tx: &mut dyn Sender,
    mut ack: Vec<u8>,
    clock: &mut Clock,
    mut recv: impl FnMut(&mut Clock) -> ipc::Result<(u64, bool)>,
) -> ipc::Result<()> {
    let mut count = 0u64;
    loop {
        match recv(clock) {
            Ok((n, ended)) => {
                count += n;
                if ended {
                    break;
                }
            }
            Err(ipc::Error::Disconnected) => break,
            Err(e) => return Err(e),
        }
    }
    // The clock stops at the end of the stream: the ack is the parent's business.
    clock.stop();
    encode_count(count, &mut ack);
    tx.send(&ack)
}

/// Most bytes of a batch the peer receives at once: 32 MiB messages do not come 32 at a time.
const BATCH_BYTES: usize = 4 << 20;

/// One `recv_batch` call: how many messages it took, each seen by the clock, and whether an
/// empty message among them ended the stream (nothing follows it).
fn recv_batch(
    rx: &mut dyn Receiver,
    buf: &mut [u8],
    clock: &mut Clock,
) -> ipc::Result<(u64, bool)> {
    let mut lens = [0; BATCH];
    let n = rx.recv_batch(buf, &mut lens, ipc::Wait::Forever)?;
    let mut start = 0;
    for (i, &len) in lens[..n].iter().enumerate() {
        if len == 0 {
            return Ok((i as u64, true));
        }
        clock.received(&buf[start..start + len]);
        start += len;
    }
    Ok((n as u64, false))
}
