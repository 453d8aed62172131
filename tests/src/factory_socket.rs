//! Sockets for the suite: unix sockets at guarded paths, TCP on loopback, socket pairs handed
//! to children, and their factories.

use std::process::Command;

use ipc::socket::{SocketConfig, TcpReceiver};
use ipc::{Receiver, Result, Sender};

use crate::factory::{Cfg, Factory, Pair, spawn};
use crate::factory_spec::{Fresh, fresh_methods};
use crate::process::{Peer, SPEC_ENV};
use crate::{Cleanup, PathGuard};

/// The `?message_size=..&capacity=..` part for sockets (a Cfg's framing is for pipes only).
fn query(cfg: &Cfg) -> String {
    assert!(cfg.framing.is_none(), "sockets take no framing option");
    cfg.query()
}

/// Largest message a `SOCK_SEQPACKET` sender can be sized for: root may force its send buffer
/// (`SO_SNDBUFFORCE`); others are bounded by `net.core.wmem_max` (doubled by the kernel).
fn seqpacket_max() -> usize {
    if nix::unistd::geteuid().is_root() {
        return 4 << 20;
    }
    let wmem_max = ipc::sysctl("net.core.wmem_max").unwrap_or(212_992) as usize;
    2 * wmem_max - 2048
}

/// Unix `SOCK_SEQPACKET` sockets at `/tmp/ipc-test-<pid>-<n>.sock`, through the `ipc` facade.
/// The receiver binds (and removes the file when dropped); senders wait up to 10 s for it.
#[derive(Debug, Default)]
pub struct UnixFactory;

impl UnixFactory {
    fn socket(&self, cfg: &Cfg, _writers: usize) -> Fresh {
        let path = PathGuard::unique("sock");
        let spec = format!("unix:{}{}&open_timeout=10s", path.as_str(), query(cfg));
        Fresh::new(spec, path)
    }
}

impl Factory for UnixFactory {
    fn name(&self) -> &'static str {
        "unix"
    }

    fn sees_peer_death(&self) -> bool {
        true
    }

    fn max_message_size(&self) -> usize {
        seqpacket_max()
    }

    fresh_methods!(Self::socket);

    fn multi_writer_max(&self) -> usize {
        // One connection per sender, records kept whole by the kernel: any size.
        self.max_message_size()
    }
}

/// TCP on `127.0.0.1`. A receiver here listens on port 0 and tells its senders the port the
/// kernel picked; a receiving peer is given a port the kernel just handed out and released
/// (a bind of port 0, closed), which another process takes in the meantime only by chance.
#[derive(Debug, Default)]
pub struct TcpFactory;

impl TcpFactory {
    fn receiver(cfg: &Cfg) -> Result<(Box<dyn Receiver>, String)> {
        let rx = TcpReceiver::open(&format!("tcp:127.0.0.1:0{}", query(cfg)).parse()?)?;
        let tx_spec = format!("{}&open_timeout=10s", rx.spec());
        Ok((Box::new(rx), tx_spec))
    }

    fn free_port() -> Result<u16> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|e| ipc::Error::io("bind 127.0.0.1:0", e))?;
        let port = listener
            .local_addr()
            .map_err(|e| ipc::Error::io("getsockname", e))?
            .port();
        Ok(port)
    }
}

