//! How the suite gets transports: one [`Factory`] per backend. A new backend passes the whole
//! suite by implementing this trait and stamping out the tests with
//! [`conformance_tests!`](crate::conformance_tests).

use std::process::Command;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use ipc::posix::PosixName;
use ipc::posix::mq::MqLimits;
use ipc::{Receiver, Result, Sender};

use crate::factory_spec::{Creator, Fresh, fresh_methods};
use crate::process::{Peer, SPEC_ENV, WATCHDOG};
use crate::{Cleanup, MqGuard, PathGuard, ShmGuard};

/// What the test wants of a transport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cfg {
    /// Largest message, in bytes.
    pub message_size: usize,
    /// Capacity as the transport counts it (bytes for pipes and rings, messages for queues);
    /// `None`: the transport's default.
    pub capacity: Option<usize>,
    /// How a byte stream lays messages (`framing=`); `None`: the default (frames). Only pipes
    /// and FIFOs take it.
    pub framing: Option<ipc::Framing>,
    /// How a receiver waits (`wait=`); `None`: the transport's default. Set for every test by
    /// a [`WaitingFactory`](crate::WaitingFactory).
    pub wait: Option<ipc::WaitStrategy>,
}

impl Default for Cfg {
    fn default() -> Cfg {
        Cfg {
            message_size: 64 * 1024,
            capacity: None,
            framing: None,
            wait: None,
        }
    }
}

impl Cfg {
    /// The default configuration with another message size.
    pub fn message_size(message_size: usize) -> Cfg {
        Cfg {
            message_size,
            ..Cfg::default()
        }
    }

    /// The `?message_size=..&capacity=..` part of a transport string.
    pub fn query(&self) -> String {
        let mut q = format!("?message_size={}", self.message_size);
        if let Some(c) = self.capacity {
            q.push_str(&format!("&capacity={c}"));
        }
        if let Some(f) = self.framing {
            q.push_str(&format!("&framing={f}"));
        }
        if let Some(w) = self.wait {
            q.push_str(&format!("&wait={w}"));
        }
        q
    }
}

/// Both ends of a transport in this process, and what removes it.
pub struct Pair {
    /// The sending end.
    pub tx: Box<dyn Sender>,
    /// The receiving end.
    pub rx: Box<dyn Receiver>,
    /// Removes the transport's objects when dropped.
    pub cleanup: Cleanup,
}

/// Makes transports of one kind for the suite.
///
/// The `spawn_*` methods start a prepared peer command (see
/// [`peer_command`](crate::process::peer_command)) with the other end of the transport: they
/// set [`SPEC_ENV`] to a transport string the peer opens with `ipc::open_sender` /
/// `ipc::open_receiver`, and they attach the transport's cleanup to the returned [`Peer`].
///
/// Whatever [`sees_peer_death`](Factory::sees_peer_death) says, dropping the receiving end
/// that [`pair`](Factory::pair), [`spawn_sender`](Factory::spawn_sender) or
/// [`spawn_senders`](Factory::spawn_senders) returns must wake a sender blocked on a full
/// transport with `Disconnected` (for a queue: that receiver owns the queue and removes it).
pub trait Factory: Sync {
    /// The transport's name, for messages.
    fn name(&self) -> &'static str;

    /// Whether an end sees its peer go: a dropped end, or a process that exits or is killed,
    /// is `Disconnected` at the other end (pipes, FIFOs: `true`). Connectionless transports
    /// (message queues: `false`) see only the transport itself being removed. The suite's
    /// tests of either behaviour check this, so a transport stamped with the wrong group of
    /// [`conformance_tests!`](crate::conformance_tests) fails instead of skipping.
    fn sees_peer_death(&self) -> bool;

    /// Largest `message_size` the transport accepts with its default capacity. The suite asks
    /// for no more (its default of 64 KiB and its large sizes are capped at this).
    fn max_message_size(&self) -> usize;

    /// The configuration of tests that need nothing special: [`Cfg::default`] with the message
    /// size capped at [`max_message_size`](Factory::max_message_size).
    fn default_cfg(&self) -> Cfg {
        let cfg = Cfg::default();
        Cfg {
            message_size: cfg.message_size.min(self.max_message_size()),
            ..cfg
        }
    }

    /// Both ends in this process.
    fn pair(&self, cfg: &Cfg) -> Result<Pair>;

