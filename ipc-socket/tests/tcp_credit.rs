//! The flow control of `tcp:` on loopback: the window is exact and batched, and a peer that
//! does not follow the protocol gets `Corrupted`, never a panic.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use ipc_core::{Error, Receiver, Sender};
use ipc_socket::{TCP_HELLO_MAGIC, TcpReceiver, TcpSender};

const DEADLINE: Duration = Duration::from_secs(10);

/// A frame of a 64-byte message is 69 bytes: a window of ten fits ten messages exactly.
const FRAME: usize = 69;

/// `try_send` is `Full` once the window is used, and stays so while the receiver has taken out
/// less than half of it (acknowledgements are batched); then the sender has room for exactly
/// what was taken out, and every message arrives once, in order.
#[test]
fn the_window_is_exact_and_returns_in_batches() {
    let mut rx = TcpReceiver::open(&"tcp:127.0.0.1:0".parse().unwrap()).unwrap();
    let spec = format!("{}?message_size=64&capacity={}", rx.spec(), 10 * FRAME);
    let mut tx = TcpSender::open(&spec.parse().unwrap()).unwrap();
    for i in 0..10u8 {
        tx.try_send(&[i; 64]).unwrap();
    }
    assert!(matches!(tx.try_send(&[10; 64]), Err(Error::Full)));
    let mut buf = [0; 64];
    for i in 0..5u8 {
        let r = tx.try_send(&[10; 64]);
        assert!(matches!(r, Err(Error::Full)), "after {i} received: {r:?}");
        assert_eq!(rx.recv_timeout(&mut buf, DEADLINE).unwrap(), 64);
        assert_eq!(buf[0], i);
    }
    // Half the window taken out: acknowledged before that receive returned.
    tx.send_timeout(&[10; 64], DEADLINE).unwrap();
    for i in 11..15u8 {
        tx.try_send(&[i; 64]).unwrap();
    }
    assert!(matches!(tx.try_send(&[15; 64]), Err(Error::Full)));
    for i in 5..15u8 {
        assert_eq!(rx.recv_timeout(&mut buf, DEADLINE).unwrap(), 64);
        assert_eq!(buf[0], i);
    }
    assert!(matches!(rx.try_recv(&mut buf), Err(Error::Empty)));
    tx.send_timeout(&[15; 64], DEADLINE).unwrap();
    assert_eq!(rx.recv_timeout(&mut buf, DEADLINE).unwrap(), 64);
    assert_eq!(buf[0], 15);
}

