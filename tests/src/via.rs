//! The suite through the event-loop APIs: [`Via`] says how a test's endpoints wait, and
//! [`ViaFactory`] makes every endpoint of a test, in this process and in its peers, wait that
//! way.
//!
//! The suite's tests call the plain [`Sender`] / [`Receiver`] methods. Through a [`Via`] other
//! than [`Via::Direct`], those methods are served by an adapter that never calls the
//! transport's own blocking form, and waits through the transport's [`Readiness`] (see
//! [`ipc::ready`]) by one of the public APIs built on it:
//!
//! - [`Via::WaitSet`]: an [`ipc::WaitSet`] holding the one endpoint ([`WaitSetSender`],
//!   [`WaitSetReceiver`]): the endpoint's `try_` calls, and `poll(2)` in the set between them;
//! - [`Via::Tokio`]: `ipc::AsyncSender` / `ipc::AsyncReceiver` on a current-thread runtime of
//!   the endpoint's own ([`TokioSender`], [`TokioReceiver`]): each call a `block_on` of the
//!   async call, a deadline `tokio::time::timeout_at`, which drops the future.
//!
//! So every property of the suite (messages whole, once, in order; deadlines neither early nor
//! late under signals; `Disconnected` when a peer is dropped, exits or is killed, within the
//! suite's bound) is checked of the readiness protocol and of both APIs too, across real
//! processes. Another way to wait is one more variant, one more adapter pair, and one more
//! test file of one line, [`conformance_tests_via!`](crate::conformance_tests_via).
//!
//! The peers take part through [`VIA_ENV`]: [`ViaFactory`] sets it on their commands, and
//! `ipc-test-peer` opens its endpoints with [`open_sender`] / [`open_receiver`], which wrap as
//! it says. A transport's own test file run with `IPC_TEST_VIA=wait-set` (or `tokio`) in the
//! environment has its peers wait that way too (they inherit it; the test's own endpoints stay
//! direct): a quick look at the transport-specific cross-process tests through readiness.

use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::thread;

use ipc::{Error, Readiness, Receiver, Result, Sender, Wait, WaitSet, wait_set::Key};

use crate::ShmFactory;
use crate::factory::{Cfg, Factory, Pair};
use crate::process::{Peer, ProcThread, WATCHDOG, peer_command};

/// Environment variable through which a peer learns how to wait: a [`Via::name`]; unset means
/// [`Via::Direct`].
pub const VIA_ENV: &str = "IPC_TEST_VIA";

/// How the endpoints of a test wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Via {
    /// The transport's own calls, blocking in the transport.
    Direct,
    /// Every wait through an [`ipc::WaitSet`] ([`WaitSetSender`], [`WaitSetReceiver`]).
    WaitSet,
    /// Every wait an `.await` of `ipc::AsyncSender` / `ipc::AsyncReceiver` on a current-thread
    /// tokio runtime ([`TokioSender`], [`TokioReceiver`]).
    Tokio,
}

impl Via {
    /// Every way, for tests that go through them all.
    pub const ALL: [Via; 3] = [Via::Direct, Via::WaitSet, Via::Tokio];

    /// The name [`VIA_ENV`] carries.
    pub fn name(self) -> &'static str {
        match self {
            Via::Direct => "direct",
            Via::WaitSet => "wait-set",
            Via::Tokio => "tokio",
        }
    }

    /// The way a [`Via::name`] names.
    pub fn parse(name: &str) -> Option<Via> {
        Via::ALL.into_iter().find(|via| via.name() == name)
    }

    /// The way [`VIA_ENV`] names in this process's environment; [`Via::Direct`] when unset.
    pub fn from_env() -> Result<Via> {
        match std::env::var(VIA_ENV) {
            Err(std::env::VarError::NotPresent) => Ok(Via::Direct),
            Ok(name) => Via::parse(&name).ok_or_else(|| {
                Error::invalid_spec(
                    format!("{VIA_ENV}={name}"),
                    "expected `direct`, `wait-set` or `tokio`",
                )
            }),
            Err(e) => Err(Error::invalid_spec(VIA_ENV, e.to_string())),
        }
    }

    /// The system calls a thread waiting this way sits in: `poll`/`ppoll` for a wait set,
    /// `epoll_wait`/`epoll_pwait` for tokio's reactor; `futex` directly on a ring (which parks
    /// on a futex word), the transport's own for the others.
    pub fn waits_in(self) -> &'static [i64] {
        match self {
            Via::Direct => &[libc::SYS_futex],
            Via::WaitSet => &[libc::SYS_poll, libc::SYS_ppoll],
            Via::Tokio => &[libc::SYS_epoll_wait, libc::SYS_epoll_pwait],
        }
    }

    /// Makes the peer that `cmd` starts wait this way.
    pub fn mark(self, cmd: &mut Command) {
        cmd.env(VIA_ENV, self.name());
    }

    /// `tx`, waiting this way.
    pub fn sender(self, tx: Box<dyn Sender>) -> Result<Box<dyn Sender>> {
        Ok(match self {
            Via::Direct => tx,
            Via::WaitSet => Box::new(WaitSetSender::new(tx)?),
            Via::Tokio => Box::new(TokioSender::new(tx)?),
        })
    }

    /// `rx`, waiting this way.
    pub fn receiver(self, rx: Box<dyn Receiver>) -> Result<Box<dyn Receiver>> {
        Ok(match self {
            Via::Direct => rx,
            Via::WaitSet => Box::new(WaitSetReceiver::new(rx)?),
            Via::Tokio => Box::new(TokioReceiver::new(rx)?),
        })
    }
}

