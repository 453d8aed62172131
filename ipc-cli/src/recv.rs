//! `ipc recv SPEC... [--count N] [--timeout DURATION] [--label] [--format F] [--show WHAT]`.

use std::io;
use std::time::Duration;

use ipc::posix::mq::MqReceiver;
use ipc::sysv::msg::{MsgReceiver, Selector};
use ipc::{Key, Receiver, Transport, TransportSpec, Wait, WaitSet};

use crate::failure::{Context, Failure, parse_duration_arg, parse_spec};
use crate::format::{self, Message, Output, PrintError, Tag};

/// Receive messages and print each as --format says (by default on its own line).
///
/// With several transport strings, prints from whichever has a message, taking turns (`ipc recv
/// fifo:/tmp/a posix-shm:/b --count 10`); --count and --timeout then count all of them.
///
/// Without --count, receives until the sender disconnects (a posix-mq queue has no connection:
/// until the queue is removed; a posix-shm ring: once every sender that attached has left);
/// with several transports, until every one has.
/// If the reader of the output leaves, stops and exits 1 without a word: the message it was
/// printing had been taken off the transport and is lost (use --count to take only what is
/// wanted).
#[derive(clap::Args)]
pub struct Args {
    /// Where to receive from, e.g. `fifo:/tmp/app.fifo`, `posix-shm:/ticks` or `pipe:fd=0`;
    /// several: from whichever is ready.
    #[arg(required = true, value_name = "SPEC")]
    specs: Vec<String>,
    /// Exit after this many messages.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Longest wait for each next message (e.g. 500ms, 5s); exit code 3 when it passes.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_arg)]
    timeout: Option<Duration>,
    /// Print each message after the transport string it came from and a tab.
    #[arg(long)]
    label: bool,
    /// How to print messages: `lines` (one per line; a message containing a newline is an
    /// error), `raw` (the bytes exactly, nothing added: needs --count 1, except from a byte
    /// stream with `framing=raw`, which has no messages to tell apart), `hex` (one line of hex
    /// digits each), `json` (one object each: {"len":N,"hex":"…"}, with "priority" or "type"
    /// where the transport has one). Default: `raw` when every transport string says
    /// `framing=raw`, else `lines`.
    #[arg(long, value_enum)]
    format: Option<Output>,
    /// Print each message's priority (posix-mq) or type (sysv-mq) and a tab before it; one
    /// transport string only.
    #[arg(long, value_enum, value_name = "WHAT")]
    show: Option<Show>,
}

/// What `--show` prints before each message.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Show {
    /// The posix-mq priority.
    Priority,
    /// The sysv-mq `mtype`.
    Type,
}

/// The endpoint of one transport string, concrete where the transport tags its messages, so
/// that their priority or type can be shown.
enum Source {
    Any(Box<dyn Receiver>),
    PosixMq(MqReceiver),
    SysvMq(MsgReceiver),
}

impl Source {
    fn open(spec: &TransportSpec) -> Result<Source, Failure> {
        let what = || format!("opening {spec}");
        Ok(match spec.transport {
            Transport::PosixMq => Source::PosixMq(MqReceiver::open(spec).context(what)?),
            Transport::SysvMq => Source::SysvMq(MsgReceiver::open(spec).context(what)?),
            _ => Source::Any(ipc::open_receiver_spec(spec).context(what)?),
        })
    }

    fn max_message_size(&self) -> usize {
        match self {
            Source::Any(rx) => rx.max_message_size(),
            Source::PosixMq(rx) => rx.max_message_size(),
            Source::SysvMq(rx) => rx.max_message_size(),
        }
    }

    fn recv(&mut self, buf: &mut [u8], wait: Wait) -> ipc::Result<(usize, Option<Tag>)> {
        match self {
            Source::Any(rx) => rx.recv_with(buf, wait).map(|len| (len, None)),
            Source::PosixMq(rx) => rx
                .recv_priority(buf, wait)
                .map(|(len, p)| (len, Some(Tag::Priority(p)))),
            Source::SysvMq(rx) => rx
                .recv_type(buf, Selector::Any, wait)
                .map(|(len, t)| (len, Some(Tag::Type(t)))),
        }
    }
}

/// Whether every transport string is a byte stream without boundaries (`framing=raw`): its
/// chunks printed back to back are the stream itself.
fn raw_streams(args: &Args) -> bool {
    args.specs.iter().all(|text| {
        text.parse::<TransportSpec>()
            .is_ok_and(|spec| spec.options.framing == Some(ipc::Framing::Raw))
    })
}

/// The output format: as asked, or the one that suits the transports.
fn output(args: &Args) -> Output {
    args.format.unwrap_or(if raw_streams(args) {
        Output::Raw
    } else {
        Output::Lines
    })
}

/// Refuses combinations of flags that cannot work, before anything is opened.
fn check_flags(args: &Args) -> Result<(), Failure> {
    if output(args) == Output::Raw {
        if args.count != Some(1) && !raw_streams(args) {
            return Err(Failure::Usage(
                "--format raw prints one message's bytes with nothing around them, so it needs \
                 --count 1 (for several messages use --format hex or json)"
                    .into(),
            ));
        }
        if args.label || args.show.is_some() {
            return Err(Failure::Usage(
                "--format raw prints the bytes alone; for --label or --show use --format json"
                    .into(),
            ));
        }
    }
    if let Some(show) = args.show {
        if args.specs.len() > 1 {
            return Err(Failure::Usage(
                "--show works with one transport string (the wait set of several does not \
                 keep priorities or types)"
                    .into(),
            ));
        }
        let spec = parse_spec(&args.specs[0])?;
        let (what, transport) = match show {
            Show::Priority => ("priority", Transport::PosixMq),
            Show::Type => ("type", Transport::SysvMq),
        };
        if spec.transport != transport {
            return Err(Failure::Usage(format!(
                "--show {what} applies to {transport} only, not to {} (`{spec}`)",
                spec.transport
            )));
        }
    }
    Ok(())
}

