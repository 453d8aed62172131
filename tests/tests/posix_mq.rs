//! The conformance suite on POSIX message queues (connectionless: a dead peer is invisible,
//! the queue's removal is not), and what only queues have: priorities, a name that outlives
//! processes, limits counted in messages, and removal by anyone, seen by blocked calls.

use std::cmp::Reverse;
use std::path::Path;
use std::time::{Duration, Instant};

use ipc::posix::mq::{MqLimits, MqReceiver, destroy};
use ipc::{Error, Receiver, TransportSpec, Wait};
use ipc_tests::drive::fill;
use ipc_tests::message;
use ipc_tests::process::{Peer, SPEC_ENV, peer_command};
use ipc_tests::{Cfg, Factory, MqFactory, MqGuard, mq_exists};

ipc_tests::conformance_tests!(ipc_tests::MqFactory::new(), connectionless);

const PEER: &str = env!("CARGO_BIN_EXE_ipc-test-peer");

/// How soon a blocked call must notice that its queue was removed (it checks every 100 ms).
const PROMPT: Duration = Duration::from_secs(2);

/// `posix-mq:<name>?<query>` for a guarded name.
fn spec_of(guard: &MqGuard, query: &str) -> String {
    format!("posix-mq:{}?{query}", guard.name())
}

/// A peer in `role` opening `spec`.
fn peer(role: &str, args: &[&str], spec: &str) -> Peer {
    let mut cmd = peer_command(Path::new(PEER), role, args);
    cmd.env(SPEC_ENV, spec);
    Peer::spawn(cmd).expect("spawn ipc-test-peer")
}

fn parse(spec: &str) -> TransportSpec {
    spec.parse()
        .unwrap_or_else(|e| panic!("`{spec}` does not parse: {e}"))
}

/// Waits for the peer's `ok <ms>` after the queue's removal at `removed`: both the peer's own
/// measure of its blocked call and ours from the removal must be prompt.
fn expect_prompt_end(peer: &mut Peer, removed: Instant, what: &str) {
    let ms: u64 = peer.expect_line("ok").parse().expect("elapsed ms");
    let since_removal = removed.elapsed();
    assert!(
        since_removal < PROMPT,
        "{what}: Disconnected {since_removal:?} after the removal"
    );
    assert!(
        ms < PROMPT.as_millis() as u64,
        "{what}: the blocked call took {ms} ms"
    );
    peer.wait_success();
}

/// A queue removed (`mq_unlink`, by a third party: here the test, which is neither end) under
/// a receiver blocked in another process wakes it with `Disconnected` promptly, in `recv` and
/// in `recv_timeout` with a long deadline.
#[test]
fn removed_queue_wakes_a_receiver_blocked_in_another_process() {
    for mode in ["recv", "recv-timeout"] {
        let guard = MqGuard::unique();
        let spec = spec_of(&guard, "capacity=2&message_size=64");
        // Made here (a sender never removes its queue), so that the peer finds it.
        let _tx = ipc::open_sender(&format!("{spec}&create=always")).unwrap();
        let mut peer = peer("wait-end", &[mode], &format!("{spec}&create=never"));
        peer.expect_line("ready");
        let removed = Instant::now();
        destroy(guard.name()).unwrap();
        expect_prompt_end(&mut peer, removed, mode);
    }
}

/// Same for a sender blocked on a full queue in another process; the messages it queued stay
/// readable through our descriptor, opened before the removal.
#[test]
fn removed_queue_wakes_a_sender_blocked_in_another_process() {
    let guard = MqGuard::unique();
    let spec = spec_of(&guard, "capacity=2&message_size=64");
    let mut rx = ipc::open_receiver(&format!("{spec}&create=always")).unwrap();
    let mut peer = peer("wait-end", &["send"], &format!("{spec}&create=never"));
    let n: u64 = peer.expect_line("full").parse().unwrap();
    assert_eq!(n, 2, "capacity=2 counts messages");
    let removed = Instant::now();
    destroy(guard.name()).unwrap();
    expect_prompt_end(&mut peer, removed, "send");
    let mut check = message::StreamCheck::new(1);
    let mut buf = vec![0; rx.max_message_size()];
    for _ in 0..n {
        let len = rx
            .try_recv(&mut buf)
            .expect("a message queued before the removal");
        check.accept(&buf[..len]).unwrap();
    }
    let r = rx.try_recv(&mut buf);
    assert!(matches!(r, Err(Error::Empty)), "{r:?}");
}

