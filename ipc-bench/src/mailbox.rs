//! The posix-shm baseline: a single-slot mailbox in a POSIX shared-memory segment, one per
//! direction, on [`Shared`] atomics and plain `futex(2)` calls. No ring, no records, no liveness
//! checks: the least a shared-memory channel must do to hand over one message at a time.
//!
//! # Layout
//!
//! | offset | word            | written by | meaning                                              |
//! |--------|-----------------|------------|------------------------------------------------------|
//! | 0      | `SEQ` (u32)     | sender     | messages published; the receiver's futex word       |
//! | 8      | `LEN` (u64)     | sender     | length of the message published last                |
//! | 16     | `ACK_PARKED`    | sender     | non-zero while the sender sleeps on `ACK` (spin)     |
//! | 128    | `ACK` (u32)     | receiver   | messages taken; the sender's futex word              |
//! | 136    | `SEQ_PARKED`    | receiver   | non-zero while the receiver sleeps on `SEQ` (spin)   |
//! | 256    | payload         | sender     | `size` bytes                                         |
//!
//! Each party's words have their own 128 bytes (a cache line and its prefetch buddy), so
//! polling one never invalidates the other's line.
//!
//! # Protocol
//!
//! The slot is free when `ACK == SEQ`. The sender waits for that, copies the payload in, stores
//! `LEN`, then publishes `SEQ + 1` with release ordering. The receiver waits for `SEQ` to move
//! past what it took (acquire, pairing with that release), copies the payload out, and
//! publishes `ACK = SEQ` with release ordering, which gives the slot back (pairing with the
//! sender's acquire load of `ACK`, so the sender never overwrites bytes still being read).
//!
//! Waiting, per [`WaitStrategy`]:
//! - busy: poll with [`std::hint::spin_loop`], never sleep;
//! - park: `futex_wait` on the word at once, and wake after every publication (always: the
//!   plain futex ping-pong);
//! - spin: poll for [`SPIN_FOR`], then set the `*_PARKED` flag (sequentially consistent), poll
//!   once more and `futex_wait`, and clear the flag once the word moved; the publisher stores
//!   its word sequentially consistent, then wakes only if it sees the flag. Either the
//!   waiter's last poll sees the publication, or the publisher sees the flag: no wake-up is
//!   lost.
//!
//! An empty message is the end of the stream ([`crate::transport::recv_message`]). A peer that
//! dies is spoken for by the parent's watcher ([`Mailbox::end_for_dead_sender`],
//! [`Mailbox::take_for_dead_receiver`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ipc::posix::PosixName;
use ipc::posix::shm::{DEFAULT_MODE, Expect, SharedMemory};
use ipc::sync::Shared;
use ipc::sync::futex;
use ipc::{Owner, Receiver, Sender, Wait, WaitStrategy};

const SEQ: usize = 0;
const LEN: usize = 8;
const ACK_PARKED: usize = 16;
const ACK: usize = 128;
const SEQ_PARKED: usize = 136;
const PAYLOAD: usize = 256;

/// How long a spinning end polls before it sleeps (the ring's figure).
const SPIN_FOR: Duration = Duration::from_micros(20);
/// Polls between two reads of the clock while spinning.
const POLLS_PER_CLOCK: u32 = 64;

/// Bytes of segment for a mailbox of `size`-byte messages: whole pages.
pub fn segment_size(size: usize) -> usize {
    (PAYLOAD + size).next_multiple_of(4096)
}

/// One direction's segment, mapped.
#[derive(Clone)]
pub struct Mailbox {
    shared: Shared,
    size: usize,
}

impl Mailbox {
    /// Creates the segment `name` (exclusively, mode 0600) for `size`-byte messages. The
    /// returned owner removes it when dropped.
    pub fn create(name: &str, size: usize) -> ipc::Result<(Owner<SharedMemory>, Mailbox)> {
        let owner = SharedMemory::create(&PosixName::new(name)?, segment_size(size), DEFAULT_MODE)?;
        let shared = Shared::new(Arc::new(owner.map()?));
        Ok((owner, Mailbox { shared, size }))
    }

    /// Opens the segment `name` that the other process created.
    pub fn open(name: &str, size: usize) -> ipc::Result<Mailbox> {
        let shm = SharedMemory::open(&PosixName::new(name)?, &Expect::size(segment_size(size)))?;
        let shared = Shared::new(Arc::new(shm.map()?));
        Ok(Mailbox { shared, size })
    }

    fn u32(&self, offset: usize) -> &AtomicU32 {
        self.shared
            .u32_at(offset)
            .expect("mailbox words lie inside the segment (segment_size)")
    }

    fn u64(&self, offset: usize) -> &AtomicU64 {
        self.shared
            .u64_at(offset)
            .expect("mailbox words lie inside the segment (segment_size)")
    }

