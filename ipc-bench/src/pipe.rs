//! Anonymous pipes: ours is `ipc::pipe` (`pipe`; `pipe-spin` with receivers that poll before
//! they sleep, `wait=spin`; `pipe-packets` with one message per packet of a packet-mode pipe,
//! `framing=packets`), the baseline `write`/`read` on a pipe of the same capacity. The peer
//! inherits its two ends as descriptors.
//!
//! The baseline of `pipe-packets` is the byte-mode loop of `pipe`: it is the floor for moving
//! those bytes through a pipe, which is what packets are meant to reach.

use std::os::fd::{AsFd, BorrowedFd};

use ipc::pipe::{End, PipeConfig, channel, raw};
use ipc::stream::PACKET_MAX;
use ipc::{Address, Framing, TransportSpec, WaitStrategy};

use crate::protocol::Variant;
use crate::raw::fd_ends;
use crate::transport::{BenchTransport, Ends, Link, Peer, Setup};

pub struct Pipe {
    name: &'static str,
    /// How ours receives (the raw baseline always blocks in `read`).
    wait: WaitStrategy,
    /// How ours lays messages on the pipe (the raw baseline writes them as they are).
    framing: Framing,
}

pub static PIPE: Pipe = Pipe {
    name: "pipe",
    wait: WaitStrategy::Park,
    framing: Framing::Frames,
};

pub static PIPE_SPIN: Pipe = Pipe {
    name: "pipe-spin",
    wait: WaitStrategy::Spin,
    framing: Framing::Frames,
};

pub static PIPE_PACKETS: Pipe = Pipe {
    name: "pipe-packets",
    wait: WaitStrategy::Park,
    framing: Framing::Packets,
};

impl BenchTransport for Pipe {
    fn name(&self) -> &'static str {
        self.name
    }

    fn unsupported(&self, size: usize) -> Option<String> {
        framing_unsupported(self.framing, size)
    }

    fn connect(&self, setup: Setup<'_>) -> ipc::Result<Link> {
        let (variant, size, mut cmd) = (setup.variant, setup.size, setup.cmd);
        match variant {
            Variant::Ours => {
                let config = PipeConfig {
                    wait: self.wait,
                    ..config(size, self.framing)
                };
                // The peer's strings carry `wait` and `framing` with the rest of the
                // configuration.
                let (to_peer, peer_rx) = channel(&config)?;
                let (peer_tx, from_peer) = channel(&config)?;
                let peer_rx = peer_rx.inherit(&mut cmd)?;
                let peer_tx = peer_tx.inherit(&mut cmd)?;
                cmd.arg("--rx").arg(peer_rx.spec().to_string());
                cmd.arg("--tx").arg(peer_tx.spec().to_string());
                let peer = Peer::spawn(cmd)?;
                // Only the peer may hold its ends, or neither side would see the other leave.
                drop((peer_rx, peer_tx));
                Ok(Link::new(Box::new(to_peer), Box::new(from_peer), peer))
            }
            Variant::Raw => {
                let (peer_rx, to_peer) = raw::pipe()?;
                let (from_peer, peer_tx) = raw::pipe()?;
                size_like_ours(to_peer.as_fd(), size, self.framing)?;
                size_like_ours(from_peer.as_fd(), size, self.framing)?;
                let peer_rx = raw::inherit_fd(peer_rx, &mut cmd);
                let peer_tx = raw::inherit_fd(peer_tx, &mut cmd);
                cmd.arg("--rx")
                    .arg(format!("pipe:fd={}", peer_rx.fd_number()));
                cmd.arg("--tx")
                    .arg(format!("pipe:fd={}", peer_tx.fd_number()));
                let peer = Peer::spawn(cmd)?;
                drop((peer_rx, peer_tx));
                let (from_peer, to_peer) = fd_ends(from_peer, to_peer, size);
                Ok(Link::new(to_peer, from_peer, peer))
            }
        }
    }

    fn open_raw_peer(&self, size: usize, rx: &str, tx: &str) -> ipc::Result<Ends> {
        let rx = raw::adopt_fd(fd_number(rx)?, End::Read)?;
        let tx = raw::adopt_fd(fd_number(tx)?, End::Write)?;
        Ok(fd_ends(rx, tx, size))
    }
}

/// Why ours in `framing` cannot carry `size`-byte messages, if it cannot: a packet is one
/// atomic write, so packets end at `PIPE_BUF`.
pub fn framing_unsupported(framing: Framing, size: usize) -> Option<String> {
    (framing == Framing::Packets && size > PACKET_MAX)
        .then(|| format!("packets carry at most PIPE_BUF = {PACKET_MAX} bytes"))
}

/// Ours for `size`-byte messages in `framing`: the capacity is left to the transport.
fn config(size: usize, framing: Framing) -> PipeConfig {
    PipeConfig {
        message_size: size,
        capacity: None,
        framing,
        ..PipeConfig::default()
    }
}

/// Gives a raw pipe (or FIFO) the capacity ours gets for `size`-byte messages in `framing`,
/// by the very rule ours uses (`PipeConfig::pipe_size`), so that both hold as much: in frames,
/// 128 KiB from 4 KiB messages (a frame over a page) and one whole frame from 64 KiB; packets
/// keep the default 64 KiB.
pub fn size_like_ours(fd: BorrowedFd<'_>, size: usize, framing: Framing) -> ipc::Result<()> {
    config(size, framing).apply(fd)
}

fn fd_number(spec: &str) -> ipc::Result<i32> {
    match spec.parse::<TransportSpec>()?.address {
        Address::Fd(n) => Ok(n),
        _ => Err(ipc::Error::invalid_spec(spec, "expected `pipe:fd=N`")),
    }
}
