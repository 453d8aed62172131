//! The tokio layer (`ipc::tokio`) across real processes: receives cancelled by a timer lose and
//! duplicate nothing, a killed peer wakes the task that awaits it, a message four times the
//! size of a pipe crosses it in parts, and one dropped half way is never delivered.
//!
//! Peers are this test binary run again (`child_process`, with its role in the environment):
//! a fresh process, as a real peer would be. They use the blocking API; they report on their
//! stdout (`@ready`, `@got …`) and take orders or end of file on their stdin, and the tests
//! synchronise on those lines, never on sleeps. Every wait has a bound.
#![cfg(all(
    feature = "tokio",
    feature = "pipe",
    feature = "fifo",
    feature = "posix",
    feature = "sysv",
    feature = "pod",
    feature = "serde"
))]

use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::task::Poll;
use std::time::{Duration, Instant};

use ipc::posix::PosixName;
use ipc::sysv::Key;
use ipc::tokio::{AsyncPodReceiver, AsyncPodSender, AsyncSerdeReceiver, AsyncSerdeSender};
use ipc::{AsyncReceiver, AsyncSender, Error, Receiver, Sender, Wait};

/// The role of a re-executed test binary (unset: this is the test run itself).
const ROLE: &str = "IPC_TOKIO_TEST_ROLE";
/// The transport string a peer opens.
const SPEC: &str = "IPC_TOKIO_TEST_SPEC";
/// How many messages a `send` peer sends.
const COUNT: &str = "IPC_TOKIO_TEST_COUNT";

/// The longest any single wait of these tests may take before the test fails as hung. Far
/// beyond what a loaded machine needs: it turns a hang into a failure, it measures nothing.
const WATCHDOG: Duration = Duration::from_secs(60);

/// How soon a task awaiting a killed peer must see `Disconnected`. A ring notices a dead peer
/// through its pidfd at once and checks at least every ~35 ms; pipes see the last close at
/// once. Generous for a loaded machine, still far from a hang.
const DEAD_PEER_BOUND: Duration = Duration::from_secs(2);

/// Messages streamed in the cancellation tests, and receive futures that must be dropped
/// mid-wait by the timer before a test may end.
const MESSAGES: u64 = 10_000;
const CANCELLATIONS: u32 = 10_000;

// ---------------------------------------------------------------------------------------------
// Names and guards

/// `ipc-test-tokio-<pid>-<n>`: unique among this process's tests and concurrent test processes.
fn unique_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "ipc-test-tokio-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A System V key of these tests: `0x5a<pid:12 bits><n:12 bits>` (the suite of `ipc-tests`
/// uses `0x5d`), recognisable in `ipcs -q`.
fn unique_key() -> i32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) & 0xfff;
    ((0x5a << 24) | ((std::process::id() & 0xfff) << 12) | n) as i32
}

/// Removes what a test created, even when it fails or its peer was killed holding it.
enum Guard {
    Nothing,
    Shm(PosixName),
    Mq(PosixName),
    Path(PathBuf),
    SysvMq(i32),
}

