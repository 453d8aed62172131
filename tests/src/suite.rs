//! The tests every transport must pass, written once against a [`Factory`].
//!
//! Each function is one test; [`conformance_tests!`](crate::conformance_tests) stamps them out
//! per transport. Failures panic with what was expected and what happened.

use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use ipc::{Error, Receiver, Sender};
use nix::sys::signal::Signal;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use crate::drive::{self, drain, drain_bounded, drain_exact, fill, send_stream_counted};
use crate::message::{self, StreamCheck};
use crate::process::{
    Peer, ProcThread, Progress, WATCHDOG, bounded, bounded_progress, describe, peer_command,
    recv_one, send_one, watch_rx, watch_tx,
};
use crate::{Cfg, Factory, Pair};

pub mod batches;
pub mod framings;

pub use batches::{
    batch_on_full_sends_exactly_what_it_counts,
    batches_cross_from_a_child_process_whole_once_in_order,
};

/// How late a timed call may return before the test calls it broken. Generous on purpose:
/// the machine is shared and noisy; the tight bound is the lower one (never early).
pub const SLACK: Duration = Duration::from_millis(500);

/// Proptest cases per property: enough to hit the edges, few enough for a quick suite.
pub const CASES: u32 = 64;

/// Messages per writer in the cross-process stream tests.
pub const STREAM_MESSAGES: u64 = 10_000;

/// What a test runs against: a transport factory and the peer binary.
#[derive(Clone, Copy)]
pub struct Ctx {
    factory: &'static dyn Factory,
    peer: &'static str,
}

impl Ctx {
    /// A context for `factory`, with peers run from `peer`, a binary whose `main` is
    /// [`peer::main`](crate::peer::main) (`env!("CARGO_BIN_EXE_ipc-test-peer")` in this crate's
    /// tests, the transport's own peer binary in another crate's).
    pub fn new(factory: &'static dyn Factory, peer: &'static str) -> Ctx {
        Ctx { factory, peer }
    }

    fn pair(&self, cfg: &Cfg) -> Pair {
        self.factory
            .pair(cfg)
            .unwrap_or_else(|e| panic!("{}: cannot make a pair with {cfg:?}: {e}", self.name()))
    }

    fn name(&self) -> &'static str {
        self.factory.name()
    }

    /// Both ends with the default configuration, the transport filled by [`fill`]; and how many
    /// messages that took (at least one).
    fn full_pair(&self) -> (Pair, u64) {
        let mut pair = self.pair(&self.cfg());
        let n = fill(&mut *pair.tx).unwrap();
        assert!(n > 0, "the transport was Full before the first message");
        (pair, n)
    }

    /// The configuration of tests that need nothing special ([`Factory::default_cfg`]).
    fn cfg(&self) -> Cfg {
        self.factory.default_cfg()
    }

    /// `size`, or the transport's largest message size if that is smaller.
    fn capped(&self, size: usize) -> usize {
        size.min(self.factory.max_message_size())
    }

    fn sees_peer_death(&self) -> bool {
        self.factory.sees_peer_death()
    }

    /// Fails a test of one behaviour of dead peers (`visible` or not) run for a transport with
    /// the other: the transport was stamped with the wrong group of tests.
    fn require_peer_death(&self, visible: bool) {
        assert_eq!(
            self.sees_peer_death(),
            visible,
            "{}: this test is for transports that {} peer death; stamp the transport's tests \
             with the `{}` group of conformance_tests!",
            self.name(),
            if visible { "see" } else { "do not see" },
            if self.sees_peer_death() {
                "connected"
            } else {
                "connectionless"
            },
        );
    }

    /// How a receiving peer tells the end of a stream (the last argument of its `recv` role):
    /// `disconnected` where the death of the sender shows, else `count` (the expected number).
    fn stream_end(&self) -> &'static str {
        if self.sees_peer_death() {
            "disconnected"
        } else {
            "count"
        }
    }

    /// Receives a stream of `n` messages in all into `check`: until `Disconnected` where the
    /// transport sees its senders go (they must be going), else exactly `n` (then check with
    /// [`Ctx::expect_end`] that nothing follows, once the senders are done). Unbounded.
    fn drain_stream(
        &self,
        rx: &mut dyn Receiver,
        check: &mut StreamCheck,
        n: u64,
    ) -> Result<(), String> {
        if self.sees_peer_death() {
            drain(rx, check)
        } else {
            drain_exact(rx, check, n)
        }
    }

    /// [`Ctx::drain_stream`] from `writers` writers on a thread; returns the receiver too, for
    /// [`Ctx::expect_end`]. Fails on a hang, that is no message for [`WATCHDOG`], however long
    /// the whole stream takes (seconds of CPU in a debug build, several times that on a loaded
    /// machine).
    fn drain_stream_bounded(
        &self,
        rx: Box<dyn Receiver>,
        writers: usize,
        n: u64,
    ) -> (Box<dyn Receiver>, StreamCheck) {
        let ctx = *self;
        let check = StreamCheck::new(writers);
        let progress = check.progress();
        bounded_progress("receive the stream", WATCHDOG, &progress, move || {
            let (mut rx, mut check) = (rx, check);
            ctx.drain_stream(&mut *rx, &mut check, n)
                .map(|()| (rx, check))
        })
        .unwrap_or_else(|e| panic!("{}: {e}", ctx.name()))
    }

    /// Checks what follows the expected messages, once their senders are done (or going, for a
    /// transport that sees them go): `Disconnected` if the transport sees peer death, else
    /// nothing (`Empty`). Either way, no stray or duplicated message.
    fn expect_end(&self, rx: &mut Box<dyn Receiver>, after: &str) {
        if self.sees_peer_death() {
            let r = recv_one(rx);
            assert!(
                matches!(r, Err(Error::Disconnected)),
                "{}: after {after}, with the senders gone: expected Disconnected, got {:?}",
                self.name(),
                r.map(|m| format!("a message of {} bytes", m.len()))
            );
        } else {
            let mut buf = vec![0; rx.max_message_size()];
            let r = rx.try_recv(&mut buf);
            assert!(
                matches!(r, Err(Error::Empty)),
                "{}: after {after}, with the senders done: expected Empty, got {r:?}",
                self.name()
            );
        }
    }

    fn command(&self, role: &str, args: &[&str]) -> std::process::Command {
        peer_command(Path::new(self.peer), role, args)
    }

    /// A peer running `role` with the receiving end; our sending end.
    fn child_receiver(&self, cfg: &Cfg, role: &str, args: &[&str]) -> (Box<dyn Sender>, Peer) {
        self.factory
            .spawn_receiver(cfg, self.command(role, args))
            .unwrap_or_else(|e| panic!("{}: cannot start a receiving peer: {e}", self.name()))
    }

    /// A peer running `role` with the sending end; our receiving end.
    fn child_sender(&self, cfg: &Cfg, role: &str, args: &[&str]) -> (Box<dyn Receiver>, Peer) {
        self.factory
            .spawn_sender(cfg, self.command(role, args))
            .unwrap_or_else(|e| panic!("{}: cannot start a sending peer: {e}", self.name()))
    }
}

