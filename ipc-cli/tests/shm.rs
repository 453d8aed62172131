//! `ipc shm read` / `ipc shm write` on segments other programs made: a System V segment from
//! `ipcmk -M` (by id and by key) and a POSIX object made as a file in `/dev/shm`.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

fn ipc() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ipc"));
    cmd.stdin(Stdio::null());
    cmd
}

/// Runs `ipc ARGS` with `input` on stdin.
fn run(args: &[&str], input: &[u8]) -> Output {
    let mut child = ipc()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // The command may refuse before reading: a closed pipe is fine then.
    let _ = stdin.write_all(input);
    drop(stdin);
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A segment made by `ipcmk -M 4096`, removed with `ipcrm` when dropped.
struct IpcmkSegment {
    id: i32,
}

impl IpcmkSegment {
    /// `None` (after saying so) where util-linux's `ipcmk` is missing.
    fn new() -> Option<IpcmkSegment> {
        let out = match Command::new("ipcmk").args(["-M", "4096"]).output() {
            Ok(out) => out,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("SKIPPED: `ipcmk` (util-linux) is not installed: ipcmk test did not run");
                return None;
            }
            Err(e) => panic!("running ipcmk: {e}"),
        };
        assert!(out.status.success(), "ipcmk failed: {}", stderr(&out));
        // "Shared memory id: 32769"
        let text = String::from_utf8_lossy(&out.stdout);
        let id = text
            .trim()
            .rsplit(' ')
            .next()
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("no id in ipcmk's output `{text}`"));
        Some(IpcmkSegment { id })
    }

    /// The key `ipcs -m` shows for the segment (`0x…`).
    fn key(&self) -> String {
        let out = Command::new("ipcs").arg("-m").output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.len() > 1 && f[1] == self.id.to_string())
            .map(|f| f[0].to_owned())
            .unwrap_or_else(|| panic!("segment {} not in ipcs -m:\n{text}", self.id))
    }
}

impl Drop for IpcmkSegment {
    fn drop(&mut self) {
        let _ = Command::new("ipcrm")
            .args(["-m", &self.id.to_string()])
            .output();
    }
}

#[test]
fn reads_and_writes_an_ipcmk_segment_by_id_and_by_key() {
    let Some(seg) = IpcmkSegment::new() else {
        return;
    };
    let by_id = format!("sysv-shm:id={}", seg.id);
    let by_key = format!("sysv-shm:key={}", seg.key());

    let out = run(
        &["shm", "write", &by_id, "--offset", "100"],
        b"hello, segment",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(
        &["shm", "read", &by_key, "--offset", "100", "--len", "14"],
        b"",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"hello, segment");

    // Whole segment: 4096 bytes, zeros around what we wrote.
    let out = run(&["shm", "read", &by_id], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout.len(), 4096);
    assert_eq!(&out.stdout[100..114], b"hello, segment");
    assert!(out.stdout[..100].iter().all(|b| *b == 0));

    // By key, at the end exactly.
    let out = run(&["shm", "write", &by_key, "--offset", "4090"], b"ending");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["shm", "read", &by_id, "--offset", "4090"], b"");
    assert_eq!(out.stdout, b"ending");
}

#[test]
fn a_write_that_does_not_fit_writes_nothing_and_fails() {
    let Some(seg) = IpcmkSegment::new() else {
        return;
    };
    let by_id = format!("sysv-shm:id={}", seg.id);
    let out = run(&["shm", "write", &by_id, "--offset", "4090"], b"seven!!");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("4096") && err.contains("nothing was written"),
        "{err}"
    );
    let out = run(&["shm", "read", &by_id, "--offset", "4090"], b"");
    assert_eq!(out.stdout, [0u8; 6]);
    // Reading past the end fails too.
    let out = run(
        &["shm", "read", &by_id, "--offset", "4000", "--len", "97"],
        b"",
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_specs_are_usage_errors_naming_the_part() {
    for (spec, named) in [
        ("sysv-shm:id=abc", "abc"),
        ("sysv-shm:key=0x1234?capacity=1KiB", "options"),
        ("sysv-shm:private", "private"),
        ("fifo:/tmp/x", "fifo"),
        ("nonsense:/x", "nonsense"),
    ] {
        let out = run(&["shm", "read", spec], b"");
        assert_eq!(out.status.code(), Some(2), "{spec}: {}", stderr(&out));
        assert!(stderr(&out).contains(named), "{spec}: {}", stderr(&out));
    }
    // A segment that does not exist is a runtime error.
    let out = run(&["shm", "read", "sysv-shm:id=2147483000"], b"");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("not found"), "{}", stderr(&out));
}

