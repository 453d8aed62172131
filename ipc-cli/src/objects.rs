//! The IPC objects on this machine, as `ipc ls`, `ipc clean` and `ipc inspect` see them.
//!
//! # Object names
//!
//! Every object is named `FAMILY:WHICH`, and `ipc ls` prints names in exactly this form, so a
//! name it prints can be given to `ipc clean` and (for shared memory) `ipc inspect`:
//!
//! | family       | names                                         | found in               |
//! |--------------|-----------------------------------------------|------------------------|
//! | `posix-shm`  | `posix-shm:/name` (or just `/name`)           | `/dev/shm/name`        |
//! | `posix-sem`  | `posix-sem:/name`                             | `/dev/shm/sem.name`    |
//! | `posix-mq`   | `posix-mq:/name`                              | `/dev/mqueue/name`     |
//! | `sysv-shm`   | `sysv-shm:id=N`, `sysv-shm:key=0x…` (or decimal) | `/proc/sysvipc/shm` |
//! | `sysv-mq`    | `sysv-mq:id=N`, `sysv-mq:key=0x…`             | `/proc/sysvipc/msg`    |
//! | `sysv-sem`   | `sysv-sem:id=N`, `sysv-sem:key=0x…`           | `/proc/sysvipc/sem`    |
//!
//! `ipc ls` names System V objects by id (private objects have no key); their key is its own
//! column.
//!
//! A `file-shm:/path` ring is a file anywhere on any file system: `ipc ls` and `ipc clean` do
//! not look for them (that would be a scan of every disk), `ipc inspect file-shm:/path` and
//! `ipc shm read|write file-shm:/path` take one by its path, and `rm` removes it.
//!
//! # Ours
//!
//! An object is this framework's if it is shared memory whose first bytes are an `ipc-sync`
//! layout header (magic `ipcsync\0`); never by its name alone. For those, the header names the
//! creator (pid and start time, so a reused pid is not mistaken for it), and a ring's control
//! block names its consumer and producers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use ipc::Segment;
use ipc::posix::PosixName;
use ipc::posix::shm::{Expect, SharedMemory};
use ipc::sync::process::same_pid_namespace;
use ipc::sync::ring::{self, RingState};
use ipc::sync::{Layout, LayoutKind, ProcessId, Shared};
use ipc::sysv::shm::{Access, SysvSegment};

use crate::failure::Failure;

/// Where POSIX shared memory and named semaphores live.
pub const SHM_DIR: &str = "/dev/shm";
/// Where POSIX message queues are listed, when the `mqueue` file system is mounted there.
pub const MQUEUE_DIR: &str = "/dev/mqueue";
/// How to mount it.
pub const MQUEUE_MOUNT: &str = "mount -t mqueue none /dev/mqueue";

/// The family of an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// System V shared memory segment.
    SysvShm,
    /// System V message queue.
    SysvMq,
    /// System V semaphore set.
    SysvSem,
    /// POSIX shared memory object.
    PosixShm,
    /// POSIX named semaphore.
    PosixSem,
    /// POSIX message queue.
    PosixMq,
}

impl Kind {
    /// The prefix of the object's names, without the colon.
    pub fn family(self) -> &'static str {
        match self {
            Kind::SysvShm => "sysv-shm",
            Kind::SysvMq => "sysv-mq",
            Kind::SysvSem => "sysv-sem",
            Kind::PosixShm => "posix-shm",
            Kind::PosixSem => "posix-sem",
            Kind::PosixMq => "posix-mq",
        }
    }

    fn from_family(family: &str) -> Option<Kind> {
        [
            Kind::SysvShm,
            Kind::SysvMq,
            Kind::SysvSem,
            Kind::PosixShm,
            Kind::PosixSem,
            Kind::PosixMq,
        ]
        .into_iter()
        .find(|k| k.family() == family)
    }

    fn is_sysv(self) -> bool {
        matches!(self, Kind::SysvShm | Kind::SysvMq | Kind::SysvSem)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.family())
    }
}

/// Which object of a family a name picks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Which {
    /// A System V id.
    Id(i32),
    /// A System V key.
    Key(i32),
    /// A POSIX name (with its leading `/`).
    Name(String),
}

