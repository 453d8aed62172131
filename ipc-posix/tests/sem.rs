//! POSIX named semaphores across processes: wake-ups, timeouts, signals, squatted names.
//!
//! Every semaphore is named `/ipc-test-<pid>-sem-<counter>` and removed by a guard (the `Owner`
//! from `create`, or [`Unlink`] for objects made behind the library's back), also when a test
//! fails.

use std::io::{BufRead, BufReader};
use std::os::unix::thread::JoinHandleExt;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ipc_core::{Error, Removable, Wait};
use ipc_posix::PosixName;
use ipc_posix::sem::{self, DEFAULT_MODE, NamedSemaphore};

/// Set in a re-executed test binary: which role the test plays there.
const ROLE: &str = "IPC_POSIX_SEM_TEST_ROLE";
/// The semaphore the child works on.
const OBJECT: &str = "IPC_POSIX_SEM_TEST_OBJECT";
/// What the child prints just before it waits.
const WAITING: &str = "ipc-sem-child: waiting";
/// What the child prints once woken.
const WOKEN: &str = "ipc-sem-child: woken";

fn unique() -> PosixName {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    PosixName::new(&format!("/ipc-test-{}-sem-{n}", std::process::id())).unwrap()
}

/// Where glibc keeps the semaphore.
fn path(name: &PosixName) -> String {
    format!("/dev/shm/sem.{}", &name.as_str()[1..])
}

fn exists(name: &PosixName) -> bool {
    std::fs::symlink_metadata(path(name)).is_ok()
}

/// Removes a name when dropped: for semaphores the test made or changed behind the library.
struct Unlink(PosixName);

impl Drop for Unlink {
    fn drop(&mut self) {
        let _ = sem::unlink(&self.0);
    }
}

/// A semaphore under `name` that this process does not own: the guard removes it.
fn precreate(name: &PosixName, mode: u32) -> Unlink {
    let guard = Unlink(name.clone());
    drop(NamedSemaphore::create(name, 0, mode).unwrap().release());
    guard
}

fn incompatible_reason<T: std::fmt::Debug>(result: Result<T, Error>) -> String {
    match result {
        Err(Error::Incompatible { object, reason }) => {
            assert!(object.starts_with("posix-sem:/ipc-test-"), "{object}");
            reason
        }
        other => panic!("expected Incompatible, got {other:?}"),
    }
}

#[test]
fn post_in_one_process_wakes_a_waiter_in_another() {
    if std::env::var(ROLE).as_deref() == Ok("child") {
        let name = PosixName::new(&std::env::var(OBJECT).unwrap()).unwrap();
        let sem = NamedSemaphore::open(&name, DEFAULT_MODE).unwrap();
        println!("{WAITING}");
        sem.wait_timeout(Duration::from_secs(30)).unwrap();
        println!("{WOKEN}");
        return;
    }

    let name = unique();
    let owner = NamedSemaphore::create(&name, 0, DEFAULT_MODE).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "post_in_one_process_wakes_a_waiter_in_another",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, "child")
        .env(OBJECT, name.as_str())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Post only once the child says it is about to wait (its output, not a sleep, is the
    // synchronisation).
    let mut seen = Vec::new();
    loop {
        match lines.next() {
            Some(line) => {
                let line = line.unwrap();
                let ready = line.contains(WAITING);
                seen.push(line);
                if ready {
                    break;
                }
            }
            None => {
                let status = child.wait().unwrap();
                panic!("child ended before waiting ({status}): {seen:?}");
            }
        }
    }
    let posted = Instant::now();
    owner.post().unwrap();
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "child failed ({status}): {seen:?} {rest:?}"
    );
    assert!(rest.iter().any(|l| l.contains(WOKEN)), "{rest:?}");
    assert!(posted.elapsed() < Duration::from_secs(30));
    // The child took the one post.
    assert_eq!(owner.value().unwrap(), 0);
    owner.destroy().unwrap();
    assert!(!exists(&name));
    assert!(matches!(
        NamedSemaphore::open(&name, DEFAULT_MODE),
        Err(Error::NotFound { object }) if object == format!("posix-sem:{name}")
    ));
}