/// Asserts that a timed call that gave up after `elapsed` honoured `timeout`.
fn assert_waited(what: &str, elapsed: Duration, timeout: Duration) {
    assert!(
        elapsed >= timeout,
        "{what} returned early: after {elapsed:?} of {timeout:?}"
    );
    assert!(
        elapsed < timeout + SLACK,
        "{what} returned far too late: after {elapsed:?} of {timeout:?}"
    );
}

/// How soon a blocked call must see its peer go (dropped, exited, killed, or the queue
/// removed) and return `Disconnected`, whichever way it waits: the transports look at least
/// every 100 ms (a POSIX queue's removal; a ring every 25 ms), and the rest is for a loaded
/// machine. Not a speed test: a call that would notice only by chance, or never, fails it.
pub const PEER_GONE_NOTICE: Duration = Duration::from_secs(2);

/// Asserts that a call that returned at `returned` saw its peer go at `gone` promptly.
fn assert_prompt(name: &str, what: &str, gone: Instant, returned: Instant) {
    let after = returned.saturating_duration_since(gone);
    assert!(
        after < PEER_GONE_NOTICE,
        "{name}: {what} returned {after:?} after the peer went (at most {PEER_GONE_NOTICE:?})"
    );
}

/// Runs `f` on a thread started now; [`Background::join`] waits for it with a deadline.
struct Background<T> {
    result: mpsc::Receiver<thread::Result<T>>,
}

fn background<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Background<T> {
    let (tx, result) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    Background { result }
}

impl<T> Background<T> {
    /// The thread's result, or a panic if it is still blocked after [`WATCHDOG`].
    fn join(self, what: &str) -> T {
        match self.result.recv_timeout(WATCHDOG) {
            Ok(Ok(v)) => v,
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            Err(_) => panic!("{what}: still blocked after {WATCHDOG:?} (hang)"),
        }
    }
}

fn msg_of(seed: u64, len: usize) -> Vec<u8> {
    let mut m = vec![0; len];
    message::fill(seed, &mut m);
    m
}

// ---------------------------------------------------------------------------------------------
// Messages in one process

#[derive(Clone, Debug)]
enum Op {
    /// Send a message of this many bytes; it must arrive.
    Send(usize),
    /// Try to send `max + 1` bytes; it must be refused and send nothing.
    TooLarge,
}

fn ops(max: usize) -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        8 => (0..=max).prop_map(Op::Send),
        // Small ones, so that several frames share a read.
        4 => (0..=max.min(64)).prop_map(Op::Send),
        1 => Just(Op::Send(0)),
        1 => Just(Op::Send(max)),
        1 => Just(Op::TooLarge),
    ];
    proptest::collection::vec(op, 0..48)
}

fn check_sequence(ctx: Ctx, max: usize, seed: u64, ops: &[Op]) -> Result<(), TestCaseError> {
    let Pair {
        mut tx,
        rx,
        cleanup: _cleanup,
    } = ctx.pair(&Cfg::message_size(max));
    prop_assert_eq!(tx.max_message_size(), max);
    prop_assert_eq!(rx.max_message_size(), max);
    let expected: Vec<Vec<u8>> = ops
        .iter()
        .enumerate()
        .filter_map(|(i, op)| match op {
            Op::Send(len) => Some(msg_of(seed ^ i as u64, *len)),
            Op::TooLarge => None,
        })
        .collect();
    let count = expected.len();
    let to_send = ops.to_vec();
    // The sender runs beside the receiver: the messages may not all fit in the transport.
    let sender = background(move || -> Result<(), String> {
        let too_large = vec![0xEE; max + 1];
        for (i, op) in to_send.iter().enumerate() {
            match op {
                Op::Send(len) => tx
                    .send(&msg_of(seed ^ i as u64, *len))
                    .map_err(|e| format!("send #{i} of {len} bytes: {e:?}"))?,
                Op::TooLarge => {
                    for (form, r) in [
                        ("send", tx.send(&too_large)),
                        ("try_send", tx.try_send(&too_large)),
                        (
                            "send_timeout",
                            tx.send_timeout(&too_large, Duration::from_secs(1)),
                        ),
                    ] {
                        match r {
                            Err(Error::MessageTooLarge { len, max: m })
                                if len == max + 1 && m == max => {}
                            other => {
                                return Err(format!(
                                    "{form} of max + 1 = {} bytes: expected MessageTooLarge, got {other:?}",
                                    max + 1
                                ));
                            }
                        }
                    }
                }
            }
        }
        Ok(())
        // Dropping `tx` here disconnects the receiver, if the transport shows it.
    });
    let sees_peer_death = ctx.sees_peer_death();
    // Plain blocking receives, so that the property holds of them alone; the watchdog is the
    // thread's join. Returning an error drops `rx`, which wakes a sender blocked on a full
    // transport.
    let receiver = background(move || -> Result<Box<dyn Receiver>, String> {
        let mut rx = rx;
        let mut buf = vec![0; max];
        for (i, want) in expected.iter().enumerate() {
            let n = rx
                .recv(&mut buf)
                .map_err(|e| format!("recv of message {i} of {}: {e:?}", expected.len()))?;
            if buf[..n] != want[..] {
                return Err(format!(
                    "message {i} of {}: got {n} bytes, expected {} (wrong content or size)",
                    expected.len(),
                    want.len()
                ));
            }
        }
        if !sees_peer_death {
            return Ok(rx);
        }
        match rx.recv(&mut buf) {
            Err(Error::Disconnected) => Ok(rx),
            other => Err(format!(
                "after the {} messages and the sender's drop: expected Disconnected, got {other:?}",
                expected.len()
            )),
        }
    });
    let received = receiver.join("receiver");
    let sent = sender.join("sender");
    match (sent, received) {
        (Ok(()), Ok(mut rx)) if !sees_peer_death => {
            // The sender is done: anything still there is a stray or a duplicate.
            let r = rx.try_recv(&mut vec![0; max]);
            prop_assert!(
                matches!(r, Err(Error::Empty)),
                "after the {} messages, the sender done: expected Empty, got {r:?}",
                count
            );
            Ok(())
        }
        (Ok(()), Ok(_)) => Ok(()),
        (Err(e), _) => Err(TestCaseError::fail(format!("sender: {e}"))),
        (Ok(()), Err(e)) => Err(TestCaseError::fail(format!("receiver: {e}"))),
    }
}

