//! Anonymous pipes: ours is `ipc::pipe`, the baseline `write`/`read` on a pipe of the same
//! capacity. The peer inherits its two ends as descriptors.

use std::os::fd::{AsFd, BorrowedFd};
use std::process::Command;

use ipc::pipe::{End, PipeConfig, channel, raw};
use ipc::{Address, Receiver, Sender, TransportSpec};

use crate::protocol::Variant;
use crate::raw::{FdReceiver, FdSender};
use crate::transport::{BenchTransport, Link, Peer, Scratch};

pub struct Pipe;

impl BenchTransport for Pipe {
    fn name(&self) -> &'static str {
        "pipe"
    }

    fn connect(
        &self,
        variant: Variant,
        size: usize,
        _scratch: &Scratch,
        mut cmd: Command,
    ) -> ipc::Result<Link> {
        match variant {
            Variant::Ours => {
                let config = config(size);
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
                size_like_ours(to_peer.as_fd(), size)?;
                size_like_ours(from_peer.as_fd(), size)?;
                let peer_rx = raw::inherit_fd(peer_rx, &mut cmd);
                let peer_tx = raw::inherit_fd(peer_tx, &mut cmd);
                cmd.arg("--rx")
                    .arg(format!("pipe:fd={}", peer_rx.fd_number()));
                cmd.arg("--tx")
                    .arg(format!("pipe:fd={}", peer_tx.fd_number()));
                let peer = Peer::spawn(cmd)?;
                drop((peer_rx, peer_tx));
                Ok(Link::new(
                    Box::new(FdSender::new(to_peer, size)),
                    Box::new(FdReceiver::new(from_peer, size)),
                    peer,
                ))
            }
        }
    }

    fn open_raw_peer(
        &self,
        size: usize,
        rx: &str,
        tx: &str,
    ) -> ipc::Result<(Box<dyn Receiver>, Box<dyn Sender>)> {
        let rx = raw::adopt_fd(fd_number(rx)?, End::Read)?;
        let tx = raw::adopt_fd(fd_number(tx)?, End::Write)?;
        Ok((
            Box::new(FdReceiver::new(rx, size)),
            Box::new(FdSender::new(tx, size)),
        ))
    }
}

/// Ours for `size`-byte messages: the capacity is left to the transport.
fn config(size: usize) -> PipeConfig {
    PipeConfig {
        message_size: size,
        capacity: None,
        ..PipeConfig::default()
    }
}

/// Gives a raw pipe (or FIFO) the capacity ours gets for `size`-byte messages, by the very
/// rule ours uses (grown, if need be, to hold one frame), so that both block as often. Only
/// 64 KiB messages need more than the default 64 KiB: their frame is 5 bytes larger.
pub fn size_like_ours(fd: BorrowedFd<'_>, size: usize) -> ipc::Result<()> {
    config(size).apply(fd)
}

fn fd_number(spec: &str) -> ipc::Result<i32> {
    match spec.parse::<TransportSpec>()?.address {
        Address::Fd(n) => Ok(n),
        _ => Err(ipc::Error::invalid_spec(spec, "expected `pipe:fd=N`")),
    }
}
