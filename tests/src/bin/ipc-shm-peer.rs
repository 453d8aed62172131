//! The other process of the shared-memory crash and hostile-peer tests
//! (`tests/tests/shm_crash.rs`, `tests/tests/issue_11.rs`, the `ipc-stress` binary): a producer
//! or a consumer of a ring (`posix-shm` or `sysv-shm`) that the test kills with SIGKILL at
//! random points, or whose segment it scribbles on.
//!
//! Usage (the transport string is the first argument):
//!
//! ```text
//! ipc-shm-peer produce SPEC BOARD SLOT WRITER COUNT STYLE
//! ipc-shm-peer consume SPEC BOARD SLOT ANNOUNCE MODE
//! ipc-shm-peer stream  SPEC SEED COUNT
//! ipc-shm-peer hold    SPEC BOARD SLOT WRITER BEFORE AFTER DEADLINE_MS
//! ```
//!
//! - `produce` sends `COUNT` messages (0: until told to stop) of writer `WRITER`, numbered from
//!   0, in the self-checking format of [`ipc_tests::message`] (writer, sequence number, body,
//!   seal; sizes from [`message::size_for`]). `STYLE` picks the path: `copy` (`send`),
//!   `loan` (`loan`, write the payload byte by byte a few times over, `commit`; one loan in
//!   four asks for the largest message and publishes only the message with `commit_len`), or
//!   `mixed` (either, at random). The byte-by-byte writing keeps the process between reserve
//!   and commit long enough for a kill to land there. A `stop` line or the end of stdin stops
//!   it after the message in progress. It ends with `end N done|stopped|disconnected` (`N`
//!   messages sent).
//! - `consume` receives (in place) and checks every message: whole, and each writer's numbered
//!   from 0 without gap or duplicate; it checks each record twice while holding it (a record
//!   must not change before it is released), counting it in between. It says `got ANNOUNCE`
//!   once it has that many (0: never), and `end N` at `Disconnected`. `MODE` `hold` attaches
//!   and then receives nothing until its stdin closes.
//! - `stream` sends `COUNT` messages of random sizes from 0 to the ring's largest, whose
//!   sizes and contents the receiver regenerates from `SEED` ([`stream`] below, duplicated in
//!   the test), alternating at random between a loan and a copy.
//! - `hold` sends `BEFORE` messages of writer `WRITER` (self-checking, as `produce`), then
//!   takes a loan for the next one, writes it, says `loaned` and waits for a line on stdin
//!   while holding it (on a multi-producer ring, holding the producers' lock): `commit`
//!   publishes it, `drop` (or the end of stdin) drops it unpublished. It then sends `AFTER`
//!   more, alternating copies and loans. Each call waits at most `DEADLINE_MS` (0: forever).
//!   It ends with `end N REASON`, `N` messages published, `REASON` `done`, `dropped`, or the
//!   error that stopped it (`disconnected`, `corrupted`, `timeout`, `full`; exit status 0:
//!   the test judges), or `error` (exit status 1, the error on stderr).
//!
//! `BOARD` names a small POSIX shared-memory segment made by the test (or `-` for none) where
//! the peer publishes, in its `SLOT`, what it is doing ([`board`]) and how many messages it has
//! finished: after a SIGKILL the test knows whether the victim died inside a send, and how many
//! messages it had committed for sure.
//!
//! Every role prints `ready` once attached, exits 1 with the reason on stderr when a check
//! fails, and exits on its own after [`LIFETIME`] in case its test forgot it.

use std::io::BufRead;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ipc::posix::PosixName;
use ipc::posix::shm::{Expect, SharedMemory};
use ipc::sync::Shared;
use ipc::sync::ring::RingSender;
use ipc::{Error, Receiver, Sender, TransportSpec, Wait};
use ipc_tests::board;
use ipc_tests::message::{self, splitmix64};
use ipc_tests::shm_ring::{AnyReceiver, AnySender};

