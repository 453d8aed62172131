//! What `framing=lines`, `framing=raw` and `framing=packets` promise on a byte stream (pipes,
//! FIFOs), stamped by `conformance_tests!(@framings)` for the transports that take the option.
//!
//! The main suite sends arbitrary bytes, which lines cannot carry (a `\n` would split a message)
//! and raw does not keep apart, and messages of any size from empty up, which packets cannot
//! carry (1 to 4096 bytes); these properties are the part of its promises each framing still
//! makes: lines arrive whole, once and in order, a line cut short by a deadline is completed
//! rather than torn, raw keeps the bytes and their order, and packets arrive whole, once and
//! in order, sent exactly or not at all.

use std::thread;

use ipc::{Error, Framing, Receiver, Sender};

use super::Ctx;
use crate::process::WATCHDOG;
use crate::{Cfg, Pair, message};

fn cfg(framing: Framing, message_size: usize, capacity: Option<usize>) -> Cfg {
    Cfg {
        message_size,
        capacity,
        framing: Some(framing),
        wait: None,
    }
}

/// `len` pseudo-random bytes of message `i`, with every `\n` replaced so it is one line.
fn line(i: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0; len];
    message::fill(i, &mut out);
    for b in &mut out {
        if *b == b'\n' {
            *b = b' ';
        }
    }
    out
}

/// Receives in another thread until the sender leaves; every wait bounded by the watchdog.
fn collect(mut rx: Box<dyn Receiver>) -> thread::JoinHandle<Vec<Vec<u8>>> {
    thread::spawn(move || {
        let mut buf = vec![0; rx.max_message_size()];
        let mut got = Vec::new();
        loop {
            match rx.recv_timeout(&mut buf, WATCHDOG) {
                Ok(n) => got.push(buf[..n].to_vec()),
                Err(Error::Disconnected) => return got,
                Err(e) => panic!("receive {}: {e}", got.len()),
            }
        }
    })
}

/// Lines of every size up to `message_size`, across `PIPE_BUF` and the empty line, arrive
/// whole, once and in order.
pub fn lines_arrive_whole_once_in_order(ctx: &Ctx) {
    let max = 64 * 1024;
    let Pair {
        tx,
        rx,
        cleanup: _cleanup,
    } = ctx.pair(&cfg(Framing::Lines, max, None));
    let receiver = collect(rx);
    let sizes = [
        0,
        1,
        100,
        4094,
        4095,
        4096,
        5000,
        0,
        max - 1,
        max,
        3,
        20_000,
    ];
    let sent: Vec<Vec<u8>> = (0..200u64)
        .map(|i| line(i, sizes[i as usize % sizes.len()]))
        .collect();
    arrive_whole_once_in_order(ctx, tx, receiver, &sent);
}

/// Sends `sent` one by one, then leaves: `receiver` got exactly them.
fn arrive_whole_once_in_order(
    ctx: &Ctx,
    mut tx: Box<dyn Sender>,
    receiver: thread::JoinHandle<Vec<Vec<u8>>>,
    sent: &[Vec<u8>],
) {
    for (i, msg) in sent.iter().enumerate() {
        tx.send(msg)
            .unwrap_or_else(|e| panic!("{}: send {i}: {e}", ctx.name()));
    }
    drop(tx);
    let got = receiver.join().unwrap();
    assert_eq!(got.len(), sent.len(), "{}", ctx.name());
    assert!(got == sent, "{}: messages differ", ctx.name());
}

/// A message holding `\n` is refused in every form and sends nothing; the next one arrives
/// alone.
pub fn a_line_holding_a_newline_is_refused_and_sends_nothing(ctx: &Ctx) {
    refused_in_every_form(ctx, Framing::Lines, [b"two\nlines", b"\n", b"x\n"]);
}

