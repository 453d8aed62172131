//! The consuming end of a ring.

use std::ops::Deref;
use std::os::fd::BorrowedFd;
use std::sync::atomic::Ordering;

use ipc_core::{Error, Interest, Readiness, Receiver, Result, Wait};

use super::bell::Doorbell;
use super::core::{ConsumerCore, Corruption, Found, RingMem};
use super::mem::SegmentMem;
use super::peers::{self, ProducerWatch};
use super::wait::{BELL, PARK_SLICE, wait_for};
use super::{EndpointOptions, MAX_PRODUCERS, Producers, WaitStrategy, attach, ctl};
use crate::sys::mem::Shared;

/// Receives from a ring: copies through [`Receiver`], or reads in place through
/// [`RingReceiver::recv_in_place`].
#[derive(Debug)]
pub struct RingReceiver {
    mem: SegmentMem,
    core: ConsumerCore,
    claim: peers::Claim,
    producers: ProducerWatch,
    strategy: WaitStrategy,
    max_message: usize,
    /// Made when an event loop first asks for readiness.
    bell: Option<Doorbell>,
    /// Set when the doorbell saw a producer die: the next receive checks them all at once.
    recheck_peers: bool,
    /// A multi-producer ring (producers may attach at any time).
    multi: bool,
}

impl RingReceiver {
    /// Attaches to the ring initialised in `shared` as its consumer. A ring has one consumer: if
    /// a live process already receives, this is [`Error::LimitExceeded`]; a dead one's place is
    /// taken over, and records it had not released are delivered again.
    pub fn attach(shared: Shared, options: &EndpointOptions) -> Result<RingReceiver> {
        let a = attach(&shared, options.init_timeout)?;
        let mem = SegmentMem::new(shared.clone(), &a);
        let Some(claim) = peers::Slot::at(a.ctl + ctl::CONSUMER).claim(&shared)? else {
            return Err(Error::LimitExceeded {
                what: format!(
                    "consumers of the ring {} (another live process receives)",
                    shared.segment().id()
                ),
                limit: 1,
            });
        };
        mem.ctl32(ctl::CONSUMER_PARKS).store(
            u32::from(options.wait != WaitStrategy::Busy),
            Ordering::SeqCst,
        );
        let head = mem.ctl64(ctl::HEAD).load(Ordering::Acquire);
        let core = ConsumerCore::new(a.geo, head).inspect_err(|_| {
            claim.release(&shared, peers::EMPTY);
        })?;
        let slots = match a.producers {
            Producers::Single => 1,
            Producers::Multi => MAX_PRODUCERS,
        };
        Ok(RingReceiver {
            producers: ProducerWatch::new(a.ctl, a.ctl + ctl::PRODUCERS_EVER, slots),
            mem,
            core,
            claim,
            strategy: options.wait,
            max_message: a.geo.max_message,
            bell: None,
            recheck_peers: false,
            multi: a.producers == Producers::Multi,
        })
    }

    /// How this endpoint waits.
    pub fn wait_strategy(&self) -> WaitStrategy {
        self.strategy
    }

    /// The next record, read in place, waiting as long as it takes.
    #[inline(always)]
    pub fn recv_in_place(&mut self) -> Result<Record<'_>> {
        self.recv_in_place_with(Wait::Forever)
    }

    /// The next record, read in place inside the segment; it is released (its space given back
    /// to the producers) when the [`Record`] is dropped.
    #[inline(always)]
    pub fn recv_in_place_with(&mut self, wait: Wait) -> Result<Record<'_>> {
        let found = self.next(wait)?;
        Ok(Record {
            mem: &self.mem,
            core: &mut self.core,
            found,
        })
    }

    #[inline(always)]
    fn next(&mut self, wait: Wait) -> Result<Found> {
        // A record waiting is the common case of a busy stream; the polling machinery, out of
        // line, would move every result through memory.
        match self.core.peek_fast(&self.mem) {
            Some(found) => Ok(found),
            None => self.wait_next(wait),
        }
    }

    #[inline(never)]
    fn wait_next(&mut self, wait: Wait) -> Result<Found> {
        let RingReceiver {
            mem,
            core,
            producers,
            strategy,
            recheck_peers,
            ..
        } = self;
        let mut recheck = std::mem::take(recheck_peers);
        let data = mem.ctl32(ctl::DATA_WAIT);
        wait_for(
            *strategy,
            wait,
            data,
            || Error::Empty,
            |force| {
                let before = core.head();
                let found = core.peek(mem);
                if core.head() != before {
                    // `peek` skipped a pad, which gave space back.
                    mem.wake_producers();
                }
                if let Some(found) = found? {
                    return Ok(Some(found));
                }
                if producers.all_gone(mem.shared(), force || std::mem::take(&mut recheck))? {
                    // A producer commits before it leaves: look once more, now that it is gone.
                    return match core.peek(mem)? {
                        Some(found) => Ok(Some(found)),
                        None => Err(Error::Disconnected),
                    };
                }
                Ok(None)
            },
        )
        // A producer slot that failed its check fails every later receive too, as a record
        // header does (inside `peek`).
        .map_err(|e| keep_corruption(e, &mut core.corruption))
    }
}