/// How many times a loan's payload is written, byte by byte, before it is committed.
const WRITE_PASSES: usize = 4;

/// Longest a peer lives: its test has long given up by then.
const LIFETIME: Duration = Duration::from_secs(180);

/// The messages of the `stream` role: sizes and contents that the receiver regenerates. The
/// test holds an identical copy of this module; keep them equal.
pub mod stream {
    use ipc_tests::message::splitmix64;

    /// Bytes of the pattern that contents are cut from.
    pub const PATTERN: usize = 64 * 1024;

    /// The pattern: `PATTERN + max` pseudo-random bytes.
    pub fn pattern(max: usize) -> Vec<u8> {
        let mut state = 0x0DDB_1A5E_5BAD_5EED;
        let mut out = Vec::with_capacity(PATTERN + max + 8);
        while out.len() < PATTERN + max {
            out.extend_from_slice(&splitmix64(&mut state).to_le_bytes());
        }
        out.truncate(PATTERN + max);
        out
    }

    /// Length of message `seq` (0 to `max` bytes) and where its contents start in the pattern.
    pub fn shape(seed: u64, seq: u64, max: usize) -> (usize, usize) {
        let mut state = seed ^ seq.wrapping_mul(0xD6E8_FEB8_6659_FD93);
        let len = (splitmix64(&mut state) % (max as u64 + 1)) as usize;
        let at = (splitmix64(&mut state) % PATTERN as u64) as usize;
        (len, at)
    }

    /// Writes message `seq` into `out` (exactly its length): its first bytes (up to 8) are the
    /// sequence number, the rest a slice of the pattern.
    pub fn write(pattern: &[u8], seq: u64, at: usize, out: &mut [u8]) {
        let len = out.len();
        let head = len.min(8);
        out[..head].copy_from_slice(&seq.to_le_bytes()[..head]);
        out[head..].copy_from_slice(&pattern[at + head..at + len]);
    }

    /// Whether `msg` is message `seq`, of length `len`, starting at `at` in the pattern.
    pub fn check(pattern: &[u8], seq: u64, len: usize, at: usize, msg: &[u8]) -> bool {
        let head = len.min(8);
        msg.len() == len
            && msg[..head] == seq.to_le_bytes()[..head]
            && msg[head..] == pattern[at + head..at + len]
    }
}

type Outcome = Result<(), String>;

fn main() -> ExitCode {
    run(std::env::args().skip(1).collect())
}

