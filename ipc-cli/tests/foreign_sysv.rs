//! The System V shared-memory programs of the textbooks (`tests/c/sysv_shm_server.c` and
//! `sysv_shm_client.c`, which use `ftok(path, 0x6666)`) against `ipc shm read/write` with
//! `sysv-shm:ftok=PATH:0x6666`, both ways: the C server creates and `ipc` reads and answers;
//! we create and the C client reads and answers.
//!
//! The C programs are compiled at test time with `cc` from `PATH`; without one, the tests say
//! so on stderr and pass. Each test has its own directory (the `ftok` path) and removes the
//! segment by key whatever happens; the C server's wait is bounded by itself and by
//! `timeout`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

mod common;

use common::{Running, ipc, run, text};

use ipc::sysv::Key;
use ipc::sysv::shm::SysvSegment;

/// The proj_id of the textbook programs: glibc uses its low 8 bits, 0x66.
const PROJ_ID: i32 = 0x6666;

/// A directory of its own (its path feeds `ftok`), removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ipc-cli-foreign-sysv-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Removes the segment of `key`, if any, when dropped.
struct SegmentGuard(Key);

impl Drop for SegmentGuard {
    fn drop(&mut self) {
        if let Ok(seg) = SysvSegment::lookup(&self.0) {
            let _ = seg.destroy();
        }
    }
}

/// A C program killed (with its `timeout` wrapper) if the test ends first.
struct CProgram(Child);

impl Drop for CProgram {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Compiles `tests/c/NAME.c` into `dir`; `None`, after saying so, where there is no `cc`.
fn compile(dir: &Path, name: &str) -> Option<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../tests/c/{name}.c"));
    let bin = dir.join(name);
    match Command::new("cc")
        .arg("-O2")
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .status()
    {
        Ok(status) => {
            assert!(status.success(), "cc failed to compile {}", src.display());
            Some(bin)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("SKIPPED: no C compiler (`cc`) on this machine: {name}.c was not run");
            None
        }
        Err(e) => panic!("running cc: {e}"),
    }
}

/// The directory, the `ftok` path in it, its key and the guard that removes the segment.
fn setup() -> (TempDir, String, Key, SegmentGuard) {
    let dir = TempDir::new();
    let token = dir.0.join("ftok-path");
    std::fs::write(&token, b"").unwrap();
    let token = token.to_str().unwrap().to_owned();
    let key = Key::ftok(token.clone(), PROJ_ID);
    let guard = SegmentGuard(key.clone());
    (dir, token, key, guard)
}

fn ok(out: Output) -> Vec<u8> {
    assert!(
        out.status.success(),
        "failed ({:?}): {}",
        out.status,
        text(&out.stderr)
    );
    out.stdout
}

/// `ipc ARGS` with `input` on standard input.
fn ipc_with_input(args: &[&str], input: &[u8]) -> Output {
    let mut child = Running::spawn(
        ipc()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let mut stdin = child.child().stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    drop(stdin);
    child.output()
}

#[test]
fn the_c_server_publishes_and_ipc_shm_reads_and_answers() {
    let (dir, token, key, _guard) = setup();
    let Some(server) = compile(&dir.0, "sysv_shm_server") else {
        return;
    };
    // The spec as a C programmer would write it, from the C source's own proj_id.
    let spec = format!("sysv-shm:ftok={token}:0x6666");

    // `timeout` bounds the server: a hang becomes end-of-file here, not a stuck test.
    let mut child = Command::new("timeout")
        .arg("60")
        .arg(&server)
        .arg(&token)
        .arg("hello from C")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut c = CProgram(child);
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let c_key: i32 = line
        .strip_prefix("ready ")
        .and_then(|k| k.trim().parse().ok())
        .unwrap_or_else(|| panic!("the server said {line:?}"));
    assert_eq!(
        c_key,
        key.resolve().unwrap(),
        "ftok(path, 0x6666) agrees with C"
    );

    let got = ok(run(ipc().args(["shm", "read", &spec, "--len", "13"])));
    assert_eq!(got, b"hello from C\0");
    ok(ipc_with_input(&["shm", "write", &spec], b"*"));

    line.clear();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "done\n", "the server saw our answer");
    assert!(c.0.wait().unwrap().success());
}

#[test]
fn ipc_publishes_and_the_c_client_reads_and_answers() {
    let (dir, token, key, _guard) = setup();
    let Some(client) = compile(&dir.0, "sysv_shm_client") else {
        return;
    };
    let spec = format!("sysv-shm:ftok={token}:0x6666");
    let _segment = SysvSegment::create(&key, 4096, 0o600).unwrap();

    ok(ipc_with_input(
        &["shm", "write", &spec],
        b"hello from ipc\0",
    ));
    let out = ok(run(Command::new("timeout")
        .arg("60")
        .arg(&client)
        .arg(&token)));
    assert_eq!(text(&out), "hello from ipc\n");
    let got = ok(run(ipc().args(["shm", "read", &spec, "--len", "2"])));
    assert_eq!(got, b"*e", "the client answered over the first byte");
}