/// Messages sent from another process with priorities come out highest priority first, in
/// sending order within a priority (0 and `MQ_PRIO_MAX - 1` included), each with its priority.
#[test]
fn higher_priority_is_received_first_across_processes() {
    let capacity = MqLimits::read().msg_max.min(8) as usize;
    let prios: Vec<u32> = [3, 0, 7, 32_767, 7, 1, 0, 3]
        .into_iter()
        .take(capacity)
        .collect();
    let guard = MqGuard::unique();
    let spec = spec_of(&guard, &format!("capacity={capacity}&message_size=64"));
    let mut rx = MqReceiver::open(&parse(&format!("{spec}&create=always"))).unwrap();
    let args: Vec<String> = prios.iter().map(u32::to_string).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut peer = peer("send-priorities", &args, &format!("{spec}&create=never"));
    peer.expect_line("sent");
    peer.wait_success();
    // (priority, sending order), in the order they must come out.
    let mut expected: Vec<(u32, u64)> = prios
        .iter()
        .enumerate()
        .map(|(i, &prio)| (prio, i as u64))
        .collect();
    expected.sort_by_key(|&(prio, i)| (Reverse(prio), i));
    let mut buf = vec![0; 64];
    let mut got = Vec::new();
    for _ in &expected {
        // All were sent before the peer exited: nothing to wait for.
        let (len, prio) = rx.recv_priority(&mut buf, Wait::Never).unwrap();
        let (writer, seq) = message::decode(&buf[..len]).unwrap();
        assert_eq!(
            writer, prio,
            "message {seq} was sent with priority {writer}, received with {prio}"
        );
        got.push((prio, seq));
    }
    assert_eq!(got, expected, "sent with priorities {prios:?}");
    let r = rx.recv_priority(&mut buf, Wait::Never);
    assert!(matches!(r, Err(Error::Empty)), "{r:?}");
}

/// A queue created by a sender in a child process that then exits normally (dropping its
/// sender) is still there with its messages: a sender never removes its queue.
#[test]
fn messages_outlive_the_process_that_created_the_queue() {
    let guard = MqGuard::unique();
    let spec = spec_of(&guard, "capacity=4&message_size=100");
    let mut peer = peer("send-hold", &["3"], &format!("{spec}&create=always"));
    peer.expect_line("sent");
    peer.close_stdin();
    peer.wait_success();
    let mut rx = ipc::open_receiver(&format!("{spec}&create=never")).unwrap();
    let mut check = message::StreamCheck::new(1);
    let mut buf = vec![0; rx.max_message_size()];
    for _ in 0..3 {
        let len = rx
            .try_recv(&mut buf)
            .expect("a message of the exited child");
        check.accept(&buf[..len]).unwrap();
    }
    check.finish(3).unwrap();
    let r = rx.try_recv(&mut buf);
    assert!(matches!(r, Err(Error::Empty)), "{r:?}");
}

/// `capacity` counts messages, whatever their size; `message_size` is exact.
#[test]
fn capacity_counts_messages() {
    let msg_max = MqLimits::read().msg_max as usize;
    for capacity in [1, 3, msg_max] {
        let cfg = Cfg {
            message_size: 64,
            capacity: Some(capacity),
            ..Cfg::default()
        };
        let mut pair = MqFactory::new().pair(&cfg).unwrap();
        assert_eq!(pair.tx.max_message_size(), 64);
        assert_eq!(pair.rx.max_message_size(), 64);
        let n = fill(&mut *pair.tx).unwrap();
        assert_eq!(n, capacity as u64, "try_send said Full after {n} messages");
    }
}

