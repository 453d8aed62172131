//! Helpers of the integration tests: unique keys, and a guard that removes whatever segment
//! holds a key when dropped, so that no test leaves a segment behind, even when it fails.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};

use ipc_sysv::Key;
use ipc_sysv::shm::SysvSegment;

/// A key no other test (of any process running this scheme) uses:
/// `0x4000_0000 | (pid & 0x3f_ffff) << 8 | n`.
pub fn unique_key() -> KeyGuard {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) & 0xff;
    let key = 0x4000_0000 | ((std::process::id() & 0x3f_ffff) << 8) | n;
    KeyGuard(Key::Explicit(key as i32))
}

/// Removes the segment of its key when dropped (if there is one), whoever made it.
pub struct KeyGuard(pub Key);

impl KeyGuard {
    pub fn key(&self) -> &Key {
        &self.0
    }

    /// The numeric key, as `key=0x…` in a transport string.
    pub fn spec(&self, query: &str) -> String {
        format!("sysv-shm:{}{query}", self.0)
    }
}

impl Drop for KeyGuard {
    fn drop(&mut self) {
        if let Ok(seg) = SysvSegment::lookup(&self.0) {
            let _ = seg.destroy();
        }
    }
}

/// Removes a segment by id when dropped (for segments without a key).
pub struct IdGuard(pub i32);

impl Drop for IdGuard {
    fn drop(&mut self) {
        if let Ok(seg) = SysvSegment::open_id(self.0) {
            let _ = seg.destroy();
        }
    }
}

/// Whether a segment exists under `key`.
pub fn key_in_use(key: &Key) -> bool {
    SysvSegment::lookup(key).is_ok()
}
