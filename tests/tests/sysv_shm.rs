//! The conformance suite on System V shared-memory rings (connected, as `posix-shm`: the ends
//! register their processes in the segment), and what is particular to System V: keys that
//! must be free to create on, `ftok` paths, segments that outlive their removal while
//! attached.

use std::time::Duration;

use ipc::sysv::Key;
use ipc::sysv::ring::{SysvShmReceiver, SysvShmSender};
use ipc::sysv::shm::{Access, Expect, SysvSegment};
use ipc::{Error, Receiver, Segment, Sender, TransportSpec};
use ipc_tests::factory_sysv_shm::{SysvKeyGuard, SysvShmFactory, sysv_key_in_use};
use ipc_tests::{Cfg, Factory};

ipc_tests::conformance_tests!(
    ipc_tests::factory_sysv_shm::SysvShmFactory::new(),
    connected
);

fn parse(spec: &str) -> TransportSpec {
    spec.parse()
        .unwrap_or_else(|e| panic!("`{spec}` does not parse: {e}"))
}

#[test]
fn creating_on_a_key_in_use_is_refused_whatever_its_size_or_owner() {
    let guard = SysvKeyGuard::unique();
    let other = SysvSegment::create(guard.key(), 8192, 0o600).unwrap();
    // A ring of another size cannot be created there, nor the same size.
    for query in ["?create=always", "?create=always&capacity=4KiB"] {
        match SysvShmReceiver::open(&parse(&guard.spec(query))) {
            Err(Error::AlreadyExists { object }) => {
                assert!(object.contains(&guard.key().to_string()), "{object}")
            }
            other => panic!("{query}: expected AlreadyExists, got {other:?}"),
        }
    }
    // Opening it (create=if_missing) finds no ring in it: refused, never adopted.
    match SysvShmReceiver::open(&parse(&guard.spec("?open_timeout=0ms"))) {
        Err(Error::Incompatible { .. }) => {}
        other => panic!("expected Incompatible, got {other:?}"),
    }
    // Owned by someone else (as a squatter's segment would be): refused on the owner alone.
    let st = other.stat().unwrap();
    other.set_owner_and_mode(65534, st.gid, 0o600).unwrap();
    for spec in [guard.spec(""), guard.spec("?create=never")] {
        match SysvShmSender::open(&parse(&spec)) {
            Err(Error::Incompatible { reason, .. }) => {
                assert!(reason.contains("uid 65534"), "{reason}")
            }
            other => panic!("{spec}: expected Incompatible, got {other:?}"),
        }
    }
    assert!(matches!(
        SysvSegment::create(guard.key(), 4096, 0o600),
        Err(Error::AlreadyExists { .. })
    ));
    other.destroy().unwrap();
    assert!(!sysv_key_in_use(guard.key()));
}

#[test]
fn ftok_on_a_missing_path_is_not_found_naming_the_path() {
    let path = format!("/tmp/ipc-tests-sysv-missing-{}", std::process::id());
    let spec = parse(&format!("sysv-shm:ftok={path}:0x66?open_timeout=0ms"));
    for result in [
        SysvShmReceiver::open(&spec).map(drop),
        SysvShmSender::open(&spec).map(drop),
        ipc::open_receiver(&spec.to_string()).map(drop),
    ] {
        match result {
            Err(Error::NotFound { object }) => assert!(object.contains(&path), "{object}"),
            other => panic!("expected NotFound, got {other:?}"),
        }
    }
}

#[test]
fn ftok_keys_work_like_explicit_ones() {
    let path = ipc_tests::unique_path("sysv-ftok");
    std::fs::write(&path, b"").unwrap();
    let _file = ipc_tests::PathGuard::new(path.clone());
    let key = Key::Ftok {
        path: path.to_str().unwrap().to_owned(),
        proj_id: 0x66,
    };
    let _guard = KeyRemover(key.clone());
    let spec = format!("sysv-shm:{key}?capacity=4KiB");
    let mut rx = ipc::open_receiver(&spec).unwrap();
    let mut tx = ipc::open_sender(&spec).unwrap();
    tx.send(b"via ftok").unwrap();
    let mut buf = [0u8; 64];
    let n = rx.recv_timeout(&mut buf, Duration::from_secs(10)).unwrap();
    assert_eq!(&buf[..n], b"via ftok");
    drop(rx);
    assert!(
        SysvSegment::lookup(&key).is_err(),
        "the creating receiver removed it"
    );
}

/// Removes whatever segment holds the key when dropped.
struct KeyRemover(Key);

impl Drop for KeyRemover {
    fn drop(&mut self) {
        if let Ok(seg) = SysvSegment::lookup(&self.0) {
            let _ = seg.destroy();
        }
    }
}

#[test]
fn a_segment_removed_while_attached_stays_usable_until_the_last_detach() {
    let guard = SysvKeyGuard::unique();
    let owner = SysvSegment::create(guard.key(), 4096, 0o600).unwrap();
    let id = owner.id();
    let mem = owner.attach(Access::ReadWrite).unwrap();
    owner.destroy().unwrap();
    assert!(!sysv_key_in_use(guard.key()), "the key is free at once");
    // A new segment may take the key while the old one lives on.
    let successor = SysvSegment::create(guard.key(), 4096, 0o600).unwrap();
    assert_ne!(successor.id(), id);
    mem.write_at(0, b"still here").unwrap();
    let mut buf = [0u8; 10];
    mem.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"still here");
    let st = SysvSegment::open_id(id).unwrap().stat().unwrap();
    assert!(st.removed);
    assert_eq!(st.attach_count, 1);
    mem.detach();
    assert!(matches!(
        SysvSegment::open_id(id),
        Err(Error::NotFound { .. })
    ));
    // The successor is untouched.
    SysvSegment::open(guard.key(), &Expect::size(4096)).unwrap();
    drop(successor);
}

#[test]
fn a_ring_goes_on_after_its_creator_removed_the_segment() {
    let guard = SysvKeyGuard::unique();
    let spec = parse(&guard.spec("?capacity=4KiB"));
    let mut rx = SysvShmReceiver::open(&spec).unwrap();
    let mut tx = SysvShmSender::open(&spec).unwrap();
    tx.send(b"before").unwrap();
    // Removal by hand (ipcrm) while both are attached: nothing breaks.
    SysvSegment::lookup(guard.key()).unwrap().destroy().unwrap();
    tx.send(b"after").unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(rx.try_recv(&mut buf).unwrap(), 6);
    assert_eq!(rx.try_recv(&mut buf).unwrap(), 5);
    assert_eq!(&buf[..5], b"after");
    drop(rx); // its own IPC_RMID finds the segment gone: fine
    assert!(matches!(tx.try_send(b"x"), Err(Error::Disconnected)));
}

#[test]
fn the_factory_leaves_no_segment_behind() {
    let (factory, record) = SysvShmFactory::recording();
    {
        let mut pair = factory.pair(&Cfg::message_size(128)).unwrap();
        pair.tx.send(b"x").unwrap();
        let mut buf = [0u8; 128];
        assert_eq!(pair.rx.try_recv(&mut buf).unwrap(), 1);
    }
    let keys = record.lock().unwrap().clone();
    assert_eq!(keys.len(), 1);
    for key in keys {
        assert!(!sysv_key_in_use(&key), "{key} left behind");
    }
}