    /// Starts `cmd` holding the receiving end; returns this process's sending end.
    fn spawn_receiver(&self, cfg: &Cfg, cmd: Command) -> Result<(Box<dyn Sender>, Peer)>;

    /// Starts `cmd` holding the sending end; returns this process's receiving end.
    fn spawn_sender(&self, cfg: &Cfg, cmd: Command) -> Result<(Box<dyn Receiver>, Peer)>;

    /// Starts every command of `cmds`, each holding a sending end of one transport whose
    /// receiving end is returned. Only asked for `cfg.message_size` small enough for the
    /// transport to allow several writers.
    fn spawn_senders(
        &self,
        cfg: &Cfg,
        cmds: Vec<Command>,
    ) -> Result<(Box<dyn Receiver>, Vec<Peer>)>;

    /// Largest message size at which the transport allows several concurrent writers.
    fn multi_writer_max(&self) -> usize;
}

pub(crate) fn spawn(cmd: Command) -> Result<Peer> {
    let what = format!("spawn the peer {}", cmd.get_program().to_string_lossy());
    Peer::spawn(cmd).map_err(|e| ipc::Error::io(what, e))
}

/// Anonymous pipes: the child inherits its end (`PipeSender::inherit`).
#[derive(Debug, Default)]
pub struct PipeFactory;

impl PipeFactory {
    fn config(cfg: &Cfg) -> ipc::pipe::PipeConfig {
        ipc::pipe::PipeConfig {
            message_size: cfg.message_size,
            capacity: cfg.capacity,
            framing: cfg.framing.unwrap_or_default(),
            wait: cfg.wait.unwrap_or(ipc::WaitStrategy::Park),
        }
    }
}

impl Factory for PipeFactory {
    fn name(&self) -> &'static str {
        "pipe"
    }

    fn sees_peer_death(&self) -> bool {
        true
    }

    fn max_message_size(&self) -> usize {
        ipc::framing::MAX_PAYLOAD
    }

    fn pair(&self, cfg: &Cfg) -> Result<Pair> {
        let (tx, rx) = ipc::pipe::channel(&Self::config(cfg))?;
        Ok(Pair {
            tx: Box::new(tx),
            rx: Box::new(rx),
            cleanup: Cleanup::none(),
        })
    }

    fn spawn_receiver(&self, cfg: &Cfg, mut cmd: Command) -> Result<(Box<dyn Sender>, Peer)> {
        let (tx, rx) = ipc::pipe::channel(&Self::config(cfg))?;
        let inherited = rx.inherit(&mut cmd)?;
        cmd.env(SPEC_ENV, inherited.spec().to_string());
        let peer = spawn(cmd)?;
        // Closes our copy of the read end, so that the child's death is visible as EPIPE.
        drop(inherited);
        Ok((Box::new(tx), peer))
    }

    fn spawn_sender(&self, cfg: &Cfg, mut cmd: Command) -> Result<(Box<dyn Receiver>, Peer)> {
        let (tx, rx) = ipc::pipe::channel(&Self::config(cfg))?;
        let inherited = tx.inherit(&mut cmd)?;
        cmd.env(SPEC_ENV, inherited.spec().to_string());
        let peer = spawn(cmd)?;
        drop(inherited);
        Ok((Box::new(rx), peer))
    }

    fn spawn_senders(
        &self,
        cfg: &Cfg,
        cmds: Vec<Command>,
    ) -> Result<(Box<dyn Receiver>, Vec<Peer>)> {
        let (tx, rx) = ipc::pipe::channel(&Self::config(cfg))?;
        let mut peers = Vec::new();
        for mut cmd in cmds {
            let inherited = tx.try_clone()?.inherit(&mut cmd)?;
            cmd.env(SPEC_ENV, inherited.spec().to_string());
            peers.push(spawn(cmd)?);
            drop(inherited);
        }
        // Only the children hold write ends now: the receiver sees end of stream when the
        // last of them is done.
        drop(tx);
        Ok((Box::new(rx), peers))
    }

    fn multi_writer_max(&self) -> usize {
        ipc::pipe::ATOMIC_MESSAGE_MAX
    }
}

/// Named pipes in `/tmp`, opened through the `ipc` facade.
#[derive(Debug, Default)]
pub struct FifoFactory;

