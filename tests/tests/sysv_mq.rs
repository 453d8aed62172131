//! The conformance suite on System V message queues (connectionless: a dead peer is invisible,
//! the queue's removal is not), and what only they have: keys (explicit, `ftok`), exclusive
//! creation and checked adoption, message types, kernel limits named by their sysctl, timed
//! calls made of `IPC_NOWAIT` attempts, and removal by anyone, seen by blocked calls.

use std::path::Path;
use std::time::{Duration, Instant};

use ipc::sysv::Key;
use ipc::sysv::msg::{MsgLimits, MsgReceiver, MsgSender, Selector, destroy};
use ipc::{Error, Receiver, Sender, TransportSpec, Wait};
use ipc_tests::drive::fill_with;
use ipc_tests::factory_sysv_mq::{SysvMqFactory, SysvMqGuard, sysv_mq_exists};
use ipc_tests::process::{Peer, SPEC_ENV, peer_command};
use ipc_tests::suite::SLACK;
use ipc_tests::{Cfg, Factory};

// The suite's connectionless group, but for `exited_receiver_is_invisible_to_sender`, whose
// last step assumes a queue bounded in messages (after 64-byte messages are refused, a
// 12-byte one must be too): a System V queue is bounded in bytes (`msg_qbytes`), so a smaller
// message may still fit. `exited_receiver_is_invisible_to_sender_bytes` below checks the same
// with a message of the filling size.
ipc_tests::conformance_tests!(@common ipc_tests::factory_sysv_mq::SysvMqFactory::new());
ipc_tests::conformance_tests!(@each
    dropped_sender_leaves_its_messages_queued,
    exited_sender_leaves_its_messages,
    killed_sender_leaves_its_messages,
);

const PEER: &str = env!("CARGO_BIN_EXE_ipc-test-peer");

/// How soon a blocked call must notice that its queue was removed.
const PROMPT: Duration = Duration::from_secs(2);

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

/// `ftok` on a path that does not exist is `NotFound` naming the path, for both ends, and
/// nothing is created.
#[test]
fn ftok_on_a_missing_path_is_not_found_naming_it() {
    let spec = format!(
        "sysv-mq:ftok=/nonexistent/ipc-test-{}:0x66",
        std::process::id()
    );
    for r in [
        ipc::open_receiver(&spec).map(|_| ()),
        ipc::open_sender(&spec).map(|_| ()),
    ] {
        match r {
            Err(Error::NotFound { object }) => {
                assert!(object.contains("/nonexistent/ipc-test-"), "{object}")
            }
            other => panic!("expected NotFound, got {other:?}"),
        }
    }
}

/// An `ftok` key on an existing path works like an explicit one.
#[test]
fn ftok_keys_name_a_queue() {
    let dir = ipc_tests::PathGuard::unique("ftok");
    std::fs::write(dir.path(), b"").unwrap();
    let spec = format!(
        "sysv-mq:ftok={}:0x5d?capacity=2&message_size=32",
        dir.as_str()
    );
    let key = Key::Ftok {
        path: dir.as_str().to_owned(),
        proj_id: 0x5d,
    };
    let _guard = SysvMqGuard::new(key.resolve().unwrap());
    let mut rx = ipc::open_receiver(&format!("{spec}&create=always")).unwrap();
    let mut tx = ipc::open_sender(&format!("{spec}&create=never")).unwrap();
    tx.send(b"by ftok").unwrap();
    let mut buf = [0; 32];
    assert_eq!(rx.try_recv(&mut buf).unwrap(), 7);
}

