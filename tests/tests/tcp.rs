//! The conformance suite on TCP over loopback, whole: `Full` is the sender's credit running
//! out (message-level flow control, see `ipc_socket`'s documentation), not TCP's window, which
//! the receiver's kernel reopens with nobody reading as it merges small segments.

ipc_tests::conformance_tests!(ipc_tests::factory_socket::TcpFactory);

use std::time::Duration;

use ipc::Error;
use ipc_tests::expect::{err_of, open_sender_gives_up};
use ipc_tests::process::WATCHDOG;

/// A port another socket listens on is `AlreadyExists`, naming the port.
#[test]
fn port_in_use_is_already_exists() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let e = err_of(ipc::open_receiver(&format!("tcp:127.0.0.1:{port}")));
    assert!(matches!(e, Error::AlreadyExists { .. }), "{e:?}");
    assert!(e.to_string().contains(&port.to_string()), "{e}");
}

/// Nobody listening: the sender retries for its open_timeout, then `NotFound`.
#[test]
fn nobody_listening_is_not_found_after_open_timeout() {
    // A port the kernel just handed out and took back: nobody listens on it.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let timeout = Duration::from_millis(300);
    let spec = format!("tcp:127.0.0.1:{port}?open_timeout=300ms");
    let e = open_sender_gives_up(spec, timeout);
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
}

/// Port 0 lets the kernel pick; the receiver says which, and IPv6 loopback works the same.
#[test]
fn port_zero_is_picked_and_told() {
    use ipc::{Receiver, Sender};
    for host in ["127.0.0.1", "[::1]"] {
        let spec = format!("tcp:{host}:0");
        let mut rx = match ipc::socket::TcpReceiver::open(&spec.parse().unwrap()) {
            Ok(rx) => rx,
            // A host without IPv6 (a container may have none) proves nothing here.
            Err(e) if host.starts_with('[') => {
                eprintln!("skipped {host}: {e}");
                continue;
            }
            Err(e) => panic!("{spec}: {e}"),
        };
        let told = rx.spec().to_string();
        assert!(told.starts_with(&format!("tcp:{host}:")), "{told}");
        assert!(!told.ends_with(":0"), "{told}");
        let mut tx = ipc::open_sender(&told).unwrap();
        tx.send(b"to the picked port").unwrap();
        let mut buf = vec![0; rx.max_message_size()];
        let n = rx.recv_timeout(&mut buf, WATCHDOG).unwrap();
        assert_eq!(&buf[..n], b"to the picked port");
    }
}

/// A sender killed mid-frame loses only that frame: the frames before it arrive, the torn one
/// never does, and the receiver sees the sender gone.
#[test]
fn a_connection_cut_mid_frame_loses_only_that_frame() {
    use ipc::Receiver;
    use std::io::Write;
    let mut rx = ipc::socket::TcpReceiver::open(&"tcp:127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = rx.spec().address.to_string();
    let mut raw = std::net::TcpStream::connect(addr).unwrap();
    // The hello of an ipc sender: the magic, then its window (u64, little endian).
    raw.write_all(&ipc::socket::TCP_HELLO_MAGIC).unwrap();
    raw.write_all(&65_536u64.to_le_bytes()).unwrap();
    // One whole frame (5-byte payload, commit trailer), then a frame cut after its header.
    raw.write_all(&[
        5,
        0,
        0,
        0,
        b'w',
        b'h',
        b'o',
        b'l',
        b'e',
        ipc::framing::COMMIT,
    ])
    .unwrap();
    raw.write_all(&[100, 0, 0, 0, b'c', b'u', b't']).unwrap();
    drop(raw);
    let mut buf = vec![0; rx.max_message_size()];
    let n = rx.recv_timeout(&mut buf, WATCHDOG).unwrap();
    assert_eq!(&buf[..n], b"whole");
    let e = err_of(rx.recv_timeout(&mut buf, WATCHDOG));
    assert!(matches!(e, Error::Disconnected), "{e:?}");
}
