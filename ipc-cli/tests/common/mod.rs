//! What the `ipc` binary's test files share: the binary itself, a child that cannot outlive its
//! test, and a POSIX shared-memory name removed however the test ends. Each test file uses a
//! part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// Longest any command of these tests may run before it counts as hung.
pub const HUNG: Duration = Duration::from_secs(60);

/// The `ipc` binary, with nothing on stdin unless a test says otherwise.
pub fn ipc() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ipc"));
    cmd.stdin(Stdio::null());
    cmd
}

/// Bytes a child wrote, as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A child process, killed if the test ends (or panics) before it was waited for.
pub struct Running(Option<Child>);

impl Running {
    pub fn spawn(cmd: &mut Command) -> Running {
        Running(Some(cmd.spawn().expect("start ipc")))
    }

    /// Its pid, until it is waited for.
    pub fn id(&self) -> u32 {
        self.0.as_ref().expect("not waited for yet").id()
    }

    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("not waited for yet")
    }

    /// Waits for the exit and collects the piped output; a child still running after
    /// [`HUNG`] is killed and fails the test.
    pub fn output(mut self) -> Output {
        let child = self.0.take().expect("not waited for yet");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let (done, finished) = mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let _ = done.send(child.wait_with_output());
        });
        match finished.recv_timeout(HUNG) {
            Ok(output) => output.expect("wait for ipc"),
            Err(_) => {
                // Not yet reaped (the waiter has not returned), so the pid is still the child's.
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                let _ = waiter.join();
                panic!("ipc still running after {HUNG:?}");
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `cmd` to its end (bounded by [`HUNG`]), its stdout and stderr piped.
pub fn run(cmd: &mut Command) -> Output {
    Running::spawn(cmd.stdout(Stdio::piped()).stderr(Stdio::piped())).output()
}

/// A path under `/tmp` unique to this process and call, ending in `suffix`; whatever the test
/// made there is removed when this is dropped (also when the test fails).
pub struct TempPath(PathBuf);

impl TempPath {
    pub fn new(suffix: &str) -> TempPath {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        TempPath(PathBuf::from(format!(
            "/tmp/ipc-foreign-{}-{n}{suffix}",
            std::process::id()
        )))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A POSIX shared-memory name (`/name`, a segment or a plain file under `/dev/shm`), removed
/// when dropped.
pub struct ShmName(pub String);

impl ShmName {
    /// The `posix-shm:` transport string for it, with `options` (`?...`) appended.
    pub fn spec(&self, options: &str) -> String {
        format!("posix-shm:{}{options}", self.0)
    }

    /// Its file under `/dev/shm`.
    pub fn path(&self) -> String {
        format!("/dev/shm{}", self.0)
    }

    /// Whether it exists.
    pub fn exists(&self) -> bool {
        std::path::Path::new(&self.path()).exists()
    }
}

impl Drop for ShmName {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.path());
    }
}

/// Whether `python3` is on `PATH` (if not, says that the test is skipped).
pub fn python3_found() -> bool {
    match Command::new("python3").arg("--version").output() {
        Ok(_) => true,
        Err(e) => {
            assert_eq!(
                e.kind(),
                std::io::ErrorKind::NotFound,
                "running python3: {e}"
            );
            eprintln!("skipping: no `python3` on PATH");
            false
        }
    }
}
