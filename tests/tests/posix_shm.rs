//! The conformance suite on POSIX shared-memory rings (connected: the ends register their
//! processes in the segment, so a closed, exited or killed peer is seen), and what only rings
//! have: one receiver and (by default) one sender per ring, a sender that may start first, a
//! shape fixed by the creator, a segment that must be a ring of ours, zero-copy access.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use ipc::posix::ring::{INIT_TIMEOUT, ShmReceiver, ShmSender};
use ipc::posix::shm::{Expect, SharedMemory};
use ipc::sync::ring::{Geometry, RingConfig};
use ipc::sync::{Layout, LayoutKind, Shared};
use ipc::{Error, Receiver, Segment, Sender, TransportSpec, Wait};
use ipc_tests::drive::{drain_bounded, fill, send_stream};
use ipc_tests::process::{Peer, ProcThread, SPEC_ENV, WATCHDOG, peer_command};
use ipc_tests::{Cfg, Factory, ShmFactory, ShmGuard, shm_exists};
use ipc_tests::{message, shm_ring};

ipc_tests::conformance_tests!(ipc_tests::ShmFactory::new(), connected);

const PEER: &str = env!("CARGO_BIN_EXE_ipc-test-peer");

/// `posix-shm:<name>[?<query>]` for a guarded name.
fn spec_of(guard: &ShmGuard, query: &str) -> String {
    if query.is_empty() {
        format!("posix-shm:{}", guard.name())
    } else {
        format!("posix-shm:{}?{query}", guard.name())
    }
}

fn parse(spec: &str) -> TransportSpec {
    spec.parse()
        .unwrap_or_else(|e| panic!("`{spec}` does not parse: {e}"))
}

/// A peer in `role` opening `spec`.
fn peer(role: &str, args: &[&str], spec: &str) -> Peer {
    let mut cmd = peer_command(Path::new(PEER), role, args);
    cmd.env(SPEC_ENV, spec);
    Peer::spawn(cmd).expect("spawn ipc-test-peer")
}

/// Asserts that `peer` failed to open its end, for a reason whose text contains `why`.
fn expect_refused(peer: &mut Peer, why: &str) {
    let status = peer.wait();
    let stderr = peer.stderr_text();
    assert!(
        !status.success(),
        "the peer was not refused; stderr:\n{stderr}"
    );
    assert!(stderr.contains(why), "expected `{why}` in:\n{stderr}");
}

fn incompatible_reason<T>(what: &str, r: ipc::Result<T>) -> String {
    match r {
        Err(Error::Incompatible { reason, .. }) => reason,
        Err(other) => panic!("{what}: expected Incompatible, got {other:?}"),
        Ok(_) => panic!("{what}: expected Incompatible, it opened"),
    }
}

/// A sender started before any receiver (`create=never`, the default) waits for the segment
/// to appear, then delivers everything; the receiver sees the end once the sender exits, and
/// removes the segment it made.
#[test]
fn sender_started_before_the_receiver_waits_then_delivers() {
    let guard = ShmGuard::unique();
    let spec = spec_of(&guard, "capacity=16KiB");
    let mut sender = peer("send", &["500", "0"], &spec);
    // Once it sleeps between two looks for the segment, the sender is in its wait: it must
    // neither fail nor create.
    ProcThread::of_peer(&sender).until("the sender waiting for the segment", |t| t.sleeping());
    assert!(!sender.has_exited(), "{}", sender.stderr_text());
    assert!(!shm_exists(guard.name()), "the sender created the segment");
    let rx = ipc::open_receiver(&spec).unwrap();
    drain_bounded(rx, 1).unwrap().finish(500).unwrap();
    sender.expect_line("ok");
    sender.wait_success();
    assert!(!shm_exists(guard.name()), "the creating receiver left it");
}

/// A sender that created the segment (`create=if_missing`) and exited leaves it, with its
/// messages, for a receiver that comes later (`ipc send` then `ipc recv`). That receiver did
/// not create it, so it leaves it too: only a guard (or `shm_unlink`) removes it.
#[test]
fn messages_outlive_the_sender_that_created_the_segment() {
    let guard = ShmGuard::unique();
    let spec = spec_of(&guard, "capacity=16KiB");
    let mut sender = peer("send-hold", &["3"], &format!("{spec}&create=if_missing"));
    sender.expect_line("sent");
    sender.close_stdin();
    sender.wait_success();
    assert!(shm_exists(guard.name()));
    let rx = ipc::open_receiver(&spec).unwrap();
    drain_bounded(rx, 1).unwrap().finish(3).unwrap();
    assert!(
        shm_exists(guard.name()),
        "a receiver removed what it did not create"
    );
}

