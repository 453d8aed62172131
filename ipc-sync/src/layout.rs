//! The layout header at the start of every segment this crate initialises: what format it is,
//! which version, how big, where each structure lives, and who made it.
//!
//! A process attaching a segment reads and validates the header before it touches anything
//! else: another format, version or size is [`Error::Incompatible`], and the region table must
//! describe aligned, in-bounds, non-overlapping regions, or the segment is
//! [`Error::Corrupted`]. Offsets are relative to the segment's start: each process maps it at
//! its own address.
//!
//! ```text
//! 0      magic "ipcsync\0" (written last, with release ordering: a reader that sees it sees
//!        the whole initialised header)
//! 8      version u32, kind u32
//! 16     total size u64
//! 24     creator pid u32, region count u32
//! 32     creator start time u64 (clock ticks after boot)
//! 40     creator PID namespace u64 (inode of /proc/self/ns/pid; 0: unknown): the pid means
//!        something only to processes of that namespace
//! 64     regions[16]: kind u32, reserved u32, offset u64, length u64, reserved u64
//! 4096   first region
//! ```

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ipc_core::{Error, Result};

use crate::process::ProcessId;
use crate::sys::mem::Shared;

/// `b"ipcsync\0"` as a little-endian word.
pub const MAGIC: u64 = u64::from_le_bytes(*b"ipcsync\0");
/// Bumped whenever the meaning of any byte in a segment changes (2: the creator's PID
/// namespace; rings lost the pthread mutex region and gained their own lock word).
pub const VERSION: u32 = 2;
/// Bytes reserved for the header; regions start here.
pub const HEADER_SIZE: usize = 4096;
/// Most regions one layout describes.
pub const MAX_REGIONS: usize = 16;

const OFF_MAGIC: usize = 0;
const OFF_VERSION: usize = 8;
const OFF_KIND: usize = 12;
const OFF_SIZE: usize = 16;
const OFF_PID: usize = 24;
const OFF_COUNT: usize = 28;
const OFF_START: usize = 32;
const OFF_PIDNS: usize = 40;
const OFF_REGIONS: usize = 64;
const REGION_ENTRY: usize = 32;

/// Every region starts on a cache line, so structures written by different processes never
/// share one.
const REGION_ALIGN: usize = 64;

/// What a segment as a whole is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutKind {
    /// Regions chosen by the application ([`LayoutBuilder`]).
    Custom,
    /// The ring channel.
    Ring,
}

impl LayoutKind {
    fn code(self) -> u32 {
        match self {
            LayoutKind::Custom => 1,
            LayoutKind::Ring => 2,
        }
    }

    fn from_code(code: u32) -> Option<LayoutKind> {
        match code {
            1 => Some(LayoutKind::Custom),
            2 => Some(LayoutKind::Ring),
            _ => None,
        }
    }
}

/// What a region holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionKind {
    /// A [`RobustMutex`](crate::RobustMutex).
    Mutex,
    /// A [`Condvar`](crate::Condvar).
    Condvar,
    /// Application bytes.
    Bytes,
    /// The ring's control block (indices, wake-up words, endpoints).
    RingControl,
    /// The ring's records.
    RingData,
}

impl RegionKind {
    fn code(self) -> u32 {
        match self {
            RegionKind::Mutex => 1,
            RegionKind::Condvar => 2,
            RegionKind::Bytes => 3,
            RegionKind::RingControl => 10,
            RegionKind::RingData => 11,
        }
    }

    fn from_code(code: u32) -> Option<RegionKind> {
        Some(match code {
            1 => RegionKind::Mutex,
            2 => RegionKind::Condvar,
            3 => RegionKind::Bytes,
            10 => RegionKind::RingControl,
            11 => RegionKind::RingData,
            _ => return None,
        })
    }

    /// The size a region of this kind must have, if fixed.
    fn fixed_len(self) -> Option<usize> {
        match self {
            RegionKind::Mutex => Some(crate::mutex::MUTEX_REGION_SIZE),
            RegionKind::Condvar => Some(crate::condvar::CONDVAR_REGION_SIZE),
            _ => None,
        }
    }
}

/// One structure's place in the segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// What it holds.
    pub kind: RegionKind,
    /// Offset from the segment's start (a multiple of 64).
    pub offset: usize,
    /// Length in bytes.
    pub len: usize,
}