/// An object as the command line names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Its family.
    pub kind: Kind,
    /// Which one.
    pub which: Which,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.which {
            Which::Id(id) => write!(f, "{}:id={id}", self.kind),
            Which::Key(key) => write!(f, "{}:key={}", self.kind, key_text(*key)),
            Which::Name(name) => write!(f, "{}:{name}", self.kind),
        }
    }
}

/// `0x` and eight hex digits, as `ipcs` prints keys.
pub fn key_text(key: i32) -> String {
    format!("{:#010x}", key as u32)
}

const SYNTAX: &str = "use posix-shm:/NAME (or /NAME), posix-sem:/NAME, posix-mq:/NAME, \
                      sysv-shm:id=N, sysv-shm:key=0xKEY, sysv-mq:id=N|key=…, sysv-sem:id=N|key=…";

/// Parses an object name (see the module documentation).
pub fn parse_target(text: &str) -> Result<Target, Failure> {
    let bad = |why: &str| Failure::Usage(format!("invalid object `{text}`: {why} ({SYNTAX})"));
    if text.starts_with('/') {
        return posix_target(Kind::PosixShm, text).map_err(|why| bad(&why));
    }
    let Some((family, rest)) = text.split_once(':') else {
        return Err(bad("no family"));
    };
    let kind = Kind::from_family(family).ok_or_else(|| bad("unknown family"))?;
    if !kind.is_sysv() {
        return posix_target(kind, rest).map_err(|why| bad(&why));
    }
    let which = if let Some(id) = rest.strip_prefix("id=") {
        Which::Id(
            id.parse::<i32>()
                .ok()
                .filter(|id| *id >= 0)
                .ok_or_else(|| bad("the id must be a number from `ipcs`"))?,
        )
    } else if let Some(key) = rest.strip_prefix("key=") {
        let parsed = match key.strip_prefix("0x").or_else(|| key.strip_prefix("0X")) {
            Some(hex) => u32::from_str_radix(hex, 16).ok().map(|k| k as i32),
            None => key.parse::<i32>().ok(),
        };
        match parsed {
            Some(0) => return Err(bad("key 0 is IPC_PRIVATE: name a private object by id")),
            Some(k) => Which::Key(k),
            None => return Err(bad("the key must be a number such as 0x1234abcd")),
        }
    } else {
        return Err(bad("System V objects are named by id=N or key=0x…"));
    };
    Ok(Target { kind, which })
}

fn posix_target(kind: Kind, name: &str) -> Result<Target, String> {
    PosixName::new(name).map_err(|e| e.to_string())?;
    Ok(Target {
        kind,
        which: Which::Name(name.to_owned()),
    })
}

/// Whether a process is alive, and how we know who it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Creator {
    /// Its pid.
    pub pid: u32,
    /// Whether it still runs (for our objects: the same process, by start time). Always
    /// `false` when `other_namespace`: we cannot tell.
    pub alive: bool,
    /// It lives in another PID namespace than ours (its pid means nothing here, so whether it
    /// runs is unknown).
    pub other_namespace: bool,
}

impl Creator {
    /// For `ipc ls`: `PID alive`, `PID dead` or `PID other-pidns`.
    pub fn describe(&self) -> String {
        let state = match (self.other_namespace, self.alive) {
            (true, _) => "other-pidns",
            (false, true) => "alive",
            (false, false) => "dead",
        };
        format!("{} {state}", self.pid)
    }
}

/// What the layout header of one of our segments says.
#[derive(Clone, Debug)]
pub enum Ours {
    /// A ring channel, read without locking.
    Ring(RingState),
    /// A layout the application chose.
    Custom,
    /// The magic is ours but the rest could not be read or validated.
    Unreadable(String),
}

impl Ours {
    /// One line for `ipc ls`.
    pub fn summary(&self) -> String {
        match self {
            Ours::Ring(state) => {
                let consumer = match state.consumer {
                    Some((e, _)) if !same_pid_namespace(e.pid_namespace) => {
                        format!("consumer {} in another PID namespace", e.id.pid)
                    }
                    Some((e, true)) => format!("consumer {} alive", e.id.pid),
                    Some((e, false)) => format!("consumer {} dead", e.id.pid),
                    None => "no consumer".to_owned(),
                };
                let alive = state.producers.iter().filter(|(_, a)| *a).count();
                format!(
                    "ring: {consumer}, producers {alive}/{} alive, {} B in flight",
                    state.producers.len(),
                    state.bytes_in_flight()
                ) + &match state.uncounted_records {
                    0 => String::new(),
                    n => format!(" (+{n} records past the tail)"),
                }
            }
            Ours::Custom => "custom layout".to_owned(),
            Ours::Unreadable(why) => format!("unreadable: {why}"),
        }
    }

