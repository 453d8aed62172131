//! POSIX shared memory, one bench transport per waiting strategy (`posix-shm-busy`,
//! `posix-shm-spin`, `posix-shm-park`), and `posix-shm-multi`: the busy ring made
//! `producers=multi`, so that the producers' claim shows beside the single-producer path. Ours
//! is the `posix-shm:` ring of the `ipc` facade, the baseline a single-slot
//! [mailbox](crate::mailbox) each way on plain atomics and futex calls, waiting the same way.
//!
//! Ours is the ring family's ([`crate::ring`]) on segments named `/ipc-bench-shm-<pid>-<n>`.
//! The raw mailboxes are made the same way, one each way, and removed with the link, also on
//! the way out of a failure ([`Made`]) and on an interrupting signal ([`Named::Shm`]). Their
//! stream ends with an empty message too (a mailbox has no connection), and a watcher speaks
//! for a peer that dies ([`crate::watch`]).

use std::process::Command;

use ipc::{Address, Producers, TransportSpec, WaitStrategy};

use crate::interrupt::{self, Named};
use crate::made::Made;
use crate::mailbox::{Mailbox, MailboxReceiver, MailboxSender};
use crate::protocol::{Api, Variant};
use crate::report::{Floors, Row};
use crate::ring::{self, RingKind};
use crate::transport::{BenchTransport, Ends, Link, Setup};

/// One row group of the table: the ring (and the mailbox) waiting as `wait` says.
pub struct PosixShm {
    name: &'static str,
    wait: WaitStrategy,
    producers: Producers,
}

/// Both ends poll without ever sleeping.
pub static BUSY: PosixShm = PosixShm::new("posix-shm-busy", WaitStrategy::Busy, Producers::Single);
/// Both ends poll for about 20 µs, then sleep on a futex.
pub static SPIN: PosixShm = PosixShm::new("posix-shm-spin", WaitStrategy::Spin, Producers::Single);
/// Both ends sleep on a futex at once.
pub static PARK: PosixShm = PosixShm::new("posix-shm-park", WaitStrategy::Park, Producers::Single);

/// Busy polling, on a multi-producer ring (one producer attached each way: what the claim
/// costs a producer that meets no other).
pub static MULTI: PosixShm = PosixShm::new("posix-shm-multi", WaitStrategy::Busy, Producers::Multi);

/// Whether `transport` is one of these.
pub fn is_one(transport: &dyn BenchTransport) -> bool {
    [&BUSY, &SPIN, &PARK, &MULTI]
        .iter()
        .any(|t| t.name() == transport.name())
}

/// The message size whose raw round trip is a floor.
const FLOOR_SIZE: usize = 64;

/// Takes the floors from `row` if it has them: the raw busy mailbox's 64 B round trip (the
/// cost of two cache-line hand-overs) and the raw parked one's (two futex wake-ups).
pub fn note_floors(row: &Row, floors: &mut Floors) {
    // A readiness row repeats its blocking row's raw baseline: taken once is enough.
    let Some(raw) = row
        .raw
        .as_ref()
        .filter(|_| row.size == FLOOR_SIZE && row.api == Api::Blocking)
    else {
        return;
    };
    if row.transport == BUSY.name {
        floors.spin_ns = Some(raw.rtt_p50_ns);
    } else if row.transport == PARK.name {
        floors.futex_ns = Some(raw.rtt_p50_ns);
    }
}

impl PosixShm {
    const fn new(name: &'static str, wait: WaitStrategy, producers: Producers) -> PosixShm {
        PosixShm {
            name,
            wait,
            producers,
        }
    }
}

impl RingKind for PosixShm {
    /// A name `/ipc-bench-shm-<pid>-<n>`.
    fn fresh(&self) -> (String, Named) {
        let name = interrupt::fresh_name("/ipc-bench-shm");
        (name.clone(), Named::Shm(name))
    }

