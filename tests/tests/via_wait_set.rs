//! The conformance suite through `ipc::WaitSet`, for every transport: each endpoint of each
//! test, in this process and in its peers, does every wait in a wait set of its own (see
//! `ipc_tests::via`), never in the transport's blocking call. Each module has the same group of
//! tests as the transport's own file (`tests/<transport>.rs`), so the properties, their time
//! bounds and the peer-death tests are the direct ones.

use std::path::Path;
use std::sync::mpsc;
use std::thread;

use ipc::{Error, Receiver};
use ipc_tests::process::{ProcThread, WATCHDOG, peer_command};
use ipc_tests::{Factory, Pair, ShmFactory, Via, ViaFactory};

const PEER: &str = env!("CARGO_BIN_EXE_ipc-test-peer");

mod pipe {
    use super::*;

    ipc_tests::conformance_tests!(ViaFactory::new(ipc_tests::PipeFactory, Via::WaitSet));
}

mod fifo {
    use super::*;

    ipc_tests::conformance_tests!(ViaFactory::new(ipc_tests::FifoFactory, Via::WaitSet));
}

mod posix_mq {
    use super::*;

    // The connectionless group, as tests/posix_mq.rs has it, but for two tests that fail:
    // the queue descriptor that is a POSIX queue's readiness never shows the queue's removal
    // (`mq_unlink` wakes no poller, and `try_send` on a full queue says `Full` whether or not
    // it was removed), so a sender waiting for room in a wait set sleeps for ever after its
    // receiver removed the queue, where a blocking send says `Disconnected` within 100 ms.
    // Listed here, not dropped: back to the plain `connectionless` form once
    // ipc-posix/src/mq.rs (`impl Readiness for MqSender`) shows the removal.
    ipc_tests::conformance_tests!(@ctx ViaFactory::new(
        ipc_tests::MqFactory::new(),
        Via::WaitSet
    ));
    ipc_tests::conformance_tests!(@each
        random_messages_arrive_whole_once_in_order,
        oversized_message_is_refused_and_sends_nothing,
        small_buffer_is_refused_and_keeps_the_message,
        try_recv_on_empty_is_empty,
        recv_timeout_waits_out_its_deadline,
        try_send_on_full_is_full_and_send_timeout_waits,
        timed_out_send_is_never_delivered,
        messages_cross_to_a_child_process,
        messages_cross_from_a_child_process,
        several_writer_processes_do_not_interleave,
        signals_do_not_break_blocking_recv,
        signals_do_not_break_recv_timeout,
        signals_do_not_shorten_recv_timeout,
        signals_do_not_break_blocking_send,
        signals_do_not_shorten_send_timeout,
        dropped_sender_leaves_its_messages_queued,
        exited_sender_leaves_its_messages,
        killed_sender_leaves_its_messages,
        exited_receiver_is_invisible_to_sender,
    );
    ipc_tests::conformance_tests!(@ignored
        "posix-mq readiness does not show the queue's removal (hangs 30 s)":
        blocked_send_wakes_when_receiver_dropped,
        sigpipe_default_child_blocked_in_send_gets_disconnected,
    );
}

mod posix_shm {
    use super::*;

    ipc_tests::conformance_tests!(
        ViaFactory::new(ipc_tests::ShmFactory::new(), Via::WaitSet),
        connected
    );
}

mod sysv_shm {
    use super::*;

    ipc_tests::conformance_tests!(
        ViaFactory::new(
            ipc_tests::factory_sysv_shm::SysvShmFactory::new(),
            Via::WaitSet
        ),
        connected
    );
}

mod sysv_mq {
    use super::*;

    // The group of tests/sysv_mq.rs: the connectionless one but for
    // `exited_receiver_is_invisible_to_sender` (a queue bounded in bytes; see there).
    ipc_tests::conformance_tests!(@common ViaFactory::new(
        ipc_tests::factory_sysv_mq::SysvMqFactory::new(),
        Via::WaitSet
    ));
    ipc_tests::conformance_tests!(@each
        dropped_sender_leaves_its_messages_queued,
        exited_sender_leaves_its_messages,
        killed_sender_leaves_its_messages,
    );
}

/// The adapters are what the suite runs: through [`Via::WaitSet`] a blocked receive sleeps in
/// `poll(2)` (the set's), in this process and in a peer started by the factory, and through
/// [`Via::Direct`] it does not (a ring parks on its futex); either way the sender's going wakes
/// it with `Disconnected`. Checked on one transport: the wrapping is the same for all.
#[test]
fn endpoints_wait_in_the_set_here_and_in_peers() {
    for via in Via::ALL {
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
