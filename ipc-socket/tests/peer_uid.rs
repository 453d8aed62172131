//! The receiver's owner check on unix sockets (`SO_PEERCRED`): a sender running as another
//! user is refused, the receiver records it by uid, and the sender is told why.
//!
//! The other user is a re-executed copy of this test running as `nobody` (uid 65534); we must
//! be root to start it. The abstract namespace is used because it has no permissions: the
//! peer check is all that stands between another user and the receiver.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ipc_core::{Error, Receiver, Sender, TransportSpec};
use ipc_socket::{UnixReceiver, UnixSender};

const CHILD: &str = "IPC_SOCKET_PEER_UID_CHILD";
const NOBODY: u32 = 65534;
const DEADLINE: Duration = Duration::from_secs(20);

/// In the child: connect (accepting a receiver of root, `owner=0`) and send until the receiver
/// turns us away or goes; print the error the send gave.
fn child(spec: &str) {
    let spec: TransportSpec = format!("{spec}?owner=0&open_timeout=10s").parse().unwrap();
    let mut tx = UnixSender::open(&spec).unwrap();
    // Each send blocks once the socket is full, until the receiver closes the connection.
    loop {
        if let Err(e) = tx.send_timeout(b"from nobody", DEADLINE) {
            // On a line of its own: libtest has written `test NAME ... ` before us.
            println!("\nrefused: {e}");
            return;
        }
    }
}

/// Starts this test again as `nobody`, in the child role, against `spec`.
fn spawn_nobody(test: &str, spec: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, spec)
        .uid(NOBODY)
        .gid(NOBODY)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The child's last word: the error that ended its sends.
fn ending_of(mut peer: std::process::Child) -> String {
    let lines: Vec<String> = BufReader::new(peer.stdout.take().unwrap())
        .lines()
        .map(Result::unwrap)
        .collect();
    let status = peer.wait().unwrap();
    assert!(status.success(), "the child failed: {status}: {lines:?}");
    lines
        .iter()
        .find_map(|l| l.strip_prefix("refused: ").map(str::to_owned))
        .unwrap_or_else(|| panic!("the child did not say how its sends ended: {lines:?}"))
}

fn skip_unless_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return false;
    }
    eprintln!("skipped: starting a process as another user needs root");
    true
}

#[test]
fn a_sender_of_another_uid_is_refused_and_named() {
    const NAME: &str = "a_sender_of_another_uid_is_refused_and_named";
    if let Ok(spec) = std::env::var(CHILD) {
        return child(&spec);
    }
    if skip_unless_root() {
        return;
    }
    let spec = format!("unix:@ipc-socket-peer-uid-{}", std::process::id());
    let mut rx = UnixReceiver::open(&spec.parse().unwrap()).unwrap();
    let peer = spawn_nobody(NAME, &spec);
    let pid = peer.id();
    // Nothing of the stranger's is delivered; the receiver keeps waiting for its own.
    let start = Instant::now();
    let mut buf = vec![0; rx.max_message_size()];
    while rx.refused_peers().is_empty() {
        assert!(start.elapsed() < DEADLINE, "the stranger was never refused");
        match rx.recv_timeout(&mut buf, Duration::from_millis(100)) {
            Err(Error::Timeout) => {}
            other => panic!("a stranger's connection gave the receiver {other:?}"),
        }
    }
    let refused = rx.refused_peers()[0].clone();
    assert_eq!(refused.uid, NOBODY);
    assert_eq!(refused.pid as u32, pid);
    assert!(refused.reason.contains("uid 65534"), "{}", refused.reason);
    assert!(refused.reason.contains("owner=65534"), "{}", refused.reason);
    let ending = ending_of(peer);
    assert!(
        ending.contains("uid 65534"),
        "the sender was not told why: {ending}"
    );
    assert_eq!(rx.connections(), 0);

    // Our own uid is still welcome.
    let mut tx = UnixSender::open(&format!("{spec}?open_timeout=5s").parse().unwrap()).unwrap();
    tx.send(b"ours").unwrap();
    let n = rx.recv_timeout(&mut buf, DEADLINE).unwrap();
    assert_eq!(&buf[..n], b"ours");
}

/// `owner=65534` on the receiver lets that user in.
#[test]
fn the_owner_option_admits_that_uid() {
    const NAME: &str = "the_owner_option_admits_that_uid";
    if let Ok(spec) = std::env::var(CHILD) {
        return child(&spec);
    }
    if skip_unless_root() {
        return;
    }
    let spec = format!("unix:@ipc-socket-owner-{}", std::process::id());
    let mut rx = UnixReceiver::open(&format!("{spec}?owner=65534").parse().unwrap()).unwrap();
    let peer = spawn_nobody(NAME, &spec);
    let mut buf = vec![0; rx.max_message_size()];
    let n = rx.recv_timeout(&mut buf, DEADLINE).unwrap();
    assert_eq!(&buf[..n], b"from nobody");
    assert!(rx.refused_peers().is_empty());
    drop(rx);
    let ending = ending_of(peer);
    assert!(ending.contains("disconnected"), "{ending}");
}
