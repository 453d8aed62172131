//! The conformance suite on rings in mapped regular files (`file-shm:`), and what only a file
//! has: a path whose directory must exist, symbolic links refused, a mode and owner the user
//! sees with `ls -l`, a leftover that `rm` removes. What the ring itself does (one receiver,
//! the shape fixed by its creator, hostile contents) is the generic transport's, tested on
//! `posix-shm` (tests/posix_shm.rs) and shared with this kind unchanged.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use ipc::{Error, Receiver, Sender};
use ipc_tests::factory_file_shm::FileShmFactory;
use ipc_tests::process::{peer_command, spawn_peer_on};
use ipc_tests::{Cfg, Factory, PathGuard, shm_ring};

ipc_tests::conformance_tests!(FileShmFactory::new(), connected);

const PEER: &str = env!("CARGO_BIN_EXE_ipc-test-peer");

/// `file-shm:<path>[?<query>]` for a guarded path.
fn spec_of(guard: &PathGuard, query: &str) -> String {
    if query.is_empty() {
        format!("file-shm:{}", guard.as_str())
    } else {
        format!("file-shm:{}?{query}", guard.as_str())
    }
}

fn exists(path: &Path) -> bool {
    path.symlink_metadata().is_ok()
}

/// The receiver creates an ordinary file with exactly the mode asked for, sized for the ring,
/// and removes it when dropped; a sender in another process finds it by path.
#[test]
fn the_receiver_creates_a_plain_file_and_removes_it() {
    let guard = PathGuard::unique("ring");
    let spec = spec_of(&guard, "capacity=16KiB&mode=0640");
    let mut rx = ipc::open_receiver(&spec).unwrap();
    let meta = guard.path().symlink_metadata().unwrap();
    assert!(meta.file_type().is_file());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
    assert!(meta.len() > 16 * 1024, "{} bytes", meta.len());
    let mut sender = spawn_peer_on(Path::new(PEER), "send", &["3", "0"], &spec);
    let mut buf = vec![0; rx.max_message_size()];
    for _ in 0..3 {
        rx.recv_timeout(&mut buf, std::time::Duration::from_secs(10))
            .unwrap();
    }
    sender.expect_line("ok");
    sender.wait_success();
    drop(rx);
    assert!(!exists(guard.path()), "the creating receiver left the file");
}

/// The directory must exist: neither end makes it, and the error names it.
#[test]
fn a_missing_directory_is_named() {
    let dir = PathGuard::unique("dir");
    let spec = format!("file-shm:{}/ring", dir.as_str());
    match ipc::open_receiver(&spec) {
        Err(Error::NotFound { object }) => {
            assert!(
                object.contains(&format!("directory {}", dir.as_str())),
                "{object}"
            )
        }
        other => panic!("expected NotFound, got {:?}", other.map(|_| ())),
    }
    assert!(!exists(dir.path()));
}

/// A symbolic link at the path is refused, whatever it points to (a ring of ours included):
/// following one would let whoever can write the directory redirect the ring.
#[test]
fn a_symbolic_link_is_refused() {
    let target = PathGuard::unique("ring");
    let link = PathGuard::unique("link");
    let _rx = ipc::open_receiver(&spec_of(&target, "")).unwrap();
    std::os::unix::fs::symlink(target.path(), link.path()).unwrap();
    for (end, r) in [
        (
            "receiver",
            ipc::open_receiver(&spec_of(&link, "create=never")).map(|_| ()),
        ),
        (
            "sender",
            ipc::open_sender(&spec_of(&link, "open_timeout=0ms")).map(|_| ()),
        ),
    ] {
        match r {
            Err(Error::Incompatible { reason, .. }) => {
                assert!(reason.contains("symbolic link"), "{end}: {reason}")
            }
            other => panic!("{end}: expected Incompatible, got {other:?}"),
        }
    }
    // Creating does not follow it either.
    assert!(matches!(
        ipc::open_receiver(&spec_of(&link, "create=always")),
        Err(Error::AlreadyExists { .. })
    ));
}

/// A file granting more than the mode, or another kind of file, is refused (name squatting
/// fails closed); `mode=` widens what is accepted.
#[test]
fn a_file_wider_than_the_mode_is_refused_unless_accepted() {
    let guard = PathGuard::unique("ring");
    let _rx = ipc::open_receiver(&spec_of(&guard, "mode=0644")).unwrap();
    match ipc::open_sender(&spec_of(&guard, "open_timeout=0ms")) {
        Err(Error::Incompatible { reason, .. }) => assert!(reason.contains("0644"), "{reason}"),
        other => panic!("expected Incompatible, got {:?}", other.map(|_| ())),
    }
    let mut tx = ipc::open_sender(&spec_of(&guard, "mode=0644")).unwrap();
    tx.try_send(b"accepted").unwrap();

    let fifo = PathGuard::unique("fifo");
    nix::unistd::mkfifo(fifo.path(), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    match ipc::open_receiver(&spec_of(&fifo, "")) {
        Err(Error::Incompatible { reason, .. }) => assert!(reason.contains("FIFO"), "{reason}"),
        other => panic!("expected Incompatible, got {:?}", other.map(|_| ())),
    }
}

/// A receiver killed (its creator included) leaves the file and its place, as in `/dev/shm`;
/// the next receiver did not create the file, so the guard (or `rm`) removes it.
#[test]
fn a_dead_receivers_file_is_taken_over() {
    let guard = PathGuard::unique("ring");
    let spec = spec_of(&guard, "capacity=16KiB");
    shm_ring::a_dead_receivers_place_is_taken_over(Path::new(PEER), &spec, || exists(guard.path()));
}

/// A file of zeros (a creator that died before initialising it, or another program's file) is
/// refused by both ends once a creator would have had its time.
#[test]
fn a_file_not_made_by_us_is_refused() {
    let guard = PathGuard::unique("ring");
    let file = std::fs::File::create(guard.path()).unwrap();
    file.set_len(64 * 1024 + 4096).unwrap();
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .unwrap();
    match ipc::open_receiver(&spec_of(&guard, "")) {
        Err(Error::Incompatible { reason, .. }) => {
            assert!(reason.contains("not initialised"), "{reason}")
        }
        other => panic!("expected Incompatible, got {:?}", other.map(|_| ())),
    }
}

/// The factory's files are removed in every way a test can end: normally, by a panic, and
/// with a killed child that created one.
#[test]
fn no_file_is_left_behind() {
    let (factory, record) = FileShmFactory::recording();
    let cfg = Cfg {
        message_size: 64,
        capacity: Some(4096),
        ..Cfg::default()
    };
    drop(factory.pair(&cfg).unwrap());
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _pair = factory.pair(&cfg).unwrap();
        panic!("a test failing while it holds a file");
    }));
    assert!(failed.is_err());
    let (tx, mut receiver) = factory
        .spawn_receiver(&cfg, peer_command(Path::new(PEER), "recv-hold", &[]))
        .unwrap();
    receiver.expect_line("ready");
    receiver.kill();
    drop(receiver);
    drop(tx);
    let paths = record.lock().unwrap().clone();
    assert_eq!(paths.len(), 3, "files made: {paths:?}");
    for path in &paths {
        assert!(!exists(path), "{} was left behind", path.display());
    }
}
