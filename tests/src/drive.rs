//! Driving a transport with self-checking messages, shared by the tests and the peer.

use ipc::{Error, Receiver, Sender};

use crate::message::{self, StreamCheck};
use crate::process::{Progress, WATCHDOG, bounded_progress};

/// Sends messages `0..n` of `writer`, of sizes from [`message::size_for`], blocking as needed.
pub fn send_stream(tx: &mut dyn Sender, writer: u32, n: u64) -> Result<(), String> {
    send_stream_counted(tx, writer, n, &Progress::new())
}

/// [`send_stream`], stepping `progress` once per message sent (for
/// [`bounded_progress`]).
pub fn send_stream_counted(
    tx: &mut dyn Sender,
    writer: u32,
    n: u64,
    progress: &Progress,
) -> Result<(), String> {
    let max = tx.max_message_size();
    let mut msg = Vec::with_capacity(max);
    for seq in 0..n {
        message::encode(writer, seq, message::size_for(writer, seq, max), &mut msg);
        tx.send(&msg)
            .map_err(|e| format!("send #{seq} of {} bytes: {e:?}", msg.len()))?;
        progress.step();
    }
    Ok(())
}

/// Fills the transport with 64-byte messages `0..` of writer 0 until `try_send` says `Full`;
/// returns how many went in.
pub fn fill(tx: &mut dyn Sender) -> Result<u64, String> {
    fill_with(tx, 64)
}

/// [`fill`] with messages of `len` bytes (at least [`message::OVERHEAD`]).
pub fn fill_with(tx: &mut dyn Sender, len: usize) -> Result<u64, String> {
    let mut msg = Vec::new();
    // A bound, so that a transport that never reports Full fails instead of eating memory.
    for seq in 0..10_000_000 {
        message::encode(0, seq, len, &mut msg);
        match tx.try_send(&msg) {
            Ok(()) => {}
            Err(Error::Full) => return Ok(seq),
            Err(e) => return Err(format!("try_send #{seq} while filling: {e:?}")),
        }
    }
    Err("try_send never said Full after 10 million messages".into())
}

/// Receives into `check` with blocking `recv` until the senders are gone. Unbounded: run it
/// under a watchdog (the tests use [`drain_bounded`]; a peer is killed by its test).
pub fn drain(rx: &mut dyn Receiver, check: &mut StreamCheck) -> Result<(), String> {
    drain_paced(rx, check, std::time::Duration::ZERO)
}

/// [`drain`], pausing `pause` after each message: a reader slower than its writer, so that
/// the writer's side of the link is full when it closes.
pub fn drain_paced(
    rx: &mut dyn Receiver,
    check: &mut StreamCheck,
    pause: std::time::Duration,
) -> Result<(), String> {
    let mut buf = vec![0; rx.max_message_size()];
    loop {
        match rx.recv(&mut buf) {
            Ok(n) => check.accept(&buf[..n])?,
            Err(Error::Disconnected) => return Ok(()),
            Err(e) => return Err(format!("recv after {} messages: {e:?}", check.total())),
        }
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
    }
}

/// Receives exactly `n` messages into `check` with blocking `recv`, for transports where the
/// end of a stream need not show (see [`Factory::sees_peer_death`](crate::Factory)). Unbounded
/// like [`drain`].
pub fn drain_exact(rx: &mut dyn Receiver, check: &mut StreamCheck, n: u64) -> Result<(), String> {
    let mut buf = vec![0; rx.max_message_size()];
    for i in 0..n {
        let len = rx
            .recv(&mut buf)
            .map_err(|e| format!("recv of message {i} of {n}: {e:?}"))?;
        check.accept(&buf[..len])?;
    }
    Ok(())
}

/// [`drain`] on a thread, for `writers` writers; panics on a hang (no message for
/// [`WATCHDOG`]), however long the whole stream takes.
pub fn drain_bounded(rx: Box<dyn Receiver>, writers: usize) -> Result<StreamCheck, String> {
    let check = StreamCheck::new(writers);
    let progress = check.progress();
    bounded_progress(
        "receive until Disconnected",
        WATCHDOG,
        &progress,
        move || {
            let (mut rx, mut check) = (rx, check);
            drain(&mut *rx, &mut check).map(|()| check)
        },
    )
}
