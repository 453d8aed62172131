//! Readiness of pipe ends: the descriptor, the protocol, the other side leaving, and messages
//! larger than the pipe sent in parts by an event loop. Every wait has a deadline.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use ipc_core::{Error, Interest, Readiness, Receiver, Sender};
use ipc_pipe::{PipeConfig, PipeReceiver, PipeSender};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};

/// Long enough for anything that does happen; what must not happen is checked for a while
/// shorter than this.
const DEADLINE: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(50);

/// One round of the protocol's sleep: `prepare_wait`, then `poll` for the interest at most
/// `within`, then `after_wake`. Whether the endpoint said to try again within that time.
fn wait_ready(ready: &mut dyn Readiness, within: Duration) -> bool {
    if ready.prepare_wait().unwrap() {
        return true;
    }
    let woke = {
        let (fd, interest) = ready.ready_fd().unwrap();
        let events = match interest {
            Interest::Readable => PollFlags::POLLIN,
            Interest::Writable => PollFlags::POLLOUT,
        };
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let ms = PollTimeout::from(left.as_millis().min(60_000) as u16);
            let mut fds = [PollFd::new(fd, events)];
            match nix::poll::poll(&mut fds, ms) {
                Ok(0) if left.is_zero() => break false,
                Ok(0) => continue,
                Ok(_) => break true,
                Err(Errno::EINTR) => continue,
                Err(e) => panic!("poll: {e}"),
            }
        }
    };
    if woke {
        ready.after_wake();
    }
    woke
}

/// Receives one message as an event loop does, within [`DEADLINE`].
fn recv_ready(rx: &mut dyn Receiver, buf: &mut [u8]) -> Result<usize, Error> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        match rx.try_recv(buf) {
            Err(Error::Empty) => {}
            done => return done,
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no message within {DEADLINE:?}");
        wait_ready(rx.readiness().expect("pipes have readiness"), left);
    }
}

fn channel(message_size: usize, capacity: usize) -> (PipeSender, PipeReceiver) {
    ipc_pipe::channel(&PipeConfig {
        message_size,
        capacity: Some(capacity),
        ..PipeConfig::default()
    })
    .unwrap()
}

#[test]
fn the_descriptor_is_the_pipe_and_shows_messages() {
    let (mut tx, mut rx) = channel(1024, 64 * 1024);
    let rx_fd = rx.as_fd().try_clone_to_owned().unwrap();
    {
        let (fd, interest) = rx.readiness().unwrap().ready_fd().unwrap();
        assert_eq!(interest, Interest::Readable);
        assert_eq!(
            nix::sys::stat::fstat(fd).unwrap().st_ino,
            nix::sys::stat::fstat(rx_fd.as_fd()).unwrap().st_ino
        );
    }
    let (_, interest) = tx.readiness().unwrap().ready_fd().unwrap();
    assert_eq!(interest, Interest::Writable);
    // Room: the sender is ready at once.
    assert!(wait_ready(tx.readiness().unwrap(), DEADLINE));

    let mut buf = [0u8; 1024];
    assert!(matches!(rx.try_recv(&mut buf), Err(Error::Empty)));
    assert!(!wait_ready(rx.readiness().unwrap(), QUIET));
    tx.try_send(b"one").unwrap();
    assert!(wait_ready(rx.readiness().unwrap(), DEADLINE));
    assert_eq!(rx.try_recv(&mut buf).unwrap(), 3);
    assert!(matches!(rx.try_recv(&mut buf), Err(Error::Empty)));
    assert!(!wait_ready(rx.readiness().unwrap(), QUIET));
}

#[test]
fn a_frame_read_ahead_is_retry_now() {
    let (mut tx, mut rx) = channel(1024, 64 * 1024);
    tx.try_send(b"first").unwrap();
    tx.try_send(b"second").unwrap();
    let mut buf = [0u8; 1024];
    assert_eq!(rx.try_recv(&mut buf).unwrap(), 5);
    // "second" left the pipe with "first": the descriptor cannot show it.
    assert!(rx.readiness().unwrap().prepare_wait().unwrap());
    assert_eq!(rx.try_recv(&mut buf).unwrap(), 6);
    assert!(!rx.readiness().unwrap().prepare_wait().unwrap());
}

