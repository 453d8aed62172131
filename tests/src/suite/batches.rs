//! What `Sender::send_batch` and `Receiver::recv_batch` promise, on every transport: a batch is
//! its messages sent one by one, whole, once and in order, and a batch cut short by a full
//! transport (no wait, or a deadline) sent exactly the front part it counts, no more.

use std::time::{Duration, Instant};

use ipc::{Error, Receiver, Wait};

use super::{Ctx, assert_waited};
use crate::message::{self, StreamCheck};
use crate::process::{WATCHDOG, bounded_progress, recv_one, watch_rx, watch_tx};

/// Messages the child sends in batches.
const BATCH_MESSAGES: u64 = 2_000;

/// Receives with `recv_batch`, into a buffer and a number of length slots drawn from `seed` at
/// each call, until `Disconnected` (`until_gone`) or else `n` messages: every message into
/// `check`, and the counts the calls return must be the messages they put in the buffer.
fn recv_batches(
    rx: &mut dyn Receiver,
    check: &mut StreamCheck,
    n: u64,
    seed: u64,
    until_gone: bool,
) -> Result<(), String> {
    let max = rx.max_message_size();
    let mut state = seed ^ 0xBA7C_4E55;
    let mut buf = vec![0; 3 * max];
    let mut lens = [0; 16];
    let mut counted = 0;
    while until_gone || counted < n {
        let room = max + (message::splitmix64(&mut state) % (2 * max as u64 + 1)) as usize;
        let slots = 1 + (message::splitmix64(&mut state) % lens.len() as u64) as usize;
        match rx.recv_batch(&mut buf[..room], &mut lens[..slots], Wait::Forever) {
            Ok(got) => {
                if got == 0 || got > slots {
                    return Err(format!("recv_batch with {slots} slots said {got}"));
                }
                let bytes: usize = lens[..got].iter().sum();
                if bytes > room {
                    return Err(format!(
                        "recv_batch put {bytes} bytes in a buffer of {room} ({:?})",
                        &lens[..got]
                    ));
                }
                for msg in ipc::batch_messages(&buf, &lens[..got]) {
                    check.accept(msg)?;
                }
                counted += got as u64;
            }
            Err(Error::Disconnected) if until_gone => break,
            Err(e) => return Err(format!("recv_batch after {counted} messages: {e:?}")),
        }
    }
    if counted != check.total() {
        return Err(format!(
            "recv_batch counted {counted} messages, {} arrived",
            check.total()
        ));
    }
    Ok(())
}

/// A child sends a stream in random batches (`send_batch`, waiting as long as needed), this
/// process receives it in random batches (`recv_batch`): every message arrives whole, once, in
/// order, and the counts both ends return add up to the stream.
pub fn batches_cross_from_a_child_process_whole_once_in_order(ctx: &Ctx) {
    let seed = message::seed(
        "batches_cross_from_a_child_process_whole_once_in_order",
        "IPC_TEST_BATCH_SEED",
    );
    let (n, s) = (BATCH_MESSAGES.to_string(), seed.to_string());
    let (rx, mut peer) = ctx.child_sender(&ctx.cfg(), "send-batches", &[&n, &s]);
    let until_gone = ctx.sees_peer_death();
    let check = StreamCheck::new(1);
    let progress = check.progress();
    let (mut rx, check) = bounded_progress("receive the batches", WATCHDOG, &progress, move || {
        let (mut rx, mut check) = (rx, check);
        recv_batches(&mut *rx, &mut check, BATCH_MESSAGES, seed, until_gone).map(|()| (rx, check))
    })
    .unwrap_or_else(|e| panic!("{} (seed {seed}): {e}", ctx.name()));
    let said = peer.expect_line("ok");
    peer.wait_success();
    let sent = said.split_whitespace().nth(1);
    assert_eq!(
        sent,
        Some(n.as_str()),
        "{}: the sender's send_batch calls counted `{said}`",
        ctx.name()
    );
    check.finish(BATCH_MESSAGES).unwrap();
    ctx.expect_end(&mut rx, "the batches");
}

/// Messages `from..to` of writer 1, 64 bytes each.
fn batch(from: u64, to: u64) -> Vec<Vec<u8>> {
    (from..to)
        .map(|seq| {
            let mut msg = Vec::new();
            message::encode(1, seq, 64, &mut msg);
            msg
        })
        .collect()
}