/// `bad` (one message per form: `send`, `try_send`, `try_send_part`) is
/// [`Error::InvalidMessage`] and sends nothing: the next message arrives alone.
fn refused_in_every_form(ctx: &Ctx, framing: Framing, bad: [&[u8]; 3]) {
    let Pair {
        mut tx,
        mut rx,
        cleanup: _cleanup,
    } = ctx.pair(&cfg(framing, 100, None));
    for result in [
        tx.send(bad[0]),
        tx.try_send(bad[1]),
        tx.try_send_part(bad[2], false),
    ] {
        assert!(
            matches!(result, Err(Error::InvalidMessage { .. })),
            "{}: {result:?}",
            ctx.name()
        );
    }
    tx.send(b"ok").unwrap();
    let mut buf = [0; 100];
    let n = rx.recv_timeout(&mut buf, WATCHDOG).unwrap();
    assert_eq!(&buf[..n], b"ok");
    assert!(matches!(rx.try_recv(&mut buf), Err(Error::Empty)));
}

/// Lines of up to `PIPE_BUF` are written atomically, so `try_send` on a full pipe is exact:
/// `Full` sent nothing, `Ok` is delivered whole.
pub fn lines_try_send_on_full_is_exact(ctx: &Ctx) {
    try_send_on_full_is_exact(ctx, &cfg(Framing::Lines, 100, Some(4096)), |i| {
        line(i, 1 + (i as usize * 7) % 100)
    });
}

/// `try_send`s message `i` of `message(i)` until `Full`, then receives until `Empty`: what
/// was received is exactly what was accepted.
fn try_send_on_full_is_exact(ctx: &Ctx, cfg: &Cfg, message: impl Fn(u64) -> Vec<u8>) {
    let Pair {
        mut tx,
        mut rx,
        cleanup: _cleanup,
    } = ctx.pair(cfg);
    let mut accepted = Vec::new();
    for i in 0.. {
        assert!(i < 100_000, "{}: never full", ctx.name());
        let msg = message(i);
        match tx.try_send(&msg) {
            Ok(()) => accepted.push(msg),
            Err(Error::Full) => break,
            Err(e) => panic!("{}: {e}", ctx.name()),
        }
    }
    let mut buf = vec![0; cfg.message_size];
    let mut got = Vec::new();
    loop {
        match rx.try_recv(&mut buf) {
            Ok(n) => got.push(buf[..n].to_vec()),
            Err(Error::Empty) => break,
            Err(e) => panic!("{}: {e}", ctx.name()),
        }
    }
    assert!(
        got == accepted,
        "{}: {} of {}",
        ctx.name(),
        got.len(),
        accepted.len()
    );
}

/// A line longer than the pipe's free room, cut short by its deadline after part of it went
/// out, cannot be withdrawn: it arrives whole, before the next message, whether the cut came
/// from `try_send` (which then says `Ok`), `send_timeout` or a `try_send_part` that is not
/// resumed, or a sender dropped owing it. Never torn, never interleaved.
pub fn a_long_line_cut_by_its_deadline_arrives_whole_before_the_next(ctx: &Ctx) {
    type Cut = fn(&mut Box<dyn Sender>, &[u8]) -> ipc::Result<()>;
    let cuts: [(&str, Cut); 3] = [
        ("try_send", |tx, m| tx.try_send(m)),
        ("send_timeout", |tx, m| {
            tx.send_timeout(m, std::time::Duration::from_millis(1))
        }),
        ("try_send_part", |tx, m| tx.try_send_part(m, false)),
    ];
    for (how, cut) in cuts {
        let Pair {
            mut tx,
            rx,
            cleanup: _cleanup,
        } = ctx.pair(&cfg(Framing::Lines, 64 * 1024, Some(4096)));
        let long = line(7, 60_000);
        let result = cut(&mut tx, &long);
        let expected: Vec<Vec<u8>> = match result {
            // On an empty pipe part of it always goes out: it is owed from now on.
            Ok(()) | Err(Error::Full) => vec![long, b"next".to_vec()],
            Err(e) => panic!("{}: {how}: {e}", ctx.name()),
        };
        let receiver = collect(rx);
        tx.send(b"next").unwrap();
        drop(tx);
        let got = receiver.join().unwrap();
        assert!(
            got == expected,
            "{}: {how}: got {} lines",
            ctx.name(),
            got.len()
        );
    } // Dropped while it owes the rest: the drop writes it (within a bound) rather than leave a
    // torn last line, which the receiver would deliver as if whole.
    let Pair {
        mut tx,
        rx,
        cleanup: _cleanup,
    } = ctx.pair(&cfg(Framing::Lines, 64 * 1024, Some(4096)));
    let long = line(8, 60_000);
    tx.try_send(&long).unwrap();
    let receiver = collect(rx);
    drop(tx);
    let got = receiver.join().unwrap();
    assert!(
        got == [long],
        "{}: dropped: got {} lines",
        ctx.name(),
        got.len()
    );
}

