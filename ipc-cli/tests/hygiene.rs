//! What every subcommand owes its caller whatever the command line and the system hold: a
//! closed stdout ends it quietly (never a panic, exit 101), control characters it echoes are
//! escaped, and a value that can never work is a usage error (exit 2) naming the option.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

mod common;

use common::{Running, ShmName, ipc, run, text};

/// The write end of a pipe whose read end is already closed: every write to it fails with
/// `EPIPE`, from the first byte on, with no race against the reader.
fn closed_pipe() -> Stdio {
    // O_CLOEXEC: the read end must not leak into a child another test starts meanwhile, or
    // writes would block instead of failing.
    let (read, write): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe2");
    drop(read);
    Stdio::from(write)
}

/// `ipc ARGS` with its stdout closed before it writes anything.
fn run_with_stdout_closed(args: &[&str]) -> Output {
    Running::spawn(
        ipc()
            .args(args)
            .stdout(closed_pipe())
            .stderr(Stdio::piped()),
    )
    .output()
}

/// A quiet end: no panic (exit 101, "panicked" on stderr), and nothing said on stderr about
/// the closed stdout (the notes `ipc ls` gives before it writes may be there).
fn assert_quiet_end(what: &str, out: &Output, code: i32) {
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    assert_eq!(out.status.code(), Some(code), "{what}: {stderr}");
    assert!(
        stderr.lines().all(|line| line.starts_with("ipc: note: ")),
        "{what}: {stderr}"
    );
}

/// A name no other test (or test run) uses: pid and counter.
fn unique(what: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("/ipc-hygiene-{what}-{}-{n}", std::process::id())
}

impl ShmName {
    /// A name for this file's tests.
    fn unique(what: &str) -> ShmName {
        ShmName(unique(what))
    }
}

/// A POSIX queue name, removed when dropped.
struct QueueName(String);

impl Drop for QueueName {
    fn drop(&mut self) {
        let _ = nix::mqueue::mq_unlink(self.0.as_str());
    }
}

/// A path, removed when dropped.
struct FilePath(String);

impl Drop for FilePath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A System V key no other test uses (pid in its bits); whatever a test made with it, queue or
/// segment, is removed when dropped.
struct SysvKey(ipc::sysv::Key);

impl SysvKey {
    fn new() -> SysvKey {
        let pid = std::process::id() as i32 & 0xffff;
        SysvKey(ipc::sysv::Key::Explicit(0x3b00_0000 | (pid << 8)))
    }

    fn text(&self) -> String {
        self.0.to_string()
    }
}

impl Drop for SysvKey {
    fn drop(&mut self) {
        let _ = ipc::sysv::msg::destroy(&self.0);
        if let Ok(segment) = ipc::sysv::shm::SysvSegment::lookup(&self.0) {
            let _ = segment.destroy();
        }
    }
}

/// A ring made by this process (its receiver, which removes it when dropped; the guard
/// removes the name even if the test fails first).
fn ring(name: &ShmName, options: &str) -> Box<dyn ipc::Receiver> {
    ipc::open_receiver(&name.spec(options)).expect("create the ring")
}

#[test]
fn listing_commands_end_quietly_when_stdout_is_closed_before_they_write() {
    let name = ShmName::unique("closed");
    let _rx = ring(&name, "?capacity=4KiB");
    let spec = name.spec("");
    let commands: [&[&str]; 8] = [
        &["ls"],
        &["ls", "--json"],
        &["doctor"],
        &["doctor", "--json"],
        &["inspect", &spec],
        &["shm", "read", &spec],
        &["clean", "--dry-run", &spec],
        // The header is its first write: it stops before measuring anything.
        &[
            "bench",
            "--transports",
            "pipe",
            "--sizes",
            "64",
            "--budget-ms",
            "200",
        ],
    ];
    for args in commands {
        let out = run_with_stdout_closed(args);
        assert_quiet_end(&args.join(" "), &out, 0);
    }
    assert!(name.exists(), "clean --dry-run removed the ring");
}

