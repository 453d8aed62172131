//! Pipes and FIFOs against textbook C programs that do not use `ipc` (issue 13): both ways,
//! with `framing=lines` and `raw`, and the README's C reader of `frames` against `ipc send`;
//! `framing=packets` both ways, against a C writer in packet mode (and one that is not) and a
//! Python reader that does one `read` per message; and a Python writer of frames over a page
//! (`message_size=4096`) into `ipc recv`.
//!
//! The C sources are in `tests/c/` (the reader is taken from the README itself, so the README
//! cannot drift from what is tested). They are compiled with `cc` from `PATH` when the tests
//! run; without a compiler each test says so and passes, as do those that need `python3`
//! without it.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use ipc::pipe::{PipeConfig, channel};
use ipc::{Address, Error, Framing, Sender};
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::stat::Mode;

mod common;

use common::{Running, TempPath, ipc, python3_found, run, text};

/// A compiled C program, removed when the test is done with it.
struct Built(PathBuf);

impl std::ops::Deref for Built {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Built {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Compiles `source` into a program of this test; `None` (and a message) without `cc`.
fn compile(name: &str, source: &Path) -> Option<Built> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("foreign-c-{}-{n}-{name}", std::process::id()));
    let built = Built(out.clone());
    let result = Command::new("cc")
        .args(["-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&out)
        .arg(source)
        .output();
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("skipping: no C compiler (`cc`) on PATH to build {name}");
            None
        }
        Err(e) => panic!("running cc: {e}"),
        Ok(o) if !o.status.success() => panic!("cc {name}: {}", text(&o.stderr)),
        Ok(_) => Some(built),
    }
}

/// A program from `tests/c/`.
fn c_program(name: &str) -> Option<Built> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/c")
        .join(format!("{name}.c"));
    compile(name, &source)
}

/// A FIFO path no other test (or test run) uses, removed at the end whatever happened.
struct TempFifo(TempPath);

