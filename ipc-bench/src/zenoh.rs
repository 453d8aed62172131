//! Zenoh: ours is `ipc::zenoh` (two `zenoh:` strings, one key each way, opened through the
//! facade), the baseline Zenoh's own publisher and subscriber ([`crate::raw_zenoh`]) on the
//! same sessions. Each receiver's session listens on a loopback TCP port of its own, each
//! sender's connects to it; peer mode, no multicast scouting (the strings say so explicitly,
//! and `ipc-zenoh` scouts only when asked).
//!
//! The parent opens its receiver, starts the peer (which opens its receiver, then its sender),
//! then opens its sender, which waits for the peer's subscriber. Ours sees either side leave
//! (its senders' liveliness tokens); raw Zenoh does not, so the raw link ends the parent's
//! stream with an empty message, and a watcher tells the parent's receiver once the peer has
//! exited.

use std::net::{Ipv4Addr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};

use ipc::{Receiver, Sender, WaitStrategy};

use crate::interrupt::fresh_name;
use crate::made::Made;
use crate::protocol::{OPEN_TIMEOUT, Variant};
use crate::raw_zenoh::{RawZenohReceiver, RawZenohSender};
use crate::transport::{BenchTransport, Ends, Link, Peer, Setup};
use crate::watch;

/// Messages each receiver queues, ours and Zenoh's channel alike: `ipc-zenoh`'s default,
/// which is also the depth of Zenoh's default FIFO channel.
const CAPACITY: usize = ipc::zenoh::DEFAULT_CAPACITY;

pub struct Zenoh {
    name: &'static str,
    /// How our receivers wait for a message (Zenoh's channel in the baseline always blocks).
    wait: WaitStrategy,
}

pub static ZENOH: Zenoh = Zenoh {
    name: "zenoh",
    wait: WaitStrategy::Park,
};

pub static ZENOH_SPIN: Zenoh = Zenoh {
    name: "zenoh-spin",
    wait: WaitStrategy::Spin,
};

impl BenchTransport for Zenoh {
    fn name(&self) -> &'static str {
        self.name
    }

    fn connect(&self, setup: Setup<'_>) -> ipc::Result<Link> {
        let (variant, size, mut cmd) = (setup.variant, setup.size, setup.cmd);
        let to_peer = Channel::new(size, "to-peer", self.wait)?;
        let from_peer = Channel::new(size, "from-peer", self.wait)?;
        cmd.arg("--rx").arg(to_peer.receiver());
        cmd.arg("--tx").arg(from_peer.sender());
        match variant {
            Variant::Ours => {
                let rx = ipc::open_receiver(&from_peer.receiver())?;
                let peer = Peer::spawn(cmd)?;
                let tx = ipc::open_sender(&to_peer.sender())?;
                Ok(Link::new(tx, rx, peer))
            }
            Variant::Raw => {
                let peer_gone = Arc::new(AtomicBool::new(false));
                let rx: Box<dyn Receiver> = Box::new(RawZenohReceiver::open(
                    &from_peer.receiver(),
                    size,
                    Arc::clone(&peer_gone),
                )?);
                let made = Made::default();
                let peer = Peer::spawn(cmd)?;
                let gone = Arc::clone(&peer_gone);
                watch::start(&peer, "zenoh", &made.stop, move || {
                    gone.store(true, Ordering::Release);
                    false
                })?;
                let tx: Box<dyn Sender> = Box::new(RawZenohSender::open(&to_peer.sender(), size)?);
                // `made` stops the watcher once the link is done, after the peer was waited for.
                Ok(Link::new(tx, rx, peer)
                    .ended_by_empty_message()
                    .keeping(made))
            }
        }
    }

    fn open_raw_peer(&self, size: usize, rx: &str, tx: &str) -> ipc::Result<Ends> {
        // The parent ends its stream with an empty message; should it die instead, the peer
        // dies with it (`PR_SET_PDEATHSIG`), so the peer's receiver needs no watcher.
        let rx = RawZenohReceiver::open(rx, size, Arc::new(AtomicBool::new(false)))?;
        let tx = RawZenohSender::open(tx, size)?;
        Ok((Box::new(rx), Box::new(tx)))
    }
}

/// Ports the bench's receivers listen on: below Linux's ephemeral range (32768 on), so that no
/// outgoing connection is given one between our check and Zenoh's `bind`, and apart from the
/// suite's (20000 on), so that a bench and a test run side by side do not race for one.
const PORTS: std::ops::Range<u16> = 15_000..20_000;

/// A loopback port free now, as the suite finds them: each process starts at its own place in
/// [`PORTS`] (from its pid) and takes the next free one. Should another process bind it before
/// Zenoh does, opening the receiver fails and the bench says so.
fn free_port() -> ipc::Result<u16> {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let span = PORTS.end - PORTS.start;
    let offset = (std::process::id() % u32::from(span)) as u16;
    for _ in 0..span {
        let port = PORTS.start + offset.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)) % span;
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    Err(ipc::Error::io(
        "finding a free loopback port for zenoh",
        std::io::Error::from(std::io::ErrorKind::AddrInUse),
    ))
}

/// One direction of a link: a key no other link uses and the port its receiver listens on.
struct Channel {
    key: String,
    port: u16,
    size: usize,
    wait: WaitStrategy,
}

impl Channel {
    fn new(size: usize, direction: &str, wait: WaitStrategy) -> ipc::Result<Channel> {
        Ok(Channel {
            key: format!("ipc-bench/{}/{direction}", fresh_name("link")),
            port: free_port()?,
            size,
            wait,
        })
    }

    fn spec(&self, endpoint: &str) -> String {
        format!(
            "zenoh:{}?mode=peer&scouting=off&capacity={CAPACITY}&message_size={}&{endpoint}=tcp/127.0.0.1:{}",
            self.key, self.size, self.port
        )
    }

    fn receiver(&self) -> String {
        format!("{}&wait={}", self.spec("listen"), self.wait)
    }

    /// A sender waits for the receiver's subscriber, not longer than any of the bench's opens.
    fn sender(&self) -> String {
        format!(
            "{}&open_timeout={}ms",
            self.spec("connect"),
            OPEN_TIMEOUT.as_millis()
        )
    }
}
