//! `ipc recv SPEC... [--count N] [--timeout DURATION] [--label]`.

use std::io::{self, Write};
use std::time::Duration;

use ipc::{Key, Receiver, Wait, WaitSet};

use crate::failure::{Context, Failure, parse_duration_arg, parse_spec};

/// Receive messages and print each on its own line.
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
}

pub fn run(args: Args) -> Result<(), Failure> {
    if args.specs.len() > 1 || args.label {
        return run_set(&args);
    }
    let spec = parse_spec(&args.specs[0])?;
    let mut rx = ipc::open_receiver_spec(&spec).context(|| format!("opening {spec}"))?;
    let mut buf = vec![0; rx.max_message_size()];
    let mut out = io::stdout().lock();
    let mut received = 0u64;
    while args.count.is_none_or(|n| received < n) {
        let wait = args.timeout.map_or(Wait::Forever, Wait::timeout);
        let len = match rx.recv_with(&mut buf, wait) {
            Ok(len) => len,
            Err(ipc::Error::Disconnected) => {
                return match args.count {
                    None => Ok(()),
                    Some(n) => Err(Failure::Runtime(format!(
                        "the sender disconnected after {received} of {n} messages"
                    ))),
                };
            }
            Err(ipc::Error::Timeout) => {
                let after = args
                    .timeout
                    .map_or(String::new(), |t| format!(" after {t:?}"));
                return Err(Failure::Timeout(format!(
                    "timed out{after} waiting for message {}",
                    received + 1
                )));
            }
            Err(e) => return Err(Failure::context("receiving", e)),
        };
        received += 1;
        // The reader of our output is gone (`ipc recv ... | head -1`): nobody wants more, so
        // stop receiving. We only learn it by writing, so this message, already taken off the
        // transport, is lost (whole, or its tail): exit 1, quietly, so that a pipeline with
        // `pipefail` learns it; `--count` is how to take no more than is wanted.
        print_message(&mut out, &buf[..len]).map_err(|e| match Failure::stdout(e) {
            Failure::Closed { .. } => Failure::Closed { lost: true },
            other => other,
        })?;
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
            Err(ipc::Error::Timeout) => {
                let after = args
                    .timeout
                    .map_or(String::new(), |t| format!(" after {t:?}"));
                return Err(Failure::Timeout(format!(
                    "timed out{after} waiting for message {}",
                    received + 1
                )));
            }
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
        let printed = if args.label {
            write!(out, "{}\t", label_of(key)).and_then(|()| print_message(&mut out, &buf[..len]))
        } else {
            print_message(&mut out, &buf[..len])
        };
        // As in `run`: the message was taken off its transport, and is lost.
        printed.map_err(|e| match Failure::stdout(e) {
            Failure::Closed { .. } => Failure::Closed { lost: true },
            other => other,
        })?;
    }
    Ok(())
}

/// Flushes each message so that a consumer of our output sees it as soon as it arrived.
fn print_message(out: &mut impl Write, msg: &[u8]) -> io::Result<()> {
    out.write_all(msg)?;
    out.write_all(b"\n")?;
    out.flush()
}
