//! The ring's index protocol, independent of where the memory is and of how endpoints wait.
//!
//! Records are `[header u64][payload][pad to 8]`. The header is `len | check << 32`, where
//! `check` is a hash of the record's position and length with its low bit set, so a valid
//! header is never zero. A header of zero means "nothing here yet":
//!
//! - Before a producer commits a record, it zeroes the header slot that follows it (the
//!   *zero-ahead*), then publishes the record's header with release ordering. The consumer,
//!   waiting at a slot, therefore sees either zero or the header of the record written there in
//!   this lap, never a stale one, without reading the producer's tail index at all: one cache
//!   line moves per record instead of two.
//! - A record never wraps: if it does not fit before the end of the ring, the producer commits
//!   a *pad* header (`len == u32::MAX`) covering the rest, and the record goes at offset 0.
//! - Space is bounded by the consumer's `head`, which the producer caches and re-reads only
//!   when the ring looks full. The ring keeps 8 free bytes beyond every record for the
//!   zero-ahead, so it is never completely full.
//! - A producer killed at any point never publishes a partial record: the header is the last
//!   thing it writes. The `tail` index it publishes after each record lets a successor find
//!   where to continue; records committed just before a death but not yet counted in `tail` are
//!   found again by [`ProducerCore::recover`].
//!
//! Every value read from shared memory is validated before use: a header whose check does not
//! match its position, a length above the limit, a record running past the end, a `head`
//! moving backwards or past the tail — each is [`Error::Corrupted`].

use std::sync::atomic::Ordering;

use ipc_core::{Error, Result};

/// Bytes of a record header.
pub const HEADER: u64 = 8;
/// The header length of a pad record.
pub const PAD: u32 = u32::MAX;

/// Where a ring's shared words are, for the protocol; implemented over a real segment and, for
/// the `loom` model, over modelled atomics.
pub trait RingMem {
    /// Loads the 8-byte word at `off` in the data area.
    fn word_load(&self, off: u64, order: Ordering) -> u64;
    /// Stores the 8-byte word at `off` in the data area.
    fn word_store(&self, off: u64, value: u64, order: Ordering);
    /// Copies `src` into the data area at `off`.
    fn copy_in(&self, off: u64, src: &[u8]);
    /// Copies out of the data area at `off`.
    fn copy_out(&self, off: u64, dst: &mut [u8]);
    /// Loads the consumer's published position.
    fn head_load(&self, order: Ordering) -> u64;
    /// Publishes the consumer's position (release).
    fn head_publish(&self, head: u64);
    /// Loads the producers' published position.
    fn tail_load(&self, order: Ordering) -> u64;
    /// Publishes the producers' position (release).
    fn tail_publish(&self, tail: u64);
}

/// Size of the record holding `len` payload bytes.
#[inline]
pub fn record_size(len: usize) -> u64 {
    (HEADER + len as u64 + 7) & !7
}

/// The check half of the header of a record at `pos` of length `len`; never zero.
#[inline]
fn check(pos: u64, len: u32) -> u32 {
    let x = (pos >> 3) ^ ((len as u64) << 40) ^ 0x5eed_1bc0_ffee_u64;
    ((x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as u32) | 1
}

#[inline]
fn encode(pos: u64, len: u32) -> u64 {
    len as u64 | (check(pos, len) as u64) << 32
}

/// The fixed shape of one ring, validated when an endpoint attaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Bytes of the data area, a multiple of 64.
    pub capacity: u64,
    /// Largest payload.
    pub max_message: usize,
}

impl Geometry {
    /// Largest payload a ring of `capacity` bytes can take: half the ring, less a header.
    ///
    /// With records at most half the ring, an empty ring takes any message without the consumer
    /// doing anything, wherever its position: either the record fits before the end, or the
    /// pad before it is shorter than half and the record fits after it at offset 0. A larger
    /// record could need the consumer to skip a pad first, and a single thread sending before
    /// receiving would wait for itself.
    pub fn max_message_for(capacity: u64) -> usize {
        (capacity / 2).saturating_sub(HEADER) as usize
    }