/// Lines read ahead into the receiver's buffer show through readiness as "retry now", since
/// the descriptor no longer shows them.
pub fn lines_read_ahead_show_through_readiness(ctx: &Ctx) {
    let Pair {
        mut tx,
        mut rx,
        cleanup: _cleanup,
    } = ctx.pair(&cfg(Framing::Lines, 100, None));
    tx.send(b"a").unwrap();
    tx.send(b"b").unwrap();
    let mut buf = [0; 100];
    assert_eq!(rx.recv_timeout(&mut buf, WATCHDOG).unwrap(), 1);
    let ready = rx.readiness().expect("pipes have readiness");
    assert!(
        ready.prepare_wait().unwrap(),
        "{}: `b` is buffered",
        ctx.name()
    );
    let n = rx.try_recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"b");
    let ready = rx.readiness().expect("pipes have readiness");
    assert!(
        !ready.prepare_wait().unwrap(),
        "{}: nothing left",
        ctx.name()
    );
}

/// Raw keeps the bytes and their order, `\n` included, but no boundaries: what the receives
/// return, put together, is what the sends wrote, each receive at most `message_size`.
pub fn raw_delivers_the_bytes_in_order(ctx: &Ctx) {
    let max = 16 * 1024;
    let Pair {
        mut tx,
        rx,
        cleanup: _cleanup,
    } = ctx.pair(&cfg(Framing::Raw, max, None));
    let receiver = collect(rx);
    let mut sent = Vec::new();
    for i in 0..100u64 {
        let mut chunk = vec![0; (i as usize * 977) % (max + 1)];
        message::fill(i, &mut chunk);
        tx.send(&chunk).unwrap();
        sent.extend(chunk);
    }
    drop(tx);
    let got = receiver.join().unwrap();
    assert!(got.iter().all(|r| r.len() <= max && !r.is_empty()));
    assert!(got.concat() == sent, "{}: raw bytes differ", ctx.name());
}

/// Packets of every size from 1 to `PIPE_BUF`, many in the pipe at once, arrive whole, once
/// and in order: the kernel keeps them apart.
pub fn packets_arrive_whole_once_in_order(ctx: &Ctx) {
    let Pair {
        tx,
        rx,
        cleanup: _cleanup,
    } = ctx.pair(&cfg(Framing::Packets, 4096, None));
    let receiver = collect(rx);
    let sizes = [1, 4096, 2, 4095, 64, 100, 4094, 3, 1000, 4096];
    let sent: Vec<Vec<u8>> = (0..300u64)
        .map(|i| {
            let mut msg = vec![0; sizes[i as usize % sizes.len()]];
            message::fill(i, &mut msg);
            msg
        })
        .collect();
    arrive_whole_once_in_order(ctx, tx, receiver, &sent);
}

/// An empty message cannot be a packet (a zero-byte write makes none): refused in every form,
/// it sends nothing, and the next message arrives alone.
pub fn an_empty_packet_is_refused_and_sends_nothing(ctx: &Ctx) {
    refused_in_every_form(ctx, Framing::Packets, [b"", b"", b""]);
}

/// A packet is written whole or not at all, so `try_send` on a full pipe is exact: `Full`
/// sent nothing, `Ok` is delivered whole.
pub fn packets_try_send_on_full_is_exact(ctx: &Ctx) {
    try_send_on_full_is_exact(ctx, &cfg(Framing::Packets, 4096, None), |i| {
        let mut msg = vec![0; 1 + (i as usize * 997) % 4096];
        message::fill(i, &mut msg);
        msg
    });
}
