//! `ipc ls`, `ipc clean` and `ipc inspect` on real objects of every family, made by this test
//! (through the `ipc` crate) and by child processes, each removed by a guard however the test
//! ends.

use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ipc::sysv::Key;

mod common;

use common::{ShmName, ipc, text};

fn run(args: &[&str]) -> Output {
    ipc()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run ipc")
}

/// A name no other test (or test run) uses: pid and counter.
/// Held by every test here while it runs: `ipc ls`, `inspect` and `clean` map each ring they
/// look at for a moment, so one test's scan made another's `clean --stale` see its ring as
/// attached (and keep it) now and then. Tests of this file scan one at a time.
fn one_scan_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static SCANS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SCANS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn unique(what: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("/ipc-objects-test-{what}-{}-{n}", std::process::id())
}

/// A System V key no other test uses (pid and counter in its bits).
fn unique_key() -> Key {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) as i32;
    Key::Explicit(0x3a00_0000 | ((std::process::id() as i32 & 0xffff) << 8) | (n & 0xff))
}

/// A POSIX queue, removed when dropped.
struct QueueName(String);

impl Drop for QueueName {
    fn drop(&mut self) {
        let _ = nix::mqueue::mq_unlink(self.0.as_str());
    }
}

/// A System V object by its `ipcrm` option and id, removed when dropped.
struct SysvGuard(&'static str, i32);

impl Drop for SysvGuard {
    fn drop(&mut self) {
        let _ = Command::new("ipcrm")
            .args([self.0, &self.1.to_string()])
            .output();
    }
}

/// A child process, killed and reaped when dropped.
struct Running(Child);

impl Running {
    fn recv(spec: &str) -> Running {
        Running(
            ipc()
                .args(["recv", spec, "--timeout", "60s"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start ipc recv"),
        )
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until `ipc inspect` reads the ring (its creator has initialised it).
fn wait_for_ring(spec: &str) -> Output {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = run(&["inspect", spec]);
        if out.status.success() {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "ring {spec} never appeared: {}",
            text(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `ipc ls --json`, one parsed object per line.
fn ls_json() -> Vec<serde_json::Value> {
    let out = run(&["ls", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn row<'a>(rows: &'a [serde_json::Value], name: &str) -> Option<&'a serde_json::Value> {
    rows.iter().find(|r| r["name"] == name)
}

#[test]
fn ls_lists_every_family_and_marks_our_ring() {
    let _scan = one_scan_at_a_time();
    // A posix-shm ring through the facade (this process is its creator and consumer).
    let ring = ShmName(unique("ring"));
    let ring_spec = format!("posix-shm:{}?capacity=64KiB", ring.0);
    let receiver = ipc::open_receiver(&ring_spec).expect("create the ring");
    // A plain POSIX object, and a named semaphore, made as files as another program would.
    let plain = ShmName(unique("plain"));
    std::fs::write(plain.path(), vec![0u8; 8192]).unwrap();
    // A POSIX queue.
    let queue = QueueName(unique("mq"));
    let mq_listed = std::path::Path::new("/proc/mounts").exists()
        && std::fs::read_to_string("/proc/mounts")
            .unwrap()
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("/dev/mqueue"));
    let mq = ipc::open_receiver(&format!("posix-mq:{}", queue.0)).expect("create the queue");
    // System V segment, queue and semaphore set.
    let seg = ipc::sysv::shm::SysvSegment::create(&unique_key(), 4096, 0o600).unwrap();
    let _seg_guard = SysvGuard("-m", seg.id());
    let sysv_mq = ipc::sysv::msg::MsgReceiver::open(
        &format!("sysv-mq:key={}", unique_key_text())
            .parse()
            .unwrap(),
    )
    .unwrap();
    let _mq_guard = SysvGuard("-q", sysv_mq.msqid());
    let sem = ipc::sysv::sem::SemaphoreSet::create(&unique_key(), 2, 0o600).unwrap();
    let _sem_guard = SysvGuard("-s", sem.id());

    let rows = ls_json();
    let ring_row = row(&rows, &format!("posix-shm:{}", ring.0)).expect("ring listed");
    assert_eq!(ring_row["ours"], true, "{ring_row}");
    assert_eq!(ring_row["creator_pid"], std::process::id(), "{ring_row}");
    assert_eq!(ring_row["capacity"], 65536, "{ring_row}");
    assert_eq!(
        ring_row["consumer"]["pid"],
        std::process::id(),
        "{ring_row}"
    );
    let plain_row = row(&rows, &format!("posix-shm:{}", plain.0)).expect("plain listed");
    assert_eq!(plain_row["ours"], false, "{plain_row}");
    assert_eq!(plain_row["bytes"], 8192, "{plain_row}");
    if mq_listed {
        let q = row(&rows, &format!("posix-mq:{}", queue.0)).expect("queue listed");
        assert_eq!(q["kind"], "posix-mq");
    } else {
        eprintln!("SKIPPED: /dev/mqueue is not mounted: POSIX queue listing not checked");
    }
    let seg_row = row(&rows, &format!("sysv-shm:id={}", seg.id())).expect("segment listed");
    assert_eq!(seg_row["ours"], false, "{seg_row}");
    assert_eq!(seg_row["bytes"], 4096, "{seg_row}");
    assert_eq!(seg_row["creator_pid"], std::process::id(), "{seg_row}");
    let mq_row = row(&rows, &format!("sysv-mq:id={}", sysv_mq.msqid())).expect("sysv-mq");
    assert_eq!(mq_row["count"], 0, "{mq_row}");
    let sem_row = row(&rows, &format!("sysv-sem:id={}", sem.id())).expect("sysv-sem");
    assert_eq!(sem_row["count"], 2, "{sem_row}");

    // The table shows the same names, and ours marked.
    let out = run(&["ls"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.starts_with("KIND"), "{table}");
    let line = |name: &str| {
        table
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("{name} not in\n{table}"))
            .to_owned()
    };
    assert!(line(&format!("posix-shm:{}", ring.0)).contains(" yes "));
    assert!(line(&format!("posix-shm:{}", plain.0)).contains(" no "));
    line(&format!("sysv-shm:id={}", seg.id()));
    line(&format!("sysv-mq:id={}", sysv_mq.msqid()));
    line(&format!("sysv-sem:id={}", sem.id()));

    drop((receiver, mq, seg, sysv_mq, sem));
}

fn unique_key_text() -> String {
    match unique_key() {
        Key::Explicit(k) => format!("{:#x}", k as u32),
        _ => unreachable!(),
    }
}

/// A System V segment without a layout header, whose creator has exited: `ipcmk -M` if
/// installed, else made here (then its creator is alive, which `--stale` must not need).
fn foreign_sysv_segment() -> (i32, SysvGuard) {
    if let Ok(out) = Command::new("ipcmk").args(["-M", "4096"]).output() {
        if out.status.success() {
            let id = text(&out.stdout)
                .trim()
                .rsplit(' ')
                .next()
                .and_then(|id| id.parse().ok())
                .expect("ipcmk prints the id");
            return (id, SysvGuard("-m", id));
        }
    }
    eprintln!("ipcmk not available: making the foreign segment in-process");
    let seg = ipc::sysv::shm::SysvSegment::create(&unique_key(), 4096, 0o600).unwrap();
    let id = seg.id();
    seg.release();
    (id, SysvGuard("-m", id))
}

fn sysv_exists(id: i32) -> bool {
    std::fs::read_to_string("/proc/sysvipc/shm")
        .unwrap()
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(&id.to_string()))
}

#[test]
fn clean_stale_removes_a_killed_channel_only() {
    let _scan = one_scan_at_a_time();
    let dead = ShmName(unique("dead"));
    let live = ShmName(unique("live"));
    let plain = ShmName(unique("foreign"));
    std::fs::write(plain.path(), vec![0u8; 4096]).unwrap();
    let (foreign_id, _foreign_guard) = foreign_sysv_segment();

    let mut killed = Running::recv(&format!("posix-shm:{}", dead.0));
    let _live_recv = Running::recv(&format!("posix-shm:{}", live.0));
    wait_for_ring(&format!("posix-shm:{}", dead.0));
    wait_for_ring(&format!("posix-shm:{}", live.0));
    killed.kill();
    assert!(dead.exists(), "SIGKILL leaves the segment behind");

    let dead_name = format!("posix-shm:{}", dead.0);
    let out = run(&["clean", "--stale", "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains(&format!("would remove {dead_name} ")),
        "{said}"
    );
    // Ours and kept: it says why. Another program's: not mentioned at all.
    assert!(
        said.contains(&format!("kept posix-shm:{}: creator ", live.0)),
        "{said}"
    );
    assert!(
        !said.contains(&format!("would remove posix-shm:{}", live.0)),
        "{said}"
    );
    assert!(!said.contains(&plain.0), "{said}");
    assert!(
        !said.contains(&format!("sysv-shm:id={foreign_id} ")),
        "{said}"
    );
    assert!(dead.exists(), "--dry-run removed it");

    // Named with --stale: only the stale ones of those named.
    let out = run(&[
        "clean",
        "--stale",
        "--dry-run",
        &format!("posix-shm:{}", live.0),
        &plain.0,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(!said.contains("would remove"), "{said}");

    let out = run(&["clean", "--stale"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("removed {dead_name} ")),
        "{}",
        text(&out.stdout)
    );
    assert!(!dead.exists(), "the killed channel is still there");
    assert!(live.exists(), "the live channel was removed");
    assert!(plain.exists(), "the foreign POSIX object was removed");
    assert!(
        sysv_exists(foreign_id),
        "the foreign System V segment was removed"
    );

    // Named explicitly, a foreign object is removed.
    let out = run(&["clean", &plain.0, &format!("sysv-shm:id={foreign_id}")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!plain.exists());
    assert!(!sysv_exists(foreign_id));

    // Not found is an error; a bad name a usage error.
    let out = run(&["clean", &plain.0]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let out = run(&["clean", "sysv-shm:/nope"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = run(&["clean"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

/// `ipc inspect spec` of a ring a live `ipc recv` made: its capacity, consumer and creator.
fn inspect_shows_capacity_and_consumer_of(spec: &str) {
    let recv = Running::recv(&format!("{spec}?capacity=128KiB"));
    let out = wait_for_ring(spec);
    let said = text(&out.stdout);
    assert!(said.contains("capacity     131072 bytes"), "{said}");
    assert!(
        said.contains(&format!("consumer     pid {} (alive)", recv.0.id())),
        "{said}"
    );
    assert!(
        said.contains(&format!("creator      pid {} (alive)", recv.0.id())),
        "{said}"
    );
}

/// A file, removed when dropped (a killed `ipc recv` leaves the ring it made).
struct FileName(String);

impl Drop for FileName {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn inspect_finds_a_mapped_file_by_path() {
    let file = FileName(format!("/tmp{}", unique("file-shm")));
    inspect_shows_capacity_and_consumer_of(&format!("file-shm:{}", file.0));
    std::fs::write(&file.0, vec![0u8; 8192]).unwrap();
    let out = run(&["inspect", &format!("file-shm:{}", file.0)]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
}

#[test]
fn inspect_shows_capacity_and_consumer() {
    let _scan = one_scan_at_a_time();
    let ring = ShmName(unique("inspect"));
    let spec = format!("posix-shm:{}", ring.0);
    inspect_shows_capacity_and_consumer_of(&spec);

    // Not ours: an error naming why, and nothing printed.
    let plain = ShmName(unique("plain"));
    std::fs::write(plain.path(), vec![0u8; 8192]).unwrap();
    let out = run(&["inspect", &plain.0]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
}

/// `ipc` run in a new PID namespace with its own `/proc` (as a container sharing `/dev/shm`
/// and the IPC namespace with its host would): `None` where `unshare` is not permitted.
fn run_in_new_pid_namespace(args: &[&str]) -> Option<Output> {
    let out = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc"])
        .arg(env!("CARGO_BIN_EXE_ipc"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output();
    match out {
        Ok(out) if text(&out.stderr).contains("unshare failed") => {
            eprintln!("skipped: unshare not permitted: {}", text(&out.stderr));
            None
        }
        Ok(out) => Some(out),
        Err(e) => {
            eprintln!("skipped: no unshare: {e}");
            None
        }
    }
}

/// Issue 11: from another PID namespace every pid in the segment names some other process (or
/// none), and `/proc` there does not show who maps it: `clean --stale` used to remove live
/// rings. It must keep them, saying why.
#[test]
fn clean_stale_in_another_pid_namespace_keeps_a_live_ring() {
    let _scan = one_scan_at_a_time();
    let live = ShmName(unique("ns-live"));
    let spec = format!("posix-shm:{}", live.0);
    let _receiver = Running::recv(&spec);
    wait_for_ring(&spec);
    let Some(out) = run_in_new_pid_namespace(&["clean", "--stale"]) else {
        return;
    };
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        live.exists(),
        "removed a live ring from another namespace: {said}"
    );
    assert!(
        said.contains(&format!("kept {spec}: creator "))
            && said.contains("in another PID namespace"),
        "{said}"
    );
    // Seen from its own namespace it is simply alive.
    let out = run(&["clean", "--stale", "--dry-run"]);
    let said = text(&out.stdout);
    assert!(said.contains(&format!("kept {spec}: creator ")), "{said}");
    assert!(said.contains("alive"), "{said}");
}

/// Issue 11: a sender that created the ring and left has its messages waiting for a receiver:
/// they are kept unless the user asks to discard them.
#[test]
fn clean_stale_keeps_undelivered_records_unless_asked() {
    let _scan = one_scan_at_a_time();
    let ring = ShmName(unique("undelivered"));
    let spec = format!("posix-shm:{}?create=if_missing", ring.0);
    let mut send = ipc()
        .args(["send", &spec])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ipc send");
    {
        use std::io::Write;
        let mut stdin = send.stdin.take().expect("stdin");
        stdin.write_all(b"one\ntwo\n").expect("write to ipc send");
    }
    let out = send.wait_with_output().expect("ipc send ends");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let name = format!("posix-shm:{}", ring.0);

    let out = run(&["clean", "--stale", "--dry-run"]);
    let said = text(&out.stdout);
    assert!(
        said.contains(&format!("kept {name}: ")) && said.contains("2 undelivered records"),
        "{said}"
    );
    let out = run(&["clean", "--stale"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        ring.exists(),
        "removed undelivered messages: {}",
        text(&out.stdout)
    );

    let out = run(&["clean", "--stale", "--discard-undelivered", "--dry-run"]);
    let said = text(&out.stdout);
    assert!(said.contains(&format!("would remove {name} (")), "{said}");
    assert!(ring.exists());
    let out = run(&["clean", "--stale", "--discard-undelivered", &name]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!ring.exists(), "{}", text(&out.stdout));
}

/// Issue 12: a ring receiver waiting in an event loop (`ipc recv --label` waits through a
/// `WaitSet`) for a sender in another PID namespace, which cannot ring its doorbell (the pid
/// it would open in `/proc` names another process there): it must still get every message,
/// looking every park slice as a parked receiver does.
#[test]
fn an_event_loop_receiver_hears_a_sender_from_another_pid_namespace() {
    let _scan = one_scan_at_a_time();
    let ring = ShmName(unique("ns-bell"));
    let spec = format!("posix-shm:{}", ring.0);
    let receiver = ipc()
        .args(["recv", &spec, "--label", "--count", "3", "--timeout", "20s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ipc recv");
    let mut receiver = Running(receiver);
    wait_for_ring(&spec);
    let started = Instant::now();
    let Some(sent) = run_in_new_pid_namespace(&["send", &spec, "a", "b", "c"]) else {
        return;
    };
    assert!(sent.status.success(), "{}", text(&sent.stderr));
    let mut out = String::new();
    std::io::Read::read_to_string(receiver.0.stdout.as_mut().unwrap(), &mut out).unwrap();
    let status = receiver.0.wait().unwrap();
    assert!(status.success(), "ipc recv failed: {out}");
    assert_eq!(out, format!("{spec}\ta\n{spec}\tb\n{spec}\tc\n"));
    // Not at the receiver's 20 s deadline, when it would look anyway: within park slices.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "took {took:?}");
}
