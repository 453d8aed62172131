//! The producing end of a ring.

use std::ops::{Deref, DerefMut};
use std::os::fd::BorrowedFd;
use std::sync::atomic::Ordering;

use ipc_core::{Error, Interest, Readiness, Result, Sender, Wait};

use super::bell::Doorbell;
use super::core::{Corruption, ProducerCore, Slot};
use super::lock::{ProducerLock, Taken};
use super::mem::SegmentMem;
use super::peers::{self, Peer, SlotWatch};
use super::wait::wait_for;
use super::{EndpointOptions, MAX_PRODUCERS, Producers, WaitStrategy, attach, ctl};
use crate::sys::mem::Shared;

/// Sends into a ring: copies through [`Sender`], or writes in place through [`RingSender::loan`].
#[derive(Debug)]
pub struct RingSender {
    mem: SegmentMem,
    core: ProducerCore,
    // Multi-producer rings only: held from reserving a record to committing it.
    lock: Option<ProducerLock>,
    claim: peers::Claim,
    consumer: SlotWatch,
    strategy: WaitStrategy,
    max_message: usize,
    disconnected: bool,
    corruption: Corruption,
    /// This producer's slot (its bit in the doorbell mask).
    index: usize,
    /// Whether this producer is counted in `PRODUCERS_PARK` (it may park, or has a doorbell).
    counted_in_park: bool,
    /// Made when an event loop first asks for readiness.
    bell: Option<Doorbell>,
    /// The consumer's position when the doorbell was last armed: a change means space freed.
    armed_head: u64,
    /// Set when the doorbell saw the consumer or the lock holder die: the next send checks
    /// at once.
    recheck_peers: bool,
    /// The last `try_` found the producers' lock held (not the ring full).
    lock_busy: bool,
}

impl RingSender {
    /// Attaches to the ring initialised in `shared` (see [`init`](super::init)) as a producer.
    ///
    /// A single-producer ring whose producer is alive refuses a second one, and a
    /// multi-producer ring refuses more than [`MAX_PRODUCERS`], with
    /// [`Error::LimitExceeded`]. A dead predecessor's slot is taken over, and records it
    /// committed are kept.
    pub fn attach(shared: Shared, options: &EndpointOptions) -> Result<RingSender> {
        let a = attach(&shared, options.init_timeout)?;
        let mem = SegmentMem::new(shared.clone(), &a);
        let slots = match a.producers {
            Producers::Single => 1,
            Producers::Multi => MAX_PRODUCERS,
        };
        let mut claimed = None;
        for i in 0..slots {
            let slot = peers::Slot::at(a.ctl + ctl::SLOTS + i * ctl::SLOT_SIZE);
            if let Some(claim) = slot.claim(&shared)? {
                claimed = Some((i, claim));
                break;
            }
        }
        let Some((index, claim)) = claimed else {
            return Err(Error::LimitExceeded {
                what: match a.producers {
                    Producers::Single => format!(
                        "producers of the single-producer ring {} (another live process sends)",
                        shared.segment().id()
                    ),
                    Producers::Multi => {
                        format!("producers of the ring {}", shared.segment().id())
                    }
                },
                limit: slots as u64,
            });
        };
        let release = |e: Error| {
            claim.release(&shared, peers::EMPTY);
            e
        };
        let mut core = ProducerCore::new(a.geo, 0, 0).map_err(release)?;
        let lock = match a.producers {
            Producers::Single => {
                // A predecessor may have died after committing a record but before counting it.
                core.recover(&mem).map_err(release)?;
                None
            }
            Producers::Multi => Some(ProducerLock::new(a.ctl, index, claim.epoch())),
        };
        mem.ctl32(ctl::PRODUCERS_EVER).store(1, Ordering::Release);
        let counted_in_park = options.wait != WaitStrategy::Busy;
        if counted_in_park {
            mem.ctl32(ctl::PRODUCERS_PARK)
                .fetch_add(1, Ordering::SeqCst);
        }
        // A consumer waiting on its doorbell watches the producers' pidfds: let it add ours.
        mem.wake_consumer();
        Ok(RingSender {
            consumer: SlotWatch::new(peers::Slot::at(a.ctl + ctl::CONSUMER)),
            mem,
            core,
            lock,
            claim,
            strategy: options.wait,
            max_message: a.geo.max_message,
            disconnected: false,
            corruption: Corruption::default(),
            index,
            counted_in_park,
            bell: None,
            armed_head: u64::MAX,
            recheck_peers: false,
            lock_busy: false,
        })
    }

    /// Position of the next record (for tests that track where records lie).
    #[cfg(test)]
    pub(crate) fn position(&self) -> u64 {
        self.core.tail()
    }

    /// How this endpoint waits.
    pub fn wait_strategy(&self) -> WaitStrategy {
        self.strategy
    }

