//! POSIX shared memory across processes: lifecycle, squatted names refused, sizes refused.
//!
//! Every object is named `/ipc-test-<pid>-<counter>` and removed by a guard (the `Owner` from
//! `create`, or [`Unlink`] for objects made behind the library's back), also when a test fails.

use std::os::fd::{AsFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use ipc_core::{Error, Removable, Segment};
use ipc_posix::PosixName;
use ipc_posix::shm::{self, DEFAULT_MODE, Expect, SharedMemory};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

/// Set in a re-executed test binary: which role the test plays there.
const ROLE: &str = "IPC_POSIX_SHM_TEST_ROLE";
/// The object the child works on.
const OBJECT: &str = "IPC_POSIX_SHM_TEST_OBJECT";

fn unique() -> PosixName {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    PosixName::new(&format!("/ipc-test-{}-{n}", std::process::id())).unwrap()
}

fn path(name: &PosixName) -> String {
    format!("/dev/shm{name}")
}

fn exists(name: &PosixName) -> bool {
    std::fs::symlink_metadata(path(name)).is_ok()
}

/// Removes a name when dropped: for objects the test made without the library.
struct Unlink(PosixName);

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = shm::unlink(&self.0);
    }
}

/// Makes an object under `name` as a squatter would: `size` bytes, exactly `mode`, owned by
/// `uid` (root only can give it away).
fn squat(name: &PosixName, size: i64, mode: u32, uid: Option<u32>) -> (Unlink, OwnedFd) {
    let fd = nix::sys::mman::shm_open(
        name.as_c_str(),
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_RDWR,
        Mode::empty(),
    )
    .unwrap();
    let guard = Unlink(name.clone());
    nix::sys::stat::fchmod(fd.as_fd(), Mode::from_bits_truncate(mode)).unwrap();
    nix::unistd::ftruncate(fd.as_fd(), size).unwrap();
    if let Some(uid) = uid {
        nix::unistd::fchown(fd.as_fd(), Some(nix::unistd::Uid::from_raw(uid)), None).unwrap();
    }
    (guard, fd)
}

fn incompatible_reason<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
    match result {
        Err(Error::Incompatible { object, reason }) => {
            assert!(object.starts_with("posix-shm:/ipc-test-"), "{object}");
            reason
        }
        other => panic!("expected Incompatible, got {other:?}"),
    }
}

const SIZE: usize = 3 * 4096 + 10;

#[test]
fn segment_lifecycle_across_processes() {
    if std::env::var(ROLE).as_deref() == Ok("child") {
        // The child: open what the parent made, check its bytes, answer in the segment.
        let name = PosixName::new(&std::env::var(OBJECT).unwrap()).unwrap();
        let shm = SharedMemory::open(&name, &Expect::size(SIZE)).unwrap();
        let map = shm.map().unwrap();
        drop(shm);
        let mut buf = [0u8; 11];
        map.read_at(0, &mut buf).unwrap();
        assert_eq!(&buf, b"from parent");
        map.write_at(SIZE - 10, b"from child").unwrap();
        map.unmap();
        return;
    }

    let name = unique();
    let owner = SharedMemory::create(&name, SIZE, DEFAULT_MODE).unwrap();
    assert!(exists(&name));
    let map = owner.map().unwrap();
    assert_eq!(map.len(), SIZE);
    map.write_at(0, b"from parent").unwrap();

    // A second open and map in this process: the same memory at another address.
    let second = SharedMemory::open(&name, &Expect::size(SIZE)).unwrap();
    assert_eq!(second.size(), SIZE);
    assert_eq!(second.name(), &name);
    let map2 = second.map().unwrap();
    drop(second); // the mapping outlives the handle
    assert_ne!(map.base(), map2.base());
    let mut buf = [0u8; 11];
    map2.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"from parent");
    map2.write_at(4096, b"via second").unwrap();
    let mut buf = [0u8; 10];
    map.read_at(4096, &mut buf).unwrap();
    assert_eq!(&buf, b"via second");

    // And in another process: this test, re-executed in the child role.
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "segment_lifecycle_across_processes",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, "child")
        .env(OBJECT, name.as_str())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "child failed: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut buf = [0u8; 10];
    map.read_at(SIZE - 10, &mut buf).unwrap();
    assert_eq!(&buf, b"from child");

    map2.unmap();
    map.unmap();
    owner.destroy().unwrap();
    assert!(!exists(&name));
    assert!(matches!(
        SharedMemory::open(&name, &Expect::size(SIZE)),
        Err(Error::NotFound { object }) if object == format!("posix-shm:{name}")
    ));
}