    /// Whether any endpoint registered in the segment lives in another PID namespace, where
    /// we cannot tell whether it runs.
    pub fn has_endpoint_elsewhere(&self) -> bool {
        match self {
            Ours::Ring(state) => state
                .consumer
                .iter()
                .chain(&state.producers)
                .any(|(e, _)| !same_pid_namespace(e.pid_namespace)),
            Ours::Custom | Ours::Unreadable(_) => false,
        }
    }

    /// Records a receiver has not taken yet (counted in the tail, or committed just past it
    /// by a producer that died before counting them).
    pub fn undelivered(&self) -> Option<(u64, u64)> {
        match self {
            Ours::Ring(state) => {
                let bytes = state.bytes_in_flight();
                let records = state.records.unwrap_or(0) + state.uncounted_records;
                (bytes > 0 || records > 0).then_some((records, bytes))
            }
            Ours::Custom | Ours::Unreadable(_) => None,
        }
    }

    /// Whether any endpoint registered in the segment is alive.
    pub fn has_live_endpoint(&self) -> bool {
        match self {
            Ours::Ring(state) => {
                state.consumer.is_some_and(|(_, alive)| alive)
                    || state.producers.iter().any(|(_, alive)| *alive)
            }
            Ours::Custom | Ours::Unreadable(_) => false,
        }
    }
}

/// One object on the machine.
#[derive(Clone, Debug)]
pub struct Object {
    /// Its family.
    pub kind: Kind,
    /// Its name in the form `ipc clean` takes.
    pub name: String,
    /// System V key (0: private).
    pub key: Option<i32>,
    /// System V id.
    pub id: Option<i32>,
    /// Size in bytes (shared memory), or bytes queued (queues).
    pub bytes: Option<u64>,
    /// Messages queued, or semaphores in the set.
    pub count: Option<u64>,
    /// Owner's uid.
    pub uid: Option<u32>,
    /// Permission bits.
    pub mode: Option<u32>,
    /// Its creator, if known.
    pub creator: Option<Creator>,
    /// How many attachments (System V) or processes mapping or holding it open (POSIX; the
    /// processes we could not read are not counted).
    pub attached: Option<u64>,
    /// Whether the name was removed while still attached (System V `SHM_DEST`).
    pub removed: bool,
    /// What its layout header says, if it is ours.
    pub ours: Option<Ours>,
}

impl Object {
    fn new(kind: Kind, name: String) -> Object {
        Object {
            kind,
            name,
            key: None,
            id: None,
            bytes: None,
            count: None,
            uid: None,
            mode: None,
            creator: None,
            attached: None,
            removed: false,
            ours: None,
        }
    }

    /// Whether `ipc clean --stale` removes it: ours (by its layout header), its creator dead
    /// and in our PID namespace, nobody attached or holding it open, and (for a ring) no
    /// endpoint alive or in another namespace, and, unless `discard_undelivered`, no record
    /// waiting for a receiver. `Err` says why it is kept.
    ///
    /// Liveness is judged only where it can be seen: a pid recorded by a process of another
    /// PID namespace (a container sharing `/dev/shm` and the IPC namespace with its host, say)
    /// names some other process here or none, and `/proc` here does not list who maps the
    /// segment there.
    pub fn stale_reason(&self, discard_undelivered: bool) -> Result<String, String> {
        if !matches!(self.kind, Kind::SysvShm | Kind::PosixShm) {
            return Err("not shared memory".into());
        }
        let Some(ours) = &self.ours else {
            return Err("not made by ipc (no ipc-sync layout header)".into());
        };
        if let Ours::Unreadable(why) = ours {
            return Err(format!("its state cannot be read: {why}"));
        }
        match self.creator {
            Some(c) if c.other_namespace => {
                return Err(format!(
                    "creator {} in another PID namespace, whose processes this one cannot see",
                    c.pid
                ));
            }
            Some(c) if c.alive => return Err(format!("creator {} alive", c.pid)),
            None => return Err("creator unknown".into()),
            Some(_) => {}
        }
        match self.attached {
            Some(0) => {}
            Some(n) => return Err(format!("{n} attached")),
            None => return Err("attachments unknown".into()),
        }
        if ours.has_endpoint_elsewhere() {
            return Err(
                "an endpoint in another PID namespace, whose processes this one cannot \
                        see"
                .into(),
            );
        }
        if ours.has_live_endpoint() {
            return Err("an endpoint is alive".into());
        }
        let creator = self.creator.map(|c| c.pid).unwrap_or(0);
        match ours.undelivered() {
            Some((records, bytes)) if !discard_undelivered => Err(format!(
                "creator {creator} dead, but {records} undelivered records ({bytes} B) wait \
                 for a receiver; --discard-undelivered removes it"
            )),
            Some((records, _)) => Ok(format!(
                "creator {creator} dead, nobody attached, {records} undelivered records \
                 discarded"
            )),
            None => Ok(format!("creator {creator} dead, nobody attached")),
        }
    }
}