/// One receiver per ring: a second one, in this process or another, is `LimitExceeded`.
#[test]
fn a_second_receiver_is_refused() {
    let guard = ShmGuard::unique();
    let spec = spec_of(&guard, "");
    let _rx = ipc::open_receiver(&spec).unwrap();
    match ipc::open_receiver(&spec) {
        Err(Error::LimitExceeded { what, limit }) => {
            assert!(what.contains("another live process receives"), "{what}");
            assert_eq!(limit, 1);
        }
        other => panic!("second receiver: {:?}", other.map(|_| ())),
    }
    let mut second = peer("recv-hold", &[], &spec_of(&guard, "create=never"));
    expect_refused(&mut second, "another live process receives");
}

/// A receiver killed (its creator included) leaves the segment and its place to the next one.
#[test]
fn a_dead_receivers_place_is_taken_over() {
    let guard = ShmGuard::unique();
    let spec = spec_of(&guard, "capacity=16KiB");
    shm_ring::a_dead_receivers_place_is_taken_over(Path::new(PEER), &spec, || {
        shm_exists(guard.name())
    });
}

/// A single-producer ring (the default) refuses a second live sender, here or in another
/// process, and takes one again once the first is gone; a `producers=multi` ring takes several.
#[test]
fn a_second_producer_on_a_single_producer_ring_is_refused() {
    let guard = ShmGuard::unique();
    let spec = spec_of(&guard, "");
    let mut rx = ipc::open_receiver(&spec).unwrap();
    let mut first = ipc::open_sender(&spec).unwrap();
    match ipc::open_sender(&spec) {
        Err(Error::LimitExceeded { what, limit }) => {
            assert!(what.contains("single-producer"), "{what}");
            assert_eq!(limit, 1);
        }
        other => panic!("second sender: {:?}", other.map(|_| ())),
    }
    let mut second = peer("send", &["1", "0"], &spec);
    expect_refused(&mut second, "single-producer");
    first.send(b"first").unwrap();
    drop(first);
    let mut next = ipc::open_sender(&spec).unwrap();
    next.send(b"next").unwrap();
    let mut buf = vec![0; rx.max_message_size()];
    for want in [&b"first"[..], b"next"] {
        let n = rx.try_recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], want);
    }

    let guard = ShmGuard::unique();
    let spec = spec_of(&guard, "producers=multi");
    let mut rx = ipc::open_receiver(&spec).unwrap();
    let mut senders: Vec<_> = (0..3).map(|_| ipc::open_sender(&spec).unwrap()).collect();
    for (i, tx) in senders.iter_mut().enumerate() {
        tx.send(&[i as u8]).unwrap();
    }
    for i in 0..3u8 {
        assert_eq!(rx.try_recv(&mut buf).unwrap(), 1);
        assert_eq!(buf[0], i);
    }
}

/// `capacity`, `message_size` and `producers` named by an opener must be the existing ring's
/// (`Incompatible`, explaining both); left out, they accept what is there.
#[test]
fn mismatched_shape_is_incompatible() {
    let guard = ShmGuard::unique();
    let spec = spec_of(&guard, "capacity=64KiB");
    let rx = ipc::open_receiver(&spec).unwrap();
    for (end, r) in [
        (
            "sender",
            ipc::open_sender(&spec_of(&guard, "capacity=128KiB")).map(|_| ()),
        ),
        (
            "receiver",
            ipc::open_receiver(&spec_of(&guard, "capacity=128KiB&create=never")).map(|_| ()),
        ),
    ] {
        let reason = incompatible_reason(end, r);
        assert!(reason.contains("capacity 65536"), "{end}: {reason}");
        assert!(reason.contains("capacity 131072"), "{end}: {reason}");
    }
    let reason = incompatible_reason(
        "message_size",
        ipc::open_sender(&spec_of(&guard, "message_size=1KiB")),
    );
    assert!(reason.contains("message_size 16384"), "{reason}");
    let reason = incompatible_reason(
        "producers",
        ipc::open_sender(&spec_of(&guard, "producers=multi")),
    );
    assert!(reason.contains("producers single"), "{reason}");
    let tx = ipc::open_sender(&spec_of(&guard, "")).unwrap();
    assert_eq!(tx.max_message_size(), rx.max_message_size());
}