    /// Checks a geometry read from a segment (or asked for by a caller).
    pub fn validate(self) -> std::result::Result<Geometry, String> {
        if self.capacity < 64 || self.capacity % 64 != 0 {
            return Err(format!(
                "ring capacity {} is not a positive multiple of 64",
                self.capacity
            ));
        }
        if self.max_message > Geometry::max_message_for(self.capacity) {
            return Err(format!(
                "largest message {} does not fit a ring of {} bytes (at most {})",
                self.max_message,
                self.capacity,
                Geometry::max_message_for(self.capacity)
            ));
        }
        Ok(self)
    }

    #[inline]
    fn offset(self, pos: u64) -> u64 {
        pos % self.capacity
    }
}

/// A producers' position and a consumer's that cannot both be true of one ring.
fn inconsistent(tail: u64, head: u64, geo: Geometry) -> Error {
    Error::corrupted(format!(
        "ring tail {tail} inconsistent with head {head} (capacity {})",
        geo.capacity
    ))
}

/// A reservation: where the payload goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    /// Offset of the record (its header) in the data area.
    pub record: u64,
    /// Bytes reserved for the payload.
    pub len: usize,
}

impl Slot {
    /// Offset of the payload in the data area.
    pub fn payload(self) -> u64 {
        self.record + HEADER
    }
}

/// A producer's view: where it writes next, and the last `head` it saw.
#[derive(Debug)]
pub struct ProducerCore {
    geo: Geometry,
    tail: u64,
    tail_off: u64,
    head_seen: u64,
    /// Whether the last `reserve` published a pad (the consumer may need waking for it).
    pub padded: bool,
}

impl ProducerCore {
    /// A producer continuing at `tail`, with the consumer at `head`.
    pub fn new(geo: Geometry, tail: u64, head: u64) -> Result<ProducerCore> {
        let mut core = ProducerCore {
            geo,
            tail,
            tail_off: geo.offset(tail),
            head_seen: head,
            padded: false,
        };
        core.validate_head(head)?;
        Ok(core)
    }

    /// Position of the next record.
    pub fn tail(&self) -> u64 {
        self.tail
    }

    fn validate_head(&mut self, head: u64) -> Result<()> {
        if head > self.tail || self.tail - head > self.geo.capacity || head % 8 != 0 {
            return Err(inconsistent(self.tail, head, self.geo));
        }
        self.head_seen = head;
        Ok(())
    }

    /// Re-reads `tail` from the segment (multi-producer: another producer moved it) and
    /// validates it. `head` is re-read only when the one last seen is too old to bound the
    /// free space (or inconsistent): the consumer writes it at every record, so reading it
    /// at every claim would move its cache line to the producer and back each time.
    pub fn resync<M: RingMem>(&mut self, mem: &M) -> Result<()> {
        let tail = mem.tail_load(Ordering::Acquire);
        if tail % 8 != 0 || tail < self.head_seen || tail - self.head_seen > self.geo.capacity {
            let head = mem.head_load(Ordering::Acquire);
            if tail % 8 != 0 || head > tail || tail - head > self.geo.capacity || head % 8 != 0 {
                return Err(inconsistent(tail, head, self.geo));
            }
            self.head_seen = head;
        }
        // The header slot at the published tail is always zero (the producer that published
        // it zeroed it first, and no record starts there yet): anything else means the tail
        // was written by another process and points into records, which the next record
        // would overwrite. Checked only when another producer moved the tail since our own
        // last record: where we left it, we zeroed that slot ourselves, and reading it would
        // pull back the line the consumer is polling (one more hand-over per message).
        if tail != self.tail && mem.word_load(self.geo.offset(tail), Ordering::Relaxed) != 0 {
            return Err(Error::corrupted(format!(
                "ring tail {tail} does not point past the last record"
            )));
        }
        self.tail = tail;
        self.tail_off = self.geo.offset(tail);
        Ok(())
    }

