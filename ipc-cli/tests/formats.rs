//! `ipc send --format/--priority/--type` and `ipc recv --format/--show`: any message, binary
//! included, survives a round trip through the command line, and priorities and types are
//! given and shown. Queues hold messages, so each test sends first and then receives, with no
//! timing between the two; every queue is named uniquely and removed by a guard.

use std::io::Write;
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

mod common;

use common::{Running, ShmName, ipc, run, text};

fn unique() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A POSIX queue, removed at the end whatever happened.
struct PosixQueue(String);

impl PosixQueue {
    fn new() -> PosixQueue {
        PosixQueue(format!("/ipc-cli-formats-{}", unique()))
    }

    /// The transport string; the sender may create it, so that it can go first.
    fn spec(&self) -> String {
        format!("posix-mq:{}?create=if_missing", self.0)
    }
}

impl Drop for PosixQueue {
    fn drop(&mut self) {
        let _ = nix::mqueue::mq_unlink(self.0.as_str());
    }
}

/// A System V queue with a key of its own (pid and counter), removed at the end.
struct SysvQueue(i32);

impl SysvQueue {
    fn new() -> SysvQueue {
        static NEXT: AtomicUsize = AtomicUsize::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed) as i32;
        SysvQueue(0x5f00_0000 | ((std::process::id() as i32 & 0xffff) << 8) | n)
    }

    fn spec(&self) -> String {
        format!("sysv-mq:key={:#x}?create=if_missing", self.0)
    }
}

impl Drop for SysvQueue {
    fn drop(&mut self) {
        let _ = ipc::sysv::msg::destroy(&ipc::sysv::Key::Explicit(self.0));
    }
}

