//! POSIX shared memory, one bench transport per waiting strategy (`posix-shm-busy`,
//! `posix-shm-spin`, `posix-shm-park`), and `posix-shm-multi`: the busy ring made
//! `producers=multi`, so that the producers' claim shows beside the single-producer path. Ours
//! is the `posix-shm:` ring of the `ipc` facade, the baseline a single-slot
//! [mailbox](crate::mailbox) each way on plain atomics and futex calls, waiting the same way.
//!
//! The parent creates both segments of a link (`/ipc-bench-shm-<pid>-<n>`, one each way,
//! `create=always`) before it starts the peer, which only opens them (`create=never`), and
//! removes them when the link is done, also on the way out of a failure ([`Segments`]) and on
//! an interrupting signal ([`Named::Shm`]).
//!
//! The stream ends with an empty message, on both ([`Link::ended_by_empty_message`]): the
//! mailbox has no connection, and the ring does the same for symmetry. A peer that dies is
//! noticed by a [`Watcher`] thread, which speaks for it once it has exited: the ring reports a
//! dead peer by itself, but only one that had attached, and the mailbox not at all.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread;
use std::time::Duration;

use ipc::posix::PosixName;
use ipc::posix::shm::{self, SharedMemory};
use ipc::sync::ring::Geometry;
use ipc::{Address, Owner, Producers, Receiver, Sender, TransportSpec, WaitStrategy};
use nix::errno::Errno;
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;

use crate::interrupt::{self, Named};
use crate::mailbox::{Mailbox, MailboxReceiver, MailboxSender};
use crate::protocol::{Api, Variant};
use crate::report::{Floors, Row};
use crate::transport::{BenchTransport, Link, Peer, Scratch};

/// One row group of the table: the ring (and the mailbox) waiting as `wait` says.
pub struct PosixShm {
    name: &'static str,
    wait: WaitStrategy,
    producers: Producers,
}

/// Both ends poll without ever sleeping.
pub static BUSY: PosixShm = PosixShm {
    name: "posix-shm-busy",
    wait: WaitStrategy::Busy,
    producers: Producers::Single,
};
/// Both ends poll for about 20 µs, then sleep on a futex.
pub static SPIN: PosixShm = PosixShm {
    name: "posix-shm-spin",
    wait: WaitStrategy::Spin,
    producers: Producers::Single,
};
/// Both ends sleep on a futex at once.
pub static PARK: PosixShm = PosixShm {
    name: "posix-shm-park",
    wait: WaitStrategy::Park,
    producers: Producers::Single,
};

/// Busy polling, on a multi-producer ring (one producer attached each way: what the claim
/// costs a producer that meets no other).
pub static MULTI: PosixShm = PosixShm {
    name: "posix-shm-multi",
    wait: WaitStrategy::Busy,
    producers: Producers::Multi,
};

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

/// Smallest ring capacity; a ring also holds at least [`MESSAGES_IN_RING`] messages.
const MIN_CAPACITY: usize = 1 << 20;
const MESSAGES_IN_RING: usize = 16;

/// The capacity of a ring for `size`-byte messages: at least [`MIN_CAPACITY`] and
/// [`MESSAGES_IN_RING`] messages, a power of two, and large enough that the ring takes
/// `size`-byte messages at all ([`Geometry::max_message_for`]).
pub fn ring_capacity(size: usize) -> usize {
    let mut capacity = MIN_CAPACITY
        .max(MESSAGES_IN_RING.saturating_mul(size))
        .checked_next_power_of_two()
        .unwrap_or(usize::MAX);
    while Geometry::max_message_for(capacity as u64) < size && capacity < usize::MAX / 2 {
        capacity *= 2;
    }
    capacity
}