/// Plans a segment: the regions, in order, and the total size they need.
///
/// ```
/// use ipc_sync::{LayoutBuilder, RegionKind};
/// let mut plan = LayoutBuilder::new();
/// let lock = plan.mutex();
/// let state = plan.bytes(100);
/// assert!(plan.size() >= 4096 + 100);
/// assert_eq!(plan.regions()[lock].kind, RegionKind::Mutex);
/// assert_eq!(plan.regions()[state].offset % 64, 0);
/// ```
#[derive(Clone, Debug)]
pub struct LayoutBuilder {
    kind: LayoutKind,
    regions: Vec<Region>,
    end: usize,
}

impl Default for LayoutBuilder {
    fn default() -> Self {
        LayoutBuilder::new()
    }
}

impl LayoutBuilder {
    /// An empty custom layout.
    pub fn new() -> LayoutBuilder {
        LayoutBuilder::of_kind(LayoutKind::Custom)
    }

    pub(crate) fn of_kind(kind: LayoutKind) -> LayoutBuilder {
        LayoutBuilder {
            kind,
            regions: Vec::new(),
            end: HEADER_SIZE,
        }
    }

    fn push(&mut self, kind: RegionKind, len: usize) -> usize {
        assert!(
            self.regions.len() < MAX_REGIONS,
            "a layout holds at most {MAX_REGIONS} regions"
        );
        let offset = self.end.next_multiple_of(REGION_ALIGN);
        self.regions.push(Region { kind, offset, len });
        self.end = offset + len;
        self.regions.len() - 1
    }

    /// Adds a robust mutex; returns its index.
    pub fn mutex(&mut self) -> usize {
        self.push(RegionKind::Mutex, crate::mutex::MUTEX_REGION_SIZE)
    }

    /// Adds a condition variable; returns its index.
    pub fn condvar(&mut self) -> usize {
        self.push(RegionKind::Condvar, crate::condvar::CONDVAR_REGION_SIZE)
    }

    /// Adds `len` bytes for the application; returns the index.
    pub fn bytes(&mut self, len: usize) -> usize {
        self.push(RegionKind::Bytes, len)
    }

    pub(crate) fn region(&mut self, kind: RegionKind, len: usize) -> usize {
        self.push(kind, len)
    }

    /// The regions planned so far.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// The segment size this layout needs (rounded up to a page).
    pub fn size(&self) -> usize {
        self.end.next_multiple_of(4096)
    }

    /// Writes the layout into a fresh (zeroed) segment and initialises its mutexes and condvars,
    /// then publishes the magic. The segment must be exactly [`LayoutBuilder::size`] bytes, so
    /// that attachers can check the size.
    pub fn init(&self, shared: &Shared) -> Result<Layout> {
        let id = shared.segment().id().to_string();
        if shared.len() != self.size() {
            return Err(Error::Incompatible {
                object: id,
                reason: format!(
                    "the layout needs {} bytes, the segment has {}",
                    self.size(),
                    shared.len()
                ),
            });
        }
        let magic = word64(shared, OFF_MAGIC)?;
        if magic.load(Ordering::Acquire) != 0 {
            return Err(Error::Incompatible {
                object: id,
                reason: "already initialised".into(),
            });
        }
        let me = ProcessId::current();
        word32(shared, OFF_VERSION)?.store(VERSION, Ordering::Relaxed);
        word32(shared, OFF_KIND)?.store(self.kind.code(), Ordering::Relaxed);
        word64(shared, OFF_SIZE)?.store(shared.len() as u64, Ordering::Relaxed);
        let pidns = crate::process::pid_namespace().unwrap_or(0);
        word64(shared, OFF_PIDNS)?.store(pidns, Ordering::Relaxed);
        word32(shared, OFF_PID)?.store(me.pid, Ordering::Relaxed);
        // Release: an attacher still waiting for the magic that sees the start time sees the
        // pid and namespace too, and may judge whether the creator died half way.
        word64(shared, OFF_START)?.store(me.start_time, Ordering::Release);
        word32(shared, OFF_COUNT)?.store(self.regions.len() as u32, Ordering::Relaxed);
        for (i, r) in self.regions.iter().enumerate() {
            let at = OFF_REGIONS + i * REGION_ENTRY;
            word32(shared, at)?.store(r.kind.code(), Ordering::Relaxed);
            word64(shared, at + 8)?.store(r.offset as u64, Ordering::Relaxed);
            word64(shared, at + 16)?.store(r.len as u64, Ordering::Relaxed);
        }
        let layout = Layout {
            shared: shared.clone(),
            kind: self.kind,
            regions: self.regions.clone(),
            creator: me,
            creator_pidns: pidns,
        };
        for (i, r) in self.regions.iter().enumerate() {
            match r.kind {
                RegionKind::Mutex => {
                    crate::mutex::RobustMutex::init_at(shared, r.offset)?;
                }
                RegionKind::Condvar => {
                    crate::condvar::Condvar::init_at(shared, r.offset)?;
                }
                _ => {}
            }
            let _ = i;
        }
        magic.store(MAGIC, Ordering::Release);
        Ok(layout)
    }
}