    /// Reserves `len` bytes inside the segment, waiting for space as long as it takes.
    #[inline(always)]
    pub fn loan(&mut self, len: usize) -> Result<Loan<'_>> {
        self.loan_with(len, Wait::Forever)
    }

    /// Reserves `len` bytes inside the segment, waiting for space as `wait` says. Write the
    /// message into the returned [`Loan`], then [`Loan::commit`] it; dropping it uncommitted
    /// publishes nothing. On a multi-producer ring the loan holds the producers' lock: other
    /// producers wait until it is committed or dropped.
    #[inline(always)]
    pub fn loan_with(&mut self, len: usize, wait: Wait) -> Result<Loan<'_>> {
        // The common case of a single producer with room, kept small enough to inline: the
        // general path below moves every intermediate result through memory.
        if self.lock.is_none()
            && !self.disconnected
            && !self.recheck_peers
            && self.corruption.is_clear()
            && matches!(
                self.consumer.check(self.mem.shared(), false),
                Ok(Peer::Alive | Peer::Absent)
            )
        {
            if let Some(slot) = self.core.reserve_fast(len) {
                return Ok(Loan {
                    mem: &self.mem,
                    core: &mut self.core,
                    slot,
                    lock: None,
                });
            }
        }
        self.loan_slow(len, wait)
    }

    #[inline(never)]
    fn loan_slow(&mut self, len: usize, wait: Wait) -> Result<Loan<'_>> {
        if len > self.max_message {
            return Err(Error::MessageTooLarge {
                len,
                max: self.max_message,
            });
        }
        let RingSender {
            mem,
            core,
            lock,
            consumer,
            strategy,
            disconnected,
            corruption,
            recheck_peers,
            lock_busy,
            ..
        } = self;
        if *disconnected {
            return Err(Error::Disconnected);
        }
        corruption.check()?;
        let recheck = std::mem::take(recheck_peers);
        let mut fail = |e: Error| ended(e, disconnected, corruption);
        if consumer.check(mem.shared(), recheck).map_err(&mut fail)? == Peer::Gone {
            return Err(fail(Error::Disconnected));
        }
        if let Some(lock) = lock.as_mut() {
            let taken = match lock.acquire(mem, *strategy, wait, consumer, recheck) {
                Ok(taken) => taken,
                Err(e) => {
                    // An event loop then waits for the lock's release, not for space.
                    *lock_busy = matches!(e, Error::Full);
                    return Err(fail(e));
                }
            };
            let synced = match taken {
                Taken::Released => core.resync(mem),
                // Whatever the dead producer wrote past the published tail is either a
                // committed record (kept) or never published (overwritten): `recover` finds out
                // which.
                Taken::FromDead => core.recover(mem),
            };
            if let Err(e) = synced {
                lock.release(mem);
                return Err(fail(e));
            }
        }
        let space = mem.ctl32(ctl::SPACE_WAIT);
        let reserved = wait_for(
            *strategy,
            wait,
            space,
            || Error::Full,
            |force| {
                if let Some(slot) = core.reserve(mem, len)? {
                    return Ok(Some(slot));
                }
                if core.padded {
                    mem.wake_consumer();
                }
                if consumer.check(mem.shared(), force)? == Peer::Gone {
                    return Err(Error::Disconnected);
                }
                Ok(None)
            },
        );
        let slot = match reserved {
            Ok(slot) => slot,
            Err(e) => {
                if let Some(lock) = lock.as_mut() {
                    lock.release(mem);
                }
                return Err(fail(e));
            }
        };
        Ok(Loan {
            mem,
            core,
            slot,
            lock: lock.as_mut(),
        })
    }
}

/// Disconnected and Corrupted are final: every later call gives the same answer. Out of line,
/// so that the message path stays small.
#[cold]
#[inline(never)]
fn ended(e: Error, disconnected: &mut bool, corruption: &mut Corruption) -> Error {
    if matches!(e, Error::Disconnected) {
        *disconnected = true;
    }
    corruption.keep(e)
}

impl RingSender {
    /// The doorbell, made and published at the first call.
    fn doorbell(&mut self) -> Result<bool> {
        let fresh = self.bell.is_none();
        if fresh {
            let bell = Doorbell::new()?;
            self.mem.bell_missed(1 << self.index, true);
            self.claim.set_bell(self.mem.shared(), bell.name());
            // The consumer looks for waiting producers only if one may wait.
            if !self.counted_in_park {
                self.mem
                    .ctl32(ctl::PRODUCERS_PARK)
                    .fetch_add(1, Ordering::SeqCst);
                self.counted_in_park = true;
            }
            self.bell = Some(bell);
        }
        Ok(fresh)
    }
}

/// Readiness: the descriptor is an epoll set of this producer's doorbell and the pidfds of the
/// consumer and of the producer holding the lock; it becomes readable when the consumer frees
/// space or leaves or dies, and (multi-producer rings) when the lock is released, and may
/// become readable spuriously.
impl Readiness for RingSender {
    fn ready_fd(&mut self) -> Result<(BorrowedFd<'_>, Interest)> {
        self.doorbell()?;
        let bell = self.bell.as_ref().expect("made above");
        Ok((bell.fd(), Interest::Readable))
    }

