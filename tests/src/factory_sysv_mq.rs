//! System V message queues for the suite: unique explicit keys, guards that remove the queue
//! by key, and the [`SysvMqFactory`].

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use ipc::sysv::Key;
use ipc::sysv::msg::MsgLimits;
use ipc::{Receiver, Result, Sender};

use crate::factory::{Cfg, Factory, Pair};
use crate::factory_spec::{Creator, Fresh};
use crate::process::Peer;

/// High bits of every key the suite uses (`0x5d`), so that leftovers are recognisable in
/// `ipcs -q`: `0x5d<pid:12 bits><n:12 bits>`.
pub const KEY_PREFIX: u32 = 0x5d;

/// A key no other test of this process, nor of a concurrently running test process, uses:
/// the pid's low 12 bits separate processes (two live test processes with pids 4096 apart
/// would collide: creation is exclusive, so that fails a test rather than sharing a queue),
/// a counter separates the queues of one process.
pub fn unique_key() -> i32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed) & 0xfff;
    ((KEY_PREFIX << 24) | ((std::process::id() & 0xfff) << 12) | n) as i32
}

/// Removes the System V queue with its key (`IPC_RMID`) when dropped, if it is still there.
/// Queues outlive processes: without this, a failing test or a killed peer would leave one.
#[derive(Debug)]
pub struct SysvMqGuard {
    key: i32,
}

impl SysvMqGuard {
    /// Guards the queue with `key`, which need not exist yet.
    pub fn new(key: i32) -> SysvMqGuard {
        SysvMqGuard { key }
    }

    /// A guard on a fresh [`unique_key`].
    pub fn unique() -> SysvMqGuard {
        SysvMqGuard::new(unique_key())
    }

    /// The guarded key.
    pub fn key(&self) -> i32 {
        self.key
    }

    /// `sysv-mq:key=0x…` with `query` (`?…` or empty) appended.
    pub fn spec(&self, query: &str) -> String {
        format!("sysv-mq:key={:#x}{query}", self.key as u32)
    }
}

impl Drop for SysvMqGuard {
    fn drop(&mut self) {
        // The receiver that created it may have removed it already.
        match ipc::sysv::msg::destroy(&Key::Explicit(self.key)) {
            Ok(()) | Err(ipc::Error::NotFound { .. }) => {}
            Err(e) => eprintln!("cannot remove sysv-mq:key={:#x}: {e}", self.key as u32),
        }
    }
}

/// Whether a System V queue with `key` exists (`msgget` without `IPC_CREAT`, through the
/// facade with `create=never`; owner and mode checks aside, which a test's own queue passes).
pub fn sysv_mq_exists(key: i32) -> bool {
    match ipc::open_sender(&format!(
        "sysv-mq:key={:#x}?create=never&mode=0777",
        key as u32
    )) {
        Ok(_) => true,
        Err(ipc::Error::NotFound { .. }) => false,
        Err(e) => panic!("cannot tell whether sysv-mq:key={key:#x} exists: {e}"),
    }
}

/// System V message queues, key `0x5d……`, opened through the `ipc` facade.
///
/// As for [`MqFactory`](crate::MqFactory): this process always creates the queue
/// (`create=always`, so a leftover with the same key fails the test instead of being
/// reused) before a peer opens it (`create=never`). The end created here is the receiver when
/// this process receives (it owns the queue and removes it when dropped, which wakes blocked
/// senders with `EIDRM`), else the sender. Every queue is also guarded by a [`SysvMqGuard`],
/// attached to the [`Pair`] or to the [`Peer`].
///
/// `capacity` counts messages of `message_size` (the queue's `msg_qbytes` is their product,
/// at most `kernel.msgmnb`); without one the backend's default applies.
#[derive(Debug, Default)]
pub struct SysvMqFactory {
    /// Every key used, if asked for (see [`SysvMqFactory::recording`]).
    record: Option<Arc<Mutex<Vec<i32>>>>,
}

impl SysvMqFactory {
    /// A factory (usable in a `static`).
    pub const fn new() -> SysvMqFactory {
        SysvMqFactory { record: None }
    }

    /// A factory that notes every key it uses, for a test to check that no queue is left.
    pub fn recording() -> (SysvMqFactory, Arc<Mutex<Vec<i32>>>) {
        let record = Arc::new(Mutex::new(Vec::new()));
        (
            SysvMqFactory {
                record: Some(Arc::clone(&record)),
            },
            record,
        )
    }

    /// A fresh guarded key and the transport string for it (without `create`).
    fn queue(&self, cfg: &Cfg) -> Fresh {
        let guard = SysvMqGuard::unique();
        if let Some(record) = &self.record {
            record.lock().unwrap().push(guard.key());
        }
        let spec = guard.spec(&cfg.query());
        Fresh::named(&spec, guard)
    }
}

impl Factory for SysvMqFactory {
    fn name(&self) -> &'static str {
        "sysv-mq"
    }

    fn sees_peer_death(&self) -> bool {
        false
    }

    fn max_message_size(&self) -> usize {
        // `kernel.msgmax`, and no more than a queue of `kernel.msgmnb` bytes holds.
        let limits = MsgLimits::read();
        usize::try_from(limits.msgmax.min(limits.msgmnb)).unwrap_or(usize::MAX)
    }

    fn pair(&self, cfg: &Cfg) -> Result<Pair> {
        self.queue(cfg).pair()
    }

    fn spawn_receiver(&self, cfg: &Cfg, cmd: Command) -> Result<(Box<dyn Sender>, Peer)> {
        self.queue(cfg).spawn_receiver(cmd, Creator::Here)
    }

    fn spawn_sender(&self, cfg: &Cfg, cmd: Command) -> Result<(Box<dyn Receiver>, Peer)> {
        self.queue(cfg).spawn_sender(cmd)
    }

    fn spawn_senders(
        &self,
        cfg: &Cfg,
        cmds: Vec<Command>,
    ) -> Result<(Box<dyn Receiver>, Vec<Peer>)> {
        self.queue(cfg).spawn_senders(cmds)
    }

    fn multi_writer_max(&self) -> usize {
        // The kernel keeps message boundaries: any number of writers at any size.
        self.max_message_size()
    }
}
