//! `ipc doctor`: the kernel limits that bound each transport, what each permits in plain words,
//! and the command that raises it.
//!
//! Every limit gets one entry: its name (the sysctl, rlimit or path an operator knows it by),
//! its value, what it means for the transport ("largest posix-mq message: 8192 bytes"), and the
//! fix. Values that make a transport unusable or tight are flagged. The command reads only; it
//! exits 0 whatever it finds (flags are advice), and 1 only if it cannot print (0 if the
//! reader of its output left: see [`Failure::Closed`]).
//!
//! `--json` prints the same as one JSON object on one line, `"kind":"limits"`: `limits` maps
//! each name to its value (numbers, `null` where unknown, an object for `kernel.sem`), `checks`
//! lists the entries in order, each `"kind":"limit"`.

use std::fmt::Write as _;

use ipc::posix::mq::MqLimits;
use ipc::sysv::msg::MsgLimits;

use crate::failure::{Failure, say};
use crate::text::json_line;

/// Show the kernel limits that bound each transport, and how to raise them.
#[derive(clap::Args)]
pub struct Args {
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// The bytes the kernel charges to `RLIMIT_MSGQUEUE` per message of a queue, beyond the
/// message itself (its `msg_msg` header and pointer, rounded up as ipc-posix does).
const MQ_OVERHEAD_PER_MESSAGE: u64 = 96;
/// The capacity of a pipe nobody resized (`PIPE_DEF_BUFFERS` pages).
const PIPE_DEFAULT: u64 = 64 * 1024;
const SHM_DIR: &str = "/dev/shm";

/// How a limit leaves its transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Ok,
    /// Usable, but small enough that common settings fail or block early.
    Tight,
    /// The transport cannot work at all (or not unprivileged).
    Unusable,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Tight => "tight",
            Status::Unusable => "unusable",
        }
    }
}

/// A value as read.
#[derive(Clone, Debug)]
enum Value {
    Num(u64),
    /// An rlimit of `RLIM_INFINITY`.
    Unlimited,
    /// Several numbers with names (`kernel.sem`).
    Fields(Vec<(&'static str, u64)>),
    Text(String),
    Unknown,
}

impl Value {
    fn text(&self) -> String {
        match self {
            Value::Num(n) => n.to_string(),
            Value::Unlimited => "unlimited".into(),
            Value::Fields(f) => f
                .iter()
                .map(|(_, v)| v.to_string())
                .collect::<Vec<_>>()
                .join(" "),
            Value::Text(t) => t.clone(),
            Value::Unknown => "unknown".into(),
        }
    }
}

/// A value in JSON: a number, `"unlimited"`, an object of named numbers, a string, or `null`.
impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            Value::Num(n) => s.serialize_u64(*n),
            Value::Unlimited => s.serialize_str("unlimited"),
            Value::Fields(f) => {
                let mut map = s.serialize_map(Some(f.len()))?;
                for (k, v) in f {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Value::Text(t) => s.serialize_str(t),
            Value::Unknown => s.serialize_none(),
        }
    }
}

/// One limit, what it permits, and how to raise it.
#[derive(Debug)]
struct Check {
    transport: &'static str,
    name: &'static str,
    value: Value,
    meaning: String,
    fix: String,
    status: Status,
    /// Why it is flagged (empty when `Ok`).
    why: String,
}

impl Check {
    fn new(
        transport: &'static str,
        name: &'static str,
        value: Value,
        meaning: String,
        fix: String,
    ) -> Check {
        Check {
            transport,
            name,
            value,
            meaning,
            fix,
            status: Status::Ok,
            why: String::new(),
        }
    }

    fn flag(mut self, status: Status, why: impl Into<String>) -> Check {
        self.status = status;
        self.why = why.into();
        self
    }