/// Everything found, and what could not be looked at.
#[derive(Debug, Default)]
pub struct Scan {
    /// The objects, System V first, each family in id or name order.
    pub objects: Vec<Object>,
    /// Families that could not be listed, and why (e.g. `/dev/mqueue` not mounted).
    pub notes: Vec<String>,
}

/// Lists every IPC object on the machine (that this process may see).
pub fn scan() -> Scan {
    let mut scan = Scan::default();
    let users = shm_users();
    sysv_shm(&mut scan);
    sysv_table(&mut scan, Kind::SysvMq, "/proc/sysvipc/msg");
    sysv_table(&mut scan, Kind::SysvSem, "/proc/sysvipc/sem");
    posix_shm(&mut scan, &users);
    posix_mq(&mut scan);
    scan
}

/// The rows of a `/proc/sysvipc/*` table, by column name.
fn table(path: &str) -> Result<Vec<HashMap<String, String>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    Ok(lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            header
                .iter()
                .zip(line.split_whitespace())
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect())
}

fn field<T: std::str::FromStr>(row: &HashMap<String, String>, name: &str) -> Option<T> {
    row.get(name)?.parse().ok()
}

/// Common columns of the System V tables.
fn sysv_object(kind: Kind, row: &HashMap<String, String>, id_column: &str) -> Option<Object> {
    let id: i32 = field(row, id_column)?;
    let mut o = Object::new(kind, format!("{kind}:id={id}"));
    o.id = Some(id);
    o.key = field(row, "key");
    o.uid = field(row, "uid");
    let perms = row
        .get("perms")
        .and_then(|p| u32::from_str_radix(p, 8).ok());
    o.mode = perms.map(|p| p & 0o777);
    // SHM_DEST: removed, alive until the last detach.
    o.removed = kind == Kind::SysvShm && perms.is_some_and(|p| p & 0o1000 != 0);
    Some(o)
}

fn sysv_shm(scan: &mut Scan) {
    let rows = match table("/proc/sysvipc/shm") {
        Ok(rows) => rows,
        Err(e) => {
            return scan
                .notes
                .push(format!("System V shared memory not listed: {e}"));
        }
    };
    for row in rows {
        let Some(mut o) = sysv_object(Kind::SysvShm, &row, "shmid") else {
            continue;
        };
        o.bytes = field(&row, "size");
        // Read before we attach below, so our own attachment is not counted.
        o.attached = field(&row, "nattch");
        let cpid: Option<u32> = field(&row, "cpid");
        // The kernel shows the creator's pid as this namespace sees it, 0 if it cannot.
        o.creator = cpid.map(|pid| Creator {
            pid,
            alive: pid != 0 && ipc::sync::process::start_time(pid).is_some(),
            other_namespace: pid == 0,
        });
        if let Some(id) = o.id {
            probe_sysv(&mut o, id);
        }
        scan.objects.push(o);
    }
}

fn sysv_table(scan: &mut Scan, kind: Kind, path: &str) {
    let rows = match table(path) {
        Ok(rows) => rows,
        Err(e) => return scan.notes.push(format!("{kind} not listed: {e}")),
    };
    for row in rows {
        let id_column = if kind == Kind::SysvMq {
            "msqid"
        } else {
            "semid"
        };
        let Some(mut o) = sysv_object(kind, &row, id_column) else {
            continue;
        };
        if kind == Kind::SysvMq {
            o.bytes = field(&row, "cbytes");
            o.count = field(&row, "qnum");
        } else {
            o.count = field(&row, "nsems");
        }
        scan.objects.push(o);
    }
}