/// Random sequences of messages of random sizes in `0..=max`, for several `max` (around the
/// atomic-write limit of pipes among them; none above the transport's largest), arrive whole,
/// once and in order; `max + 1` bytes are `MessageTooLarge` in every send form and send
/// nothing; the end is `Disconnected` (or, where the sender's drop does not show, nothing).
pub fn random_messages_arrive_whole_once_in_order(ctx: &Ctx) {
    let ctx = *ctx;
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        // A hang costs a watchdog period per shrinking step: bound the search.
        max_shrink_time: 60_000,
        ..Config::default()
    });
    let largest = ctx.capped(200_000);
    let fixed: Vec<usize> = [1, 100, 4091, 4092, 4096, 64 * 1024]
        .into_iter()
        .filter(|&size| size <= largest)
        .collect();
    // Each fixed size as likely as the whole range.
    let sizes = prop_oneof![
        fixed.len() as u32 => proptest::sample::select(fixed),
        1 => 1usize..=largest,
    ];
    let strategy = sizes.prop_flat_map(|max| (Just(max), any::<u64>(), ops(max)));
    if let Err(e) = runner.run(&strategy, |(max, seed, ops)| {
        check_sequence(ctx, max, seed, &ops)
    }) {
        panic!("{}: {e}", ctx.name());
    }
}

/// `max + 1` bytes are refused in every form without sending anything, at the atomic-write
/// boundary and at the default size; the next message arrives alone.
pub fn oversized_message_is_refused_and_sends_nothing(ctx: &Ctx) {
    for max in [4091, 4092, ctx.cfg().message_size] {
        let Pair {
            mut tx,
            mut rx,
            cleanup: _cleanup,
        } = ctx.pair(&Cfg::message_size(max));
        let big = vec![1; max + 1];
        let too_large = big.clone();
        let e = watch_tx(&mut tx, "send of max + 1", move |tx| tx.send(&too_large)).unwrap_err();
        assert!(
            matches!(e, Error::MessageTooLarge { len, max: m } if len == max + 1 && m == max),
            "send of {} bytes with max {max}: {e:?}",
            max + 1
        );
        let e = tx.try_send(&big).unwrap_err();
        assert!(
            matches!(e, Error::MessageTooLarge { .. }),
            "try_send: {e:?}"
        );
        let good = msg_of(max as u64, max);
        send_one(&mut tx, &good).expect("send after MessageTooLarge");
        let got = recv_one(&mut rx).expect("recv");
        assert!(
            got == good,
            "got {} bytes, expected the {max} sent",
            got.len()
        );
        let mut buf = vec![0; max + 1];
        let r = rx.try_recv(&mut buf);
        assert!(
            matches!(r, Err(Error::Empty)),
            "the refused message was delivered after all: {r:?}"
        );
    }
}

/// A buffer too small for the next message is `BufferTooSmall`; the message stays queued.
pub fn small_buffer_is_refused_and_keeps_the_message(ctx: &Ctx) {
    let Pair {
        mut tx,
        mut rx,
        cleanup: _cleanup,
    } = ctx.pair(&ctx.cfg());
    let first = msg_of(1, 100);
    let second = msg_of(2, 3);
    send_one(&mut tx, &first).unwrap();
    send_one(&mut tx, &second).unwrap();
    let mut small = [0; 99];
    for _ in 0..2 {
        let r = watch_rx(&mut rx, "recv into a small buffer", |rx| {
            rx.recv(&mut [0; 99])
        });
        assert!(
            matches!(
                r,
                Err(Error::BufferTooSmall {
                    len: 99,
                    needed: 100
                })
            ),
            "recv of 100 bytes into 99: {r:?}"
        );
    }
    let r = rx.try_recv(&mut small);
    assert!(
        matches!(
            r,
            Err(Error::BufferTooSmall {
                len: 99,
                needed: 100
            })
        ),
        "try_recv of 100 bytes into 99: {r:?}"
    );
    let got = watch_rx(&mut rx, "recv into an exact buffer", |rx| {
        let mut exact = [0; 100];
        rx.recv(&mut exact).map(|n| exact[..n].to_vec())
    });
    assert_eq!(got.unwrap(), first);
    let got = watch_rx(&mut rx, "recv into a tiny buffer", |rx| {
        let mut tiny = [0; 3];
        rx.recv(&mut tiny).map(|n| tiny[..n].to_vec())
    });
    assert_eq!(got.unwrap(), second);
}

/// `try_recv` on an empty transport is `Empty` (not `Timeout`, not blocking), before any
/// message and after the last one; with the sender gone it is `Disconnected` (still `Empty`
/// where the sender's drop does not show).
pub fn try_recv_on_empty_is_empty(ctx: &Ctx) {
    let Pair {
        mut tx,
        mut rx,
        cleanup: _cleanup,
    } = ctx.pair(&ctx.cfg());
    let r = watch_rx(&mut rx, "try_recv on empty", |rx| rx.try_recv(&mut [0; 64]));
    assert!(matches!(r, Err(Error::Empty)), "try_recv on empty: {r:?}");
    send_one(&mut tx, b"one").unwrap();
    assert_eq!(recv_one(&mut rx).unwrap(), b"one");
    let mut buf = [0; 64];
    let r = rx.try_recv(&mut buf);
    assert!(
        matches!(r, Err(Error::Empty)),
        "try_recv after the only message: {r:?}"
    );
    drop(tx);
    let r = rx.try_recv(&mut buf);
    if ctx.sees_peer_death() {
        assert!(
            matches!(r, Err(Error::Disconnected)),
            "try_recv with the sender gone: {r:?}"
        );
    } else {
        assert!(
            matches!(r, Err(Error::Empty)),
            "try_recv with the sender gone (invisible to a connectionless transport): {r:?}"
        );
    }
}

