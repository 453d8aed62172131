//! [`SysvShmFactory`]: the conformance suite on System V shared-memory rings (`sysv-shm:`),
//! the [`RingFactory`] over a key instead of a name.

use std::sync::atomic::{AtomicU32, Ordering};

use ipc::sysv::Key;
use ipc::sysv::shm::SysvSegment;

use crate::factory::{RingFactory, RingPlace};

/// A System V key no other test uses: `0x4000_0000 | (pid & 0xf_ffff) << 10 | n` (1024 per
/// process, then it wraps, skipping keys still in use), removed with whatever segment holds
/// it when dropped. A test that fails to create on it (a key taken between the check and the
/// creation) fails rather than adopting the segment.
#[derive(Debug)]
pub struct SysvKeyGuard {
    key: Key,
}

impl SysvKeyGuard {
    /// A guard on a fresh key, skipping any key in use (one this process still holds after
    /// the counter wrapped, or another program's).
    pub fn unique() -> SysvKeyGuard {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed) & 0x3ff;
            let key = 0x4000_0000 | ((std::process::id() & 0xf_ffff) << 10) | n;
            // At most 0x7fff_ffff: a positive i32, never IPC_PRIVATE.
            let key = Key::Explicit(key as i32);
            if !sysv_key_in_use(&key) {
                return SysvKeyGuard { key };
            }
        }
    }

    /// The guarded key.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// `sysv-shm:key=0x…` followed by `query` (`?…` or empty).
    pub fn spec(&self, query: &str) -> String {
        format!("sysv-shm:{}{query}", self.key)
    }
}

impl Drop for SysvKeyGuard {
    fn drop(&mut self) {
        // The receiver that created it may have removed it already.
        if let Ok(seg) = SysvSegment::lookup(&self.key) {
            let _ = seg.destroy();
        }
    }
}

/// Whether a segment exists under `key`.
pub fn sysv_key_in_use(key: &Key) -> bool {
    SysvSegment::lookup(key).is_ok()
}

/// System V shared-memory rings: `sysv-shm:key=0x…`, one fresh key per transport.
pub enum SysvShmPlace {}

impl RingPlace for SysvShmPlace {
    const NAME: &'static str = "sysv-shm";
    type Guard = SysvKeyGuard;
    type Id = Key;

    fn fresh() -> SysvKeyGuard {
        SysvKeyGuard::unique()
    }

    fn id(guard: &SysvKeyGuard) -> Key {
        guard.key().clone()
    }

    fn address(guard: &SysvKeyGuard) -> String {
        guard.spec("")
    }
}

/// The suite on System V shared-memory rings: who creates and who removes is as for every
/// [`RingFactory`], with a [`SysvKeyGuard`] on the [`Pair`](crate::Pair) or
/// [`Peer`](crate::process::Peer) removing the segment in every other ending.
pub type SysvShmFactory = RingFactory<SysvShmPlace>;