/// A validated layout of an attached segment.
#[derive(Clone, Debug)]
pub struct Layout {
    shared: Shared,
    kind: LayoutKind,
    regions: Vec<Region>,
    creator: ProcessId,
    creator_pidns: u64,
}

impl Layout {
    /// Reads and validates the header of `shared`, waiting up to `init_timeout` for a creator
    /// that is still initialising it. `expected` is the kind of segment the caller can use.
    pub fn attach(shared: &Shared, expected: LayoutKind, init_timeout: Duration) -> Result<Layout> {
        let id = shared.segment().id().to_string();
        let incompatible = |reason: String| Error::Incompatible {
            object: id.clone(),
            reason,
        };
        if shared.len() < HEADER_SIZE {
            return Err(incompatible(format!(
                "{} bytes is too small for an ipc-sync segment (header alone: {HEADER_SIZE})",
                shared.len()
            )));
        }
        let magic = word64(shared, OFF_MAGIC)?;
        let deadline = Instant::now() + init_timeout;
        let mut pause = Duration::from_micros(50);
        let found = loop {
            let m = magic.load(Ordering::Acquire);
            if m != 0 || Instant::now() >= deadline {
                break m;
            }
            if creator_died_initialising(shared) {
                return Err(incompatible(
                    "not initialised: its creator died while initialising it".into(),
                ));
            }
            // Bounded back-off while the creator finishes (a few system calls at most).
            std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
            pause = (pause * 2).min(Duration::from_millis(10));
        };
        if found == 0 {
            return Err(incompatible(
                "not initialised: no layout header (its creator may have died while creating it, \
                 or another program made it)"
                    .into(),
            ));
        }
        if found != MAGIC {
            return Err(incompatible(format!(
                "not an ipc-sync segment (magic {found:#018x})"
            )));
        }
        let version = word32(shared, OFF_VERSION)?.load(Ordering::Relaxed);
        if version != VERSION {
            return Err(incompatible(format!(
                "layout version {version}, this library reads version {VERSION}"
            )));
        }
        let kind_code = word32(shared, OFF_KIND)?.load(Ordering::Relaxed);
        let kind = LayoutKind::from_code(kind_code)
            .ok_or_else(|| incompatible(format!("unknown layout kind {kind_code}")))?;
        if kind != expected {
            return Err(incompatible(format!(
                "it holds a {kind:?} layout, not a {expected:?} one"
            )));
        }
        let size = word64(shared, OFF_SIZE)?.load(Ordering::Relaxed);
        if size != shared.len() as u64 {
            return Err(incompatible(format!(
                "its header says {size} bytes, the mapping has {}",
                shared.len()
            )));
        }
        let creator = ProcessId {
            pid: word32(shared, OFF_PID)?.load(Ordering::Relaxed),
            start_time: word64(shared, OFF_START)?.load(Ordering::Relaxed),
        };
        let creator_pidns = word64(shared, OFF_PIDNS)?.load(Ordering::Relaxed);
        let count = word32(shared, OFF_COUNT)?.load(Ordering::Relaxed) as usize;
        if count > MAX_REGIONS {
            return Err(Error::corrupted(format!(
                "{id}: region count {count} above {MAX_REGIONS}"
            )));
        }
        let mut regions = Vec::with_capacity(count);
        let mut end = HEADER_SIZE;
        for i in 0..count {
            let at = OFF_REGIONS + i * REGION_ENTRY;
            let code = word32(shared, at)?.load(Ordering::Relaxed);
            let offset = word64(shared, at + 8)?.load(Ordering::Relaxed);
            let len = word64(shared, at + 16)?.load(Ordering::Relaxed);
            let bad = |what: &str| {
                Error::corrupted(format!(
                    "{id}: region {i} (kind {code}, offset {offset}, length {len}) {what}"
                ))
            };
            let kind = RegionKind::from_code(code).ok_or_else(|| bad("has an unknown kind"))?;
            let (Ok(offset), Ok(len)) = (usize::try_from(offset), usize::try_from(len)) else {
                return Err(bad("is out of range"));
            };
            if offset % REGION_ALIGN != 0 {
                return Err(bad("is not aligned to 64"));
            }
            if offset < end {
                return Err(bad("overlaps the header or the previous region"));
            }
            match offset.checked_add(len) {
                Some(e) if e <= shared.len() => end = e,
                _ => return Err(bad("runs past the end of the segment")),
            }
            if kind.fixed_len().is_some_and(|l| l != len) {
                return Err(bad("has the wrong length for its kind"));
            }
            regions.push(Region { kind, offset, len });
        }
        Ok(Layout {
            shared: shared.clone(),
            kind,
            regions,
            creator,
            creator_pidns,
        })
    }

