//! System V shared memory (`sysv-shm`): the `sysv-shm:` ring of the `ipc` facade, waiting the
//! default way (`spin`). It is the same ring as `posix-shm` over another kind of segment, so
//! there is no raw baseline of its own: compare with the `posix-shm-spin` row (and its raw
//! mailbox).
//!
//! The parent creates both segments of a link (keys `0x6…` from its pid and a counter, one
//! each way, `create=always`) before it starts the peer, which only opens them
//! (`create=never`), and removes them when the link is done, also on the way out of a failure
//! ([`Segments`]) and on an interrupting signal ([`Named::SysvShm`]). The stream ends with an
//! empty message; a peer that dies is spoken for by a [`Watcher`] thread, as for `posix-shm`.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread;
use std::time::Duration;

use ipc::sysv::Key;
use ipc::sysv::shm::SysvSegment;
use ipc::{Receiver, Sender};
use nix::errno::Errno;
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;

use crate::interrupt::{self, Named};
use crate::protocol::Variant;
use crate::transport::{BenchTransport, Link, Peer, Scratch};

/// The bench transport `sysv-shm`.
pub struct SysvShm;

/// The `sysv-shm:` spec of one ring of a link.
fn ring_spec(key: i32, size: usize, create: &str) -> String {
    let capacity = crate::posix_shm::ring_capacity(size);
    format!(
        "sysv-shm:key={key:#x}?capacity={capacity}&message_size={size}&create={create}&wait=spin"
    )
}

impl BenchTransport for SysvShm {
    fn name(&self) -> &'static str {
        "sysv-shm"
    }

    fn has_raw_baseline(&self) -> bool {
        false
    }

    fn connect(
        &self,
        variant: Variant,
        size: usize,
        _scratch: &Scratch,
        mut cmd: Command,
    ) -> ipc::Result<Link> {
        if variant == Variant::Raw {
            return Err(no_raw_baseline());
        }
        let mut segments = Segments::new();
        let to_peer_key = Segments::fresh_key();
        let to_peer = ipc::open_sender(&ring_spec(to_peer_key, size, "always"))?;
        // A sender never removes its segment: `segments` does.
        segments.created(to_peer_key);
        let from_peer_key = Segments::fresh_key();
        let from_peer = ipc::open_receiver(&ring_spec(from_peer_key, size, "always"))?;
        segments.created(from_peer_key);
        cmd.arg("--rx").arg(ring_spec(to_peer_key, size, "never"));
        cmd.arg("--tx").arg(ring_spec(from_peer_key, size, "never"));
        let watcher = Watcher {
            spec: format!(
                "{}&open_timeout=0ms",
                ring_spec(from_peer_key, size, "never")
            ),
        };
        let peer = Peer::spawn(cmd)?;
        watcher.start(&peer, Arc::clone(&segments.done))?;
        Ok(Link::new(to_peer, from_peer, peer)
            .ended_by_empty_message()
            .keeping(segments))
    }

    fn open_raw_peer(
        &self,
        _size: usize,
        _rx: &str,
        _tx: &str,
    ) -> ipc::Result<(Box<dyn Receiver>, Box<dyn Sender>)> {
        Err(no_raw_baseline())
    }
}

fn no_raw_baseline() -> ipc::Error {
    ipc::Error::invalid_spec(
        "sysv-shm",
        "the sysv-shm bench has no raw baseline (compare with posix-shm-spin)",
    )
}

/// The segments of one link, removed when dropped (with the link, or with a `connect` that
/// failed half way). Also tells the link's [`Watcher`] to stop.
struct Segments {
    keys: Vec<i32>,
    done: Arc<AtomicBool>,
}

impl Segments {
    fn new() -> Segments {
        Segments {
            keys: Vec::new(),
            done: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A key no other segment of this process gets, `0x6000_0000 | (pid & 0xf_ffff) << 8 | n`,
    /// skipping keys in use (another program's, or ours after the counter wrapped).
    fn fresh_key() -> i32 {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed) & 0xff;
            // At most 0x6fff_ffff: a positive i32, never IPC_PRIVATE.
            let key = (0x6000_0000 | ((std::process::id() & 0xf_ffff) << 8) | n) as i32;
            if SysvSegment::lookup(&Key::Explicit(key)).is_err() {
                return key;
            }
        }
    }

    /// Takes `key` in charge, once we created its segment.
    fn created(&mut self, key: i32) {
        self.keys.push(key);
        interrupt::track(Named::SysvShm(key));
    }
}

impl Drop for Segments {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Release);
        for key in self.keys.drain(..) {
            // Already gone if its receiving end removed it: that is fine.
            interrupt::remove_sysv_shm(key);
            interrupt::untrack(&Named::SysvShm(key));
        }
    }
}

/// How often a watcher whose peer has exited acts for it.
const ACT_PERIOD: Duration = Duration::from_millis(5);

/// Once the peer has exited, ends the stream to the parent with an empty message (a ring only
/// reports a dead producer that had attached). Takes no part in the measured runs.
struct Watcher {
    /// The spec of the ring from the peer.
    spec: String,
}

impl Watcher {
    fn start(self, peer: &Peer, done: Arc<AtomicBool>) -> ipc::Result<()> {
        let pid = Pid::from_raw(i32::try_from(peer.id()).unwrap_or(i32::MAX));
        thread::Builder::new()
            .name("bench-sysv-shm-watcher".into())
            .spawn(move || self.run(pid, &done))
            .map(drop)
            .map_err(|e| ipc::Error::io("starting the bench's sysv-shm watcher thread", e))
    }

    fn run(self, peer: Pid, done: &AtomicBool) {
        while let Err(Errno::EINTR) =
            waitid(Id::Pid(peer), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)
        {}
        let mut told = false;
        let mut ring: Option<Box<dyn Sender>> = None;
        while !done.load(Ordering::Acquire) {
            if told {
                // Keep the sender attached until the link is done, as posix-shm does.
            } else if ring.is_none() {
                match ipc::open_sender(&self.spec) {
                    Ok(tx) => ring = Some(tx),
                    Err(_) => return,
                }
            }
            if let Some(tx) = ring.as_mut().filter(|_| !told) {
                match tx.try_send(&[]) {
                    Ok(()) => told = true,
                    Err(ipc::Error::Full) => {}
                    Err(_) => return,
                }
            }
            thread::sleep(ACT_PERIOD);
        }
    }
}