/// `create=always` on a key in use is `AlreadyExists`; opening a queue that grants more than
/// the requested mode, or that belongs to another user, is `Incompatible` with the reason.
#[test]
fn a_key_in_use_is_refused_and_foreign_queues_are_incompatible() {
    let guard = SysvMqGuard::unique();
    let spec = guard.spec("?capacity=2&message_size=32");
    let _rx = ipc::open_receiver(&format!("{spec}&create=always")).unwrap();
    match ipc::open_receiver(&format!("{spec}&create=always")) {
        Err(Error::AlreadyExists { object }) => {
            assert!(object.contains("sysv-mq:key="), "{object}")
        }
        other => panic!("expected AlreadyExists, got {:?}", other.map(|_| ())),
    }
    match ipc::open_sender(&format!("{spec}&create=never&mode=0400")) {
        Err(Error::Incompatible { reason, .. }) => assert!(reason.contains("0600"), "{reason}"),
        other => panic!("expected Incompatible, got {:?}", other.map(|_| ())),
    }
    // A queue someone made readable by everyone is not adopted by a 0600 opener.
    let open = SysvMqGuard::unique();
    let open_spec = open.spec("?capacity=2&message_size=32");
    let _squatter =
        MsgSender::open(&parse(&format!("{open_spec}&mode=0666&create=always"))).unwrap();
    for r in [
        ipc::open_receiver(&open_spec).map(|_| ()),
        ipc::open_sender(&open_spec).map(|_| ()),
    ] {
        match r {
            Err(Error::Incompatible { reason, .. }) => assert!(reason.contains("0666"), "{reason}"),
            other => panic!("expected Incompatible, got {other:?}"),
        }
    }
    // A capacity that does not match the queue's byte limit is refused too.
    match ipc::open_sender(&guard.spec("?capacity=3&message_size=32&create=never")) {
        Err(Error::Incompatible { reason, .. }) => assert!(reason.contains("64 bytes"), "{reason}"),
        other => panic!("expected Incompatible, got {:?}", other.map(|_| ())),
    }
}

/// A queue owned by another user is `Incompatible` naming the uid (needs root to make one).
#[test]
fn a_queue_of_another_user_is_incompatible() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to give a queue away");
        return;
    }
    let guard = SysvMqGuard::unique();
    let spec = guard.spec("?capacity=2&message_size=32");
    let tx = MsgSender::open(&parse(&format!("{spec}&create=always"))).unwrap();
    give_away(tx.msqid(), 65534);
    match ipc::open_receiver(&spec) {
        Err(Error::Incompatible { reason, .. }) => {
            assert!(reason.contains("uid 65534"), "{reason}")
        }
        other => panic!("expected Incompatible, got {:?}", other.map(|_| ())),
    }
}

/// `msgctl(IPC_SET)` with owner `uid`.
fn give_away(msqid: i32, uid: u32) {
    // SAFETY: msqid_ds is plain data; all-zero is a valid value.
    let mut ds: libc::msqid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: `ds` is a valid, writable msqid_ds for the call.
    assert_eq!(unsafe { libc::msgctl(msqid, libc::IPC_STAT, &mut ds) }, 0);
    ds.msg_perm.uid = uid;
    // SAFETY: `ds` is a valid msqid_ds filled by IPC_STAT.
    assert_eq!(unsafe { libc::msgctl(msqid, libc::IPC_SET, &mut ds) }, 0);
}

/// A queue removed (`IPC_RMID`, by a third party) under a receiver blocked in another process
/// wakes it with `Disconnected` promptly, in `recv` (blocking `msgrcv`: `EIDRM`) and in
/// `recv_timeout` (`IPC_NOWAIT` attempts: the id is gone), with no error loop.
#[test]
fn removed_queue_wakes_a_receiver_blocked_in_another_process() {
    for mode in ["recv", "recv-timeout"] {
        let guard = SysvMqGuard::unique();
        let spec = guard.spec("?capacity=2&message_size=64");
        // Made here by a sender (which never removes it), so that the peer finds it.
        let _tx = ipc::open_sender(&format!("{spec}&create=always")).unwrap();
        let mut peer = peer("wait-end", &[mode], &format!("{spec}&create=never"));
        peer.expect_line("ready");
        let removed = Instant::now();
        destroy(&Key::Explicit(guard.key())).unwrap();
        let ms: u64 = peer.expect_line("ok").parse().expect("elapsed ms");
        assert!(
            removed.elapsed() < PROMPT,
            "{mode}: {:?}",
            removed.elapsed()
        );
        assert!(ms < PROMPT.as_millis() as u64, "{mode}: {ms} ms");
        peer.wait_success();
    }
}