    /// For the parent, once the peer that sent on this mailbox has exited: publishes an empty
    /// message, the end of the stream, if the slot is free (the parent took the peer's last
    /// message). Returns whether it did; wakes the receiver either way.
    ///
    /// The peer is dead, so nothing races with these stores but the parent's own end.
    pub fn end_for_dead_sender(&self) -> bool {
        let seq = self.u32(SEQ);
        let published = seq.load(Ordering::Acquire);
        let free = self.u32(ACK).load(Ordering::Acquire) == published;
        if free {
            self.u64(LEN).store(0, Ordering::Relaxed);
            seq.store(published.wrapping_add(1), Ordering::SeqCst);
        }
        futex::wake_all(seq);
        free
    }

    /// For the parent, once the peer that received on this mailbox has exited: takes what the
    /// parent sent, so that a send waiting for the slot returns.
    pub fn take_for_dead_receiver(&self) {
        let ack = self.u32(ACK);
        ack.store(self.u32(SEQ).load(Ordering::Acquire), Ordering::SeqCst);
        futex::wake_all(ack);
    }
}

/// Waits until `word` no longer holds `stale`, as `strategy` says; returns its new value
/// (acquire). `parked` is the flag the publisher looks at before waking (spin only).
#[inline]
fn wait_past(strategy: WaitStrategy, word: &AtomicU32, stale: u32, parked: &AtomicU32) -> u32 {
    let now = word.load(Ordering::Acquire);
    if now != stale {
        return now;
    }
    match strategy {
        WaitStrategy::Busy => loop {
            std::hint::spin_loop();
            let now = word.load(Ordering::Acquire);
            if now != stale {
                return now;
            }
        },
        WaitStrategy::Park => loop {
            futex::wait(word, stale, None);
            let now = word.load(Ordering::Acquire);
            if now != stale {
                return now;
            }
        },
        WaitStrategy::Spin => {
            let spin_until = Instant::now() + SPIN_FOR;
            loop {
                for _ in 0..POLLS_PER_CLOCK {
                    std::hint::spin_loop();
                    let now = word.load(Ordering::Acquire);
                    if now != stale {
                        return now;
                    }
                }
                if Instant::now() >= spin_until {
                    break;
                }
            }
            loop {
                parked.store(1, Ordering::SeqCst);
                let now = word.load(Ordering::SeqCst);
                if now != stale {
                    parked.store(0, Ordering::Relaxed);
                    return now;
                }
                futex::wait(word, stale, None);
            }
        }
    }
}

/// Publishes `value` in `word` and wakes its waiter as `strategy` says.
#[inline]
fn publish(strategy: WaitStrategy, word: &AtomicU32, value: u32, parked: &AtomicU32) {
    match strategy {
        WaitStrategy::Busy => word.store(value, Ordering::Release),
        WaitStrategy::Park => {
            word.store(value, Ordering::Release);
            futex::wake(word, 1);
        }
        WaitStrategy::Spin => {
            word.store(value, Ordering::SeqCst);
            // Only the waiter clears its flag: a publisher clearing it could wipe the flag of
            // the waiter's next wait, set meanwhile, and that wait would never be woken.
            if parked.load(Ordering::SeqCst) != 0 {
                futex::wake(word, 1);
            }
        }
    }
}

/// The sending end. It implements our `Sender` only so that the workloads run unchanged.
pub struct MailboxSender {
    mailbox: Mailbox,
    strategy: WaitStrategy,
    /// Messages published so far (`SEQ`, as this end last wrote it).
    sent: u32,
}

impl MailboxSender {
    pub fn new(mailbox: Mailbox, strategy: WaitStrategy) -> MailboxSender {
        let sent = mailbox.u32(SEQ).load(Ordering::Acquire);
        MailboxSender {
            mailbox,
            strategy,
            sent,
        }
    }
}

impl Sender for MailboxSender {
    fn max_message_size(&self) -> usize {
        self.mailbox.size
    }

    /// Blocks regardless of `wait`: the bench only ever blocks.
    #[inline]
    fn send_with(&mut self, msg: &[u8], _wait: Wait) -> ipc::Result<()> {
        if msg.len() > self.mailbox.size {
            return Err(ipc::Error::MessageTooLarge {
                len: msg.len(),
                max: self.mailbox.size,
            });
        }
        let m = &self.mailbox;
        // Free once the receiver acknowledged our last message: ACK == sent.
        let ack = wait_past(
            self.strategy,
            m.u32(ACK),
            self.sent.wrapping_sub(1),
            m.u32(ACK_PARKED),
        );
        if ack != self.sent {
            return Err(ipc::Error::corrupted(format!(
                "mailbox acknowledged {ack} messages, {} were sent",
                self.sent
            )));
        }
        if !m.shared.copy_in(PAYLOAD, msg) {
            return Err(ipc::Error::corrupted("mailbox payload out of the segment"));
        }
        m.u64(LEN).store(msg.len() as u64, Ordering::Relaxed);
        self.sent = self.sent.wrapping_add(1);
        publish(self.strategy, m.u32(SEQ), self.sent, m.u32(SEQ_PARKED));
        Ok(())
    }
}