#[test]
fn try_wait_on_zero_is_empty_and_value_counts() {
    let name = unique();
    let sem = NamedSemaphore::create(&name, 0, DEFAULT_MODE).unwrap();
    assert!(matches!(sem.try_wait(), Err(Error::Empty)));
    assert_eq!(sem.value().unwrap(), 0);
    sem.post().unwrap();
    sem.post().unwrap();
    assert_eq!(sem.value().unwrap(), 2);
    sem.try_wait().unwrap();
    assert_eq!(sem.value().unwrap(), 1);
    sem.wait().unwrap();
    assert_eq!(sem.value().unwrap(), 0);
    assert!(matches!(sem.wait_with(Wait::Never), Err(Error::Empty)));
    // A deadline already passed still takes what is there, else times out.
    let past = Wait::Until(Instant::now());
    assert!(matches!(sem.wait_with(past), Err(Error::Timeout)));
    sem.post().unwrap();
    sem.wait_with(past).unwrap();
}

#[test]
fn initial_value_is_kept() {
    let name = unique();
    let sem = NamedSemaphore::create(&name, 5, DEFAULT_MODE).unwrap();
    let other = NamedSemaphore::open(&name, DEFAULT_MODE).unwrap();
    assert_eq!(other.value().unwrap(), 5);
    for _ in 0..5 {
        other.try_wait().unwrap();
    }
    assert!(matches!(sem.try_wait(), Err(Error::Empty)));
}

#[test]
fn wait_timeout_honours_the_timeout() {
    let name = unique();
    let sem = NamedSemaphore::create(&name, 0, DEFAULT_MODE).unwrap();
    let timeout = Duration::from_millis(300);
    let started = Instant::now();
    let err = sem.wait_timeout(timeout).unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, Error::Timeout), "{err}");
    assert!(elapsed >= timeout, "{elapsed:?}");
    assert!(elapsed < timeout + Duration::from_secs(1), "{elapsed:?}");
}

static SIGNALS: AtomicUsize = AtomicUsize::new(0);

extern "C" fn count_signal(_: libc::c_int) {
    SIGNALS.fetch_add(1, Ordering::Relaxed);
}

#[test]
fn signals_do_not_end_or_stretch_a_timed_wait() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    // No SA_RESTART: every signal makes sem_clockwait return EINTR, which the library retries
    // with the time left to the original deadline.
    let action = SigAction::new(
        SigHandler::Handler(count_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only increments an atomic counter, which is async-signal-safe;
    // SIGUSR1 is sent by this test alone, to its own thread.
    unsafe { sigaction(Signal::SIGUSR1, &action) }.unwrap();

    let name = unique();
    let sem = Arc::new(NamedSemaphore::create(&name, 0, DEFAULT_MODE).unwrap());
    let timeout = Duration::from_millis(400);
    let done = Arc::new(AtomicBool::new(false));
    let waiter = {
        let sem = Arc::clone(&sem);
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let started = Instant::now();
            let result = sem.wait_timeout(timeout);
            let elapsed = started.elapsed();
            done.store(true, Ordering::SeqCst);
            (result, elapsed)
        })
    };
    let thread = waiter.as_pthread_t();
    let before = SIGNALS.load(Ordering::Relaxed);
    // Interrupt the wait every 10 ms until it ends (the pause paces the signals; nothing
    // depends on its length).
    while !done.load(Ordering::SeqCst) {
        // SAFETY: `thread` is the waiter, not joined yet (its `JoinHandle` is alive), so the
        // pthread_t is valid even if the thread has just returned; SIGUSR1 has the counting
        // handler installed above.
        let ret = unsafe { libc::pthread_kill(thread, libc::SIGUSR1) };
        assert_eq!(ret, 0);
        std::thread::sleep(Duration::from_millis(10));
    }
    let (result, elapsed) = waiter.join().unwrap();
    assert!(matches!(result, Err(Error::Timeout)), "{result:?}");
    assert!(elapsed >= timeout, "{elapsed:?}");
    assert!(elapsed < timeout + Duration::from_secs(1), "{elapsed:?}");
    assert!(SIGNALS.load(Ordering::Relaxed) > before);
}

