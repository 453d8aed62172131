//! The `ipc` binary, run as real processes.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

mod common;

use common::{HUNG, Running, ipc, run, text};

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

/// A POSIX queue name no other test (or test run) uses, removed at the end whatever happened.
struct TempQueue(String);

impl TempQueue {
    fn new() -> TempQueue {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        TempQueue(format!("/ipc-cli-test-{}-{n}", std::process::id()))
    }

    fn spec(&self, options: &str) -> String {
        format!("posix-mq:{}{options}", self.0)
    }

    fn exists(&self) -> bool {
        queue_exists(&self.0)
    }
}

impl Drop for TempQueue {
    fn drop(&mut self) {
        let _ = nix::mqueue::mq_unlink(self.0.as_str());
    }
}

/// Whether a queue of that name exists (`mq_open` does not fail with `ENOENT`).
fn queue_exists(name: &str) -> bool {
    let flags = nix::mqueue::MQ_OFlag::O_RDONLY;
    match nix::mqueue::mq_open(name, flags, nix::sys::stat::Mode::empty(), None) {
        Ok(mqd) => {
            let _ = nix::mqueue::mq_close(mqd);
            true
        }
        Err(nix::errno::Errno::ENOENT) => false,
        Err(e) => panic!("mq_open {name}: {e}"),
    }
}