/// `recv_timeout` on an empty transport is `Timeout`, no earlier than asked and not much
/// later; a message then still arrives.
pub fn recv_timeout_waits_out_its_deadline(ctx: &Ctx) {
    let Pair {
        mut tx,
        mut rx,
        cleanup: _cleanup,
    } = ctx.pair(&ctx.cfg());
    for ms in [1, 50, 300] {
        let timeout = Duration::from_millis(ms);
        let (r, elapsed) = watch_rx(&mut rx, "recv_timeout", move |rx| {
            let mut buf = vec![0; 64 * 1024];
            let start = Instant::now();
            let r = rx.recv_timeout(&mut buf, timeout);
            (r, start.elapsed())
        });
        assert!(
            matches!(r, Err(Error::Timeout)),
            "recv_timeout({timeout:?}): {r:?}"
        );
        assert_waited("recv_timeout", elapsed, timeout);
    }
    send_one(&mut tx, b"late").unwrap();
    assert_eq!(recv_one(&mut rx).unwrap(), b"late");
}

/// Filled with `try_send`, the transport says `Full`; `send_timeout` then waits out its
/// deadline and says `Timeout`; neither sends anything; everything accepted arrives in order.
pub fn try_send_on_full_is_full_and_send_timeout_waits(ctx: &Ctx) {
    let cfg = ctx.cfg();
    let (
        Pair {
            mut tx,
            mut rx,
            cleanup: _cleanup,
        },
        n,
    ) = ctx.full_pair();
    let extra = msg_of(99, 64);
    let r = tx.try_send(&extra);
    assert!(
        matches!(r, Err(Error::Full)),
        "try_send on full, again: {r:?}"
    );
    let timeout = Duration::from_millis(300);
    let (r, elapsed) = watch_tx(&mut tx, "send_timeout on full", move |tx| {
        let start = Instant::now();
        let r = tx.send_timeout(&extra, timeout);
        (r, start.elapsed())
    });
    assert!(
        matches!(r, Err(Error::Timeout)),
        "send_timeout on full: {r:?}"
    );
    assert_waited("send_timeout", elapsed, timeout);
    let large = vec![3; cfg.message_size.min(60 * 1024)];
    let r = watch_tx(&mut tx, "large send_timeout on full", move |tx| {
        tx.send_timeout(&large, timeout)
    });
    assert!(
        matches!(r, Err(Error::Timeout)),
        "large send_timeout on full: {r:?}"
    );

    watch_rx(&mut rx, "receive what try_send accepted", move |rx| {
        let mut check = StreamCheck::new(1);
        let mut buf = vec![0; rx.max_message_size()];
        for _ in 0..n {
            let len = rx.recv(&mut buf).unwrap();
            check.accept(&buf[..len]).unwrap();
        }
    });
    let mut buf = vec![0; 64 * 1024];
    let r = rx.try_recv(&mut buf);
    assert!(
        matches!(r, Err(Error::Empty)),
        "after the {n} accepted messages, a refused one arrived: {r:?}"
    );
    tx.try_send(b"room again").expect("try_send after draining");
    assert_eq!(rx.try_recv(&mut buf).unwrap(), 10);
}

/// A large `send_timeout` that times out, possibly after part of it fitted (on a byte stream,
/// the part that fits goes in), is never delivered, not whole, not in part; one that
/// succeeds is delivered; the messages around it arrive intact either way.
pub fn timed_out_send_is_never_delivered(ctx: &Ctx) {
    // Sizes chosen so that a byte stream takes the interesting path: filled with frames of one
    // page each, one receive (reading ahead at most a large frame) frees fewer whole pages than
    // a large frame needs, so the large send gets in part of the way and then times out.
    let max = ctx.capped(200_000);
    const FILL: usize = 4091;
    let Pair {
        mut tx,
        mut rx,
        cleanup: _cleanup,
    } = ctx.pair(&Cfg::message_size(max));
    let n = drive::fill_with(&mut *tx, FILL).unwrap();
    // Writer 0: the small messages; writer 1: the large one.
    let mut check = StreamCheck::new(2);
    check.accept(&recv_one(&mut rx).unwrap()).unwrap();
    let mut large = Vec::new();
    message::encode(1, 0, max, &mut large);
    let (r, elapsed) = watch_tx(&mut tx, "large send_timeout", move |tx| {
        let start = Instant::now();
        let r = tx.send_timeout(&large, Duration::from_millis(200));
        (r, start.elapsed())
    });
    let delivered = match r {
        Ok(()) => 1,
        Err(Error::Timeout) => {
            assert_waited("send_timeout", elapsed, Duration::from_millis(200));
            0
        }
        Err(e) => panic!("large send_timeout: {e:?}"),
    };
    let mut last = Vec::new();
    message::encode(0, n, FILL, &mut last);
    // Blocks until the receiver below makes room; then drops `tx`, ending the stream.
    let sender = background(move || tx.send(&last));
    // The rest of the small ones, the last one, and the large one if it went in.
    let rest = n + delivered;
    let c = *ctx;
    let check = watch_rx(&mut rx, "receive the rest", move |rx| {
        let mut check = check;
        c.drain_stream(rx, &mut check, rest).map(|()| check)
    })
    .unwrap_or_else(|e| panic!("after the send_timeout ({r:?}): {e}"));
    sender
        .join("send after a timed-out send")
        .expect("send after a timed-out send");
    assert_eq!(check.count(0), n + 1, "small messages lost");
    assert_eq!(
        check.count(1),
        delivered,
        "send_timeout said {r:?}, and the message was delivered {} times",
        check.count(1)
    );
    ctx.expect_end(&mut rx, "the last message");
}

// ---------------------------------------------------------------------------------------------
// Disconnection in one process: for transports that see peer death, but for the last test

/// Messages sent before the sender is dropped are delivered, then every receive form says
/// `Disconnected`, repeatedly, without blocking.
pub fn dropped_sender_disconnects_after_queued_messages(ctx: &Ctx) {
    ctx.require_peer_death(true);
    let cfg = ctx.cfg();
    let Pair {
        mut tx,
        rx,
        cleanup: _cleanup,
    } = ctx.pair(&cfg);
    let sent = [msg_of(1, 10), msg_of(2, cfg.message_size), msg_of(3, 0)];
    for m in &sent {
        tx.send(m).unwrap();
    }
    drop(tx);
    bounded("receive after the sender's drop", WATCHDOG, move || {
        let mut rx = rx;
        let mut buf = vec![0; cfg.message_size];
        for m in &sent {
            let n = rx.recv(&mut buf).expect("a message sent before the drop");
            assert!(buf[..n] == m[..], "got {n} bytes, expected {}", m.len());
        }
        for _ in 0..2 {
            let r = rx.recv(&mut buf);
            assert!(matches!(r, Err(Error::Disconnected)), "recv: {r:?}");
            let r = rx.try_recv(&mut buf);
            assert!(matches!(r, Err(Error::Disconnected)), "try_recv: {r:?}");
            let r = rx.recv_timeout(&mut buf, Duration::from_secs(5));
            assert!(matches!(r, Err(Error::Disconnected)), "recv_timeout: {r:?}");
        }
    });
}

