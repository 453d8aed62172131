//! System V semaphore sets across threads and real processes.
//!
//! Cross-process tests re-execute this test binary (`--exact child_role`) with
//! `IPC_SYSV_SEM_ROLE` naming what the child does; without it `child_role` does nothing.
//! Every set is owned by a guard that removes it on drop (which also wakes any thread still
//! blocked on it with `Disconnected`), every child is killed by a guard, and every wait is
//! bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ipc_core::{Error, Owner};
use ipc_sysv::Key;
use ipc_sysv::sem::{SemOp, SemaphoreSet};

const ROLE: &str = "IPC_SYSV_SEM_ROLE";
const SET_ID: &str = "IPC_SYSV_SEM_ID";
const SET_KEY: &str = "IPC_SYSV_SEM_KEY";
const MARKER: &str = "IPC-SYSV-SEM-CHILD-READY";
/// Bound on anything that should happen at once (generous for loaded machines).
const PROMPT: Duration = Duration::from_secs(10);

/// A key no other test (or test process) uses: pid in bits 8..24, a counter below.
fn unique_key() -> Key {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) as i32;
    assert!(n < 256, "too many keys");
    let pid = std::process::id() as i32;
    Key::Explicit(0x5e00_0000 | ((pid & 0xffff) << 8) | n)
}

/// Polls `cond` until it holds (a condition wait, not a timed guess), panicking after
/// [`PROMPT`].
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + PROMPT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs `f` on a thread with its own handle on set `id`; the receiver yields its result.
/// If the test fails, the owner's drop removes the set and the thread ends with
/// `Disconnected`.
fn on_thread<T: Send + 'static>(
    id: i32,
    count: usize,
    f: impl FnOnce(&SemaphoreSet) -> T + Send + 'static,
) -> (mpsc::Receiver<T>, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let set = SemaphoreSet::open_id(id, count).expect("thread opens the set");
        let _ = tx.send(f(&set));
    });
    (rx, handle)
}

// ---------------------------------------------------------------------------------------------
// Child processes.

/// The child side: does what `IPC_SYSV_SEM_ROLE` says, or nothing in a normal test run.
#[test]
fn child_role() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let stdin_eof = || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    };
    let ready = |extra: &str| {
        let mut out = std::io::stdout().lock();
        writeln!(out, "\n{MARKER} {extra}").unwrap();
        out.flush().unwrap();
    };
    match role.as_str() {
        "hold-undo" | "hold-no-undo" => {
            let id: i32 = std::env::var(SET_ID).unwrap().parse().unwrap();
            let set = SemaphoreSet::open_id(id, 1).unwrap();
            let op = SemOp::wait(0).undo(role == "hold-undo");
            set.op_timeout(&[op], PROMPT).unwrap();
            ready("held");
            // Block until killed, or until the parent goes away (stdin closes).
            stdin_eof();
        }
        "create-as-nobody" => {
            let key: i32 = std::env::var(SET_KEY).unwrap().parse().unwrap();
            // SAFETY: setuid has no memory-safety preconditions; glibc applies it to all
            // threads of the process.
            assert_eq!(unsafe { libc::setuid(65534) }, 0, "setuid(65534)");
            let set = SemaphoreSet::create(&Key::Explicit(key), 1, 0o600).unwrap();
            ready("created");
            // The owner removes the set when the parent closes stdin (or dies).
            stdin_eof();
            set.destroy().unwrap();
        }
        other => panic!("unknown role {other}"),
    }
}

/// A child process, killed and reaped when dropped.
struct ChildGuard {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl ChildGuard {
    fn spawn(role: &str, env: &[(&str, String)]) -> ChildGuard {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", "child_role", "--nocapture", "--test-threads=1"])
            .env(ROLE, role)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn the child");
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        ChildGuard {
            child,
            stdin,
            lines,
        }
    }