    fn prepare_wait(&mut self) -> Result<bool> {
        let fresh = self.doorbell()?;
        if self.disconnected || self.corruption.check().is_err() {
            return Ok(true);
        }
        let RingSender {
            mem,
            lock,
            consumer,
            bell,
            index,
            armed_head,
            lock_busy,
            ..
        } = self;
        let bell = bell.as_mut().expect("made above");
        let holder = lock.as_ref().and_then(|lock| lock.holder_pidfd());
        bell.watch(consumer.pidfd().into_iter().chain(holder))?;
        // Who will ring us must be known to be able to: the consumer, and on a multi-producer
        // ring whichever producer releases the lock next, which may be one yet to come.
        // Otherwise look every park slice, as a parked sender does.
        if lock.is_some() || !consumer.reaches_us() || mem.bell_missed(1 << *index, false) {
            bell.arm_fallback(super::wait::PARK_SLICE)?;
        }
        mem.ctl32(ctl::SPACE_BELLS)
            .fetch_or(1 << *index, Ordering::SeqCst);
        // Waiting for the lock: its release rings us (the waiters bit). Waiting for space, the
        // lock's state does not matter (a free lock must not make us retry forever).
        if let Some(lock) = lock.as_ref() {
            if std::mem::take(lock_busy) && !lock.announce_waiter(mem) {
                return Ok(true);
            }
        }
        // Space freed since the last look, or (the first time) unknown: look again. A fresh
        // doorbell does not sleep at once: a consumer that read "no producer waits" just before
        // it was published may have freed space unseen.
        let head = mem.ctl64(ctl::HEAD).load(Ordering::Acquire);
        if head != *armed_head || fresh {
            *armed_head = head;
            return Ok(true);
        }
        Ok(!matches!(
            consumer.check(mem.shared(), false),
            Ok(Peer::Alive | Peer::Absent)
        ))
    }

    fn after_wake(&mut self) {
        if let Some(bell) = self.bell.as_mut() {
            self.recheck_peers |= bell.after_wake();
        }
    }
}

impl Sender for RingSender {
    fn max_message_size(&self) -> usize {
        self.max_message
    }

    fn readiness(&mut self) -> Option<&mut dyn Readiness> {
        Some(self)
    }

    #[inline]
    fn send_with(&mut self, msg: &[u8], wait: Wait) -> Result<()> {
        let mut loan = self.loan_with(msg.len(), wait)?;
        loan.copy_from_slice(msg);
        loan.commit();
        Ok(())
    }
}

impl Drop for RingSender {
    fn drop(&mut self) {
        self.claim.release(self.mem.shared(), peers::EMPTY);
        if self.counted_in_park {
            let _ = self.mem.ctl32(ctl::PRODUCERS_PARK).fetch_update(
                Ordering::SeqCst,
                Ordering::Relaxed,
                |n| n.checked_sub(1),
            );
        }
        // A parked receiver should notice now that it may have no producer left.
        self.mem.wake_consumer();
    }
}

/// Room for one message inside the segment. Write it, then [`commit`](Loan::commit); dropped
/// without committing, nothing is published.
#[must_use = "a loan publishes nothing until committed"]
pub struct Loan<'a> {
    mem: &'a SegmentMem,
    core: &'a mut ProducerCore,
    slot: Slot,
    // Multi-producer rings: released when the loan ends, committed or not (in `Drop`, which
    // runs after `commit` published the record).
    lock: Option<&'a mut ProducerLock>,
}

impl Loan<'_> {
    /// Publishes the whole loaned length.
    #[inline(always)]
    pub fn commit(mut self) {
        let len = self.slot.len;
        self.publish(len);
    }

    /// Publishes only the first `len` bytes (for a message whose final size is known only after
    /// writing it). More than was loaned is [`Error::MessageTooLarge`], and nothing is published.
    pub fn commit_len(mut self, len: usize) -> Result<()> {
        if len > self.slot.len {
            return Err(Error::MessageTooLarge {
                len,
                max: self.slot.len,
            });
        }
        self.publish(len);
        Ok(())
    }

    #[inline(always)]
    fn publish(&mut self, len: usize) {
        self.core.commit(self.mem, self.slot, len);
        // The next producer may start before the consumer is woken.
        if let Some(lock) = self.lock.take() {
            lock.release(self.mem);
        }
        self.mem.wake_consumer();
    }
}

impl Drop for Loan<'_> {
    #[inline]
    fn drop(&mut self) {
        if let Some(lock) = self.lock.take() {
            lock.release(self.mem);
        }
    }
}

impl Deref for Loan<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.mem.slot(self.slot.payload(), self.slot.len)
    }
}

impl DerefMut for Loan<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        self.mem.slot_mut(self.slot.payload(), self.slot.len)
    }
}

impl std::fmt::Debug for Loan<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loan")
            .field("offset", &self.slot.record)
            .field("len", &self.slot.len)
            .finish()
    }
}