    fn spec(&self, name: &str, size: usize, create: &str) -> String {
        let capacity = ring::ring_capacity(size);
        format!(
            "posix-shm:{name}?capacity={capacity}&message_size={size}&create={create}&wait={}\
             &producers={}",
            self.wait, self.producers
        )
    }
}

impl BenchTransport for PosixShm {
    fn name(&self) -> &'static str {
        self.name
    }

    /// An async endpoint only ever tries without waiting and then sleeps on its doorbell, so
    /// the blocking strategy makes no difference to it: measured once against park, the
    /// blocking mode that sleeps as it does (both readiness paths), and once on the
    /// multi-producer ring, whose producers arm their doorbells by another path (tokio only,
    /// to keep the extra runs few). Busy and spin rows compare with those figures as they are.
    fn readiness_apis(&self) -> &'static [Api] {
        match (self.wait, self.producers) {
            (WaitStrategy::Park, _) => &[Api::Async, Api::WaitSet],
            (_, Producers::Multi) => &[Api::Async],
            _ => &[],
        }
    }

    fn connect(&self, setup: Setup<'_>) -> ipc::Result<Link> {
        let (variant, size, cmd) = (setup.variant, setup.size, setup.cmd);
        let made = Made::default();
        if variant == Variant::Ours {
            return ring::connect_ours(self, size, cmd, made);
        }
        connect_raw(self.wait, size, cmd, made)
    }

    fn open_raw_peer(&self, size: usize, rx: &str, tx: &str) -> ipc::Result<Ends> {
        open_raw_mailboxes(self.wait, size, rx, tx)
    }
}

/// The peer's ends of the raw baseline: the mailboxes `rx` and `tx` (`posix-shm:/name`) the
/// parent made, waiting as `wait` says.
pub(crate) fn open_raw_mailboxes(
    wait: WaitStrategy,
    size: usize,
    rx: &str,
    tx: &str,
) -> ipc::Result<Ends> {
    let rx = Mailbox::open(&name(rx)?, size)?;
    let tx = Mailbox::open(&name(tx)?, size)?;
    Ok((
        Box::new(MailboxReceiver::new(rx, wait)),
        Box::new(MailboxSender::new(tx, wait)),
    ))
}

fn name(spec: &str) -> ipc::Result<String> {
    match spec.parse::<TransportSpec>()?.address {
        Address::Name(name) => Ok(name),
        _ => Err(ipc::Error::invalid_spec(spec, "expected `posix-shm:/name`")),
    }
}

/// The raw baseline: a mailbox each way, which this process creates and owns (they go with
/// the link), the peer opens by name. `file-shm`'s too: the same ring, so the same floor.
pub(crate) fn connect_raw(
    wait: WaitStrategy,
    size: usize,
    mut cmd: Command,
    mut made: Made,
) -> ipc::Result<Link> {
    let to_peer_name = interrupt::fresh_name("/ipc-bench-shm");
    let from_peer_name = interrupt::fresh_name("/ipc-bench-shm");
    let (owner, to_peer) = Mailbox::create(&to_peer_name, size)?;
    made.owned(Named::Shm(to_peer_name.clone()), owner);
    let (owner, from_peer) = Mailbox::create(&from_peer_name, size)?;
    made.owned(Named::Shm(from_peer_name.clone()), owner);
    cmd.arg("--rx").arg(format!("posix-shm:{to_peer_name}"));
    cmd.arg("--tx").arg(format!("posix-shm:{from_peer_name}"));
    // A mailbox tells nothing of a dead peer: the watcher ends the stream to the parent and
    // takes what the parent sends, so that a send waiting for the slot returns.
    let (watched_to, watched_from) = (to_peer.clone(), from_peer.clone());
    let mut told = false;
    let act = move || {
        told = told || watched_from.end_for_dead_sender();
        watched_to.take_for_dead_receiver();
        true
    };
    let to_peer = Box::new(MailboxSender::new(to_peer, wait));
    let from_peer = Box::new(MailboxReceiver::new(from_peer, wait));
    made.link(to_peer, from_peer, cmd, "shm", act)
}
