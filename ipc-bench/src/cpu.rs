//! Keeping the two bench processes on different CPUs, so that they run in parallel and are not
//! moved mid-run. Best effort: with fewer than two CPUs to choose from, or without the right
//! to pin, the bench runs unpinned.
//!
//! Also the CPU time the bench reports per message, which each process reads of itself.

use std::time::Duration;

use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::time::{ClockId, clock_gettime};
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

/// CPU time this process has used so far, all its threads (`CLOCK_PROCESS_CPUTIME_ID`); zero if
/// the clock cannot be read, which Linux never refuses.
pub fn process_time() -> Duration {
    clock_gettime(ClockId::CLOCK_PROCESS_CPUTIME_ID).map_or(Duration::ZERO, Duration::from)
}
