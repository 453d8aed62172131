//! The sockets: `unix:` (ours listens on a path of the bench's private directory), `tcp:` (on
//! loopback, each receiver on a port the kernel picks) and `socketpair:` (inherited, as a pipe).
//! Ours is opened by the `ipc` facade's strings; the baselines are `write`/`read` loops on a
//! raw seqpacket pair (unix, socketpair) or a `TCP_NODELAY` connection reading `size` bytes a
//! message (tcp), see [`crate::raw`].

use std::os::fd::OwnedFd;
use std::process::Command;

use ipc::pipe::raw::InheritedFd;
use ipc::socket::{SocketConfig, TcpReceiver, pair};
use ipc::{Receiver, Sender, WaitStrategy};

use crate::protocol::{OPEN_TIMEOUT, Variant};
use crate::raw::{
    adopt_seqpacket, fd_ends, seqpacket_pair, seqpacket_unsupported, tcp_accept, tcp_connect,
    tcp_listen, tcp_spec,
};
use crate::transport::{BenchTransport, Ends, Link, Peer, Setup, announce};

/// `unix:` (on paths in the bench's private directory) or `socketpair:` (one pair each way):
/// seqpacket sockets both, with one raw baseline and the same limits.
pub struct Seqpacket {
    name: &'static str,
    /// `unix:`, connected by a path, rather than `socketpair:`.
    named: bool,
    /// How ours receives (the raw baseline always blocks).
    wait: WaitStrategy,
}

pub static UNIX: Seqpacket = Seqpacket {
    name: "unix",
    named: true,
    wait: WaitStrategy::Park,
};
pub static UNIX_SPIN: Seqpacket = Seqpacket {
    name: "unix-spin",
    named: true,
    wait: WaitStrategy::Spin,
};
pub static SOCKETPAIR: Seqpacket = Seqpacket {
    name: "socketpair",
    named: false,
    wait: WaitStrategy::Park,
};

/// `tcp:` on 127.0.0.1.
pub struct Tcp {
    name: &'static str,
    /// How ours receives (the raw baseline always blocks).
    wait: WaitStrategy,
}

pub static TCP: Tcp = Tcp {
    name: "tcp",
    wait: WaitStrategy::Park,
};
pub static TCP_SPIN: Tcp = Tcp {
    name: "tcp-spin",
    wait: WaitStrategy::Spin,
};

/// The options of ours for `size`-byte messages received as `wait` says; the open timeout
/// bounds a sender's wait for a peer that died before listening.
fn options(size: usize, wait: WaitStrategy) -> String {
    format!(
        "message_size={size}&open_timeout={}ms&wait={wait}",
        OPEN_TIMEOUT.as_millis()
    )
}

impl BenchTransport for Seqpacket {
    fn name(&self) -> &'static str {
        self.name
    }

    fn unsupported(&self, size: usize) -> Option<String> {
        seqpacket_unsupported(size)
    }

    fn connect(&self, setup: Setup<'_>) -> ipc::Result<Link> {
        match (setup.variant, self.named) {
            (Variant::Raw, _) => raw_pair_link(setup.size, setup.cmd),
            (Variant::Ours, true) => unix_link(setup, self.wait),
            (Variant::Ours, false) => pair_link(setup.size, setup.cmd, self.wait),
        }
    }

    fn open_raw_peer(&self, size: usize, rx: &str, tx: &str) -> ipc::Result<Ends> {
        let rx = adopt_seqpacket(rx)?;
        let tx = adopt_seqpacket(tx)?;
        Ok(fd_ends(rx, tx, size))
    }
}

/// Ours on `unix:`: a receiver listening on a path each way.
fn unix_link(setup: Setup<'_>, wait: WaitStrategy) -> ipc::Result<Link> {
    let spec = |path: &str| format!("unix:{path}?{}", options(setup.size, wait));
    let to_peer_path = spec(&setup.scratch.unique_path("to-peer")?);
    let from_peer_path = spec(&setup.scratch.unique_path("from-peer")?);
    // Ours listens first; the peer's sender connects to it, and ours retries until the peer
    // listens (up to open_timeout).
    let from_peer = ipc::open_receiver(&from_peer_path)?;
    let peer = Peer::spawn_with(setup.cmd, &to_peer_path, &from_peer_path)?;
    let to_peer = ipc::open_sender(&to_peer_path)?;
    Ok(Link::new(to_peer, from_peer, peer))
}