impl Drop for Guard {
    fn drop(&mut self) {
        // Whoever created the object may have removed it already: NotFound is no failure.
        let result = match self {
            Guard::Nothing => Ok(()),
            Guard::Shm(name) => ipc::posix::shm::unlink(name),
            Guard::Mq(name) => ipc::posix::mq::destroy(name),
            Guard::Path(path) => std::fs::remove_file(&*path).map_err(|e| Error::io("rm", e)),
            Guard::SysvMq(key) => ipc::sysv::msg::destroy(&Key::Explicit(*key)),
        };
        match result {
            Ok(()) | Err(Error::NotFound { .. }) => {}
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => eprintln!("cannot clean up after a test: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Peers

/// A peer process: this test binary, running `child_process` as `role`. Killed when dropped.
struct Peer {
    role: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    _keep: Option<ipc::pipe::Inherited>,
}

/// The command that runs this test binary as a peer in `role`, opening `spec`.
fn peer_command(role: &str, spec: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary"));
    cmd.args([
        "--exact",
        "child_process",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(ROLE, role)
    .env(SPEC, spec)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit());
    cmd
}

impl Peer {
    fn spawn(role: &str, mut cmd: Command) -> Peer {
        let mut child = cmd.spawn().expect("spawn the peer");
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        // A reader thread, so that the test can wait for a line with a deadline. Only the
        // peer's own words (from `@` on) count: the test harness prints its own, and the first
        // word follows the harness's `test child_process ... ` on the same line.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some((_, ours)) = line.split_once('@') {
                    if tx.send(ours.to_owned()).is_err() {
                        break;
                    }
                }
            }
        });
        Peer {
            role: role.to_owned(),
            stdin: child.stdin.take(),
            child,
            lines,
            _keep: None,
        }
    }

    /// The peer's next line, which must start with `prefix`.
    fn expect(&mut self, prefix: &str) -> String {
        match self.lines.recv_timeout(WATCHDOG) {
            Ok(line) if line.starts_with(prefix) => line,
            Ok(line) => panic!("peer {}: expected {prefix:?}, got {line:?}", self.role),
            Err(e) => panic!(
                "peer {}: no {prefix:?} within {WATCHDOG:?} ({e}; exit: {:?})",
                self.role,
                self.child.try_wait()
            ),
        }
    }

    fn tell(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}").expect("tell the peer");
        stdin.flush().expect("tell the peer");
    }

    /// Closes the peer's stdin: the end of its run.
    fn finish(&mut self) {
        self.stdin.take();
    }

    /// `SIGKILL`s the peer and reaps it.
    fn kill(&mut self) {
        self.child.kill().expect("kill the peer");
        self.child.wait().expect("reap the peer");
    }

    /// Waits (bounded) for the peer to end, and checks that it succeeded and said nothing
    /// more.
    fn wait_success(&mut self) {
        // Its stdout closes when it exits: the reader thread's channel says when.
        match self.lines.recv_timeout(WATCHDOG) {
            Err(mpsc::RecvTimeoutError::Disconnected) => {}
            Ok(line) => panic!("peer {}: unexpected line {line:?}", self.role),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("peer {}: still running after {WATCHDOG:?}", self.role)
            }
        }
        let status = self.child.wait().expect("reap the peer");
        assert!(status.success(), "peer {} failed: {status}", self.role);
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The peers' side of every test, chosen by `ROLE`; in the test run itself, nothing.
#[test]
fn child_process() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let spec = std::env::var(SPEC).expect("a spec");
    match role.as_str() {
        // Sends COUNT numbered messages, then holds the sender until told to end.
        "send" => {
            let count: u64 = std::env::var(COUNT).unwrap().parse().unwrap();
            let mut tx = ipc::open_sender(&spec).unwrap();
            println!("@ready");
            for seq in 0..count {
                tx.send(&message(seq)).unwrap();
                // Pacing, not synchronisation: bursts of three messages and gaps longer than
                // the receiver's timer, so that its receives are cancelled mid-wait all along
                // the stream. Nothing depends on their length.
                if seq % 3 == 2 {
                    std::thread::sleep(Duration::from_millis(3));
                }
            }
            println!("@sent");
            wait_for_eof();
        }
        // Holds a sender (or a receiver, which creates the object) until killed or told to end.
        "hold-send" => {
            let _tx = ipc::open_sender(&spec).unwrap();
            println!("@ready");
            wait_for_eof();
        }
        "hold-recv" => {
            let _rx = ipc::open_receiver(&spec).unwrap();
            println!("@ready");
            wait_for_eof();
        }
        // Receives only once told `go`, reporting each message, until the sender is gone.
        "slow-recv" => {
            let mut rx = ipc::open_receiver(&spec).unwrap();
            println!("@ready");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).unwrap();
            assert_eq!(line.trim(), "go");
            let mut buf = vec![0; rx.max_message_size()];
            loop {
                match rx.recv(&mut buf) {
                    Ok(n) => println!("@got {n} {:016x}", fnv(&buf[..n])),
                    Err(Error::Disconnected) => break,
                    Err(e) => panic!("slow-recv: {e}"),
                }
            }
            println!("@eof");
        }
        other => panic!("unknown role {other}"),
    }
}

