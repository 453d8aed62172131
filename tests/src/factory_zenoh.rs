//! Zenoh for the suite: two sessions in peer mode over loopback, with explicit endpoints,
//! and the [`ZenohFactory`].

use std::net::{Ipv4Addr, TcpListener};
use std::process::Command;
use std::sync::atomic::{AtomicU16, Ordering};

use ipc::{Receiver, Result, Sender};

use crate::factory::{Cfg, Factory, Pair, spawn};
use crate::process::{Peer, SPEC_ENV};
use crate::{Cleanup, unique_name};

/// Ports the suite listens on: below Linux's ephemeral range (32768 on), so that no outgoing
/// connection of this machine is given one between our check and Zenoh's `bind`.
pub const PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A loopback port free now. Each test process starts at its own place in [`PORTS`] (from its
/// pid) and takes the next free one, so concurrent test processes rarely even try the same;
/// when two do, Zenoh's `bind` fails in one of them and its test fails loudly (the keys hold
/// the pid besides: a stray connection could not deliver another test's messages).
pub fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let span = PORTS.end - PORTS.start;
    let start = (std::process::id() % u32::from(span / 16)) as u16 * 16;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = PORTS.start + (start.wrapping_add(n)) % span;
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {PORTS:?}");
}

/// One channel: a unique key, and the loopback port its receiver listens on.
struct Channel {
    key: String,
    port: u16,
    query: String,
}

impl Channel {
    fn new(cfg: &Cfg) -> Channel {
        Channel {
            key: format!("ipc-test/{}", unique_name()),
            port: free_port(),
            query: cfg.query(),
        }
    }

    /// The receiver listens; it does not wait for anybody.
    fn receiver(&self) -> String {
        format!(
            "zenoh:{}{}&listen=tcp/127.0.0.1:{}",
            self.key, self.query, self.port
        )
    }

    /// Senders connect, and wait for the receiver well inside the watchdog.
    fn sender(&self) -> String {
        format!(
            "zenoh:{}{}&open_timeout=10s&connect=tcp/127.0.0.1:{}",
            self.key, self.query, self.port
        )
    }
}

/// Zenoh publishers and subscribers, each with its own peer-mode session: the receiver
/// listens on `tcp/127.0.0.1:PORT` (a free port, see [`free_port`]), senders connect to it.
/// Nothing to remove afterwards: Zenoh keeps no state beyond the sessions.
#[derive(Debug, Default)]
pub struct ZenohFactory;

impl ZenohFactory {
    /// Largest message size the suite asks for: Zenoh takes far more (its default here is
    /// 64 MiB), but every message crosses TCP and is copied twice, and the suite sends many.
    pub const MAX_MESSAGE: usize = 1 << 20;
}

impl Factory for ZenohFactory {
    fn name(&self) -> &'static str {
        "zenoh"
    }

    fn sees_peer_death(&self) -> bool {
        true
    }

    fn max_message_size(&self) -> usize {
        Self::MAX_MESSAGE
    }

    fn pair(&self, cfg: &Cfg) -> Result<Pair> {
        let channel = Channel::new(cfg);
        let rx = ipc::open_receiver(&channel.receiver())?;
        let tx = ipc::open_sender(&channel.sender())?;
        Ok(Pair {
            tx,
            rx,
            cleanup: Cleanup::none(),
        })
    }

    fn spawn_receiver(&self, cfg: &Cfg, mut cmd: Command) -> Result<(Box<dyn Sender>, Peer)> {
        let channel = Channel::new(cfg);
        cmd.env(SPEC_ENV, channel.receiver());
        let peer = spawn(cmd)?;
        // Waits (open_timeout) for the child's subscriber, retrying the connection meanwhile.
        let tx = ipc::open_sender(&channel.sender())?;
        Ok((tx, peer))
    }

    fn spawn_sender(&self, cfg: &Cfg, mut cmd: Command) -> Result<(Box<dyn Receiver>, Peer)> {
        let channel = Channel::new(cfg);
        let rx = ipc::open_receiver(&channel.receiver())?;
        cmd.env(SPEC_ENV, channel.sender());
        Ok((rx, spawn(cmd)?))
    }

    fn spawn_senders(
        &self,
        cfg: &Cfg,
        cmds: Vec<Command>,
    ) -> Result<(Box<dyn Receiver>, Vec<Peer>)> {
        let channel = Channel::new(cfg);
        let rx = ipc::open_receiver(&channel.receiver())?;
        let mut peers = Vec::new();
        for mut cmd in cmds {
            cmd.env(SPEC_ENV, channel.sender());
            peers.push(spawn(cmd)?);
        }
        Ok((rx, peers))
    }

    fn multi_writer_max(&self) -> usize {
        // Zenoh keeps message boundaries: any number of publishers at any size.
        Self::MAX_MESSAGE
    }
}
