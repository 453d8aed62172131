//! `ipc send SPEC [MESSAGE...] [--format lines|raw|hex] [--priority N | --type N]`.

use std::ffi::OsString;
use std::io::{self, BufRead, Read};
use std::os::unix::ffi::OsStrExt;

use ipc::posix::mq::MqSender;
use ipc::sysv::msg::MsgSender;
use ipc::{Sender, Transport, TransportSpec, Wait};

use crate::failure::{Context, Failure, parse_spec};
use crate::format::{Input, unhex};

/// Send messages: each MESSAGE, or else standard input read as --format says (by default each
/// line, without its newline, is one message).
#[derive(clap::Args)]
pub struct Args {
    /// Where to send, e.g. `fifo:/tmp/app.fifo`, `posix-shm:/ticks` or `pipe:fd=1`.
    spec: String,
    /// The messages, one each; without any, standard input is read as --format says.
    #[arg(value_name = "MESSAGE")]
    messages: Vec<OsString>,
    /// How standard input holds messages: `lines` (one per line), `raw` (all of it is one
    /// message, any bytes), `hex` (one per line in hex digits, as `ipc recv --format hex`
    /// prints).
    #[arg(long, value_enum, default_value = "lines")]
    format: Input,
    /// posix-mq only: the priority of every message (0..=32767; higher is received first).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=32767))]
    priority: Option<u32>,
    /// sysv-mq only: the `mtype` of every message (at least 1; default 1, as a plain send).
    #[arg(long = "type", value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    mtype: Option<i64>,
}

/// The endpoint, concrete where a flag needs what only that transport has.
enum Endpoint {
    Any(Box<dyn Sender>),
    PosixMq(MqSender, u32),
    SysvMq(MsgSender, i64),
}

impl Endpoint {
    fn open(spec: &TransportSpec, args: &Args) -> Result<Endpoint, Failure> {
        let only = |flag: &str, transport: &str| {
            Failure::Usage(format!(
                "{flag} applies to {transport} only, not to {} (`{spec}`)",
                spec.transport
            ))
        };
        if args.priority.is_some() && spec.transport != Transport::PosixMq {
            return Err(only("--priority", "posix-mq"));
        }
        if args.mtype.is_some() && spec.transport != Transport::SysvMq {
            return Err(only("--type", "sysv-mq"));
        }
        let what = || format!("opening {spec}");
        Ok(match (args.priority, args.mtype) {
            (Some(prio), _) => Endpoint::PosixMq(MqSender::open(spec).context(what)?, prio),
            (_, Some(mtype)) => Endpoint::SysvMq(MsgSender::open(spec).context(what)?, mtype),
            _ => Endpoint::Any(ipc::open_sender_spec(spec).context(what)?),
        })
    }

    fn send(&mut self, msg: &[u8]) -> ipc::Result<()> {
        match self {
            Endpoint::Any(tx) => tx.send(msg),
            Endpoint::PosixMq(tx, prio) => tx.send_priority(msg, *prio, Wait::Forever),
            Endpoint::SysvMq(tx, mtype) => tx.send_type(msg, *mtype, Wait::Forever),
        }
    }
}

pub fn run(args: Args) -> Result<(), Failure> {
    let spec = parse_spec(&args.spec)?;
    if !args.messages.is_empty() && args.format != Input::Lines {
        return Err(Failure::Usage(
            "--format says how standard input holds messages; with MESSAGE arguments, each \
             argument is one message: give one or the other"
                .into(),
        ));
    }
    let mut tx = Endpoint::open(&spec, &args)?;
    if !args.messages.is_empty() {
        for (i, msg) in args.messages.iter().enumerate() {
            tx.send(msg.as_bytes())
                .context(|| format!("sending message {}", i + 1))?;
        }
        return Ok(());
    }
    let mut input = io::stdin().lock();
    match args.format {
        Input::Lines => send_lines(&mut tx, input, |line, _| Ok(line.to_vec())),
        Input::Hex => send_lines(&mut tx, input, |line, number| {
            unhex(line).ok_or_else(|| {
                Failure::Runtime(format!(
                    "line {number} of standard input is not hex digits (two per byte)"
                ))
            })
        }),
        Input::Raw => {
            let mut msg = Vec::new();
            input
                .read_to_end(&mut msg)
                .map_err(|e| Failure::Runtime(format!("reading standard input: {e}")))?;
            tx.send(&msg).context(|| "sending standard input")
        }
    }
}

/// Messages are bytes, so lines are split on `\n` alone and need not be UTF-8.
fn send_lines(
    tx: &mut Endpoint,
    mut input: impl BufRead,
    decode: impl Fn(&[u8], u64) -> Result<Vec<u8>, Failure>,
) -> Result<(), Failure> {
    let mut line = Vec::new();
    for number in 1.. {
        line.clear();
        let read = input
            .read_until(b'\n', &mut line)
            .map_err(|e| Failure::Runtime(format!("reading standard input: {e}")))?;
        if read == 0 {
            break;
        }
        let msg = decode(line.strip_suffix(b"\n").unwrap_or(&line), number)?;
        tx.send(&msg).context(|| format!("sending line {number}"))?;
    }
    Ok(())
}