/// The header words we need, read raw (before any validation).
struct RawHeader {
    magic: u64,
    version: u32,
    kind: u32,
    pid: u32,
    start_time: u64,
    pid_namespace: u64,
}

const RAW_HEADER_LEN: usize = 48;

impl RawHeader {
    fn parse(bytes: &[u8; RAW_HEADER_LEN]) -> RawHeader {
        let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap_or([0; 4]));
        let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap_or([0; 8]));
        RawHeader {
            magic: u64_at(0),
            version: u32_at(8),
            kind: u32_at(12),
            pid: u32_at(24),
            start_time: u64_at(32),
            pid_namespace: u64_at(40),
        }
    }

    fn is_ours(&self) -> bool {
        self.magic == ipc::sync::layout::MAGIC
    }

    fn creator(&self) -> Creator {
        let id = ProcessId {
            pid: self.pid,
            start_time: self.start_time,
        };
        // Version 1 headers did not record the namespace: the pid is all there is.
        let pid_namespace = if self.version >= 2 {
            self.pid_namespace
        } else {
            0
        };
        if !same_pid_namespace(pid_namespace) {
            return Creator {
                pid: self.pid,
                alive: false,
                other_namespace: true,
            };
        }
        Creator {
            pid: self.pid,
            alive: self.pid != 0 && id.is_alive(),
            other_namespace: false,
        }
    }
}

/// What the layout header of `segment` says, if it is ours (`None` if it is not).
fn probe_segment(segment: Arc<dyn Segment>) -> Option<(Creator, Ours)> {
    let mut bytes = [0u8; RAW_HEADER_LEN];
    segment.read_at(0, &mut bytes).ok()?;
    let raw = RawHeader::parse(&bytes);
    if !raw.is_ours() {
        return None;
    }
    Some((raw.creator(), state_of(&Shared::new(segment), raw.kind)))
}

/// Validates the layout and reads the ring's state.
fn state_of(shared: &Shared, kind_code: u32) -> Ours {
    let kind = match kind_code {
        1 => LayoutKind::Custom,
        2 => LayoutKind::Ring,
        other => return Ours::Unreadable(format!("unknown layout kind {other}")),
    };
    match kind {
        LayoutKind::Ring => match ring::inspect(shared) {
            Ok(state) => Ours::Ring(state),
            Err(e) => Ours::Unreadable(e.to_string()),
        },
        LayoutKind::Custom => {
            match Layout::attach(shared, LayoutKind::Custom, std::time::Duration::ZERO) {
                Ok(_) => Ours::Custom,
                Err(e) => Ours::Unreadable(e.to_string()),
            }
        }
    }
}

fn probe_sysv(o: &mut Object, id: i32) {
    let Ok(attachment) = SysvSegment::open_id(id).and_then(|s| s.attach(Access::ReadOnly)) else {
        return;
    };
    if let Some((creator, ours)) = probe_segment(Arc::new(attachment)) {
        o.creator = Some(creator);
        o.ours = Some(ours);
    }
}

/// Maps a POSIX shared-memory object to read its state. Whoever owns it: looking is not
/// talking through it, so the adoption rule of endpoints does not apply; the file's own
/// permissions decide.
pub fn map_posix(name: &str) -> ipc::Result<Arc<dyn Segment>> {
    let name = PosixName::new(name)?;
    let shm = SharedMemory::open(&name, &Expect::size(1).adopt(&ipc::Adoption::anything()))?;
    Ok(Arc::new(shm.map()?))
}

/// Maps a `file-shm` ring's file (or any regular file) to read its state or bytes; as for
/// [`map_posix`], the file's own permissions decide. Files are not scanned (they may be
/// anywhere on any disk): a file is inspected by its path only.
pub fn map_file(path: &str) -> ipc::Result<ipc::posix::shm::Mapping> {
    let expect = Expect::size(1).adopt(&ipc::Adoption::anything());
    ipc::posix::file::MappedFile::open(Path::new(path), &expect)?.map()
}

/// Attaches a System V segment read-only.
pub fn attach_sysv(id: i32) -> ipc::Result<Arc<dyn Segment>> {
    Ok(Arc::new(
        SysvSegment::open_id(id)?.attach(Access::ReadOnly)?,
    ))
}

