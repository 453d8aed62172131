//! The conformance suite on named pipes, and what only FIFOs have: a name in the file system
//! (creation, permissions, squatting), waiting for the other side, exclusive large writers.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use ipc::{Error, Receiver};
use ipc_tests::PathGuard;
use ipc_tests::expect::{err_of, open_sender_gives_up};
use ipc_tests::process::{Peer, SPEC_ENV, peer_command, recv_one, send_one};
use ipc_tests::suite::SLACK;
use nix::sys::stat::Mode;

ipc_tests::conformance_tests!(ipc_tests::FifoFactory);
ipc_tests::conformance_tests!(@framings);

const PEER: &str = env!("CARGO_BIN_EXE_ipc-test-peer");

fn mkfifo(path: &PathGuard, mode: u32) {
    nix::unistd::mkfifo(path.path(), Mode::from_bits_truncate(mode)).unwrap();
    // mkfifo applies the umask; set exactly what the test asked for.
    std::fs::set_permissions(path.path(), std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Opening a sender waits for its reader no longer than `open_timeout`: `Timeout` when the
/// FIFO exists without a reader, `NotFound` when it never appears; never a hang, never early.
#[test]
fn sender_without_reader_honours_open_timeout() {
    let timeout = Duration::from_millis(300);
    let without_reader = PathGuard::unique("fifo");
    mkfifo(&without_reader, 0o600);
    let missing = PathGuard::unique("fifo");
    for (path, expect_timeout) in [(&without_reader, true), (&missing, false)] {
        let spec = format!("fifo:{}?open_timeout=300ms", path.as_str());
        let err = open_sender_gives_up(spec, timeout);
        if expect_timeout {
            assert!(
                matches!(err, Error::Timeout),
                "FIFO without reader: {err:?}"
            );
        } else {
            assert!(
                matches!(err, Error::NotFound { .. }),
                "missing FIFO: {err:?}"
            );
        }
    }
    assert!(!missing.path().exists(), "a sender created the FIFO");
}

/// A sender waiting for its reader connects as soon as the receiver appears.
#[test]
fn sender_waiting_for_its_reader_connects_when_it_comes() {
    let path = PathGuard::unique("fifo");
    let spec = format!("fifo:{}?message_size=100", path.as_str());
    let mut cmd = peer_command(Path::new(PEER), "recv", &["3", "1"]);
    cmd.env(SPEC_ENV, &spec);
    // The sender starts waiting before the receiver exists: the peer creates it.
    let mut peer = Peer::spawn(cmd).unwrap();
    let mut tx = ipc::open_sender(&format!("{spec}&open_timeout=20s")).unwrap();
    ipc_tests::drive::send_stream(&mut *tx, 0, 3).unwrap();
    drop(tx);
    assert_eq!(peer.expect_line("ok"), "3");
    peer.wait_success();
}

/// A path that exists but is a regular file is refused by both ends, and left untouched.
#[test]
fn regular_file_is_refused() {
    let path = PathGuard::unique("fifo");
    std::fs::write(path.path(), b"precious").unwrap();
    let spec = format!("fifo:{}?open_timeout=2s", path.as_str());
    let e = err_of(ipc::open_receiver(&spec));
    assert!(matches!(e, Error::Incompatible { .. }), "receiver: {e:?}");
    let e = err_of(ipc::open_sender(&spec));
    assert!(matches!(e, Error::Incompatible { .. }), "sender: {e:?}");
    let e = err_of(ipc::open_receiver(&format!("{spec}&create=never")));
    assert!(
        matches!(e, Error::Incompatible { .. }),
        "create=never: {e:?}"
    );
    assert!(path.path().metadata().unwrap().is_file());
    assert_eq!(std::fs::read(path.path()).unwrap(), b"precious");
}

/// A directory at the path is refused too, and not removed.
#[test]
fn directory_is_refused() {
    let path = PathGuard::unique("fifo");
    std::fs::create_dir(path.path()).unwrap();
    let r = ipc::open_receiver(&format!("fifo:{}", path.as_str()));
    let is_incompatible = matches!(&r, Err(Error::Incompatible { .. }));
    drop(r);
    assert!(path.path().is_dir());
    std::fs::remove_dir(path.path()).unwrap();
    assert!(is_incompatible, "a directory was accepted as a FIFO");
}

fn mode_of(path: &Path) -> u32 {
    let meta = std::fs::symlink_metadata(path).unwrap();
    assert!(
        meta.file_type().is_fifo(),
        "{} is not a FIFO",
        path.display()
    );
    meta.permissions().mode() & 0o7777
}

/// The receiver creates a FIFO of mode 0600 by default (whatever the umask), of the asked
/// mode otherwise, and removes it when dropped.
#[test]
fn created_fifo_has_mode_0600_and_goes_with_its_creator() {
    let path = PathGuard::unique("fifo");
    let rx = ipc::open_receiver(&format!("fifo:{}", path.as_str())).unwrap();
    assert_eq!(mode_of(path.path()), 0o600);
    drop(rx);
    assert!(!path.path().exists(), "the creator did not remove the FIFO");

    let rx = ipc::open_receiver(&format!("fifo:{}?mode=0640", path.as_str())).unwrap();
    assert_eq!(mode_of(path.path()), 0o640);
    drop(rx);
    assert!(!path.path().exists());
}

/// A receiver that opened an existing FIFO leaves it in place when dropped.
#[test]
fn existing_fifo_is_left_in_place() {
    let path = PathGuard::unique("fifo");
    mkfifo(&path, 0o600);
    let rx = ipc::open_receiver(&format!("fifo:{}", path.as_str())).unwrap();
    drop(rx);
    assert_eq!(mode_of(path.path()), 0o600);
}

/// An existing FIFO whose mode grants more than asked was not made for us: refused.
#[test]
fn existing_fifo_with_wider_mode_is_refused() {
    let path = PathGuard::unique("fifo");
    mkfifo(&path, 0o666);
    let e = err_of(ipc::open_receiver(&format!("fifo:{}", path.as_str())));
    assert!(matches!(e, Error::Incompatible { .. }), "{e:?}");
}

/// `create=always` insists on creating: an existing FIFO is `AlreadyExists` (and kept);
/// `create=never` insists on opening: a missing one is `NotFound` (and not created).
#[test]
fn create_always_and_never_are_strict() {
    let path = PathGuard::unique("fifo");
    mkfifo(&path, 0o600);
    let e = err_of(ipc::open_receiver(&format!(
        "fifo:{}?create=always",
        path.as_str()
    )));
    assert!(matches!(e, Error::AlreadyExists { .. }), "{e:?}");
    assert_eq!(mode_of(path.path()), 0o600);

    let missing = PathGuard::unique("fifo");
    let e = err_of(ipc::open_receiver(&format!(
        "fifo:{}?create=never",
        missing.as_str()
    )));
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
    assert!(!missing.path().exists());
}

/// Two senders with messages too large to be written atomically could interleave: the second
/// is refused with `LimitExceeded`, in this process and from another; once the first is gone
/// a new one may open. Small-message senders may be several.
#[test]
fn large_message_senders_are_exclusive() {
    let path = PathGuard::unique("fifo");
    let spec = format!("fifo:{}?open_timeout=5s", path.as_str());
    let mut rx = ipc::open_receiver(&spec).unwrap();

    let mut first = ipc::open_sender(&spec).unwrap();
    let e = err_of(ipc::open_sender(&spec));
    assert!(
        matches!(e, Error::LimitExceeded { .. }),
        "second large sender: {e:?}"
    );
    let small = format!("{spec}&message_size=4091");
    let e = err_of(ipc::open_sender(&small));
    assert!(
        matches!(e, Error::LimitExceeded { .. }),
        "a small sender beside a large one could interleave with it: {e:?}"
    );
    send_one(&mut first, b"still works").unwrap();
    drop(first);
    assert_eq!(recv_one(&mut rx).unwrap(), b"still works");

    // Held by another process.
    let mut cmd = peer_command(Path::new(PEER), "send-hold", &["0"]);
    cmd.env(SPEC_ENV, &spec);
    let mut holder = Peer::spawn(cmd).unwrap();
    holder.expect_line("sent");
    let e = err_of(ipc::open_sender(&spec));
    assert!(
        matches!(e, Error::LimitExceeded { .. }),
        "large sender beside another process's: {e:?}"
    );
    holder.kill();
    ipc::open_sender(&spec).expect("a large sender after the holder died");
}

/// Senders with messages up to the atomic size may be several, and both deliver.
#[test]
fn small_message_senders_may_be_several() {
    let path = PathGuard::unique("fifo");
    let base = format!("fifo:{}", path.as_str());
    let spec = format!("{base}?message_size=4091");
    let mut rx = ipc::open_receiver(&spec).unwrap();
    let mut a = ipc::open_sender(&spec).unwrap();
    let mut b = ipc::open_sender(&spec).unwrap();
    send_one(&mut a, &[1; 4091]).unwrap();
    send_one(&mut b, &[2; 4091]).unwrap();
    for want in [1, 2] {
        assert_eq!(recv_one(&mut rx).unwrap(), [want; 4091]);
    }
    let e = err_of(ipc::open_sender(&format!("{base}?message_size=4092")));
    assert!(
        matches!(e, Error::LimitExceeded { .. }),
        "a large sender beside small ones: {e:?}"
    );
}

/// A receiver opened before any sender does not take "no writer yet" for a disconnection:
/// `try_recv` is `Empty` and `recv_timeout` waits out its deadline.
#[test]
fn receiver_before_any_sender_is_not_disconnected() {
    let path = PathGuard::unique("fifo");
    let mut rx = ipc::open_receiver(&format!("fifo:{}", path.as_str())).unwrap();
    let mut buf = vec![0; rx.max_message_size()];
    let r = rx.try_recv(&mut buf);
    assert!(matches!(r, Err(Error::Empty)), "try_recv: {r:?}");
    let timeout = Duration::from_millis(200);
    let start = Instant::now();
    let r = rx.recv_timeout(&mut buf, timeout);
    let elapsed = start.elapsed();
    assert!(matches!(r, Err(Error::Timeout)), "recv_timeout: {r:?}");
    assert!(
        elapsed >= timeout && elapsed < timeout + SLACK,
        "{elapsed:?}"
    );
}