/// Runs the role `args[0]` with the rest of `args`.
pub fn run(args: Vec<String>) -> ExitCode {
    std::thread::spawn(|| {
        std::thread::sleep(LIFETIME);
        eprintln!("ipc-shm-peer: still running after {LIFETIME:?}, giving up");
        std::process::exit(3);
    });
    let outcome = match args.first().map(String::as_str) {
        Some("produce") if args.len() == 7 => produce(&args[1..]),
        Some("consume") if args.len() == 6 => consume(&args[1..]),
        Some("stream") if args.len() == 4 => stream_role(&args[1..]),
        Some("hold") if args.len() == 8 => hold(&args[1..]),
        _ => {
            eprintln!(
                "usage: ipc-shm-peer produce SPEC BOARD SLOT WRITER COUNT STYLE\n       \
                 ipc-shm-peer consume SPEC BOARD SLOT ANNOUNCE MODE\n       \
                 ipc-shm-peer stream SPEC SEED COUNT\n       \
                 ipc-shm-peer hold SPEC BOARD SLOT WRITER BEFORE AFTER DEADLINE_MS"
            );
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => {
            eprintln!("ipc-shm-peer {}: {why}", args.join(" "));
            ExitCode::from(1)
        }
    }
}

fn number(what: &str, arg: &str) -> Result<u64, String> {
    arg.parse()
        .map_err(|_| format!("{what} must be a number, not `{arg}`"))
}

fn spec(arg: &str) -> Result<TransportSpec, String> {
    arg.parse()
        .map_err(|e| format!("bad transport string: {e}"))
}

/// Prints a progress line for the test (stdout is line-buffered: one write per line).
fn say(line: &str) {
    println!("{line}");
}

/// This peer's slot of the board, or nothing (`-`).
struct Board {
    shared: Option<Shared>,
    slot: usize,
}

impl Board {
    fn open(name: &str, slot: &str) -> Result<Board, String> {
        let slot = number("SLOT", slot)? as usize;
        if name == "-" {
            return Ok(Board { shared: None, slot });
        }
        if (slot + 1) * board::SLOT > board::SIZE {
            return Err(format!("board slot {slot} out of range"));
        }
        let name = PosixName::new(name).map_err(|e| format!("board name: {e}"))?;
        let shm = SharedMemory::open(&name, &Expect::size(board::SIZE))
            .map_err(|e| format!("open board: {e}"))?;
        let mapping = shm.map().map_err(|e| format!("map board: {e}"))?;
        Ok(Board {
            shared: Some(Shared::new(Arc::new(mapping))),
            slot,
        })
    }

    fn set(&self, field: usize, value: u64) {
        if let Some(shared) = &self.shared {
            shared
                .u64_at(self.slot * board::SLOT + field)
                .expect("board slot in bounds")
                .store(value, Ordering::SeqCst);
        }
    }

    fn phase(&self, phase: u64) {
        self.set(board::PHASE, phase);
    }

    fn count(&self, count: u64) {
        self.set(board::COUNT, count);
    }
}

/// Reads stdin on a thread: `stop` or end of file sets the returned flag.
fn watch_stdin() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(line) if line.trim() == "stop" => break,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        flag.store(true, Ordering::SeqCst);
    });
    stop
}

/// Exits when stdin reaches its end (the test is gone or done with us).
fn exit_at_eof() {
    std::thread::spawn(|| {
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
        std::process::exit(0);
    });
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    Copy,
    Loan,
    Mixed,
}

/// `produce SPEC BOARD SLOT WRITER COUNT STYLE`.
fn produce(args: &[String]) -> Outcome {
    let spec = spec(&args[0])?;
    let board = Board::open(&args[1], &args[2])?;
    let writer = number("WRITER", &args[3])? as u32;
    let count = number("COUNT", &args[4])?;
    let style = match args[5].as_str() {
        "copy" => Style::Copy,
        "loan" => Style::Loan,
        "mixed" => Style::Mixed,
        other => return Err(format!("STYLE must be copy, loan or mixed, not `{other}`")),
    };
    let mut tx = AnySender::open(&spec).map_err(|e| format!("open sender: {e}"))?;
    let max = tx.max_message_size();
    let stop = watch_stdin();
    say("ready");
    let mut buf = Vec::with_capacity(max);
    let mut rng = u64::from(writer) ^ 0xA5A5_0000_5A5A;
    let mut seq = 0u64;
    let reason = loop {
        if count != 0 && seq == count {
            break "done";
        }
        if stop.load(Ordering::SeqCst) {
            break "stopped";
        }
        let len = message::size_for(writer, seq, max);
        message::encode(writer, seq, len, &mut buf);
        let roll = splitmix64(&mut rng);
        let loan = match style {
            Style::Copy => false,
            Style::Loan => true,
            Style::Mixed => roll % 2 == 0,
        };
        let sent = if loan {
            // One loan in four reserves the largest message and publishes only `len` bytes.
            let reserve = if roll % 8 == 1 { max } else { len };
            send_loaned(&mut tx, &board, &buf, reserve)
        } else {
            board.phase(board::COPYING);
            tx.send(&buf)
        };
        match sent {
            Ok(()) => {}
            Err(Error::Disconnected) => break "disconnected",
            Err(e) => return Err(format!("send of writer {writer} seq {seq}: {e}")),
        }
        seq += 1;
        board.count(seq);
        board.phase(board::IDLE);
    };
    say(&format!("end {seq} {reason}"));
    Ok(())
}

