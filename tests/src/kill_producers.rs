//! One trial of "producers killed mid-stream": three producer processes stream self-checking
//! messages into one `producers=multi` ring, this process consumes them, and at a random
//! moment one producer is SIGKILLed; the survivors send their known count and stop, the
//! consumer drains. The trial says whether anything wedged, or a message was lost,
//! duplicated or torn. Shared by the `ipc-stress` binary and `tests/issue_11.rs`.
//!
//! The producers are `ipc-shm-peer produce` processes (or the same roles re-executed by
//! `ipc-stress peer`), reporting their phase on a [`Board`]: after the kill, the board says
//! whether the victim died inside a send, and so how many of its messages may arrive.
//!
//! Nothing waits unbounded: the consumer receives with a deadline of [`Trial::stall`] (no
//! message for that long while producers remain is a wedge), and the thread driving the trial
//! waits for the consumer's events with a deadline too, so a consumer stuck inside a call is
//! seen as well. A wedged trial's processes are killed and its consumer thread abandoned.

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use ipc::{Error, Receiver, Wait};

use crate::board::{self, Board};
use crate::message::{self, splitmix64};
use crate::process::{Peer, PeerExe, describe};
use crate::shm_ring::{AnyReceiver, ShmTransport, TestRing};

/// Producers per trial.
pub const PRODUCERS: usize = 3;
/// Bytes of records of the trial's ring: small, so that producers also wait for room.
pub const CAPACITY: &str = "16KiB";
/// Largest message, unless a trial says otherwise.
pub const MESSAGE_SIZE: usize = 1024;

/// The shape of one trial.
#[derive(Clone, Debug)]
pub struct Trial {
    /// Transport of the ring.
    pub transport: ShmTransport,
    /// Wait strategy of every endpoint: `busy`, `spin` or `park`.
    pub wait: &'static str,
    /// Messages each producer sends unless killed.
    pub per_producer: u64,
    /// Largest message ([`MESSAGE_SIZE`] by default). At 4096, some copies take the ring's
    /// large-copy path (from 2 KiB), so that kills land inside those too.
    pub message_size: usize,
    /// No message for this long while producers remain: wedged.
    pub stall: Duration,
    /// Longest the whole trial may take before it counts as wedged.
    pub limit: Duration,
    /// Picks the kill's moment, the victim and the receive style.
    pub seed: u64,
}

/// What a trial found. Every count is of messages; `notes` explains each non-zero one.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// A survivor or the consumer stopped making progress.
    pub wedged: bool,
    /// Messages committed that never arrived (a survivor's, or the victim's that it had
    /// finished sending).
    pub lost: u64,
    /// Messages that arrived again, or out of order.
    pub duplicated: u64,
    /// Messages that arrived damaged: bad seal or body, wrong length, unknown writer.
    pub torn: u64,
    /// Messages of the victim beyond what it could have committed.
    pub phantom: u64,
    /// The harness itself failed (a process did not start, a segment could not be made).
    pub harness: bool,
    /// Messages received intact.
    pub messages: u64,
    /// The phase the victim was killed in (`None`: no kill happened).
    pub killed_in: Option<u64>,
    /// How long the trial took.
    pub elapsed: Duration,
    /// What went wrong, in words, with the processes' state for a wedge.
    pub notes: Vec<String>,
}

impl Outcome {
    /// Nothing wedged, lost, duplicated, torn or invented, and the harness worked.
    pub fn clean(&self) -> bool {
        !self.wedged
            && !self.harness
            && self.lost == 0
            && self.duplicated == 0
            && self.torn == 0
            && self.phantom == 0
    }
}

/// Follows every writer's stream and classifies what does not fit.
#[derive(Clone, Debug, Default)]
struct Tally {
    next: Vec<u64>,
    total: u64,
    duplicated: u64,
    torn: u64,
    gaps: u64,
    first_problems: Vec<String>,
}

impl Tally {
    fn new(writers: usize) -> Tally {
        Tally {
            next: vec![0; writers],
            ..Tally::default()
        }
    }

    fn note(&mut self, what: String) {
        if self.first_problems.len() < 5 {
            self.first_problems.push(what);
        }
    }