#[test]
fn semaphore_of_another_owner_is_refused() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: giving a semaphore to another user needs root");
        return;
    }
    let name = unique();
    let _guard = precreate(&name, 0o600);
    nix::unistd::chown(
        path(&name).as_str(),
        Some(nix::unistd::Uid::from_raw(65534)),
        None,
    )
    .unwrap();
    let reason = incompatible_reason(NamedSemaphore::open(&name, DEFAULT_MODE));
    assert!(reason.contains("owned by uid 65534"), "{reason}");
    let reason = incompatible_reason(NamedSemaphore::open_or_create(&name, 0, DEFAULT_MODE));
    assert!(reason.contains("65534"), "{reason}");
    assert!(exists(&name));
}

#[test]
fn semaphore_with_a_wider_mode_is_refused() {
    let name = unique();
    let _guard = precreate(&name, 0o666);
    let reason = incompatible_reason(NamedSemaphore::open(&name, DEFAULT_MODE));
    assert!(
        reason.contains("0666") && reason.contains("0600"),
        "{reason}"
    );
    NamedSemaphore::open(&name, 0o666).unwrap();
}

#[test]
fn file_too_small_for_a_semaphore_is_refused_not_sigbus() {
    // glibc maps /dev/shm/sem.NAME without looking at its size: an empty file there would
    // make the first sem_post die of SIGBUS. It must be refused before.
    let name = unique();
    let _guard = Unlink(name.clone());
    std::fs::write(path(&name), b"").unwrap();
    std::fs::set_permissions(
        path(&name),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let reason = incompatible_reason(NamedSemaphore::open(&name, DEFAULT_MODE));
    assert!(reason.contains("smaller than a semaphore"), "{reason}");
}

#[test]
fn symlink_in_place_of_a_semaphore_is_refused() {
    let name = unique();
    let target = unique();
    let _target_guard = precreate(&target, 0o600);
    let _guard = Unlink(name.clone());
    std::os::unix::fs::symlink(path(&target), path(&name)).unwrap();
    let reason = incompatible_reason(NamedSemaphore::open(&name, DEFAULT_MODE));
    assert!(reason.contains("symbolic link"), "{reason}");
}

#[test]
fn create_is_exclusive_and_open_or_create_reports_which() {
    let name = unique();
    let first = NamedSemaphore::open_or_create(&name, 1, DEFAULT_MODE).unwrap();
    assert!(first.was_created());
    let err = NamedSemaphore::create(&name, 0, DEFAULT_MODE).unwrap_err();
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    let second = NamedSemaphore::open_or_create(&name, 7, DEFAULT_MODE).unwrap();
    assert!(!second.was_created());
    // The existing semaphore's value, not the one asked for.
    assert_eq!(second.value().unwrap(), 1);
    drop(second);
    assert!(exists(&name));
    drop(first);
    assert!(!exists(&name));
}

#[test]
fn handles_close_without_removing_and_remove_names_the_object() {
    let name = unique();
    let owner = NamedSemaphore::create(&name, 0, DEFAULT_MODE).unwrap();
    assert_eq!(owner.object_name(), format!("posix-sem:{name}"));
    assert_eq!(owner.name(), &name);
    drop(NamedSemaphore::open(&name, DEFAULT_MODE).unwrap());
    assert!(exists(&name));
    // A handle stays usable after its name is removed.
    let handle = NamedSemaphore::open(&name, DEFAULT_MODE).unwrap();
    handle.remove().unwrap();
    assert!(!exists(&name));
    owner.post().unwrap();
    handle.try_wait().unwrap();
    assert!(matches!(owner.destroy(), Err(Error::NotFound { .. })));
}