/// A receiver blocked on an empty transport wakes up with `Disconnected` when the sender goes.
pub fn blocked_recv_wakes_when_sender_dropped(ctx: &Ctx) {
    ctx.require_peer_death(true);
    let Pair {
        tx,
        mut rx,
        cleanup: _cleanup,
    } = ctx.pair(&ctx.cfg());
    let blocked = background(move || {
        let mut buf = vec![0; 64];
        (rx.recv(&mut buf), Instant::now())
    });
    let gone = Instant::now();
    drop(tx);
    let (r, returned) = blocked.join("recv with the sender dropped");
    assert!(matches!(r, Err(Error::Disconnected)), "{r:?}");
    assert_prompt(ctx.name(), "a recv with the sender dropped", gone, returned);
}

/// With the receiver gone, every send form says `Disconnected`, whatever the size.
pub fn dropped_receiver_disconnects_sender(ctx: &Ctx) {
    ctx.require_peer_death(true);
    let cfg = ctx.cfg();
    let Pair {
        tx,
        rx,
        cleanup: _cleanup,
    } = ctx.pair(&cfg);
    drop(rx);
    bounded("send with the receiver dropped", WATCHDOG, move || {
        let mut tx = tx;
        for len in [0, 10, 4091, cfg.message_size] {
            let m = msg_of(len as u64, len);
            let r = tx.send(&m);
            assert!(
                matches!(r, Err(Error::Disconnected)),
                "send of {len}: {r:?}"
            );
            let r = tx.try_send(&m);
            assert!(
                matches!(r, Err(Error::Disconnected)),
                "try_send of {len}: {r:?}"
            );
            let r = tx.send_timeout(&m, Duration::from_secs(5));
            assert!(
                matches!(r, Err(Error::Disconnected)),
                "send_timeout of {len}: {r:?}"
            );
        }
    });
}

/// A sender blocked on a full transport wakes up with `Disconnected` when the receiver goes.
/// For every transport: a connectionless one is removed by that receiver (see [`Factory`]).
pub fn blocked_send_wakes_when_receiver_dropped(ctx: &Ctx) {
    let Pair {
        mut tx,
        rx,
        cleanup: _cleanup,
    } = ctx.pair(&ctx.cfg());
    fill(&mut *tx).unwrap();
    let blocked = background(move || (tx.send(&[5; 1000]), Instant::now()));
    let gone = Instant::now();
    drop(rx);
    let (r, returned) = blocked.join("send with the receiver dropped");
    assert!(matches!(r, Err(Error::Disconnected)), "{r:?}");
    assert_prompt(
        ctx.name(),
        "a send with the receiver dropped",
        gone,
        returned,
    );
}

// ---------------------------------------------------------------------------------------------
// Across processes

/// Many messages of mixed sizes go intact, once, in order, from this process to a child; the
/// child sees `Disconnected` once we drop the sender (or, where that does not show, nothing
/// after the last one), and checks it all.
pub fn messages_cross_to_a_child_process(ctx: &Ctx) {
    let n = STREAM_MESSAGES.to_string();
    let (tx, mut peer) = ctx.child_receiver(&ctx.cfg(), "recv", &[&n, "1", ctx.stream_end()]);
    let progress = Progress::new();
    let sent = progress.clone();
    bounded_progress("send the stream", WATCHDOG, &progress, move || {
        let mut tx = tx;
        send_stream_counted(&mut *tx, 0, STREAM_MESSAGES, &sent).unwrap();
    });
    assert_eq!(peer.expect_line("ok"), n);
    peer.wait_success();
}

/// Many messages of mixed sizes go intact, once, in order, from a child to this process; its
/// exit is `Disconnected` after the last (or, where that does not show, nothing follows).
pub fn messages_cross_from_a_child_process(ctx: &Ctx) {
    let n = STREAM_MESSAGES.to_string();
    let (rx, mut peer) = ctx.child_sender(&ctx.cfg(), "send", &[&n, "0"]);
    let (mut rx, check) = ctx.drain_stream_bounded(rx, 1, STREAM_MESSAGES);
    check.finish(STREAM_MESSAGES).unwrap();
    peer.expect_line("ok");
    peer.wait_success();
    ctx.expect_end(&mut rx, "the child's stream");
}

/// Several child processes write concurrently with messages up to the atomic size: each
/// message arrives whole (no interleaving of frames), each writer's in order.
pub fn several_writer_processes_do_not_interleave(ctx: &Ctx) {
    const WRITERS: u32 = 4;
    const PER_WRITER: u64 = 2_000;
    let cfg = Cfg::message_size(ctx.factory.multi_writer_max());
    let n = PER_WRITER.to_string();
    let ids: Vec<String> = (0..WRITERS).map(|w| w.to_string()).collect();
    let cmds = ids
        .iter()
        .map(|id| ctx.command("send", &[&n, id, "on-go"]))
        .collect();
    let (rx, mut peers) = ctx
        .factory
        .spawn_senders(&cfg, cmds)
        .unwrap_or_else(|e| panic!("{}: cannot start the writers: {e}", ctx.name()));
    // All open, then all released at once: they write at the same time.
    for peer in &mut peers {
        peer.expect_line("ready");
    }
    for peer in &mut peers {
        peer.tell("go");
    }
    let (mut rx, check) =
        ctx.drain_stream_bounded(rx, WRITERS as usize, u64::from(WRITERS) * PER_WRITER);
    check.finish(PER_WRITER).unwrap();
    for peer in &mut peers {
        peer.wait_success();
    }
    ctx.expect_end(&mut rx, "the writers' streams");
    assert!(
        check.switches() > 0,
        "the writers never alternated: the test did not exercise concurrent writes"
    );
}