/// `ipc::open_sender(spec)`, waiting as [`VIA_ENV`] says: how a peer opens its endpoint.
pub fn open_sender(spec: &str) -> Result<Box<dyn Sender>> {
    Via::from_env()?.sender(ipc::open_sender(spec)?)
}

/// `ipc::open_receiver(spec)`, waiting as [`VIA_ENV`] says: how a peer opens its endpoint.
pub fn open_receiver(spec: &str) -> Result<Box<dyn Receiver>> {
    Via::from_env()?.receiver(ipc::open_receiver(spec)?)
}

/// A receiver whose every wait is a [`WaitSet`]'s: a `try_` call is the endpoint's `try_recv`
/// alone; the others are [`WaitSet::recv`] on a set of this one endpoint, which tries, then
/// sleeps in `poll(2)` on the endpoint's readiness descriptor, and tries again. The endpoint's
/// own blocking and timed calls are never made.
pub struct WaitSetReceiver {
    set: WaitSet,
    key: Key,
    /// The endpoint's, read once: the set lends its members only mutably.
    max: usize,
}

impl WaitSetReceiver {
    /// `rx` in a set of its own; fails for an endpoint without [`Readiness`].
    pub fn new(rx: impl Receiver + 'static) -> Result<WaitSetReceiver> {
        let max = rx.max_message_size();
        let mut set = WaitSet::new();
        let key = set.add_receiver(rx)?;
        Ok(WaitSetReceiver { set, key, max })
    }

    fn endpoint(&mut self) -> &mut (dyn Receiver + 'static) {
        self.set
            .receiver(self.key)
            .expect("the set's one member is this receiver")
    }
}

impl Receiver for WaitSetReceiver {
    fn max_message_size(&self) -> usize {
        self.max
    }

    fn recv_with(&mut self, buf: &mut [u8], wait: Wait) -> Result<usize> {
        if wait == Wait::Never {
            // Nothing to wait for: readiness is not even armed.
            return self.endpoint().try_recv(buf);
        }
        // `Timeout` (never before the deadline) or a failure to wait is the set's; anything
        // else is the endpoint's own outcome.
        let (key, got) = self.set.recv(buf, wait)?;
        debug_assert_eq!(key, self.key);
        got
    }

    fn readiness(&mut self) -> Option<&mut dyn Readiness> {
        self.set.receiver(self.key)?.readiness()
    }
}

/// A sender whose every wait is a [`WaitSet`]'s: it sends as an event loop does, with
/// [`Sender::try_send_part`] (afresh, then resuming the same message after each wake-up, so
/// that a frame larger than a pipe's free room goes in parts), and waits for room with
/// [`WaitSet::wait`] on a set of this one endpoint. The endpoint's own blocking and timed
/// calls are never made.
///
/// A message left in part by a `try_send` (`Full`) or a timed-out send is given up by the
/// endpoint at the next call, which never resumes it: never delivered, as the contract of
/// [`Sender::send_with`] says.
pub struct WaitSetSender {
    set: WaitSet,
    key: Key,
    /// The endpoint's, read once: the set lends its members only mutably.
    max: usize,
}

impl WaitSetSender {
    /// `tx` in a set of its own; fails for an endpoint without [`Readiness`].
    pub fn new(tx: impl Sender + 'static) -> Result<WaitSetSender> {
        let max = tx.max_message_size();
        let mut set = WaitSet::new();
        let key = set.add_sender(tx)?;
        Ok(WaitSetSender { set, key, max })
    }

    fn endpoint(&mut self) -> &mut (dyn Sender + 'static) {
        self.set
            .sender(self.key)
            .expect("the set's one member is this sender")
    }
}

impl Sender for WaitSetSender {
    fn max_message_size(&self) -> usize {
        self.max
    }