/// Out of line, so that the receive path stays small.
#[cold]
#[inline(never)]
fn keep_corruption(e: Error, corruption: &mut Corruption) -> Error {
    corruption.keep(e)
}

impl Receiver for RingReceiver {
    fn max_message_size(&self) -> usize {
        self.max_message
    }

    #[inline]
    fn readiness(&mut self) -> Option<&mut dyn Readiness> {
        Some(self)
    }

    #[inline]
    fn recv_with(&mut self, buf: &mut [u8], wait: Wait) -> Result<usize> {
        let found = self.next(wait)?;
        if found.len > buf.len() {
            // The record stays: a larger buffer gets it.
            return Err(Error::BufferTooSmall {
                len: buf.len(),
                needed: found.len,
            });
        }
        self.mem.copy_out(found.payload, &mut buf[..found.len]);
        self.core.release(&self.mem, found.size);
        self.mem.wake_producers();
        Ok(found.len)
    }
}

impl RingReceiver {
    /// The doorbell, made and published at the first call.
    fn doorbell(&mut self) -> Result<(&mut Doorbell, bool)> {
        let fresh = self.bell.is_none();
        if fresh {
            let bell = Doorbell::new()?;
            self.mem.bell_missed(ctl::CONSUMER_BIT, true);
            self.claim.set_bell(self.mem.shared(), bell.name());
            // Producers look for a waiting consumer only if it may wait.
            self.mem
                .ctl32(ctl::CONSUMER_PARKS)
                .store(1, Ordering::SeqCst);
            self.bell = Some(bell);
        }
        Ok((self.bell.as_mut().expect("made above"), fresh))
    }
}

/// Readiness: the descriptor is an epoll set of the ring's doorbell and the producers'
/// pidfds; it becomes readable when a record is committed while the receiver is armed, when a
/// producer leaves, dies or attaches, and may become readable spuriously.
impl Readiness for RingReceiver {
    fn ready_fd(&mut self) -> Result<(BorrowedFd<'_>, Interest)> {
        self.doorbell()?;
        let bell = self.bell.as_ref().expect("made above");
        Ok((bell.fd(), Interest::Readable))
    }

    fn prepare_wait(&mut self) -> Result<bool> {
        let (_, fresh) = self.doorbell()?;
        let RingReceiver {
            mem,
            core,
            producers,
            bell,
            multi,
            ..
        } = self;
        let bell = bell.as_mut().expect("made above");
        bell.watch(producers.pidfds())?;
        // Who will ring us must be known to be able to: a producer in another PID namespace
        // (or of another user) cannot, and one yet to come (on a multi-producer ring, any
        // time) may not. Otherwise look every park slice, as a parked receiver does.
        if *multi || !producers.all_reach_us() || mem.bell_missed(ctl::CONSUMER_BIT, false) {
            bell.arm_fallback(PARK_SLICE)?;
        }
        let word = mem.ctl32(ctl::DATA_WAIT);
        word.store(BELL, Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::SeqCst);
        let before = core.head();
        let found = core.peek(mem);
        if core.head() != before {
            mem.wake_producers();
        }
        // Errors are the next receive's to report. A fresh doorbell does not sleep at once: a
        // producer that read "the consumer never waits" just before it was published may have
        // committed unseen.
        let ready = fresh
            || !matches!(found, Ok(None))
            || !matches!(producers.all_gone(mem.shared(), false), Ok(false));
        if ready {
            word.store(0, Ordering::Relaxed);
        }
        Ok(ready)
    }

    fn after_wake(&mut self) {
        if let Some(bell) = self.bell.as_mut() {
            self.recheck_peers |= bell.after_wake();
        }
    }
}

impl Drop for RingReceiver {
    fn drop(&mut self) {
        self.claim.release(self.mem.shared(), peers::CLOSED);
        // A producer parked on a full ring should notice at once that nobody will drain it.
        self.mem.wake_producers();
    }
}

/// A record read in place, inside the segment. Dropping it releases the space.
pub struct Record<'a> {
    mem: &'a SegmentMem,
    core: &'a mut ConsumerCore,
    found: Found,
}

impl Deref for Record<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.mem.slot(self.found.payload, self.found.len)
    }
}

impl Drop for Record<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        self.core.release(self.mem, self.found.size);
        self.mem.wake_producers();
    }
}

impl std::fmt::Debug for Record<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("offset", &self.found.payload)
            .field("len", &self.found.len)
            .finish()
    }
}