    /// Waits (bounded) for the child's ready line.
    fn wait_ready(&self) {
        let deadline = Instant::now() + PROMPT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(MARKER) => return,
                Ok(_) => continue,
                Err(e) => panic!("child never got ready: {e}"),
            }
        }
    }

    /// SIGKILLs the child and reaps it (bounded: SIGKILL cannot be ignored).
    fn kill(&mut self) -> std::process::ExitStatus {
        self.child.kill().unwrap();
        self.child.wait().unwrap()
    }

    /// Closes the child's stdin and waits (bounded) for it to exit.
    fn finish(&mut self) -> std::process::ExitStatus {
        drop(self.stdin.take());
        let deadline = Instant::now() + PROMPT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "child did not exit");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for ChildGuard {
    /// Closes stdin first, so that a child owning a set removes it on its way out, then
    /// SIGKILLs whatever is still running after a bounded wait, and reaps it.
    fn drop(&mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + PROMPT;
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn killed_holder_leaves(undo: bool) -> u16 {
    let set = SemaphoreSet::create(&Key::Private, 1, 0o600).unwrap();
    set.set(0, 1).unwrap();
    let role = if undo { "hold-undo" } else { "hold-no-undo" };
    let mut child = ChildGuard::spawn(role, &[(SET_ID, set.id().to_string())]);
    child.wait_ready();
    assert_eq!(set.get(0).unwrap(), 0, "the child holds the semaphore");
    assert_eq!(set.last_pid(0).unwrap(), Some(child.child.id()));
    let status = child.kill();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    set.get(0).unwrap()
}

#[test]
fn sem_undo_restores_the_semaphore_of_a_sigkilled_holder() {
    assert_eq!(killed_holder_leaves(true), 1);
}

#[test]
fn without_sem_undo_a_sigkilled_holder_keeps_the_unit() {
    assert_eq!(killed_holder_leaves(false), 0);
}

#[test]
fn a_set_of_another_owner_is_refused() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to create a set as another user");
        return;
    }
    let key = unique_key();
    let Key::Explicit(raw) = key else {
        unreachable!()
    };
    let mut child = ChildGuard::spawn("create-as-nobody", &[(SET_KEY, raw.to_string())]);
    child.wait_ready();
    match SemaphoreSet::open(&key, 1) {
        Err(Error::Incompatible { reason, .. }) => {
            assert!(reason.contains("uid 65534"), "{reason}")
        }
        other => panic!("expected Incompatible, got {other:?}"),
    }
    assert!(matches!(
        SemaphoreSet::create(&key, 1, 0o600),
        Err(Error::AlreadyExists { .. })
    ));
    assert!(child.finish().success());
    assert!(matches!(
        SemaphoreSet::open(&key, 1),
        Err(Error::NotFound { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// One process.

#[test]
fn create_op_get_set_destroy_round_trip() {
    let key = unique_key();
    let set = SemaphoreSet::create(&key, 3, 0o600).unwrap();
    assert_eq!(set.count(), 3);
    assert_eq!(set.get_all().unwrap(), vec![0, 0, 0]);
    let stat = set.stat().unwrap();
    assert_eq!((stat.count, stat.mode), (3, 0o600));
    assert!(stat.otime.is_some(), "create marks the set initialised");

    set.set(1, 5).unwrap();
    set.op(&[SemOp::add(0, 2), SemOp::add(1, -3), SemOp::zero(2)])
        .unwrap();
    assert_eq!(set.get_all().unwrap(), vec![2, 2, 0]);
    set.set_all(&[7, 0, 1]).unwrap();
    assert_eq!(set.get(0).unwrap(), 7);
    assert_eq!(set.get(2).unwrap(), 1);
    assert_eq!(set.last_pid(0).unwrap(), Some(std::process::id()));
    assert_eq!(set.waiting_for_increase(0).unwrap(), 0);
    assert_eq!(set.waiting_for_zero(2).unwrap(), 0);

    let opened = SemaphoreSet::open(&key, 3).unwrap();
    assert_eq!(opened.id(), set.id());
    opened.op(&[SemOp::wait(0)]).unwrap();
    assert_eq!(set.get(0).unwrap(), 6);

    set.destroy().unwrap();
    assert!(matches!(opened.get(0), Err(Error::Disconnected)));
    assert!(matches!(
        opened.op(&[SemOp::post(0)]),
        Err(Error::Disconnected)
    ));
    assert!(matches!(
        SemaphoreSet::open(&key, 3),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn the_owner_removes_the_set_on_drop_and_release_keeps_it() {
    let key = unique_key();
    drop(SemaphoreSet::create(&key, 1, 0o600).unwrap());
    assert!(matches!(
        SemaphoreSet::open(&key, 1),
        Err(Error::NotFound { .. })
    ));
    let kept = SemaphoreSet::create(&key, 1, 0o600).unwrap().release();
    let again = Owner::new(SemaphoreSet::open(&key, 1).unwrap());
    assert_eq!(again.id(), kept.id());
    drop(again);
    assert!(matches!(kept.get(0), Err(Error::Disconnected)));
}

#[test]
fn several_ops_are_atomic() {
    let set = SemaphoreSet::create(&Key::Private, 2, 0o600).unwrap();
    set.set_all(&[1, 0]).unwrap();
    let both = [SemOp::wait(0), SemOp::wait(1)];

    // Not possible now: nothing changes.
    assert!(matches!(set.try_op(&both), Err(Error::Empty)));
    assert!(matches!(
        set.op(&[SemOp::wait(0), SemOp::wait(1).nowait(true)]),
        Err(Error::Empty)
    ));
    assert_eq!(set.get_all().unwrap(), vec![1, 0]);

    // A blocked waiter on both takes neither until both are available.
    let (rx, thread) = on_thread(set.id(), 2, move |s| s.op_timeout(&both, PROMPT));
    wait_until("the waiter to block", || {
        set.waiting_for_increase(1).unwrap() == 1
    });
    assert_eq!(set.get_all().unwrap(), vec![1, 0]);
    set.set(1, 1).unwrap();
    rx.recv_timeout(PROMPT).unwrap().unwrap();
    thread.join().unwrap();
    assert_eq!(set.get_all().unwrap(), vec![0, 0]);
}

#[test]
fn op_timeout_times_out_and_try_op_fails_at_once() {
    let set = SemaphoreSet::create(&Key::Private, 1, 0o600).unwrap();
    let started = Instant::now();
    assert!(matches!(set.try_op(&[SemOp::wait(0)]), Err(Error::Empty)));
    assert!(started.elapsed() < Duration::from_secs(1));

    let timeout = Duration::from_millis(200);
    let started = Instant::now();
    assert!(matches!(
        set.op_timeout(&[SemOp::wait(0)], timeout),
        Err(Error::Timeout)
    ));
    let took = started.elapsed();
    assert!(took >= timeout, "returned early after {took:?}");
    assert!(took < timeout + Duration::from_secs(2), "took {took:?}");
    assert_eq!(set.get(0).unwrap(), 0);

    // And succeeds when possible.
    set.set(0, 1).unwrap();
    set.op_timeout(&[SemOp::wait(0)], timeout).unwrap();
    assert_eq!(set.get(0).unwrap(), 0);
}

static SIGNALS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_signal(_: libc::c_int) {
    SIGNALS.fetch_add(1, Ordering::SeqCst);
}

/// Installs a SIGUSR1 handler without `SA_RESTART` (which semop ignores anyway).
fn install_sigusr1_handler() {
    // SAFETY: an all-zero sigaction is valid; the handler only touches an atomic
    // (async-signal-safe), and the pointers passed are valid for the call.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = count_signal as *const () as libc::sighandler_t;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = 0;
        assert_eq!(libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut()), 0);
    }
}

/// Waits until `thread` blocks on semaphore 0 of `set`, interrupts it with SIGUSR1 and waits
/// until the handler ran.
fn interrupt(set: &SemaphoreSet, thread: &std::thread::JoinHandle<()>) {
    use std::os::unix::thread::JoinHandleExt;
    wait_until("the waiter to block", || {
        set.waiting_for_increase(0).unwrap() == 1
    });
    let before = SIGNALS.load(Ordering::SeqCst);
    // SAFETY: the thread has not been joined (we borrow its handle), so its pthread_t is
    // valid; the handler installed for SIGUSR1 only counts.
    let sent = unsafe { libc::pthread_kill(thread.as_pthread_t(), libc::SIGUSR1) };
    assert_eq!(sent, 0);
    wait_until("the signal handler", || {
        SIGNALS.load(Ordering::SeqCst) > before
    });
}

#[test]
fn eintr_is_retried_and_the_deadline_kept() {
    install_sigusr1_handler();
    let set = SemaphoreSet::create(&Key::Private, 1, 0o600).unwrap();

    // Blocking forever: interrupted, retried, then succeeds when posted.
    let (rx, thread) = on_thread(set.id(), 1, |s| s.op(&[SemOp::wait(0)]));
    interrupt(&set, &thread);
    interrupt(&set, &thread);
    set.op(&[SemOp::add(0, 1)]).unwrap();
    rx.recv_timeout(PROMPT).unwrap().unwrap();
    thread.join().unwrap();
    assert_eq!(set.get(0).unwrap(), 0);

    // With a deadline: interruptions neither end the wait early nor restart the clock.
    let timeout = Duration::from_millis(800);
    let (rx, thread) = on_thread(set.id(), 1, move |s| {
        let started = Instant::now();
        (s.op_timeout(&[SemOp::wait(0)], timeout), started.elapsed())
    });
    interrupt(&set, &thread);
    interrupt(&set, &thread);
    let (result, took) = rx.recv_timeout(PROMPT).unwrap();
    thread.join().unwrap();
    assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
    assert!(took >= timeout, "returned early after {took:?}");
    assert!(took < timeout + Duration::from_secs(2), "took {took:?}");
}

#[test]
fn removing_the_set_under_a_blocked_waiter_is_disconnected() {
    let set = SemaphoreSet::create(&Key::Private, 1, 0o600).unwrap();
    let id = set.id();
    let (rx, thread) = on_thread(id, 1, |s| {
        let first = s.op(&[SemOp::wait(0)]);
        // No error loop: the handle keeps saying so, at once.
        let again = s.try_op(&[SemOp::wait(0)]);
        (first, again)
    });
    wait_until("the waiter to block", || {
        set.waiting_for_increase(0).unwrap() == 1
    });
    let removed_at = Instant::now();
    set.destroy().unwrap();
    let (first, again) = rx.recv_timeout(PROMPT).unwrap();
    assert!(removed_at.elapsed() < Duration::from_secs(2));
    thread.join().unwrap();
    assert!(matches!(first, Err(Error::Disconnected)), "{first:?}");
    assert!(matches!(again, Err(Error::Disconnected)), "{again:?}");
}

#[test]
fn create_is_exclusive_and_open_checks_count_and_mode() {
    let key = unique_key();
    let set = SemaphoreSet::create(&key, 2, 0o600).unwrap();
    for count in [2, 3] {
        assert!(matches!(
            SemaphoreSet::create(&key, count, 0o600),
            Err(Error::AlreadyExists { .. })
        ));
    }
    match SemaphoreSet::open(&key, 3) {
        Err(Error::Incompatible { reason, .. }) => {
            assert!(
                reason.contains("2 semaphores") && reason.contains('3'),
                "{reason}"
            )
        }
        other => panic!("expected Incompatible, got {other:?}"),
    }
    assert_eq!(SemaphoreSet::open(&key, 2).unwrap().id(), set.id());

    let loose = unique_key();
    let _loose_set = SemaphoreSet::create(&loose, 1, 0o644).unwrap();
    match SemaphoreSet::open(&loose, 1) {
        Err(Error::Incompatible { reason, .. }) => assert!(reason.contains("0644"), "{reason}"),
        other => panic!("expected Incompatible, got {other:?}"),
    }
    SemaphoreSet::open_with_mode(&loose, 1, 0o644).unwrap();

    assert!(matches!(
        SemaphoreSet::open(&unique_key(), 1),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        SemaphoreSet::open(&Key::Private, 1),
        Err(Error::InvalidSpec { .. })
    ));
}

#[test]
fn bad_arguments_and_limits_are_refused() {
    let set = SemaphoreSet::create(&Key::Private, 2, 0o600).unwrap();
    let invalid = |r: ipc_core::Result<()>| matches!(r, Err(Error::InvalidSpec { .. }));
    assert!(invalid(set.op(&[SemOp::wait(2)])));
    assert!(invalid(set.op(&[])));
    assert!(invalid(set.op(&[SemOp::add(0, i16::MIN)])));
    assert!(invalid(set.set(0, 40000)));
    assert!(invalid(set.set(5, 1)));
    assert!(invalid(set.set_all(&[1])));
    assert!(matches!(set.get(2), Err(Error::InvalidSpec { .. })));
    assert!(matches!(
        SemaphoreSet::create(&Key::Private, 0, 0o600),
        Err(Error::InvalidSpec { .. })
    ));
    assert!(matches!(
        SemaphoreSet::create(&Key::Private, 1, 0o1600),
        Err(Error::InvalidSpec { .. })
    ));

    // SEMVMX: a value above 32767 is out of range.
    set.set(0, 32767).unwrap();
    match set.op(&[SemOp::add(0, 1)]) {
        Err(Error::LimitExceeded { limit, .. }) => assert_eq!(limit, 32767),
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
    assert_eq!(set.get(0).unwrap(), 32767);

    // SEMOPM: too many operations in one call.
    let limits = ipc_sysv::sem::Limits::read().unwrap();
    let ops = vec![SemOp::add(1, 0); limits.semopm as usize + 1];
    match set.op(&ops) {
        Err(Error::LimitExceeded { what, limit }) => {
            assert!(what.contains("SEMOPM"), "{what}");
            assert_eq!(limit, limits.semopm);
        }
        other => panic!("expected LimitExceeded, got {other:?}"),
    }

    // SEMMSL: too many semaphores in one set.
    match SemaphoreSet::create(&Key::Private, limits.semmsl as usize + 1, 0o600) {
        Err(Error::LimitExceeded { what, limit }) => {
            assert!(what.contains("SEMMSL"), "{what}");
            assert_eq!(limit, limits.semmsl);
        }
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
}

/// A set made by `ipcmk -S`, removed on drop whatever the test does.
struct IpcmkSet(i32);

impl Drop for IpcmkSet {
    fn drop(&mut self) {
        let _ = ipc_sysv::sem::remove_id(self.0);
    }
}

/// The key of set `id`, from `/proc/sysvipc/sem` (`ipcmk` prints only the id).
fn key_of_set(id: i32) -> Key {
    let table = std::fs::read_to_string("/proc/sysvipc/sem").expect("/proc/sysvipc/sem");
    let key = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.get(1).and_then(|s| s.parse::<i32>().ok()) == Some(id))
        .and_then(|f| f[0].parse::<i32>().ok())
        .expect("the set is listed");
    Key::Explicit(key)
}

#[test]
fn a_set_made_by_ipcmk_opens_uninitialised_and_not_by_default() {
    let made = match Command::new("ipcmk")
        .args(["-S", "1", "-p", "0600"])
        .output()
    {
        Ok(out) if out.status.success() => out,
        Ok(out) => panic!(
            "ipcmk -S 1 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => {
            eprintln!("skipped: no ipcmk (util-linux) to make a foreign set: {e}");
            return;
        }
    };
    let id: i32 = String::from_utf8_lossy(&made.stdout)
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("ipcmk prints `Semaphore id: N`");
    let _guard = IpcmkSet(id);
    let key = key_of_set(id);

    // Nobody has called semop on it: the default opener waits, then says what to do.
    match SemaphoreSet::open(&key, 1) {
        Err(Error::Incompatible { reason, .. }) => {
            assert!(reason.contains("open_uninitialised"), "{reason}")
        }
        other => panic!("expected Incompatible, got {other:?}"),
    }
    // Opening as it is works at once, by key and by id, with the usual checks.
    let set = SemaphoreSet::open_uninitialised(&key, 1, 0o600).unwrap();
    assert!(set.stat().unwrap().otime.is_none());
    assert_eq!(set.get(0).unwrap(), 0);
    assert!(matches!(
        SemaphoreSet::open_id_uninitialised(id, 2, 0o600),
        Err(Error::Incompatible { .. })
    ));
    set.op(&[SemOp::post(0)]).unwrap();
    // The first semop is the mark the default opener waits for.
    let again = SemaphoreSet::open_id(id, 1).unwrap();
    again.op(&[SemOp::wait(0)]).unwrap();
    assert_eq!(set.get(0).unwrap(), 0);
}