/// A child that sent some messages and exits normally: they all arrive, then `Disconnected`.
pub fn exited_sender_disconnects_after_its_messages(ctx: &Ctx) {
    ctx.require_peer_death(true);
    let (rx, mut peer) = ctx.child_sender(&ctx.cfg(), "send-hold", &["50"]);
    peer.expect_line("sent");
    peer.close_stdin();
    peer.wait_success();
    drain_bounded(rx, 1).unwrap().finish(50).unwrap();
}

/// A child killed with SIGKILL after sending: its messages still arrive, then `Disconnected`.
pub fn killed_sender_disconnects_after_its_messages(ctx: &Ctx) {
    ctx.require_peer_death(true);
    let (rx, mut peer) = ctx.child_sender(&ctx.cfg(), "send-hold", &["50"]);
    peer.expect_line("sent");
    peer.kill();
    drain_bounded(rx, 1).unwrap().finish(50).unwrap();
}

/// A receiver blocked waiting for a child that is then killed wakes up with `Disconnected`.
pub fn blocked_recv_wakes_when_sender_killed(ctx: &Ctx) {
    ctx.require_peer_death(true);
    let (mut rx, mut peer) = ctx.child_sender(&ctx.cfg(), "send-hold", &["1"]);
    peer.expect_line("sent");
    let blocked = background(move || {
        let mut buf = vec![0; rx.max_message_size()];
        let first = rx.recv(&mut buf).map(|n| buf[..n].to_vec());
        let second = rx.recv(&mut buf);
        (first, second, Instant::now())
    });
    let gone = Instant::now();
    peer.kill();
    let (first, second, returned) = blocked.join("recv with the sender killed");
    message::decode(&first.expect("the message sent before the kill")).unwrap();
    assert!(matches!(second, Err(Error::Disconnected)), "{second:?}");
    assert_prompt(ctx.name(), "a recv with the sender killed", gone, returned);
}

/// A child receiver that exits normally (without reading): our sends say `Disconnected`.
pub fn exited_receiver_disconnects_sender(ctx: &Ctx) {
    ctx.require_peer_death(true);
    let (mut tx, mut peer) = ctx.child_receiver(&ctx.cfg(), "recv-hold", &[]);
    peer.expect_line("ready");
    send_one(&mut tx, b"unread").unwrap();
    peer.close_stdin();
    peer.wait_success();
    let r = send_one(&mut tx, b"nobody home");
    assert!(matches!(r, Err(Error::Disconnected)), "{r:?}");
}

/// A sender blocked on a full transport whose receiving child is killed with SIGKILL wakes up
/// with `Disconnected`.
pub fn killed_receiver_wakes_blocked_sender(ctx: &Ctx) {
    ctx.require_peer_death(true);
    let (mut tx, mut peer) = ctx.child_receiver(&ctx.cfg(), "recv-hold", &[]);
    peer.expect_line("ready");
    fill(&mut *tx).unwrap();
    let blocked = background(move || (tx.send(&[1; 2000]), Instant::now()));
    let gone = Instant::now();
    peer.kill();
    let (r, returned) = blocked.join("send with the receiver killed");
    assert!(matches!(r, Err(Error::Disconnected)), "{r:?}");
    assert_prompt(
        ctx.name(),
        "a send with the receiver killed",
        gone,
        returned,
    );
}

fn assert_not_killed_by_sigpipe(peer: &mut Peer) {
    let status = peer.wait();
    assert!(
        status.success(),
        "the child with SIGPIPE at SIG_DFL: {}; stderr:\n{}",
        describe(status),
        peer.stderr_text()
    );
}

/// A child with SIGPIPE at its default action sends to a transport whose receiver is gone: it
/// gets `Disconnected` and exits normally, not killed by SIGPIPE.
pub fn sigpipe_default_child_gets_disconnected(ctx: &Ctx) {
    ctx.require_peer_death(true);
    let (rx, mut peer) = ctx.child_sender(&ctx.cfg(), "sigpipe-send", &["after"]);
    peer.expect_line("ready");
    drop(rx);
    peer.tell("go");
    assert_not_killed_by_sigpipe(&mut peer);
    assert_eq!(peer.expect_line("ok"), "");
}

/// Same, with the child blocked in a send on a full transport when the receiver goes. For every
/// transport: a connectionless one is removed by that receiver (see [`Factory`]), which the
/// blocked send sees.
pub fn sigpipe_default_child_blocked_in_send_gets_disconnected(ctx: &Ctx) {
    let (rx, mut peer) = ctx.child_sender(&ctx.cfg(), "sigpipe-send", &["blocked"]);
    peer.expect_line("full");
    drop(rx);
    assert_not_killed_by_sigpipe(&mut peer);
    assert_eq!(peer.expect_line("ok"), "");
}

/// Sends SIGUSR1 to `peer` every millisecond for `period`, or until it prints a line (then
/// returned).
fn pelt(peer: &mut Peer, period: Duration) -> Option<String> {
    let end = Instant::now() + period;
    while Instant::now() < end {
        if let Some(line) = peer.poll_line() {
            return Some(line);
        }
        if !peer.signal(Signal::SIGUSR1) {
            break;
        }
        // Paces the barrage (so that the peer makes progress between signals); not a
        // synchronisation: the peer's blocking call is the thing under test either way.
        thread::sleep(Duration::from_millis(1));
    }
    None
}

/// Parses `<signals caught> [<elapsed ms>]` from a peer's `ok` line.
fn caught_and_elapsed(rest: &str) -> (u64, Option<u64>) {
    let mut words = rest.split_whitespace().map(|w| w.parse::<u64>().unwrap());
    (words.next().expect("signal count"), words.next())
}

fn signals_during_recv(ctx: &Ctx, mode: &str) {
    let (mut tx, mut peer) = ctx.child_receiver(&ctx.cfg(), "signal-recv", &[mode]);
    peer.expect_line("ready");
    if let Some(line) = pelt(&mut peer, Duration::from_millis(250)) {
        panic!("the blocked {mode} returned before any message was sent: {line}");
    }
    send_one(&mut tx, &message::probe()).unwrap();
    let (caught, _) = caught_and_elapsed(&peer.expect_line("ok"));
    assert!(
        caught > 0,
        "no SIGUSR1 arrived during the {mode}: the test proved nothing"
    );
    peer.wait_success();
}

/// A blocking `recv` interrupted by many signals (handler without `SA_RESTART`) keeps
/// waiting and returns the message sent afterwards.
pub fn signals_do_not_break_blocking_recv(ctx: &Ctx) {
    signals_during_recv(ctx, "recv");
}

/// Same for `recv_timeout` with a long deadline.
pub fn signals_do_not_break_recv_timeout(ctx: &Ctx) {
    signals_during_recv(ctx, "recv-timeout");
}