impl Factory for TcpFactory {
    fn name(&self) -> &'static str {
        "tcp"
    }

    fn sees_peer_death(&self) -> bool {
        true
    }

    fn max_message_size(&self) -> usize {
        ipc::framing::MAX_PAYLOAD
    }

    fn pair(&self, cfg: &Cfg) -> Result<Pair> {
        let (rx, tx_spec) = Self::receiver(cfg)?;
        let tx = ipc::open_sender(&tx_spec)?;
        Ok(Pair {
            tx,
            rx,
            cleanup: Cleanup::none(),
        })
    }

    fn spawn_receiver(&self, cfg: &Cfg, mut cmd: Command) -> Result<(Box<dyn Sender>, Peer)> {
        let rx_spec = format!("tcp:127.0.0.1:{}{}", Self::free_port()?, query(cfg));
        cmd.env(SPEC_ENV, &rx_spec);
        let peer = spawn(cmd)?;
        let tx = ipc::open_sender(&format!("{rx_spec}&open_timeout=10s"))?;
        Ok((tx, peer))
    }

    fn spawn_sender(&self, cfg: &Cfg, mut cmd: Command) -> Result<(Box<dyn Receiver>, Peer)> {
        let (rx, tx_spec) = Self::receiver(cfg)?;
        cmd.env(SPEC_ENV, tx_spec);
        Ok((rx, spawn(cmd)?))
    }

    fn spawn_senders(
        &self,
        cfg: &Cfg,
        cmds: Vec<Command>,
    ) -> Result<(Box<dyn Receiver>, Vec<Peer>)> {
        let (rx, tx_spec) = Self::receiver(cfg)?;
        let mut peers = Vec::new();
        for mut cmd in cmds {
            cmd.env(SPEC_ENV, &tx_spec);
            peers.push(spawn(cmd)?);
        }
        Ok((rx, peers))
    }

    fn multi_writer_max(&self) -> usize {
        // One connection per sender, so frames never interleave at any size; but the receiver
        // holds a frame's worth of buffer per connection, so the suite's writers use 1 MiB.
        1 << 20
    }
}

/// Socket pairs: the child inherits its end (`SocketPairEnd::inherit`), as with pipes.
#[derive(Debug, Default)]
pub struct SocketPairFactory;

impl SocketPairFactory {
    fn channel(cfg: &Cfg) -> Result<(ipc::socket::SocketPairEnd, ipc::socket::SocketPairEnd)> {
        assert!(cfg.framing.is_none(), "sockets take no framing option");
        ipc::socket::pair::channel(&SocketConfig {
            message_size: cfg.message_size,
            capacity: cfg.capacity,
            wait: cfg.wait.unwrap_or(ipc::WaitStrategy::Park),
        })
    }
}

impl Factory for SocketPairFactory {
    fn name(&self) -> &'static str {
        "socketpair"
    }

    fn sees_peer_death(&self) -> bool {
        true
    }

    fn max_message_size(&self) -> usize {
        seqpacket_max()
    }

    fn pair(&self, cfg: &Cfg) -> Result<Pair> {
        let (tx, rx) = Self::channel(cfg)?;
        Ok(Pair {
            tx: Box::new(tx),
            rx: Box::new(rx),
            cleanup: Cleanup::none(),
        })
    }

    fn spawn_receiver(&self, cfg: &Cfg, mut cmd: Command) -> Result<(Box<dyn Sender>, Peer)> {
        let (tx, rx) = Self::channel(cfg)?;
        let inherited = rx.inherit(&mut cmd)?;
        cmd.env(SPEC_ENV, inherited.spec().to_string());
        let peer = spawn(cmd)?;
        // Closes our copy of the child's end, so that its death is visible.
        drop(inherited);
        Ok((Box::new(tx), peer))
    }

    fn spawn_sender(&self, cfg: &Cfg, mut cmd: Command) -> Result<(Box<dyn Receiver>, Peer)> {
        let (tx, rx) = Self::channel(cfg)?;
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
        let (tx, rx) = Self::channel(cfg)?;
        let mut peers = Vec::new();
        for mut cmd in cmds {
            let inherited = tx.try_clone()?.inherit(&mut cmd)?;
            cmd.env(SPEC_ENV, inherited.spec().to_string());
            peers.push(spawn(cmd)?);
            drop(inherited);
        }
        // Only the children hold the sending end now: the receiver sees the end of the
        // connection when the last of them is done.
        drop(tx);
        Ok((Box::new(rx), peers))
    }

    fn multi_writer_max(&self) -> usize {
        // Records are written whole: writers sharing one end never interleave.
        self.max_message_size()
    }
}