#[test]
fn dropping_the_owner_removes_and_dropping_a_handle_does_not() {
    let name = unique();
    let owner = SharedMemory::create(&name, 4096, DEFAULT_MODE).unwrap();
    drop(SharedMemory::open(&name, &Expect::size(4096)).unwrap());
    assert!(exists(&name));
    drop(owner);
    assert!(!exists(&name));

    // An owner released keeps the object; a guard removes it afterwards.
    let _guard = Unlink(name.clone());
    let handle = SharedMemory::create(&name, 4096, DEFAULT_MODE)
        .unwrap()
        .release();
    drop(handle);
    assert!(exists(&name));
}

#[test]
fn exclusive_create_of_an_existing_name_is_already_exists() {
    let name = unique();
    let _owner = SharedMemory::create(&name, 4096, DEFAULT_MODE).unwrap();
    let err = SharedMemory::create(&name, 4096, DEFAULT_MODE).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    // The failed attempt did not remove the existing object.
    assert!(exists(&name));
}

#[test]
fn object_of_another_owner_is_refused() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: giving an object to another user needs root");
        return;
    }
    let name = unique();
    let (_guard, _fd) = squat(&name, 4096, 0o600, Some(65534));
    let reason = incompatible_reason(SharedMemory::open(&name, &Expect::size(4096)));
    assert!(reason.contains("owned by uid 65534"), "{reason}");
    assert!(reason.contains("uid 0"), "{reason}");
    // open_or_create does not adopt it either, and leaves it where it is.
    let reason = incompatible_reason(SharedMemory::open_or_create(&name, 4096, DEFAULT_MODE));
    assert!(reason.contains("65534"), "{reason}");
    assert!(exists(&name));
}

#[test]
fn object_with_a_wider_mode_is_refused() {
    let name = unique();
    let (_guard, _fd) = squat(&name, 4096, 0o666, None);
    let reason = incompatible_reason(SharedMemory::open(&name, &Expect::size(4096)));
    assert!(
        reason.contains("0666") && reason.contains("0600"),
        "{reason}"
    );
    // Asking for that mode explicitly accepts it.
    let shm = SharedMemory::open(&name, &Expect::size(4096).mode(0o666)).unwrap();
    assert_eq!(shm.size(), 4096);
}

#[test]
fn object_smaller_than_required_is_refused() {
    let name = unique();
    let (_guard, _fd) = squat(&name, 4096, 0o600, None);
    let reason = incompatible_reason(SharedMemory::open(&name, &Expect::size(8192)));
    assert!(
        reason.contains("4096") && reason.contains("8192"),
        "{reason}"
    );
    let reason = incompatible_reason(SharedMemory::open_or_create(&name, 8192, DEFAULT_MODE));
    assert!(reason.contains("4096"), "{reason}");
    // Larger than required is fine: the handle maps the actual size.
    let shm = SharedMemory::open(&name, &Expect::size(100)).unwrap();
    assert_eq!(shm.size(), 4096);
    assert_eq!(shm.map().unwrap().len(), 4096);
}

#[test]
fn empty_object_is_refused() {
    // What a creator that has not yet sized its object looks like, or not a segment at all.
    let name = unique();
    let (_guard, _fd) = squat(&name, 0, 0o600, None);
    let reason = incompatible_reason(SharedMemory::open(&name, &Expect::default()));
    assert!(reason.contains("size of 0 bytes"), "{reason}");
}