/// Reads the header of a POSIX object from its file (no mapping), then maps it only if ours.
fn probe_posix(o: &mut Object, file: &Path, name: &str) {
    let mut bytes = [0u8; RAW_HEADER_LEN];
    let read = std::fs::File::open(file).and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        return;
    }
    let raw = RawHeader::parse(&bytes);
    if !raw.is_ours() {
        return;
    }
    o.creator = Some(raw.creator());
    o.ours = Some(match map_posix(name) {
        Ok(segment) => state_of(&Shared::new(segment), raw.kind),
        Err(e) => Ours::Unreadable(e.to_string()),
    });
}

/// For each file under `/dev/shm`, the other processes that map it or hold it open. Processes
/// we may not read are skipped.
fn shm_users() -> HashMap<String, BTreeSet<u32>> {
    let mut users: HashMap<String, BTreeSet<u32>> = HashMap::new();
    let me = std::process::id();
    let Ok(proc_dir) = std::fs::read_dir("/proc") else {
        return users;
    };
    let prefix = format!("{SHM_DIR}/");
    for entry in proc_dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let mut note = |path: &str| {
            if let Some(rest) = path.strip_prefix(&prefix) {
                let file = rest.strip_suffix(" (deleted)").unwrap_or(rest);
                users.entry(file.to_owned()).or_default().insert(pid);
            }
        };
        if let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) {
            for line in maps.lines() {
                // The path is the sixth field, and may contain spaces.
                if let Some(at) = line.find(&prefix) {
                    note(&line[at..]);
                }
            }
        }
        if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
            for fd in fds.flatten() {
                if let Ok(target) = std::fs::read_link(fd.path()) {
                    if let Some(t) = target.to_str() {
                        note(t);
                    }
                }
            }
        }
    }
    users
}

fn file_owner(meta: &std::fs::Metadata) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt;
    (meta.uid(), meta.mode() & 0o777)
}

fn posix_shm(scan: &mut Scan, users: &HashMap<String, BTreeSet<u32>>) {
    let entries = match std::fs::read_dir(SHM_DIR) {
        Ok(entries) => entries,
        Err(e) => {
            return scan
                .notes
                .push(format!("POSIX shared memory not listed: {SHM_DIR}: {e}"));
        }
    };
    let mut found = BTreeMap::new();
    for entry in entries.flatten() {
        let Ok(file) = entry.file_name().into_string() else {
            continue;
        };
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        found.insert(file, (entry.path(), meta));
    }
    for (file, (path, meta)) in found {
        let (kind, name) = match file.strip_prefix("sem.") {
            Some(sem) => (Kind::PosixSem, format!("/{sem}")),
            None => (Kind::PosixShm, format!("/{file}")),
        };
        let mut o = Object::new(kind, format!("{kind}:{name}"));
        let (uid, mode) = file_owner(&meta);
        o.uid = Some(uid);
        o.mode = Some(mode);
        o.bytes = Some(meta.len());
        o.attached = Some(users.get(&file).map_or(0, |u| u.len() as u64));
        if kind == Kind::PosixShm {
            probe_posix(&mut o, &path, &name);
        }
        scan.objects.push(o);
    }
}

/// Whether the `mqueue` file system is mounted on [`MQUEUE_DIR`].
pub fn mqueue_mounted() -> bool {
    std::fs::read_to_string("/proc/mounts").is_ok_and(|m| {
        m.lines().any(|l| {
            let mut f = l.split_whitespace();
            let (_, at, fs) = (f.next(), f.next(), f.next());
            at == Some(MQUEUE_DIR) && fs == Some("mqueue")
        })
    })
}