/// Whether thread `tid` of this process is inside system call `nr` now
/// (`/proc/self/task/<tid>/syscall` starts with the number while it is blocked in it).
fn in_syscall(tid: i32, nr: i64) -> bool {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall"))
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|n| n.parse::<i64>().ok())
        })
        == Some(nr)
}

/// Same for a receiver blocked (inside `msgrcv`, checked through `/proc`) in another thread of
/// this process.
#[test]
fn removed_queue_wakes_a_receiver_blocked_in_another_thread() {
    let guard = SysvMqGuard::unique();
    let spec = guard.spec("?capacity=2&message_size=64");
    let mut rx = MsgReceiver::open(&parse(&format!("{spec}&create=always"))).unwrap();
    rx.release_queue();
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let receiver = std::thread::spawn(move || {
        tid_tx.send(nix::unistd::gettid().as_raw()).unwrap();
        let mut buf = [0; 64];
        let r = rx.recv(&mut buf);
        let _ = done_tx.send(());
        r
    });
    let tid = tid_rx.recv().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !in_syscall(tid, libc::SYS_msgrcv) {
        assert!(
            Instant::now() < deadline,
            "the receiver never blocked in msgrcv"
        );
        std::thread::yield_now();
    }
    let removed = Instant::now();
    destroy(&Key::Explicit(guard.key())).unwrap();
    done_rx
        .recv_timeout(PROMPT)
        .expect("the blocked receiver did not wake");
    let r = receiver.join().unwrap();
    assert!(matches!(r, Err(Error::Disconnected)), "{r:?}");
    assert!(removed.elapsed() < PROMPT);
}

/// A sender blocked on a full queue in another process wakes with `Disconnected` when the
/// queue is removed; so does a later call of a receiver in this process.
#[test]
fn removed_queue_wakes_a_sender_blocked_in_another_process() {
    let guard = SysvMqGuard::unique();
    let spec = guard.spec("?capacity=2&message_size=64");
    let mut rx = ipc::open_receiver(&format!("{spec}&create=always")).unwrap();
    let mut peer = peer("wait-end", &["send"], &format!("{spec}&create=never"));
    let n: u64 = peer.expect_line("full").parse().unwrap();
    assert!(
        n >= 2,
        "capacity=2 holds at least 2 messages of 64 bytes, got {n}"
    );
    let removed = Instant::now();
    destroy(&Key::Explicit(guard.key())).unwrap();
    let ms: u64 = peer.expect_line("ok").parse().expect("elapsed ms");
    assert!(removed.elapsed() < PROMPT, "{:?}", removed.elapsed());
    assert!(ms < PROMPT.as_millis() as u64, "{ms} ms");
    peer.wait_success();
    let mut buf = vec![0; rx.max_message_size()];
    let r = rx.try_recv(&mut buf);
    assert!(matches!(r, Err(Error::Disconnected)), "{r:?}");
}