/// Above `fs.mqueue.msg_max` or `fs.mqueue.msgsize_max` is `LimitExceeded` naming the limit,
/// and creates nothing.
#[test]
fn limits_are_refused_and_create_nothing() {
    let limits = MqLimits::read();
    for (query, limit) in [
        (format!("capacity={}", limits.msg_max + 1), "msg_max"),
        (
            format!("message_size={}", limits.msgsize_max + 1),
            "msgsize_max",
        ),
    ] {
        let guard = MqGuard::unique();
        let spec = spec_of(&guard, &query);
        for r in [
            ipc::open_receiver(&spec).map(|_| ()),
            ipc::open_sender(&spec).map(|_| ()),
        ] {
            assert!(
                matches!(&r, Err(Error::LimitExceeded { what, .. }) if what.contains(limit)),
                "{spec}: {r:?}"
            );
        }
        assert!(!mq_exists(guard.name()), "{spec} created the queue");
    }
}

/// Whether the mqueue file system is mounted at `/dev/mqueue`, where queues are listed.
fn mqueue_listed() -> bool {
    std::fs::read_to_string("/proc/self/mounts")
        .map(|m| {
            m.lines()
                .any(|l| l.split(' ').nth(1) == Some("/dev/mqueue"))
        })
        .unwrap_or(false)
}

/// The factory's queues are removed in every way a test can end: normally, by a panic, with a
/// killed child receiving, a killed child blocked sending, and killed writers.
#[test]
fn no_queue_is_left_behind() {
    let (factory, record) = MqFactory::recording();
    let cfg = Cfg {
        message_size: 64,
        capacity: Some(2),
        ..Cfg::default()
    };
    let command = |role: &str, args: &[&str]| peer_command(Path::new(PEER), role, args);

    drop(factory.pair(&cfg).unwrap());

    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _pair = factory.pair(&cfg).unwrap();
        panic!("a test failing while it holds a queue");
    }));
    assert!(failed.is_err());

    // Made by our sender, which never removes it: only the guard does.
    let (tx, mut receiver) = factory
        .spawn_receiver(&cfg, command("recv-hold", &[]))
        .unwrap();
    receiver.expect_line("ready");
    receiver.kill();
    drop(receiver);
    drop(tx);

    let (rx, mut sender) = factory
        .spawn_sender(&cfg, command("wait-end", &["send"]))
        .unwrap();
    sender.expect_line("full");
    drop(sender);
    drop(rx);

    let (rx, mut writers) = factory
        .spawn_senders(
            &cfg,
            vec![
                command("send", &["1", "0", "on-go"]),
                command("send", &["1", "1", "on-go"]),
            ],
        )
        .unwrap();
    for writer in &mut writers {
        writer.expect_line("ready");
    }
    drop(rx);
    drop(writers);

    let names = record.lock().unwrap().clone();
    assert_eq!(names.len(), 5, "queues made: {names:?}");
    let listed = mqueue_listed();
    for name in &names {
        assert!(!mq_exists(name), "posix-mq:{name} was left behind");
        if listed {
            let file = format!("/dev/mqueue{name}");
            assert!(!Path::new(&file).exists(), "{file} was left behind");
        }
    }
}

/// The receiver that created a queue removes *that* queue when dropped, not a successor: once
/// its queue was removed (by `destroy`, `ipc` tools, a test's guard) and a sender made a new one
/// of the same name (senders create missing queues) and queued messages in it for the next
/// receiver, dropping the first receiver must leave the new queue and its messages alone (as
/// the owners of shared memory and semaphores do, comparing device and inode).
#[test]
fn creator_removes_only_the_queue_it_made() {
    let guard = MqGuard::unique();
    let spec = spec_of(&guard, "capacity=2&message_size=64");
    let first = ipc::open_receiver(&format!("{spec}&create=always")).unwrap();
    destroy(guard.name()).unwrap();
    let mut tx = ipc::open_sender(&format!("{spec}&create=always")).unwrap();
    tx.try_send(b"for the next receiver").unwrap();
    drop(first);
    assert!(
        mq_exists(guard.name()),
        "dropping the first receiver removed the queue a sender made after it, with its message"
    );
    let mut next = ipc::open_receiver(&format!("{spec}&create=never")).unwrap();
    let mut buf = [0; 64];
    let n = next.try_recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"for the next receiver");
}