    /// The segment.
    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    /// What the segment is.
    pub fn kind(&self) -> LayoutKind {
        self.kind
    }

    /// The regions, in the order they were planned.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// Who initialised the segment.
    pub fn creator(&self) -> ProcessId {
        self.creator
    }

    /// The PID namespace of the creator (the inode of its `/proc/self/ns/pid`; 0 if not
    /// recorded): [`Layout::creator`]'s pid means something only in that namespace.
    pub fn creator_pid_namespace(&self) -> u64 {
        self.creator_pidns
    }

    /// Region `index`, which must be of `kind`.
    pub fn region(&self, index: usize, kind: RegionKind) -> Result<Region> {
        match self.regions.get(index) {
            Some(r) if r.kind == kind => Ok(*r),
            Some(r) => Err(Error::Incompatible {
                object: self.shared.segment().id().to_string(),
                reason: format!("region {index} is a {:?}, not a {kind:?}", r.kind),
            }),
            None => Err(Error::Incompatible {
                object: self.shared.segment().id().to_string(),
                reason: format!("no region {index} (it has {})", self.regions.len()),
            }),
        }
    }

    /// The robust mutex in region `index`.
    pub fn mutex(&self, index: usize) -> Result<crate::RobustMutex> {
        let r = self.region(index, RegionKind::Mutex)?;
        crate::RobustMutex::at(&self.shared, r.offset)
    }

    /// The condition variable in region `index`.
    pub fn condvar(&self, index: usize) -> Result<crate::Condvar> {
        let r = self.region(index, RegionKind::Condvar)?;
        crate::Condvar::at(&self.shared, r.offset)
    }
}

/// Whether the header's creator, written before the magic, names a process of our namespace
/// that has exited: then the magic will never come. A creator not written yet, or in another
/// namespace, is waited for as long as the caller allows.
fn creator_died_initialising(shared: &Shared) -> bool {
    let (Ok(pid), Ok(start), Ok(pidns)) = (
        word32(shared, OFF_PID),
        word64(shared, OFF_START),
        word64(shared, OFF_PIDNS),
    ) else {
        return false;
    };
    // Acquire, pairing with the creator's release store of the start time, written last.
    let start_time = start.load(Ordering::Acquire);
    let creator = ProcessId {
        pid: pid.load(Ordering::Relaxed),
        start_time,
    };
    start_time != 0
        && creator.pid != 0
        && crate::process::same_pid_namespace(pidns.load(Ordering::Relaxed))
        && !creator.is_alive()
}

fn word32(shared: &Shared, offset: usize) -> Result<&std::sync::atomic::AtomicU32> {
    shared
        .u32_at(offset)
        .ok_or_else(|| Error::corrupted(format!("header word at {offset} out of bounds")))
}

fn word64(shared: &Shared, offset: usize) -> Result<&std::sync::atomic::AtomicU64> {
    shared
        .u64_at(offset)
        .ok_or_else(|| Error::corrupted(format!("header word at {offset} out of bounds")))
}