/// `send_type` / `recv_type`: `Exactly(n)` takes the oldest of type n, `AtMost(n)` the oldest
/// of the lowest type ≤ n, `Any` the oldest; the trait sends type 1 and takes any type. Types
/// cross processes (a peer sending through the trait sends type 1).
#[test]
fn message_types_select_what_is_received() {
    let guard = SysvMqGuard::unique();
    let spec = parse(&guard.spec("?capacity=8&message_size=32&create=always"));
    let mut rx = MsgReceiver::open(&spec).unwrap();
    let mut tx = MsgSender::open(&parse(&guard.spec("?create=never&message_size=32"))).unwrap();
    for (text, mtype) in [("a5", 5), ("b2", 2), ("c9", 9), ("d2", 2), ("e3", 3)] {
        tx.send_type(text.as_bytes(), mtype, Wait::Never).unwrap();
    }
    tx.send(b"f1").unwrap();
    let mut buf = [0; 32];
    let mut take = |selector| {
        let (n, mtype) = rx.recv_type(&mut buf, selector, Wait::Never).unwrap();
        (String::from_utf8(buf[..n].to_vec()).unwrap(), mtype)
    };
    assert_eq!(take(Selector::Exactly(9)), ("c9".into(), 9));
    assert_eq!(take(Selector::AtMost(4)), ("f1".into(), 1));
    assert_eq!(take(Selector::AtMost(4)), ("b2".into(), 2));
    assert_eq!(take(Selector::Exactly(3)), ("e3".into(), 3));
    assert_eq!(take(Selector::Any), ("a5".into(), 5));
    let r = rx.recv_type(&mut buf, Selector::Exactly(5), Wait::Never);
    assert!(matches!(r, Err(Error::Empty)), "{r:?}");
    assert_eq!(rx.recv(&mut buf).unwrap(), 2);
    assert_eq!(&buf[..2], b"d2");
    // Non-positive types are refused before any system call.
    assert!(tx.send_type(b"x", 0, Wait::Never).is_err());
    assert!(
        rx.recv_type(&mut buf, Selector::AtMost(0), Wait::Never)
            .is_err()
    );
}

/// A too small buffer gets `BufferTooSmall` with the selected message's length, and the
/// message stays queued (for this or any other receiver).
#[test]
fn a_small_buffer_leaves_the_selected_message_queued() {
    let guard = SysvMqGuard::unique();
    let spec = parse(&guard.spec("?capacity=4&message_size=64&create=always"));
    let mut rx = MsgReceiver::open(&spec).unwrap();
    let mut tx = MsgSender::open(&parse(&guard.spec("?create=never"))).unwrap();
    tx.send_type(&[7; 40], 7, Wait::Never).unwrap();
    tx.send_type(&[2; 20], 2, Wait::Never).unwrap();
    let mut small = [0; 10];
    for (selector, needed) in [
        (Selector::Any, 40),
        (Selector::Exactly(2), 20),
        (Selector::AtMost(7), 20),
    ] {
        let r = rx.recv_type(&mut small, selector, Wait::Never);
        assert!(
            matches!(r, Err(Error::BufferTooSmall { len: 10, needed: n }) if n == needed),
            "{selector:?}: {r:?}"
        );
    }
    let mut other = MsgReceiver::open(&parse(&guard.spec("?create=never"))).unwrap();
    let mut buf = [0; 64];
    assert_eq!(
        other
            .recv_type(&mut buf, Selector::Any, Wait::Never)
            .unwrap(),
        (40, 7)
    );
    assert_eq!(
        rx.recv_type(&mut buf, Selector::Any, Wait::Never).unwrap(),
        (20, 2)
    );
}

/// A `message_size` above `kernel.msgmax`, or a queue above `kernel.msgmnb` bytes, is
/// `LimitExceeded` naming the sysctl and its value, and creates nothing.
#[test]
fn limits_are_named_by_their_sysctl_and_create_nothing() {
    let limits = MsgLimits::read();
    for (query, sysctl, value) in [
        (
            format!("?message_size={}", limits.msgmax + 1),
            "kernel.msgmax",
            limits.msgmax,
        ),
        (
            format!("?message_size=1024&capacity={}", limits.msgmnb / 1024 + 1),
            "kernel.msgmnb",
            limits.msgmnb,
        ),
    ] {
        let guard = SysvMqGuard::unique();
        let spec = guard.spec(&query);
        for r in [
            ipc::open_receiver(&spec).map(|_| ()),
            ipc::open_sender(&spec).map(|_| ()),
        ] {
            match r {
                Err(Error::LimitExceeded { what, limit }) => {
                    assert!(what.contains(sysctl), "{what}");
                    assert_eq!(limit, value);
                }
                other => panic!("{query}: expected LimitExceeded, got {other:?}"),
            }
        }
        assert!(!sysv_mq_exists(guard.key()), "{query} created a queue");
    }
}