/// `send_batch` of `msgs` without waiting, or waiting at most `timeout`: how many it sent, 0
/// for the error that says none could be (`Full` without waiting, else `Timeout`, which it must
/// wait out). Fewer than all with a deadline must wait it out too.
fn send_part(
    ctx: &Ctx,
    tx: &mut Box<dyn ipc::Sender>,
    msgs: Vec<Vec<u8>>,
    timeout: Option<Duration>,
) -> u64 {
    let len = msgs.len();
    let (r, elapsed) = watch_tx(tx, "send_batch on a full transport", move |tx| {
        let batch: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        let start = Instant::now();
        let wait = timeout.map_or(Wait::Never, |t| Wait::Until(start + t));
        let r = tx.send_batch(&batch, wait);
        (r, start.elapsed())
    });
    match (r, timeout) {
        (Ok(sent), _) if (1..=len).contains(&sent) => {
            if let Some(timeout) = timeout.filter(|_| sent < len) {
                assert_waited("send_batch cut short by its deadline", elapsed, timeout);
            }
            sent as u64
        }
        (Err(Error::Full), None) => 0,
        (Err(Error::Timeout), Some(timeout)) => {
            assert_waited("send_batch that sent nothing", elapsed, timeout);
            0
        }
        (r, _) => panic!(
            "{}: send_batch of {len} messages (waiting {timeout:?}) on a full transport: {r:?}",
            ctx.name()
        ),
    }
}

/// How long the batches with a deadline wait for room.
const PART_TIMEOUT: Duration = Duration::from_millis(300);

/// Messages per batch of [`batch_on_full_sends_exactly_what_it_counts`].
const PART_BATCH: u64 = 24;

/// Sends batches of writer 1 from message `next` on, without waiting or waiting at most
/// `timeout`, until one is cut short (the transport is full); returns the next message.
fn send_until_cut(
    ctx: &Ctx,
    tx: &mut Box<dyn ipc::Sender>,
    mut next: u64,
    timeout: Option<Duration>,
) -> u64 {
    // A bound, so that a transport that never fills fails instead of eating memory.
    for _ in 0..100_000 {
        let sent = send_part(ctx, tx, batch(next, next + PART_BATCH), timeout);
        next += sent;
        if sent < PART_BATCH {
            return next;
        }
    }
    panic!(
        "{}: {next} messages in batches and still not full",
        ctx.name()
    );
}

/// On a full transport, `send_batch` without waiting says `Full` and with a deadline waits it
/// out and says `Timeout`, sending nothing; with room for a few messages, it sends a front part
/// of the batch and counts it exactly (waiting out its deadline, if it has one, for the rest):
/// the receiver gets what was there, then exactly the messages counted, in order, and nothing
/// more.
pub fn batch_on_full_sends_exactly_what_it_counts(ctx: &Ctx) {
    let (pair, n) = ctx.full_pair();
    let (mut tx, mut rx) = (pair.tx, pair.rx);
    for timeout in [None, Some(PART_TIMEOUT)] {
        let sent = send_part(ctx, &mut tx, batch(0, 8), timeout);
        assert_eq!(
            sent,
            0,
            "{}: send_batch on a full transport sent {sent}",
            ctx.name()
        );
    }

    // Writer 0: the messages that filled it; writer 1: the batches. Each round makes room for
    // a few messages and sends batches until one is cut short, without waiting and then with
    // a deadline.
    let mut check = StreamCheck::new(2);
    let mut sent = 0;
    for timeout in [None, Some(PART_TIMEOUT)] {
        for _ in 0..n.min(4) {
            check.accept(&recv_one(&mut rx).unwrap()).unwrap();
        }
        sent = send_until_cut(ctx, &mut tx, sent, timeout);
    }
    let left = n + sent - check.total();
    let name = ctx.name();
    let check = watch_rx(&mut rx, "receive what the batches counted", move |rx| {
        let mut check = check;
        let mut buf = vec![0; rx.max_message_size()];
        for i in 0..left {
            let len = rx.recv(&mut buf).unwrap_or_else(|e| {
                panic!("{name}: message {i} of the {left} left, {sent} of them batched: {e:?}")
            });
            check.accept(&buf[..len]).unwrap();
        }
        check
    });
    let mut buf = vec![0; rx.max_message_size()];
    let r = rx.try_recv(&mut buf);
    assert!(
        matches!(r, Err(Error::Empty)),
        "{}: the batches counted {sent} messages, and more arrived: {r:?}",
        ctx.name()
    );
    assert_eq!((check.count(0), check.count(1)), (n, sent));
}