    fn send_with(&mut self, msg: &[u8], wait: Wait) -> Result<()> {
        let mut resume = false;
        loop {
            match self.endpoint().try_send_part(msg, resume) {
                Err(Error::Full) => {}
                done => return done,
            }
            // The set reports a member that says "retry now" whatever the deadline, so the
            // deadline is checked here, after each attempt, as `WaitSet::recv` does.
            if wait.expired() {
                return Err(wait.full_error());
            }
            resume = true;
            // Ready (possibly spuriously): try again. `Timeout` once the deadline has passed
            // with no room, or a failure to wait, ends the send.
            self.set.wait(wait)?;
        }
    }

    fn try_send_part(&mut self, msg: &[u8], resume: bool) -> Result<()> {
        self.endpoint().try_send_part(msg, resume)
    }

    fn readiness(&mut self) -> Option<&mut dyn Readiness> {
        self.set.sender(self.key)?.readiness()
    }
}

/// A current-thread runtime with its reactor and timers, for one endpoint.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("tokio runtime", e))
}

/// A receiver whose every wait is an `.await` of [`ipc::AsyncReceiver::recv`] on a runtime of
/// its own; a deadline is `tokio::time::timeout_at` (a dropped `recv` future takes nothing). A
/// `try_` call is the endpoint's `try_recv` alone.
pub struct TokioReceiver {
    rt: tokio::runtime::Runtime,
    rx: ipc::AsyncReceiver<Box<dyn Receiver>>,
}

impl TokioReceiver {
    /// `rx` on a fresh current-thread runtime.
    pub fn new(rx: Box<dyn Receiver>) -> Result<TokioReceiver> {
        let rt = runtime()?;
        let rx = {
            let _in = rt.enter();
            ipc::AsyncReceiver::new(rx)?
        };
        Ok(TokioReceiver { rt, rx })
    }
}

impl Receiver for TokioReceiver {
    fn max_message_size(&self) -> usize {
        self.rx.max_message_size()
    }

    fn recv_with(&mut self, buf: &mut [u8], wait: Wait) -> Result<usize> {
        let TokioReceiver { rt, rx } = self;
        match wait {
            Wait::Never => rx.get_mut().try_recv(buf),
            Wait::Forever => rt.block_on(rx.recv(buf)),
            Wait::Until(at) => rt
                .block_on(async { tokio::time::timeout_at(at.into(), rx.recv(buf)).await })
                .unwrap_or(Err(Error::Timeout)),
        }
    }

    fn readiness(&mut self) -> Option<&mut dyn Readiness> {
        self.rx.get_mut().readiness()
    }
}

/// A sender whose every wait is an `.await` of [`ipc::AsyncSender::send`] on a runtime of its
/// own; a deadline is `tokio::time::timeout_at` (a dropped `send` future sent all or nothing:
/// a part left in a pipe is given up by the next call). A `try_` call is the endpoint's
/// [`Sender::try_send_part`] afresh, as `AsyncSender::send` starts.
pub struct TokioSender {
    rt: tokio::runtime::Runtime,
    tx: ipc::AsyncSender<Box<dyn Sender>>,
}

impl TokioSender {
    /// `tx` on a fresh current-thread runtime.
    pub fn new(tx: Box<dyn Sender>) -> Result<TokioSender> {
        let rt = runtime()?;
        let tx = {
            let _in = rt.enter();
            ipc::AsyncSender::new(tx)?
        };
        Ok(TokioSender { rt, tx })
    }
}

impl Sender for TokioSender {
    fn max_message_size(&self) -> usize {
        self.tx.max_message_size()
    }

    fn try_send_part(&mut self, msg: &[u8], resume: bool) -> Result<()> {
        self.tx.get_mut().try_send_part(msg, resume)
    }

    fn readiness(&mut self) -> Option<&mut dyn Readiness> {
        self.tx.get_mut().readiness()
    }

    fn send_with(&mut self, msg: &[u8], wait: Wait) -> Result<()> {
        let TokioSender { rt, tx } = self;
        match wait {
            Wait::Never => tx.get_mut().try_send_part(msg, false),
            Wait::Forever => rt.block_on(tx.send(msg)),
            Wait::Until(at) => rt
                .block_on(async { tokio::time::timeout_at(at.into(), tx.send(msg)).await })
                .unwrap_or(Err(Error::Timeout)),
        }
    }
}

/// A [`Factory`] whose endpoints wait [`Via`] some way: those it returns are wrapped, and its
/// peers wrap theirs (it marks their commands with [`VIA_ENV`]). Everything else is `inner`'s.
///
/// ```text
/// // tests/tests/via_wait_set.rs
/// mod posix_shm {
///     ipc_tests::conformance_tests!(
///         ipc_tests::ViaFactory::new(ipc_tests::ShmFactory::new(), ipc_tests::Via::WaitSet),
///         connected
///     );
/// }
/// ```
#[derive(Debug)]
pub struct ViaFactory<F> {
    inner: F,
    via: Via,
}