    fn accept(&mut self, msg: &[u8], max: usize) {
        let (writer, seq) = match message::decode(msg) {
            Ok(ws) => ws,
            Err(e) => {
                self.torn += 1;
                self.note(format!("torn after {} messages: {e}", self.total));
                return;
            }
        };
        let Some(&expected) = self.next.get(writer as usize) else {
            self.torn += 1;
            self.note(format!("message of unknown writer {writer}"));
            return;
        };
        if msg.len() != message::size_for(writer, seq, max) {
            self.torn += 1;
            self.note(format!(
                "writer {writer} seq {seq}: {} bytes, expected {}",
                msg.len(),
                message::size_for(writer, seq, max)
            ));
            return;
        }
        if seq < expected {
            self.duplicated += 1;
            self.note(format!(
                "writer {writer}: seq {seq} again (expected {expected})"
            ));
            return;
        }
        if seq > expected {
            self.gaps += seq - expected;
            self.note(format!(
                "writer {writer}: seq {seq} after {}: {} missing",
                expected.wrapping_sub(1),
                seq - expected
            ));
        }
        self.next[writer as usize] = seq + 1;
        self.total += 1;
    }
}

/// What the consumer thread reports.
enum Event {
    /// This many messages received so far.
    Progress(u64),
    /// The consumer stopped: `Ok` at `Disconnected` (every producer gone, the ring drained),
    /// else why.
    End(Tally, Result<(), String>),
}

/// The consumer: receives (in place or copied, at random) with a deadline of `stall`, reports
/// progress every 64 messages and at `target`.
fn consume(
    mut rx: AnyReceiver,
    stall: Duration,
    target: u64,
    seed: u64,
    events: mpsc::Sender<Event>,
) {
    let max = rx.max_message_size();
    let mut buf = vec![0u8; max];
    let mut tally = Tally::new(PRODUCERS);
    let mut pick = seed ^ 0xC0_5E;
    let end = loop {
        let deadline = Wait::Until(Instant::now() + stall);
        let got = if splitmix64(&mut pick) & 1 == 0 {
            rx.recv_in_place_with(deadline).map(|record| {
                tally.accept(&record, max);
            })
        } else {
            rx.recv_with(&mut buf, deadline)
                .map(|n| tally.accept(&buf[..n], max))
        };
        match got {
            Ok(()) => {
                let n = tally.total;
                if (n == target || n % 64 == 0) && events.send(Event::Progress(n)).is_err() {
                    // The trial gave up on us.
                    return;
                }
            }
            Err(Error::Disconnected) => break Ok(()),
            Err(Error::Timeout) => break Err(format!("no message for {stall:?}")),
            Err(e) => break Err(format!("recv: {e}")),
        }
    };
    let _ = events.send(Event::End(tally, end));
}

/// One producer process of the trial.
struct Producer {
    peer: Peer,
    slot: usize,
}

/// The kernel's view of a process, for a wedge report: where its main thread sleeps.
fn kernel_view(pid: i32) -> String {
    let read = |what: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/{what}"))
            .map(|s| s.lines().next().unwrap_or("").trim().to_owned())
            .unwrap_or_else(|_| "?".into())
    };
    let syscall = read("syscall");
    let nr = syscall.split_whitespace().next().unwrap_or("?");
    let name = match nr.parse::<i64>() {
        Ok(libc::SYS_futex) => "futex",
        Ok(libc::SYS_poll) | Ok(libc::SYS_ppoll) => "poll",
        Ok(libc::SYS_nanosleep) | Ok(libc::SYS_clock_nanosleep) => "sleep",
        Ok(_) => "other",
        Err(_) => "running",
    };
    format!("wchan {}, syscall {nr} ({name})", read("wchan"))
}

fn harness(out: &mut Outcome, why: String) {
    out.harness = true;
    out.notes.push(why);
}

/// Runs one trial with the producer program `exe` (`ipc-shm-peer`, or a binary carrying its
/// roles).
pub fn run(exe: &PeerExe, trial: &Trial) -> Outcome {
    let started = Instant::now();
    let mut out = Outcome::default();
    run_into(exe, trial, started, &mut out);
    out.elapsed = started.elapsed();
    out
}

