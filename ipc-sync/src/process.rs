//! Who a process is (pid paired with its start time, since pids are reused) and whether it is
//! still alive.

use std::os::fd::OwnedFd;
use std::sync::OnceLock;

use crate::sys::process as sys;

/// A process, identified beyond pid reuse: its pid and its start time (clock ticks after boot,
/// field 22 of `/proc/PID/stat`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProcessId {
    /// The pid, in the pid namespace of the processes sharing the segment.
    pub pid: u32,
    /// Start time in clock ticks since boot.
    pub start_time: u64,
}

impl ProcessId {
    /// This process.
    pub fn current() -> ProcessId {
        static CURRENT: OnceLock<(u32, u64)> = OnceLock::new();
        // Cached per pid: a forked child (same memory, new pid) must not report its parent.
        let pid = std::process::id();
        let &(cached_pid, start) = CURRENT.get_or_init(|| (pid, start_time(pid).unwrap_or(0)));
        if cached_pid == pid {
            return ProcessId {
                pid,
                start_time: start,
            };
        }
        ProcessId {
            pid,
            start_time: start_time(pid).unwrap_or(0),
        }
    }

    /// Whether this process still runs (a zombie counts as dead). A one-off check; hold a
    /// [`Watch`] to check one process repeatedly.
    pub fn is_alive(&self) -> bool {
        Watch::open(*self).is_some_and(|w| w.is_alive())
    }
}

/// The PID namespace this process lives in: the inode number of `/proc/self/ns/pid`, or `None`
/// where it cannot be read (no `/proc`, or a `/proc` of another namespace, where `/proc/self`
/// does not exist).
///
/// Pids are only meaningful inside one namespace: a segment records its creator's and each
/// endpoint's namespace beside the pid, and a process in another namespace takes a pid it
/// cannot look up as "unknown", not as "dead".
pub fn pid_namespace() -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    static CURRENT: OnceLock<(u32, Option<u64>)> = OnceLock::new();
    let read = || std::fs::metadata("/proc/self/ns/pid").ok().map(|m| m.ino());
    // Cached per pid, as for `ProcessId::current`: a child forked after `unshare(CLONE_NEWPID)`
    // lives in another namespace than its parent.
    let pid = std::process::id();
    let &(cached_pid, ns) = CURRENT.get_or_init(|| (pid, read()));
    if cached_pid == pid { ns } else { read() }
}

/// Whether a process recorded with namespace `ns` (0: not recorded) can be looked up by pid
/// from here: same namespace, or either side unknown (then the pid is all there is).
pub fn same_pid_namespace(ns: u64) -> bool {
    ns == 0 || pid_namespace().is_none_or(|mine| mine == ns)
}

/// The start time of `pid` from `/proc/PID/stat`, or `None` if there is no such process.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces and ')': fields are
    // counted after the last ')'. Field 3 (state) is the first after it; start time is field 22.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.nth(22 - 4)?.parse().ok()
}

/// A pidfd held on a process whose identity was verified when opened, so it cannot be
/// confused with a later process given the same pid.
#[derive(Debug)]
pub struct Watch {
    id: ProcessId,
    // `None` for this process itself, which is alive by definition, and for a process in
    // another PID namespace, which we cannot check.
    pidfd: Option<OwnedFd>,
}

impl Watch {
    /// Opens a watch on `id`; `None` if that process is already gone (or the pid now belongs to
    /// another process).
    pub fn open(id: ProcessId) -> Option<Watch> {
        if id == ProcessId::current() {
            return Some(Watch { id, pidfd: None });
        }
        let pidfd = sys::pidfd_open(id.pid).ok()?;
        // Checked after the pidfd is open: if the start time matches now, the pidfd refers to
        // that very process, whatever happens to the pid later.
        if start_time(id.pid)? != id.start_time {
            return None;
        }
        Some(Watch {
            id,
            pidfd: Some(pidfd),
        })
    }

    /// A watch on a process that lives in a PID namespace we cannot look into: its pid means
    /// nothing here, so it counts as alive until it says otherwise (by closing its endpoint).
    pub(crate) fn unverifiable(id: ProcessId) -> Watch {
        Watch { id, pidfd: None }
    }

    /// The watched process.
    pub fn id(&self) -> ProcessId {
        self.id
    }

    /// The pidfd, which polls readable once the process has exited (`None` for this process
    /// and for one we cannot look up).
    pub fn pidfd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.pidfd.as_ref().map(|fd| fd.as_fd())
    }

    /// Whether the process can open our descriptors through `/proc/OURPID/fd` (it runs as
    /// root, or as the user `/proc/self` belongs to: ours, or root if we are not dumpable, so
    /// then only root can) and lives in our PID namespace. What a ring doorbell needs of a peer.
    pub fn can_reach_our_fds(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        if self.id == ProcessId::current() {
            return true;
        }
        if self.pidfd.is_none() {
            // Another PID namespace: its /proc is not ours.
            return false;
        }
        let uid_of = |path: &str| std::fs::metadata(path).map(|m| m.uid()).ok();
        match (
            uid_of(&format!("/proc/{}", self.id.pid)),
            uid_of("/proc/self"),
        ) {
            (Some(peer), Some(us)) => peer == 0 || peer == us,
            _ => false,
        }
    }

    /// Whether the process still runs. One `poll` system call.
    pub fn is_alive(&self) -> bool {
        match &self.pidfd {
            None => true,
            Some(fd) => !sys::pidfd_exited(fd),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_process_is_alive_and_has_a_start_time() {
        let me = ProcessId::current();
        assert_eq!(me.pid, std::process::id());
        assert!(me.start_time > 0);
        assert!(me.is_alive());
    }

    #[test]
    fn a_reaped_child_is_dead_and_a_wrong_start_time_is_not_adopted() {
        let mut child = std::process::Command::new("sleep")
            .arg("10")
            .spawn()
            .unwrap();
        let pid = child.id();
        let id = ProcessId {
            pid,
            start_time: start_time(pid).unwrap(),
        };
        let watch = Watch::open(id).unwrap();
        assert!(watch.is_alive());
        assert!(
            Watch::open(ProcessId {
                pid,
                start_time: id.start_time + 1
            })
            .is_none()
        );
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!watch.is_alive());
        assert!(!id.is_alive());
    }
}