/// The receiving end.
pub struct MailboxReceiver {
    mailbox: Mailbox,
    strategy: WaitStrategy,
    /// Messages taken so far (`ACK`, as this end last wrote it).
    taken: u32,
}

impl MailboxReceiver {
    pub fn new(mailbox: Mailbox, strategy: WaitStrategy) -> MailboxReceiver {
        let taken = mailbox.u32(ACK).load(Ordering::Acquire);
        MailboxReceiver {
            mailbox,
            strategy,
            taken,
        }
    }
}

impl Receiver for MailboxReceiver {
    fn max_message_size(&self) -> usize {
        self.mailbox.size
    }

    /// Blocks regardless of `wait`: the bench only ever blocks.
    #[inline]
    fn recv_with(&mut self, buf: &mut [u8], _wait: Wait) -> ipc::Result<usize> {
        let m = &self.mailbox;
        let seq = wait_past(self.strategy, m.u32(SEQ), self.taken, m.u32(SEQ_PARKED));
        if seq != self.taken.wrapping_add(1) {
            return Err(ipc::Error::corrupted(format!(
                "mailbox published {seq} messages, {} were taken",
                self.taken
            )));
        }
        let len = usize::try_from(m.u64(LEN).load(Ordering::Relaxed)).unwrap_or(usize::MAX);
        if len > m.size {
            return Err(ipc::Error::corrupted(format!(
                "mailbox message of {len} bytes in a {}-byte slot",
                m.size
            )));
        }
        let Some(dst) = buf.get_mut(..len) else {
            return Err(ipc::Error::BufferTooSmall {
                len: buf.len(),
                needed: len,
            });
        };
        if !m.shared.copy_out(PAYLOAD, dst) {
            return Err(ipc::Error::corrupted("mailbox payload out of the segment"));
        }
        self.taken = seq;
        publish(self.strategy, m.u32(ACK), seq, m.u32(ACK_PARKED));
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn heap_mailbox(size: usize) -> Mailbox {
        let segment = ipc::sync::HeapSegment::new(segment_size(size), "mailbox-test");
        Mailbox {
            shared: Shared::new(Arc::new(segment)),
            size,
        }
    }

    #[test]
    fn messages_cross_one_at_a_time_with_every_strategy() {
        for strategy in [WaitStrategy::Busy, WaitStrategy::Spin, WaitStrategy::Park] {
            let mailbox = heap_mailbox(100);
            let mut rx = MailboxReceiver::new(mailbox.clone(), strategy);
            let mut tx = MailboxSender::new(mailbox, strategy);
            let sender = std::thread::spawn(move || {
                for i in 0..1000u32 {
                    let len = (i % 100) as usize + 1;
                    tx.send(&vec![i as u8; len]).unwrap();
                }
                tx.send(&[]).unwrap();
            });
            let mut buf = [0u8; 100];
            for i in 0..1000u32 {
                let len = rx.recv(&mut buf).unwrap();
                assert_eq!(len, (i % 100) as usize + 1, "{strategy}");
                assert!(buf[..len].iter().all(|&b| b == i as u8), "{strategy}");
            }
            assert_eq!(rx.recv(&mut buf).unwrap(), 0);
            sender.join().unwrap();
        }
    }

    #[test]
    fn a_dead_peer_is_spoken_for() {
        let mailbox = heap_mailbox(8);
        let mut tx = MailboxSender::new(mailbox.clone(), WaitStrategy::Park);
        tx.send(b"unread").unwrap();
        // The peer (the receiver) died without taking it: the slot is freed for the sender.
        mailbox.take_for_dead_receiver();
        tx.send(b"next").unwrap();

        let mailbox = heap_mailbox(8);
        let mut rx = MailboxReceiver::new(mailbox.clone(), WaitStrategy::Park);
        // The peer (the sender) died: an empty message ends the receiver's stream.
        assert!(mailbox.end_for_dead_sender());
        assert!(
            !mailbox.end_for_dead_sender(),
            "the slot is full until taken"
        );
        assert_eq!(rx.recv(&mut [0; 8]).unwrap(), 0);
    }

    #[test]
    fn a_message_larger_than_the_slot_is_refused() {
        let mut tx = MailboxSender::new(heap_mailbox(8), WaitStrategy::Busy);
        assert!(matches!(
            tx.send(&[0; 9]),
            Err(ipc::Error::MessageTooLarge { len: 9, max: 8 })
        ));
    }
}