/// Runs `ipc ARGS` with `input` on its standard input.
fn run_with_input(args: &[&str], input: &[u8]) -> Output {
    let mut child = Running::spawn(
        ipc()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let mut stdin = child.child().stdin.take().expect("piped stdin");
    stdin.write_all(input).expect("write stdin");
    drop(stdin);
    child.output()
}

fn ok(out: Output) -> Vec<u8> {
    assert!(
        out.status.success(),
        "ipc failed ({:?}): {}",
        out.status,
        text(&out.stderr)
    );
    out.stdout
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Every byte value, `\n` and `\0` among them.
fn every_byte() -> Vec<u8> {
    (0..=255).collect()
}

#[test]
fn binary_messages_round_trip_through_hex() {
    let q = PosixQueue::new();
    let spec = q.spec();
    let messages = [every_byte(), b"a\nb".to_vec(), Vec::new()];
    let input: String = messages.iter().map(|m| hex(m) + "\n").collect();
    ok(run_with_input(
        &["send", &spec, "--format", "hex"],
        input.as_bytes(),
    ));
    let out = ok(run(
        ipc().args(["recv", &spec, "--count", "3", "--format", "hex"])
    ));
    assert_eq!(text(&out), input);
}

#[test]
fn binary_messages_round_trip_through_json_with_their_priority() {
    let q = PosixQueue::new();
    let spec = q.spec();
    let input = hex(&every_byte()) + "\n";
    ok(run_with_input(
        &["send", &spec, "--format", "hex", "--priority", "5"],
        input.as_bytes(),
    ));
    let out = ok(run(
        ipc().args(["recv", &spec, "--count", "1", "--format", "json"])
    ));
    let line = text(&out);
    assert_eq!(line.lines().count(), 1, "{line}");
    let value: serde_json::Value = serde_json::from_str(&line).expect("JSON");
    assert_eq!(value["kind"], "message");
    assert_eq!(value["len"], 256);
    assert_eq!(value["hex"], hex(&every_byte()));
    assert_eq!(value["priority"], 5);
}

#[test]
fn one_binary_message_round_trips_raw() {
    let q = PosixQueue::new();
    let spec = q.spec();
    let mut msg = every_byte();
    msg.extend_from_slice(b"\n\n");
    ok(run_with_input(&["send", &spec, "--format", "raw"], &msg));
    let out = ok(run(
        ipc().args(["recv", &spec, "--count", "1", "--format", "raw"])
    ));
    assert_eq!(out, msg);
}

#[test]
fn lines_refuses_a_message_with_a_newline_naming_the_formats_that_show_it() {
    let q = PosixQueue::new();
    let spec = q.spec();
    ok(run(ipc().args(["send", &spec, "two\nlines"])));
    let out = run(ipc().args(["recv", &spec, "--count", "1"]));
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "printed {:?}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("newline") && stderr.contains("--format hex, json or raw"),
        "{stderr}"
    );
}

#[test]
fn raw_needs_count_1_and_format_flags_are_checked() {
    let q = PosixQueue::new();
    let spec = q.spec();
    for (args, why) in [
        (vec!["recv", &spec, "--format", "raw"], "--count 1"),
        (
            vec!["recv", &spec, "--format", "raw", "--count", "2"],
            "--count 1",
        ),
        (vec!["send", &spec, "--format", "raw", "x"], "MESSAGE"),
    ] {
        let out = run(ipc().args(&args));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains(why),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let out = run_with_input(&["send", &spec, "--format", "hex"], b"abc\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("line 1"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn priorities_are_sent_and_shown() {
    let q = PosixQueue::new();
    let spec = q.spec();
    ok(run(ipc().args(["send", &spec, "--priority", "3", "low"])));
    ok(run(ipc().args(["send", &spec, "--priority", "9", "high"])));
    ok(run(ipc().args(["send", &spec, "plain"])));
    let out =
        ok(run(ipc().args([
            "recv", &spec, "--count", "3", "--show", "priority",
        ])));
    assert_eq!(text(&out), "9\thigh\n3\tlow\n0\tplain\n");
}

#[test]
fn types_are_sent_and_shown() {
    let q = SysvQueue::new();
    let spec = q.spec();
    ok(run(ipc().args(["send", &spec, "--type", "7", "seven"])));
    ok(run(ipc().args(["send", &spec, "one"])));
    ok(run_with_input(
        &["send", &spec, "--type", "42", "--format", "hex"],
        format!("{}\n", hex(&every_byte())).as_bytes(),
    ));
    let out = ok(run(
        ipc().args(["recv", &spec, "--count", "2", "--show", "type"])
    ));
    assert_eq!(text(&out), "7\tseven\n1\tone\n");
    let out = ok(run(ipc().args([
        "recv", &spec, "--count", "1", "--show", "type", "--format", "hex",
    ])));
    assert_eq!(text(&out), format!("42\t{}\n", hex(&every_byte())));
}

#[test]
fn priority_type_and_show_are_refused_where_the_transport_has_none() {
    let pq = PosixQueue::new();
    let sq = SysvQueue::new();
    let (posix, sysv) = (pq.spec(), sq.spec());
    for (args, why) in [
        (vec!["send", &sysv, "--priority", "1", "x"], "posix-mq only"),
        (vec!["send", &posix, "--type", "2", "x"], "sysv-mq only"),
        (vec!["send", &sysv, "--type", "0", "x"], "--type"),
        (
            vec!["send", &posix, "--priority", "32768", "x"],
            "--priority",
        ),
        (vec!["recv", &posix, "--show", "type"], "sysv-mq only"),
        (vec!["recv", &sysv, "--show", "priority"], "posix-mq only"),
        (
            vec!["recv", &posix, &sysv, "--show", "type"],
            "one transport",
        ),
    ] {
        let out = run(ipc().args(&args));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains(why),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn several_transports_print_json_with_where_each_came_from() {
    let (a, b) = (PosixQueue::new(), PosixQueue::new());
    ok(run(ipc().args(["send", &a.spec(), "from a"])));
    ok(run(ipc().args(["send", &b.spec(), "from b"])));
    let out = ok(run(ipc().args([
        "recv",
        &a.spec(),
        &b.spec(),
        "--count",
        "2",
        "--format",
        "json",
        "--label",
    ])));
    let mut seen: Vec<(String, String)> = text(&out)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON");
            (
                v["from"].as_str().unwrap().to_owned(),
                v["hex"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    seen.sort();
    let mut want = vec![(a.spec(), hex(b"from a")), (b.spec(), hex(b"from b"))];
    want.sort();
    assert_eq!(seen, want);
}

#[test]
fn shm_read_and_write_take_a_bare_posix_name() {
    let name = ShmName(format!("/ipc-cli-formats-{}", unique()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(name.path())
        .expect("create the segment");
    file.set_len(16).unwrap();
    ok(run_with_input(
        &["shm", "write", &name.0, "--offset", "4"],
        b"hello",
    ));
    let out =
        ok(run(ipc().args([
            "shm", "read", &name.0, "--offset", "4", "--len", "5",
        ])));
    assert_eq!(out, b"hello");
}