fn run_into(exe: &PeerExe, trial: &Trial, started: Instant, out: &mut Outcome) {
    let mut rng = trial.seed;
    let ring = TestRing::new(trial.transport);
    let board = match Board::create() {
        Ok(b) => b,
        Err(e) => return harness(out, format!("create the board: {e}")),
    };
    let rx = match AnyReceiver::open(&ring.parsed(&format!(
        "capacity={CAPACITY}&message_size={}&producers=multi&create=always&wait={}",
        trial.message_size, trial.wait
    ))) {
        Ok(rx) => rx,
        Err(e) => return harness(out, format!("create the ring: {e}")),
    };
    let spec = ring.spec(&format!("wait={}", trial.wait));
    let count = trial.per_producer.to_string();
    let mut producers = Vec::new();
    for slot in 0..PRODUCERS {
        board.reset(slot);
        let s = slot.to_string();
        let peer = exe.spawn("produce", &[&spec, board.name(), &s, &s, &count, "mixed"]);
        let mut peer = match peer {
            Ok(p) => p,
            Err(e) => return harness(out, format!("spawn producer {slot}: {e}")),
        };
        match peer.line_before(Instant::now() + trial.stall).as_deref() {
            Some("ready") => {}
            other => {
                peer.kill();
                return harness(
                    out,
                    format!(
                        "producer {slot} said {other:?} instead of `ready`; stderr: {}",
                        peer.stderr_text().trim()
                    ),
                );
            }
        }
        producers.push(Producer { peer, slot });
    }
    // Any moment of the stream while every producer still has messages to send (at most a
    // ring's worth of each is ahead of the consumer).
    let target = 1 + splitmix64(&mut rng) % (trial.per_producer.max(2) - 1);
    let victim = (splitmix64(&mut rng) % PRODUCERS as u64) as usize;
    let (events_tx, events) = mpsc::channel();
    let (stall, seed) = (trial.stall, trial.seed);
    let consumer = thread::Builder::new()
        .name("kill-producers consumer".into())
        .spawn(move || consume(rx, stall, target, seed, events_tx));
    if let Err(e) = consumer {
        return harness(out, format!("spawn the consumer thread: {e}"));
    }
    // (phase, committed) of the victim once killed.
    let mut killed: Option<(u64, u64)> = None;
    // Past the consumer's own deadline: only a consumer stuck inside a call gets here.
    let grace = Duration::from_secs(2);
    let deadline = started + trial.limit;
    let tally = loop {
        let wait = (trial.stall + grace).min(deadline.saturating_duration_since(Instant::now()));
        match events.recv_timeout(wait) {
            Ok(Event::Progress(n)) => {
                if killed.is_none() && n >= target {
                    let p = &mut producers[victim];
                    p.peer.kill();
                    // Reaped: the board is final.
                    let (phase, committed) = board.read(p.slot);
                    if p.peer.status().is_some_and(|s| s.success()) {
                        out.notes
                            .push("the victim had finished before the kill".into());
                    } else {
                        out.killed_in = Some(phase);
                    }
                    killed = Some((phase, committed));
                }
            }
            Ok(Event::End(tally, Ok(()))) => break tally,
            Ok(Event::End(tally, Err(why))) => {
                out.messages = tally.total;
                out.duplicated = tally.duplicated;
                out.torn = tally.torn;
                out.lost = tally.gaps;
                out.notes.extend(tally.first_problems);
                return wedge(out, &mut producers, &board, killed, victim, why);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let why = if Instant::now() >= deadline {
                    format!("trial not over after {:?}", trial.limit)
                } else {
                    format!("the consumer is stuck inside a receive for {wait:?}")
                };
                return wedge(out, &mut producers, &board, killed, victim, why);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return harness(out, "the consumer thread panicked".into());
            }
        }
    };
    out.messages = tally.total;
    out.duplicated = tally.duplicated;
    out.torn = tally.torn;
    out.lost = tally.gaps;
    out.notes.extend(tally.first_problems.iter().cloned());
    let Some((phase, committed)) = killed else {
        // Everything was received before the target: not a kill trial, but still checked.
        out.notes.push(format!(
            "the consumer was done before message {target}, the kill's moment"
        ));
        return check_survivors(out, &mut producers, &tally, None, trial);
    };
    let delivered = tally.next[victim];
    let allowed = board::deliverable(phase, committed);
    if delivered < *allowed.start() {
        out.lost += allowed.start() - delivered;
        out.notes.push(format!(
            "victim (writer {victim}) killed while {} after {committed} sends: only {delivered} \
             of its messages arrived",
            board::name(phase)
        ));
    } else if delivered > *allowed.end() {
        out.phantom += delivered - allowed.end();
        out.notes.push(format!(
            "victim (writer {victim}) killed while {} after {committed} sends: {delivered} of \
             its messages arrived",
            board::name(phase)
        ));
    }
    check_survivors(out, &mut producers, &tally, Some(victim), trial);
}