/// A batch sends as much as the window takes, counted exactly: with room for ten and a half
/// frames, ten messages are sent whole, the eleventh not at all (its frame, cut at the
/// window's end, is owed as aborted), and the receiver gets exactly the ten, in order.
#[test]
fn a_batch_stops_at_the_window_and_says_how_many_went() {
    let mut rx = TcpReceiver::open(&"tcp:127.0.0.1:0".parse().unwrap()).unwrap();
    let spec = format!(
        "{}?message_size=64&capacity={}",
        rx.spec(),
        10 * FRAME + FRAME / 2
    );
    let mut tx = TcpSender::open(&spec.parse().unwrap()).unwrap();
    let msgs: Vec<[u8; 64]> = (0..30u8).map(|i| [i; 64]).collect();
    let batch: Vec<&[u8]> = msgs.iter().map(|m| &m[..]).collect();
    assert_eq!(tx.send_batch(&batch, ipc_core::Wait::Never).unwrap(), 10);
    let mut buf = [0; 64];
    for i in 0..10u8 {
        assert_eq!(rx.recv_timeout(&mut buf, DEADLINE).unwrap(), 64);
        assert_eq!(buf[0], i);
    }
    // The rest, as the window comes back, in as many calls as it takes; every message
    // arrives once, in order.
    let deadline = std::time::Instant::now() + DEADLINE;
    let (mut sent, mut received) = (10, 10);
    while received < batch.len() {
        assert!(
            std::time::Instant::now() < deadline,
            "stuck: {sent} sent, {received} received"
        );
        if sent < batch.len() {
            match tx.send_batch(&batch[sent..], ipc_core::Wait::Never) {
                Ok(n) => sent += n,
                Err(Error::Full) => {}
                Err(e) => panic!("{e}"),
            }
        }
        match rx.recv_timeout(&mut buf, Duration::from_millis(10)) {
            Ok(n) => {
                assert_eq!((n, usize::from(buf[0])), (64, received));
                received += 1;
            }
            Err(Error::Timeout) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert!(matches!(rx.try_recv(&mut buf), Err(Error::Empty)));
}

/// A capacity smaller than one frame of `message_size` could never carry it.
#[test]
fn a_window_smaller_than_a_frame_is_invalid() {
    let rx = TcpReceiver::open(&"tcp:127.0.0.1:0".parse().unwrap()).unwrap();
    let spec = format!("{}?message_size=64&capacity=68", rx.spec());
    let e = TcpSender::open(&spec.parse().unwrap()).unwrap_err();
    assert!(matches!(e, Error::InvalidSpec { .. }), "{e:?}");
}

/// A fake receiver: accepts one sender of a 69-byte window and checks its hello.
fn fake_receiver() -> (TcpSender, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let spec = format!("tcp:127.0.0.1:{port}?message_size=64&capacity={FRAME}");
    let tx = TcpSender::open(&spec.parse().unwrap()).unwrap();
    let (mut peer, _) = listener.accept().unwrap();
    let mut hello = [0; 16];
    peer.read_exact(&mut hello).unwrap();
    assert_eq!(hello[..8], TCP_HELLO_MAGIC);
    assert_eq!(
        u64::from_le_bytes(hello[8..].try_into().unwrap()),
        FRAME as u64
    );
    (tx, peer)
}

/// Credit for more than was sent is `Corrupted`, and stays so.
#[test]
fn an_acknowledgement_of_more_than_sent_is_corrupted() {
    let (mut tx, mut peer) = fake_receiver();
    tx.try_send(&[1; 64]).unwrap();
    peer.write_all(&1000u64.to_le_bytes()).unwrap();
    let e = tx.send_timeout(&[2; 64], DEADLINE).unwrap_err();
    assert!(matches!(e, Error::Corrupted { .. }), "{e:?}");
    let e = tx.try_send(&[2; 64]).unwrap_err();
    assert!(matches!(e, Error::Corrupted { .. }), "sticky: {e:?}");
}

/// A record cut short by the receiver's going is its going: `Disconnected`.
#[test]
fn an_acknowledgement_cut_short_then_closed_is_disconnected() {
    let (mut tx, mut peer) = fake_receiver();
    tx.try_send(&[1; 64]).unwrap();
    peer.write_all(&[69, 0, 0]).unwrap();
    drop(peer);
    let e = tx.send_timeout(&[2; 64], DEADLINE).unwrap_err();
    assert!(matches!(e, Error::Disconnected), "{e:?}");
}

/// A connection that does not start with the hello is refused as corrupted, and the receiver
/// goes on with the others.
#[test]
fn a_peer_without_the_hello_is_corrupted_at_the_receiver() {
    let mut rx = TcpReceiver::open(&"tcp:127.0.0.1:0".parse().unwrap()).unwrap();
    let mut raw = TcpStream::connect(rx.spec().address.to_string()).unwrap();
    raw.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut buf = [0; 64];
    let e = rx.recv_timeout(&mut buf, DEADLINE).unwrap_err();
    assert!(matches!(e, Error::Corrupted { .. }), "{e:?}");
    let mut tx = TcpSender::open(rx.spec()).unwrap();
    tx.send(b"after").unwrap();
    assert_eq!(rx.recv_timeout(&mut buf, DEADLINE).unwrap(), 5);
}
