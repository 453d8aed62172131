//! The `ipc` binary, run as real processes.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// Longest any command of these tests may run before it counts as hung.
const HUNG: Duration = Duration::from_secs(60);

/// The `ipc` binary, with nothing on stdin unless a test says otherwise.
fn ipc() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ipc"));
    cmd.stdin(Stdio::null());
    cmd
}

/// A FIFO path no other test (or test run) uses, removed at the end whatever happened.
struct TempPath(PathBuf);

impl TempPath {
    fn new() -> TempPath {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        TempPath(PathBuf::from(format!(
            "/tmp/ipc-cli-test-{}-{n}.fifo",
            std::process::id()
        )))
    }

    fn spec(&self) -> String {
        format!("fifo:{}", self.0.display())
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A child process, killed if the test ends (or panics) before it was waited for.
struct Running(Option<Child>);

impl Running {
    fn spawn(cmd: &mut Command) -> Running {
        Running(Some(cmd.spawn().expect("start ipc")))
    }

    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("not waited for yet")
    }

    /// Waits for the exit and collects the piped output; a child still running after
    /// [`HUNG`] is killed and fails the test.
    fn output(mut self) -> Output {
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

fn run(cmd: &mut Command) -> Output {
    Running::spawn(cmd.stdout(Stdio::piped()).stderr(Stdio::piped())).output()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn one_line(stderr: &[u8]) -> String {
    let stderr = text(stderr);
    assert_eq!(
        stderr.lines().count(),
        1,
        "expected one line, got {stderr:?}"
    );
    stderr
}

#[test]
fn lines_of_stdin_arrive_as_messages_over_a_fifo() {
    let path = TempPath::new();
    let recv = Running::spawn(
        ipc()
            .args(["recv", &path.spec(), "--count", "3"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    // The sender may well start first: it waits for the FIFO (open_timeout), no sleep needed.
    let mut send = Running::spawn(
        ipc()
            .args(["send", &path.spec()])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let mut stdin = send.child().stdin.take().unwrap();
    stdin.write_all(b"a\nb\nc\n").unwrap();
    drop(stdin);
    let send = send.output();
    assert!(send.status.success(), "send: {}", text(&send.stderr));
    let recv = recv.output();
    assert!(recv.status.success(), "recv: {}", text(&recv.stderr));
    assert_eq!(text(&recv.stdout), "a\nb\nc\n");
}

#[test]
fn arguments_are_messages_and_recv_ends_when_the_sender_leaves() {
    // `ipc send pipe:fd=1 ... | ipc recv pipe:fd=0`: the shell's pipe, framed by ipc.
    let mut send = Running::spawn(
        ipc()
            .args(["send", "pipe:fd=1", "hello", "two words", ""])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let pipe = send.child().stdout.take().unwrap();
    let recv = run(ipc().args(["recv", "pipe:fd=0"]).stdin(pipe));
    let send = send.output();
    assert!(send.status.success(), "send: {}", text(&send.stderr));
    assert!(recv.status.success(), "recv: {}", text(&recv.stderr));
    assert_eq!(text(&recv.stdout), "hello\ntwo words\n\n");
}

#[test]
fn a_bad_spec_option_exits_2_naming_it() {
    let out = run(ipc().args(["send", "fifo:/tmp/x.fifo?bogus=1", "hi"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(one_line(&out.stderr).contains("bogus"));
}

#[test]
fn a_bad_option_value_exits_2_naming_it() {
    let path = TempPath::new();
    let out = run(ipc().args(["recv", &path.spec(), "--timeout", "5"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(one_line(&out.stderr).contains("--timeout"));

    let out = run(ipc().args(["bench", "--transports", "carrier-pigeon"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(one_line(&out.stderr).contains("carrier-pigeon"));
}

#[test]
fn recv_without_a_sender_times_out_with_3() {
    let path = TempPath::new();
    let out = run(ipc().args(["recv", &path.spec(), "--timeout", "200ms"]));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(one_line(&out.stderr).contains("timed out"));
    assert!(out.stdout.is_empty());
}

#[test]
fn recv_with_a_timeout_prints_what_arrives_in_time() {
    let path = TempPath::new();
    let recv = Running::spawn(
        ipc()
            .args(["recv", &path.spec(), "--timeout", "20s", "--count", "2"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let send = run(ipc().args(["send", &path.spec(), "one", "two"]));
    assert!(send.status.success(), "send: {}", text(&send.stderr));
    let recv = recv.output();
    assert!(recv.status.success(), "recv: {}", text(&recv.stderr));
    assert_eq!(text(&recv.stdout), "one\ntwo\n");
}

#[test]
fn bench_json_lines_have_the_documented_keys() {
    let out = run(ipc().args([
        "bench",
        "--transports",
        "pipe,fifo",
        "--sizes",
        "64",
        "--json",
        "--budget-ms",
        "200",
    ]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    for (row, transport) in rows.iter().zip(["pipe", "fifo"]) {
        assert_eq!(row["transport"], transport);
        assert_eq!(row["size"], 64);
        for m in [row, &row["raw"]] {
            for key in ["rtt_p50_ns", "rtt_p99_ns", "msgs_per_s", "bytes_per_s"] {
                let value = m[key].as_f64().unwrap_or_else(|| panic!("{key} in {row}"));
                assert!(value > 0.0, "{key} in {row}");
            }
            assert!(m["rtt_p50_ns"].as_u64() <= m["rtt_p99_ns"].as_u64());
        }
    }
}

#[test]
fn bench_table_has_a_row_per_cell_and_the_wall_time() {
    let out = run(ipc().args([
        "bench",
        "--transports",
        "fifo",
        "--sizes",
        "1,64KiB",
        "--budget-ms",
        "200",
    ]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<_> = stdout.lines().collect();
    assert!(lines[0].starts_with("transport"), "{stdout}");
    assert!(
        lines[1].starts_with("fifo") && lines[1].contains(" 1 "),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with("fifo") && lines[2].contains("65536"),
        "{stdout}"
    );
    assert!(
        lines.last().unwrap().starts_with("total wall time"),
        "{stdout}"
    );
}
