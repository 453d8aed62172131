//! The conformance suite through `ipc::WaitSet`, for every transport: each endpoint of each
//! test, in this process and in its peers, does every wait in a wait set of its own (see
//! `ipc_tests::via`), never in the transport's blocking call. One module per transport, with
//! the group of tests of the transport's own file (see `conformance_tests_via!`), so the
//! properties, their time bounds and the peer-death tests are the direct ones.

use std::path::Path;
use std::sync::mpsc;
use std::thread;

use ipc::{Error, Receiver};
use ipc_tests::process::{ProcThread, WATCHDOG, peer_command};
use ipc_tests::{Factory, Pair, ShmFactory, Via, ViaFactory};

const PEER: &str = env!("CARGO_BIN_EXE_ipc-test-peer");

ipc_tests::conformance_tests_via!(ipc_tests::Via::WaitSet);

/// The adapters are what the suite runs: through [`Via::WaitSet`] a blocked receive sleeps in
/// `poll(2)` (the set's), in this process and in a peer started by the factory, and through
/// [`Via::Direct`] it does not (a ring parks on its futex); either way the sender's going wakes
/// it with `Disconnected`. Checked on one transport: the wrapping is the same for all.
#[test]
fn endpoints_wait_in_the_set_here_and_in_peers() {
    for via in [Via::Direct, Via::WaitSet] {
        let factory = ViaFactory::new(ShmFactory::new(), via);
        let cfg = factory.default_cfg();

        let Pair {
            tx,
            rx,
            cleanup: _cleanup,
        } = factory.pair(&cfg).unwrap();
        let (tid_tx, tid_rx) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        thread::spawn(move || {
            tid_tx.send(nix::unistd::gettid().as_raw()).unwrap();
            let mut rx = rx;
            let _ = done_tx.send(rx.recv(&mut [0; 64]));
        });
        let tid = tid_rx
            .recv_timeout(WATCHDOG)
            .expect("the receiving thread started");
        assert_waits(via, &ProcThread::of_tid(tid), "this process");
        drop(tx);
        let r = done.recv_timeout(WATCHDOG).expect("recv still blocked");
        assert!(matches!(r, Err(Error::Disconnected)), "{via:?}: {r:?}");

        let cmd = peer_command(Path::new(PEER), "wait-end", &["recv"]);
        let (tx, mut peer) = factory.spawn_receiver(&cfg, cmd).unwrap();
        peer.expect_line("ready");
        assert_waits(via, &ProcThread::of_peer(&peer), "the peer");
        drop(tx);
        peer.expect_line("ok");
        peer.wait_success();
    }
}

/// Waits until `thread` is blocked in `poll` or `futex`, and checks it is the one `via` means.
fn assert_waits(via: Via, thread: &ProcThread, whose: &str) {
    thread.until("a blocked receive", |t| {
        t.polling() || t.blocked_in(&[libc::SYS_futex])
    });
    assert_eq!(
        thread.polling(),
        via == Via::WaitSet,
        "{via:?}: the receive of {whose} waits {} poll(2)",
        if thread.polling() { "in" } else { "outside" }
    );
}