/// `try_recv` on an empty queue is `Empty`, `try_send` on a full one `Full`; a timed call
/// waits out its deadline, and not much longer. The upper bounds are the suite's [`SLACK`]:
/// the back-off sleeps at most 2 ms, but on a loaded machine any wake-up can come tens or
/// hundreds of milliseconds late; the tight bound is the lower one (never early).
#[test]
fn try_is_immediate_and_timeouts_are_honoured_within_bounds() {
    let mut pair = SysvMqFactory::new()
        .pair(&Cfg {
            message_size: 64,
            capacity: Some(2),
            ..Cfg::default()
        })
        .unwrap();
    let mut buf = [0; 64];
    let started = Instant::now();
    assert!(matches!(pair.rx.try_recv(&mut buf), Err(Error::Empty)));
    assert!(started.elapsed() < SLACK, "{:?}", started.elapsed());
    for timeout in [Duration::from_millis(20), Duration::from_millis(250)] {
        let started = Instant::now();
        let r = pair.rx.recv_timeout(&mut buf, timeout);
        let elapsed = started.elapsed();
        assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
        assert!(
            elapsed >= timeout,
            "returned after {elapsed:?} < {timeout:?}"
        );
        assert!(
            elapsed < timeout + SLACK,
            "returned after {elapsed:?} for {timeout:?}"
        );
    }
    // 2 × 64 bytes fill the queue.
    pair.tx.try_send(&[1; 64]).unwrap();
    pair.tx.try_send(&[2; 64]).unwrap();
    assert!(matches!(pair.tx.try_send(&[3; 64]), Err(Error::Full)));
    let started = Instant::now();
    let r = pair.tx.send_timeout(&[3; 64], Duration::from_millis(100));
    assert!(matches!(r, Err(Error::Timeout)), "{r:?}");
    assert!(started.elapsed() >= Duration::from_millis(100));
    // A message arriving during a timed wait is taken within the back-off's 2 ms (plus
    // scheduling), well before the deadline.
    assert_eq!(pair.rx.try_recv(&mut buf).unwrap(), 64);
    assert_eq!(pair.rx.try_recv(&mut buf).unwrap(), 64);
}

/// Every queue the factory made is gone once the pairs and peers are dropped.
#[test]
fn the_factory_leaves_no_queue_behind() {
    let (factory, record) = SysvMqFactory::recording();
    {
        let mut pair = factory.pair(&Cfg::message_size(64)).unwrap();
        pair.tx.send(b"left in the queue").unwrap();
        let cmd = peer_command(Path::new(PEER), "recv-hold", &[]);
        let (_tx, mut peer) = factory.spawn_receiver(&Cfg::message_size(64), cmd).unwrap();
        peer.expect_line("ready");
        peer.kill();
    }
    let keys = record.lock().unwrap().clone();
    assert_eq!(keys.len(), 2);
    for key in keys {
        assert!(!sysv_mq_exists(key), "queue {key:#x} left behind");
    }
}

/// A child receiver that exits is invisible: our sends still go into the queue until it is
/// full (`Full` for a message of the filling size, not `Disconnected`).
#[test]
fn exited_receiver_is_invisible_to_sender_bytes() {
    let factory = SysvMqFactory::new();
    assert!(!factory.sees_peer_death());
    let cmd = peer_command(Path::new(PEER), "recv-hold", &[]);
    let (mut tx, mut peer) = factory.spawn_receiver(&factory.default_cfg(), cmd).unwrap();
    peer.expect_line("ready");
    tx.send(b"unread").unwrap();
    peer.close_stdin();
    peer.wait_success();
    tx.send(b"still accepted")
        .expect("send with the receiver gone");
    let n = fill_with(&mut *tx, 64).unwrap();
    assert!(n > 0);
    let r = tx.try_send(&[0; 64]);
    assert!(matches!(r, Err(Error::Full)), "try_send on full: {r:?}");
}