/// A `recv_timeout` interrupted by many signals still waits out its whole deadline (and not
/// much longer: an interrupted wait must not restart the clock).
pub fn signals_do_not_shorten_recv_timeout(ctx: &Ctx) {
    const MS: u64 = 800;
    let (tx, mut peer) =
        ctx.child_receiver(&ctx.cfg(), "signal-recv", &["deadline", &MS.to_string()]);
    peer.expect_line("ready");
    let line = pelt(&mut peer, WATCHDOG).unwrap_or_else(|| {
        let status = peer.wait();
        panic!(
            "the peer said nothing: {}; stderr:\n{}",
            describe(status),
            peer.stderr_text()
        )
    });
    drop(tx);
    let rest = line
        .strip_prefix("ok")
        .unwrap_or_else(|| panic!("peer said `{line}`"));
    let (caught, elapsed) = caught_and_elapsed(rest);
    let elapsed = Duration::from_millis(elapsed.expect("elapsed ms"));
    assert!(caught > 0, "no SIGUSR1 arrived during the recv_timeout");
    // The peer measured from just before the call; millisecond truncation allows 1 ms less.
    assert_waited(
        "recv_timeout under signals",
        elapsed + Duration::from_millis(1),
        Duration::from_millis(MS),
    );
    peer.wait_success();
}

/// A `send` blocked on a full transport, interrupted by many signals, completes once there is
/// room; nothing is lost or duplicated.
pub fn signals_do_not_break_blocking_send(ctx: &Ctx) {
    let (rx, mut peer) = ctx.child_sender(&ctx.cfg(), "signal-send", &["send"]);
    let n: u64 = peer.expect_line("full").parse().unwrap();
    if let Some(line) = pelt(&mut peer, Duration::from_millis(250)) {
        panic!("the blocked send returned while the transport was full: {line}");
    }
    let (mut rx, check) = ctx.drain_stream_bounded(rx, 1, n + 1);
    check.finish(n + 1).unwrap();
    let (caught, _) = caught_and_elapsed(&peer.expect_line("ok"));
    assert!(caught > 0, "no SIGUSR1 arrived during the blocked send");
    peer.wait_success();
    ctx.expect_end(&mut rx, "the child's messages");
}

/// A `send_timeout` on a full transport interrupted by many signals still waits out its whole
/// deadline (and not much longer), says `Timeout`, and sends nothing.
pub fn signals_do_not_shorten_send_timeout(ctx: &Ctx) {
    const MS: u64 = 800;
    let (rx, mut peer) =
        ctx.child_sender(&ctx.cfg(), "signal-send", &["deadline", &MS.to_string()]);
    let n: u64 = peer.expect_line("full").parse().unwrap();
    let line = pelt(&mut peer, WATCHDOG).unwrap_or_else(|| {
        let status = peer.wait();
        panic!(
            "the peer said nothing: {}; stderr:\n{}",
            describe(status),
            peer.stderr_text()
        )
    });
    let rest = line
        .strip_prefix("ok")
        .unwrap_or_else(|| panic!("peer said `{line}`"));
    let (caught, elapsed) = caught_and_elapsed(rest);
    let elapsed = Duration::from_millis(elapsed.expect("elapsed ms"));
    assert!(caught > 0, "no SIGUSR1 arrived during the send_timeout");
    // The peer measured from just before the call; millisecond truncation allows 1 ms less.
    assert_waited(
        "send_timeout under signals",
        elapsed + Duration::from_millis(1),
        Duration::from_millis(MS),
    );
    peer.wait_success();
    // The filling messages, and not the one that timed out.
    let (mut rx, check) = ctx.drain_stream_bounded(rx, 1, n);
    check.finish(n).unwrap();
    ctx.expect_end(&mut rx, "the messages that filled the transport");
}

// ---------------------------------------------------------------------------------------------
// Waiting costs nothing

/// The most of one CPU a call may use while it is blocked: it should sleep. A transport that
/// waits by backing off (System V queues look every few milliseconds) costs a few percent in a
/// debug build; a call that spins costs all of it.
pub const BLOCKED_CPU_MAX: f64 = 0.3;

/// How long a blocked call's use of the CPU is watched.
const CPU_WINDOW: Duration = Duration::from_millis(500);

/// Checks that `thread`, blocked in `what` (the call has not returned: `still_blocked`), uses
/// at most [`BLOCKED_CPU_MAX`] of a CPU over [`CPU_WINDOW`].
fn assert_sleeps(
    name: &str,
    thread: &ProcThread,
    what: &str,
    still_blocked: impl FnOnce() -> bool,
) {
    let before = thread.cpu_time();
    let start = Instant::now();
    // A window to measure over, not a synchronisation: the call is blocked throughout.
    thread::sleep(CPU_WINDOW);
    let used = thread.cpu_time().saturating_sub(before);
    let elapsed = start.elapsed();
    assert!(
        still_blocked(),
        "{name}: {what} returned while it should have been blocked: the test proved nothing"
    );
    assert!(
        used.as_secs_f64() <= BLOCKED_CPU_MAX * elapsed.as_secs_f64(),
        "{name}: {what} used {used:?} of CPU in {elapsed:?} while blocked: it spins instead of \
         sleeping"
    );
}

/// Starts `f` on a thread and returns the thread's `/proc` view and its result, once the thread
/// is running.
fn watched_thread<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> (ProcThread, mpsc::Receiver<T>) {
    let (tid_tx, tid) = mpsc::channel();
    let (done_tx, done) = mpsc::channel();
    thread::spawn(move || {
        let _ = tid_tx.send(nix::unistd::gettid().as_raw());
        let _ = done_tx.send(f());
    });
    let tid = tid.recv_timeout(WATCHDOG).expect("the thread started");
    (ProcThread::of_tid(tid), done)
}