pub fn run(args: Args) -> Result<(), Failure> {
    check_flags(&args)?;
    if args.specs.len() > 1 || args.label {
        return run_set(&args);
    }
    let spec = parse_spec(&args.specs[0])?;
    let mut rx = Source::open(&spec)?;
    let mut buf = vec![0; rx.max_message_size()];
    let format = output(&args);
    let mut out = io::stdout().lock();
    let mut received = 0u64;
    while args.count.is_none_or(|n| received < n) {
        let wait = args.timeout.map_or(Wait::Forever, Wait::timeout);
        let (len, tag) = match rx.recv(&mut buf, wait) {
            Ok(got) => got,
            Err(ipc::Error::Disconnected) => {
                return match args.count {
                    None => Ok(()),
                    Some(n) => Err(Failure::Runtime(format!(
                        "the sender disconnected after {received} of {n} messages"
                    ))),
                };
            }
            Err(ipc::Error::Timeout) => return Err(timed_out(&args, received)),
            Err(e) => return Err(Failure::context("receiving", e)),
        };
        received += 1;
        // The reader of our output is gone (`ipc recv ... | head -1`): nobody wants more, so
        // stop receiving. We only learn it by writing, so this message, already taken off the
        // transport, is lost (whole, or its tail): exit 1, quietly, so that a pipeline with
        // `pipefail` learns it; `--count` is how to take no more than is wanted.
        let prefix = match (args.show, tag) {
            (Some(_), Some(Tag::Priority(p))) => vec![p.to_string()],
            (Some(_), Some(Tag::Type(t))) => vec![t.to_string()],
            _ => Vec::new(),
        };
        let msg = Message {
            bytes: &buf[..len],
            tag,
            prefix,
            from: None,
        };
        format::print(&mut out, format, &msg).map_err(|e| lost(e, received))?;
    }
    Ok(())
}

/// Receives from several transports through one [`WaitSet`].
fn run_set(args: &Args) -> Result<(), Failure> {
    let mut set = WaitSet::new();
    let mut labels: Vec<(Key, String)> = Vec::new();
    let mut max = 0;
    for text in &args.specs {
        let spec = parse_spec(text)?;
        let rx = ipc::open_receiver_spec(&spec).context(|| format!("opening {spec}"))?;
        max = max.max(rx.max_message_size());
        let key = set
            .add_receiver(rx)
            .map_err(|e| Failure::context(format!("waiting on {spec}"), e))?;
        labels.push((key, spec.to_string()));
    }
    let label_of = |key: Key| {
        labels
            .iter()
            .find(|(k, _)| *k == key)
            .map_or("", |(_, l)| l.as_str())
    };
    let mut buf = vec![0; max];
    let format = output(args);
    let mut out = io::stdout().lock();
    let mut received = 0u64;
    while args.count.is_none_or(|n| received < n) {
        if set.is_empty() {
            return match args.count {
                None => Ok(()),
                Some(n) => Err(Failure::Runtime(format!(
                    "every sender disconnected after {received} of {n} messages"
                ))),
            };
        }
        let wait = args.timeout.map_or(Wait::Forever, Wait::timeout);
        let (key, got) = match set.recv(&mut buf, wait) {
            Ok(found) => found,
            Err(ipc::Error::Timeout) => return Err(timed_out(args, received)),
            Err(e) => return Err(Failure::context("waiting for messages", e)),
        };
        let len = match got {
            Ok(len) => len,
            Err(ipc::Error::Disconnected) => {
                set.remove(key);
                continue;
            }
            Err(e) => {
                return Err(Failure::context(
                    format!("receiving from {}", label_of(key)),
                    e,
                ));
            }
        };
        received += 1;
        let from = args.label.then(|| label_of(key));
        let msg = Message {
            bytes: &buf[..len],
            tag: None,
            prefix: from.iter().map(|l| l.to_string()).collect(),
            from,
        };
        // As in `run`: the message was taken off its transport, and is lost.
        format::print(&mut out, format, &msg).map_err(|e| lost(e, received))?;
    }
    Ok(())
}

/// No message `received + 1` within `--timeout`.
fn timed_out(args: &Args, received: u64) -> Failure {
    let after = args
        .timeout
        .map_or(String::new(), |t| format!(" after {t:?}"));
    Failure::Timeout(format!(
        "timed out{after} waiting for message {}",
        received + 1
    ))
}

/// The failure of printing message number `number`, which was taken off its transport and is
/// lost: said so when it cannot be printed in the format asked for; quietly (exit 1) when the
/// reader of our output left.
fn lost(e: PrintError, number: u64) -> Failure {
    match e {
        PrintError::Unprintable(why) => Failure::Runtime(format!(
            "message {number} cannot be printed ({why}); it has been taken off the transport"
        )),
        PrintError::Io(e) => match Failure::stdout(e) {
            Failure::Closed { .. } => Failure::Closed { lost: true },
            other => other,
        },
    }
}
