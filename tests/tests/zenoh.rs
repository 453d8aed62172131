//! The conformance suite over Zenoh: two peer-mode sessions on loopback, in two processes
//! where the test has a peer, with explicit `tcp/127.0.0.1:PORT` endpoints; then what only
//! Zenoh has (waiting for a subscriber, a receiver that comes back, tokio runtimes).
//!
//! Zenoh's `put` has no deadline and no "would block" (see `ipc_zenoh`, "Where it differs from
//! the local transports"): the tests that need a full transport stay listed, ignored with the
//! reason; run with `--ignored` they hang until their watchdog.

use std::time::{Duration, Instant};

use ipc::{Error, Receiver, Sender};
use ipc_tests::factory_zenoh::{ZenohFactory, free_port};
use ipc_tests::process::{WATCHDOG, bounded};
use ipc_tests::suite::SLACK;
use ipc_tests::unique_name;

ipc_tests::conformance_tests!(@ctx ZenohFactory);
ipc_tests::conformance_tests!(@each
    random_messages_arrive_whole_once_in_order,
    oversized_message_is_refused_and_sends_nothing,
    small_buffer_is_refused_and_keeps_the_message,
    try_recv_on_empty_is_empty,
    recv_timeout_waits_out_its_deadline,
    messages_cross_to_a_child_process,
    messages_cross_from_a_child_process,
    several_writer_processes_do_not_interleave,
    signals_do_not_break_blocking_recv,
    signals_do_not_break_recv_timeout,
    signals_do_not_shorten_recv_timeout,
    dropped_sender_disconnects_after_queued_messages,
    blocked_recv_wakes_when_sender_dropped,
    dropped_receiver_disconnects_sender,
    exited_sender_disconnects_after_its_messages,
    exited_receiver_disconnects_sender,
    sigpipe_default_child_gets_disconnected,
    batches_cross_from_a_child_process_whole_once_in_order,
);
/// The receivers poll before they sleep (`wait=spin`): what arrives, and when a receive gives
/// up or sees its sender go, must not change.
mod spin {
    use ipc_tests::WaitingFactory;
    use ipc_tests::factory_zenoh::ZenohFactory;

    ipc_tests::conformance_tests!(@ctx WaitingFactory::new(ZenohFactory, ipc::WaitStrategy::Spin));
    ipc_tests::conformance_tests!(@each
        random_messages_arrive_whole_once_in_order,
        try_recv_on_empty_is_empty,
        recv_timeout_waits_out_its_deadline,
        messages_cross_from_a_child_process,
        signals_do_not_shorten_recv_timeout,
        blocked_recv_wakes_when_sender_dropped,
        exited_sender_disconnects_after_its_messages,
    );
}

ipc_tests::conformance_tests!(@ignored "zenoh's put has no deadline and no Full: it blocks while the link is congested":
    try_send_on_full_is_full_and_send_timeout_waits,
    timed_out_send_is_never_delivered,
    blocked_send_wakes_when_receiver_dropped,
    killed_receiver_wakes_blocked_sender,
    sigpipe_default_child_blocked_in_send_gets_disconnected,
    signals_do_not_break_blocking_send,
    signals_do_not_shorten_send_timeout,
    blocked_calls_sleep_rather_than_spin,
    batch_on_full_sends_exactly_what_it_counts,
);
ipc_tests::conformance_tests!(@ignored "a sender killed by SIGKILL loses what zenoh had queued but not yet written to the socket":
    killed_sender_disconnects_after_its_messages,
    blocked_recv_wakes_when_sender_killed,
);

/// The same, each endpoint waiting through an `ipc::WaitSet` or on a current-thread tokio
/// runtime: the eventfd the callbacks signal is the readiness descriptor.
mod via_wait_set {
    ipc_tests::conformance_tests!(@ctx ipc_tests::ViaFactory::new(
        ipc_tests::factory_zenoh::ZenohFactory,
        ipc_tests::Via::WaitSet
    ));
    ipc_tests::conformance_tests!(@each
        random_messages_arrive_whole_once_in_order,
        try_recv_on_empty_is_empty,
        recv_timeout_waits_out_its_deadline,
        messages_cross_from_a_child_process,
        blocked_recv_wakes_when_sender_dropped,
        dropped_receiver_disconnects_sender,
    );
}

