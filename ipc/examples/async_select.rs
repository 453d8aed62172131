//! tokio: one task `select!`ing over four transports and a timer.
//!
//! `cargo run -p ipc --features tokio --example async_select`
//!
//! The parent opens a posix-shm ring, a FIFO, a POSIX queue and a System V queue as
//! `AsyncReceiver`s (the receivers create the objects and remove them when dropped), and starts
//! one child process per transport (this program again, with `feed SPEC COUNT`), each sending
//! numbered messages and exiting. One task awaits all four and a `tokio::time::interval` in one
//! `tokio::select!`; each `recv` that loses the race is dropped, which loses no message. It
//! checks that every message came once and in order, prints what it got, and exits 0; after
//! 20 s it gives up and exits 1. Nothing is left behind either way: the receivers remove the
//! objects as `main` returns, and the children are killed if still running.

use std::process::{Child, Command};
use std::time::Duration;

use ipc::{AsyncReceiver, Error, Sender};

/// Messages each child sends.
const COUNT: u64 = 1000;
/// How long the whole run may take before it is a failure.
const GIVE_UP: Duration = Duration::from_secs(20);

type Failure = Box<dyn std::error::Error>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("feed") {
        return feed(&args[2], args[3].parse()?);
    }
    let pid = std::process::id();
    let specs = [
        format!("posix-shm:/ipc-async-select-{pid}?capacity=16KiB"),
        format!("fifo:/tmp/ipc-async-select-{pid}.fifo?message_size=256"),
        format!("posix-mq:/ipc-async-select-{pid}?capacity=8&message_size=256"),
        // A key made of "AS" and the pid, so two runs do not share a queue.
        format!(
            "sysv-mq:key={:#x}?capacity=8&message_size=256",
            0x4153_0000 | (pid & 0xffff)
        ),
    ];
    let mut transports = Vec::new();
    for spec in &specs {
        transports.push(Transport::open(spec).await?);
    }
    let mut feeders = Feeders(Vec::new());
    for spec in &specs {
        feeders.0.push(
            Command::new(std::env::current_exe()?)
                .args(["feed", spec, &COUNT.to_string()])
                .spawn()?,
        );
    }

    match tokio::time::timeout(GIVE_UP, receive_all(&mut transports)).await {
        Ok(received) => received?,
        Err(_) => {
            let got: Vec<String> = transports.iter().map(Transport::summary).collect();
            return Err(format!("gave up after {GIVE_UP:?}: {}", got.join(", ")).into());
        }
    }
    // Each child exits once its messages are taken: reap them, within a bound too.
    tokio::time::timeout(GIVE_UP, feeders.wait_all())
        .await
        .map_err(|_| "a feeder did not exit")??;
    for transport in &transports {
        println!("{}", transport.summary());
    }
    Ok(())
}

/// One transport: its receiver and what came from it.
struct Transport {
    kind: ipc::Transport,
    rx: AsyncReceiver,
    buf: Vec<u8>,
    /// The number the next message must carry: messages so far.
    next: u64,
    /// Whether it is finished: all its messages taken (and, for the connected ones, the sender
    /// seen to leave).
    done: bool,
}

impl Transport {
    async fn open(spec: &str) -> Result<Transport, Failure> {
        let spec: ipc::TransportSpec = spec.parse()?;
        let rx = ipc::open_async_receiver_spec(&spec).await?;
        Ok(Transport {
            kind: spec.transport,
            buf: vec![0; rx.max_message_size()],
            rx,
            next: 0,
            done: false,
        })
    }

    /// Takes the outcome of one `recv`.
    fn take(&mut self, got: ipc::Result<usize>) -> Result<(), Failure> {
        match got {
            Ok(len) => {
                let seq: u64 = std::str::from_utf8(&self.buf[..len])?.parse()?;
                if seq != self.next {
                    let what = if seq < self.next {
                        "duplicated"
                    } else {
                        "missing"
                    };
                    return Err(format!(
                        "{}: got {seq}, expected {} ({what})",
                        self.kind, self.next
                    )
                    .into());
                }
                self.next += 1;
                // The queues keep no trace of a sender that left: the count says they are done.
                if self.next == COUNT
                    && matches!(self.kind, ipc::Transport::PosixMq | ipc::Transport::SysvMq)
                {
                    self.done = true;
                }
            }
            // A ring or FIFO whose sender finished: nothing more will come from it.
            Err(Error::Disconnected) if self.next == COUNT => self.done = true,
            Err(Error::Disconnected) => {
                return Err(
                    format!("{}: sender gone after {} messages", self.kind, self.next).into(),
                );
            }
            Err(e) => return Err(format!("{}: {e}", self.kind).into()),
        }
        Ok(())
    }

    fn summary(&self) -> String {
        format!(
            "{:>9}: {} of {COUNT} messages, in order",
            self.kind.to_string(),
            self.next
        )
    }
}

/// Receives from all four transports in one task until every one is done, with a timer
/// showing progress meanwhile.
async fn receive_all(transports: &mut [Transport]) -> Result<(), Failure> {
    let [ring, fifo, posix_mq, sysv_mq] = transports else {
        return Err("four transports".into());
    };
    let mut timer = tokio::time::interval(Duration::from_millis(250));
    let mut ticks = 0u32;
    while !(ring.done && fifo.done && posix_mq.done && sysv_mq.done) {
        // Each branch borrows its own receiver and buffer; the branches that lose are dropped,
        // and a dropped `recv` has taken nothing.
        tokio::select! {
            got = ring.rx.recv(&mut ring.buf), if !ring.done => ring.take(got)?,
            got = fifo.rx.recv(&mut fifo.buf), if !fifo.done => fifo.take(got)?,
            got = posix_mq.rx.recv(&mut posix_mq.buf), if !posix_mq.done => posix_mq.take(got)?,
            got = sysv_mq.rx.recv(&mut sysv_mq.buf), if !sysv_mq.done => sysv_mq.take(got)?,
            _ = timer.tick() => {
                ticks += 1;
                // The first tick is at once; later ones show progress.
                if ticks > 1 {
                    println!(
                        "tick {ticks}: ring {} fifo {} posix-mq {} sysv-mq {}",
                        ring.next, fifo.next, posix_mq.next, sysv_mq.next
                    );
                }
            }
        }
    }
    Ok(())
}

/// The feeding children; killed if still running when dropped (the parent gave up).
struct Feeders(Vec<Child>);

impl Feeders {
    /// Reaps every child, checking that it succeeded. They are exiting already (each one's
    /// messages are all taken), so a look every 10 ms ends soon; the caller bounds it.
    async fn wait_all(&mut self) -> Result<(), Failure> {
        let mut poll = tokio::time::interval(Duration::from_millis(10));
        for child in &mut self.0 {
            let status = loop {
                if let Some(status) = child.try_wait()? {
                    break status;
                }
                poll.tick().await;
            };
            if !status.success() {
                return Err(format!("feeder {} failed: {status}", child.id()).into());
            }
        }
        Ok(())
    }
}

impl Drop for Feeders {
    fn drop(&mut self) {
        for child in &mut self.0 {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

/// A child: sends `count` numbered messages on `spec`, then exits.
fn feed(spec: &str, count: u64) -> Result<(), Failure> {
    let mut tx = ipc::open_sender(spec)?;
    for seq in 0..count {
        tx.send_timeout(seq.to_string().as_bytes(), Duration::from_secs(10))?;
    }
    Ok(())
}