impl FifoFactory {
    /// A fresh path and the transport string for it; senders get an open timeout well inside
    /// the watchdog.
    fn fifo(&self, cfg: &Cfg, _writers: usize) -> Fresh {
        let path = PathGuard::unique("fifo");
        let spec = format!("fifo:{}{}&open_timeout=10s", path.as_str(), cfg.query());
        Fresh::new(spec, path)
    }
}

impl Factory for FifoFactory {
    fn name(&self) -> &'static str {
        "fifo"
    }

    fn sees_peer_death(&self) -> bool {
        true
    }

    fn max_message_size(&self) -> usize {
        ipc::framing::MAX_PAYLOAD
    }

    fresh_methods!(Self::fifo);

    fn multi_writer_max(&self) -> usize {
        // The FIFO backend shares the pipe framing and its atomicity limit.
        ipc::pipe::ATOMIC_MESSAGE_MAX
    }
}

/// POSIX message queues, `/ipc-test-<pid>-<n>`, opened through the `ipc` facade.
///
/// Tests run in parallel, and the kernel charges every queue of a user against one
/// `RLIMIT_MSGQUEUE` (800 KiB by default: nine queues of 10 × 8 KiB). So the factory keeps the
/// queues it has made within half of that limit: making one waits (at most [`WATCHDOG`]) for
/// other tests to release theirs.
///
/// This process always creates the queue (`create=always`, so a leftover of the same name
/// fails the test instead of being reused) before a peer opens it (`create=never`), so no
/// end waits for another and no end recreates a queue after its removal. The end created here
/// is the receiver when this process receives (it owns the queue and removes it when dropped,
/// which wakes blocked senders), else the sender. Every queue is also guarded by an
/// [`MqGuard`], attached to the [`Pair`] or to the [`Peer`], which removes it even when a test
/// fails or a peer is killed: a queue outlives the processes that use it.
#[derive(Debug, Default)]
pub struct MqFactory {
    /// Every queue name made, if asked for (see [`MqFactory::recording`]).
    record: Option<Arc<Mutex<Vec<PosixName>>>>,
}

impl MqFactory {
    /// A factory (usable in a `static`).
    pub const fn new() -> MqFactory {
        MqFactory { record: None }
    }

    /// A factory that notes the name of every queue it makes, for a test to check that none
    /// is left behind.
    pub fn recording() -> (MqFactory, Arc<Mutex<Vec<PosixName>>>) {
        let record = Arc::new(Mutex::new(Vec::new()));
        (
            MqFactory {
                record: Some(Arc::clone(&record)),
            },
            record,
        )
    }

    /// A fresh guarded name, and the transport string for it (without `create`). The guard
    /// holds a share of RLIMIT_MSGQUEUE, given back after the queue is removed.
    fn queue(&self, cfg: &Cfg) -> Result<Fresh> {
        let capacity = cfg.capacity.map_or(Self::default_capacity(), |c| c as u64);
        let share = Budget::reserve(capacity * (cfg.message_size as u64 + MQ_MESSAGE_OVERHEAD))?;
        let guard = MqGuard::unique();
        if let Some(record) = &self.record {
            record.lock().unwrap().push(guard.name().clone());
        }
        let spec = format!("posix-mq:{}{}", guard.name(), cfg.query());
        // Fields drop in order: the queue goes, then its share is given back.
        Ok(Fresh::named(&spec, (guard, share)))
    }

    /// The queue's capacity when the string gives none, as `ipc-posix` picks it.
    fn default_capacity() -> u64 {
        (ipc::posix::mq::DEFAULT_CAPACITY as u64).min(MqLimits::read().msg_max)
    }
}