/// Sends `msg` through a loan of `reserve` bytes, written one byte at a time.
fn send_loaned(tx: &mut RingSender, board: &Board, msg: &[u8], reserve: usize) -> ipc::Result<()> {
    board.phase(board::RESERVING);
    let mut loan = tx.loan(reserve)?;
    board.phase(board::WRITING);
    // One store per byte, which the optimiser may not merge, several times over: the longer
    // the window between reserve and commit, the likelier a kill lands in it.
    for _ in 0..WRITE_PASSES {
        for (slot, byte) in loan.iter_mut().zip(msg) {
            *slot = std::hint::black_box(*byte);
        }
    }
    board.phase(board::COMMITTING);
    if reserve == msg.len() {
        loan.commit();
        Ok(())
    } else {
        loan.commit_len(msg.len())
    }
}

/// `consume SPEC BOARD SLOT ANNOUNCE MODE`.
fn consume(args: &[String]) -> Outcome {
    let spec = spec(&args[0])?;
    let board = Board::open(&args[1], &args[2])?;
    let announce = number("ANNOUNCE", &args[3])?;
    let hold = match args[4].as_str() {
        "recv" => false,
        "hold" => true,
        other => return Err(format!("MODE must be recv or hold, not `{other}`")),
    };
    let mut rx = AnyReceiver::open(&spec).map_err(|e| format!("open receiver: {e}"))?;
    let max = rx.max_message_size();
    if hold {
        say("ready");
        // Attached, receiving nothing, until the test closes stdin (or kills us).
        let mut sink = String::new();
        while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {
            sink.clear();
        }
        return Ok(());
    }
    exit_at_eof();
    say("ready");
    let mut next: std::collections::HashMap<u32, u64> = Default::default();
    let mut total = 0u64;
    loop {
        board.phase(board::RECEIVING);
        let record = match rx.recv_in_place() {
            Ok(record) => record,
            Err(Error::Disconnected) => break,
            Err(e) => return Err(format!("recv after {total} messages: {e}")),
        };
        board.phase(board::HOLDING);
        let (writer, seq) =
            message::decode(&record).map_err(|e| format!("message {total}: {e}"))?;
        let expected = message::size_for(writer, seq, max);
        if record.len() != expected {
            return Err(format!(
                "writer {writer} seq {seq}: {} bytes, expected {expected}",
                record.len()
            ));
        }
        let want = next.entry(writer).or_insert(0);
        if seq != *want {
            return Err(format!("writer {writer}: seq {seq}, expected {want}"));
        }
        *want += 1;
        total += 1;
        // Counted before the record is released: a consumer killed in between leaves a
        // record it has counted, which its successor receives again.
        board.count(total);
        // A record held in place must not change until it is released: check it again.
        if message::decode(&record) != Ok((writer, seq)) {
            return Err(format!(
                "writer {writer} seq {seq} changed while held in place"
            ));
        }
        board.phase(board::RELEASING);
        drop(record);
        board.phase(board::IDLE);
        if total == announce {
            say(&format!("got {total}"));
        }
    }
    say(&format!("end {total}"));
    Ok(())
}

/// `stream SPEC SEED COUNT`.
fn stream_role(args: &[String]) -> Outcome {
    let spec = spec(&args[0])?;
    let seed = number("SEED", &args[1])?;
    let count = number("COUNT", &args[2])?;
    let mut tx = AnySender::open(&spec).map_err(|e| format!("open sender: {e}"))?;
    let max = tx.max_message_size();
    let pattern = stream::pattern(max);
    let mut buf = vec![0u8; max];
    exit_at_eof();
    say("ready");
    let mut pick = seed ^ 0x1005_EED5;
    for seq in 0..count {
        let (len, at) = stream::shape(seed, seq, max);
        let sent = if splitmix64(&mut pick) & 1 == 0 {
            tx.loan(len).map(|mut loan| {
                stream::write(&pattern, seq, at, &mut loan);
                loan.commit();
            })
        } else {
            stream::write(&pattern, seq, at, &mut buf[..len]);
            tx.send(&buf[..len])
        };
        sent.map_err(|e| format!("send of seq {seq}: {e}"))?;
    }
    say(&format!("end {count}"));
    Ok(())
}