#[test]
fn a_closed_writer_makes_the_receiver_ready_then_disconnected() {
    let (mut tx, mut rx) = channel(1024, 64 * 1024);
    tx.try_send(b"last words").unwrap();
    drop(tx);
    let mut buf = [0u8; 1024];
    assert_eq!(recv_ready(&mut rx, &mut buf).unwrap(), 10);
    // Nothing left but the hang-up: still ready, and the call says why.
    assert!(wait_ready(rx.readiness().unwrap(), DEADLINE));
    assert!(matches!(rx.try_recv(&mut buf), Err(Error::Disconnected)));
    assert!(matches!(
        recv_ready(&mut rx, &mut buf),
        Err(Error::Disconnected)
    ));
}

#[test]
fn a_full_pipe_is_not_writable_until_drained_and_a_gone_reader_wakes_the_sender() {
    let (mut tx, mut rx) = channel(1000, 4096);
    let msg = [7u8; 1000];
    let mut sent = 0;
    loop {
        match tx.try_send(&msg) {
            Ok(()) => sent += 1,
            Err(Error::Full) => break,
            Err(e) => panic!("{e}"),
        }
        assert!(sent < 1000, "the pipe never filled");
    }
    assert!(!wait_ready(tx.readiness().unwrap(), QUIET));
    let mut buf = [0u8; 1000];
    for _ in 0..sent {
        assert_eq!(rx.try_recv(&mut buf).unwrap(), 1000);
    }
    assert!(wait_ready(tx.readiness().unwrap(), DEADLINE));
    tx.try_send(&msg).unwrap();
    // Fill it again, then the reader goes: POLLERR wakes the sender.
    while tx.try_send(&msg).is_ok() {}
    drop(rx);
    assert!(wait_ready(tx.readiness().unwrap(), DEADLINE));
    assert!(matches!(tx.try_send(&msg), Err(Error::Disconnected)));
    assert!(matches!(
        tx.try_send_part(&msg, false),
        Err(Error::Disconnected)
    ));
}

/// Sends `msg` as an event loop does: `try_send_part`, resumed after each wake-up; calls
/// `on_full` the first time the pipe is full. Returns the number of wake-ups it took.
fn send_ready(tx: &mut dyn Sender, msg: &[u8], mut on_full: impl FnMut()) -> Result<usize, Error> {
    let deadline = Instant::now() + DEADLINE;
    let mut resume = false;
    let mut rounds = 0;
    loop {
        match tx.try_send_part(msg, resume) {
            Err(Error::Full) => {}
            done => return done.map(|()| rounds),
        }
        if rounds == 0 {
            on_full();
        }
        resume = true;
        rounds += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "not sent within {DEADLINE:?}");
        wait_ready(tx.readiness().expect("pipes have readiness"), left);
    }
}

#[test]
fn a_message_larger_than_the_pipe_goes_through_an_event_loop_in_parts() {
    let size = 1 << 20;
    let (tx, mut rx) = channel(size, 64 * 1024);
    let msg: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let expected = msg.clone();
    // Boxed, as a transport chosen at run time is.
    let mut tx: Box<dyn Sender> = Box::new(tx);
    let (filled, first_full) = std::sync::mpsc::channel();
    let sender = std::thread::spawn(move || {
        let rounds = send_ready(&mut *tx, &msg, || filled.send(()).unwrap()).unwrap();
        // A message after it arrives intact too.
        send_ready(&mut *tx, b"after", || {}).unwrap();
        rounds
    });
    // Nothing is read before the pipe is full: the rest must go in resumed parts.
    first_full.recv_timeout(DEADLINE).unwrap();
    let mut buf = vec![0u8; size];
    let n = rx.recv_timeout(&mut buf, DEADLINE).unwrap();
    assert_eq!(n, size);
    assert!(buf == expected, "the large message arrived damaged");
    assert_eq!(rx.recv_timeout(&mut buf, DEADLINE).unwrap(), 5);
    assert_eq!(&buf[..5], b"after");
    let rounds = sender.join().unwrap();
    assert!(rounds >= 1, "{rounds} wake-ups for a message 16x the pipe");
}

#[test]
fn a_part_sent_and_given_up_is_never_delivered() {
    let size = 256 * 1024;
    let (mut tx, mut rx) = channel(size, 64 * 1024);
    let big = vec![9u8; size];
    assert!(matches!(tx.try_send_part(&big, false), Err(Error::Full)));
    // The event loop gives up on it and sends something else, blocking: the rest of the big
    // frame is written as an aborted one first, while the reader drains.
    let receiver = std::thread::spawn(move || {
        let mut buf = vec![0u8; size];
        let n = rx.recv_timeout(&mut buf, DEADLINE).unwrap();
        buf.truncate(n);
        buf
    });
    tx.send_timeout(b"instead", DEADLINE).unwrap();
    assert_eq!(receiver.join().unwrap(), b"instead");
}