#[test]
fn fifo_in_place_of_an_object_is_refused() {
    let name = unique();
    let _guard = Unlink(name.clone());
    nix::unistd::mkfifo(path(&name).as_str(), Mode::from_bits_truncate(0o600)).unwrap();
    let reason = incompatible_reason(SharedMemory::open(&name, &Expect::size(1)));
    assert!(reason.contains("a FIFO"), "{reason}");
}

#[test]
fn map_never_goes_beyond_the_actual_size() {
    let name = unique();
    let (_guard, fd) = squat(&name, 8192, 0o600, None);
    let shm = SharedMemory::open(&name, &Expect::size(8192)).unwrap();
    // Shrunk by a peer after the open: mapping 8192 bytes would SIGBUS on the second page.
    nix::unistd::ftruncate(fd.as_fd(), 100).unwrap();
    let reason = incompatible_reason(shm.map());
    assert!(
        reason.contains("100 bytes") && reason.contains("8192"),
        "{reason}"
    );
}

#[test]
fn open_or_create_creates_once_then_opens() {
    let name = unique();
    let first = SharedMemory::open_or_create(&name, 4096, DEFAULT_MODE).unwrap();
    assert!(first.was_created());
    let second = SharedMemory::open_or_create(&name, 4096, DEFAULT_MODE).unwrap();
    assert!(!second.was_created());
    assert_eq!(second.size(), 4096);
    first.map().unwrap().write_at(0, b"x").unwrap();
    let mut buf = [0u8];
    second.map().unwrap().read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"x");
    drop(second);
    assert!(exists(&name));
    drop(first); // the creator's owner removes it
    assert!(!exists(&name));
}

#[test]
fn zero_size_is_invalid_spec_and_creates_nothing() {
    let name = unique();
    let _guard = Unlink(name.clone());
    let err = SharedMemory::create(&name, 0, DEFAULT_MODE).unwrap_err();
    assert!(matches!(err, Error::InvalidSpec { .. }), "{err}");
    assert!(!exists(&name));
}

#[test]
fn huge_size_is_limit_exceeded_and_leaves_nothing() {
    let name = unique();
    let _guard = Unlink(name.clone());
    let free = {
        let st = nix::sys::statvfs::statvfs("/dev/shm").unwrap();
        st.blocks_available() as u64 * st.fragment_size() as u64
    };
    let tib = 1usize << 40;
    match SharedMemory::create(&name, tib, DEFAULT_MODE) {
        Err(Error::LimitExceeded { what, limit }) => {
            assert!(what.contains("/dev/shm free space"), "{what}");
            // The free space when the test looked, give or take other tests' segments.
            assert!(limit.abs_diff(free) < 1 << 30, "{limit} vs {free}");
        }
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
    assert!(!exists(&name));

    let err = SharedMemory::create(&name, usize::MAX, DEFAULT_MODE).unwrap_err();
    assert!(
        matches!(&err, Error::LimitExceeded { what, limit } if what.contains("isize::MAX") && *limit == isize::MAX as u64),
        "{err}"
    );
    assert!(!exists(&name));
}

#[test]
fn removable_names_the_object() {
    let name = unique();
    let owner = SharedMemory::create(&name, 4096, DEFAULT_MODE).unwrap();
    assert_eq!(owner.object_name(), format!("posix-shm:{name}"));
    let map = owner.map().unwrap();
    assert_eq!(map.id().family, "posix-shm");
    assert_eq!(map.id().name, name.as_str());
    // Removing through a handle that did not create it works too; then the owner finds it
    // gone and says so.
    SharedMemory::open(&name, &Expect::size(1))
        .unwrap()
        .remove()
        .unwrap();
    assert!(!exists(&name));
    assert!(matches!(owner.destroy(), Err(Error::NotFound { .. })));
}
