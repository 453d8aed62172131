//! [`SysvShmFactory`]: the conformance suite on System V shared-memory rings (`sysv-shm:`),
//! the same design as [`ShmFactory`] over a key instead of a name.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use ipc::sysv::Key;
use ipc::sysv::shm::SysvSegment;
use ipc::{Receiver, Result, Sender};

use crate::ShmFactory;
use crate::factory::{Cfg, Creator, Factory, Named, Pair};
use crate::process::Peer;

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
///
/// Who creates and who removes is as for [`ShmFactory`]: this process creates
/// (`create=always`) when it holds the receiver, the peer when it does (our sender waits for
/// the key); the receiver that created the segment removes it, and a [`SysvKeyGuard`] on the
/// [`Pair`] or [`Peer`] removes it in every other ending.
#[derive(Debug, Default)]
pub struct SysvShmFactory {
    record: Option<Arc<Mutex<Vec<Key>>>>,
}

impl SysvShmFactory {
    /// Largest message size the factory makes rings for.
    pub const MAX_MESSAGE: usize = ShmFactory::MAX_MESSAGE;

    /// A factory (usable in a `static`).
    pub const fn new() -> SysvShmFactory {
        SysvShmFactory { record: None }
    }

    /// A factory that notes every key it uses, for a test to check none is left behind.
    pub fn recording() -> (SysvShmFactory, Arc<Mutex<Vec<Key>>>) {
        let record = Arc::new(Mutex::new(Vec::new()));
        (
            SysvShmFactory {
                record: Some(Arc::clone(&record)),
            },
            record,
        )
    }

    fn segment(&self, cfg: &Cfg, multi: bool) -> Named<SysvKeyGuard> {
        let guard = SysvKeyGuard::unique();
        if let Some(record) = &self.record {
            record.lock().unwrap().push(guard.key().clone());
        }
        let mut spec = guard.spec(&format!(
            "?message_size={}&open_timeout=10s",
            cfg.message_size
        ));
        let capacity = match cfg.capacity {
            Some(c) => Some(c as u64),
            None if cfg.message_size as u64 <= ipc::sysv::ring::DEFAULT_CAPACITY / 4 => None,
            None => Some(((cfg.message_size as u64 + 16) * 4).next_multiple_of(64)),
        };
        if let Some(c) = capacity {
            spec.push_str(&format!("&capacity={c}"));
        }
        if multi {
            spec.push_str("&producers=multi");
        }
        Named { guard, spec }
    }
}

impl Factory for SysvShmFactory {
    fn name(&self) -> &'static str {
        "sysv-shm"
    }

    fn sees_peer_death(&self) -> bool {
        true
    }

    fn max_message_size(&self) -> usize {
        Self::MAX_MESSAGE
    }

    fn pair(&self, cfg: &Cfg) -> Result<Pair> {
        self.segment(cfg, false).pair()
    }

    fn spawn_receiver(&self, cfg: &Cfg, cmd: Command) -> Result<(Box<dyn Sender>, Peer)> {
        self.segment(cfg, false).spawn_receiver(cmd, Creator::Peer)
    }

    fn spawn_sender(&self, cfg: &Cfg, cmd: Command) -> Result<(Box<dyn Receiver>, Peer)> {
        self.segment(cfg, false).spawn_sender(cmd)
    }

    fn spawn_senders(
        &self,
        cfg: &Cfg,
        cmds: Vec<Command>,
    ) -> Result<(Box<dyn Receiver>, Vec<Peer>)> {
        self.segment(cfg, true).spawn_senders(cmds)
    }

    fn multi_writer_max(&self) -> usize {
        self.max_message_size()
    }
}