    /// Flags `Unusable` if `unusable`, else `Tight` if `tight`.
    fn flag_if(self, unusable: Option<String>, tight: Option<String>) -> Check {
        match (unusable, tight) {
            (Some(why), _) => self.flag(Status::Unusable, why),
            (None, Some(why)) => self.flag(Status::Tight, why),
            (None, None) => self,
        }
    }
}

pub fn run(args: Args) -> Result<(), Failure> {
    let checks = gather();
    let out = if args.json {
        render_json(&checks)
    } else {
        render_text(&checks)
    };
    // Line by line through `say`: values read from /proc are shown as they are, escaped.
    let mut stdout = std::io::stdout().lock();
    for line in out.lines() {
        say(&mut stdout, line)?;
    }
    Ok(())
}

fn gather() -> Vec<Check> {
    let mut checks = Vec::new();
    posix_mq(&mut checks);
    sysv_mq(&mut checks);
    sysv_shm(&mut checks);
    sysv_sem(&mut checks);
    posix_shm(&mut checks);
    memlock(&mut checks);
    pipes(&mut checks);
    sockets(&mut checks);
    checks
}

fn num(v: Option<u64>) -> Value {
    v.map_or(Value::Unknown, Value::Num)
}

/// `n` bytes for people: `8192 bytes (8 KiB)`.
fn bytes(n: u64) -> String {
    if n >= 1 << 62 {
        return format!("{n} bytes (effectively unlimited)");
    }
    const UNITS: [(&str, u64); 4] = [
        ("EiB", 1 << 60),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (unit, size) in UNITS {
        if n >= size {
            let whole = n / size;
            let exact = n % size == 0;
            let shown = if exact {
                format!("{whole} {unit}")
            } else {
                format!("{:.1} {unit}", n as f64 / size as f64)
            };
            return format!("{n} bytes ({shown})");
        }
    }
    format!("{n} bytes")
}

fn posix_mq(checks: &mut Vec<Check>) {
    // `MqLimits::read` falls back to the kernel defaults; tell "unreadable" apart here.
    let limits = MqLimits::read();
    let msg_max = ipc::sysctl("fs.mqueue.msg_max");
    let msgsize_max = ipc::sysctl("fs.mqueue.msgsize_max");
    let queues_max = ipc::sysctl("fs.mqueue.queues_max");

    checks.push(
        Check::new(
            "posix-mq",
            "fs.mqueue.msg_max",
            num(msg_max),
            format!("deepest posix-mq queue: {} messages", limits.msg_max),
            "sysctl -w fs.mqueue.msg_max=N (persist in /etc/sysctl.d/)".into(),
        )
        .flag_if(
            (limits.msg_max == 0).then(|| "no queue can hold a message".into()),
            (limits.msg_max < 10).then(|| {
                "below the kernel default of 10: a sender blocks after a few messages".into()
            }),
        ),
    );
    checks.push(
        Check::new(
            "posix-mq",
            "fs.mqueue.msgsize_max",
            num(msgsize_max),
            format!("largest posix-mq message: {}", bytes(limits.msgsize_max)),
            "sysctl -w fs.mqueue.msgsize_max=N".into(),
        )
        .flag_if(
            None,
            (limits.msgsize_max < 8192)
                .then(|| "below the kernel default of 8192 bytes".to_string()),
        ),
    );
    checks.push(
        Check::new(
            "posix-mq",
            "fs.mqueue.queues_max",
            num(queues_max),
            format!(
                "posix-mq queues on the system: at most {}",
                limits.queues_max
            ),
            "sysctl -w fs.mqueue.queues_max=N".into(),
        )
        .flag_if(
            (limits.queues_max == 0).then(|| "no queue can be created".into()),
            (limits.queues_max < 16).then(|| "only a handful of queues".into()),
        ),
    );

    // RLIMIT_MSGQUEUE: bytes of all of this user's queues, charged at creation.
    let rlimit = limits.rlimit_msgqueue;
    let per_queue = limits.msg_max * (limits.msgsize_max + MQ_OVERHEAD_PER_MESSAGE);
    let value = if rlimit == u64::MAX {
        Value::Unlimited
    } else {
        Value::Num(rlimit)
    };
    let meaning = if rlimit == u64::MAX {
        "bytes of posix-mq queues per user: unlimited".to_string()
    } else {
        let fit = rlimit.checked_div(per_queue).unwrap_or(0);
        // The largest message a queue of the deepest allowed depth could take.
        let largest_at_depth = (rlimit / limits.msg_max.max(1))
            .saturating_sub(MQ_OVERHEAD_PER_MESSAGE)
            .min(limits.msgsize_max);
        format!(
            "bytes of posix-mq queues per user: {}; fits {fit} queue(s) of {} x {}-byte \
             messages (each charged {}); one queue of depth {} takes messages up to {} bytes",
            bytes(rlimit),
            limits.msg_max,
            limits.msgsize_max,
            bytes(per_queue),
            limits.msg_max,
            largest_at_depth,
        )
    };
    let check = Check::new(
        "posix-mq",
        "RLIMIT_MSGQUEUE",
        value,
        meaning,
        "ulimit -q N (shell), LimitMSGQUEUE= (systemd), msgqueue in /etc/security/limits.conf"
            .into(),
    );
    let check = if rlimit != u64::MAX && rlimit < MQ_OVERHEAD_PER_MESSAGE + 1 {
        check.flag(Status::Unusable, "not even a one-message queue fits")
    } else if rlimit != u64::MAX && rlimit < per_queue {
        check.flag(
            Status::Tight,
            "a queue at the largest depth and message size does not fit",
        )
    } else {
        check
    };
    checks.push(check);

    let mounted = mount_of("mqueue");
    checks.push(match &mounted {
        Some(at) => Check::new(
            "posix-mq",
            "/dev/mqueue",
            Value::Text(format!("mounted at {at}")),
            "posix-mq queues can be listed and removed as files there".into(),
            "nothing to do".into(),
        ),
        None => Check::new(
            "posix-mq",
            "/dev/mqueue",
            Value::Text("not mounted".into()),
            "queues still work, but cannot be listed or cleaned up as files".into(),
            "mkdir -p /dev/mqueue && mount -t mqueue none /dev/mqueue".into(),
        )
        .flag(Status::Tight, "leftover queues are invisible"),
    });
}

fn sysv_mq(checks: &mut Vec<Check>) {
    let limits = MsgLimits::read();
    let msgmax = ipc::sysctl("kernel.msgmax");
    let msgmnb = ipc::sysctl("kernel.msgmnb");
    let msgmni = ipc::sysctl("kernel.msgmni");
    checks.push(
        Check::new(
            "sysv-mq",
            "kernel.msgmax",
            num(msgmax),
            format!("largest sysv-mq message: {}", bytes(limits.msgmax)),
            "sysctl -w kernel.msgmax=N".into(),
        )
        .flag_if(
            (limits.msgmax == 0).then(|| "no message can be sent".into()),
            (limits.msgmax < 8192).then(|| "below the kernel default of 8192 bytes".into()),
        ),
    );
    let depth = limits.msgmnb.checked_div(limits.msgmax).unwrap_or(0);
    checks.push(
        Check::new(
            "sysv-mq",
            "kernel.msgmnb",
            num(msgmnb),
            format!(
                "bytes queued in one sysv-mq queue: {}, i.e. {depth} messages of the largest size",
                bytes(limits.msgmnb)
            ),
            "sysctl -w kernel.msgmnb=N (raising one queue's msg_qbytes above it needs \
             CAP_SYS_RESOURCE)"
                .into(),
        )
        .flag_if(
            (limits.msgmnb == 0).then(|| "no queue can hold a message".into()),
            (limits.msgmnb < limits.msgmax)
                .then(|| "a message of the largest size does not fit in a queue".into()),
        ),
    );
    checks.push(
        Check::new(
            "sysv-mq",
            "kernel.msgmni",
            num(msgmni),
            format!("sysv-mq queues on the system: at most {}", limits.msgmni),
            "sysctl -w kernel.msgmni=N".into(),
        )
        .flag_if(
            (limits.msgmni == 0).then(|| "no queue can be created".into()),
            (limits.msgmni < 16).then(|| "only a handful of queues".into()),
        ),
    );
}

fn sysv_shm(checks: &mut Vec<Check>) {
    let shmmax = ipc::sysctl("kernel.shmmax");
    let shmall = ipc::sysctl("kernel.shmall");
    let shmmni = ipc::sysctl("kernel.shmmni");
    let page = page_size();
    checks.push(
        Check::new(
            "sysv-shm",
            "kernel.shmmax",
            num(shmmax),
            format!(
                "largest sysv-shm segment: {}",
                shmmax.map_or("unknown".into(), bytes)
            ),
            "sysctl -w kernel.shmmax=N".into(),
        )
        .flag_if(
            (shmmax == Some(0)).then(|| "no segment can be created".into()),
            shmmax
                .filter(|&n| n < 1 << 20)
                .map(|_| "segments (so rings) are limited to under 1 MiB".into()),
        ),
    );
    checks.push(
        Check::new(
            "sysv-shm",
            "kernel.shmall",
            num(shmall),
            format!(
                "all sysv-shm segments together: {} pages of {page} bytes, i.e. {}",
                shmall.map_or("unknown".into(), |n| n.to_string()),
                shmall.map_or("unknown".into(), |n| bytes(n.saturating_mul(page)))
            ),
            "sysctl -w kernel.shmall=PAGES".into(),
        )
        .flag_if(
            (shmall == Some(0)).then(|| "no segment can be created".into()),
            shmall
                .filter(|&n| n.saturating_mul(page) < 16 << 20)
                .map(|_| "under 16 MiB of segments in all".into()),
        ),
    );
    checks.push(
        Check::new(
            "sysv-shm",
            "kernel.shmmni",
            num(shmmni),
            format!(
                "sysv-shm segments on the system: at most {}",
                shmmni.map_or("unknown".into(), |n| n.to_string())
            ),
            "sysctl -w kernel.shmmni=N".into(),
        )
        .flag_if(
            (shmmni == Some(0)).then(|| "no segment can be created".into()),
            shmmni
                .filter(|&n| n < 16)
                .map(|_| "only a handful of segments".into()),
        ),
    );
}

fn sysv_sem(checks: &mut Vec<Check>) {
    let fix = "sysctl -w kernel.sem=\"SEMMSL SEMMNS SEMOPM SEMMNI\" (all four, in this order)";
    let check = match ipc::sysv::sem::Limits::read() {
        Ok(l) => Check::new(
            "sysv-sem",
            "kernel.sem",
            Value::Fields(vec![
                ("semmsl", l.semmsl),
                ("semmns", l.semmns),
                ("semopm", l.semopm),
                ("semmni", l.semmni),
            ]),
            format!(
                "sysv semaphore sets (`ipc::sysv::sem`): {} semaphores per set (SEMMSL), {} in all (SEMMNS), {} operations per semop (SEMOPM), \
                 {} sets (SEMMNI)",
                l.semmsl, l.semmns, l.semopm, l.semmni
            ),
            fix.into(),
        )
        .flag_if(
            (l.semmsl == 0 || l.semmns == 0 || l.semmni == 0 || l.semopm == 0)
                .then(|| "no semaphore set can be created or used".into()),
            (l.semmni < 16 || l.semmns < 16).then(|| "only a handful of semaphores".into()),
        ),
        Err(e) => Check::new(
            "sysv-sem",
            "kernel.sem",
            Value::Unknown,
            format!("sysv semaphores: limits unreadable ({e})"),
            fix.into(),
        )
        .flag(Status::Tight, "could not read /proc/sys/kernel/sem"),
    };
    checks.push(check);
}

fn posix_shm(checks: &mut Vec<Check>) {
    let fix = format!("mount -o remount,size=N {SHM_DIR} (e.g. size=2G)");
    let check = match nix::sys::statvfs::statvfs(SHM_DIR) {
        // The field types differ between targets (u32 on some 32-bit ones).
        #[allow(clippy::unnecessary_cast)]
        Ok(st) => {
            let block = st.fragment_size() as u64;
            let size = (st.blocks() as u64).saturating_mul(block);
            let free = (st.blocks_available() as u64).saturating_mul(block);
            if size == 0 {
                Check::new(
                    "posix-shm",
                    "/dev/shm",
                    Value::Text("no size limit".into()),
                    "posix-shm rings: /dev/shm is not size-limited (tmpfs size=0)".into(),
                    fix,
                )
            } else {
                Check::new(
                    "posix-shm",
                    "/dev/shm",
                    Value::Fields(vec![("size", size), ("free", free)]),
                    format!(
                        "posix-shm rings: {SHM_DIR} holds {}, {} free",
                        bytes(size),
                        bytes(free)
                    ),
                    fix,
                )
                .flag_if(
                    (free == 0).then(|| "full: no new segment can get memory".into()),
                    (free < 64 << 20).then(|| "under 64 MiB free".into()),
                )
            }
        }
        Err(e) => Check::new(
            "posix-shm",
            "/dev/shm",
            Value::Unknown,
            format!("posix-shm rings: {SHM_DIR} cannot be examined ({e})"),
            format!("mount -t tmpfs -o size=N tmpfs {SHM_DIR}"),
        )
        .flag(Status::Unusable, "shm_open needs a tmpfs at /dev/shm"),
    };
    checks.push(check);
}

fn memlock(checks: &mut Vec<Check>) {
    let soft = rlimit_from_proc("Max locked memory");
    let (value, meaning) = match soft {
        Some(None) => (
            Value::Unlimited,
            "memory a process may lock in RAM (mlock): unlimited".to_string(),
        ),
        Some(Some(n)) => (
            Value::Num(n),
            format!(
                "memory a process may lock in RAM (mlock): {}; ipc locks nothing itself, \
                 it matters to an application that pins its rings",
                bytes(n)
            ),
        ),
        None => (
            Value::Unknown,
            "memory a process may lock in RAM (mlock): unknown".to_string(),
        ),
    };
    checks.push(Check::new(
        "shm rings",
        "RLIMIT_MEMLOCK",
        value,
        meaning,
        "ulimit -l KIB (shell), LimitMEMLOCK= (systemd), memlock in /etc/security/limits.conf"
            .into(),
    ));
}

fn pipes(checks: &mut Vec<Check>) {
    let max = ipc::sysctl("fs.pipe-max-size");
    checks.push(
        Check::new(
            "pipe, fifo",
            "fs.pipe-max-size",
            num(max),
            format!(
                "largest pipe/fifo buffer an unprivileged process may ask for: {}",
                max.map_or("unknown".into(), bytes)
            ),
            "sysctl -w fs.pipe-max-size=N".into(),
        )
        .flag_if(
            None,
            max.filter(|&n| n < PIPE_DEFAULT)
                .map(|_| "pipes cannot grow past the default".into()),
        ),
    );
    checks.push(Check::new(
        "pipe, fifo",
        "pipe default capacity",
        Value::Num(PIPE_DEFAULT),
        format!(
            "a new pipe or fifo holds {} until resized (F_SETPIPE_SZ, which the transports do \
             up to fs.pipe-max-size for message_size); larger messages go in pieces",
            bytes(PIPE_DEFAULT)
        ),
        "capacity=N in the transport string (up to fs.pipe-max-size)".into(),
    ));
}

fn sockets(checks: &mut Vec<Check>) {
    let wmem_max = ipc::sysctl("net.core.wmem_max");
    checks.push(
        Check::new(
            "unix, socketpair",
            "net.core.wmem_max",
            num(wmem_max),
            format!(
                "largest socket send buffer an unprivileged process may ask for, so the largest \
                 message_size of a unix socket or socket pair: {}",
                wmem_max.map_or("unknown".into(), bytes)
            ),
            "sysctl -w net.core.wmem_max=N (or message_size below it)".into(),
        )
        .flag_if(
            None,
            wmem_max
                .filter(|&n| n < PIPE_DEFAULT)
                .map(|_| "the default message_size (64 KiB) does not fit".into()),
        ),
    );
    // IFF_UP in the interface flags: a network namespace made by hand starts with it down.
    let lo_flags = std::fs::read_to_string("/sys/class/net/lo/flags")
        .ok()
        .and_then(|f| u64::from_str_radix(f.trim().trim_start_matches("0x"), 16).ok());
    let lo_up = lo_flags.map(|flags| flags & 1 == 1);
    checks.push(
        Check::new(
            "tcp, zenoh",
            "loopback",
            match lo_up {
                Some(true) => Value::Text("up".into()),
                Some(false) => Value::Text("down".into()),
                None => Value::Unknown,
            },
            "tcp:127.0.0.1:PORT and zenoh's tcp/127.0.0.1 endpoints need the loopback \
             interface up"
                .into(),
            "ip link set lo up".into(),
        )
        .flag_if(
            (lo_up == Some(false)).then(|| "loopback is down: nothing reaches 127.0.0.1".into()),
            None,
        ),
    );
}

/// The mount point of the first file system of type `fstype`.
fn mount_of(fstype: &str) -> Option<String> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|line| {
        let mut fields = line.split_whitespace();
        let (_, at, ty) = (fields.next()?, fields.next()?, fields.next()?);
        (ty == fstype).then(|| at.to_owned())
    })
}