/// The queues `ipc bench` process `pid` made (`/ipc-bench-<pid>-<n>`) that still exist: by
/// the names it gives (a cell makes 8), and as listed in `/dev/mqueue` if it is mounted.
fn bench_queues_left(pid: u32) -> Vec<String> {
    let mut left: Vec<String> = (0..64)
        .map(|n| format!("/ipc-bench-{pid}-{n}"))
        .filter(|name| queue_exists(name))
        .collect();
    let prefix = format!("ipc-bench-{pid}-");
    if let Ok(dir) = std::fs::read_dir("/dev/mqueue") {
        left.extend(
            dir.filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                .filter(|name| name.starts_with(&prefix)),
        );
    }
    left
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

/// `ipc recv SPEC --count 3` and `ipc send SEND_SPEC` with three lines on its stdin: the
/// lines arrive as three messages. The sender may well start first: it waits for its receiver
/// (`open_timeout`), no sleep needed.
fn three_lines_arrive(spec: &str, send_spec: &str) {
    let recv = Running::spawn(
        ipc()
            .args(["recv", spec, "--count", "3"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let mut send = Running::spawn(
        ipc()
            .args(["send", send_spec])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let mut stdin = send.child().stdin.take().unwrap();
    stdin.write_all(b"a\nb\nc\n").unwrap();
    drop(stdin);
    let send = send.output();
    assert!(
        send.status.success(),
        "{spec}: send: {}",
        text(&send.stderr)
    );
    let recv = recv.output();
    assert!(
        recv.status.success(),
        "{spec}: recv: {}",
        text(&recv.stderr)
    );
    assert_eq!(text(&recv.stdout), "a\nb\nc\n", "{spec}");
}

#[test]
fn lines_of_stdin_arrive_as_messages_over_a_fifo() {
    let path = TempPath::new();
    three_lines_arrive(&path.spec(), &path.spec());
}

/// `ipc send` and `ipc recv` take the socket strings through the facade: a unix socket in the
/// abstract namespace and TCP on loopback (a port the kernel just handed out and took back).
#[test]
fn lines_of_stdin_arrive_as_messages_over_unix_and_tcp_sockets() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for spec in [
        format!("unix:@ipc-cli-test-{}", std::process::id()),
        format!("tcp:127.0.0.1:{port}"),
    ] {
        three_lines_arrive(&spec, &format!("{spec}?open_timeout=10s"));
    }
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
        assert_eq!(row["kind"], "row");
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

#[test]
fn a_queue_keeps_what_was_sent_until_it_is_received() {
    // The sender runs first and no queue exists yet: it creates it (by default, or as asked)
    // and leaves it, messages and all, for `ipc recv`.
    for options in ["?capacity=8&create=if_missing", "?capacity=8"] {
        let queue = TempQueue::new();
        let mut send = Running::spawn(
            ipc()
                .args(["send", &queue.spec(options)])
                .stdin(Stdio::piped())
                .stderr(Stdio::piped()),
        );
        let mut stdin = send.child().stdin.take().unwrap();
        stdin.write_all(b"x\ny\n").unwrap();
        drop(stdin);
        let send = send.output();
        assert!(send.status.success(), "send: {}", text(&send.stderr));
        assert!(queue.exists(), "the sender removed the queue it created");

        let recv = run(ipc().args(["recv", &queue.spec(""), "--count", "2"]));
        assert!(recv.status.success(), "recv: {}", text(&recv.stderr));
        assert_eq!(text(&recv.stdout), "x\ny\n");

        // Nothing more: the receiver waits, and times out.
        let recv = run(ipc().args(["recv", &queue.spec(""), "--timeout", "100ms"]));
        assert_eq!(recv.status.code(), Some(3), "{}", text(&recv.stderr));
        assert!(recv.stdout.is_empty());
    }
}

/// A POSIX shared-memory segment name no other test (or test run) uses, removed at the end
/// whatever happened.
struct TempSegment(String);

impl TempSegment {
    fn new() -> TempSegment {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        TempSegment(format!("/ipc-cli-test-shm-{}-{n}", std::process::id()))
    }

    fn spec(&self, options: &str) -> String {
        format!("posix-shm:{}{options}", self.0)
    }

    /// Where `shm_open` keeps it.
    fn path(&self) -> String {
        format!("/dev/shm{}", self.0)
    }

    fn exists(&self) -> bool {
        std::path::Path::new(&self.path()).exists()
    }
}

impl Drop for TempSegment {
    fn drop(&mut self) {
        // shm_unlink is an unlink in /dev/shm.
        let _ = std::fs::remove_file(self.path());
    }
}

/// `ipc send` with `lines` on its stdin, to completion.
fn send_lines(spec: &str, lines: &[u8]) -> Output {
    let mut send = Running::spawn(
        ipc()
            .args(["send", spec])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let mut stdin = send.child().stdin.take().unwrap();
    stdin.write_all(lines).unwrap();
    drop(stdin);
    send.output()
}

#[test]
fn posix_shm_carries_messages_between_send_and_recv() {
    // The usual order: the receiver creates the segment (and removes it when done); the
    // sender, started right after, waits for it if need be.
    let segment = TempSegment::new();
    let recv = Running::spawn(
        ipc()
            .args(["recv", &segment.spec(""), "--count", "2"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let send = run(ipc().args(["send", &segment.spec(""), "hello", "world"]));
    assert!(send.status.success(), "send: {}", text(&send.stderr));
    let recv = recv.output();
    assert!(recv.status.success(), "recv: {}", text(&recv.stderr));
    assert_eq!(
        text(&recv.stdout),
        "hello
world
"
    );
    assert!(
        !segment.exists(),
        "the receiver left the segment it created"
    );

    // Without --count, the receiver ends when the sender leaves: the ring sees it go.
    let segment = TempSegment::new();
    let recv = Running::spawn(
        ipc()
            .args(["recv", &segment.spec("?capacity=4KiB")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let send = send_lines(&segment.spec("?capacity=4KiB"), b"a\nb\nc\n");
    assert!(send.status.success(), "send: {}", text(&send.stderr));
    let recv = recv.output();
    assert!(recv.status.success(), "recv: {}", text(&recv.stderr));
    assert_eq!(text(&recv.stdout), "a\nb\nc\n");

    // The sender first, allowed to create: it leaves the segment, messages and all, for
    // `ipc recv`, which leaves it too (it did not create it).
    let segment = TempSegment::new();
    let send = send_lines(&segment.spec("?create=if_missing"), b"x\ny\n");
    assert!(send.status.success(), "send: {}", text(&send.stderr));
    assert!(
        segment.exists(),
        "the sender removed the segment it created"
    );
    let recv = run(ipc().args(["recv", &segment.spec(""), "--count", "2"]));
    assert!(recv.status.success(), "recv: {}", text(&recv.stderr));
    assert_eq!(text(&recv.stdout), "x\ny\n");
    // Its only sender is gone: a further receiver ends at once, with nothing.
    let recv = run(ipc().args(["recv", &segment.spec(""), "--timeout", "5s"]));
    assert!(recv.status.success(), "recv: {}", text(&recv.stderr));
    assert!(recv.stdout.is_empty());

    // A sender waits at most open_timeout for a segment nobody makes, and names it.
    let segment = TempSegment::new();
    let send = run(ipc().args(["send", &segment.spec("?open_timeout=200ms"), "x"]));
    assert_eq!(send.status.code(), Some(1), "{}", text(&send.stderr));
    let stderr = one_line(&send.stderr);
    assert!(
        stderr.contains(&segment.0) && stderr.contains("not found"),
        "{stderr}"
    );
    assert!(!segment.exists());
}

#[test]
fn bench_posix_mq_skips_sizes_above_the_queue_limit_and_leaves_no_queue() {
    let limit: usize = std::fs::read_to_string("/proc/sys/fs/mqueue/msgsize_max")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(8192);
    let sizes = format!("64,{}", limit + 1);
    let args = [
        "bench",
        "--transports",
        "posix-mq",
        "--sizes",
        &sizes,
        "--budget-ms",
        "200",
    ];

    let mut json = Running::spawn(
        ipc()
            .args(args)
            .arg("--json")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let pid = json.child().id();
    let out = json.output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    assert_eq!(
        rows.len(),
        1,
        "only the size that fits is measured: {stdout}"
    );
    assert_eq!(rows[0]["transport"], "posix-mq");
    assert_eq!(rows[0]["size"], 64);
    for m in [&rows[0], &rows[0]["raw"]] {
        assert!(
            m["msgs_per_s"].as_f64().is_some_and(|v| v > 0.0),
            "{stdout}"
        );
        assert!(
            m["rtt_p50_ns"].as_u64() <= m["rtt_p99_ns"].as_u64(),
            "{stdout}"
        );
    }
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("posix-mq {} B skipped", limit + 1))
            && stderr.contains("msgsize_max"),
        "{stderr}"
    );
    assert_eq!(bench_queues_left(pid), Vec::<String>::new());

    let mut table = Running::spawn(
        ipc()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let pid = table.child().id();
    let out = table.output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<_> = stdout.lines().collect();
    assert!(
        lines[1].starts_with("posix-mq") && lines[1].contains(" 64 "),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with("posix-mq") && lines[2].contains("n/a (message_size above"),
        "{stdout}"
    );
    assert_eq!(bench_queues_left(pid), Vec::<String>::new());
}

/// The command line of each running child of process `pid`, by pid.
fn children(pid: u32) -> Vec<(i32, String)> {
    let Ok(proc) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    proc.filter_map(|entry| {
        let child: i32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).ok()?;
        // `pid (comm) state ppid ...`; comm may hold spaces, not the rest.
        let ppid: u32 = stat
            .rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()?;
        let cmdline = std::fs::read(format!("/proc/{child}/cmdline")).ok()?;
        (ppid == pid).then(|| (child, text(&cmdline).replace('\0', " ")))
    })
    .collect()
}

#[test]
fn bench_posix_mq_fails_rather_than_hangs_when_its_peer_dies() {
    // A queue, unlike a pipe, does not tell one side that the other is gone: whether the bench
    // waits to receive (echo) or to send into a full queue (sink), the peer's death must end it.
    for role in ["echo", "sink"] {
        let wanted = format!("--variant raw --role {role} ");
        kill_the_peer_midway(&["--budget-ms", "8000"], &[&wanted], &format!("raw {role}"));
    }
}

#[test]
fn bench_async_posix_mq_fails_rather_than_hangs_when_its_peer_dies() {
    // The same through tokio: the wait is then in the reactor, on the queue's readiness, which
    // the bench's watcher must wake as it wakes a blocked call.
    for role in ["echo", "sink"] {
        let wanted = format!("--variant ours --role {role} ");
        kill_the_peer_midway(
            &["--budget-ms", "4000", "--async"],
            &[&wanted, "--api async "],
            &format!("ours async {role}"),
        );
    }
}

/// Runs `ipc bench --transports posix-mq --sizes 64` with `args`, kills its peer whose command
/// line contains each of `wanted` 300 ms into that peer's run (a quarter of the budget), and
/// checks that the bench fails, naming the run (`bench posix-mq {run_name} 64 B`), and leaves
/// no queue.
fn kill_the_peer_midway(args: &[&str], wanted: &[&str], run_name: &str) {
    let mut bench = Running::spawn(
        ipc()
            .args(["bench", "--transports", "posix-mq", "--sizes", "64"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let pid = bench.child().id();
    let deadline = std::time::Instant::now() + HUNG;
    let peer = loop {
        let found = children(pid)
            .into_iter()
            .find(|(_, cmdline)| wanted.iter().all(|w| cmdline.contains(w)));
        if let Some((peer, _)) = found {
            break peer;
        }
        assert!(std::time::Instant::now() < deadline, "no peer {wanted:?}");
        std::thread::sleep(Duration::from_millis(10));
    };
    // Well into the run (a second or more): the sink's queue is full by now.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        children(pid).iter().any(|(p, _)| *p == peer),
        "the peer {wanted:?} ended on its own"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(peer),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let out = bench.output();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("bench posix-mq {run_name} 64 B")),
        "{stderr}"
    );
    assert_eq!(bench_queues_left(pid), Vec::<String>::new());
}

/// The shared-memory segments `ipc bench` process `pid` left in `/dev/shm`.
fn bench_segments_left(pid: u32) -> Vec<String> {
    let prefix = format!("ipc-bench-shm-{pid}-");
    std::fs::read_dir("/dev/shm")
        .map(|dir| {
            dir.filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                .filter(|name| name.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn bench_posix_shm_measures_each_strategy_with_references_and_leaves_no_segment() {
    let args = [
        "bench",
        "--transports",
        "posix-shm",
        "--sizes",
        "64",
        "--budget-ms",
        "200",
    ];

    let json = Running::spawn(
        ipc()
            .args(args)
            .arg("--json")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let pid = json.id();
    let out = json.output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    let rows: Vec<_> = lines
        .iter()
        .filter(|l| l["transport"].is_string())
        .collect();
    let transports: Vec<_> = rows
        .iter()
        .map(|r| r["transport"].as_str().unwrap())
        .collect();
    assert_eq!(
        transports,
        [
            "posix-shm-busy",
            "posix-shm-spin",
            "posix-shm-park",
            "posix-shm-multi"
        ],
        "{stdout}"
    );
    for row in &rows {
        for m in [*row, &row["raw"]] {
            for key in ["rtt_p50_ns", "msgs_per_s"] {
                assert!(m[key].as_f64().is_some_and(|v| v > 0.0), "{key}: {stdout}");
            }
        }
    }
    let reference = |what: &str| {
        lines
            .iter()
            .find(|l| l["reference"] == what)
            .unwrap_or_else(|| panic!("no {what} reference: {stdout}"))
    };
    let memcpy = reference("memcpy");
    assert!(
        memcpy["bytes_per_s"].as_f64().is_some_and(|v| v > 0.0),
        "{stdout}"
    );
    assert_eq!(memcpy["copies"][0]["size"], 64, "{stdout}");
    let floors = reference("floors");
    for key in ["spin_rtt_p50_ns", "futex_rtt_p50_ns"] {
        assert!(floors[key].as_u64().is_some_and(|v| v > 0), "{stdout}");
    }
    assert_eq!(bench_segments_left(pid), Vec::<String>::new());

    let table = Running::spawn(
        ipc()
            .args([
                "bench",
                "--transports",
                "posix-shm-busy,pipe",
                "--sizes",
                "64",
            ])
            .args(["--budget-ms", "200"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let pid = table.id();
    let out = table.output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<_> = stdout.lines().collect();
    assert!(lines[1].starts_with("posix-shm-busy "), "{stdout}");
    assert!(lines[2].starts_with("pipe "), "{stdout}");
    assert!(lines.iter().any(|l| l.starts_with("memcpy")), "{stdout}");
    assert!(
        lines.iter().any(|l| l.starts_with("spin floor")),
        "{stdout}"
    );
    assert!(
        lines.last().unwrap().starts_with("total wall time"),
        "{stdout}"
    );
    assert_eq!(bench_segments_left(pid), Vec::<String>::new());
}

#[test]
fn bench_async_drives_every_transport_and_leaves_no_segment_or_queue() {
    // Every built-in transport, so that each one's readiness runs across two processes, both
    // through tokio and through a WaitSet, 64 KiB messages included (a pipe's go in parts).
    let bench = Running::spawn(
        ipc()
            .args([
                "bench",
                "--sizes",
                "64,64KiB",
                "--async",
                "--budget-ms",
                "100",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let pid = bench.id();
    let out = bench.output();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let labels: Vec<_> = stdout
        .lines()
        .skip(1)
        .filter(|l| l.contains(" 64 ") && !l.contains("n/a"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for transport in ["pipe", "fifo", "posix-mq", "sysv-mq", "sysv-shm"] {
        for api in ["", "+async", "+wait-set"] {
            let label = format!("{transport}{api}");
            assert!(labels.contains(&label.as_str()), "{label}: {stdout}");
        }
    }
    for label in [
        "posix-shm-park+async",
        "posix-shm-park+wait-set",
        "posix-shm-multi+async",
    ] {
        assert!(labels.contains(&label), "{label}: {stdout}");
    }
    // The strategies an async endpoint does not use get no rows of their own.
    assert!(
        !labels.iter().any(|l| l.starts_with("posix-shm-busy+")
            || l.starts_with("posix-shm-spin+")
            || *l == "posix-shm-multi+wait-set"),
        "{stdout}"
    );
    assert_eq!(bench_segments_left(pid), Vec::<String>::new());
    assert_eq!(bench_queues_left(pid), Vec::<String>::new());
}

#[test]
fn recv_takes_several_transports_and_prints_from_whichever_is_ready() {
    let fifo = TempPath::new();
    let segment = TempSegment::new();
    let recv = Running::spawn(
        ipc()
            .args([
                "recv",
                &fifo.spec(),
                &segment.spec(""),
                "--count",
                "4",
                "--label",
                "--timeout",
                "30s",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    // A loaded machine may take a while to start `ipc recv`, which creates the ring.
    let to_ring = run(ipc().args(["send", &segment.spec("?open_timeout=60s"), "r1", "r2"]));
    assert!(to_ring.status.success(), "send: {}", text(&to_ring.stderr));
    let to_fifo = run(ipc().args(["send", &fifo.spec(), "f1", "f2"]));
    assert!(to_fifo.status.success(), "send: {}", text(&to_fifo.stderr));
    let recv = recv.output();
    assert!(recv.status.success(), "recv: {}", text(&recv.stderr));
    let out = text(&recv.stdout);
    let mut lines: Vec<&str> = out.lines().collect();
    // Each transport's messages in order; the two interleave as they arrive.
    let from = |spec: &str| -> Vec<String> {
        lines
            .iter()
            .filter_map(|l| l.strip_prefix(&format!("{spec}\t")).map(str::to_owned))
            .collect()
    };
    assert_eq!(from(&fifo.spec()), ["f1", "f2"], "{out:?}");
    assert_eq!(from(&segment.spec("")), ["r1", "r2"], "{out:?}");
    lines.sort();
    assert_eq!(lines.len(), 4, "{out:?}");
}

#[test]
fn recv_from_a_raw_stream_prints_the_bytes_as_they_came() {
    // framing=raw has no message boundaries: the chunks, back to back, are the stream, so that
    // is what `ipc recv` prints by default, newlines and all.
    let path = TempPath::new();
    let spec = format!("{}?framing=raw", path.spec());
    let recv = Running::spawn(
        ipc()
            .args(["recv", &spec, "--timeout", "30s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let mut send = Running::spawn(
        ipc()
            .args(["send", &spec, "--format", "raw"])
            .stdin(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let stream: Vec<u8> = (0..=255u8)
        .chain(b"one\ntwo\nthree".iter().copied())
        .collect();
    let mut stdin = send.child().stdin.take().unwrap();
    stdin.write_all(&stream).unwrap();
    drop(stdin);
    let send = send.output();
    assert!(send.status.success(), "send: {}", text(&send.stderr));
    let recv = recv.output();
    assert!(recv.status.success(), "recv: {}", text(&recv.stderr));
    assert_eq!(recv.stdout, stream);
}

#[test]
#[cfg(feature = "memfd")]
fn a_registered_transport_works_from_the_cli() {
    let path = format!("/tmp/ipc-cli-memfd-{}.sock", std::process::id());
    let spec = format!("memfd:{path}");
    three_lines_arrive(&spec, &format!("{spec}?open_timeout=10s"));
    assert!(
        !std::path::Path::new(&path).exists(),
        "the receiver removes its socket"
    );
    let typo = run(ipc().args(["send", "memdf:/tmp/x.sock", "m"]));
    assert_eq!(typo.status.code(), Some(2));
    let err = text(&typo.stderr);
    assert!(
        err.contains("`memdf`") && err.contains("registered: memfd"),
        "{err}"
    );
}