    /// After a producer died: walks forward from the published `tail` over records that were
    /// committed but not yet counted, so the next record does not overwrite them.
    pub fn recover<M: RingMem>(&mut self, mem: &M) -> Result<()> {
        let tail = mem.tail_load(Ordering::Acquire);
        let head = mem.head_load(Ordering::Acquire);
        // A head past the tail: the consumer has already read records the dead producer
        // committed but did not count. They were whole (their headers were published last),
        // and the walk starts after them.
        let start = tail.max(head);
        if start % 8 != 0 || head % 8 != 0 || start - tail.min(head) > self.geo.capacity {
            return Err(inconsistent(tail, head, self.geo));
        }
        self.tail = start;
        self.tail_off = self.geo.offset(start);
        self.head_seen = head;
        let mut walked = 0u64;
        loop {
            let word = mem.word_load(self.tail_off, Ordering::Acquire);
            if word == 0 {
                break;
            }
            let len = word as u32;
            if word != encode(self.tail, len) {
                // Not a record committed at this position: a torn or stale write. Nothing here
                // was published, so it is ours to overwrite.
                break;
            }
            let size = if len == PAD {
                self.geo.capacity - self.tail_off
            } else {
                record_size(len as usize)
            };
            walked += size;
            if walked > self.geo.capacity || self.tail_off + size > self.geo.capacity {
                return Err(Error::corrupted(
                    "ring records run past the ring while recovering",
                ));
            }
            self.advance(size);
        }
        if walked > 0 {
            mem.tail_publish(self.tail);
        }
        // The slot at the tail must read as empty before anything is committed after it.
        mem.word_store(self.tail_off, 0, Ordering::Release);
        Ok(())
    }

    #[inline]
    fn advance(&mut self, size: u64) {
        self.tail += size;
        self.tail_off += size;
        if self.tail_off == self.geo.capacity {
            self.tail_off = 0;
        }
    }

    #[inline]
    fn free(&self) -> u64 {
        self.geo.capacity - (self.tail - self.head_seen)
    }

    /// The common case of [`reserve`](Self::reserve), with nothing to decide or write: the
    /// record fits before the end of the ring, in space already known to be free. `None`
    /// leaves every other case (a pad, a look at the consumer's head, an error) to `reserve`.
    #[inline(always)]
    pub fn reserve_fast(&mut self, len: usize) -> Option<Slot> {
        let need = record_size(len);
        if len > self.geo.max_message
            || need > self.geo.capacity - self.tail_off
            || self.free() < need + HEADER
        {
            return None;
        }
        self.padded = false;
        Some(Slot {
            record: self.tail_off,
            len,
        })
    }

    /// Reserves room for a `len`-byte payload, writing a pad first if the record would not fit
    /// before the end of the ring. `Ok(None)`: not enough space now.
    #[inline]
    pub fn reserve<M: RingMem>(&mut self, mem: &M, len: usize) -> Result<Option<Slot>> {
        if len > self.geo.max_message {
            return Err(Error::MessageTooLarge {
                len,
                max: self.geo.max_message,
            });
        }
        self.padded = false;
        let need = record_size(len);
        loop {
            let contiguous = self.geo.capacity - self.tail_off;
            let fits = need <= contiguous;
            let want = if fits { need } else { contiguous } + HEADER;
            if self.free() < want {
                let head = mem.head_load(Ordering::Acquire);
                if head < self.head_seen {
                    return Err(Error::corrupted(format!(
                        "ring head moved backwards ({} to {head})",
                        self.head_seen
                    )));
                }
                self.validate_head(head)?;
                if self.free() < want {
                    return Ok(None);
                }
            }
            if fits {
                return Ok(Some(Slot {
                    record: self.tail_off,
                    len,
                }));
            }
            // Pad to the end; the record goes at offset 0 (zeroed ahead of the pad's commit).
            mem.word_store(0, 0, Ordering::Relaxed);
            mem.word_store(self.tail_off, encode(self.tail, PAD), Ordering::Release);
            self.advance(contiguous);
            mem.tail_publish(self.tail);
            self.padded = true;
        }
    }

    /// Publishes the record in `slot` with `len` payload bytes (at most the reserved length).
    #[inline]
    pub fn commit<M: RingMem>(&mut self, mem: &M, slot: Slot, len: usize) {
        debug_assert!(len <= slot.len && slot.record == self.tail_off);
        let size = record_size(len);
        let mut next = slot.record + size;
        if next == self.geo.capacity {
            next = 0;
        }
        mem.word_store(next, 0, Ordering::Relaxed);
        mem.word_store(
            slot.record,
            encode(self.tail, len as u32),
            Ordering::Release,
        );
        self.advance(size);
        mem.tail_publish(self.tail);
    }
}

