//! Keeping the two bench processes on different CPUs, so that they run in parallel and are not
//! moved mid-run. Best effort: with fewer than two CPUs to choose from, or without the right
//! to pin, the bench runs unpinned.

use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;

/// Pins this process to one of the CPUs it may run on and returns another one for the peer.
pub fn pin_apart() -> Option<usize> {
    let allowed = sched_getaffinity(Pid::from_raw(0)).ok()?;
    let mut cpus = (0..CpuSet::count()).filter(|&cpu| allowed.is_set(cpu).unwrap_or(false));
    let ours = cpus.next()?;
    let peer = cpus.next()?;
    pin(ours).then_some(peer)
}

/// Pins this process to `cpu`; false if the kernel refused.
pub fn pin(cpu: usize) -> bool {
    let mut set = CpuSet::new();
    set.set(cpu).is_ok() && sched_setaffinity(Pid::from_raw(0), &set).is_ok()
}