impl Factory for MqFactory {
    fn name(&self) -> &'static str {
        "posix-mq"
    }

    fn sees_peer_death(&self) -> bool {
        false
    }

    fn max_message_size(&self) -> usize {
        // `fs.mqueue.msgsize_max`, and small enough for one queue of the default capacity to
        // fit in the share of RLIMIT_MSGQUEUE that the factory uses.
        let limits = MqLimits::read();
        let by_rlimit =
            (Budget::total() / Self::default_capacity()).saturating_sub(MQ_MESSAGE_OVERHEAD);
        usize::try_from(limits.msgsize_max.min(by_rlimit)).unwrap_or(usize::MAX)
    }

    fn pair(&self, cfg: &Cfg) -> Result<Pair> {
        self.queue(cfg)?.pair()
    }

    fn spawn_receiver(&self, cfg: &Cfg, cmd: Command) -> Result<(Box<dyn Sender>, Peer)> {
        self.queue(cfg)?.spawn_receiver(cmd, Creator::Here)
    }

    fn spawn_sender(&self, cfg: &Cfg, cmd: Command) -> Result<(Box<dyn Receiver>, Peer)> {
        self.queue(cfg)?.spawn_sender(cmd)
    }

    fn spawn_senders(
        &self,
        cfg: &Cfg,
        cmds: Vec<Command>,
    ) -> Result<(Box<dyn Receiver>, Vec<Peer>)> {
        self.queue(cfg)?.spawn_senders(cmds)
    }

    fn multi_writer_max(&self) -> usize {
        // The kernel keeps message boundaries: any number of writers at any size.
        self.max_message_size()
    }
}

/// Shared-memory rings of any kind (`posix-shm`, `sysv-shm`, `file-shm`), opened through the
/// `ipc` facade; a [`RingPlace`] says how a fresh segment is named and guarded.
///
/// The ring's default capacity (64 KiB) takes messages up to 16 KiB; for larger ones the
/// factory asks for a ring four times the message size, so that every test of the suite, up to
/// [`RingFactory::MAX_MESSAGE`], runs with the ring holding several of its largest messages.
///
/// Who creates: this process, with `create=always` (a leftover of the same name fails the test
/// rather than being reused), when it holds the receiver or both ends; the peer opens with
/// `create=never`. When the peer receives, the peer creates (a receiver's default) and this
/// process's sender waits for the segment to appear, as a sender started first does: the suite
/// then exercises that path too. Either way the receiver that created the segment removes it
/// when dropped; the place's guard, attached to the [`Pair`] or the [`Peer`], removes it in
/// every other ending (a killed peer, a failed test).
///
/// The writers of [`Factory::spawn_senders`] share a `producers=multi` ring; every other ring
/// is single-producer.
pub struct RingFactory<P: RingPlace> {
    /// Every segment made, if asked for (see [`RingFactory::recording`]).
    record: Option<Record<P>>,
}

/// The segments a recording [`RingFactory`] made, shared with the test that reads them.
pub type Record<P> = Arc<Mutex<Vec<<P as RingPlace>::Id>>>;

/// Where a [`RingFactory`]'s segments live: a fresh name for each, and the guard that removes
/// the segment under it whoever made it.
pub trait RingPlace: 'static {
    /// The transport's scheme ([`Factory::name`]).
    const NAME: &'static str;
    /// Removes the segment, if any, when dropped.
    type Guard: Send + 'static;
    /// What [`RingFactory::recording`] notes of each segment.
    type Id: Clone + Send + 'static;

    /// A guard on a name no other test uses; nothing is created yet.
    fn fresh() -> Self::Guard;

    /// The guarded segment's identity, for a test that checks it is gone.
    fn id(guard: &Self::Guard) -> Self::Id;

    /// The transport string of the guarded segment, without options.
    fn address(guard: &Self::Guard) -> String;
}

/// POSIX shared-memory rings, `/ipc-test-<pid>-<n>` in `/dev/shm`.
pub enum PosixShmPlace {}

impl RingPlace for PosixShmPlace {
    const NAME: &'static str = "posix-shm";
    type Guard = ShmGuard;
    type Id = PosixName;

    fn fresh() -> ShmGuard {
        ShmGuard::unique()
    }

    fn id(guard: &ShmGuard) -> PosixName {
        guard.name().clone()
    }

    fn address(guard: &ShmGuard) -> String {
        format!("posix-shm:{}", guard.name())
    }
}

/// The suite on POSIX shared-memory rings.
pub type ShmFactory = RingFactory<PosixShmPlace>;

impl<P: RingPlace> RingFactory<P> {
    /// Largest message size the factory makes rings for (a 4 MiB ring).
    pub const MAX_MESSAGE: usize = 1 << 20;

    /// A factory (usable in a `static`).
    pub const fn new() -> RingFactory<P> {
        RingFactory { record: None }
    }