/// What an endpoint found wrong with the ring's shared state, kept: once a check failed,
/// every later call fails the same way (the state that failed it is not trusted again).
#[derive(Debug, Default)]
pub struct Corruption(Option<String>);

impl Corruption {
    /// The failure met earlier, if any.
    #[inline]
    pub fn check(&self) -> Result<()> {
        match &self.0 {
            None => Ok(()),
            Some(what) => Err(Error::corrupted(what.clone())),
        }
    }

    /// Whether no failure was met.
    #[inline]
    pub fn is_clear(&self) -> bool {
        self.0.is_none()
    }

    /// Keeps `err` if it is [`Error::Corrupted`] (the first one met), and hands it back.
    pub fn keep(&mut self, err: Error) -> Error {
        if let Error::Corrupted { what } = &err {
            self.0.get_or_insert_with(|| what.clone());
        }
        err
    }
}

/// The consumer's view: where the next record is.
#[derive(Debug)]
pub struct ConsumerCore {
    geo: Geometry,
    head: u64,
    head_off: u64,
    /// Kept by the endpoint too, for what it checks around the protocol (its peers' slots).
    pub corruption: Corruption,
}

/// A header word as `ConsumerCore::decode` reads it.
enum Header {
    /// Nothing committed here yet.
    Empty,
    /// A pad to the end of the ring: the next record is at offset 0.
    Pad,
    Record(Found),
    Bad(BadHeader),
}

/// What is wrong with a header word (described by `ConsumerCore::describe`).
#[derive(Clone, Copy)]
enum BadHeader {
    Check(u64),
    PadAtStart,
    TooLong(usize),
    PastEnd(usize),
}

/// A committed record found by [`ConsumerCore::peek`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Found {
    /// Offset of the payload in the data area.
    pub payload: u64,
    /// Payload length.
    pub len: usize,
    /// Whole record size, released by [`ConsumerCore::release`].
    pub size: u64,
}

impl ConsumerCore {
    /// A consumer continuing at `head`.
    pub fn new(geo: Geometry, head: u64) -> Result<ConsumerCore> {
        if head % 8 != 0 {
            return Err(Error::corrupted(format!("ring head {head} misaligned")));
        }
        Ok(ConsumerCore {
            geo,
            head,
            head_off: geo.offset(head),
            corruption: Corruption::default(),
        })
    }

    /// Position of the next record.
    pub fn head(&self) -> u64 {
        self.head
    }

    fn corrupt(&mut self, what: String) -> Error {
        self.corruption.keep(Error::corrupted(what))
    }

    /// What the header `word` at the consumer's position says, every check applied: the one
    /// validation of what a producer wrote there, for [`peek`](Self::peek) and
    /// [`peek_fast`](Self::peek_fast).
    #[inline(always)]
    fn decode(&self, word: u64) -> Header {
        if word == 0 {
            return Header::Empty;
        }
        let len = word as u32;
        if (word >> 32) as u32 != check(self.head, len) {
            return Header::Bad(BadHeader::Check(word));
        }
        if len == PAD {
            return if self.head_off == 0 {
                Header::Bad(BadHeader::PadAtStart)
            } else {
                Header::Pad
            };
        }
        let len = len as usize;
        if len > self.geo.max_message {
            return Header::Bad(BadHeader::TooLong(len));
        }
        let size = record_size(len);
        if self.head_off + size > self.geo.capacity {
            return Header::Bad(BadHeader::PastEnd(len));
        }
        Header::Record(Found {
            payload: self.head_off + HEADER,
            len,
            size,
        })
    }

    /// The common case of [`peek`](Self::peek): a record is there and passes every check.
    /// `None` leaves every other case (nothing yet, a pad, a failed check) to `peek`, which
    /// looks again and reports it.
    #[inline(always)]
    pub fn peek_fast<M: RingMem>(&self, mem: &M) -> Option<Found> {
        if !self.corruption.is_clear() {
            return None;
        }
        match self.decode(mem.word_load(self.head_off, Ordering::Acquire)) {
            Header::Record(found) => Some(found),
            _ => None,
        }
    }