mod via_tokio {
    ipc_tests::conformance_tests!(@ctx ipc_tests::ViaFactory::new(
        ipc_tests::factory_zenoh::ZenohFactory,
        ipc_tests::Via::Tokio
    ));
    ipc_tests::conformance_tests!(@each
        random_messages_arrive_whole_once_in_order,
        try_recv_on_empty_is_empty,
        messages_cross_from_a_child_process,
        blocked_recv_wakes_when_sender_dropped,
        dropped_receiver_disconnects_sender,
    );
}

/// A fresh key and port: the receiver's and the sender's strings.
fn channel(sender_options: &str) -> (String, String) {
    let key = format!("ipc-test/{}", unique_name());
    let port = free_port();
    (
        format!("zenoh:{key}?listen=tcp/127.0.0.1:{port}"),
        format!("zenoh:{key}?connect=tcp/127.0.0.1:{port}{sender_options}"),
    )
}

/// Without a subscriber a sender does not open: Zenoh would drop its messages. It gives up
/// with `Timeout` after `open_timeout`, not before.
#[test]
fn sender_without_receiver_waits_out_open_timeout() {
    let (_, tx_spec) = channel("&open_timeout=300ms");
    let (r, elapsed) = bounded("open a sender without receiver", WATCHDOG, move || {
        let start = Instant::now();
        (ipc::open_sender(&tx_spec).map(|_| ()), start.elapsed())
    });
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
    let timeout = Duration::from_millis(300);
    assert!(elapsed >= timeout, "gave up early, after {elapsed:?}");
    assert!(elapsed < timeout + SLACK, "gave up late, after {elapsed:?}");
}

/// A receiver opened before any sender is empty, not disconnected.
#[test]
fn receiver_before_any_sender_is_not_disconnected() {
    let (rx_spec, _) = channel("");
    let mut rx = ipc::open_receiver(&rx_spec).unwrap();
    let mut buf = [0; 16];
    assert!(matches!(rx.try_recv(&mut buf), Err(Error::Empty)));
    let r = rx.recv_timeout(&mut buf, Duration::from_millis(100));
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
}

/// With its receiver gone a sender says `Disconnected` (nothing is published into the void);
/// a receiver that comes back on the same endpoint gets what is sent from then on.
#[test]
fn sender_resumes_when_a_receiver_comes_back() {
    let (rx_spec, tx_spec) = channel("&open_timeout=10s");
    let rx = ipc::open_receiver(&rx_spec).unwrap();
    let mut tx = ipc::open_sender(&tx_spec).unwrap();
    drop(rx);
    let deadline = Instant::now() + WATCHDOG;
    while tx.send(b"to nobody").is_ok() {
        assert!(
            Instant::now() < deadline,
            "the sender never saw its receiver go"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(matches!(tx.send(b"x"), Err(Error::Disconnected)));
    let mut rx = ipc::open_receiver(&rx_spec).unwrap();
    let deadline = Instant::now() + WATCHDOG;
    loop {
        match tx.send(b"again") {
            Ok(()) => break,
            Err(Error::Disconnected) => {
                assert!(
                    Instant::now() < deadline,
                    "the sender never saw the new receiver"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    let mut buf = [0; 16];
    let n = rx.recv_timeout(&mut buf, WATCHDOG).unwrap();
    assert_eq!(&buf[..n], b"again");
}

/// Zenoh's blocking calls panic on a current-thread tokio runtime's thread; ours keep them
/// off it, so plain `ipc::open_*` and the async API work inside one.
#[test]
fn endpoints_work_inside_a_current_thread_tokio_runtime() {
    let (rx_spec, tx_spec) = channel("&open_timeout=10s");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let got = bounded("zenoh inside tokio", WATCHDOG, move || {
        rt.block_on(async move {
            let mut rx = ipc::open_async_receiver(&rx_spec).await.unwrap();
            let mut tx = ipc::open_sender(&tx_spec).unwrap();
            tx.send(b"from inside tokio").unwrap();
            let mut buf = [0; 32];
            let n = rx.recv(&mut buf).await.unwrap();
            drop(tx);
            let end = rx.recv(&mut buf).await;
            (buf[..n].to_vec(), end.err())
        })
    });
    assert_eq!(got.0, b"from inside tokio");
    assert!(matches!(got.1, Some(Error::Disconnected)), "{:?}", got.1);
}