/// A call blocked on an empty or full transport sleeps rather than spins: a `recv` on an empty
/// transport, a `send` on a full one, and a writer process blocked on a full transport of
/// several writers (a multi-producer ring, whose writers also wait for one another's lock);
/// each then ends as usual (a message, `Disconnected` with the receiver gone).
pub fn blocked_calls_sleep_rather_than_spin(ctx: &Ctx) {
    let name = ctx.name();
    let Pair {
        mut tx,
        rx,
        cleanup: _cleanup,
    } = ctx.pair(&ctx.cfg());
    let (thread, done) = watched_thread(move || {
        let mut rx = rx;
        rx.recv(&mut [0; 64])
    });
    assert_sleeps(name, &thread, "a recv on an empty transport", || {
        matches!(done.try_recv(), Err(mpsc::TryRecvError::Empty))
    });
    send_one(&mut tx, b"wake").unwrap();
    let r = done
        .recv_timeout(WATCHDOG)
        .expect("recv still blocked after a message");
    assert!(
        matches!(r, Ok(4)),
        "{name}: the recv woken by a message: {r:?}"
    );

    let Pair {
        tx,
        rx,
        cleanup: _cleanup,
    } = ctx.pair(&ctx.cfg());
    let (thread, done) = watched_thread(move || {
        let mut tx = tx;
        fill(&mut *tx).unwrap();
        tx.send(&[5; 64])
    });
    assert_sleeps(name, &thread, "a send on a full transport", || {
        matches!(done.try_recv(), Err(mpsc::TryRecvError::Empty))
    });
    drop(rx);
    let r = done
        .recv_timeout(WATCHDOG)
        .expect("send still blocked with the receiver gone");
    assert!(
        matches!(r, Err(Error::Disconnected)),
        "{name}: the send woken by the receiver's drop: {r:?}"
    );

    let cfg = Cfg::message_size(ctx.factory.multi_writer_max().min(ctx.cfg().message_size));
    let cmds = vec![ctx.command("sigpipe-send", &["blocked"])];
    let (rx, mut peers) = ctx
        .factory
        .spawn_senders(&cfg, cmds)
        .unwrap_or_else(|e| panic!("{name}: cannot start the writer: {e}"));
    let peer = &mut peers[0];
    peer.expect_line("full");
    let thread = ProcThread::of_peer(peer);
    let what = "a writer of several blocked on a full transport";
    assert_sleeps(name, &thread, what, || {
        peer.poll_line().is_none() && !peer.has_exited()
    });
    drop(rx);
    assert_not_killed_by_sigpipe(peer);
    assert_eq!(peer.expect_line("ok"), "", "{name}: {what}");
}

// ---------------------------------------------------------------------------------------------
// Connectionless transports: a dead peer is invisible

/// Messages sent before the sender is dropped stay and are delivered; then the transport is
/// merely empty: `try_recv` says `Empty`, `recv_timeout` waits out its deadline, never
/// `Disconnected`.
pub fn dropped_sender_leaves_its_messages_queued(ctx: &Ctx) {
    ctx.require_peer_death(false);
    let cfg = ctx.cfg();
    let Pair {
        mut tx,
        mut rx,
        cleanup: _cleanup,
    } = ctx.pair(&cfg);
    let sent = [msg_of(1, 10), msg_of(2, cfg.message_size), msg_of(3, 0)];
    for m in &sent {
        send_one(&mut tx, m).unwrap();
    }
    drop(tx);
    for m in &sent {
        let got = recv_one(&mut rx).expect("a message sent before the drop");
        assert!(got == *m, "got {} bytes, expected {}", got.len(), m.len());
    }
    assert_quiet(&mut rx, "with the sender dropped");
}

/// `try_recv` is `Empty`, and `recv_timeout` waits out its deadline: the transport is open and
/// empty, whatever became of the peers.
fn assert_quiet(rx: &mut Box<dyn Receiver>, when: &str) {
    let mut buf = vec![0; rx.max_message_size()];
    let r = rx.try_recv(&mut buf);
    assert!(matches!(r, Err(Error::Empty)), "try_recv {when}: {r:?}");
    let timeout = Duration::from_millis(200);
    let (r, elapsed) = watch_rx(rx, "recv_timeout", move |rx| {
        let start = Instant::now();
        let r = rx.recv_timeout(&mut buf, timeout).map(|_| ());
        (r, start.elapsed())
    });
    assert!(
        matches!(r, Err(Error::Timeout)),
        "recv_timeout {when}: {r:?}"
    );
    assert_waited("recv_timeout", elapsed, timeout);
}

/// A child that sent some messages and exited: they are all there after its exit, then
/// nothing.
pub fn exited_sender_leaves_its_messages(ctx: &Ctx) {
    ctx.require_peer_death(false);
    let (rx, mut peer) = ctx.child_sender(&ctx.cfg(), "send-hold", &["5"]);
    peer.expect_line("sent");
    peer.close_stdin();
    peer.wait_success();
    let (mut rx, check) = ctx.drain_stream_bounded(rx, 1, 5);
    check.finish(5).unwrap();
    assert_quiet(&mut rx, "after the exited child's messages");
}

/// A child killed with SIGKILL after sending: its messages are still there, then nothing; a
/// receive blocked meanwhile is not woken by the death.
pub fn killed_sender_leaves_its_messages(ctx: &Ctx) {
    ctx.require_peer_death(false);
    let (rx, mut peer) = ctx.child_sender(&ctx.cfg(), "send-hold", &["5"]);
    peer.expect_line("sent");
    let (mut rx, check) = ctx.drain_stream_bounded(rx, 1, 5);
    check.finish(5).unwrap();
    let timeout = Duration::from_millis(300);
    let blocked = background(move || {
        let mut buf = vec![0; rx.max_message_size()];
        let start = Instant::now();
        let r = rx.recv_timeout(&mut buf, timeout).map(|_| ());
        (rx, r, start.elapsed())
    });
    peer.kill();
    let (mut rx, r, elapsed) = blocked.join("recv_timeout with the sender killed");
    assert!(
        matches!(r, Err(Error::Timeout)),
        "recv_timeout while the sender was killed: {r:?}"
    );
    assert_waited("recv_timeout", elapsed, timeout);
    assert_quiet(&mut rx, "after the killed child's messages");
}

/// A child receiver that exits: our sends still go into the transport until it is full (`Full`,
/// not `Disconnected`).
pub fn exited_receiver_is_invisible_to_sender(ctx: &Ctx) {
    ctx.require_peer_death(false);
    let (mut tx, mut peer) = ctx.child_receiver(&ctx.cfg(), "recv-hold", &[]);
    peer.expect_line("ready");
    send_one(&mut tx, b"unread").unwrap();
    peer.close_stdin();
    peer.wait_success();
    send_one(&mut tx, b"still accepted").expect("send with the receiver gone");
    // `fill` fails on anything but `Ok` and `Full`.
    fill(&mut *tx).unwrap();
    let r = tx.try_send(b"one too many");
    assert!(matches!(r, Err(Error::Full)), "try_send on full: {r:?}");
}