/// The soft limit `label` from `/proc/self/limits`: `Some(None)` for unlimited.
fn rlimit_from_proc(label: &str) -> Option<Option<u64>> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with(label))?;
    let soft = line[label.len()..].split_whitespace().next()?;
    if soft == "unlimited" {
        Some(None)
    } else {
        soft.parse().ok().map(Some)
    }
}

/// The base page size, from the kernel's report on our own mappings (4096 if unreadable).
fn page_size() -> u64 {
    std::fs::read_to_string("/proc/self/smaps")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("KernelPageSize:"))
                .and_then(|v| v.trim().strip_suffix("kB"))
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
        .map_or(4096, |kb| kb * 1024)
}

fn render_text(checks: &[Check]) -> String {
    let mut out = String::from("Kernel limits that bound each transport\n");
    let mut transport = "";
    let name_width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in checks {
        if c.transport != transport {
            transport = c.transport;
            let _ = writeln!(out, "\n{transport}");
        }
        let _ = writeln!(
            out,
            "  {:<8} {:<name_width$}  {}",
            format!("[{}]", c.status.word()),
            c.name,
            c.value.text()
        );
        let _ = writeln!(out, "           {}", c.meaning);
        if c.status != Status::Ok {
            let _ = writeln!(out, "           {}: {}", c.status.word(), c.why);
        }
        let _ = writeln!(out, "           fix: {}", c.fix);
    }
    let flagged: Vec<&str> = checks
        .iter()
        .filter(|c| c.status != Status::Ok)
        .map(|c| c.name)
        .collect();
    if flagged.is_empty() {
        out.push_str("\nNo limit stands in the way of any transport.\n");
    } else {
        let _ = writeln!(out, "\nFlagged: {}", flagged.join(", "));
    }
    out
}