/// A segment this library did not initialise is `Incompatible` at either end, and nothing
/// crashes: zeros (a creator that died before initialising, or another program's), junk,
/// something too small for a header, a squatted one (wider mode). A ring whose control block
/// was scribbled over is `Corrupted`.
#[test]
fn a_segment_not_made_by_us_is_refused() {
    let size = RingConfig::new(64 * 1024).segment_size();
    let ends = |guard: &ShmGuard| {
        [
            (
                "receiver",
                ipc::open_receiver(&spec_of(guard, "")).map(|_| ()),
            ),
            (
                "sender",
                ipc::open_sender(&spec_of(guard, "open_timeout=100ms")).map(|_| ()),
            ),
        ]
    };

    let guard = ShmGuard::unique();
    let zeros = SharedMemory::create(guard.name(), size, 0o600).unwrap();
    let start = Instant::now();
    for (end, r) in ends(&guard) {
        let reason = incompatible_reason(end, r);
        assert!(reason.contains("not initialised"), "{end}: {reason}");
    }
    // Each end gave a possible creator its time, and no more than that.
    assert!(start.elapsed() >= INIT_TIMEOUT, "{:?}", start.elapsed());
    assert!(start.elapsed() < 4 * INIT_TIMEOUT, "{:?}", start.elapsed());

    let map = zeros.map().unwrap();
    let mut junk = vec![0; size];
    message::fill(0xbad, &mut junk);
    map.write_at(0, &junk).unwrap();
    let start = Instant::now();
    for (end, r) in ends(&guard) {
        let reason = incompatible_reason(end, r);
        assert!(
            reason.contains("not an ipc-sync segment"),
            "{end}: {reason}"
        );
    }
    assert!(start.elapsed() < INIT_TIMEOUT, "junk is refused at once");
    drop(zeros);
    assert!(!shm_exists(guard.name()));

    // Empty, as a creator leaves it if it dies between `shm_open` and sizing it.
    let guard = ShmGuard::unique();
    let empty = empty_object(&guard);
    for (end, r) in ends(&guard) {
        let reason = incompatible_reason(end, r);
        assert!(reason.contains("still empty"), "{end}: {reason}");
    }
    drop(empty);

    let guard = ShmGuard::unique();
    let _tiny = SharedMemory::create(guard.name(), 100, 0o600).unwrap();
    for (end, r) in ends(&guard) {
        let reason = incompatible_reason(end, r);
        assert!(reason.contains("too small"), "{end}: {reason}");
    }

    let guard = ShmGuard::unique();
    let _squatted = SharedMemory::create(guard.name(), size, 0o666).unwrap();
    for (end, r) in ends(&guard) {
        let reason = incompatible_reason(end, r);
        assert!(reason.contains("0666"), "{end}: {reason}");
    }

    // A real ring, whose capacity word is then overwritten.
    let guard = ShmGuard::unique();
    let tx = ipc::open_sender(&spec_of(&guard, "create=always")).unwrap();
    let scribbler = SharedMemory::open(guard.name(), &Expect::size(size)).unwrap();
    let shared = Shared::new(Arc::new(scribbler.map().unwrap()));
    let layout = Layout::attach(&shared, LayoutKind::Ring, Duration::ZERO).unwrap();
    let control = layout.regions()[0].offset;
    shared
        .u64_at(control)
        .unwrap()
        .store(12_345, Ordering::SeqCst);
    match ipc::open_receiver(&spec_of(&guard, "")) {
        Err(Error::Corrupted { what }) => assert!(what.contains("12345"), "{what}"),
        other => panic!("scribbled ring: {:?}", other.map(|_| ())),
    }
    drop(tx);
}

/// Makes `/dev/shm/<name>` an empty object of ours, mode 0600, as `shm_open(O_CREAT | O_EXCL)`
/// does before the creator sizes it.
fn empty_object(guard: &ShmGuard) -> std::fs::File {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(format!("/dev/shm{}", guard.name()))
        .unwrap()
}