    /// A factory that notes every segment it makes, for a test to check that none is left
    /// behind.
    pub fn recording() -> (RingFactory<P>, Record<P>) {
        let record = Arc::new(Mutex::new(Vec::new()));
        (
            RingFactory {
                record: Some(Arc::clone(&record)),
            },
            record,
        )
    }

    /// The ring capacity for `cfg`: as asked, else the default where it takes the message
    /// size, else four of the largest records.
    pub fn capacity_for(cfg: &Cfg) -> Option<u64> {
        let default = ipc::sync::ring::request::DEFAULT_CAPACITY;
        match cfg.capacity {
            Some(c) => Some(c as u64),
            None if cfg.message_size as u64 <= default / 4 => None,
            None => Some(((cfg.message_size as u64 + 16) * 4).next_multiple_of(64)),
        }
    }

    /// A fresh guarded name, and the transport string for it; senders wait well inside the
    /// watchdog for a segment to appear. Several writers share a `producers=multi` ring.
    fn segment(&self, cfg: &Cfg, writers: usize) -> Fresh {
        let guard = P::fresh();
        if let Some(record) = &self.record {
            record.lock().unwrap().push(P::id(&guard));
        }
        let mut spec = format!(
            "{}?message_size={}&open_timeout=10s",
            P::address(&guard),
            cfg.message_size
        );
        if let Some(c) = Self::capacity_for(cfg) {
            spec.push_str(&format!("&capacity={c}"));
        }
        if writers > 1 {
            spec.push_str("&producers=multi");
        }
        Fresh::named(&spec, guard)
    }
}

impl<P: RingPlace> Default for RingFactory<P> {
    fn default() -> RingFactory<P> {
        RingFactory::new()
    }
}

impl<P: RingPlace> std::fmt::Debug for RingFactory<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingFactory")
            .field("place", &P::NAME)
            .field("recording", &self.record.is_some())
            .finish()
    }
}

impl<P: RingPlace> Factory for RingFactory<P> {
    fn name(&self) -> &'static str {
        P::NAME
    }

    fn sees_peer_death(&self) -> bool {
        // Ends register their process in the segment and watch each other.
        true
    }

    fn max_message_size(&self) -> usize {
        Self::MAX_MESSAGE
    }

    fresh_methods!(Self::segment);

    fn multi_writer_max(&self) -> usize {
        // A multi-producer ring serialises whole records: any size is safe.
        self.max_message_size()
    }
}

/// Bytes the kernel charges per message of a queue on top of its size, against
/// RLIMIT_MSGQUEUE: `struct msg_msg` and `struct posix_msg_tree_node`, 48 each on 64-bit Linux
/// 6 (measured: a queue of one 904-byte message is the most an RLIMIT_MSGQUEUE of 1000 allows).
const MQ_MESSAGE_OVERHEAD: u64 = 96;

/// The bytes of RLIMIT_MSGQUEUE taken by the queues [`MqFactory`] has made in this process.
struct Budget;

/// A share of the [`Budget`], given back when dropped.
struct Share(u64);

static USED: Mutex<u64> = Mutex::new(0);
static FREED: Condvar = Condvar::new();

impl Budget {
    /// Half of RLIMIT_MSGQUEUE: the rest is for other users of queues (the backend's own unit
    /// tests, the CLI) and for queues removed but not closed yet.
    fn total() -> u64 {
        MqLimits::read().rlimit_msgqueue / 2
    }

    /// Takes `bytes` of the budget, waiting for other tests to give theirs back. A request
    /// larger than the whole budget is granted when nothing else is taken (and then the kernel
    /// decides).
    fn reserve(bytes: u64) -> Result<Share> {
        let total = Budget::total();
        let deadline = Instant::now() + WATCHDOG;
        let mut used = USED.lock().unwrap_or_else(|e| e.into_inner());
        while *used > 0 && *used + bytes > total {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ipc::Error::LimitExceeded {
                    what: format!(
                        "test queues within half of RLIMIT_MSGQUEUE ({bytes} bytes asked, \
                         {} in use for {WATCHDOG:?})",
                        *used
                    ),
                    limit: total,
                });
            }
            used = FREED
                .wait_timeout(used, left.min(Duration::from_secs(1)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *used += bytes;
        Ok(Share(bytes))
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        let mut used = USED.lock().unwrap_or_else(|e| e.into_inner());
        *used -= self.0;
        FREED.notify_all();
    }
}