impl PosixShm {
    /// The `posix-shm:` spec of one ring of a link.
    fn ring_spec(&self, name: &str, size: usize, create: &str) -> String {
        let capacity = ring_capacity(size);
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

    fn connect(
        &self,
        variant: Variant,
        size: usize,
        _scratch: &Scratch,
        mut cmd: Command,
    ) -> ipc::Result<Link> {
        let mut segments = Segments::new();
        let to_peer_name = Segments::fresh_name();
        let from_peer_name = Segments::fresh_name();
        let (to_peer, from_peer, watcher): (Box<dyn Sender>, Box<dyn Receiver>, Watcher) =
            match variant {
                Variant::Ours => {
                    let to_peer = ipc::open_sender(&self.ring_spec(&to_peer_name, size, "always"))?;
                    // A sender never removes its segment: `segments` does.
                    segments.created(&to_peer_name);
                    let from_peer =
                        ipc::open_receiver(&self.ring_spec(&from_peer_name, size, "always"))?;
                    // Removed by the receiver when it goes, and by `segments` in any case.
                    segments.created(&from_peer_name);
                    cmd.arg("--rx")
                        .arg(self.ring_spec(&to_peer_name, size, "never"));
                    cmd.arg("--tx")
                        .arg(self.ring_spec(&from_peer_name, size, "never"));
                    // The watcher's own sender does not wait for a segment already removed.
                    let spec = format!(
                        "{}&open_timeout=0ms",
                        self.ring_spec(&from_peer_name, size, "never")
                    );
                    (to_peer, from_peer, Watcher::Ring { spec })
                }
                Variant::Raw => {
                    let (owner, to_peer) = Mailbox::create(&to_peer_name, size)?;
                    segments.owned(&to_peer_name, owner);
                    let (owner, from_peer) = Mailbox::create(&from_peer_name, size)?;
                    segments.owned(&from_peer_name, owner);
                    cmd.arg("--rx").arg(format!("posix-shm:{to_peer_name}"));
                    cmd.arg("--tx").arg(format!("posix-shm:{from_peer_name}"));
                    let watcher = Watcher::Mailbox {
                        to_peer: to_peer.clone(),
                        from_peer: from_peer.clone(),
                    };
                    (
                        Box::new(MailboxSender::new(to_peer, self.wait)),
                        Box::new(MailboxReceiver::new(from_peer, self.wait)),
                        watcher,
                    )
                }
            };
        let peer = Peer::spawn(cmd)?;
        watcher.start(&peer, Arc::clone(&segments.done))?;
        Ok(Link::new(to_peer, from_peer, peer)
            .ended_by_empty_message()
            .keeping(segments))
    }

    fn open_raw_peer(
        &self,
        size: usize,
        rx: &str,
        tx: &str,
    ) -> ipc::Result<(Box<dyn Receiver>, Box<dyn Sender>)> {
        let rx = Mailbox::open(&name(rx)?, size)?;
        let tx = Mailbox::open(&name(tx)?, size)?;
        Ok((
            Box::new(MailboxReceiver::new(rx, self.wait)),
            Box::new(MailboxSender::new(tx, self.wait)),
        ))
    }
}

fn name(spec: &str) -> ipc::Result<String> {
    match spec.parse::<TransportSpec>()?.address {
        Address::Name(name) => Ok(name),
        _ => Err(ipc::Error::invalid_spec(spec, "expected `posix-shm:/name`")),
    }
}

/// The segments of one link, removed when dropped: with the link, after its peer was waited
/// for, or with a `connect` that failed half way. Also tells the link's [`Watcher`] to stop.
struct Segments {
    /// Created through the facade: removed here by name (`shm_unlink`).
    by_name: Vec<String>,
    /// Created here: their owners remove them.
    owners: Vec<Owner<SharedMemory>>,
    /// Every name above, as tracked for interrupting signals.
    tracked: Vec<String>,
    done: Arc<AtomicBool>,
}

impl Segments {
    fn new() -> Segments {
        Segments {
            by_name: Vec::new(),
            owners: Vec::new(),
            tracked: Vec::new(),
            done: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A name no other segment of this process gets: `/ipc-bench-shm-<pid>-<n>`.
    fn fresh_name() -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        format!("/ipc-bench-shm-{}-{n}", std::process::id())
    }

    fn track(&mut self, name: &str) {
        self.tracked.push(name.to_owned());
        interrupt::track(Named::Shm(name.to_owned()));
    }

    /// Takes `name` in charge. Only once we created it: a segment we failed to create (it
    /// existed) is not ours to remove.
    fn created(&mut self, name: &str) {
        self.by_name.push(name.to_owned());
        self.track(name);
    }

    /// Keeps the owner of the segment `name` until the link is done.
    fn owned(&mut self, name: &str, owner: Owner<SharedMemory>) {
        self.owners.push(owner);
        self.track(name);
    }
}

impl Drop for Segments {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Release);
        self.owners.clear();
        for name in &self.by_name {
            // Already gone if its receiving end removed it: that is fine.
            let _ = PosixName::new(name).and_then(|name| shm::unlink(&name));
        }
        for name in self.tracked.drain(..) {
            interrupt::untrack(&Named::Shm(name));
        }
    }
}

