//! The suite through the event-loop APIs: [`Via`] says how a test's endpoints wait, and
//! [`ViaFactory`] makes every endpoint of a test, in this process and in its peers, wait that
//! way.
//!
//! The suite's tests call the plain [`Sender`] / [`Receiver`] methods. Through
//! [`Via::WaitSet`], those methods are served by an adapter that never calls the transport's own
//! blocking form: it tries without waiting (`try_recv`, [`Sender::try_send_part`]) and does
//! every wait through an [`ipc::WaitSet`] holding the one endpoint, that is through the
//! transport's [`Readiness`] (see [`ipc::ready`]). So every property of the suite (messages
//! whole, once, in order; deadlines neither early nor late under signals; `Disconnected` when a
//! peer is dropped, exits or is killed, within the suite's bound) is checked of the readiness
//! protocol too, across real processes.
//!
//! The peers take part through [`VIA_ENV`]: [`ViaFactory`] sets it on their commands, and
//! `ipc-test-peer` opens its endpoints with [`open_sender`] / [`open_receiver`], which wrap as
//! it says.
//!
//! Adding another way to wait (the `tokio` feature of `ipc`, `ipc::AsyncSender` /
//! `ipc::AsyncReceiver`) is one more variant of [`Via`], one more adapter pair beside
//! [`WaitSetSender`] / [`WaitSetReceiver`] (a current-thread runtime per endpoint, each call
//! a `block_on` of the async call under `tokio::time::timeout_at` for [`Wait::Until`]), its
//! arms in [`Via::sender`] / [`Via::receiver`] / [`Via::name`], and one more test file of one
//! line, [`conformance_tests_via!`](crate::conformance_tests_via) with the new variant.
//!
//! A transport's own test file run with `IPC_TEST_VIA=wait-set` in the environment has its
//! peers wait through a set too (they inherit it; the test's own endpoints stay direct): a
//! quick look at the transport-specific cross-process tests through readiness.

use std::process::Command;

use ipc::{Error, Readiness, Receiver, Result, Sender, Wait, WaitSet, wait_set::Key};

use crate::factory::{Cfg, Factory, Pair};
use crate::process::Peer;

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
    // Tokio: every wait an `.await` of `ipc::AsyncSender` / `ipc::AsyncReceiver` (not landed
    // yet; see the module documentation for what adding it takes).
}

impl Via {
    /// Every way, for tests that go through them all.
    pub const ALL: [Via; 2] = [Via::Direct, Via::WaitSet];

    /// The name [`VIA_ENV`] carries.
    pub fn name(self) -> &'static str {
        match self {
            Via::Direct => "direct",
            Via::WaitSet => "wait-set",
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
                    "expected `direct` or `wait-set`",
                )
            }),
            Err(e) => Err(Error::invalid_spec(VIA_ENV, e.to_string())),
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
        })
    }

    /// `rx`, waiting this way.
    pub fn receiver(self, rx: Box<dyn Receiver>) -> Result<Box<dyn Receiver>> {
        Ok(match self {
            Via::Direct => rx,
            Via::WaitSet => Box::new(WaitSetReceiver::new(rx)?),
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
            if wait == Wait::Never {
                return Err(Error::Full);
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
