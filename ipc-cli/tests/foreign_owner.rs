//! Objects of another user: refused by default with an error that names the option that
//! accepts them, accepted with `owner=` / `mode=`; and `ipc shm read` of anyone's segment.
//!
//! The other user is `nobody` (uid and gid 65534), running the `ipc` binary; switching to it
//! needs root, so each test says SKIPPED and returns elsewhere.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ipc::{Receiver, Sender};

const NOBODY: u32 = 65534;
/// Every wait here is bounded by this: a test that cannot finish fails instead of hanging.
const WAIT: Duration = Duration::from_secs(10);

/// A fresh name part: this process and a counter.
fn unique() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A directory of this test (mode 0777, so that `nobody` can use it), holding a copy of the
/// `ipc` binary that `nobody` can run whatever the permissions of the build directory.
/// Removed with everything in it when dropped.
struct Scratch {
    dir: PathBuf,
    ipc: PathBuf,
}

impl Scratch {
    /// `None` (after saying so) where we cannot become another user.
    fn new(test: &str) -> Option<Scratch> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED: {test} runs a peer as nobody, which needs root");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("ipc-foreign-{}", unique()));
        fs::create_dir(&dir).unwrap();
        let scratch = Scratch {
            ipc: dir.join("ipc"),
            dir,
        };
        fs::set_permissions(&scratch.dir, fs::Permissions::from_mode(0o777)).unwrap();
        fs::copy(env!("CARGO_BIN_EXE_ipc"), &scratch.ipc).unwrap();
        fs::set_permissions(&scratch.ipc, fs::Permissions::from_mode(0o755)).unwrap();
        Some(scratch)
    }

    /// `ipc ARGS` as nobody, with no supplementary groups (std drops them when root sets a
    /// uid), waited for at most [`WAIT`].
    fn ipc_as_nobody(&self, args: &[&str]) -> Output {
        let mut command = Command::new(&self.ipc);
        command
            .args(args)
            .uid(NOBODY)
            .gid(NOBODY)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = spawn_copied(&mut command);
        let deadline = std::time::Instant::now() + WAIT;
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!("ipc {args:?} as nobody still running after {WAIT:?}: {out:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        child.wait_with_output().unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Removes a file (a POSIX object under /dev/shm or /dev/mqueue) when dropped.
struct FileGuard(PathBuf);

impl Drop for FileGuard {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Removes the System V object of `key` when dropped, whoever made it: `ipcrm` flag `-Q`
/// (queue) or `-M` (segment).
struct KeyGuard(&'static str, i32);

impl Drop for KeyGuard {
    fn drop(&mut self) {
        let _ = Command::new("ipcrm")
            .args([self.0, &format!("{:#x}", self.1)])
            .stderr(Stdio::null())
            .status();
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `spec` as nobody is refused naming `hint`, and `spec` + `&opt_in` delivers a message to `rx`.
fn refused_then_accepted(
    scratch: &Scratch,
    rx: &mut dyn Receiver,
    spec: &str,
    hint: &str,
    opt_in: &str,
) {
    let out = scratch.ipc_as_nobody(&["send", spec, "refused"]);
    assert!(!out.status.success(), "{spec} was accepted by default");
    assert!(stderr(&out).contains(hint), "{spec}: {}", stderr(&out));
    let accepted = format!("{spec}&{opt_in}");
    let out = scratch.ipc_as_nobody(&["send", &accepted, "hi"]);
    assert!(out.status.success(), "{accepted}: {}", stderr(&out));
    let mut buf = [0u8; 64];
    let n = rx.recv_timeout(&mut buf, WAIT).unwrap();
    assert_eq!(&buf[..n], b"hi");
}

#[test]
fn sysv_mq_of_root_takes_owner_0() {
    let Some(scratch) = Scratch::new("sysv_mq_of_root_takes_owner_0") else {
        return;
    };
    let key = 0x1f00_0000 | (std::process::id() as i32 & 0xffff) << 4;
    let _guard = KeyGuard("-Q", key);
    let spec = format!("sysv-mq:key={key:#x}?mode=0666");
    let mut rx = ipc::open_receiver(&format!("{spec}&create=always")).unwrap();
    refused_then_accepted(
        &scratch,
        &mut *rx,
        &spec,
        "add owner=0 or owner=any",
        "owner=0",
    );
}

#[test]
fn posix_mq_of_root_takes_owner_any() {
    let Some(scratch) = Scratch::new("posix_mq_of_root_takes_owner_any") else {
        return;
    };
    let name = format!("ipc-foreign-{}", unique());
    let _guard = FileGuard(Path::new("/dev/mqueue").join(&name));
    let spec = format!("posix-mq:/{name}?mode=0666");
    let mut rx = ipc::open_receiver(&format!("{spec}&create=always")).unwrap();
    refused_then_accepted(&scratch, &mut *rx, &spec, "owner=0", "owner=any");
}

#[test]
fn posix_shm_ring_of_root_takes_owner_0() {
    let Some(scratch) = Scratch::new("posix_shm_ring_of_root_takes_owner_0") else {
        return;
    };
    let name = format!("ipc-foreign-{}", unique());
    let _guard = FileGuard(Path::new("/dev/shm").join(&name));
    let spec = format!("posix-shm:/{name}?mode=0666");
    let mut rx = ipc::open_receiver(&format!("{spec}&create=always")).unwrap();
    refused_then_accepted(&scratch, &mut *rx, &spec, "owner=0", "owner=0");
}

#[test]
fn sysv_shm_ring_of_root_takes_owner_and_group() {
    let Some(scratch) = Scratch::new("sysv_shm_ring_of_root_takes_owner_and_group") else {
        return;
    };
    let key = 0x1e00_0000 | (std::process::id() as i32 & 0xffff) << 4;
    let _guard = KeyGuard("-M", key);
    let spec = format!("sysv-shm:key={key:#x}?mode=0666");
    let mut rx = ipc::open_receiver(&format!("{spec}&create=always")).unwrap();
    // Root's group is 0: `group=0` accepts the segment (and its creator) as well as `owner=0`.
    refused_then_accepted(&scratch, &mut *rx, &spec, "owner=0", "group=0");
}

#[test]
fn fifo_of_mkfifo_takes_mode_and_owner() {
    let Some(scratch) = Scratch::new("fifo_of_mkfifo_takes_mode_and_owner") else {
        return;
    };
    // Made by nobody with what `mkfifo` gives under the usual umask 022.
    let path = scratch.dir.join("app.fifo");
    let made = Command::new("mkfifo")
        .args(["-m", "0644"])
        .arg(&path)
        .uid(NOBODY)
        .gid(NOBODY)
        .status()
        .unwrap();
    assert!(made.success());
    let path = path.to_str().unwrap();

    // Ours only by default, and within 0600.
    let err = ipc::open_receiver(&format!("fifo:{path}?owner=65534"))
        .err()
        .expect("a 0644 FIFO accepted by the default mode");
    assert!(err.to_string().contains("add mode=0644"), "{err}");
    let err = ipc::open_receiver(&format!("fifo:{path}?mode=0644"))
        .err()
        .expect("nobody's FIFO accepted by default");
    assert!(err.to_string().contains("add owner=65534"), "{err}");

    // nobody writes to its own FIFO (which also needs mode=0644); root reads with both opt-ins.
    let sender = {
        let ipc = scratch.ipc.clone();
        let spec = format!("fifo:{path}?mode=0644&create=never&open_timeout=10s");
        std::thread::spawn(move || {
            Command::new(ipc)
                .args(["send", &spec, "hi"])
                .uid(NOBODY)
                .gid(NOBODY)
                .stdin(Stdio::null())
                .output()
                .unwrap()
        })
    };
    let mut rx = ipc::open_receiver(&format!(
        "fifo:{path}?mode=0644&owner=nobody&create=never&open_timeout=10s"
    ))
    .unwrap();
    let mut buf = [0u8; 64];
    let n = rx.recv_timeout(&mut buf, WAIT).unwrap();
    assert_eq!(&buf[..n], b"hi");
    let out = sender.join().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn root_reads_a_segment_of_nobody() {
    let Some(_scratch) = Scratch::new("root_reads_a_segment_of_nobody") else {
        return;
    };
    let name = format!("ipc-foreign-{}", unique());
    let file = Path::new("/dev/shm").join(&name);
    let _guard = FileGuard(file.clone());
    fs::write(&file, b"bytes of nobody").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&file, Some(NOBODY), Some(NOBODY)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ipc"))
        .args(["shm", "read", &format!("posix-shm:/{name}")])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"bytes of nobody");
}

#[test]
fn a_sender_of_root_still_refuses_by_default() {
    // The default stays strict without any other user: a wider mode needs `mode=`.
    let name = format!("ipc-foreign-{}", unique());
    let _guard = FileGuard(Path::new("/dev/mqueue").join(&name));
    let _rx = ipc::open_receiver(&format!("posix-mq:/{name}?mode=0644&create=always")).unwrap();
    let err = ipc::open_sender(&format!("posix-mq:/{name}"))
        .err()
        .expect("a 0644 queue accepted by the default mode");
    assert!(
        err.to_string().contains("add mode=0644 to accept it"),
        "{err}"
    );
    let mut tx = ipc::open_sender(&format!("posix-mq:/{name}?mode=0666")).unwrap();
    tx.send(b"ok").unwrap();
}

/// Spawns `command`, whose program is a copy this test binary just wrote. Another test thread
/// that forks while the copy is still open for writing holds that descriptor until its exec,
/// and an exec of the copy meanwhile fails with `ETXTBSY`: retried, for at most a second.
fn spawn_copied(command: &mut Command) -> std::process::Child {
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    loop {
        match command.spawn() {
            Err(e)
                if e.raw_os_error() == Some(nix::libc::ETXTBSY)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::yield_now();
            }
            result => return result.expect("spawning the copied ipc"),
        }
    }
}