impl TempFifo {
    fn new() -> TempFifo {
        TempFifo(TempPath::new(".fifo"))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    /// Makes the FIFO, as the C server would, so that a C client can open it.
    fn make(&self) {
        nix::unistd::mkfifo(self.path(), nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    }

    fn spec(&self, options: &str) -> String {
        let sep = if options.is_empty() { "" } else { "?" };
        format!("fifo:{}{sep}{options}", self.path().display())
    }
}

#[test]
fn a_c_client_writes_lines_that_ipc_recv_reads_with_framing_lines() {
    let Some(client) = c_program("fifo_client") else {
        return;
    };
    let fifo = TempFifo::new();
    fifo.make();
    let recv = Running::spawn(
        ipc()
            .args(["recv", &fifo.spec("framing=lines"), "--timeout", "30s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    // The client's open blocks until the receiver has opened the FIFO: no sleep needed.
    let client = Running::spawn(
        Command::new(&*client)
            .arg(fifo.path())
            .args(["hello", "", "two words"])
            .stderr(Stdio::piped()),
    )
    .output();
    assert!(client.status.success(), "client: {}", text(&client.stderr));
    let recv = recv.output();
    assert!(recv.status.success(), "recv: {}", text(&recv.stderr));
    assert_eq!(text(&recv.stdout), "hello\n\ntwo words\n");
}

#[test]
fn lines_into_a_framed_receiver_are_corrupted_with_a_hint_never_lost() {
    let Some(client) = c_program("fifo_client") else {
        return;
    };
    // A long line reads as a huge frame length; `hi` ends the stream inside a header.
    for line in ["hello world", "hi"] {
        let fifo = TempFifo::new();
        fifo.make();
        let recv = Running::spawn(
            ipc()
                .args(["recv", &fifo.spec(""), "--timeout", "30s"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        );
        let client = Running::spawn(Command::new(&*client).arg(fifo.path()).arg(line)).output();
        assert!(client.status.success());
        let recv = recv.output();
        let stderr = text(&recv.stderr);
        assert_eq!(recv.status.code(), Some(1), "{line}: {stderr}");
        assert!(
            stderr.contains("corrupted") && stderr.contains("framing=lines"),
            "{line}: {stderr}"
        );
    }
}

#[test]
fn ipc_send_writes_lines_that_a_c_server_reads() {
    let Some(server) = c_program("fifo_server") else {
        return;
    };
    let fifo = TempFifo::new();
    // The server makes the FIFO; `ipc send` waits for it and its reader (open_timeout).
    let server = Running::spawn(
        Command::new(&*server)
            .arg(fifo.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let send = Running::spawn(
        ipc()
            .args(["send", &fifo.spec("framing=lines&open_timeout=30s")])
            .args(["one", "", "three"])
            .stderr(Stdio::piped()),
    )
    .output();
    assert!(send.status.success(), "send: {}", text(&send.stderr));
    let server = server.output();
    assert!(server.status.success(), "server: {}", text(&server.stderr));
    assert_eq!(text(&server.stdout), "one\n\nthree\n");
}

#[test]
fn a_c_parent_feeds_ipc_recv_on_pipe_fd_0_as_lines_and_raw() {
    let Some(parent) = c_program("pipe_parent") else {
        return;
    };
    let ipc_bin = env!("CARGO_BIN_EXE_ipc");
    // A last line without `\n` is still a line.
    let lines = Running::spawn(
        Command::new(&*parent)
            .args([
                "one\ntwo\n\nlast",
                ipc_bin,
                "recv",
                "pipe:fd=0?framing=lines",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .output();
    assert!(lines.status.success(), "{}", text(&lines.stderr));
    assert_eq!(text(&lines.stdout), "one\ntwo\n\nlast\n");
    // Raw keeps the bytes and their order, not the boundaries: `ipc recv` ends each receive
    // with a newline wherever the reads happened to split the stream.
    let data = "abc".repeat(5000);
    let raw = Running::spawn(
        Command::new(&*parent)
            .args([&data, ipc_bin, "recv", "pipe:fd=0?framing=raw"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .output();
    assert!(raw.status.success(), "{}", text(&raw.stderr));
    assert_eq!(text(&raw.stdout).replace('\n', ""), data);
}

#[test]
fn our_parent_feeds_a_c_child_through_an_inherited_pipe() {
    let Some(reader) = c_program("fd_reader") else {
        return;
    };
    for framing in [Framing::Lines, Framing::Raw] {
        let (mut tx, rx) = channel(&PipeConfig {
            framing,
            ..PipeConfig::default()
        })
        .unwrap();
        let mut cmd = Command::new(&*reader);
        let handed = rx.inherit(&mut cmd).unwrap();
        let Address::Fd(fd) = handed.spec().address else {
            panic!("{}", handed.spec());
        };
        assert!(
            handed
                .spec()
                .to_string()
                .contains(&format!("framing={framing}"))
        );
        cmd.arg(fd.to_string()).stdout(Stdio::piped());
        let child = Running::spawn(&mut cmd);
        drop(handed);
        if framing == Framing::Lines {
            assert!(matches!(
                tx.send(b"two\nlines"),
                Err(Error::InvalidMessage { .. })
            ));
        }
        tx.send(b"alpha").unwrap();
        // Above PIPE_BUF: several writes, still whole and in order.
        let long = vec![b'x'; 60_000];
        tx.send(&long).unwrap();
        tx.send(b"").unwrap();
        drop(tx);
        let out = child.output();
        assert!(out.status.success());
        let expected = match framing {
            Framing::Lines => format!("alpha\n{}\n\n", "x".repeat(60_000)),
            _ => format!("alpha{}", "x".repeat(60_000)),
        };
        assert_eq!(text(&out.stdout), expected, "{framing}");
    }
}

/// The C block of the README that follows the `frames` wire format.
fn readme_frames_reader() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let start = readme
        .find("```c\n/* frames_reader.c")
        .expect("the README's C frames reader")
        + "```c\n".len();
    let len = readme[start..].find("```").expect("end of the C block");
    readme[start..start + len].to_owned()
}

#[test]
fn the_readme_c_reader_reads_what_ipc_send_frames() {
    let source = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("frames_reader-{}.c", std::process::id()));
    std::fs::write(&source, readme_frames_reader()).unwrap();
    let reader = compile("frames_reader", &source);
    let _ = std::fs::remove_file(&source);
    let Some(reader) = reader else {
        return;
    };
    // Short messages, an empty one, and one large enough for the padded header.
    let big = "y".repeat(5000);
    let mut send = Running::spawn(
        ipc()
            .args(["send", "pipe:fd=1", "hello", "", &big, "two words"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let pipe = send.child().stdout.take().unwrap();
    let read = Running::spawn(
        Command::new(&*reader)
            .stdin(pipe)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .output();
    let send = send.output();
    assert!(send.status.success(), "send: {}", text(&send.stderr));
    assert!(read.status.success(), "reader: {}", text(&read.stderr));
    assert_eq!(text(&read.stdout), format!("hello\n\n{big}\ntwo words\n"));
}

/// Message sizes of the `framing=packets` tests: the smallest and the largest packet, and sizes
/// either side of a page. Eight packets take eight pages, half a default pipe, so a writer never
/// waits for the reader.
const PACKET_SIZES: [usize; 8] = [1, 4096, 10, 4095, 64, 4096, 2, 1000];

/// Message `i` of the packet tests, as `packet_writer` writes it: `size` bytes of `'a' + i % 26`.
fn record(i: usize, size: usize) -> String {
    char::from(b'a' + (i % 26) as u8).to_string().repeat(size)
}

/// All the messages of the packet tests, in order.
fn records() -> Vec<String> {
    PACKET_SIZES
        .iter()
        .enumerate()
        .map(|(i, &size)| record(i, size))
        .collect()
}

/// The FIFO's reading end, opened without waiting for a writer. Holding it lets a writer open
/// the FIFO and write everything before the reader under test starts, and keeps what was
/// written after the writer closed (a FIFO drops its contents when nobody has it open).
fn hold_open(fifo: &TempFifo) -> OwnedFd {
    nix::fcntl::open(
        fifo.path(),
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .unwrap()
}

/// Checks that `out` holds `expected`, one message per line: lengths first, so that a failure
/// shows where the boundaries went rather than pages of letters.
fn assert_messages(what: &str, out: &str, expected: &[String]) {
    let got: Vec<&str> = out.lines().collect();
    assert_eq!(
        got.iter().map(|m| m.len()).collect::<Vec<_>>(),
        expected.iter().map(String::len).collect::<Vec<_>>(),
        "{what}: message lengths"
    );
    assert!(
        got == expected,
        "{what}: the lengths match, the bytes do not"
    );
}

/// Runs `tests/c/packet_writer.c` in `mode` (`packets` or `bytes`) to its end: every record of
/// [`PACKET_SIZES`] written into `fifo`, back to back, without waiting for a reader.
fn write_records(writer: &Built, mode: &str, fifo: &TempFifo) {
    let sizes = PACKET_SIZES.map(|size| size.to_string());
    let wrote = Running::spawn(
        Command::new(&**writer)
            .arg(mode)
            .arg(fifo.path())
            .args(&sizes)
            .stderr(Stdio::piped()),
    )
    .output();
    assert!(
        wrote.status.success(),
        "writer {mode}: {}",
        text(&wrote.stderr)
    );
}

/// What `ipc recv fifo:…?framing=packets` prints of the records `packet_writer` wrote in `mode`
/// to the end before the receiver started; `None` without a C compiler.
///
/// The writer finishes before anyone reads, so every record waits in the FIFO at once: only
/// packets keep them apart (in byte mode a read would take several).
fn received_from_c_writer(mode: &str) -> Option<String> {
    let writer = c_program("packet_writer")?;
    let fifo = TempFifo::new();
    fifo.make();
    let held = hold_open(&fifo);
    write_records(&writer, mode, &fifo);
    // Without --count, `ipc recv` exits 0 only at end of stream (3 if the timeout passes).
    let recv = run(ipc().args(["recv", &fifo.spec("framing=packets"), "--timeout", "30s"]));
    drop(held);
    assert!(recv.status.success(), "recv: {}", text(&recv.stderr));
    Some(text(&recv.stdout))
}

#[test]
fn a_c_writer_in_packet_mode_has_each_record_received_apart() {
    let Some(received) = received_from_c_writer("packets") else {
        return;
    };
    assert_messages("ipc recv", &received, &records());
}

#[test]
fn a_writer_not_in_packet_mode_has_its_records_run_together() {
    let Some(received) = received_from_c_writer("bytes") else {
        return;
    };
    // The receiver cannot tell (stream.rs, "`packets`"): each receive is one read of up to
    // 4096 bytes of the stream, and the whole stream is in the FIFO, so every read is full.
    let stream = records().concat();
    let reads: Vec<String> = stream.as_bytes().chunks(4096).map(text).collect();
    assert_messages("ipc recv", &received, &reads);
}

/// Reads standard input as a C loop of `read(fd, buf, 4096)` would, printing what each read
/// got on a line, until end of stream.
const ONE_READ_PER_MESSAGE: &str = "import os, sys
while True:
    got = os.read(0, 4096)
    if not got:
        break
    sys.stdout.write(got.decode() + '\\n')
";

/// `python3` running [`ONE_READ_PER_MESSAGE`] on `stdin`; `None` (and a message) without
/// `python3` on `PATH`.
fn read_per_message(stdin: impl Into<Stdio>) -> Option<Output> {
    let mut cmd = Command::new("python3");
    cmd.args(["-c", ONE_READ_PER_MESSAGE])
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    python3_found().then(|| Running::spawn(&mut cmd).output())
}

#[test]
fn ipc_send_packets_into_a_fifo_are_what_a_reader_gets_one_read_each() {
    let messages = records();
    // The test holds the FIFO open for reading so that `ipc send` can open it, write every
    // message and exit before the reader reads at all: in byte mode a read would take several.
    let fifo = TempFifo::new();
    fifo.make();
    let held = hold_open(&fifo);
    let send = run(ipc()
        .args(["send", &fifo.spec("framing=packets&open_timeout=30s")])
        .args(&messages));
    assert!(send.status.success(), "send: {}", text(&send.stderr));
    // Blocking reads from here: with the sender gone, the last one is end of stream.
    let flags = OFlag::from_bits_truncate(fcntl(&held, FcntlArg::F_GETFL).unwrap());
    fcntl(&held, FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK)).unwrap();
    let Some(read) = read_per_message(held) else {
        return;
    };
    assert!(read.status.success(), "reader: {}", text(&read.stderr));
    assert_messages("fifo", &text(&read.stdout), &messages);
}

#[test]
fn ipc_send_packets_into_a_pipe_are_what_a_reader_gets_one_read_each() {
    let messages = records();
    // `ipc send`'s stdout: it writes every message and exits before the reader gets the pipe.
    let mut send = Running::spawn(
        ipc()
            .args(["send", "pipe:fd=1?framing=packets"])
            .args(&messages)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let pipe = send.child().stdout.take().unwrap();
    let send = send.output();
    assert!(send.status.success(), "send: {}", text(&send.stderr));
    let Some(read) = read_per_message(pipe) else {
        return;
    };
    assert!(read.status.success(), "reader: {}", text(&read.stderr));
    assert_messages("pipe", &text(&read.stdout), &messages);
}

/// Writes `ipc`'s frames (README, "frames") to the FIFO named by its first argument: message `i`
/// of the sizes that follow is that many bytes of `'a' + i % 26`, and each frame goes in one
/// `write`.
const FRAME_WRITER: &str = "import os, struct, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
for i, size in enumerate(int(s) for s in sys.argv[2:]):
    head = 64 if size >= 4092 else 4
    frame = struct.pack('<I', size).ljust(head, b'\\0') + bytes([97 + i % 26]) * size + b'\\xc3'
    os.write(fd, frame)
";

#[test]
fn a_python_writer_of_page_sized_frames_is_read_whole_by_ipc_recv() {
    // With message_size=4096 a frame may exceed a page: the FIFO is sized up and a waiting
    // receive reads all there is, so frames arrive cut anywhere between reads. Both header
    // layouts, a page-sized frame (4091) and one just over (4092); more than the FIFO holds.
    let sizes: Vec<usize> = [4096, 1, 4091, 4092, 4000, 4096].repeat(40);
    if !python3_found() {
        return;
    }
    let fifo = TempFifo::new();
    fifo.make();
    let recv = Running::spawn(
        ipc()
            .args(["recv", &fifo.spec("message_size=4096"), "--timeout", "30s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    // Its output is collected while the writer runs: a megabyte does not fit a pipe.
    let recv = std::thread::spawn(move || recv.output());
    let mut writer = Command::new("python3");
    writer
        .args(["-c", FRAME_WRITER])
        .arg(fifo.path())
        .args(sizes.iter().map(usize::to_string))
        .stderr(Stdio::piped());
    let wrote = Running::spawn(&mut writer).output();
    assert!(wrote.status.success(), "writer: {}", text(&wrote.stderr));
    // Without --count, `ipc recv` exits 0 only at end of stream.
    let recv = recv.join().expect("the receiver's waiter");
    assert!(recv.status.success(), "recv: {}", text(&recv.stderr));
    let expected: Vec<String> = sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| record(i, size))
        .collect();
    assert_messages("ipc recv", &text(&recv.stdout), &expected);
}