/// A POSIX shared-memory object made as a plain file in `/dev/shm`, removed when dropped.
/// A file made for a test, removed when dropped.
struct TestFile(String);

impl TestFile {
    /// A fresh file of 1000 zero bytes at `dir/ipc-cli-shm-test-PID-N`.
    fn new(dir: &str) -> TestFile {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = format!(
            "{dir}/ipc-cli-shm-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(1000).unwrap();
        TestFile(path)
    }
}

impl Drop for TestFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Writes at the end of the segment `spec` names, reads it back and finds it in `file`; a
/// write one byte too long fails.
fn reads_and_writes(spec: &str, file: &TestFile) {
    let out = run(&["shm", "write", spec, "--offset", "990"], b"0123456789");
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&["shm", "read", spec, "--offset", "990"], b"");
    assert_eq!(out.stdout, b"0123456789");
    assert_eq!(std::fs::read(&file.0).unwrap()[990..], *b"0123456789");
    let out = run(&["shm", "write", spec, "--offset", "991"], b"0123456789");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

#[test]
fn reads_and_writes_a_posix_object() {
    let file = TestFile::new("/dev/shm");
    let name = file.0.trim_start_matches("/dev/shm");
    reads_and_writes(&format!("posix-shm:{name}"), &file);
}

#[test]
fn reads_and_writes_a_mapped_file() {
    let file = TestFile::new("/tmp");
    reads_and_writes(&format!("file-shm:{}", file.0), &file);
}

/// Keys of System V segments that exist now, as `ipcs -m` prints them.
fn sysv_keys() -> Vec<String> {
    let out = Command::new("ipcs").arg("-m").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|k| k.starts_with("0x"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn bench_has_a_sysv_shm_row_without_raw_baseline_and_leaves_no_segment() {
    let (pid, rows) = bench_rows("sysv-shm");
    for row in &rows {
        assert!(row["raw"].is_null(), "{row}");
    }
    // The bench's keys are 0x6, its pid's low 20 bits, a counter byte.
    let prefix = format!("0x6{:05x}", pid & 0xf_ffff);
    let left: Vec<_> = sysv_keys()
        .into_iter()
        .filter(|k| k.starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "segments left behind: {left:?}");
}

#[test]
fn bench_has_a_file_shm_row_with_the_mailbox_baseline_and_leaves_no_file() {
    let (pid, rows) = bench_rows("file-shm");
    for row in &rows {
        assert!(row["raw"]["rtt_p50_ns"].as_f64().unwrap() > 0.0, "{row}");
    }
    let ours = format!("ipc-bench-file-{pid}-");
    let raw = format!("ipc-bench-shm-{pid}-");
    for (dir, prefix) in [(std::env::temp_dir(), ours), ("/dev/shm".into(), raw)] {
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(&prefix))
            .collect();
        assert!(
            left.is_empty(),
            "left behind in {}: {left:?}",
            dir.display()
        );
    }
}

/// `ipc bench --json` of `transport` at 64 and 4096 bytes: the bench's pid and its rows,
/// checked to be that transport's and measured.
fn bench_rows(transport: &str) -> (u32, Vec<serde_json::Value>) {
    let child = ipc()
        .args([
            "bench",
            "--transports",
            transport,
            "--sizes",
            "64,4096",
            "--json",
            "--budget-ms",
            "200",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    for (row, size) in rows.iter().zip([64, 4096]) {
        assert_eq!(row["transport"], transport);
        assert_eq!(row["size"], size);
        assert!(row["rtt_p50_ns"].as_f64().unwrap() > 0.0, "{row}");
    }
    (pid, rows)
}