/// After `Disconnected`: every survivor said how many messages it sent, and exited cleanly.
fn check_survivors(
    out: &mut Outcome,
    producers: &mut [Producer],
    tally: &Tally,
    victim: Option<usize>,
    trial: &Trial,
) {
    for p in producers.iter_mut() {
        if Some(p.slot) == victim {
            continue;
        }
        let until = Instant::now() + trial.stall;
        let end = loop {
            match p.peer.line_before(until) {
                Some(line) if line.starts_with("end ") => break Some(line),
                Some(_) => {}
                None => break None,
            }
        };
        let status = p.peer.wait_before(until);
        let Some(end) = end else {
            // Disconnected means every producer had left or died: this one did not finish.
            out.wedged = true;
            out.notes.push(format!(
                "survivor {} never said `end` ({})",
                p.slot,
                status.map_or("still running".into(), describe)
            ));
            continue;
        };
        if !status.is_some_and(|s| s.success()) {
            out.harness = true;
            out.notes.push(format!(
                "survivor {} ended `{end}` then {}; stderr: {}",
                p.slot,
                status.map_or("did not exit".into(), describe),
                p.peer.stderr_text().trim()
            ));
        }
        let mut words = end.split_whitespace().skip(1);
        let sent: u64 = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
        let reason = words.next().unwrap_or("");
        if reason != "done" || sent != trial.per_producer {
            out.notes.push(format!(
                "survivor {} ended `{end}`, expected {} done",
                p.slot, trial.per_producer
            ));
        }
        let got = tally.next[p.slot];
        if got < sent {
            out.lost += sent - got;
            out.notes.push(format!(
                "survivor {} sent {sent} messages, {got} arrived",
                p.slot
            ));
        } else if got > sent {
            out.phantom += got - sent;
            out.notes.push(format!(
                "survivor {} sent {sent} messages, {got} arrived",
                p.slot
            ));
        }
    }
}

/// Records a wedge with where every producer is, then kills them (dropping the trial's
/// processes and segments; a stuck consumer thread is left behind).
fn wedge(
    out: &mut Outcome,
    producers: &mut [Producer],
    board: &Board,
    killed: Option<(u64, u64)>,
    victim: usize,
    why: String,
) {
    out.wedged = true;
    let mut state = Vec::new();
    for p in producers.iter_mut() {
        let (phase, count) = board.read(p.slot);
        let role = if killed.is_some() && p.slot == victim {
            "victim (killed)".to_owned()
        } else {
            format!("pid {}", p.peer.pid())
        };
        let view = if killed.is_some() && p.slot == victim {
            String::new()
        } else if p.peer.has_exited() {
            format!(
                ", exited ({})",
                p.peer.status().map_or("?".into(), describe)
            )
        } else {
            format!(", {}", kernel_view(p.peer.pid().as_raw()))
        };
        state.push(format!(
            "producer {} {role}: {} after {count} sends{view}",
            p.slot,
            board::name(phase)
        ));
    }
    let kill = match killed {
        Some((phase, committed)) => format!(
            "victim {victim} killed while {} after {committed} sends",
            board::name(phase)
        ),
        None => "no kill yet".into(),
    };
    out.notes
        .push(format!("wedged: {why}; {kill}; {}", state.join("; ")));
}