    /// The next committed record, skipping pads, or `None` if there is none yet. Once the ring
    /// was found corrupted, every later call fails the same way.
    #[inline]
    pub fn peek<M: RingMem>(&mut self, mem: &M) -> Result<Option<Found>> {
        self.corruption.check()?;
        loop {
            match self.decode(mem.word_load(self.head_off, Ordering::Acquire)) {
                Header::Empty => return Ok(None),
                Header::Record(found) => return Ok(Some(found)),
                Header::Pad => {
                    let size = self.geo.capacity - self.head_off;
                    self.release(mem, size);
                }
                Header::Bad(bad) => {
                    let what = self.describe(bad);
                    return Err(self.corrupt(what));
                }
            }
        }
    }

    /// The report of a header that failed its checks.
    #[cold]
    fn describe(&self, bad: BadHeader) -> String {
        match bad {
            BadHeader::Check(word) => format!(
                "ring record header {word:#018x} at position {} fails its check",
                self.head
            ),
            BadHeader::PadAtStart => "ring pad record at offset 0".into(),
            BadHeader::TooLong(len) => format!(
                "ring record length {len} above the largest message {}",
                self.geo.max_message
            ),
            BadHeader::PastEnd(len) => format!(
                "ring record of {len} bytes at offset {} runs past the end",
                self.head_off
            ),
        }
    }

    /// Frees the record just read (or a pad) for the producers.
    #[inline]
    pub fn release<M: RingMem>(&mut self, mem: &M, size: u64) {
        self.head += size;
        self.head_off += size;
        if self.head_off == self.geo.capacity {
            self.head_off = 0;
        }
        mem.head_publish(self.head);
    }
}

/// Counts the committed records (pads excluded) from `head` up to `tail`, reading only: for
/// inspection tools. `None` if the headers met on the way are inconsistent (a concurrent
/// consumer moved on, or the ring is corrupted).
pub fn count_records<M: RingMem>(mem: &M, geo: Geometry, head: u64, tail: u64) -> Option<u64> {
    if head > tail || tail - head > geo.capacity || head % 8 != 0 {
        return None;
    }
    let (mut pos, mut records) = (head, 0u64);
    while pos < tail {
        let off = geo.offset(pos);
        let word = mem.word_load(off, Ordering::Acquire);
        let len = word as u32;
        if word == 0 || (word >> 32) as u32 != check(pos, len) {
            return None;
        }
        let size = if len == PAD {
            geo.capacity - off
        } else {
            records += 1;
            record_size(len as usize)
        };
        if off + size > geo.capacity {
            return None;
        }
        pos += size;
    }
    Some(records)
}

