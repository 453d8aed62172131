//! `framing=packets`: one message per packet of a packet-mode pipe. What the kernel keeps apart
//! and what it does not, the limits, and a writer that is not ours.

use std::os::fd::AsFd;
use std::time::Duration;

use ipc_core::{Error, Framing, Receiver, Sender, TransportSpec};
use ipc_pipe::{PipeConfig, PipeReceiver, PipeSender, channel, raw};
use nix::fcntl::{FcntlArg, OFlag, fcntl};

fn packets(message_size: usize) -> PipeConfig {
    PipeConfig {
        message_size,
        framing: Framing::Packets,
        ..PipeConfig::default()
    }
}

fn pair(message_size: usize) -> (PipeSender, PipeReceiver) {
    channel(&packets(message_size)).unwrap()
}

fn config_of(spec: &str) -> ipc_core::Result<PipeConfig> {
    PipeConfig::from_options(&spec.parse::<TransportSpec>()?.options)
}

#[test]
fn messages_sent_back_to_back_arrive_apart_and_whole() {
    let (mut tx, mut rx) = pair(4096);
    let sizes = [1, 4096, 10, 4095, 64, 4096, 2];
    for (i, &len) in sizes.iter().enumerate() {
        tx.send(&vec![i as u8; len]).unwrap();
    }
    // All of them wait in the pipe at once; each receive still takes exactly one.
    let mut buf = vec![0; 4096];
    for (i, &len) in sizes.iter().enumerate() {
        assert_eq!(rx.try_recv(&mut buf).unwrap(), len, "message {i}");
        assert!(buf[..len].iter().all(|&b| b == i as u8), "message {i}");
    }
    assert!(matches!(rx.try_recv(&mut buf), Err(Error::Empty)));
}

#[test]
fn the_sender_puts_its_end_in_packet_mode() {
    let (tx, _rx) = pair(4096);
    let flags = OFlag::from_bits_truncate(fcntl(tx.as_fd(), FcntlArg::F_GETFL).unwrap());
    assert!(flags.contains(OFlag::O_DIRECT), "{flags:?}");
}

#[test]
fn an_empty_message_is_refused_and_sends_nothing() {
    let (mut tx, mut rx) = pair(64);
    assert!(matches!(tx.send(b""), Err(Error::InvalidMessage { .. })));
    assert!(matches!(
        tx.try_send(b""),
        Err(Error::InvalidMessage { .. })
    ));
    tx.send(b"next").unwrap();
    let mut buf = [0; 64];
    assert_eq!(rx.try_recv(&mut buf).unwrap(), 4);
    assert!(matches!(rx.try_recv(&mut buf), Err(Error::Empty)));
}

#[test]
fn message_size_is_at_most_pipe_buf_and_pipe_buf_by_default() {
    assert_eq!(
        config_of("pipe:fd=3?framing=packets").unwrap().message_size,
        4096
    );
    assert_eq!(
        config_of("pipe:fd=3?framing=packets&message_size=100")
            .unwrap()
            .message_size,
        100
    );
    let err = config_of("pipe:fd=3?framing=packets&message_size=4097").unwrap_err();
    assert!(matches!(err, Error::InvalidSpec { .. }), "{err}");
    assert!(err.to_string().contains("4096"), "{err}");
    let (mut tx, _rx) = pair(100);
    assert!(matches!(
        tx.send(&[0; 101]),
        Err(Error::MessageTooLarge { len: 101, max: 100 })
    ));
}

#[test]
fn try_send_on_a_full_pipe_is_full_and_exact() {
    let (mut tx, mut rx) = pair(64);
    let mut sent = 0u32;
    loop {
        match tx.try_send(&sent.to_le_bytes()) {
            Ok(()) => sent += 1,
            Err(Error::Full) => break,
            Err(e) => panic!("try_send {sent}: {e}"),
        }
        assert!(sent <= 1 << 16, "the pipe never filled");
    }
    // A packet takes a page: the default 64 KiB pipe holds 16 of them, whatever their size.
    assert_eq!(sent, 16);
    assert!(matches!(
        tx.send_timeout(b"late", Duration::from_millis(20)),
        Err(Error::Timeout)
    ));
    let mut buf = [0; 64];
    for i in 0..sent {
        assert_eq!(rx.try_recv(&mut buf).unwrap(), 4);
        assert_eq!(buf[..4], i.to_le_bytes());
    }
    assert!(matches!(rx.try_recv(&mut buf), Err(Error::Empty)));
}

#[test]
fn a_buffer_too_small_keeps_the_message_for_a_larger_one() {
    let (mut tx, mut rx) = pair(4096);
    tx.send(&[7; 3000]).unwrap();
    tx.send(b"after").unwrap();
    let mut small = [0; 100];
    assert!(matches!(
        rx.try_recv(&mut small),
        Err(Error::BufferTooSmall {
            len: 100,
            needed: 3000
        })
    ));
    let mut buf = vec![0; 4096];
    assert_eq!(rx.try_recv(&mut buf).unwrap(), 3000);
    assert!(buf[..3000].iter().all(|&b| b == 7));
    // A buffer that fits the message but not every packet still gets it whole.
    assert_eq!(rx.try_recv(&mut small).unwrap(), 5);
    assert_eq!(&small[..5], b"after");
}

#[test]
fn a_foreign_packet_longer_than_message_size_is_reported_and_skipped() {
    let (read, write) = raw::pipe().unwrap();
    let flags = OFlag::from_bits_truncate(fcntl(&write, FcntlArg::F_GETFL).unwrap());
    fcntl(&write, FcntlArg::F_SETFL(flags | OFlag::O_DIRECT)).unwrap();
    let mut rx = ipc_pipe::StreamReceiver::new(read, 100, Framing::Packets);
    nix::unistd::write(&write, &[1; 200]).unwrap();
    nix::unistd::write(&write, &[2; 100]).unwrap();
    let mut buf = [0; 100];
    assert!(matches!(
        rx.try_recv(&mut buf),
        Err(Error::MessageTooLarge { len: 101, max: 100 })
    ));
    assert_eq!(rx.try_recv(&mut buf).unwrap(), 100);
    assert!(buf.iter().all(|&b| b == 2));
}

#[test]
fn the_receiver_sees_its_senders_leave() {
    let (tx, mut rx) = pair(64);
    let mut tx = tx;
    tx.send(b"last").unwrap();
    drop(tx);
    let mut buf = [0; 64];
    assert_eq!(
        rx.recv_timeout(&mut buf, Duration::from_secs(10)).unwrap(),
        4
    );
    assert!(matches!(
        rx.recv_timeout(&mut buf, Duration::from_secs(10)),
        Err(Error::Disconnected)
    ));
}

#[test]
fn a_sender_clones_whatever_the_message_size() {
    let (tx, mut rx) = pair(4096);
    let mut other = tx.try_clone().unwrap();
    other.send(&[3; 4096]).unwrap();
    let mut buf = vec![0; 4096];
    assert_eq!(rx.try_recv(&mut buf).unwrap(), 4096);
}
