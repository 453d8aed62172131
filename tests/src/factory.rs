//! How the suite gets transports: one [`Factory`] per backend. A new backend passes the whole
//! suite by implementing this trait and stamping out the tests with
//! [`conformance_tests!`](crate::conformance_tests).

use std::process::Command;

use ipc::{Receiver, Result, Sender};

use crate::process::{Peer, SPEC_ENV};
use crate::{Cleanup, PathGuard};

/// What the test wants of a transport.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cfg {
    /// Largest message, in bytes.
    pub message_size: usize,
    /// Capacity as the transport counts it (bytes for pipes and rings, messages for queues);
    /// `None`: the transport's default.
    pub capacity: Option<usize>,
}

impl Default for Cfg {
    fn default() -> Cfg {
        Cfg {
            message_size: 64 * 1024,
            capacity: None,
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
pub trait Factory: Sync {
    /// The transport's name, for messages.
    fn name(&self) -> &'static str;

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

fn spawn(cmd: Command) -> Result<Peer> {
    Peer::spawn(cmd).map_err(|e| ipc::Error::io("spawn ipc-test-peer", e))
}

/// Anonymous pipes: the child inherits its end (`PipeSender::inherit`).
#[derive(Debug, Default)]
pub struct PipeFactory;

impl PipeFactory {
    fn config(cfg: &Cfg) -> ipc::pipe::PipeConfig {
        ipc::pipe::PipeConfig {
            message_size: cfg.message_size,
            capacity: cfg.capacity,
        }
    }
}

impl Factory for PipeFactory {
    fn name(&self) -> &'static str {
        "pipe"
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
    /// The transport string for `path`; senders get an open timeout well inside the watchdog.
    fn spec(path: &PathGuard, cfg: &Cfg) -> String {
        format!("fifo:{}{}&open_timeout=10s", path.as_str(), cfg.query())
    }
}

impl Factory for FifoFactory {
    fn name(&self) -> &'static str {
        "fifo"
    }

    fn pair(&self, cfg: &Cfg) -> Result<Pair> {
        let path = PathGuard::unique("fifo");
        let spec = Self::spec(&path, cfg);
        let rx = ipc::open_receiver(&spec)?;
        let tx = ipc::open_sender(&spec)?;
        Ok(Pair {
            tx,
            rx,
            cleanup: Cleanup::with(path),
        })
    }

    fn spawn_receiver(&self, cfg: &Cfg, mut cmd: Command) -> Result<(Box<dyn Sender>, Peer)> {
        // The child creates the FIFO (as a receiver does); our sender waits for it to appear
        // and be opened. We still guard the path: a killed child cannot unlink it.
        let path = PathGuard::unique("fifo");
        let spec = Self::spec(&path, cfg);
        cmd.env(SPEC_ENV, &spec);
        let mut peer = spawn(cmd)?;
        let tx = ipc::open_sender(&spec)?;
        peer.hold(path);
        Ok((tx, peer))
    }

    fn spawn_sender(&self, cfg: &Cfg, mut cmd: Command) -> Result<(Box<dyn Receiver>, Peer)> {
        let path = PathGuard::unique("fifo");
        let spec = Self::spec(&path, cfg);
        let rx = ipc::open_receiver(&spec)?;
        cmd.env(SPEC_ENV, &spec);
        let mut peer = spawn(cmd)?;
        peer.hold(path);
        Ok((rx, peer))
    }

    fn spawn_senders(
        &self,
        cfg: &Cfg,
        cmds: Vec<Command>,
    ) -> Result<(Box<dyn Receiver>, Vec<Peer>)> {
        let path = PathGuard::unique("fifo");
        let spec = Self::spec(&path, cfg);
        let rx = ipc::open_receiver(&spec)?;
        let mut peers = Vec::new();
        for mut cmd in cmds {
            cmd.env(SPEC_ENV, &spec);
            peers.push(spawn(cmd)?);
        }
        // Peers drop front to back: the last one keeps the path guarded until all are gone.
        if let Some(last) = peers.last_mut() {
            last.hold(path);
        }
        Ok((rx, peers))
    }

    fn multi_writer_max(&self) -> usize {
        // The FIFO backend shares the pipe framing and its atomicity limit.
        ipc::pipe::ATOMIC_MESSAGE_MAX
    }
}
