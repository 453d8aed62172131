//! Unique names for the objects a test creates, and guards that remove them even when the test
//! fails (a panicking test still drops its locals).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ipc::posix::PosixName;

/// Prefix of every file-system object the suite creates, so leftovers are easy to find.
pub const PREFIX: &str = "ipc-test";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other test, in this or any concurrently running test process, uses:
/// `ipc-test-<pid>-<n>`. The pid separates processes (nextest runs one test per process,
/// `cargo test` many tests per process), the counter separates tests within one.
pub fn unique_name() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{PREFIX}-{}-{n}", std::process::id())
}

/// A unique path in `/tmp` ending in `ext` (e.g. `fifo`): `/tmp/ipc-test-<pid>-<n>.<ext>`.
pub fn unique_path(ext: &str) -> PathBuf {
    PathBuf::from(format!("/tmp/{}.{ext}", unique_name()))
}

/// Removes a path when dropped, if something is there.
#[derive(Debug)]
pub struct PathGuard {
    path: PathBuf,
}

impl PathGuard {
    /// Guards `path`, which need not exist yet.
    pub fn new(path: impl Into<PathBuf>) -> PathGuard {
        PathGuard { path: path.into() }
    }

    /// A guard on a fresh [`unique_path`].
    pub fn unique(ext: &str) -> PathGuard {
        PathGuard::new(unique_path(ext))
    }

    /// The guarded path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The guarded path as UTF-8, for transport strings.
    pub fn as_str(&self) -> &str {
        self.path.to_str().expect("test paths are UTF-8")
    }
}

impl Drop for PathGuard {
    fn drop(&mut self) {
        // The transport may have removed it already (a FIFO's creator unlinks it).
        match std::fs::remove_file(&self.path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => eprintln!("cannot remove {}: {e}", self.path.display()),
        }
    }
}

/// Removes a POSIX message queue (`mq_unlink`) when dropped, if it is still there. Queues
/// outlive processes: without this, a failing test or a killed peer would leave one behind.
#[derive(Debug)]
pub struct MqGuard {
    name: PosixName,
}

impl MqGuard {
    /// Guards the queue `name`, which need not exist yet.
    pub fn new(name: PosixName) -> MqGuard {
        MqGuard { name }
    }

    /// A guard on a fresh name, `/`[`unique_name`].
    pub fn unique() -> MqGuard {
        MqGuard::new(PosixName::new(&format!("/{}", unique_name())).expect("a valid POSIX name"))
    }

    /// The guarded name.
    pub fn name(&self) -> &PosixName {
        &self.name
    }
}

impl Drop for MqGuard {
    fn drop(&mut self) {
        // The receiver that created it may have removed it already.
        match ipc::posix::mq::destroy(&self.name) {
            Ok(()) | Err(ipc::Error::NotFound { .. }) => {}
            Err(e) => eprintln!("cannot remove posix-mq:{}: {e}", self.name),
        }
    }
}

/// Whether the POSIX queue `name` exists: opened by name, without creating it.
pub fn mq_exists(name: &PosixName) -> bool {
    match ipc::open_receiver(&format!("posix-mq:{name}?create=never")) {
        Ok(_) => true,
        Err(ipc::Error::NotFound { .. }) => false,
        Err(e) => panic!("cannot tell whether posix-mq:{name} exists: {e}"),
    }
}

/// Removes a POSIX shared-memory segment (`shm_unlink`, i.e. `/dev/shm/<name>`) when dropped,
/// if it is still there. Segments outlive processes, and a `posix-shm` ring made by a sender
/// or by a killed receiver is removed by nobody else.
#[derive(Debug)]
pub struct ShmGuard {
    name: PosixName,
}

impl ShmGuard {
    /// Guards the segment `name`, which need not exist yet.
    pub fn new(name: PosixName) -> ShmGuard {
        ShmGuard { name }
    }

    /// A guard on a fresh name, `/`[`unique_name`].
    pub fn unique() -> ShmGuard {
        ShmGuard::new(PosixName::new(&format!("/{}", unique_name())).expect("a valid POSIX name"))
    }

    /// The guarded name.
    pub fn name(&self) -> &PosixName {
        &self.name
    }
}

impl Drop for ShmGuard {
    fn drop(&mut self) {
        // The receiver that created it may have removed it already.
        if !shm_exists(&self.name) {
            return;
        }
        match ipc::posix::shm::unlink(&self.name) {
            Ok(()) | Err(ipc::Error::NotFound { .. }) => {}
            Err(e) => eprintln!("cannot remove posix-shm:{}: {e}", self.name),
        }
    }
}

/// Whether the POSIX shared-memory segment `name` exists (`/dev/shm/<name>`), without opening
/// it.
pub fn shm_exists(name: &PosixName) -> bool {
    Path::new("/dev/shm")
        .join(name.as_str().trim_start_matches('/'))
        .symlink_metadata()
        .is_ok()
}

/// Whatever must be cleaned up after a transport: path guards, or for later backends the
/// `Owner` of a queue or segment. Dropping it cleans everything up.
#[derive(Default)]
pub struct Cleanup {
    guards: Vec<Box<dyn Send>>,
}

impl Cleanup {
    /// Nothing to clean up (anonymous pipes).
    pub fn none() -> Cleanup {
        Cleanup::default()
    }

    /// Cleans up `guard` (by dropping it) when this is dropped.
    pub fn with(guard: impl Send + 'static) -> Cleanup {
        let mut c = Cleanup::default();
        c.add(guard);
        c
    }

    /// Adds a guard.
    pub fn add(&mut self, guard: impl Send + 'static) {
        self.guards.push(Box::new(guard));
    }
}

impl std::fmt::Debug for Cleanup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cleanup({} guards)", self.guards.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_guards_remove() {
        assert_ne!(unique_name(), unique_name());
        let path;
        {
            let guard = PathGuard::unique("tmp");
            path = guard.path().to_owned();
            std::fs::write(&path, b"x").unwrap();
            let _cleanup = Cleanup::with(guard);
        }
        assert!(!path.exists());
    }
}
