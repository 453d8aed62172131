//! `ipc-sync`'s robust mutex and futex condvar across real processes, in a POSIX shared-memory
//! segment: peers (`ipc-test-peer mutex-hold | mutex-lock | condvar-wait`) are SIGKILLed while
//! holding the lock or while parked in a wait, and the survivors must recover or carry on,
//! never hang.
//!
//! The segment's layout: a mutex, a condvar and 64 bytes of `u64` words (0 and 1: counters the
//! mutex keeps equal; 2: a generation number the condvar waiters wait on). Handshakes are the
//! peers' stdout lines; every wait is bounded (lock deadlines, [`bounded`], the peer's own
//! watchdog), so a bug fails a test instead of hanging it.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ipc::Owner;
use ipc::posix::PosixName;
use ipc::posix::shm::SharedMemory;
use ipc_sync::{Condvar, LayoutBuilder, LockError, MutexGuard, RobustMutex, Shared};
use ipc_tests::process::{Peer, WATCHDOG, bounded, peer_command};
use ipc_tests::unique_name;

/// A segment created (exclusively, mode 0600) for one test; the name is removed on drop, even
/// when the test fails.
struct Segment {
    name: String,
    shared: Shared,
    mutex: RobustMutex,
    condvar: Condvar,
    words: usize,
    // Last: removes the name once everything else is gone.
    _owner: Owner<SharedMemory>,
}

impl Segment {
    fn create() -> Segment {
        let name = format!("/{}", unique_name());
        let posix_name = PosixName::new(&name).expect("a valid POSIX name");
        let mut plan = LayoutBuilder::new();
        let (m, c, w) = (plan.mutex(), plan.condvar(), plan.bytes(64));
        let owner = SharedMemory::create(&posix_name, plan.size(), 0o600).expect("shm create");
        let shared = Shared::new(Arc::new(owner.map().expect("map")));
        let layout = plan.init(&shared).expect("init layout");
        Segment {
            mutex: layout.mutex(m).expect("mutex"),
            condvar: layout.condvar(c).expect("condvar"),
            words: layout.regions()[w].offset,
            shared,
            name,
            _owner: owner,
        }
    }

    fn word(&self, i: usize) -> &AtomicU64 {
        self.shared
            .u64_at(self.words + 8 * i)
            .expect("word in bounds")
    }

    /// Counters 0 and 1.
    fn counters(&self) -> (u64, u64) {
        (
            self.word(0).load(Ordering::Relaxed),
            self.word(1).load(Ordering::Relaxed),
        )
    }

    fn peer(&self, role: &str) -> Peer {
        let exe = Path::new(env!("CARGO_BIN_EXE_ipc-test-peer"));
        Peer::spawn(peer_command(exe, role, &[&self.name])).expect("spawn ipc-test-peer")
    }

    /// Locks, bounded by the watchdog; anything but a plain guard fails the test.
    fn lock(&self) -> MutexGuard<'_> {
        match self.mutex.lock_timeout(WATCHDOG) {
            Ok(guard) => guard,
            Err(e) => panic!("lock: {e}"),
        }
    }
}

fn outcome(r: Result<MutexGuard<'_>, LockError<'_>>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(LockError::OwnerDied(_)) => "owner-died".into(),
        Err(e) => format!("{e:?}"),
    }
}

