//! Real peer processes for the cross-process tests, and the watchdogs that keep every test
//! bounded: a peer is killed when its guard drops, every wait on it has a deadline, and a
//! blocking call under test runs where a watchdog can give up on it.
//!
//! Peers are the `ipc-test-peer` binary of this crate (or another crate's binary with the same
//! body, [`peer::main`](crate::peer::main)), a fresh program (spawned with exec, as real users
//! of the library would do it), not a fork of the test process. A peer talks to
//! the test on two channels besides the transport under test: it writes progress lines
//! (`ready`, `ok ...`) on its stdout, and it reads commands (`go`) or end of file on its stdin.
//! The test synchronises on those, never on sleeps.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ipc::{Receiver, Sender, Wait};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::Cleanup;

/// How long anything may take before the test is declared hung. Generous: the point is to
/// fail instead of hanging, not to measure speed.
pub const WATCHDOG: Duration = Duration::from_secs(30);

/// Environment variable through which a peer receives its transport string.
pub const SPEC_ENV: &str = "IPC_TEST_SPEC";

/// Runs `f` on its own thread and returns its result, or panics if it takes longer than
/// `limit`: a blocking call under test that never returns fails the test instead of hanging
/// it. The stuck thread is abandoned (it holds only what `f` owns).
///
/// For a job whose length depends on the machine's speed (a stream of many messages), use
/// [`bounded_progress`]: a fixed limit on the whole fails it on a busy machine.
pub fn bounded<T: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (rx, handle) = run_on_thread(what, f);
    match rx.recv_timeout(limit) {
        Ok(v) => {
            let _ = handle.join();
            v
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("{what}: still blocked after {limit:?}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => rethrow(handle),
    }
}

/// Steps of work done by a job under [`bounded_progress`] (one per message sent or received),
/// counted as it goes; clones share the count.
#[derive(Debug, Clone, Default)]
pub struct Progress(Arc<AtomicU64>);

impl Progress {
    /// A count at zero.
    pub fn new() -> Progress {
        Progress::default()
    }

    /// One more step done.
    pub fn step(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Steps done so far.
    pub fn steps(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The longest a job under [`bounded_progress`] may run in all, however steady its progress: a
/// backstop so that a run always ends, far beyond what the slowest machine needs. Not a speed
/// check.
pub const BACKSTOP: Duration = Duration::from_secs(600);

/// [`bounded`] for a job whose length depends on the machine's speed, such as sending or
/// receiving a stream of thousands of messages (seconds of CPU in a debug build, several times
/// that on a loaded machine). Waits for the job's result, and fails if `progress` (which the job
/// steps) stands still for `stall`: a job that makes no progress at all is stuck, one that makes
/// some is merely slow. Also fails after [`BACKSTOP`] in all.
pub fn bounded_progress<T: Send + 'static>(
    what: &str,
    stall: Duration,
    progress: &Progress,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let started = Instant::now();
    let (rx, handle) = run_on_thread(what, f);
    let mut seen = progress.steps();
    loop {
        match rx.recv_timeout(stall) {
            Ok(v) => {
                let _ = handle.join();
                return v;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let now = progress.steps();
                assert!(
                    now != seen,
                    "{what}: stuck after {now} steps: no progress in {stall:?} ({:?} in all)",
                    started.elapsed()
                );
                assert!(
                    started.elapsed() < BACKSTOP,
                    "{what}: still running after {:?} ({now} steps)",
                    started.elapsed()
                );
                seen = now;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => rethrow(handle),
        }
    }
}

/// Runs `f` on a thread named after `what`; its result arrives on the channel.
fn run_on_thread<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> (mpsc::Receiver<T>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let handle = thread::Builder::new()
        .name(format!("bounded: {what}"))
        .spawn(move || {
            // If the receiving side gave up, nobody wants the result.
            let _ = tx.send(f());
        })
        .expect("spawn watchdog thread");
    (rx, handle)
}

/// The thread of [`run_on_thread`] ended without sending: `f` panicked. Re-raises its panic
/// here, with its message.
fn rethrow(handle: JoinHandle<()>) -> ! {
    match handle.join() {
        Err(payload) => std::panic::resume_unwind(payload),
        Ok(()) => unreachable!("the thread sends before it ends"),
    }
}

/// Stands in for an end while a watched call runs on it elsewhere.
struct Lent;

impl Sender for Lent {
    fn max_message_size(&self) -> usize {
        0
    }
    fn send_with(&mut self, _: &[u8], _: Wait) -> ipc::Result<()> {
        unreachable!("used while lent to a watched call")
    }
}

impl Receiver for Lent {
    fn max_message_size(&self) -> usize {
        0
    }
    fn recv_with(&mut self, _: &mut [u8], _: Wait) -> ipc::Result<usize> {
        unreachable!("used while lent to a watched call")
    }
}

/// Runs `f` on `tx` under [`bounded`] (limit [`WATCHDOG`]) and puts `tx` back: a blocking call
/// that never returns fails the test instead of hanging it, without testing the `_timeout`
/// forms on the way.
pub fn watch_tx<T: Send + 'static>(
    tx: &mut Box<dyn Sender>,
    what: &str,
    f: impl FnOnce(&mut dyn Sender) -> T + Send + 'static,
) -> T {
    let lent = std::mem::replace(tx, Box::new(Lent));
    let (back, out) = bounded(what, WATCHDOG, move || {
        let mut lent = lent;
        let out = f(&mut *lent);
        (lent, out)
    });
    *tx = back;
    out
}

/// [`watch_tx`] for a receiver.
pub fn watch_rx<T: Send + 'static>(
    rx: &mut Box<dyn Receiver>,
    what: &str,
    f: impl FnOnce(&mut dyn Receiver) -> T + Send + 'static,
) -> T {
    let lent = std::mem::replace(rx, Box::new(Lent));
    let (back, out) = bounded(what, WATCHDOG, move || {
        let mut lent = lent;
        let out = f(&mut *lent);
        (lent, out)
    });
    *rx = back;
    out
}

/// One blocking `recv` under the watchdog; the message, or the error.
pub fn recv_one(rx: &mut Box<dyn Receiver>) -> ipc::Result<Vec<u8>> {
    watch_rx(rx, "recv", |rx| {
        let mut buf = vec![0; rx.max_message_size()];
        rx.recv(&mut buf).map(|n| {
            buf.truncate(n);
            buf
        })
    })
}

/// One blocking `send` under the watchdog.
pub fn send_one(tx: &mut Box<dyn Sender>, msg: &[u8]) -> ipc::Result<()> {
    let msg = msg.to_vec();
    watch_tx(tx, "send", move |tx| tx.send(&msg))
}

/// One thread, seen through the kernel's view of it in `/proc`: whether it is asleep in
/// `nanosleep(2)`, and how many times it has blocked. This is how a test synchronises with a
/// thread that waits by polling with back-off sleeps (a sender waiting for its segment to
/// appear, an opener waiting for a creator) without sleeping itself.
#[derive(Debug)]
pub struct ProcThread {
    dir: String,
}

impl ProcThread {
    /// The main thread of a peer.
    pub fn of_peer(peer: &Peer) -> ProcThread {
        let pid = peer.pid();
        ProcThread {
            dir: format!("/proc/{pid}/task/{pid}"),
        }
    }

    /// Thread `tid` of this process (from `gettid`).
    pub fn of_tid(tid: i32) -> ProcThread {
        ProcThread {
            dir: format!("/proc/self/task/{tid}"),
        }
    }

    /// Whether the thread is blocked in `nanosleep` or `clock_nanosleep` now.
    pub fn sleeping(&self) -> bool {
        self.blocked_in(&[libc::SYS_nanosleep, libc::SYS_clock_nanosleep])
    }

    /// Whether the thread is blocked in `poll` or `ppoll` now: how an endpoint in an
    /// `ipc::WaitSet` waits.
    pub fn polling(&self) -> bool {
        self.blocked_in(&[libc::SYS_poll, libc::SYS_ppoll])
    }

    /// Whether the thread is blocked in one of the system calls `nrs` now (the first field of
    /// its `syscall` file is the number of the call it is blocked in).
    pub fn blocked_in(&self, nrs: &[i64]) -> bool {
        self.syscall().is_some_and(|nr| nrs.contains(&nr))
    }

    /// The number of the system call the thread is blocked in now (`None` while it runs in
    /// user space, or once it is gone).
    pub fn syscall(&self) -> Option<i64> {
        std::fs::read_to_string(format!("{}/syscall", self.dir))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse::<i64>().ok())
    }

    /// How many times the thread has blocked so far (`voluntary_ctxt_switches`); 0 once it
    /// is gone.
    pub fn blocks(&self) -> u64 {
        std::fs::read_to_string(format!("{}/status", self.dir))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                    .and_then(|n| n.trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// CPU time the thread has used so far (user and system, from its `stat` file, in clock
    /// ticks of `sysconf(_SC_CLK_TCK)`); zero once it is gone.
    pub fn cpu_time(&self) -> Duration {
        let ticks = std::fs::read_to_string(format!("{}/stat", self.dir))
            .ok()
            .and_then(|s| {
                // Fields after the command name (which may hold spaces), from field 3 on:
                // utime and stime are fields 14 and 15.
                let rest = s.rsplit_once(')')?.1;
                let mut fields = rest.split_whitespace().skip(11);
                let utime: u64 = fields.next()?.parse().ok()?;
                let stime: u64 = fields.next()?.parse().ok()?;
                Some(utime + stime)
            })
            .unwrap_or(0);
        let per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
            .ok()
            .flatten()
            .and_then(|t| u64::try_from(t).ok())
            .filter(|&t| t > 0)
            .unwrap_or(100);
        Duration::from_nanos(ticks.saturating_mul(1_000_000_000) / per_second)
    }

    /// Waits until `done` holds of the thread, polling its `/proc` files; panics naming
    /// `what` after [`WATCHDOG`].
    pub fn until(&self, what: &str, done: impl Fn(&ProcThread) -> bool) {
        let deadline = Instant::now() + WATCHDOG;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "{what}: not seen within {WATCHDOG:?} ({})",
                self.dir
            );
            // Polling the kernel's view of the thread, not synchronising with it.
            thread::sleep(Duration::from_millis(1));
        }
    }
}

/// The peer binary `exe` started in `role` with `args`, opening the transport `spec`.
pub fn spawn_peer_on(exe: &Path, role: &str, args: &[&str], spec: &str) -> Peer {
    let mut cmd = peer_command(exe, role, args);
    cmd.env(SPEC_ENV, spec);
    Peer::spawn(cmd).expect("spawn the peer")
}

/// A command running the peer binary `exe` in `role` with `args`.
pub fn peer_command(exe: &Path, role: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(exe);
    cmd.arg(role)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// A peer program: its path, and the arguments that come before the role (a binary that
/// carries the peer roles as a subcommand of its own, such as `ipc-stress peer`, re-executes
/// itself).
#[derive(Clone, Debug)]
pub struct PeerExe {
    path: std::path::PathBuf,
    prefix: Vec<String>,
}

impl PeerExe {
    /// The program at `path`, taking the role as its first argument.
    pub fn new(path: impl Into<std::path::PathBuf>) -> PeerExe {
        PeerExe {
            path: path.into(),
            prefix: Vec::new(),
        }
    }

    /// The program at `path`, taking `prefix` before the role.
    pub fn with_prefix(path: impl Into<std::path::PathBuf>, prefix: &[&str]) -> PeerExe {
        PeerExe {
            path: path.into(),
            prefix: prefix.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// A command running `role` with `args`, its standard streams piped (see [`Peer`]).
    pub fn command(&self, role: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.path);
        cmd.args(&self.prefix)
            .arg(role)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Spawns `role` with `args`.
    pub fn spawn(&self, role: &str, args: &[&str]) -> std::io::Result<Peer> {
        Peer::spawn(self.command(role, args))
    }
}

/// A running peer. Dropping it kills the process (SIGKILL) and reaps it, then drops the
/// cleanup guards of the objects it used.
pub struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: Option<JoinHandle<String>>,
    status: Option<ExitStatus>,
    // Declared last: dropped after the process is gone.
    cleanup: Cleanup,
}

impl Peer {
    /// Spawns `cmd` (from [`peer_command`]).
    pub fn spawn(mut cmd: Command) -> std::io::Result<Peer> {
        let mut child = cmd.spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("peer stdout is piped");
        let stderr = child.stderr.take().expect("peer stderr is piped");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                text.push_str(&line);
                text.push('\n');
            }
            text
        });
        Ok(Peer {
            child,
            stdin,
            lines,
            stderr: Some(stderr),
            status: None,
            cleanup: Cleanup::none(),
        })
    }

    /// Keeps `guard` alive until the peer is gone.
    pub fn hold(&mut self, guard: impl Send + 'static) {
        self.cleanup.add(guard);
    }

    /// The peer's process id.
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Waits for the next line of the peer's stdout, which must start with `prefix`; returns
    /// the rest of it, trimmed.
    pub fn expect_line(&mut self, prefix: &str) -> String {
        let line = self.lines.recv_timeout(WATCHDOG);
        if let Some(rest) = line.as_deref().ok().and_then(|l| l.strip_prefix(prefix)) {
            return rest.trim().to_owned();
        }
        // Kill first, so that the stderr below is complete.
        self.kill();
        let status = self.status.map_or_else(|| "still running".into(), describe);
        match line {
            Ok(line) => panic!(
                "peer said `{line}`, expected `{prefix}...` ({status}); stderr:\n{}",
                self.stderr_text()
            ),
            Err(_) => panic!(
                "peer never said `{prefix}...` ({status}); stderr:\n{}",
                self.stderr_text()
            ),
        }
    }

    /// The next line of the peer's stdout, waiting until `deadline`; `None` if none came (the
    /// peer is silent, or exited without one). Unlike [`Peer::expect_line`], never panics: for
    /// callers that classify a stuck peer rather than fail on it.
    pub fn line_before(&mut self, deadline: Instant) -> Option<String> {
        let left = deadline.saturating_duration_since(Instant::now());
        self.lines.recv_timeout(left).ok()
    }

    /// Waits until `deadline` for the peer to exit; its status, or `None` if it still runs.
    pub fn wait_before(&mut self, deadline: Instant) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.try_wait_until(deadline);
        }
        self.status
    }

    /// Its exit status, if it has been reaped.
    pub fn status(&self) -> Option<ExitStatus> {
        self.status
    }

    /// The next line of the peer's stdout if there is one already.
    pub fn poll_line(&mut self) -> Option<String> {
        self.lines.try_recv().ok()
    }

    /// Writes a command line to the peer's stdin.
    pub fn tell(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("peer stdin still open");
        writeln!(stdin, "{line}").expect("write to peer stdin");
        stdin.flush().expect("flush peer stdin");
    }

    /// Writes a command line to a peer that may have ended on its own already (a peer of a
    /// hostile test that met `Corrupted` exits early, and how it ended is judged afterwards);
    /// `false` if it had: its stdin is closed (`EPIPE`).
    pub fn tell_if_running(&mut self, line: &str) -> bool {
        let stdin = self.stdin.as_mut().expect("peer stdin still open");
        match writeln!(stdin, "{line}").and_then(|()| stdin.flush()) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => false,
            Err(e) => panic!("write to peer stdin: {e}"),
        }
    }

    /// Closes the peer's stdin: peers waiting for end of file carry on (usually: exit).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Sends `sig`; `false` if the process is gone already.
    pub fn signal(&self, sig: Signal) -> bool {
        // An exited but unreaped child is a zombie: its pid cannot be reused until we reap it,
        // so this never hits an unrelated process.
        self.status.is_none() && kill(self.pid(), sig).is_ok()
    }

    /// Kills the peer with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            self.status = self.try_wait_until(Instant::now() + WATCHDOG);
        }
    }

    fn try_wait_until(&mut self, deadline: Instant) -> Option<ExitStatus> {
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => {
                    // Harness polling of a child's exit status, not synchronisation of the
                    // processes under test.
                    thread::sleep(Duration::from_millis(2));
                }
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// Waits (at most [`WATCHDOG`]) for the peer to exit and returns its status; kills it and
    /// panics if it does not.
    pub fn wait(&mut self) -> ExitStatus {
        if let Some(status) = self.status {
            return status;
        }
        match self.try_wait_until(Instant::now() + WATCHDOG) {
            Some(status) => {
                self.status = Some(status);
                status
            }
            None => {
                self.kill();
                panic!(
                    "peer did not exit within {WATCHDOG:?}; stderr:\n{}",
                    self.stderr_text()
                )
            }
        }
    }

    /// Whether the peer has exited (reaping it if so).
    pub fn has_exited(&mut self) -> bool {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status.is_some()
    }

    /// Waits for the peer to exit and asserts it succeeded.
    pub fn wait_success(&mut self) {
        let status = self.wait();
        assert!(
            status.success(),
            "peer failed: {}; stderr:\n{}",
            describe(status),
            self.stderr_text()
        );
    }

    /// What the peer wrote on stderr. Complete only once it has exited.
    pub fn stderr_text(&mut self) -> String {
        if self.status.is_none() {
            return "(peer still running)".into();
        }
        self.stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stdin = None;
        self.kill();
    }
}

/// An exit status in words: `exit code 3` or `killed by signal 13 (SIGPIPE)`.
pub fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => {
            let name = Signal::try_from(sig).map_or("?", |s| s.as_str());
            format!("killed by signal {sig} ({name})")
        }
        _ => format!("{status:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_progress_returns_the_result() {
        assert_eq!(
            bounded_progress("quick", WATCHDOG, &Progress::new(), || 7),
            7
        );
    }

    #[test]
    fn bounded_progress_fails_a_job_that_makes_no_progress() {
        let progress = Progress::new();
        // The job blocks until the test ends, never stepping: stuck whatever the machine's speed.
        let (_keep, stuck) = mpsc::channel::<()>();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            bounded_progress("stuck", Duration::from_millis(10), &progress, move || {
                let _ = stuck.recv();
            })
        }));
        let why = r.expect_err("a job without progress passed");
        let why = why.downcast_ref::<String>().expect("a formatted panic");
        assert!(why.contains("no progress"), "{why}");
    }
}
