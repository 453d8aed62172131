//! The conformance suite on unix `SOCK_SEQPACKET` sockets (a socket file per test).

ipc_tests::conformance_tests!(ipc_tests::factory_socket::UnixFactory);

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::time::{Duration, Instant};

use ipc::{Error, Receiver, Sender};
use ipc_tests::PathGuard;
use ipc_tests::expect::{err_of, open_sender_gives_up};
use ipc_tests::process::WATCHDOG;
use ipc_tests::suite::SLACK;

/// A regular file at the path is refused by both ends at once (the sender does not wait out
/// its open_timeout for a file that will never listen), and left untouched.
#[test]
fn regular_file_is_refused_and_left_alone() {
    let path = PathGuard::unique("sock");
    std::fs::write(path.path(), b"precious").unwrap();
    let spec = format!("unix:{}", path.as_str());
    let e = err_of(ipc::open_receiver(&spec));
    assert!(matches!(e, Error::Incompatible { .. }), "receiver: {e:?}");
    assert!(e.to_string().contains("regular file"), "{e}");
    let start = Instant::now();
    let e = err_of(ipc::open_sender(&format!("{spec}?open_timeout=10s")));
    assert!(matches!(e, Error::Incompatible { .. }), "sender: {e:?}");
    assert!(
        start.elapsed() < SLACK,
        "the sender waited for a regular file"
    );
    assert_eq!(std::fs::read(path.path()).unwrap(), b"precious");
}

/// The receiver makes the socket file with mode 0600 (whatever the umask) and removes it when
/// dropped.
#[test]
fn socket_file_has_mode_0600_and_goes_with_its_receiver() {
    let path = PathGuard::unique("sock");
    let rx = ipc::open_receiver(&format!("unix:{}", path.as_str())).unwrap();
    let meta = std::fs::symlink_metadata(path.path()).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    drop(rx);
    assert!(!path.path().exists(), "the receiver left its socket file");
}

/// A socket file nobody listens on (its receiver died) is replaced; one a receiver listens on
/// is `AlreadyExists`, and that receiver keeps working.
#[test]
fn stale_socket_is_replaced_and_a_live_one_is_not() {
    let path = PathGuard::unique("sock");
    let spec = format!("unix:{}", path.as_str());
    let mut first = ipc::open_receiver(&spec).unwrap();
    let e = err_of(ipc::open_receiver(&spec));
    assert!(matches!(e, Error::AlreadyExists { .. }), "{e:?}");
    let mut tx = ipc::open_sender(&format!("{spec}?open_timeout=5s")).unwrap();
    tx.send(b"still there").unwrap();
    let mut buf = vec![0; first.max_message_size()];
    let n = first.recv_timeout(&mut buf, WATCHDOG).unwrap();
    assert_eq!(&buf[..n], b"still there");
    drop((tx, first));

    // A dead receiver's file: bound, given our mode, never removed.
    drop(std::os::unix::net::UnixListener::bind(path.path()).unwrap());
    std::fs::set_permissions(path.path(), std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(path.path().exists());
    let e = err_of(ipc::open_receiver(&format!("{spec}?create=always")));
    assert!(
        matches!(e, Error::AlreadyExists { .. }),
        "create=always: {e:?}"
    );
    let mut rx = ipc::open_receiver(&spec).unwrap();
    let mut tx = ipc::open_sender(&format!("{spec}?open_timeout=5s")).unwrap();
    tx.send(b"replaced").unwrap();
    let n = rx.recv_timeout(&mut buf, WATCHDOG).unwrap();
    assert_eq!(&buf[..n], b"replaced");
}

/// Nobody listening: the sender retries for its open_timeout, then `NotFound`; never a hang,
/// never early.
#[test]
fn nobody_listening_is_not_found_after_open_timeout() {
    let timeout = Duration::from_millis(300);
    let path = PathGuard::unique("sock");
    for spec in [
        format!("unix:{}?open_timeout=300ms", path.as_str()),
        format!("unix:@{}?open_timeout=300ms", ipc_tests::unique_name()),
    ] {
        let e = open_sender_gives_up(spec, timeout);
        assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    }
}

/// An abstract name is taken by the first receiver; the second is `AlreadyExists`.
#[test]
fn abstract_name_in_use_is_already_exists() {
    let spec = format!("unix:@{}", ipc_tests::unique_name());
    let _first = ipc::open_receiver(&spec).unwrap();
    let e = err_of(ipc::open_receiver(&spec));
    assert!(matches!(e, Error::AlreadyExists { .. }), "{e:?}");
}

/// Several senders in this process take turns: a sender with a long backlog does not hold
/// the others back, and each one's messages arrive in order.
#[test]
fn senders_take_turns_and_keep_their_order() {
    let spec = format!("unix:@{}?message_size=64", ipc_tests::unique_name());
    let mut rx = ipc::open_receiver(&spec).unwrap();
    let mut senders: Vec<_> = (0..3)
        .map(|_| ipc::open_sender(&format!("{spec}&open_timeout=5s")).unwrap())
        .collect();
    for (id, tx) in senders.iter_mut().enumerate() {
        for seq in 0..10u8 {
            tx.send(&[id as u8, seq]).unwrap();
        }
    }
    let mut buf = [0u8; 64];
    let mut next = [0u8; 3];
    let mut first_six = Vec::new();
    for _ in 0..30 {
        let n = rx.recv_timeout(&mut buf, WATCHDOG).unwrap();
        assert_eq!(n, 2);
        let (id, seq) = (buf[0] as usize, buf[1]);
        assert_eq!(seq, next[id], "sender {id} out of order");
        next[id] += 1;
        if first_six.len() < 6 {
            first_six.push(id);
        }
    }
    for id in 0..3 {
        assert!(
            first_six.iter().filter(|&&i| i == id).count() >= 1,
            "sender {id} had no turn among the first six: {first_six:?}"
        );
    }
    drop(senders);
    let e = err_of(rx.recv_timeout(&mut buf, WATCHDOG));
    assert!(matches!(e, Error::Disconnected), "{e:?}");
}