impl<F: Factory> ViaFactory<F> {
    /// `inner`'s transports, waiting `via` (usable in a `static`).
    pub const fn new(inner: F, via: Via) -> ViaFactory<F> {
        ViaFactory { inner, via }
    }

    fn tx(&self, tx: Box<dyn Sender>) -> Result<Box<dyn Sender>> {
        self.via.sender(tx)
    }

    fn rx(&self, rx: Box<dyn Receiver>) -> Result<Box<dyn Receiver>> {
        self.via.receiver(rx)
    }
}

impl<F: Factory> Factory for ViaFactory<F> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn sees_peer_death(&self) -> bool {
        self.inner.sees_peer_death()
    }

    fn max_message_size(&self) -> usize {
        self.inner.max_message_size()
    }

    fn default_cfg(&self) -> Cfg {
        self.inner.default_cfg()
    }

    fn pair(&self, cfg: &Cfg) -> Result<Pair> {
        let Pair { tx, rx, cleanup } = self.inner.pair(cfg)?;
        Ok(Pair {
            tx: self.tx(tx)?,
            rx: self.rx(rx)?,
            cleanup,
        })
    }

    fn spawn_receiver(&self, cfg: &Cfg, mut cmd: Command) -> Result<(Box<dyn Sender>, Peer)> {
        self.via.mark(&mut cmd);
        let (tx, peer) = self.inner.spawn_receiver(cfg, cmd)?;
        Ok((self.tx(tx)?, peer))
    }

    fn spawn_sender(&self, cfg: &Cfg, mut cmd: Command) -> Result<(Box<dyn Receiver>, Peer)> {
        self.via.mark(&mut cmd);
        let (rx, peer) = self.inner.spawn_sender(cfg, cmd)?;
        Ok((self.rx(rx)?, peer))
    }

    fn spawn_senders(
        &self,
        cfg: &Cfg,
        mut cmds: Vec<Command>,
    ) -> Result<(Box<dyn Receiver>, Vec<Peer>)> {
        for cmd in &mut cmds {
            self.via.mark(cmd);
        }
        let (rx, peers) = self.inner.spawn_senders(cfg, cmds)?;
        Ok((self.rx(rx)?, peers))
    }

    fn multi_writer_max(&self) -> usize {
        self.inner.multi_writer_max()
    }
}

/// Checks that `via` is what a [`ViaFactory`] runs, with [`Via::Direct`] as the control: a
/// receive blocked on a posix-shm ring, in this process and in a peer run from `peer_exe`,
/// sits in the system call of its way ([`Via::waits_in`]), and the sender's going wakes it with
/// `Disconnected`. One transport is enough: the wrapping is the same for all. For the self-check
/// of each `tests/via_*.rs`.
pub fn check_endpoints_wait(via: Via, peer_exe: &str) {
    let mut ways = vec![Via::Direct, via];
    ways.dedup();
    for via in ways {
        let factory = ViaFactory::new(ShmFactory::new(), via);
        let cfg = factory.default_cfg();

        let Pair {
            tx,
            rx,
            cleanup: _cleanup,
        } = factory.pair(&cfg).unwrap();
        let (tid_tx, tid_rx) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        thread::spawn(move || {
            tid_tx.send(nix::unistd::gettid().as_raw()).unwrap();
            let mut rx = rx;
            let _ = done_tx.send(rx.recv(&mut [0; 64]));
        });
        let tid = tid_rx
            .recv_timeout(WATCHDOG)
            .expect("the receiving thread started");
        assert_waits(via, &ProcThread::of_tid(tid), "this process");
        drop(tx);
        let r = done.recv_timeout(WATCHDOG).expect("recv still blocked");
        assert!(matches!(r, Err(Error::Disconnected)), "{via:?}: {r:?}");

        let cmd = peer_command(Path::new(peer_exe), "wait-end", &["recv"]);
        let (tx, mut peer) = factory.spawn_receiver(&cfg, cmd).unwrap();
        peer.expect_line("ready");
        assert_waits(via, &ProcThread::of_peer(&peer), "the peer");
        drop(tx);
        peer.expect_line("ok");
        peer.wait_success();
    }
}

/// Waits until `thread` is blocked in the waiting call of any way, and checks it is `via`'s.
fn assert_waits(via: Via, thread: &ProcThread, whose: &str) {
    // One look at the thread decides: a receive with a deadline leaves its wait now and then,
    // so a second look may find it between two waits.
    let seen = std::cell::Cell::new(None);
    thread.until("a blocked receive", |t| {
        let nr = t.syscall();
        seen.set(
            Via::ALL
                .into_iter()
                .find(|v| nr.is_some_and(|nr| v.waits_in().contains(&nr))),
        );
        seen.get().is_some()
    });
    let other = seen.get();
    assert_eq!(
        other,
        Some(via),
        "{via:?}: the receive of {whose} waits as {other:?} does"
    );
}