fn posix_mq(scan: &mut Scan) {
    if !mqueue_mounted() {
        scan.notes.push(format!(
            "POSIX message queues not listed: the mqueue file system is not mounted on \
             {MQUEUE_DIR} (as root: `mkdir -p {MQUEUE_DIR} && {MQUEUE_MOUNT}`)"
        ));
        return;
    }
    let entries = match std::fs::read_dir(MQUEUE_DIR) {
        Ok(entries) => entries,
        Err(e) => {
            return scan.notes.push(format!(
                "POSIX message queues not listed: {MQUEUE_DIR}: {e}"
            ));
        }
    };
    let mut found = BTreeMap::new();
    for entry in entries.flatten() {
        if let (Ok(file), Ok(meta)) = (entry.file_name().into_string(), entry.metadata()) {
            found.insert(file, (entry.path(), meta));
        }
    }
    for (file, (path, meta)) in found {
        let name = format!("/{file}");
        let mut o = Object::new(Kind::PosixMq, format!("posix-mq:{name}"));
        let (uid, mode) = file_owner(&meta);
        o.uid = Some(uid);
        o.mode = Some(mode);
        // "QSIZE:129 NOTIFY:0 SIGNO:0 NOTIFY_PID:0"
        if let Ok(text) = std::fs::read_to_string(&path) {
            o.bytes = text
                .split_whitespace()
                .find_map(|f| f.strip_prefix("QSIZE:"))
                .and_then(|n| n.parse().ok());
        }
        o.count = queued_messages(&name);
        scan.objects.push(o);
    }
}

/// `mq_curmsgs` of the queue, opened read-only and non-blocking (which takes nothing from it).
fn queued_messages(name: &str) -> Option<u64> {
    use nix::mqueue::{MQ_OFlag, mq_close, mq_getattr, mq_open};
    let mqd = mq_open(
        name,
        MQ_OFlag::O_RDONLY | MQ_OFlag::O_NONBLOCK,
        nix::sys::stat::Mode::empty(),
        None,
    )
    .ok()?;
    let attr = mq_getattr(&mqd).ok();
    let _ = mq_close(mqd);
    attr.and_then(|a| u64::try_from(a.curmsgs()).ok())
}

/// The login name of `uid` (through NSS, as `ls -l` finds it, so LDAP or systemd users too),
/// or the number. Looked up once per uid: `ipc ls` asks for the same few many times.
pub fn user_name(uid: u32) -> String {
    static NAMES: std::sync::Mutex<Option<HashMap<u32, String>>> = std::sync::Mutex::new(None);
    let lookup = || {
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map_or_else(|| uid.to_string(), |user| user.name)
    };
    let Ok(mut names) = NAMES.lock() else {
        return lookup();
    };
    names
        .get_or_insert_with(HashMap::new)
        .entry(uid)
        .or_insert_with(lookup)
        .clone()
}

/// Finds the object a target names among those scanned.
pub fn find<'a>(scan: &'a Scan, target: &Target) -> Option<&'a Object> {
    scan.objects.iter().find(|o| {
        o.kind == target.kind
            && match &target.which {
                Which::Id(id) => o.id == Some(*id),
                Which::Key(key) => o.key == Some(*key) && !o.removed,
                Which::Name(name) => o.name == format!("{}:{name}", o.kind),
            }
    })
}

/// Removes an object by its (canonical) name.
pub fn remove(o: &Object) -> ipc::Result<()> {
    let posix = |name: &str| PosixName::new(name.split_once(':').map_or(name, |(_, n)| n));
    match o.kind {
        Kind::SysvShm => ipc::sysv::shm::remove_id(o.id.unwrap_or(-1), &o.name),
        Kind::SysvMq => ipc::sysv::msg::remove(o.id.unwrap_or(-1)),
        Kind::SysvSem => ipc::sysv::sem::remove_id(o.id.unwrap_or(-1)),
        Kind::PosixShm => ipc::posix::shm::unlink(&posix(&o.name)?),
        Kind::PosixSem => ipc::posix::sem::unlink(&posix(&o.name)?),
        Kind::PosixMq => ipc::posix::mq::destroy(&posix(&o.name)?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print_back() {
        for text in [
            "posix-shm:/a",
            "posix-sem:/b",
            "posix-mq:/c",
            "sysv-shm:id=3",
            "sysv-mq:id=0",
            "sysv-sem:id=12",
            "sysv-shm:key=0x0000abcd",
        ] {
            assert_eq!(parse_target(text).unwrap().to_string(), text);
        }
        assert_eq!(
            parse_target("/a").unwrap(),
            parse_target("posix-shm:/a").unwrap()
        );
        assert_eq!(
            parse_target("sysv-sem:key=43981").unwrap().which,
            Which::Key(0xabcd)
        );
        for bad in [
            "a",
            "nope:/a",
            "sysv-shm:/a",
            "sysv-shm:id=-1",
            "sysv-shm:key=0",
            "posix-shm:a",
        ] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }
}
