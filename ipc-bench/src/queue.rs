//! The queue family (`posix-mq`, `sysv-mq`): ours is a queue of the `ipc` facade, the baseline
//! plain blocking calls of the same kernel queues. This process creates both queues of a link
//! (one each way, with the same capacity and message size for both variants) before it starts
//! the peer, which only opens them, and removes them when the link is done, also on the way out
//! of a failure ([`Made`]) or an interrupt. A transport of the family says only how its queues
//! are named, spelt and used raw ([`QueueKind`]).
//!
//! A queue is no connection: neither side sees the other leave. So the stream ends with an
//! empty message ([`Link::ended_by_empty_message`]), and a watcher thread speaks for the peer
//! once it has exited, whatever way it exited, so that this process never waits for a dead
//! peer ([`QueueKind::speak_for_peer`]).

use std::process::Command;

use crate::interrupt::Named;
use crate::made::Made;
use crate::protocol::Variant;
use crate::transport::{BenchTransport, Ends, Link, Setup};

/// What a watcher does for a dead peer: see [`QueueKind::speak_for_peer`].
pub type Act = Box<dyn FnMut() -> bool + Send>;

/// What a queue transport tells the family's driver. An address is what follows the scheme
/// in a spec (`/ipc-bench-…`, `key=0x6b…`).
pub trait QueueKind: Sync {
    /// The scheme of its specs (`posix-mq`), also its name in the bench.
    fn scheme(&self) -> &'static str;
    /// Why `size`-byte messages cannot be measured on this machine (a kernel limit), if so.
    fn unsupported(&self, size: usize) -> Option<String>;
    /// How many `size`-byte messages each queue holds.
    fn capacity(&self, size: usize) -> u64;
    /// An address no other queue of this process gets.
    fn fresh(&self) -> String;
    /// Creates the queue at `address` with plain system calls, exclusively, mode 0600, as
    /// large as ours; returns what removes it.
    fn create_raw(&self, address: &str, capacity: u64, size: usize) -> ipc::Result<Named>;
    /// What removes the existing queue at `address`.
    fn named(&self, address: &str) -> ipc::Result<Named>;
    /// The baseline's ends on the existing queues that the specs `rx` and `tx` name.
    fn raw_ends(&self, size: usize, rx: &str, tx: &str) -> ipc::Result<Ends>;
    /// What the watcher does once the peer has exited, on descriptors of its own opened now:
    /// sends the empty message that ends this process's receive on `from_peer`, and keeps
    /// emptying `to_peer` so that a send blocked on it returns.
    fn speak_for_peer(&self, to_peer: &str, from_peer: &str, size: usize) -> ipc::Result<Act>;
}

/// The bench transport of the queue kind `K`.
pub struct Queues<K>(pub K);

impl<K: QueueKind> BenchTransport for Queues<K> {
    fn name(&self) -> &'static str {
        self.0.scheme()
    }

    fn unsupported(&self, size: usize) -> Option<String> {
        self.0.unsupported(size)
    }

    fn connect(&self, setup: Setup<'_>) -> ipc::Result<Link> {
        connect(&self.0, setup)
    }

    fn open_raw_peer(&self, size: usize, rx: &str, tx: &str) -> ipc::Result<Ends> {
        self.0.raw_ends(size, rx, tx)
    }
}

/// The link of `setup` on the queue transport `kind`.
fn connect(kind: &dyn QueueKind, setup: Setup<'_>) -> ipc::Result<Link> {
    let (variant, size, mut cmd) = (setup.variant, setup.size, setup.cmd);
    let capacity = kind.capacity(size);
    let mut made = Made::default();
    let to_peer = kind.fresh();
    let from_peer = kind.fresh();
    let spec = |address: &str, create: &str| match variant {
        Variant::Ours => format!(
            "{}:{address}?capacity={capacity}&message_size={size}&create={create}",
            kind.scheme()
        ),
        Variant::Raw => format!("{}:{address}", kind.scheme()),
    };
    let (tx, rx) = match variant {
        Variant::Ours => {
            // Made by senders, which never remove a queue: `made` removes both, once the peer
            // is done, whatever order the ends are dropped in.
            let tx = ipc::open_sender(&spec(&to_peer, "always"))?;
            made.created(kind.named(&to_peer)?);
            drop(ipc::open_sender(&spec(&from_peer, "always"))?);
            made.created(kind.named(&from_peer)?);
            (tx, ipc::open_receiver(&spec(&from_peer, "never"))?)
        }
        Variant::Raw => {
            made.created(kind.create_raw(&to_peer, capacity, size)?);
            made.created(kind.create_raw(&from_peer, capacity, size)?);
            let (rx, tx) = kind.raw_ends(size, &spec(&from_peer, ""), &spec(&to_peer, ""))?;
            (tx, rx)
        }
    };
    hand_to_peer(
        &mut cmd,
        &spec(&to_peer, "never"),
        &spec(&from_peer, "never"),
    );
    let act = kind.speak_for_peer(&to_peer, &from_peer, size)?;
    made.link(tx, rx, cmd, kind.scheme(), act)
}

fn hand_to_peer(cmd: &mut Command, rx: &str, tx: &str) {
    cmd.arg("--rx").arg(rx).arg("--tx").arg(tx);
}