#[test]
fn shm_read_ends_quietly_when_stdout_closes_while_it_writes() {
    // Far more than a pipe holds (64 KiB by default), so the reader leaves mid-stream while
    // `ipc` is blocked writing or has more to write.
    let name = ShmName::unique("midway");
    let _rx = ring(&name, "?capacity=4MiB");
    let mut read = Running::spawn(
        ipc()
            .args(["shm", "read", &name.spec("")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let mut stdout = read.child().stdout.take().unwrap();
    let mut first = [0u8; 4096];
    stdout.read_exact(&mut first).expect("the first bytes");
    drop(stdout);
    assert_quiet_end("shm read", &read.output(), 0);
}

#[test]
fn recv_with_a_closed_stdout_stops_and_exits_1_quietly() {
    // The message it took could not be handed on: lost, which exit 1 says; no more are taken.
    let name = ShmName::unique("recv");
    let recv = Running::spawn(
        ipc()
            .args(["recv", &name.spec(""), "--count", "2"])
            .stdout(closed_pipe())
            .stderr(Stdio::piped()),
    );
    // The sender waits for the ring the receiver creates (open_timeout, 10 s by default).
    let send = run(ipc().args(["send", &name.spec(""), "first"]));
    assert!(send.status.success(), "send: {}", text(&send.stderr));
    assert_quiet_end("recv", &recv.output(), 1);
    assert!(!name.exists(), "the receiver left the ring it created");
}

#[test]
fn control_characters_in_a_transport_string_are_escaped_in_errors() {
    for (spec, shown) in [
        // Not found: the name is echoed twice (what we were opening, and what is missing).
        (
            "posix-shm:/ipc-hygiene-\x1b[31mred?open_timeout=10ms",
            "\\u{1b}[31mred",
        ),
        // A usage error: an unknown transport, with a C1 CSI in it.
        ("bogus\u{9b}31m:/x", "\\u{9b}31m"),
        // Newlines too: one line per failure.
        ("fifo:/nonexistent-dir/a\nb?open_timeout=10ms", "a\\nb"),
    ] {
        let out = run(ipc().args(["send", spec, "hi"]));
        let stderr = text(&out.stderr);
        assert!(
            matches!(out.status.code(), Some(1 | 2)),
            "{spec:?}: {stderr}"
        );
        assert!(
            !stderr.contains(['\x1b', '\u{9b}']),
            "{spec:?}: raw control character in {stderr:?}"
        );
        assert!(stderr.contains(shown), "{spec:?}: {stderr:?}");
        assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    }
}

#[test]
fn control_characters_in_object_names_are_escaped_in_listings() {
    // Anyone may make a file in /dev/shm with any name; `ls`, `inspect` and `clean` show it.
    let name = ShmName::unique("esc\x1b]0;title\x07");
    let _rx = ring(&name, "?capacity=4KiB");
    let escaped = name.0.replace('\x1b', "\\u{1b}").replace('\x07', "\\u{7}");
    let raw = |out: &Output| {
        let all = [text(&out.stdout), text(&out.stderr)].concat();
        all.contains(['\x1b', '\x07'])
    };

    let ls = run(ipc().arg("ls"));
    assert!(ls.status.success(), "{}", text(&ls.stderr));
    assert!(!raw(&ls), "{:?}", text(&ls.stdout));
    assert!(text(&ls.stdout).contains(&escaped), "{}", text(&ls.stdout));

    let json = run(ipc().args(["ls", "--json"]));
    assert!(json.status.success(), "{}", text(&json.stderr));
    assert!(!raw(&json));
    let listed = text(&json.stdout)
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("JSON"))
        .any(|o| o["name"] == format!("posix-shm:{}", name.0));
    assert!(listed, "{}", text(&json.stdout));

    let inspect = run(ipc().args(["inspect", &name.spec("")]));
    assert!(inspect.status.success(), "{}", text(&inspect.stderr));
    assert!(!raw(&inspect), "{:?}", text(&inspect.stdout));
    assert!(text(&inspect.stdout).contains(&escaped));

    let clean = run(ipc().args(["clean", "--dry-run", &name.spec("")]));
    assert!(clean.status.success(), "{}", text(&clean.stderr));
    assert!(!raw(&clean), "{:?}", text(&clean.stdout));
    assert!(text(&clean.stdout).contains(&escaped));
}

#[test]
fn values_that_can_never_work_exit_2_naming_the_option() {
    let name = ShmName::unique("never");
    let queue = QueueName(unique("never"));
    let queue = &queue.0;
    let fifo = format!("/tmp{}.fifo", unique("never"));
    let _fifo_guard = FilePath(fifo.clone());
    let key = SysvKey::new();
    let key = key.text();
    let cases = [
        // A ring of 64 bytes takes messages of at most 24.
        (
            name.spec("?capacity=64&message_size=100"),
            "message_size=100",
        ),
        // Above the largest ring that can be mapped.
        (
            name.spec("?capacity=9223372036854775807"),
            "capacity=9223372036854775807",
        ),
        (
            format!("sysv-shm:{key}?capacity=64&message_size=100"),
            "message_size=100",
        ),
        // Past the kernel's ceilings (HARD_MSGMAX, HARD_MSGSIZEMAX), whatever the sysctls.
        (
            format!("posix-mq:{queue}?capacity=100000"),
            "capacity=100000",
        ),
        (
            format!("posix-mq:{queue}?message_size=32MiB"),
            "message_size=33554432",
        ),
        (
            format!("sysv-mq:{key}?message_size=4GiB"),
            "message_size=4294967296",
        ),
        // Past the frame format's bound, and what F_SETPIPE_SZ can take.
        (
            format!("fifo:{fifo}?message_size=2GiB"),
            "message_size=2147483648",
        ),
        (format!("fifo:{fifo}?capacity=4GiB"), "capacity=4294967296"),
        (
            "pipe:fd=0?message_size=2GiB".to_owned(),
            "message_size=2147483648",
        ),
    ];
    for (spec, option) in &cases {
        for verb in ["recv", "send"] {
            let mut cmd = ipc();
            cmd.args([verb, spec]);
            if verb == "send" {
                cmd.arg("x");
            }
            let out = run(&mut cmd);
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{verb} {spec}: {stderr}");
            assert!(stderr.contains(option), "{verb} {spec}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
        }
    }
    assert!(!name.exists(), "an invalid spec created the ring");
    assert!(
        !std::path::Path::new(&fifo).exists(),
        "an invalid spec made the FIFO"
    );

    // Too large for the default capacity is a limit, not a wrong string (the same string may
    // open a larger ring); creating, the error says which capacity to ask for.
    let out = run(ipc().args(["recv", &name.spec("?message_size=1MiB")]));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("set capacity="), "{stderr}");
    assert!(!name.exists());
}
