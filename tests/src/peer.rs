//! The other process of the cross-process tests (see [`process`](crate::process)), as a
//! library: the `ipc-test-peer` binary of this crate is its [`main`], and so is the peer binary
//! of a crate outside the workspace that runs the suite against its own transport, after
//! registering that transport's scheme:
//!
//! ```text
//! fn main() -> std::process::ExitCode {
//!     memfd_transport::register().expect("registering memfd:");
//!     ipc_tests::peer::main()
//! }
//! ```
//!
//! Usage: `PEER ROLE ARGS...` with the transport string in `$IPC_TEST_SPEC` (the `mutex-*` and
//! `condvar-*` roles take a POSIX shared-memory name instead), and how the endpoint waits in
//! `$IPC_TEST_VIA` (see [`via`](crate::via); unset: the transport's own calls). Reports
//! progress on stdout (one line per step), takes commands on stdin, explains failures on
//! stderr. Exit status: 0 when every check passed, 1 when a check failed, 2 on misuse.

use std::io::{BufRead, Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use crate::drive;
use crate::message::{self, StreamCheck};
use crate::process::SPEC_ENV;
use crate::signals;
use ipc::{Error, Receiver, Sender, Wait};

type Outcome = Result<(), String>;

/// Runs the role named by the first argument, with the rest of the arguments, and tells how it
/// went by the exit code (see the [module](self)).
pub fn main() -> ExitCode {
    let mut argv = std::env::args();
    // Named in messages as its file is, whoever's peer binary this is.
    let program = argv
        .next()
        .as_deref()
        .and_then(|p| {
            std::path::Path::new(p)
                .file_name()?
                .to_str()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "peer".to_owned());
    let args: Vec<String> = argv.collect();
    let Some(role) = args.first() else {
        eprintln!("usage: {program} ROLE ARGS... (transport string in ${SPEC_ENV})");
        return ExitCode::from(2);
    };
    let num = |i: usize| -> u64 {
        args.get(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("{role}: argument {i} must be a number"))
    };
    let word = |i: usize| args.get(i).map_or("", String::as_str);
    let outcome = match role.as_str() {
        "recv" => recv(num(1), num(2) as usize, word(3)),
        "send" => send(num(1), num(2) as u32, word(3) == "on-go"),
        "send-hold" => send_hold(num(1)),
        "send-batches" => send_batches(num(1), num(2)),
        "recv-hold" => recv_hold(),
        "sigpipe-send" => sigpipe_send(word(1)),
        "signal-recv" => signal_recv(word(1), args.get(2).and_then(|a| a.parse().ok())),
        "signal-send" => signal_send(word(1), args.get(2).and_then(|a| a.parse().ok())),
        "wait-end" => wait_end(word(1)),
        "send-priorities" => send_priorities(&args[1..]),
        "mutex-hold" => sync_peer::mutex_hold(word(1)),
        "mutex-lock" => sync_peer::mutex_lock(word(1)),
        "condvar-wait" => sync_peer::condvar_wait(word(1)),
        _ => {
            eprintln!("unknown role {role}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("{program} {}: {why}", args.join(" "));
            ExitCode::from(1)
        }
    }
}

fn spec() -> Result<String, String> {
    std::env::var(SPEC_ENV).map_err(|_| format!("${SPEC_ENV} is not set"))
}

fn open_sender() -> Result<Box<dyn Sender>, String> {
    let spec = spec()?;
    crate::via::open_sender(&spec).map_err(|e| format!("open_sender({spec}): {e}"))
}

fn open_receiver() -> Result<Box<dyn Receiver>, String> {
    let spec = spec()?;
    crate::via::open_receiver(&spec).map_err(|e| format!("open_receiver({spec}): {e}"))
}

/// Tells the test how far we got.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    // If the test is gone, so is the point of carrying on; the write error ends us below.
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .unwrap_or_else(|e| {
            eprintln!("stdout: {e}");
            std::process::exit(2)
        });
}

/// Blocks until the test closes our stdin.
fn wait_for_eof() {
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}

/// Blocks until the test writes `line` on our stdin.
fn wait_for(line: &str) -> Outcome {
    let mut got = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut got)
        .map_err(|e| format!("stdin: {e}"))?;
    if got.trim() == line {
        Ok(())
    } else {
        Err(format!("expected `{line}` on stdin, got `{}`", got.trim()))
    }
}

/// Receives until the senders are gone; every writer must have sent `per_writer` intact
/// messages, in order. With `end` = `count` (transports that do not show a sender's death),
/// receives exactly the expected messages instead, and then there must be nothing more. With
/// `end` = `paced`, as the first, slowly.
fn recv(per_writer: u64, writers: usize, end: &str) -> Outcome {
    let mut rx = open_receiver()?;
    let mut check = StreamCheck::new(writers);
    match end {
        "" | "disconnected" => drive::drain(&mut *rx, &mut check)?,
        // A reader slower than the writer: 100 µs after each message.
        "paced" => drive::drain_paced(&mut *rx, &mut check, Duration::from_micros(100))?,
        "count" => {
            drive::drain_exact(&mut *rx, &mut check, per_writer * writers as u64)?;
            // The last message is in: every send is done, so anything more is a duplicate.
            match rx.try_recv(&mut vec![0; rx.max_message_size()]) {
                Err(Error::Empty) => {}
                other => {
                    return Err(format!(
                        "after the last message: expected Empty, got {other:?}"
                    ));
                }
            }
        }
        _ => return Err(format!("unknown end {end}")),
    }
    check.finish(per_writer)?;
    say(&format!("ok {}", check.total()));
    Ok(())
}

/// Sends `n` messages as writer `writer`, then exits (closing the sender). With `on_go`, says
/// `ready` once the sender is open and starts only when the test says `go`, so that several
/// writers really write at the same time.
fn send(n: u64, writer: u32, on_go: bool) -> Outcome {
    let mut tx = open_sender()?;
    if on_go {
        say("ready");
        wait_for("go")?;
    }
    drive::send_stream(&mut *tx, writer, n)?;
    say("ok");
    Ok(())
}

/// Sends messages `0..n` of writer 0 (sizes from [`message::size_for`]) in batches of 1 to 32
/// messages, their lengths drawn from `seed`, each by one `send_batch(.., Wait::Forever)`,
/// which must send it all; then says `ok <batches> <messages>` and exits.
fn send_batches(n: u64, seed: u64) -> Outcome {
    let mut tx = open_sender()?;
    let max = tx.max_message_size();
    let mut state = seed;
    let (mut seq, mut batches) = (0, 0u64);
    while seq < n {
        let end = n.min(seq + 1 + message::splitmix64(&mut state) % 32);
        let msgs: Vec<Vec<u8>> = (seq..end)
            .map(|s| {
                let mut msg = Vec::new();
                message::encode(0, s, message::size_for(0, s, max), &mut msg);
                msg
            })
            .collect();
        let batch: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        match tx.send_batch(&batch, Wait::Forever) {
            Ok(sent) if sent == batch.len() => {}
            other => {
                return Err(format!(
                    "send_batch(Forever) of messages {seq}..{end}: {other:?}, expected Ok({})",
                    batch.len()
                ));
            }
        }
        seq = end;
        batches += 1;
    }
    say(&format!("ok {batches} {seq}"));
    Ok(())
}

/// Sends `n` messages, says `sent`, and keeps the sender open until stdin closes (or we are
/// killed).
fn send_hold(n: u64) -> Outcome {
    let mut tx = open_sender()?;
    drive::send_stream(&mut *tx, 0, n)?;
    say("sent");
    wait_for_eof();
    drop(tx);
    Ok(())
}

/// Opens the receiver, says `ready`, and keeps it open (without reading) until stdin closes
/// (or we are killed).
fn recv_hold() -> Outcome {
    let rx = open_receiver()?;
    say("ready");
    wait_for_eof();
    drop(rx);
    Ok(())
}

fn expect_disconnected(what: &str, r: ipc::Result<()>) -> Outcome {
    match r {
        Err(Error::Disconnected) => Ok(()),
        other => Err(format!("{what}: expected Disconnected, got {other:?}")),
    }
}

/// With SIGPIPE at its default action, sends to a transport whose receiver is gone: must get
/// `Disconnected`, not die. `after`: the receiver goes before the send (the test says `go`
/// once it has dropped it); `blocked`: it goes while the send is blocked on a full transport.
fn sigpipe_send(mode: &str) -> Outcome {
    signals::reset_sigpipe().map_err(|e| format!("signal(SIGPIPE, SIG_DFL): {e}"))?;
    let mut tx = open_sender()?;
    let max = tx.max_message_size();
    match mode {
        "after" => {
            say("ready");
            wait_for("go")?;
            expect_disconnected("small send", tx.send(b"into the void"))?;
            expect_disconnected("try_send", tx.try_send(b"again"))?;
            expect_disconnected("largest send", tx.send(&vec![7; max]))?;
        }
        "blocked" => {
            let n = drive::fill(&mut *tx)?;
            say(&format!("full {n}"));
            expect_disconnected("blocked send", tx.send(&vec![7; max.min(1000)]))?;
        }
        _ => return Err(format!("unknown mode {mode}")),
    }
    say("ok");
    Ok(())
}

/// Blocks in a receive while the test pelts us with SIGUSR1 (handled, no SA_RESTART), then
/// reports `ok <signals caught during the call> <elapsed ms>`.
///
/// Modes: `recv` and `recv-timeout` wait for the message the test sends after its barrage;
/// `deadline MS` expects no message and a `Timeout` no earlier than `MS`.
fn signal_recv(mode: &str, ms: Option<u64>) -> Outcome {
    signals::install_counting_handler(libc::SIGUSR1)
        .map_err(|e| format!("sigaction(SIGUSR1): {e}"))?;
    let mut rx = open_receiver()?;
    let mut buf = vec![0; rx.max_message_size()];
    say("ready");
    let before = signals::caught();
    let start = Instant::now();
    let result = match mode {
        "recv" => rx.recv(&mut buf),
        "recv-timeout" => rx.recv_timeout(&mut buf, Duration::from_secs(20)),
        "deadline" => {
            let ms = ms.ok_or("deadline needs a duration in ms")?;
            rx.recv_timeout(&mut buf, Duration::from_millis(ms))
        }
        _ => return Err(format!("unknown mode {mode}")),
    };
    let elapsed = start.elapsed();
    let caught = signals::caught() - before;
    match (mode, result) {
        ("deadline", Err(Error::Timeout)) => {}
        ("deadline", other) => return Err(format!("expected Timeout, got {other:?}")),
        (_, Ok(n)) if buf[..n] == message::probe()[..] => {}
        (_, Ok(n)) => return Err(format!("received a wrong message of {n} bytes")),
        (_, Err(e)) => {
            return Err(format!(
                "{mode} failed after {elapsed:?} and {caught} signals: {e:?}"
            ));
        }
    }
    say(&format!("ok {caught} {}", elapsed.as_millis()));
    Ok(())
}

/// Fills the transport, says `full N`, then blocks in a send while the test pelts us with
/// SIGUSR1; reports `ok <signals caught during the call> <elapsed ms>`.
///
/// Modes: `send` waits for the room the test makes by draining; `deadline MS` is a
/// `send_timeout` that must say `Timeout` no earlier than `MS` (the test does not drain).
fn signal_send(mode: &str, ms: Option<u64>) -> Outcome {
    signals::install_counting_handler(libc::SIGUSR1)
        .map_err(|e| format!("sigaction(SIGUSR1): {e}"))?;
    let mut tx = open_sender()?;
    let n = drive::fill(&mut *tx)?;
    say(&format!("full {n}"));
    let before = signals::caught();
    let mut msg = Vec::new();
    message::encode(0, n, 64, &mut msg);
    let start = Instant::now();
    match mode {
        "" | "send" => tx
            .send(&msg)
            .map_err(|e| format!("blocking send under signals: {e:?}"))?,
        "deadline" => {
            let ms = ms.ok_or("deadline needs a duration in ms")?;
            match tx.send_timeout(&msg, Duration::from_millis(ms)) {
                Err(Error::Timeout) => {}
                other => {
                    return Err(format!(
                        "send_timeout on a full transport: expected Timeout, got {other:?}"
                    ));
                }
            }
        }
        _ => return Err(format!("unknown mode {mode}")),
    }
    let elapsed = start.elapsed();
    let caught = signals::caught() - before;
    say(&format!("ok {caught} {}", elapsed.as_millis()));
    Ok(())
}

/// Blocks in a call until the transport goes away, and reports `ok <elapsed ms>` when it says
/// `Disconnected`. Modes: `recv` and `recv-timeout` (20 s) say `ready` and block on an empty
/// transport; `send` fills it, says `full N` and blocks in a send.
fn wait_end(mode: &str) -> Outcome {
    let start;
    let result = match mode {
        "recv" | "recv-timeout" => {
            let mut rx = open_receiver()?;
            let mut buf = vec![0; rx.max_message_size()];
            say("ready");
            start = Instant::now();
            if mode == "recv" {
                rx.recv(&mut buf).map(|_| ())
            } else {
                rx.recv_timeout(&mut buf, Duration::from_secs(20))
                    .map(|_| ())
            }
        }
        "send" => {
            let mut tx = open_sender()?;
            let n = drive::fill(&mut *tx)?;
            say(&format!("full {n}"));
            start = Instant::now();
            tx.send(b"blocked")
        }
        _ => return Err(format!("unknown mode {mode}")),
    };
    let elapsed = start.elapsed();
    expect_disconnected(mode, result)?;
    say(&format!("ok {}", elapsed.as_millis()));
    Ok(())
}

/// POSIX queues only: sends message `i` (writer = its priority, seq = `i`) with priority
/// `prios[i]`, without waiting (the queue must have room for all), then says `sent`.
fn send_priorities(prios: &[String]) -> Outcome {
    let spec: ipc::TransportSpec = spec()?.parse().map_err(|e| format!("{e}"))?;
    let mut tx = ipc::posix::mq::MqSender::open(&spec).map_err(|e| format!("open {spec}: {e}"))?;
    let mut msg = Vec::new();
    for (i, prio) in prios.iter().enumerate() {
        let prio: u32 = prio
            .parse()
            .map_err(|_| format!("priority `{prio}` is not a number"))?;
        message::encode(prio, i as u64, 64, &mut msg);
        tx.send_priority(&msg, prio, ipc::Wait::Never)
            .map_err(|e| format!("send_priority #{i} (priority {prio}): {e:?}"))?;
    }
    say("sent");
    Ok(())
}

/// Roles for `tests/sync.rs`: a robust mutex and a condvar in a POSIX shared-memory segment
/// that the test created with [`ipc_sync::LayoutBuilder`] (a custom layout whose first mutex,
/// condvar and bytes regions are the ones used). The bytes region holds `u64` words: 0 and 1
/// are two counters the mutex keeps equal, 2 is a generation number the condvar waiters wait
/// to see change.
mod sync_peer {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use ipc::posix::PosixName;
    use ipc::posix::shm::{Expect, SharedMemory};
    use ipc_sync::{Condvar, Layout, LayoutKind, LockError, RegionKind, RobustMutex, Shared};

    use super::{Outcome, say, wait_for_eof};

    /// The longest any wait of these roles may take: the test's watchdog fires first.
    const LIMIT: Duration = Duration::from_secs(60);

    struct Segment {
        shared: Shared,
        layout: Layout,
    }

    impl Segment {
        fn open(name: &str) -> Result<Segment, String> {
            let name = PosixName::new(name).map_err(|e| format!("name {name}: {e}"))?;
            let shm = SharedMemory::open(&name, &Expect::default())
                .map_err(|e| format!("shm_open {name}: {e}"))?;
            let map = shm.map().map_err(|e| format!("map {name}: {e}"))?;
            let shared = Shared::new(Arc::new(map));
            let layout = Layout::attach(&shared, LayoutKind::Custom, Duration::from_secs(10))
                .map_err(|e| format!("attach {name}: {e}"))?;
            Ok(Segment { shared, layout })
        }

        fn region(&self, kind: RegionKind) -> Result<usize, String> {
            self.layout
                .regions()
                .iter()
                .position(|r| r.kind == kind)
                .ok_or_else(|| format!("no {kind:?} region"))
        }

        fn mutex(&self) -> Result<RobustMutex, String> {
            let i = self.region(RegionKind::Mutex)?;
            self.layout.mutex(i).map_err(|e| format!("mutex: {e}"))
        }

        fn condvar(&self) -> Result<Condvar, String> {
            let i = self.region(RegionKind::Condvar)?;
            self.layout.condvar(i).map_err(|e| format!("condvar: {e}"))
        }

        fn word(&self, i: usize) -> Result<&AtomicU64, String> {
            let at = self.layout.regions()[self.region(RegionKind::Bytes)?].offset;
            self.shared
                .u64_at(at + 8 * i)
                .ok_or_else(|| format!("word {i} out of bounds"))
        }
    }

    /// Locks, breaks the invariant half-way (increments counter 0), says `locked`, and holds
    /// the lock until stdin closes (the test usually SIGKILLs us first); then completes the
    /// update (counter 1), unlocks and says `released`.
    pub fn mutex_hold(name: &str) -> Outcome {
        let seg = Segment::open(name)?;
        let mutex = seg.mutex()?;
        let (a, b) = (seg.word(0)?, seg.word(1)?);
        let guard = mutex
            .lock_timeout(LIMIT)
            .map_err(|e| format!("lock: {e}"))?;
        a.fetch_add(1, Ordering::Relaxed);
        say("locked");
        wait_for_eof();
        b.fetch_add(1, Ordering::Relaxed);
        drop(guard);
        say("released");
        Ok(())
    }

    /// Tries to lock (bounded) and says how it went: `ok`, `owner-died` (the recovery is
    /// dropped unrepaired), `unrecoverable`, `timed-out`, or `error ...`.
    pub fn mutex_lock(name: &str) -> Outcome {
        let seg = Segment::open(name)?;
        let mutex = seg.mutex()?;
        let outcome = match mutex.lock_timeout(LIMIT) {
            Ok(_) => "ok".to_owned(),
            Err(LockError::OwnerDied(_)) => "owner-died".to_owned(),
            Err(LockError::Unrecoverable) => "unrecoverable".to_owned(),
            Err(LockError::TimedOut) => "timed-out".to_owned(),
            Err(e) => format!("error {e}"),
        };
        say(&outcome);
        Ok(())
    }

    /// Locks, reads the generation (word 2), says `waiting` (still holding the lock, so a
    /// test that then sees us asleep knows we are parked in the condvar), and waits until the
    /// generation changes; then says `woken`.
    pub fn condvar_wait(name: &str) -> Outcome {
        let seg = Segment::open(name)?;
        let (mutex, condvar) = (seg.mutex()?, seg.condvar()?);
        let generation = seg.word(2)?;
        let guard = match mutex.lock_timeout(LIMIT) {
            Ok(guard) => guard,
            // A waiter killed before it parked died holding the lock; the state (a counter
            // only ever incremented under the lock) is consistent either way.
            Err(LockError::OwnerDied(recovery)) => recovery.mark_consistent(),
            Err(e) => return Err(format!("lock: {e}")),
        };
        let start = generation.load(Ordering::Relaxed);
        say("waiting");
        let (guard, timed_out) = condvar
            .wait_timeout_while(guard, LIMIT, || generation.load(Ordering::Relaxed) == start)
            .map_err(|e| format!("wait: {e}"))?;
        drop(guard);
        if timed_out {
            return Err(format!("never woken within {LIMIT:?}"));
        }
        say("woken");
        Ok(())
    }
}