/// How often a watcher whose peer has exited acts for it.
const ACT_PERIOD: Duration = Duration::from_millis(5);

/// Speaks for the peer once it has exited, so that the parent is never left waiting for it:
///
/// - ends the stream to the parent with an empty message, which ends whatever receive it
///   waits in (a ring only reports a dead producer that had attached; a mailbox nothing);
/// - on a mailbox, also takes what the parent sends, so that a send waiting for the slot
///   returns (a ring's sender sees its consumer gone by itself).
///
/// Only after the peer exited: it takes no part in the measured runs. It stops once the link's
/// [`Segments`] are dropped.
enum Watcher {
    /// The spec of the ring from the peer, to send the empty message on.
    Ring { spec: String },
    /// The link's mailboxes.
    Mailbox {
        to_peer: Mailbox,
        from_peer: Mailbox,
    },
}

impl Watcher {
    fn start(self, peer: &Peer, done: Arc<AtomicBool>) -> ipc::Result<()> {
        let pid = Pid::from_raw(i32::try_from(peer.id()).unwrap_or(i32::MAX));
        thread::Builder::new()
            .name("bench-shm-watcher".into())
            .spawn(move || self.run(pid, &done))
            .map(drop)
            .map_err(|e| ipc::Error::io("starting the bench's shared-memory watcher thread", e))
    }

    fn run(self, peer: Pid, done: &AtomicBool) {
        // WNOWAIT: the peer stays to be reaped by `Link::finish`. Any error (ECHILD: already
        // reaped) also means the peer is gone.
        while let Err(Errno::EINTR) =
            waitid(Id::Pid(peer), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)
        {}
        let mut told = false;
        let mut ring: Option<Box<dyn Sender>> = None;
        while !done.load(Ordering::Acquire) {
            match &self {
                Watcher::Ring { spec } if !told => {
                    if ring.is_none() {
                        match ipc::open_sender(spec) {
                            Ok(tx) => ring = Some(tx),
                            // Removed already (the link is being dropped), or never usable.
                            Err(_) => return,
                        }
                    }
                    if let Some(tx) = &mut ring {
                        match tx.try_send(&[]) {
                            Ok(()) => told = true,
                            Err(ipc::Error::Full) => {}
                            Err(_) => return,
                        }
                    }
                }
                Watcher::Ring { .. } => {}
                Watcher::Mailbox { to_peer, from_peer } => {
                    told = told || from_peer.end_for_dead_sender();
                    to_peer.take_for_dead_receiver();
                }
            }
            thread::sleep(ACT_PERIOD);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_take_their_messages() {
        for size in [1, 64, 4096, 65536, 1 << 20, (1 << 20) + 1, 64 << 20] {
            let capacity = ring_capacity(size);
            assert!(
                capacity >= MIN_CAPACITY && capacity.is_power_of_two(),
                "{size}"
            );
            assert!(capacity >= MESSAGES_IN_RING * size, "{size}");
            assert!(Geometry::max_message_for(capacity as u64) >= size, "{size}");
        }
        assert_eq!(ring_capacity(64), MIN_CAPACITY);
        assert_eq!(ring_capacity(1 << 20), 16 << 20);
    }
}
