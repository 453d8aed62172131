//! The suite with every receiver of a test polling before it sleeps: [`WaitingFactory`] sets
//! [`Cfg::wait`] on every configuration a test asks its factory for (`wait=spin` or `busy` on
//! pipes, FIFOs and sockets, whose receivers otherwise sleep in the kernel at once).

use std::process::Command;

use ipc::{Receiver, Result, Sender, WaitStrategy};

use crate::process::Peer;
use crate::{Cfg, Factory, Pair};

/// A factory whose transports' receivers wait with `wait`, in this process and in the peers
/// opened from a transport string.
#[derive(Debug)]
pub struct WaitingFactory<F> {
    inner: F,
    wait: WaitStrategy,
}

impl<F: Factory> WaitingFactory<F> {
    /// `inner`'s transports, their receivers waiting with `wait`.
    pub const fn new(inner: F, wait: WaitStrategy) -> WaitingFactory<F> {
        WaitingFactory { inner, wait }
    }

    fn cfg(&self, cfg: &Cfg) -> Cfg {
        Cfg {
            wait: Some(self.wait),
            ..cfg.clone()
        }
    }
}

impl<F: Factory> Factory for WaitingFactory<F> {
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
        self.cfg(&self.inner.default_cfg())
    }

    fn pair(&self, cfg: &Cfg) -> Result<Pair> {
        self.inner.pair(&self.cfg(cfg))
    }

    fn spawn_receiver(&self, cfg: &Cfg, cmd: Command) -> Result<(Box<dyn Sender>, Peer)> {
        self.inner.spawn_receiver(&self.cfg(cfg), cmd)
    }

    fn spawn_sender(&self, cfg: &Cfg, cmd: Command) -> Result<(Box<dyn Receiver>, Peer)> {
        self.inner.spawn_sender(&self.cfg(cfg), cmd)
    }

    fn spawn_senders(
        &self,
        cfg: &Cfg,
        cmds: Vec<Command>,
    ) -> Result<(Box<dyn Receiver>, Vec<Peer>)> {
        self.inner.spawn_senders(&self.cfg(cfg), cmds)
    }

    fn multi_writer_max(&self) -> usize {
        self.inner.multi_writer_max()
    }
}