fn wait_for_eof() {
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
}

// ---------------------------------------------------------------------------------------------
// Messages

/// Message `seq`: its number, then a pattern of a length that varies with it.
fn message(seq: u64) -> Vec<u8> {
    let len = (seq * 37 % 200) as usize;
    let mut msg = seq.to_le_bytes().to_vec();
    msg.extend((0..len).map(|i| (seq as u8).wrapping_add(i as u8)));
    msg
}

/// Checks that `got` is message `seq`, whole.
fn check(got: &[u8], seq: u64) {
    let number = u64::from_le_bytes(got[..8].try_into().expect("8 bytes at least"));
    assert_eq!(
        number, seq,
        "message {number} where {seq} was due (lost or duplicated)"
    );
    assert_eq!(got, message(seq), "message {seq} damaged");
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Polls `fut` once: `Some` if it completed, `None` if it is now waiting.
async fn poll_once<F: Future + Unpin>(fut: &mut F) -> Option<F::Output> {
    std::future::poll_fn(|cx| match Pin::new(&mut *fut).poll(cx) {
        Poll::Ready(v) => Poll::Ready(Some(v)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Transports

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    PosixShm,
    Pipe,
    Fifo,
    PosixMq,
    SysvMq,
}

impl Kind {
    /// Whether the receiver sees the sender's end (queues are connectionless: they keep
    /// messages for a sender to come).
    fn connected(self) -> bool {
        !matches!(self, Kind::PosixMq | Kind::SysvMq)
    }
}

/// A receiver in this process and, in a peer process running `role`, its sender.
fn receiver_with_peer(kind: Kind, role: &str, count: u64) -> (AsyncReceiver, Peer, Guard) {
    let name = unique_name();
    let (spec, guard) = match kind {
        Kind::PosixShm => (
            format!("posix-shm:/{name}?capacity=16KiB"),
            Guard::Shm(PosixName::new(&format!("/{name}")).unwrap()),
        ),
        Kind::Fifo => {
            let path = PathBuf::from(format!("/tmp/{name}.fifo"));
            (format!("fifo:{}", path.display()), Guard::Path(path))
        }
        Kind::PosixMq => (
            format!("posix-mq:/{name}?capacity=8&message_size=256"),
            Guard::Mq(PosixName::new(&format!("/{name}")).unwrap()),
        ),
        Kind::SysvMq => {
            let key = unique_key();
            (
                format!("sysv-mq:key={:#x}?message_size=256", key as u32),
                Guard::SysvMq(key),
            )
        }
        Kind::Pipe => {
            let (tx, rx) = ipc::pipe::channel(&ipc::pipe::PipeConfig::default()).unwrap();
            let mut cmd = peer_command(role, "");
            let inherited = tx.inherit(&mut cmd).unwrap();
            cmd.env(SPEC, inherited.spec().to_string())
                .env(COUNT, count.to_string());
            let mut peer = Peer::spawn(role, cmd);
            // Only the peer may hold the sending end, or its death would go unseen.
            drop(inherited);
            peer.expect("ready");
            let rx = AsyncReceiver::new(Box::new(rx) as Box<dyn Receiver>).unwrap();
            return (rx, peer, Guard::Nothing);
        }
    };
    let rx = ipc::open_receiver(&spec).unwrap();
    let rx = AsyncReceiver::new(rx).unwrap();
    let mut cmd = peer_command(role, &spec);
    cmd.env(COUNT, count.to_string());
    let mut peer = Peer::spawn(role, cmd);
    peer.expect("ready");
    (rx, peer, guard)
}

// ---------------------------------------------------------------------------------------------
// (a) Cancelled receives

/// Receives a stream of MESSAGES from a peer process, each `recv` raced in `tokio::select!`
/// against a short timer, until CANCELLATIONS receive futures were dropped mid-wait: every
/// message must arrive once, whole, in order.
async fn cancelled_receives_lose_nothing(kind: Kind) {
    let (mut rx, mut peer, _guard) = receiver_with_peer(kind, "send", MESSAGES);
    let mut buf = vec![0; rx.max_message_size()];
    let mut next = 0;
    let mut cancelled = 0;
    let started = Instant::now();
    while next < MESSAGES || cancelled < CANCELLATIONS {
        assert!(
            started.elapsed() < WATCHDOG * 2,
            "{kind:?}: {next} messages and {cancelled} cancellations after {:?}",
            started.elapsed()
        );
        // `biased`: the receive is polled first, so the timer only ever drops a future that
        // has tried, armed its endpoint and is waiting.
        tokio::select! {
            biased;
            got = rx.recv(&mut buf) => {
                let n = got.unwrap_or_else(|e| panic!("{kind:?}: message {next}: {e}"));
                check(&buf[..n], next);
                next += 1;
                if next == MESSAGES {
                    eprintln!("{kind:?}: {MESSAGES} messages, {cancelled} receives cancelled meanwhile");
                }
            }
            () = tokio::time::sleep(Duration::from_micros(200)) => cancelled += 1,
        }
    }
    peer.expect("sent");
    peer.finish();
    if kind.connected() {
        // Nothing more than the stream, then the end of the sender.
        let end = tokio::time::timeout(WATCHDOG, rx.recv(&mut buf))
            .await
            .expect("the sender's end is seen");
        assert!(matches!(end, Err(Error::Disconnected)), "{kind:?}: {end:?}");
    } else {
        assert!(matches!(rx.get_mut().try_recv(&mut buf), Err(Error::Empty)));
    }
    peer.wait_success();
}

/// All transports at once, in one runtime: each stream spends most of its time waiting for
/// its timer (a millisecond or so per cancellation), so running them side by side costs the
/// time of one.
#[tokio::test]
async fn cancelled_receives_lose_nothing_on_every_transport() {
    tokio::join!(
        cancelled_receives_lose_nothing(Kind::PosixShm),
        cancelled_receives_lose_nothing(Kind::Pipe),
        cancelled_receives_lose_nothing(Kind::Fifo),
        cancelled_receives_lose_nothing(Kind::PosixMq),
        cancelled_receives_lose_nothing(Kind::SysvMq),
    );
}

// ---------------------------------------------------------------------------------------------
// (b) Killed peers

/// A task awaits `recv`; its sender's process is SIGKILLed: `Disconnected`, soon.
async fn killed_sender_wakes_the_receiver(kind: Kind) {
    let (mut rx, mut peer, _guard) = receiver_with_peer(kind, "hold-send", 0);
    let mut buf = vec![0; rx.max_message_size()];
    let mut recv = Box::pin(rx.recv(&mut buf));
    assert!(
        poll_once(&mut recv).await.is_none(),
        "{kind:?}: nothing was sent"
    );
    let killed = Instant::now();
    peer.kill();
    let end = tokio::time::timeout(WATCHDOG, recv)
        .await
        .expect("the receiver wakes");
    let took = killed.elapsed();
    eprintln!("{kind:?}: {end:?} {took:?} after the kill");
    assert!(matches!(end, Err(Error::Disconnected)), "{kind:?}: {end:?}");
    assert!(took < DEAD_PEER_BOUND, "{kind:?}: took {took:?}");
}

#[tokio::test]
async fn posix_shm_killed_sender_wakes_the_receiver() {
    killed_sender_wakes_the_receiver(Kind::PosixShm).await;
}

#[tokio::test]
async fn pipe_killed_sender_wakes_the_receiver() {
    killed_sender_wakes_the_receiver(Kind::Pipe).await;
}

#[tokio::test]
async fn fifo_killed_sender_wakes_the_receiver() {
    killed_sender_wakes_the_receiver(Kind::Fifo).await;
}

/// A sender in this process and, in a peer process running `role`, its receiver (which
/// creates the object).
fn sender_with_peer(kind: Kind, role: &str, spec_query: &str) -> (AsyncSender, Peer, Guard) {
    let name = unique_name();
    let (spec, guard) = match kind {
        Kind::PosixShm => (
            format!("posix-shm:/{name}{spec_query}"),
            Guard::Shm(PosixName::new(&format!("/{name}")).unwrap()),
        ),
        Kind::Fifo => {
            let path = PathBuf::from(format!("/tmp/{name}.fifo"));
            (
                format!("fifo:{}{spec_query}", path.display()),
                Guard::Path(path),
            )
        }
        Kind::Pipe => {
            let config = ipc::pipe::PipeConfig::from_options(
                &format!("pipe:fd=0{spec_query}")
                    .parse::<ipc::TransportSpec>()
                    .unwrap()
                    .options,
            )
            .unwrap();
            let (tx, rx) = ipc::pipe::channel(&config).unwrap();
            let mut cmd = peer_command(role, "");
            let inherited = rx.inherit(&mut cmd).unwrap();
            cmd.env(SPEC, inherited.spec().to_string());
            let mut peer = Peer::spawn(role, cmd);
            // Only the peer may hold the receiving end, or its death would go unseen.
            drop(inherited);
            peer.expect("ready");
            let tx = AsyncSender::new(Box::new(tx) as Box<dyn Sender>).unwrap();
            return (tx, peer, Guard::Nothing);
        }
        other => unimplemented!("{other:?}"),
    };
    let mut peer = Peer::spawn(role, peer_command(role, &spec));
    peer.expect("ready");
    let tx = AsyncSender::new(ipc::open_sender(&spec).unwrap()).unwrap();
    (tx, peer, guard)
}

/// A task awaits room on a full transport; its receiver's process is SIGKILLed:
/// `Disconnected`, soon.
async fn killed_receiver_wakes_the_sender(kind: Kind, spec_query: &str) {
    let (mut tx, mut peer, _guard) = sender_with_peer(kind, "hold-recv", spec_query);
    let msg = vec![7u8; 1024];
    let mut sent = 0;
    loop {
        match tx.get_mut().try_send(&msg) {
            Ok(()) => sent += 1,
            Err(Error::Full) => break,
            Err(e) => panic!("{kind:?}: filling: {e}"),
        }
        assert!(sent < 1 << 20, "{kind:?}: never full");
    }
    let mut send = Box::pin(tx.send(&msg));
    assert!(poll_once(&mut send).await.is_none(), "{kind:?}: full");
    let killed = Instant::now();
    peer.kill();
    let end = tokio::time::timeout(WATCHDOG, send)
        .await
        .expect("the sender wakes");
    let took = killed.elapsed();
    eprintln!("{kind:?}: {end:?} {took:?} after the kill");
    assert!(matches!(end, Err(Error::Disconnected)), "{kind:?}: {end:?}");
    assert!(took < DEAD_PEER_BOUND, "{kind:?}: took {took:?}");
}

#[tokio::test]
async fn posix_shm_killed_receiver_wakes_the_sender() {
    killed_receiver_wakes_the_sender(Kind::PosixShm, "?capacity=16KiB").await;
}

/// A full pipe whose reader is gone never has room again and reports only `EPOLLERR`: the
/// waiting sender must wake on that alone.
#[tokio::test]
async fn pipe_killed_receiver_wakes_the_sender() {
    killed_receiver_wakes_the_sender(Kind::Pipe, "?capacity=64KiB").await;
}

#[tokio::test]
async fn fifo_killed_receiver_wakes_the_sender() {
    killed_receiver_wakes_the_sender(Kind::Fifo, "?capacity=64KiB").await;
}

// ---------------------------------------------------------------------------------------------
// (c) Messages larger than the pipe

/// Pipe capacity and message size of these tests: a message is four pipes long.
const PIPE_CAPACITY: usize = 64 * 1024;
const BIG: usize = 4 * PIPE_CAPACITY;

fn big_message() -> Vec<u8> {
    (0..BIG).map(|i| (i % 251) as u8).collect()
}

/// A sender here, a `slow-recv` peer that starts reading only once the sender is waiting for
/// room in the middle of a message.
fn sender_with_slow_reader(kind: Kind) -> (AsyncSender, Peer, Guard) {
    sender_with_peer(
        kind,
        "slow-recv",
        &format!("?capacity={PIPE_CAPACITY}&message_size={BIG}"),
    )
}

/// A message of four pipes crosses in parts, as the reader drains the pipe; the framing stays
/// in step for the next one.
async fn large_message_crosses_in_parts(kind: Kind) {
    let (mut tx, mut peer, _guard) = sender_with_slow_reader(kind);
    let big = big_message();
    {
        let mut send = Box::pin(tx.send(&big));
        assert!(
            poll_once(&mut send).await.is_none(),
            "{kind:?}: the pipe holds a quarter of it"
        );
        peer.tell("go");
        tokio::time::timeout(WATCHDOG, send)
            .await
            .expect("the reader drains the pipe")
            .unwrap();
    }
    tx.send(b"after").await.unwrap();
    drop(tx);
    assert_eq!(peer.expect("got"), format!("got {BIG} {:016x}", fnv(&big)));
    assert_eq!(peer.expect("got"), format!("got 5 {:016x}", fnv(b"after")));
    peer.expect("eof");
    peer.wait_success();
}

#[tokio::test]
async fn pipe_large_message_crosses_in_parts() {
    large_message_crosses_in_parts(Kind::Pipe).await;
}

#[tokio::test]
async fn fifo_large_message_crosses_in_parts() {
    large_message_crosses_in_parts(Kind::Fifo).await;
}

/// A send dropped with a quarter of a large message in the pipe: the next send aborts that
/// part, and the reader gets the next message only, never a torn one.
async fn dropped_send_is_never_delivered_torn(kind: Kind) {
    let (mut tx, mut peer, _guard) = sender_with_slow_reader(kind);
    let big = big_message();
    {
        let mut send = Box::pin(tx.send(&big));
        assert!(
            poll_once(&mut send).await.is_none(),
            "{kind:?}: the pipe holds a quarter of it"
        );
    }
    peer.tell("go");
    tokio::time::timeout(WATCHDOG, tx.send(b"after"))
        .await
        .expect("the reader drains the pipe")
        .unwrap();
    drop(tx);
    assert_eq!(peer.expect("got"), format!("got 5 {:016x}", fnv(b"after")));
    peer.expect("eof");
    peer.wait_success();
}

#[tokio::test]
async fn pipe_dropped_send_is_never_delivered_torn() {
    dropped_send_is_never_delivered_torn(Kind::Pipe).await;
}

#[tokio::test]
async fn fifo_dropped_send_is_never_delivered_torn() {
    dropped_send_is_never_delivered_torn(Kind::Fifo).await;
}

/// Opening a FIFO sender waits for a reader; `open_async_sender` waits on the blocking pool,
/// so the reactor (here one thread) goes on and opens the reader meanwhile.
#[tokio::test]
async fn fifo_sender_opens_while_the_reactor_runs() {
    let path = PathBuf::from(format!("/tmp/{}.fifo", unique_name()));
    let _guard = Guard::Path(path.clone());
    let spec = format!("fifo:{}?create=if_missing", path.display());
    let (tx, rx) = tokio::time::timeout(WATCHDOG, async {
        tokio::join!(ipc::open_async_sender(&spec), async {
            // Opened only once the sender is already waiting for a reader.
            tokio::task::yield_now().await;
            ipc::open_async_receiver(&spec).await
        })
    })
    .await
    .expect("bounded");
    let (mut tx, mut rx) = (tx.unwrap(), rx.unwrap());
    tx.send(b"hello").await.unwrap();
    let mut buf = vec![0; rx.max_message_size()];
    let n = tokio::time::timeout(WATCHDOG, rx.recv(&mut buf))
        .await
        .expect("bounded")
        .unwrap();
    assert_eq!(&buf[..n], b"hello");
}

// ---------------------------------------------------------------------------------------------
// In this process

/// The futures are `Send` (a boxed endpoint is), so a multi-threaded runtime can move them:
/// `tokio::spawn` takes them.
#[tokio::test]
async fn futures_can_be_spawned() {
    let name = unique_name();
    let _guard = Guard::Shm(PosixName::new(&format!("/{name}")).unwrap());
    let spec = format!("posix-shm:/{name}?capacity=4KiB");
    let mut rx = ipc::open_async_receiver(&spec).await.unwrap();
    let mut tx = ipc::open_async_sender(&spec).await.unwrap();
    let receiving = tokio::spawn(async move {
        let mut buf = vec![0; rx.max_message_size()];
        let n = rx.recv(&mut buf).await.unwrap();
        buf.truncate(n);
        buf
    });
    let sending = tokio::spawn(async move { tx.send(b"moved").await });
    let (got, sent) = tokio::time::timeout(WATCHDOG, async { tokio::join!(receiving, sending) })
        .await
        .expect("bounded");
    sent.unwrap().unwrap();
    assert_eq!(got.unwrap(), b"moved");
}

/// A receiver with no readiness cannot be awaited: a clear error, not a hang.
#[tokio::test]
async fn endpoint_without_readiness_is_refused() {
    struct Plain;
    impl Receiver for Plain {
        fn max_message_size(&self) -> usize {
            8
        }
        fn recv_with(&mut self, _: &mut [u8], _: Wait) -> ipc::Result<usize> {
            Err(Error::Empty)
        }
    }
    let err = AsyncReceiver::new(Plain).unwrap_err();
    assert!(matches!(err, Error::Incompatible { .. }), "{err}");
    assert!(err.to_string().contains("readiness"), "{err}");
}

/// A full transport: a send awaits room, which a receive awaited alongside makes.
async fn send_awaits_room_that_a_receive_makes(kind: Kind) {
    let name = unique_name();
    let (spec, _guard) = match kind {
        Kind::PosixShm => (
            format!("posix-shm:/{name}?capacity=4KiB"),
            Guard::Shm(PosixName::new(&format!("/{name}")).unwrap()),
        ),
        Kind::Fifo => {
            let path = PathBuf::from(format!("/tmp/{name}.fifo"));
            (
                format!("fifo:{}?capacity=4KiB&message_size=256", path.display()),
                Guard::Path(path),
            )
        }
        Kind::PosixMq => (
            format!("posix-mq:/{name}?capacity=4&message_size=256"),
            Guard::Mq(PosixName::new(&format!("/{name}")).unwrap()),
        ),
        Kind::SysvMq => {
            let key = unique_key();
            (
                format!("sysv-mq:key={:#x}?capacity=4&message_size=256", key as u32),
                Guard::SysvMq(key),
            )
        }
        Kind::Pipe => unimplemented!("a pipe is not opened by name"),
    };
    let mut rx = ipc::open_async_receiver(&spec).await.unwrap();
    let mut tx = ipc::open_async_sender(&spec).await.unwrap();
    let msg = [1u8; 256];
    let mut sent = 0usize;
    while tx.get_mut().try_send(&msg).is_ok() {
        sent += 1;
    }
    assert!(sent > 0, "{kind:?}");
    let mut buf = vec![0; rx.max_message_size()];
    let (sent_more, received) = tokio::time::timeout(WATCHDOG, async {
        tokio::join!(tx.send(&[2u8; 256]), async {
            let mut got = Vec::new();
            for _ in 0..=sent {
                let n = rx.recv(&mut buf).await.unwrap();
                got.push(buf[..n].to_vec());
            }
            got
        })
    })
    .await
    .unwrap_or_else(|_| panic!("{kind:?}: the send never got room"));
    sent_more.unwrap();
    assert_eq!(received.len(), sent + 1, "{kind:?}");
    assert!(received[..sent].iter().all(|m| m[..] == msg), "{kind:?}");
    assert_eq!(received[sent], [2u8; 256], "{kind:?}");
}

#[tokio::test]
async fn send_awaits_room_on_every_named_transport() {
    for kind in [Kind::PosixShm, Kind::Fifo, Kind::PosixMq, Kind::SysvMq] {
        send_awaits_room_that_a_receive_makes(kind).await;
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
struct Tick {
    seq: u64,
    price: f64,
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Order {
    id: u32,
    symbol: String,
}

/// The typed wrappers, over a ring, both ways of encoding.
#[tokio::test]
async fn typed_values_cross_a_ring() {
    let name = unique_name();
    let _guard = Guard::Shm(PosixName::new(&format!("/{name}")).unwrap());
    let spec = format!("posix-shm:/{name}?capacity=16KiB");
    let rx = ipc::open_receiver(&spec).unwrap();
    let tx = ipc::open_sender(&spec).unwrap();
    let mut rx = AsyncPodReceiver::<Tick>::new(rx).unwrap();
    let mut tx = AsyncPodSender::<Tick>::new(tx).unwrap();
    let receiving = async {
        let mut got = Vec::new();
        for _ in 0..100 {
            got.push(rx.recv().await.unwrap());
        }
        got
    };
    let sending = async {
        for seq in 0..100 {
            tx.send(&Tick {
                seq,
                price: seq as f64 / 4.0,
            })
            .await
            .unwrap();
        }
    };
    let (got, ()) = tokio::time::timeout(WATCHDOG, async { tokio::join!(receiving, sending) })
        .await
        .expect("bounded");
    assert!(got.iter().enumerate().all(|(i, t)| t.seq == i as u64));

    // The same endpoints, unwrapped and wrapped again for serde.
    let mut rx = AsyncSerdeReceiver::<Order>::new(rx.into_inner()).unwrap();
    let mut tx = AsyncSerdeSender::<Order>::new(tx.into_inner().into_inner()).unwrap();
    let order = Order {
        id: 7,
        symbol: "ACME".into(),
    };
    tx.send(&order).await.unwrap();
    let got = tokio::time::timeout(WATCHDOG, rx.recv())
        .await
        .expect("bounded")
        .unwrap();
    assert_eq!(got, order);
    // A message that is no `Order` is Corrupted, and consumed.
    tx.get_mut().send(&[0xff; 3]).await.unwrap();
    tx.send(&order).await.unwrap();
    assert!(matches!(rx.recv().await, Err(Error::Corrupted { .. })));
    assert_eq!(rx.recv().await.unwrap(), order);
}

/// An endpoint that always says "retry now" and never has a message: what a misbehaving
/// transport could do.
struct AlwaysRetry(std::os::unix::net::UnixDatagram);

impl Receiver for AlwaysRetry {
    fn max_message_size(&self) -> usize {
        1
    }
    fn recv_with(&mut self, _buf: &mut [u8], wait: Wait) -> ipc::Result<usize> {
        Err(wait.empty_error())
    }
    fn readiness(&mut self) -> Option<&mut dyn ipc::Readiness> {
        Some(self)
    }
}

impl ipc::Readiness for AlwaysRetry {
    fn ready_fd(&mut self) -> ipc::Result<(std::os::fd::BorrowedFd<'_>, ipc::Interest)> {
        use std::os::fd::AsFd;
        Ok((self.0.as_fd(), ipc::Interest::Readable))
    }
    fn prepare_wait(&mut self) -> ipc::Result<bool> {
        Ok(true)
    }
    fn after_wake(&mut self) {}
}

/// A `recv` that never gets to await its descriptor must still let tokio run its timers: the
/// timeout fires instead of the task spinning forever inside one poll. Run on a thread of its
/// own, so that a regression fails the test instead of hanging it.
#[test]
fn an_endpoint_that_always_says_retry_cannot_starve_the_runtime() {
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let timed_out = rt.block_on(async {
            let (a, _b) = std::os::unix::net::UnixDatagram::pair().unwrap();
            let mut rx = AsyncReceiver::new(AlwaysRetry(a)).unwrap();
            let mut buf = [0u8; 1];
            tokio::time::timeout(Duration::from_millis(20), rx.recv(&mut buf))
                .await
                .is_err()
        });
        let _ = done.send(timed_out);
    });
    let timed_out = finished
        .recv_timeout(Duration::from_secs(10))
        .expect("the runtime was starved: the timeout never fired");
    assert!(timed_out);
}