/// The one JSON line of `--json`.
fn render_json(checks: &[Check]) -> String {
    /// `limits`: name → value, in the order of the checks (a map type would sort them).
    struct Limits<'a>(&'a [Check]);
    impl serde::Serialize for Limits<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = s.serialize_map(Some(self.0.len()))?;
            for c in self.0 {
                map.serialize_entry(c.name, &c.value)?;
            }
            map.end()
        }
    }
    #[derive(serde::Serialize)]
    struct Entry<'a> {
        kind: &'static str,
        transport: &'a str,
        name: &'a str,
        value: &'a Value,
        meaning: &'a str,
        fix: &'a str,
        status: &'static str,
        why: Option<&'a str>,
    }
    #[derive(serde::Serialize)]
    struct Report<'a> {
        kind: &'static str,
        limits: Limits<'a>,
        checks: Vec<Entry<'a>>,
    }
    let mut line = json_line(&Report {
        kind: "limits",
        limits: Limits(checks),
        checks: checks
            .iter()
            .map(|c| Entry {
                kind: "limit",
                transport: c.transport,
                name: c.name,
                value: &c.value,
                meaning: &c.meaning,
                fix: &c.fix,
                status: c.status.word(),
                why: (!c.why.is_empty()).then_some(c.why.as_str()),
            })
            .collect(),
    });
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_readable() {
        assert_eq!(bytes(8192), "8192 bytes (8 KiB)");
        assert_eq!(bytes(100), "100 bytes");
        assert_eq!(bytes(1536), "1536 bytes (1.5 KiB)");
    }

    #[test]
    fn every_limit_is_checked() {
        let names: Vec<&str> = gather().iter().map(|c| c.name).collect();
        for name in [
            "fs.mqueue.msg_max",
            "kernel.msgmax",
            "kernel.sem",
            "/dev/shm",
            "RLIMIT_MSGQUEUE",
            "RLIMIT_MEMLOCK",
            "fs.pipe-max-size",
            "/dev/mqueue",
        ] {
            assert!(names.contains(&name), "{name} missing from {names:?}");
        }
    }
}