/// A creator slow at each step, played by the test: the object exists but is empty, then is
/// sized but not initialised, then holds a ring. A sender opening meanwhile waits through both
/// windows (instead of calling the object incompatible) and then works.
#[test]
fn an_opener_waits_for_a_slow_creator() {
    let guard = ShmGuard::unique();
    let spec = spec_of(&guard, "open_timeout=10s");
    let file = empty_object(&guard);
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let opener = thread::spawn(move || {
        tid_tx.send(nix::unistd::gettid().as_raw()).unwrap();
        ipc::open_sender(&spec)
    });
    // The "creator" takes each step once the opener is seen waiting in the window before it
    // (asleep between two looks; its only blocking calls are those back-off sleeps), or has
    // given up (then its result fails the test below).
    let tid = tid_rx.recv_timeout(WATCHDOG).expect("the opener started");
    let opener_thread = ProcThread::of_tid(tid);
    opener_thread.until("the opener waiting for the object to be sized", |t| {
        t.sleeping() || opener.is_finished()
    });
    let config = RingConfig::new(64 * 1024);
    file.set_len(config.segment_size() as u64).unwrap();
    // Two sleeps begun after the resize: the look between them saw it sized.
    let blocks = opener_thread.blocks();
    opener_thread.until("the opener waiting for the ring to be initialised", |t| {
        (t.blocks() >= blocks + 2 && t.sleeping()) || opener.is_finished()
    });
    let shm = SharedMemory::open(guard.name(), &Expect::size(config.segment_size())).unwrap();
    let shared = Shared::new(Arc::new(shm.map().unwrap()));
    ipc::sync::ring::init(&shared, &config).unwrap();
    let mut tx = opener
        .join()
        .unwrap()
        .expect("the opener waited for the creator");
    tx.send(b"after a slow start").unwrap();
    let mut rx = ipc::open_receiver(&spec_of(&guard, "create=never")).unwrap();
    let mut buf = vec![0; rx.max_message_size()];
    let n = rx.try_recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"after a slow start");
}

/// Two ends creating at once (`create=if_missing` on both): exactly one creates, the other
/// opens the segment, waiting for it to be sized and initialised, and they talk. A large ring
/// makes the window between `shm_open` and the end of initialisation wide.
#[test]
fn creation_race_ends_with_one_creator() {
    for round in 0..40 {
        let guard = ShmGuard::unique();
        let spec = parse(&spec_of(&guard, "capacity=4MiB&create=if_missing"));
        let barrier = Arc::new(Barrier::new(2));
        let receiver = {
            let (barrier, spec) = (Arc::clone(&barrier), spec.clone());
            thread::spawn(move || {
                barrier.wait();
                ShmReceiver::open(&spec)
            })
        };
        barrier.wait();
        let mut tx = ShmSender::open(&spec).unwrap_or_else(|e| panic!("round {round}: {e}"));
        let mut rx = receiver
            .join()
            .unwrap()
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_ne!(
            rx.owns_segment(),
            tx.created_segment(),
            "round {round}: exactly one end must create"
        );
        tx.send(b"race").unwrap();
        let mut buf = [0; 8];
        assert_eq!(rx.try_recv(&mut buf).unwrap(), 4, "round {round}");
    }
}

/// The largest message the ring takes ([`Geometry::max_message_for`]: half the capacity less a
/// header) goes through whole; one byte more is refused when opening. The zero-copy API
/// delivers in place, lap after lap around the ring; with both ends in this one thread, every
/// loan into the emptied ring succeeds at once, whatever the ring's position (a record larger
/// than the ring's maximum might need the receiver to skip a pad first, i.e. wait for itself).
#[test]
fn largest_message_and_zero_copy_laps() {
    let max = Geometry::max_message_for(4096);
    let guard = ShmGuard::unique();
    let too_big = spec_of(&guard, &format!("capacity=4KiB&message_size={}", max + 1));
    // No ring of that capacity could ever take it: the string itself is wrong.
    match ipc::open_receiver(&too_big) {
        Err(Error::InvalidSpec { spec, reason }) => {
            assert_eq!(spec, format!("message_size={}", max + 1));
            assert!(reason.contains(&format!("at most {max} bytes")), "{reason}");
        }
        other => panic!("message_size {}: {:?}", max + 1, other.map(|_| ())),
    }
    assert!(!shm_exists(guard.name()));

    let spec = parse(&spec_of(
        &guard,
        &format!("capacity=4KiB&message_size={max}"),
    ));
    let mut rx = ShmReceiver::open(&spec).unwrap();
    let mut tx = ShmSender::open(&spec).unwrap();
    let mut largest = vec![0; max];
    message::fill(1, &mut largest);
    tx.send(&largest).unwrap();
    let mut buf = vec![0; max];
    assert_eq!(rx.recv(&mut buf).unwrap(), max);
    assert!(buf == largest);

    let mut expected = vec![0; max];
    for i in 0..500usize {
        let len = (i * 577) % (max + 1);
        message::fill(i as u64, &mut expected[..len]);
        let mut loan = tx
            .loan_with(len, Wait::Never)
            .unwrap_or_else(|e| panic!("record {i} of {len} bytes into an empty ring: {e}"));
        loan.copy_from_slice(&expected[..len]);
        loan.commit();
        let record = rx.recv_in_place().unwrap();
        assert!(*record == expected[..len], "record {i} of {len} bytes");
    }
    // An uncommitted loan publishes nothing.
    drop(tx.loan(10).unwrap());
    assert!(matches!(rx.try_recv(&mut buf), Err(Error::Empty)));
}

