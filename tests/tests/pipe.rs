//! The conformance suite on anonymous pipes, and what only pipes have: clones of the sender
//! and handing ends to children.

use std::path::Path;

use ipc::pipe::{ATOMIC_MESSAGE_MAX, PipeConfig, channel};
use ipc::{Address, Error, Receiver, Sender, Transport};
use ipc_tests::process::{Peer, SPEC_ENV, peer_command, recv_one, send_one};
use ipc_tests::{Cfg, Factory, PipeFactory};

ipc_tests::conformance_tests!(ipc_tests::PipeFactory);
ipc_tests::conformance_tests!(@framings);

const PEER: &str = env!("CARGO_BIN_EXE_ipc-test-peer");

fn config(message_size: usize) -> PipeConfig {
    PipeConfig {
        message_size,
        capacity: None,
        ..PipeConfig::default()
    }
}

/// Several writers are refused above the atomic size: their frames could interleave.
#[test]
fn try_clone_is_refused_above_the_atomic_size() {
    for size in [ATOMIC_MESSAGE_MAX + 1, 64 * 1024, 256 * 1024] {
        let (tx, _rx) = channel(&config(size)).unwrap();
        let r = tx.try_clone();
        assert!(
            matches!(r, Err(Error::LimitExceeded { .. })),
            "try_clone with message_size {size}: {:?}",
            r.map(|_| ())
        );
    }
    let (tx, _rx) = channel(&config(ATOMIC_MESSAGE_MAX)).unwrap();
    tx.try_clone()
        .expect("try_clone at exactly ATOMIC_MESSAGE_MAX");
}

/// Clones write to the same pipe, and the receiver is disconnected only once all are gone.
#[test]
fn clones_share_the_pipe_until_the_last_is_dropped() {
    let (tx, rx) = channel(&config(ATOMIC_MESSAGE_MAX)).unwrap();
    let clone = tx.try_clone().unwrap();
    assert_eq!(clone.max_message_size(), ATOMIC_MESSAGE_MAX);
    let (mut tx, mut clone): (Box<dyn Sender>, Box<dyn Sender>) = (Box::new(tx), Box::new(clone));
    let mut rx: Box<dyn Receiver> = Box::new(rx);
    send_one(&mut tx, b"from the original").unwrap();
    send_one(&mut clone, &[7; ATOMIC_MESSAGE_MAX]).unwrap();
    drop(tx);
    assert_eq!(recv_one(&mut rx).unwrap(), b"from the original");
    assert_eq!(recv_one(&mut rx).unwrap(), [7; ATOMIC_MESSAGE_MAX]);
    let r = rx.try_recv(&mut [0; ATOMIC_MESSAGE_MAX]);
    assert!(
        matches!(r, Err(Error::Empty)),
        "a clone is still open: {r:?}"
    );
    send_one(&mut clone, b"last").unwrap();
    drop(clone);
    assert_eq!(recv_one(&mut rx).unwrap(), b"last");
    let r = recv_one(&mut rx);
    assert!(matches!(r, Err(Error::Disconnected)), "{r:?}");
}

/// The string handed to a child names the descriptor and carries the message size, so both
/// ends frame alike.
#[test]
fn inherited_spec_names_the_descriptor_and_message_size() {
    let (_tx, rx) = channel(&config(1000)).unwrap();
    let mut cmd = std::process::Command::new("/bin/true");
    let inherited = rx.inherit(&mut cmd).unwrap();
    let spec = inherited.spec();
    assert_eq!(spec.transport, Transport::Pipe);
    assert!(matches!(spec.address, Address::Fd(n) if n > 2), "{spec}");
    assert_eq!(spec.options.message_size, Some(1000), "{spec}");
    assert_eq!(
        spec.to_string().parse::<ipc::TransportSpec>().unwrap(),
        *spec
    );
}

/// The descriptor handed to one child is not leaked into another child spawned meanwhile
/// (`FD_CLOEXEC` is cleared only in the intended child): once the intended child is killed,
/// the receiver is disconnected although the other child still runs.
#[test]
fn inherited_descriptor_reaches_only_its_child() {
    let cfg = Cfg::default();
    let (tx, rx) = channel(&config(cfg.message_size)).unwrap();
    let mut rx: Box<dyn Receiver> = Box::new(rx);
    let mut cmd = peer_command(Path::new(PEER), "send-hold", &["1"]);
    let inherited = tx.inherit(&mut cmd).unwrap();
    cmd.env(SPEC_ENV, inherited.spec().to_string());
    // Another child, spawned while our write end is set up for inheritance.
    let (_other_tx, mut other) = PipeFactory
        .spawn_receiver(&cfg, peer_command(Path::new(PEER), "recv-hold", &[]))
        .unwrap();
    let mut sender = Peer::spawn(cmd).unwrap();
    drop(inherited);
    other.expect_line("ready");
    sender.expect_line("sent");
    sender.kill();
    recv_one(&mut rx).expect("the message sent before the kill");
    // The only intended writer is dead and reaped: end of file, unless another child holds
    // the write end (then this blocks until the watchdog fails the test).
    let r = recv_one(&mut rx);
    assert!(
        matches!(r, Err(Error::Disconnected)),
        "another child holds the write end too: {r:?}"
    );
    assert!(!other.has_exited());
}

/// `pipe:fd=N` naming something that is not a pipe is refused, and the descriptor is left
/// alone.
#[test]
fn adopting_a_descriptor_that_is_not_a_pipe_is_refused() {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open("/proc/self/status").unwrap();
    let spec = format!("pipe:fd={}", file.as_raw_fd());
    let r = ipc::open_receiver(&spec);
    assert!(
        matches!(r, Err(Error::Incompatible { .. })),
        "{spec}: {:?}",
        r.map(|_| ())
    );
    let r = ipc::open_sender(&spec);
    assert!(
        matches!(r, Err(Error::Incompatible { .. })),
        "{spec}: {:?}",
        r.map(|_| ())
    );
    // Still ours and open.
    assert!(std::io::Read::read(&mut &file, &mut [0; 16]).unwrap() > 0);
}

/// A receiver that has read ahead cannot be handed over: the messages it buffered would be
/// lost.
#[test]
fn receiver_that_read_ahead_is_not_handed_over() {
    let (mut tx, mut rx) = channel(&config(100)).unwrap();
    tx.send(b"one").unwrap();
    tx.send(b"two").unwrap();
    let mut buf = [0; 100];
    rx.recv(&mut buf).unwrap();
    let mut cmd = std::process::Command::new("/bin/true");
    let r = rx.inherit(&mut cmd);
    assert!(
        matches!(r, Err(Error::Incompatible { .. })),
        "{:?}",
        r.map(|_| ())
    );
}
