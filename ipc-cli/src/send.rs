//! `ipc send SPEC [MESSAGE...]`.

use std::ffi::OsString;
use std::io::{self, BufRead};
use std::os::unix::ffi::OsStrExt;

use ipc::Sender;

use crate::failure::{Context, Failure, parse_spec};

/// Send messages: each MESSAGE, or else each line of standard input (without its newline).
#[derive(clap::Args)]
pub struct Args {
    /// Where to send, e.g. `fifo:/tmp/app.fifo`, `posix-shm:/ticks` or `pipe:fd=1`.
    spec: String,
    /// The messages, one each; without any, each line of standard input is one message.
    #[arg(value_name = "MESSAGE")]
    messages: Vec<OsString>,
}

pub fn run(args: Args) -> Result<(), Failure> {
    let spec = parse_spec(&args.spec)?;
    let mut tx = ipc::open_sender_spec(&spec).context(|| format!("opening {spec}"))?;
    if args.messages.is_empty() {
        send_lines(&mut tx, io::stdin().lock())
    } else {
        for (i, msg) in args.messages.iter().enumerate() {
            tx.send(msg.as_bytes())
                .context(|| format!("sending message {}", i + 1))?;
        }
        Ok(())
    }
}

/// Messages are bytes, so lines are split on `\n` alone and need not be UTF-8.
fn send_lines(tx: &mut impl Sender, mut input: impl BufRead) -> Result<(), Failure> {
    let mut line = Vec::new();
    for number in 1.. {
        line.clear();
        let read = input
            .read_until(b'\n', &mut line)
            .map_err(|e| Failure::Runtime(format!("reading standard input: {e}")))?;
        if read == 0 {
            break;
        }
        let msg = line.strip_suffix(b"\n").unwrap_or(&line);
        tx.send(msg).context(|| format!("sending line {number}"))?;
    }
    Ok(())
}