/// How a `hold` producer stopped early: the error's name, for its `end` line.
fn error_name(e: &Error) -> Option<&'static str> {
    Some(match e {
        Error::Disconnected => "disconnected",
        Error::Corrupted { .. } => "corrupted",
        Error::Timeout => "timeout",
        Error::Full => "full",
        _ => return None,
    })
}

/// `hold SPEC BOARD SLOT WRITER BEFORE AFTER DEADLINE_MS`.
fn hold(args: &[String]) -> Outcome {
    let spec = spec(&args[0])?;
    let board = Board::open(&args[1], &args[2])?;
    let writer = number("WRITER", &args[3])? as u32;
    let before = number("BEFORE", &args[4])?;
    let after = number("AFTER", &args[5])?;
    let deadline_ms = number("DEADLINE_MS", &args[6])?;
    let wait = || match deadline_ms {
        0 => Wait::Forever,
        ms => Wait::timeout(Duration::from_millis(ms)),
    };
    let mut tx = AnySender::open(&spec).map_err(|e| format!("open sender: {e}"))?;
    let max = tx.max_message_size();
    say("ready");
    let mut buf = Vec::with_capacity(max);
    let mut sent = 0u64;
    // The first error ends the role: its `end` line names it.
    let end = |sent: u64, e: Error| -> Outcome {
        let name = error_name(&e);
        say(&format!("end {sent} {}", name.unwrap_or("error")));
        match name {
            Some(_) => Ok(()),
            None => Err(format!("writer {writer} after {sent} messages: {e}")),
        }
    };
    for seq in 0..before {
        message::encode(writer, seq, message::size_for(writer, seq, max), &mut buf);
        board.phase(board::COPYING);
        if let Err(e) = tx.send_with(&buf, wait()) {
            return end(sent, e);
        }
        sent += 1;
        board.count(sent);
        board.phase(board::IDLE);
    }
    message::encode(
        writer,
        before,
        message::size_for(writer, before, max),
        &mut buf,
    );
    board.phase(board::RESERVING);
    let mut loan = match tx.loan_with(buf.len(), wait()) {
        Ok(loan) => loan,
        Err(e) => return end(sent, e),
    };
    loan.copy_from_slice(&buf);
    board.phase(board::WRITING);
    say("loaned");
    let mut line = String::new();
    let commit =
        matches!(std::io::stdin().read_line(&mut line), Ok(n) if n > 0) && line.trim() == "commit";
    if !commit {
        drop(loan);
        board.phase(board::IDLE);
        say(&format!("end {sent} dropped"));
        return Ok(());
    }
    board.phase(board::COMMITTING);
    loan.commit();
    sent += 1;
    board.count(sent);
    board.phase(board::IDLE);
    say("committed");
    for seq in before + 1..before + 1 + after {
        message::encode(writer, seq, message::size_for(writer, seq, max), &mut buf);
        let result = if seq % 2 == 0 {
            board.phase(board::COPYING);
            tx.send_with(&buf, wait())
        } else {
            board.phase(board::RESERVING);
            tx.loan_with(buf.len(), wait()).map(|mut loan| {
                loan.copy_from_slice(&buf);
                loan.commit();
            })
        };
        if let Err(e) = result {
            return end(sent, e);
        }
        sent += 1;
        board.count(sent);
        board.phase(board::IDLE);
    }
    say(&format!("end {sent} done"));
    Ok(())
}