/// Each wait strategy, at either end, in another process: a stream goes through whole.
#[test]
fn wait_strategies_interoperate_across_processes() {
    const N: u64 = 2_000;
    for (ours, theirs) in [("busy", "park"), ("park", "spin"), ("spin", "busy")] {
        let guard = ShmGuard::unique();
        let base = spec_of(&guard, "capacity=16KiB");
        let mut receiver = peer(
            "recv",
            &[&N.to_string(), "1", "disconnected"],
            &format!("{base}&wait={theirs}&create=always"),
        );
        let mut tx = ipc::open_sender(&format!("{base}&wait={ours}")).unwrap();
        send_stream(&mut *tx, 0, N).unwrap_or_else(|e| panic!("{ours} → {theirs}: {e}"));
        drop(tx);
        assert_eq!(receiver.expect_line("ok"), N.to_string());
        receiver.wait_success();
    }
}

/// The receiver that created a segment removes *that* segment when dropped, not a successor
/// made under the same name after its own was removed.
#[test]
fn creator_removes_only_the_segment_it_made() {
    let guard = ShmGuard::unique();
    let spec = spec_of(&guard, "");
    let first = ipc::open_receiver(&format!("{spec}?create=always")).unwrap();
    ipc::posix::shm::unlink(guard.name()).unwrap();
    let mut tx = ipc::open_sender(&format!("{spec}?create=always")).unwrap();
    tx.try_send(b"for the next receiver").unwrap();
    drop(first);
    assert!(
        shm_exists(guard.name()),
        "dropping the first receiver removed the segment a sender made after it"
    );
    let mut next = ipc::open_receiver(&format!("{spec}?create=never")).unwrap();
    let mut buf = vec![0; next.max_message_size()];
    let n = next.try_recv(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"for the next receiver");
}

/// The factory's segments are removed in every way a test can end: normally, by a panic, with
/// a killed child that created it, a killed child blocked sending, and killed writers.
#[test]
fn no_segment_is_left_behind() {
    let (factory, record) = ShmFactory::recording();
    let cfg = Cfg {
        message_size: 64,
        capacity: Some(4096),
        ..Cfg::default()
    };
    let command = |role: &str, args: &[&str]| peer_command(Path::new(PEER), role, args);

    drop(factory.pair(&cfg).unwrap());

    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _pair = factory.pair(&cfg).unwrap();
        panic!("a test failing while it holds a segment");
    }));
    assert!(failed.is_err());

    // Made by the child, which cannot remove it once killed: only the guard does.
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
    assert_eq!(names.len(), 5, "segments made: {names:?}");
    for name in &names {
        assert!(!shm_exists(name), "/dev/shm{name} was left behind");
    }
}

/// The factory's rings: the default capacity up to a quarter of it, four records' worth above.
#[test]
fn factory_sizes_rings_for_the_message_size() {
    let factory = ShmFactory::new();
    for (message_size, capacity) in [
        (64, 64 * 1024),
        (16 * 1024, 64 * 1024),
        (64 * 1024, 262_208),
    ] {
        let mut pair = factory.pair(&Cfg::message_size(message_size)).unwrap();
        assert_eq!(pair.tx.max_message_size(), message_size);
        assert_eq!(pair.rx.max_message_size(), message_size);
        let n = fill(&mut *pair.tx).unwrap();
        // 64-byte messages take 72 bytes each; the ring keeps 8 bytes free.
        assert!(
            n >= (capacity - 8) / 72 - 1 && n <= capacity / 72,
            "{n} messages in a ring of {capacity} bytes"
        );
    }
}