/// Ours on `socketpair:`: a pair each way, the peer's ends inherited.
fn pair_link(size: usize, mut cmd: Command, wait: WaitStrategy) -> ipc::Result<Link> {
    let config = SocketConfig {
        message_size: size,
        capacity: None,
        wait,
    };
    let (to_peer, peer_rx) = pair::channel(&config)?;
    let (from_peer, peer_tx) = pair::channel(&config)?;
    let handed = (peer_rx.inherit(&mut cmd)?, peer_tx.inherit(&mut cmd)?);
    // Their strings carry the message size.
    let peer = Peer::spawn_with(cmd, handed.0.spec(), handed.1.spec())?;
    // Only the peer may hold its ends, or neither side would see the other leave.
    drop(handed);
    Ok(Link::new(Box::new(to_peer), Box::new(from_peer), peer))
}

/// The raw baseline of `unix` and `socketpair`: a seqpacket pair each way, inherited.
fn raw_pair_link(size: usize, mut cmd: Command) -> ipc::Result<Link> {
    let (to_peer, peer_rx) = seqpacket_pair(size)?;
    let (from_peer, peer_tx) = seqpacket_pair(size)?;
    let mut inherit = |fd: OwnedFd| ipc::pipe::raw::inherit_fd(fd, &mut cmd);
    let handed = (inherit(peer_rx), inherit(peer_tx));
    let spec = |end: &InheritedFd| format!("socketpair:fd={}", end.fd_number());
    let peer = Peer::spawn_with(cmd, spec(&handed.0), spec(&handed.1))?;
    drop(handed);
    let (from_peer, to_peer) = fd_ends(from_peer, to_peer, size);
    Ok(Link::new(to_peer, from_peer, peer))
}

/// What the peer of a tcp link is told to listen on: a port the kernel picks, which it
/// [announces](announce) for `connect` to connect to. No port is chosen for it beforehand, so
/// none can be taken by another process in between.
const PEER_LISTENS: &str = "tcp:127.0.0.1:0";

impl BenchTransport for Tcp {
    fn name(&self) -> &'static str {
        self.name
    }

    fn connect(&self, setup: Setup<'_>) -> ipc::Result<Link> {
        let (size, mut cmd) = (setup.size, setup.cmd);
        match setup.variant {
            Variant::Ours => {
                let spec = |address: &str| format!("{address}?{}", options(size, self.wait));
                // Listening before the peer starts: its sender finds us at once.
                let from_peer = TcpReceiver::open(&spec(PEER_LISTENS).parse()?)?;
                cmd.arg("--rx").arg(spec(PEER_LISTENS));
                cmd.arg("--tx").arg(from_peer.spec().to_string());
                let mut peer = Peer::spawn(cmd)?;
                let to_peer = ipc::open_sender(&peer.read_line()?)?;
                Ok(Link::new(to_peer, Box::new(from_peer), peer))
            }
            Variant::Raw => {
                let listener = tcp_listen()?;
                cmd.arg("--rx").arg(PEER_LISTENS);
                cmd.arg("--tx").arg(tcp_spec(&listener)?);
                let mut peer = Peer::spawn(cmd)?;
                let to_peer = tcp_connect(&peer.read_line()?)?;
                // The peer connected before it announced: it is in the backlog already.
                let from_peer = tcp_accept(&listener, OPEN_TIMEOUT)?;
                let (from_peer, to_peer) = fd_ends(from_peer, to_peer, size);
                Ok(Link::new(to_peer, from_peer, peer))
            }
        }
    }

    fn open_raw_peer(&self, size: usize, _rx: &str, tx: &str) -> ipc::Result<Ends> {
        let listener = tcp_listen()?;
        let to_parent = tcp_connect(tx)?;
        announce(&tcp_spec(&listener)?)?;
        let from_parent = tcp_accept(&listener, OPEN_TIMEOUT)?;
        Ok(fd_ends(from_parent, to_parent, size))
    }

    fn open_ours_peer(&self, rx: &str, tx: &str) -> ipc::Result<Ends> {
        let from_parent = TcpReceiver::open(&rx.parse()?)?;
        let to_parent: Box<dyn Sender> = ipc::open_sender(tx)?;
        // After our sender connected: `connect` accepts it while it opens its own.
        announce(&from_parent.spec().to_string())?;
        let from_parent: Box<dyn Receiver> = Box::new(from_parent);
        Ok((from_parent, to_parent))
    }
}