/// Counts the records committed at and after `from` that no published tail counts yet (a
/// producer died between committing them and publishing its tail), reading only: for
/// inspection tools. Stops at the first slot that holds no record committed there.
pub fn count_uncounted<M: RingMem>(mem: &M, geo: Geometry, from: u64) -> u64 {
    let (mut pos, mut walked, mut records) = (from, 0u64, 0u64);
    if from % 8 != 0 {
        return 0;
    }
    loop {
        let off = geo.offset(pos);
        let word = mem.word_load(off, Ordering::Acquire);
        let len = word as u32;
        if word == 0 || word != encode(pos, len) {
            return records;
        }
        let size = if len == PAD {
            geo.capacity - off
        } else {
            records += 1;
            record_size(len as usize)
        };
        walked += size;
        if walked > geo.capacity || off + size > geo.capacity {
            return records;
        }
        pos += size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Single-threaded memory for protocol unit tests.
    struct Plain {
        data: RefCell<Vec<u8>>,
        head: RefCell<u64>,
        tail: RefCell<u64>,
    }

    impl Plain {
        fn new(cap: usize) -> Plain {
            Plain {
                data: RefCell::new(vec![0; cap]),
                head: RefCell::new(0),
                tail: RefCell::new(0),
            }
        }
    }

    impl RingMem for Plain {
        fn word_load(&self, off: u64, _: Ordering) -> u64 {
            let d = self.data.borrow();
            u64::from_ne_bytes(d[off as usize..off as usize + 8].try_into().unwrap())
        }
        fn word_store(&self, off: u64, value: u64, _: Ordering) {
            self.data.borrow_mut()[off as usize..off as usize + 8]
                .copy_from_slice(&value.to_ne_bytes());
        }
        fn copy_in(&self, off: u64, src: &[u8]) {
            self.data.borrow_mut()[off as usize..off as usize + src.len()].copy_from_slice(src);
        }
        fn copy_out(&self, off: u64, dst: &mut [u8]) {
            dst.copy_from_slice(&self.data.borrow()[off as usize..off as usize + dst.len()]);
        }
        fn head_load(&self, _: Ordering) -> u64 {
            *self.head.borrow()
        }
        fn head_publish(&self, head: u64) {
            *self.head.borrow_mut() = head;
        }
        fn tail_load(&self, _: Ordering) -> u64 {
            *self.tail.borrow()
        }
        fn tail_publish(&self, tail: u64) {
            *self.tail.borrow_mut() = tail;
        }
    }

    fn geo(cap: u64) -> Geometry {
        Geometry {
            capacity: cap,
            max_message: Geometry::max_message_for(cap),
        }
        .validate()
        .unwrap()
    }

    fn send(p: &mut ProducerCore, m: &Plain, msg: &[u8]) -> bool {
        match p.reserve(m, msg.len()).unwrap() {
            None => false,
            Some(slot) => {
                m.copy_in(slot.payload(), msg);
                p.commit(m, slot, msg.len());
                true
            }
        }
    }

    fn recv(c: &mut ConsumerCore, m: &Plain) -> Option<Vec<u8>> {
        let f = c.peek(m).unwrap()?;
        let mut out = vec![0; f.len];
        m.copy_out(f.payload, &mut out);
        c.release(m, f.size);
        Some(out)
    }

    #[test]
    fn wraps_with_pads_and_delivers_in_order() {
        let m = Plain::new(256);
        let g = geo(256);
        let mut p = ProducerCore::new(g, 0, 0).unwrap();
        let mut c = ConsumerCore::new(g, 0).unwrap();
        let message = |seq: u32| -> Vec<u8> {
            let len = 4 + (seq as usize * 37) % 110;
            let mut msg: Vec<u8> = (0..len).map(|i| (i as u32 ^ seq) as u8).collect();
            msg[..4].copy_from_slice(&seq.to_le_bytes());
            msg
        };
        let mut expect = 0u32;
        for seq in 0..2000u32 {
            let msg = message(seq);
            while !send(&mut p, &m, &msg) {
                let got = recv(&mut c, &m).expect("a full ring holds a record");
                assert_eq!(got, message(expect));
                expect += 1;
            }
        }
        while let Some(got) = recv(&mut c, &m) {
            assert_eq!(got, message(expect));
            expect += 1;
        }
        assert_eq!(expect, 2000);
    }

    #[test]
    fn largest_message_fits_an_empty_ring_at_any_offset() {
        let g = geo(128);
        for start in (0..128u64).step_by(8) {
            let m = Plain::new(128);
            m.head_publish(start);
            let mut p = ProducerCore::new(g, start, start).unwrap();
            let mut c = ConsumerCore::new(g, start).unwrap();
            let msg = vec![7u8; g.max_message];
            assert!(
                send(&mut p, &m, &msg),
                "an empty ring at {start} refused the largest message"
            );
            assert_eq!(recv(&mut c, &m).unwrap(), msg);
            assert!(recv(&mut c, &m).is_none());
        }
    }

    #[test]
    fn a_scribbled_header_is_corrupted_and_stays_so() {
        let m = Plain::new(256);
        let g = geo(256);
        let mut p = ProducerCore::new(g, 0, 0).unwrap();
        let mut c = ConsumerCore::new(g, 0).unwrap();
        assert!(send(&mut p, &m, b"hello"));
        m.word_store(
            0,
            m.word_load(0, Ordering::Relaxed) ^ 1 << 40,
            Ordering::Relaxed,
        );
        assert!(matches!(c.peek(&m), Err(Error::Corrupted { .. })));
        assert!(matches!(c.peek(&m), Err(Error::Corrupted { .. })));
    }

    #[test]
    fn recovery_skips_records_committed_but_not_counted() {
        let m = Plain::new(256);
        let g = geo(256);
        let mut p = ProducerCore::new(g, 0, 0).unwrap();
        assert!(send(&mut p, &m, b"one"));
        assert!(send(&mut p, &m, b"two"));
        // As if the producer died after committing "two" but before publishing its tail.
        m.tail_publish(record_size(3));
        let mut successor = ProducerCore::new(g, 0, 0).unwrap();
        successor.recover(&m).unwrap();
        assert_eq!(successor.tail(), 2 * record_size(3));
        assert!(send(&mut successor, &m, b"three"));
        let mut c = ConsumerCore::new(g, 0).unwrap();
        assert_eq!(recv(&mut c, &m).unwrap(), b"one");
        assert_eq!(recv(&mut c, &m).unwrap(), b"two");
        assert_eq!(recv(&mut c, &m).unwrap(), b"three");
        assert!(recv(&mut c, &m).is_none());
    }

    #[test]
    fn recovery_after_the_consumer_read_uncounted_records() {
        let m = Plain::new(256);
        let g = geo(256);
        let mut p = ProducerCore::new(g, 0, 0).unwrap();
        assert!(send(&mut p, &m, b"one"));
        assert!(send(&mut p, &m, b"two"));
        // The producer died before counting either; the consumer read both.
        m.tail_publish(0);
        let mut c = ConsumerCore::new(g, 0).unwrap();
        assert_eq!(recv(&mut c, &m).unwrap(), b"one");
        assert_eq!(recv(&mut c, &m).unwrap(), b"two");
        let mut successor = ProducerCore::new(g, 0, 0).unwrap();
        successor.recover(&m).unwrap();
        assert_eq!(successor.tail(), 2 * record_size(3));
        assert!(send(&mut successor, &m, b"three"));
        assert_eq!(recv(&mut c, &m).unwrap(), b"three");
        assert!(recv(&mut c, &m).is_none());
    }

    #[test]
    fn a_producer_whose_head_is_a_lap_old_rereads_it() {
        // Two producers taking turns (as behind the lock): `quiet` last read the consumer's
        // head before `busy` lapped the ring. Its cached head no longer bounds the free space;
        // taking it as is would see the ring as almost empty and write over unread records.
        let m = Plain::new(256);
        let g = geo(256);
        let mut quiet = ProducerCore::new(g, 0, 0).unwrap();
        let mut busy = ProducerCore::new(g, 0, 0).unwrap();
        let mut c = ConsumerCore::new(g, 0).unwrap();
        quiet.resync(&m).unwrap();
        assert!(send(&mut quiet, &m, b"first"));
        assert_eq!(recv(&mut c, &m).unwrap(), b"first");
        for round in 0..6u8 {
            busy.resync(&m).unwrap();
            assert!(send(&mut busy, &m, &[round; 40]));
            assert_eq!(recv(&mut c, &m).unwrap(), [round; 40]);
        }
        // The ring now holds records nobody read, filling most of it.
        busy.resync(&m).unwrap();
        for _ in 0..3 {
            assert!(send(&mut busy, &m, &[9; 56]));
        }
        quiet.resync(&m).unwrap();
        assert!(!send(&mut quiet, &m, &[7; 56]), "no room: the ring is full");
        for _ in 0..3 {
            assert_eq!(recv(&mut c, &m).unwrap(), [9; 56]);
        }
        assert!(recv(&mut c, &m).is_none());
    }

    #[test]
    fn records_in_flight_are_counted_without_consuming() {
        let m = Plain::new(256);
        let g = geo(256);
        let mut p = ProducerCore::new(g, 0, 0).unwrap();
        for msg in [&b"a"[..], b"bb", b"ccc"] {
            assert!(send(&mut p, &m, msg));
        }
        assert_eq!(count_records(&m, g, 0, p.tail()), Some(3));
        let mut c = ConsumerCore::new(g, 0).unwrap();
        assert_eq!(recv(&mut c, &m).unwrap(), b"a");
        assert_eq!(count_records(&m, g, c.head(), p.tail()), Some(2));
        assert_eq!(count_records(&m, g, p.tail(), c.head()), None);
    }

    #[test]
    fn too_large_is_refused_before_touching_the_ring() {
        let m = Plain::new(128);
        let g = geo(128);
        let mut p = ProducerCore::new(g, 0, 0).unwrap();
        assert!(matches!(
            p.reserve(&m, g.max_message + 1),
            Err(Error::MessageTooLarge { .. })
        ));
    }
}
