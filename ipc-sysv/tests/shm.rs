//! System V segments: exclusive creation, checked opening, attachments, removal while attached,
//! and the `sysv-shm` ring transport over them.

mod common;

use std::time::{Duration, Instant};

use common::{IdGuard, key_in_use, unique_key};
use ipc_core::{Error, Producers, Receiver, Segment, Sender, TransportSpec};
use ipc_sysv::Key;
use ipc_sysv::ring::{DEFAULT_CAPACITY, SysvShmReceiver, SysvShmSender};
use ipc_sysv::shm::{Access, Expect, SysvSegment};

#[test]
fn create_attach_read_write_and_stat() {
    let guard = unique_key();
    let owner = SysvSegment::create(guard.key(), 4096, 0o600).unwrap();
    let st = owner.stat().unwrap();
    assert_eq!(st.size, 4096);
    assert_eq!(st.creator_pid as u32, std::process::id());
    assert_eq!(st.mode, 0o600);
    assert_eq!(st.attach_count, 0);
    assert!(!st.removed);
    assert_eq!(st.uid, st.creator_uid);

    let rw = owner.attach(Access::ReadWrite).unwrap();
    assert_eq!(rw.len(), 4096);
    assert_eq!(rw.base().as_ptr() as usize % 4096, 0, "page aligned");
    let st = owner.stat().unwrap();
    assert_eq!(st.attach_count, 1);
    assert_eq!(st.last_pid as u32, std::process::id());
    assert!(st.attach_time > 0);
    rw.write_at(4090, b"abcdef").unwrap();
    assert!(matches!(
        rw.write_at(4091, b"abcdef"),
        Err(Error::LimitExceeded { limit: 4096, .. })
    ));

    let ro = SysvSegment::open(guard.key(), &Expect::size(4096))
        .unwrap()
        .attach(Access::ReadOnly)
        .unwrap();
    assert!(ro.is_read_only());
    let mut buf = [0u8; 6];
    ro.read_at(4090, &mut buf).unwrap();
    assert_eq!(&buf, b"abcdef");
    match ro.write_at(0, b"x") {
        Err(Error::PermissionDenied { object }) => {
            assert!(object.contains("read-only"), "{object}")
        }
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
    assert_eq!(owner.stat().unwrap().attach_count, 2);
    drop(ro);
    rw.detach();
    assert_eq!(owner.stat().unwrap().attach_count, 0);
    owner.destroy().unwrap();
    assert!(!key_in_use(guard.key()));
}

#[test]
fn creating_on_a_key_in_use_is_refused_and_opening_checks_size_owner_mode() {
    let guard = unique_key();
    let owner = SysvSegment::create(guard.key(), 4096, 0o600).unwrap();
    // Exclusive: another size, or the same, is refused.
    for size in [8192, 4096] {
        match SysvSegment::create(guard.key(), size, 0o600) {
            Err(Error::AlreadyExists { object }) => {
                assert!(object.contains(&guard.key().to_string()), "{object}")
            }
            other => panic!("expected AlreadyExists, got {other:?}"),
        }
    }
    // Opening: too small.
    match SysvSegment::open(guard.key(), &Expect::size(8192)) {
        Err(Error::Incompatible { reason, .. }) => {
            assert!(
                reason.contains("4096") && reason.contains("8192"),
                "{reason}"
            )
        }
        other => panic!("expected Incompatible, got {other:?}"),
    }
    // Too wide a mode.
    let st = owner.stat().unwrap();
    owner.set_owner_and_mode(st.uid, st.gid, 0o644).unwrap();
    match SysvSegment::open(guard.key(), &Expect::size(1)) {
        Err(Error::Incompatible { reason, .. }) => assert!(reason.contains("0644"), "{reason}"),
        other => panic!("expected Incompatible, got {other:?}"),
    }
    SysvSegment::open(guard.key(), &Expect::size(1).mode(0o644)).unwrap();
    // Another owner (what a squatter's segment looks like).
    owner.set_owner_and_mode(65534, st.gid, 0o600).unwrap();
    match SysvSegment::open(guard.key(), &Expect::size(1)) {
        Err(Error::Incompatible { reason, .. }) => assert!(reason.contains("65534"), "{reason}"),
        other => panic!("expected Incompatible, got {other:?}"),
    }
    // Still ours to remove: we created it.
    owner.destroy().unwrap();
}

#[test]
fn a_segment_removed_while_attached_stays_usable_until_the_last_detach() {
    let guard = unique_key();
    let owner = SysvSegment::create(guard.key(), 4096, 0o600).unwrap();
    let id = owner.id();
    let a = owner.attach(Access::ReadWrite).unwrap();
    let b = SysvSegment::open_id(id)
        .unwrap()
        .attach(Access::ReadWrite)
        .unwrap();
    owner.destroy().unwrap();

    // The key is free at once: nobody finds the old segment by it, a new one may be made.
    assert!(matches!(
        SysvSegment::open(guard.key(), &Expect::size(1)),
        Err(Error::NotFound { .. })
    ));
    // The memory lives on for the attachments.
    a.write_at(100, b"after IPC_RMID").unwrap();
    let mut buf = [0u8; 14];
    b.read_at(100, &mut buf).unwrap();
    assert_eq!(&buf, b"after IPC_RMID");
    let st = SysvSegment::open_id(id).unwrap().stat().unwrap();
    assert!(st.removed, "{st:?}");
    assert_eq!(st.key, 0);
    assert_eq!(st.attach_count, 2);

    drop(a);
    assert_eq!(
        SysvSegment::open_id(id)
            .unwrap()
            .stat()
            .unwrap()
            .attach_count,
        1
    );
    b.detach();
    // Last detach: the segment and its id are gone.
    assert!(matches!(
        SysvSegment::open_id(id),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn ftok_on_a_missing_path_is_not_found_naming_it() {
    let key = Key::Ftok {
        path: "/nonexistent/ipc-sysv-shm-test".into(),
        proj_id: 0x66,
    };
    match SysvSegment::create(&key, 4096, 0o600) {
        Err(Error::NotFound { object }) => assert!(object.contains("/nonexistent"), "{object}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    let spec: TransportSpec = "sysv-shm:ftok=/nonexistent/ipc-sysv-shm-test:0x66"
        .parse()
        .unwrap();
    match SysvShmReceiver::open(&spec) {
        Err(Error::NotFound { object }) => assert!(object.contains("/nonexistent"), "{object}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[test]
fn private_segments_are_reached_by_id_and_refused_as_rings() {
    let owner = SysvSegment::create(&Key::Private, 4096, 0o600).unwrap();
    let _guard = IdGuard(owner.id());
    let seg = SysvSegment::open_id(owner.id()).unwrap();
    assert_eq!(seg.size(), 4096);
    assert!(matches!(
        SysvSegment::lookup(&Key::Private),
        Err(Error::InvalidSpec { .. })
    ));
    let spec: TransportSpec = "sysv-shm:private".parse().unwrap();
    match SysvShmReceiver::open(&spec) {
        Err(Error::InvalidSpec { spec, .. }) => assert_eq!(spec, "private"),
        other => panic!("expected InvalidSpec, got {other:?}"),
    }
    owner.destroy().unwrap();
    assert!(matches!(
        SysvSegment::open_id(-1),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn bad_size_and_mode_are_refused_by_name() {
    let guard = unique_key();
    assert!(matches!(
        SysvSegment::create(guard.key(), 0, 0o600),
        Err(Error::InvalidSpec { .. })
    ));
    assert!(matches!(
        SysvSegment::create(guard.key(), 4096, 0o1777),
        Err(Error::InvalidSpec { .. })
    ));
    match SysvSegment::create(guard.key(), 1 << 62, 0o600) {
        Err(Error::LimitExceeded { what, .. }) => assert!(what.contains("shm"), "{what}"),
        Ok(_) => panic!("a 4 EiB segment was created"),
        Err(other) => panic!("expected LimitExceeded, got {other:?}"),
    }
    assert!(!key_in_use(guard.key()));
}

#[test]
fn ring_defaults_and_the_creator_removes() {
    let guard = unique_key();
    let spec: TransportSpec = guard.spec("").parse().unwrap();
    let mut rx = SysvShmReceiver::open(&spec).unwrap();
    assert!(rx.owns_segment());
    assert_eq!(rx.capacity(), DEFAULT_CAPACITY);
    assert_eq!(rx.max_message_size(), (DEFAULT_CAPACITY / 4) as usize);
    assert_eq!(rx.producers(), Producers::Single);
    let mode = SysvSegment::lookup(guard.key())
        .unwrap()
        .stat()
        .unwrap()
        .mode;
    assert_eq!(mode, 0o600);
    let mut tx = SysvShmSender::open(&spec).unwrap();
    assert!(!tx.created_segment());
    tx.send(b"hello").unwrap();
    let mut loan = tx.loan(5).unwrap();
    loan.copy_from_slice(b"world");
    loan.commit();
    let mut buf = [0u8; 16];
    assert_eq!(rx.try_recv(&mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"hello");
    assert_eq!(&*rx.recv_in_place().unwrap(), b"world");
    drop(rx);
    assert!(!key_in_use(guard.key()));
    // The segment lives on for the sender, which sees the receiver gone.
    assert!(matches!(tx.try_send(b"x"), Err(Error::Disconnected)));
}

#[test]
fn ring_create_modes_and_sender_wait() {
    let guard = unique_key();
    let never: TransportSpec = guard.spec("?create=never").parse().unwrap();
    assert!(matches!(
        SysvShmReceiver::open(&never),
        Err(Error::NotFound { .. })
    ));
    let timed: TransportSpec = guard.spec("?open_timeout=150ms").parse().unwrap();
    let start = Instant::now();
    assert!(matches!(
        SysvShmSender::open(&timed),
        Err(Error::NotFound { .. })
    ));
    let waited = start.elapsed();
    assert!(waited >= Duration::from_millis(150), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");

    let spec: TransportSpec = guard.spec("").parse().unwrap();
    let rx = SysvShmReceiver::open(&spec).unwrap();
    let always: TransportSpec = guard.spec("?create=always").parse().unwrap();
    assert!(matches!(
        SysvShmSender::open(&always),
        Err(Error::AlreadyExists { .. })
    ));
    drop(rx);
    assert!(!key_in_use(guard.key()));
    // A sender may create; it leaves the segment, and so does a receiver that did not create.
    let if_missing: TransportSpec = guard.spec("?create=if_missing").parse().unwrap();
    let tx = SysvShmSender::open(&if_missing).unwrap();
    assert!(tx.created_segment());
    drop(tx);
    assert!(key_in_use(guard.key()));
    let rx = SysvShmReceiver::open(&spec).unwrap();
    assert!(!rx.owns_segment());
    drop(rx);
    assert!(key_in_use(guard.key()));
}

#[test]
fn ring_mismatched_options_are_incompatible_and_explained() {
    let guard = unique_key();
    let spec: TransportSpec = guard
        .spec("?capacity=8KiB&message_size=1KiB")
        .parse()
        .unwrap();
    let _rx = SysvShmReceiver::open(&spec).unwrap();
    for (query, named) in [
        ("?capacity=16KiB", "capacity 16384"),
        ("?message_size=2KiB", "message_size 2048"),
        ("?producers=multi", "producers multi"),
    ] {
        let other: TransportSpec = guard.spec(query).parse().unwrap();
        match SysvShmSender::open(&other) {
            Err(Error::Incompatible { reason, .. }) => {
                assert!(reason.contains(named), "{reason}");
                assert!(reason.contains("capacity 8192"), "{reason}");
            }
            other => panic!("{query}: expected Incompatible, got {other:?}"),
        }
    }
    let tx = SysvShmSender::open(&guard.spec("").parse().unwrap()).unwrap();
    assert_eq!(tx.max_message_size(), 1024);
}

#[test]
fn ring_refuses_a_segment_that_is_not_a_ring_or_not_ours() {
    // Another program's segment of zeros (or a creator that died before initialising).
    let guard = unique_key();
    let owner = SysvSegment::create(guard.key(), 1 << 20, 0o600).unwrap();
    let spec: TransportSpec = guard.spec("?open_timeout=0ms").parse().unwrap();
    assert!(matches!(
        SysvShmSender::open(&spec),
        Err(Error::Incompatible { .. })
    ));
    // A segment owned by someone else is refused before anything is read from it.
    let st = owner.stat().unwrap();
    owner.set_owner_and_mode(65534, st.gid, 0o600).unwrap();
    match SysvShmReceiver::open(&guard.spec("").parse().unwrap()) {
        Err(Error::Incompatible { reason, .. }) => assert!(reason.contains("65534"), "{reason}"),
        other => panic!("expected Incompatible, got {other:?}"),
    }
    // A mode wider than asked.
    owner.set_owner_and_mode(st.uid, st.gid, 0o666).unwrap();
    match SysvShmReceiver::open(&guard.spec("").parse().unwrap()) {
        Err(Error::Incompatible { reason, .. }) => assert!(reason.contains("0666"), "{reason}"),
        other => panic!("expected Incompatible, got {other:?}"),
    }
}