/// Waits (bounded) until the peer's main thread sleeps in `futex(2)`: after it said
/// `waiting` (holding the mutex), the only futex it can sleep in is the condvar's. Returns
/// `false` if `/proc/PID/syscall` cannot be read (then the kill may land just before the wait,
/// which the tests tolerate).
fn until_parked_in_futex(peer: &Peer) -> bool {
    let path = format!("/proc/{}/syscall", peer.pid());
    let deadline = Instant::now() + WATCHDOG;
    loop {
        let Ok(text) = std::fs::read_to_string(&path) else {
            return false;
        };
        let nr = text
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<i64>().ok());
        if nr == Some(libc::SYS_futex) {
            return true;
        }
        assert!(
            Instant::now() < deadline,
            "peer {} never slept in futex (last: {})",
            peer.pid(),
            text.trim()
        );
        // Polling the kernel's view of the peer, not synchronising with it.
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn smoke_a_peer_locks_and_releases() {
    let seg = Segment::create();
    let mut holder = seg.peer("mutex-hold");
    holder.expect_line("locked");
    holder.close_stdin();
    holder.expect_line("released");
    holder.wait_success();
    let _guard = seg.lock();
    assert_eq!(seg.counters(), (1, 1));
}

#[test]
fn killed_holder_gives_owner_died_and_repair_restores_the_invariant() {
    let seg = Segment::create();
    let mut holder = seg.peer("mutex-hold");
    holder.expect_line("locked");
    assert_eq!(outcome(seg.mutex.try_lock()), "WouldBlock");
    // SIGKILL mid critical section: counter 0 incremented, counter 1 not.
    holder.kill();

    let recovery = match seg.mutex.lock_timeout(WATCHDOG) {
        Err(LockError::OwnerDied(recovery)) => recovery,
        other => panic!("expected OwnerDied, got {}", outcome(other)),
    };
    let (a, b) = seg.counters();
    assert_eq!((a, b), (1, 0), "the holder's half-done update is visible");
    seg.word(1).store(a, Ordering::Relaxed);
    drop(recovery.mark_consistent());

    // Normal again, here and in another process.
    drop(seg.lock());
    let mut other = seg.peer("mutex-lock");
    assert_eq!(other.expect_line(""), "ok");
    other.wait_success();
    let mut holder = seg.peer("mutex-hold");
    holder.expect_line("locked");
    holder.close_stdin();
    holder.expect_line("released");
    holder.wait_success();
    let _guard = seg.lock();
    assert_eq!(seg.counters(), (2, 2));
}

#[test]
fn unrepaired_recovery_makes_the_mutex_unrecoverable_for_every_process() {
    let seg = Segment::create();
    let mut holder = seg.peer("mutex-hold");
    holder.expect_line("locked");
    holder.kill();

    match seg.mutex.lock_timeout(WATCHDOG) {
        // Dropped without mark_consistent.
        Err(LockError::OwnerDied(recovery)) => drop(recovery),
        other => panic!("expected OwnerDied, got {}", outcome(other)),
    }
    // An error at once, not a wait: checked with deadlines far beyond what it takes.
    assert_eq!(outcome(seg.mutex.lock_timeout(WATCHDOG)), "Unrecoverable");
    assert_eq!(outcome(seg.mutex.try_lock()), "Unrecoverable");
    let mut other = seg.peer("mutex-lock");
    assert_eq!(other.expect_line(""), "unrecoverable");
    other.wait_success();
    // The blocking form too (under a watchdog), after the other process's attempt.
    let mutex = seg.mutex.clone();
    let got = bounded("lock on an unrecoverable mutex", WATCHDOG, move || {
        outcome(mutex.lock())
    });
    assert_eq!(got, "Unrecoverable");
}

#[test]
fn killed_condvar_waiters_block_neither_notify_nor_live_waiters() {
    let seg = Segment::create();
    let mut doomed: Vec<Peer> = (0..2).map(|_| seg.peer("condvar-wait")).collect();
    let mut live = seg.peer("condvar-wait");
    let mut parked = true;
    for peer in doomed.iter_mut().chain(std::iter::once(&mut live)) {
        peer.expect_line("waiting");
        parked &= until_parked_in_futex(peer);
    }
    for peer in &mut doomed {
        peer.kill();
    }

    let guard = match seg.mutex.lock_timeout(WATCHDOG) {
        Ok(guard) => guard,
        // Only possible if a kill landed before its victim parked (unknowable without
        // /proc/PID/syscall): the generation counter is consistent either way.
        Err(LockError::OwnerDied(recovery)) if !parked => recovery.mark_consistent(),
        Err(e) => panic!("lock: {e}"),
    };
    seg.word(2).fetch_add(1, Ordering::Relaxed);
    drop(guard);
    let condvar = seg.condvar.clone();
    let woken = bounded(
        "notify_all after waiters were killed",
        WATCHDOG,
        move || condvar.notify_all(),
    );
    assert!(
        woken <= 1,
        "only the live waiter can be woken, the kernel woke {woken}"
    );
    live.expect_line("woken");
    live.wait_success();

    // The condvar still works: a waiter thread in this process is woken too.
    let start = seg.word(2).load(Ordering::Relaxed);
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let guard = seg.lock();
            seg.word(3).store(1, Ordering::Relaxed);
            let (guard, timed_out) = seg
                .condvar
                .wait_timeout_while(guard, WATCHDOG, || {
                    seg.word(2).load(Ordering::Relaxed) == start
                })
                .expect("wait");
            drop(guard);
            timed_out
        });
        // Once we hold the lock after the waiter's flag, it is inside `wait`.
        let deadline = Instant::now() + WATCHDOG;
        loop {
            let guard = seg.lock();
            if seg.word(3).load(Ordering::Relaxed) == 1 {
                seg.word(2).fetch_add(1, Ordering::Relaxed);
                drop(guard);
                break;
            }
            drop(guard);
            assert!(Instant::now() < deadline, "the waiter thread never waited");
            std::thread::yield_now();
        }
        seg.condvar.notify_all();
        assert!(!waiter.join().unwrap(), "the waiter thread timed out");
    });
}

#[test]
fn lock_timeout_against_a_live_holder_times_out() {
    let seg = Segment::create();
    let mut holder = seg.peer("mutex-hold");
    holder.expect_line("locked");

    assert_eq!(outcome(seg.mutex.try_lock()), "WouldBlock");
    let limit = Duration::from_millis(200);
    let start = Instant::now();
    assert_eq!(outcome(seg.mutex.lock_timeout(limit)), "TimedOut");
    assert!(
        start.elapsed() >= limit,
        "gave up early: {:?}",
        start.elapsed()
    );
    let deadline = Instant::now() + Duration::from_millis(50);
    assert_eq!(outcome(seg.mutex.lock_until(Some(deadline))), "TimedOut");
    assert!(Instant::now() >= deadline);

    // A clean release is no owner death.
    holder.close_stdin();
    holder.expect_line("released");
    holder.wait_success();
    let _guard = seg.lock();
    assert_eq!(seg.counters(), (1, 1));
}
