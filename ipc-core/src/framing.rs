//! Length-prefixed framing for byte-stream transports (pipes, FIFOs), written once.
//!
//! # Wire format
//!
//! | bytes   | field   | meaning                                                   |
//! |---------|---------|-----------------------------------------------------------|
//! | 4       | length  | payload length, little endian, at most the receiver's max |
//! | 0 or 60 | padding | zeros, for payloads of [`ALIGNED_FROM`] bytes or more     |
//! | length  | payload | the message                                               |
//! | 1       | trailer | [`COMMIT`]: deliver; [`ABORT`]: the sender gave up, drop   |
//!
//! The padding puts a large payload 64 bytes into its frame. A frame written to an empty pipe
//! starts a fresh page, so the kernel then copies the payload at the same alignment as the
//! caller's buffer, as a plain `write` would; with a 4-byte prefix every 64-byte load straddles
//! two cache lines, which measured about twice as slow for 64 KiB round trips. Frames that can
//! be atomic (`PIPE_BUF`) keep the short prefix.
//!
//! The trailer is what makes `try_send` and `send_timeout` exact on a stream. A frame larger than
//! `PIPE_BUF` can be written only in part before the pipe fills; if the deadline passes then, the
//! sender returns `Full`/`Timeout` and owes the rest of the frame. It pays that debt (zero bytes
//! and an [`ABORT`] trailer) before its next frame, and the receiver drops the aborted frame. So a
//! failed send is never delivered and a successful one always is, and a sender that dies
//! mid-frame leaves a truncated frame that the receiver drops at end of stream.
//!
//! An event loop sends without waiting, yet must get a frame larger than the pipe's free room
//! through: [`FrameWriter::send_part`] leaves the part it wrote *pending* rather than owed, and
//! the next call that resumes the same message writes on from there, up to the [`COMMIT`]
//! trailer. A pending frame that is not resumed becomes owed like any other (filler and
//! [`ABORT`]), so a message is still delivered whole or not at all.
//!
//! A length read from the stream is checked against the receiver's maximum before it is used:
//! the receiver's buffer is allocated once, at construction, and never grows.

use std::io::IoSlice;

use crate::{Error, Result, Wait};

/// Bytes of the length prefix.
pub const HEADER_LEN: usize = 4;
/// Bytes a frame adds to a payload shorter than [`ALIGNED_FROM`] (length prefix and trailer).
pub const FRAME_OVERHEAD: usize = HEADER_LEN + 1;
/// Payloads of this length or more start [`ALIGNED_HEADER_LEN`] bytes into their frame. Shorter
/// payloads have frames of at most `PIPE_BUF` (4096) bytes, which a pipe writes atomically.
pub const ALIGNED_FROM: usize = 4096 - FRAME_OVERHEAD + 1;
/// Length prefix and padding before a payload of [`ALIGNED_FROM`] bytes or more.
pub const ALIGNED_HEADER_LEN: usize = 64;
/// Trailer of a frame to deliver.
pub const COMMIT: u8 = 0xC3;
/// Trailer of a frame its sender abandoned.
pub const ABORT: u8 = 0xA5;
/// Largest payload the format carries (so that a frame length always fits in `u32`).
pub const MAX_PAYLOAD: usize = 1 << 30;

/// Writes of up to this many bytes are atomic on a pipe (`PIPE_BUF`).
const PIPE_BUF: usize = 4096;

/// Most frames in one write of [`FrameWriter::send_batch`]: 64-byte messages fill `PIPE_BUF`
/// with 59.
const GROUP_MAX: usize = 64;

/// A corruption report for bytes that look written by a program that does not frame, with the
/// way to read them.
fn foreign(what: String) -> String {
    format!(
        "{what}: the writer does not use ipc framing (a program writing text or raw bytes?); \
         open the receiver with framing=lines or framing=raw to read such a stream"
    )
}

/// Smallest read buffer, so that small messages are read many per system call.
const MIN_READ_BUFFER: usize = 64 * 1024;

/// Bytes before the payload in a frame carrying `payload` bytes.
pub const fn header_len(payload: usize) -> usize {
    if payload >= ALIGNED_FROM {
        ALIGNED_HEADER_LEN
    } else {
        HEADER_LEN
    }
}

/// Length on the wire of a frame carrying `payload` bytes.
pub const fn frame_len(payload: usize) -> usize {
    header_len(payload) + payload + 1
}

/// The byte stream under the framing. Implementations retry `EINTR` themselves and map a
/// closed peer to [`Error::Disconnected`].
pub trait StreamIo {
    /// Writes a prefix of `bufs` (gathered, as `writev`). With `block`, waits for room and
    /// returns `Some(n > 0)`; without, returns `None` when no byte fits now.
    fn write(&mut self, bufs: &[IoSlice<'_>], block: bool) -> Result<Option<usize>>;

    /// Waits until some room frees up; `Ok(false)` once `wait` has expired.
    fn wait_writable(&mut self, wait: Wait) -> Result<bool>;

    /// Reads into `buf`. `Some(0)` is end of stream; `None` (only without `block`) means no
    /// data now.
    fn read(&mut self, buf: &mut [u8], block: bool) -> Result<Option<usize>>;

    /// Waits until data (or end of stream) is there; `Ok(false)` once `wait` has expired.
    fn wait_readable(&mut self, wait: Wait) -> Result<bool>;
}

/// Largest write [`join_small`] joins: the frame of a 4 KiB message.
const JOIN_UP_TO: usize = frame_len(4096);

/// `bufs` copied into `staging` as one buffer, when they are several and together at most
/// the frame of a 4 KiB message: the kernel copies one segment faster than several, and a
/// single buffer may go by plain `write` where several need `writev`/`pwritev2`. On a pipe, a
/// 64-byte frame's write took 0.1–0.3 µs less; a 4 KiB frame's write and read 0.89 instead of
/// 1.02–1.05 µs, the copy included (a raw 4 KiB write and read: 0.75 µs). Past that, the copy
/// costs more than it saves. A write is as atomic on a pipe as the parts written together.
/// `None` when the parts are better written as they are.
#[inline]
pub fn join_small<'a>(bufs: &[IoSlice<'_>], staging: &'a mut Vec<u8>) -> Option<&'a [u8]> {
    let total: usize = bufs.iter().map(|b| b.len()).sum();
    if bufs.len() < 2 || total > JOIN_UP_TO {
        return None;
    }
    staging.clear();
    for b in bufs {
        staging.extend_from_slice(b);
    }
    Some(staging)
}

/// Frames up to this long are laid out in one buffer on the stack and written from it: a small
/// message's frame then costs one copy and one segment, without the slices of a [`Frame`] or
/// the join of [`join_small`].
const SMALL_FRAME: usize = 128;

/// The frame of `msg` (whose frame is at most [`SMALL_FRAME`] bytes) laid out in `bytes`.
#[inline]
fn small_frame<'a>(msg: &[u8], bytes: &'a mut [u8; SMALL_FRAME]) -> &'a [u8] {
    let len = frame_len(msg.len());
    bytes[..HEADER_LEN].copy_from_slice(&length_prefix(msg.len()));
    bytes[HEADER_LEN..len - 1].copy_from_slice(msg);
    bytes[len - 1] = COMMIT;
    &bytes[..len]
}

/// The length field of a frame carrying `payload` bytes.
#[inline]
fn length_prefix(payload: usize) -> [u8; HEADER_LEN] {
    u32::try_from(payload)
        .expect("payload length checked against MAX_PAYLOAD")
        .to_le_bytes()
}

/// Source of an abandoned frame's filler.
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// The bytes of one frame, produced from any offset without building the frame in memory.
struct Frame<'a> {
    header: [u8; ALIGNED_HEADER_LEN],
    payload_len: usize,
    payload: Payload<'a>,
    trailer: [u8; 1],
}

enum Payload<'a> {
    Bytes(&'a [u8]),
    /// Filler of this length, for an aborted frame.
    Zeros(usize),
}

impl<'a> Frame<'a> {
    #[inline]
    fn new(payload: Payload<'a>, trailer: u8) -> Frame<'a> {
        let len = match payload {
            Payload::Bytes(b) => b.len(),
            Payload::Zeros(n) => n,
        };
        let mut header = [0; ALIGNED_HEADER_LEN];
        header[..HEADER_LEN].copy_from_slice(&length_prefix(len));
        Frame {
            header,
            payload_len: len,
            payload,
            trailer: [trailer],
        }
    }

    #[inline]
    fn header(&self) -> &[u8] {
        &self.header[..header_len(self.payload_len)]
    }

    #[inline]
    fn len(&self) -> usize {
        frame_len(self.payload_len)
    }

    /// The unwritten rest of the frame from `offset`, as up to three slices.
    #[inline]
    fn slices_from(&'a self, offset: usize) -> ([IoSlice<'a>; 3], usize) {
        let payload: &[u8] = match self.payload {
            Payload::Bytes(b) => b,
            Payload::Zeros(n) => &ZEROS[..n.min(ZEROS.len())],
        };
        let payload_len = self.payload_len;
        let header = self.header();
        let mut out = [IoSlice::new(&[]), IoSlice::new(&[]), IoSlice::new(&[])];
        let mut n = 0;
        if offset < header.len() {
            out[n] = IoSlice::new(&header[offset..]);
            n += 1;
        }
        let in_payload = offset.saturating_sub(header.len());
        if in_payload < payload_len {
            // Filler longer than ZEROS is written in several rounds; the caller loops.
            let from = in_payload.min(payload.len());
            let chunk = match self.payload {
                Payload::Bytes(_) => &payload[from..],
                Payload::Zeros(_) => &payload[..payload.len().min(payload_len - in_payload)],
            };
            out[n] = IoSlice::new(chunk);
            n += 1;
            // The trailer may follow only if this slice reaches the end of the payload.
            if in_payload + chunk.len() == payload_len {
                out[n] = IoSlice::new(&self.trailer);
                n += 1;
            }
        } else if offset < self.len() {
            out[n] = IoSlice::new(&self.trailer);
            n += 1;
        }
        (out, n)
    }
}

/// Writes `frame` from `*written` until done (`Ok(true)`) or `wait` expires (`Ok(false)`),
/// advancing `*written` by what went out.
#[inline]
fn write_frame(
    io: &mut impl StreamIo,
    frame: &Frame<'_>,
    written: &mut usize,
    wait: Wait,
) -> Result<bool> {
    while *written < frame.len() {
        let (slices, n) = frame.slices_from(*written);
        match write_waiting(io, &slices[..n], wait)? {
            Some(n) => *written += n,
            None => return Ok(false),
        }
    }
    Ok(true)
}

/// One write of a prefix of `bufs`, waiting for room as `wait` allows; `None` once it expired
/// with no room.
#[inline]
fn write_waiting(
    io: &mut impl StreamIo,
    bufs: &[IoSlice<'_>],
    wait: Wait,
) -> Result<Option<usize>> {
    loop {
        match io.write(bufs, wait.is_forever())? {
            Some(n) => return Ok(Some(n)),
            None if wait == Wait::Never => return Ok(None),
            None => {
                if !io.wait_writable(wait)? {
                    return Ok(None);
                }
            }
        }
    }
}

/// A frame written in part: the rest is owed before any other frame.
#[derive(Debug, Clone, Copy)]
struct Debt {
    payload_len: usize,
    /// Bytes of the frame already written (never 0: a frame not begun is owed nothing).
    written: usize,
    /// Left by [`FrameWriter::send_part`]: the caller may still complete it as sent. Else (a
    /// timed-out send, or a pending frame given up) the rest is owed as an aborted frame.
    resumable: bool,
}

/// Writes messages as frames (see the [module documentation](self)).
#[derive(Debug)]
pub struct FrameWriter {
    max: usize,
    debt: Option<Debt>,
}

impl FrameWriter {
    /// A writer of messages up to `max` bytes (at most [`MAX_PAYLOAD`]).
    pub fn new(max: usize) -> FrameWriter {
        assert!(max <= MAX_PAYLOAD, "message size {max} above MAX_PAYLOAD");
        FrameWriter { max, debt: None }
    }

    /// Largest message accepted.
    pub fn max_message_size(&self) -> usize {
        self.max
    }

    /// Whether a frame is written in part: a pending one ([`FrameWriter::send_part`]) or one
    /// owed as an aborted frame.
    pub fn owes(&self) -> bool {
        self.debt.is_some()
    }

    /// Sends `msg` as one frame. `Full`/`Timeout` mean that the receiver will never see it.
    #[inline]
    pub fn send(&mut self, io: &mut impl StreamIo, msg: &[u8], wait: Wait) -> Result<()> {
        self.check_len(msg)?;
        self.settle(io, wait)?;
        match self.write_new(io, msg, wait, false)? {
            true => Ok(()),
            false => Err(wait.full_error()),
        }
    }

    /// Sends `msg` as one frame without waiting, taking it in part if the stream has room for
    /// only part of it: the form of [`FrameWriter::send`] behind
    /// [`Sender::try_send_part`](crate::Sender::try_send_part), for event loops that send
    /// messages larger than the pipe's free room.
    ///
    /// `Err(Full)` means the frame is not all written yet. If part of it went out, the frame
    /// stays *pending*: a later call with `resume == true` and a message of the same length
    /// writes on from where this one stopped, until it returns `Ok` (the caller passes the
    /// same bytes again; only the length is checked). Any other call (`resume == false`, a
    /// message of another length, [`send`](FrameWriter::send),
    /// [`settle`](FrameWriter::settle)) gives the pending frame up: it is completed as an
    /// aborted frame (filler and an [`ABORT`] trailer), which the receiver drops, before
    /// anything else is written. So a message is delivered whole once `Ok` is returned, and
    /// never in part. With nothing pending, `resume` makes no difference: `msg` is sent afresh.
    pub fn send_part(&mut self, io: &mut impl StreamIo, msg: &[u8], resume: bool) -> Result<()> {
        let resuming = resume
            && self
                .debt
                .is_some_and(|d| d.resumable && d.payload_len == msg.len());
        if !resuming {
            self.give_up_pending();
        }
        self.check_len(msg)?;
        let done = if resuming {
            let frame = Frame::new(Payload::Bytes(msg), COMMIT);
            self.write_owed(io, &frame, Wait::Never)?
        } else {
            self.settle(io, Wait::Never)?;
            self.write_new(io, msg, Wait::Never, true)?
        };
        if done { Ok(()) } else { Err(Error::Full) }
    }

    /// Sends `msgs` as frames, as many per `writev` as make at most `PIPE_BUF` bytes: such a
    /// write is atomic on a pipe, so several senders sharing one FIFO still never interleave
    /// inside a frame. A frame longer than that goes alone, as [`FrameWriter::send`] sends it.
    /// Returns how many were sent (see [`Sender::send_batch`](crate::Sender::send_batch)); a
    /// frame that a stream socket took in part is finished within `wait` or owed as aborted.
    pub fn send_batch(
        &mut self,
        io: &mut impl StreamIo,
        msgs: &[&[u8]],
        wait: Wait,
    ) -> Result<usize> {
        let Some(first) = msgs.first() else {
            return Ok(0);
        };
        self.check_len(first)?;
        self.settle(io, wait)?;
        let mut sent = 0;
        while sent < msgs.len() {
            let (tried, outcome) = match self.group_len(&msgs[sent..]) {
                0 if msgs[sent].len() > self.max => break,
                0 => (
                    1,
                    self.write_new(io, msgs[sent], wait, false).map(usize::from),
                ),
                n => (n, self.write_group(io, &msgs[sent..sent + n], wait)),
            };
            match outcome {
                Ok(0) if sent == 0 => return Err(wait.full_error()),
                Ok(n) => sent += n,
                Err(e) if sent == 0 => return Err(e),
                // Sent ones stay sent; the error comes back on the next call.
                Err(_) => break,
            }
            // Short of the group: the stream took part of it (a TCP sender's window, say), and
            // the frame it cut was finished as far as `wait` allows. Go on while time is left
            // and nothing is owed: a blocking batch sends every message.
            let short = outcome.is_ok_and(|n| n < tried);
            if short && (self.debt.is_some() || wait == Wait::Never || wait.expired()) {
                break;
            }
        }
        Ok(sent)
    }

    /// How many of the first `msgs` fit, as frames, in one atomic write (0 if the first does
    /// not: it is too large, or its frame alone exceeds `PIPE_BUF`).
    fn group_len(&self, msgs: &[&[u8]]) -> usize {
        let mut bytes = 0;
        msgs.iter()
            .take(GROUP_MAX)
            .take_while(|m| {
                bytes += frame_len(m.len());
                m.len() <= self.max && bytes <= PIPE_BUF
            })
            .count()
    }

    /// Writes `msgs` (a [`FrameWriter::group_len`] group) in one write if the stream has room,
    /// waiting as `wait` allows; returns how many frames went out whole. A stream that takes
    /// part of the group (a socket; never a pipe) leaves one frame in part: it is finished as a
    /// normal send of that message would be.
    fn write_group(&mut self, io: &mut impl StreamIo, msgs: &[&[u8]], wait: Wait) -> Result<usize> {
        debug_assert!(self.debt.is_none() && msgs.len() <= GROUP_MAX);
        let frames: [Option<Frame<'_>>; GROUP_MAX] =
            std::array::from_fn(|i| msgs.get(i).map(|m| Frame::new(Payload::Bytes(m), COMMIT)));
        let frames = frames.iter().map_while(Option::as_ref);
        let mut slices = [IoSlice::new(&[]); 3 * GROUP_MAX];
        let mut count = 0;
        for frame in frames.clone() {
            let (parts, n) = frame.slices_from(0);
            slices[count..count + n].copy_from_slice(&parts[..n]);
            count += n;
        }
        let Some(written) = write_waiting(io, &slices[..count], wait)? else {
            return Ok(0);
        };
        let mut whole = 0;
        let mut start = 0;
        for frame in frames {
            let end = start + frame.len();
            if written >= end {
                whole += 1;
                start = end;
                continue;
            }
            if written > start {
                self.debt = Some(Debt {
                    payload_len: frame.payload_len,
                    written: written - start,
                    resumable: false,
                });
                if self.write_owed(io, frame, wait)? {
                    whole += 1;
                }
            }
            break;
        }
        Ok(whole)
    }

    #[inline]
    fn check_len(&self, msg: &[u8]) -> Result<()> {
        if msg.len() > self.max {
            return Err(Error::MessageTooLarge {
                len: msg.len(),
                max: self.max,
            });
        }
        Ok(())
    }

    /// Starts writing `msg` as a new frame (nothing may be owed); `Ok(false)` if `wait` expired
    /// first, the part written being owed (`resumable` or as an aborted frame).
    #[inline]
    fn write_new(
        &mut self,
        io: &mut impl StreamIo,
        msg: &[u8],
        wait: Wait,
        resumable: bool,
    ) -> Result<bool> {
        debug_assert!(self.debt.is_none(), "a new frame after an unpaid one");
        let mut written = 0;
        if frame_len(msg.len()) <= SMALL_FRAME {
            let mut bytes = [0; SMALL_FRAME];
            let frame = small_frame(msg, &mut bytes);
            match write_waiting(io, &[IoSlice::new(frame)], wait)? {
                None => return Ok(false),
                Some(n) if n == frame.len() => return Ok(true),
                Some(n) => written = n,
            }
        }
        let frame = Frame::new(Payload::Bytes(msg), COMMIT);
        self.debt = Some(Debt {
            payload_len: msg.len(),
            written,
            resumable,
        });
        self.write_owed(io, &frame, wait)
    }

    /// Writes the owed rest of `frame` (the frame of the debt, or its filler); clears the debt
    /// when done (`Ok(true)`) or when nothing of it was written after all.
    #[inline]
    fn write_owed(
        &mut self,
        io: &mut impl StreamIo,
        frame: &Frame<'_>,
        wait: Wait,
    ) -> Result<bool> {
        let debt = self.debt.as_mut().expect("write_owed with a debt");
        // The debt is advanced in place, so that it stays exact whatever the outcome.
        let result = write_frame(io, frame, &mut debt.written, wait);
        if matches!(result, Ok(true)) || debt.written == 0 {
            self.debt = None;
        }
        result
    }

    /// Turns a pending frame into one owed as an aborted frame.
    fn give_up_pending(&mut self) {
        if let Some(debt) = &mut self.debt {
            debt.resumable = false;
        }
    }
}

impl FrameWriter {
    /// Completes the frame a timed-out send left half written, or a pending one
    /// ([`FrameWriter::send_part`]) given up, if any, as an aborted frame (filler and an
    /// [`ABORT`] trailer), waiting as `wait` allows; `Full`/`Timeout` if it could not finish.
    /// [`FrameWriter::send`] does this first; call it directly before handing the stream to
    /// someone else.
    #[inline]
    pub fn settle(&mut self, io: &mut impl StreamIo, wait: Wait) -> Result<()> {
        self.give_up_pending();
        let Some(debt) = self.debt else {
            return Ok(());
        };
        let filler = Frame::new(Payload::Zeros(debt.payload_len), ABORT);
        if self.write_owed(io, &filler, wait)? {
            Ok(())
        } else {
            Err(wait.full_error())
        }
    }
}

/// Reads frames into the caller's buffer (see the [module documentation](self)).
///
/// Holds one buffer of at least one whole frame, allocated at construction, so small messages
/// are read many per system call and a frame interrupted by a timeout is kept, not lost.
#[derive(Debug)]
pub struct FrameReader {
    buf: Box<[u8]>,
    /// Where the 64-byte-aligned part of `buf` begins: frames are read from there, so that the
    /// kernel's copy into it is aligned as the sender's pages are.
    base: usize,
    start: usize,
    end: usize,
    max: usize,
    end_of_stream: bool,
    corrupted: Option<String>,
    /// Any frame may be cut short by the writer's death (see [`FrameReader::over_socket`]).
    any_frame_cut: bool,
    /// Most bytes a receive that may wait reads in one call (see [`FrameReader::recv`]).
    waiting_read: usize,
}

impl FrameReader {
    /// A reader for a stream on which any write may stop part way (a TCP connection: a sender
    /// killed mid-frame, or a small frame the socket took in part before a deadline): bytes
    /// left at end of stream are always that unfinished frame, dropped. (On a pipe, frames of
    /// up to `PIPE_BUF` are written whole, so such bytes there are a foreign writer's.)
    pub fn over_socket(max: usize) -> FrameReader {
        FrameReader {
            any_frame_cut: true,
            waiting_read: frame_len(max),
            ..FrameReader::new(max)
        }
    }

    /// A reader of messages up to `max` bytes (at most [`MAX_PAYLOAD`]).
    pub fn new(max: usize) -> FrameReader {
        assert!(max <= MAX_PAYLOAD, "message size {max} above MAX_PAYLOAD");
        let capacity = frame_len(max).max(MIN_READ_BUFFER);
        let buf = vec![0; capacity + ALIGNED_HEADER_LEN - 1].into_boxed_slice();
        let base = buf.as_ptr().align_offset(ALIGNED_HEADER_LEN);
        // A pipe keeps a frame of more than a page in two page buffers, so one frame per read
        // of 4 KiB messages cost 1.15-1.3x a raw loop of 4096-byte reads; a reader that takes
        // all there is, from a pipe twice the default size (`ipc-pipe`'s `pipe_size`), ran at
        // 0.90-1.18x, medians 0.95-1.05x (`docs/measurements/frame-bytes.md`).
        let waiting_read = if frame_len(max) > PIPE_BUF {
            capacity
        } else {
            frame_len(max)
        };
        FrameReader {
            buf,
            base,
            start: base,
            end: base,
            max,
            end_of_stream: false,
            corrupted: None,
            any_frame_cut: false,
            waiting_read,
        }
    }

    /// Largest message accepted.
    pub fn max_message_size(&self) -> usize {
        self.max
    }

    /// Bytes read from the stream but not yet delivered.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Whether the next [`recv`](FrameReader::recv) gets on without reading the stream: a
    /// whole frame is buffered already, or the stream ended or was found corrupted. A readiness
    /// descriptor cannot tell that (the bytes left the pipe), so an event loop must not sleep
    /// on it then.
    pub fn next_is_buffered(&self) -> bool {
        if self.end_of_stream || self.corrupted.is_some() {
            return true;
        }
        let avail = &self.buf[self.start..self.end];
        avail.first_chunk::<HEADER_LEN>().is_some_and(|header| {
            let len = u32::from_le_bytes(*header) as usize;
            len > self.max || avail.len() >= frame_len(len)
        })
    }

    /// Receives one message into `out`, returning its length.
    pub fn recv(&mut self, io: &mut impl StreamIo, out: &mut [u8], wait: Wait) -> Result<usize> {
        if let Some(what) = &self.corrupted {
            return Err(Error::corrupted(what.clone()));
        }
        loop {
            let need = match self.next_frame(out)? {
                Next::Delivered(len) => return Ok(len),
                Next::Skipped => continue,
                Next::Need(bytes) => bytes,
            };
            if self.end_of_stream {
                return Err(Error::Disconnected);
            }
            if self.start + need > self.buf.len() {
                self.buf.copy_within(self.start..self.end, self.base);
                self.end = self.base + (self.end - self.start);
                self.start = self.base;
            }
            // A receive that may wait reads at most one frame of the largest message, as a
            // loop that knows its message sizes does, while such a frame fits a page; one that
            // may not wait takes all there is room for. On a pipe, a reader that takes all
            // there is empties the pipe and sleeps, and the writer then pays the wake-up for
            // nearly every message: a 64 B stream took 1.3-1.55x the raw loop's time, its
            // writer 0.51 instead of 0.39 us a message. A batch (its first receive waits, the
            // rest do not) and an event loop's `try_recv` still read many frames a call.
            let upto = if wait != Wait::Never {
                // Never short of `need`: it is at most a frame of `max`, and `end >= start`.
                (self.end + self.waiting_read).min(self.buf.len())
            } else {
                self.buf.len()
            };
            match io.read(&mut self.buf[self.end..upto], wait.is_forever())? {
                Some(0) => {
                    // A truncated frame at end of stream may be one its sender never finished
                    // (killed, or dropped after a timed-out send), which is dropped; bytes that
                    // cannot be such a frame are someone else's and must not vanish silently.
                    if let Some(what) = self.foreign_tail() {
                        return Err(self.corrupt(what));
                    }
                    self.end_of_stream = true;
                    self.start = self.base;
                    self.end = self.base;
                    return Err(Error::Disconnected);
                }
                Some(n) => self.end += n,
                None if wait == Wait::Never => return Err(Error::Empty),
                None => {
                    if !io.wait_readable(wait)? {
                        return Err(Error::Timeout);
                    }
                }
            }
        }
    }

    /// Delivers or skips the frame at the front of the buffer, or says how many bytes of it
    /// must be buffered first.
    fn next_frame(&mut self, out: &mut [u8]) -> Result<Next> {
        let avail = &self.buf[self.start..self.end];
        let Some(header) = avail.first_chunk::<HEADER_LEN>() else {
            return Ok(Next::Need(HEADER_LEN));
        };
        let len = u32::from_le_bytes(*header) as usize;
        if len > self.max {
            return Err(self.corrupt(foreign(format!(
                "frame of {len} bytes exceeds message_size {} (if both sides are ipc, they \
                 disagree on message_size)",
                self.max
            ))));
        }
        let frame = frame_len(len);
        if avail.len() < frame {
            return Ok(Next::Need(frame));
        }
        let payload = &avail[header_len(len)..frame - 1];
        match avail[frame - 1] {
            COMMIT => {
                let Some(dst) = out.get_mut(..len) else {
                    return Err(Error::BufferTooSmall {
                        len: out.len(),
                        needed: len,
                    });
                };
                dst.copy_from_slice(payload);
                self.consume(frame);
                Ok(Next::Delivered(len))
            }
            ABORT => {
                self.consume(frame);
                Ok(Next::Skipped)
            }
            other => Err(self.corrupt(foreign(format!(
                "frame trailer {other:#04x} is neither commit nor abort"
            )))),
        }
    }

    /// Why the bytes left at end of stream cannot be the start of a frame an `ipc` sender left
    /// unfinished, if they cannot. Frames of up to `PIPE_BUF` bytes are written atomically, so
    /// only a larger frame can be cut short, and its padding is zeros; fewer bytes than a
    /// length prefix could only be a larger frame cut inside its prefix, which takes a sender
    /// killed at one exact moment, whereas a foreign writer's `hi\n` ends that way every time.
    fn foreign_tail(&self) -> Option<String> {
        let avail = &self.buf[self.start..self.end];
        if avail.is_empty() || self.any_frame_cut {
            return None;
        }
        let Some(header) = avail.first_chunk::<HEADER_LEN>() else {
            return Some(foreign(format!(
                "{} bytes at end of stream, too few for a frame header",
                avail.len()
            )));
        };
        let len = u32::from_le_bytes(*header) as usize;
        let padding = &avail[HEADER_LEN..avail.len().min(header_len(len))];
        if frame_len(len) <= PIPE_BUF || padding.iter().any(|&b| b != 0) {
            return Some(foreign(format!(
                "{} bytes at end of stream, not the start of a frame an ipc sender can leave \
                 unfinished (length {len})",
                avail.len()
            )));
        }
        None
    }

    fn consume(&mut self, frame: usize) {
        self.start += frame;
        if self.start == self.end {
            self.start = self.base;
            self.end = self.base;
        }
    }

    #[cold]
    fn corrupt(&mut self, what: String) -> Error {
        self.corrupted = Some(what.clone());
        Error::corrupted(what)
    }
}

enum Next {
    Delivered(usize),
    Skipped,
    Need(usize),
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// An in-memory pipe with a fixed capacity, for testing the framing alone.
    pub(crate) struct MemPipe {
        pub(crate) data: VecDeque<u8>,
        capacity: usize,
        pub(crate) writer_closed: bool,
        /// Largest single write accepted (to force partial writes).
        write_chunk: usize,
        /// Calls to `write` that wrote something.
        writes: usize,
    }

    impl MemPipe {
        pub(crate) fn new(capacity: usize) -> MemPipe {
            MemPipe {
                data: VecDeque::new(),
                capacity,
                writer_closed: false,
                write_chunk: usize::MAX,
                writes: 0,
            }
        }
    }

    impl StreamIo for MemPipe {
        fn write(&mut self, bufs: &[IoSlice<'_>], block: bool) -> Result<Option<usize>> {
            let room = (self.capacity - self.data.len()).min(self.write_chunk);
            assert!(!(block && room == 0), "test would block forever");
            if room == 0 {
                return Ok(None);
            }
            self.writes += 1;
            let mut n = 0;
            for b in bufs {
                for &byte in b.iter() {
                    if n == room {
                        return Ok(Some(n));
                    }
                    self.data.push_back(byte);
                    n += 1;
                }
            }
            Ok(Some(n))
        }
        fn wait_writable(&mut self, _wait: Wait) -> Result<bool> {
            Ok(false)
        }
        fn read(&mut self, buf: &mut [u8], _block: bool) -> Result<Option<usize>> {
            if self.data.is_empty() {
                return Ok(if self.writer_closed { Some(0) } else { None });
            }
            let n = buf.len().min(self.data.len());
            for b in &mut buf[..n] {
                *b = self.data.pop_front().unwrap();
            }
            Ok(Some(n))
        }
        fn wait_readable(&mut self, _wait: Wait) -> Result<bool> {
            Ok(false)
        }
    }

    /// A roomy in-memory pipe holding `count` messages of `len` bytes (message `i` all `i`s),
    /// framed for receivers of up to `max`.
    fn pipe_holding(count: u8, len: usize, max: usize) -> MemPipe {
        let mut pipe = MemPipe::new(1 << 20);
        let mut w = FrameWriter::new(max);
        for i in 0..count {
            w.send(&mut pipe, &vec![i; len], Wait::Never).unwrap();
        }
        pipe
    }

    #[test]
    fn a_receive_that_may_wait_reads_one_frame_and_one_that_may_not_reads_all() {
        let mut pipe = pipe_holding(10, 40, 64);
        let mut r = FrameReader::new(64);
        let mut out = [0u8; 64];
        // Frames of 40 bytes, read by the largest frame (of 64): one and part of the next.
        assert_eq!(r.recv(&mut pipe, &mut out, Wait::Forever).unwrap(), 40);
        assert_eq!(pipe.data.len(), 10 * frame_len(40) - frame_len(64));
        assert_eq!(r.recv(&mut pipe, &mut out, Wait::Never).unwrap(), 40);
        assert_eq!(out[0], 1);
        assert!(
            pipe.data.is_empty(),
            "a receive that may not wait takes all there is"
        );
        for i in 2..10u8 {
            assert_eq!(r.recv(&mut pipe, &mut out, Wait::Forever).unwrap(), 40);
            assert_eq!(out[0], i);
        }
    }

    #[test]
    fn a_waiting_receive_takes_all_there_is_once_a_frame_may_exceed_a_page() {
        let mut pipe = pipe_holding(10, 4096, 4096);
        let mut r = FrameReader::new(4096);
        let mut out = [0u8; 4096];
        assert_eq!(r.recv(&mut pipe, &mut out, Wait::Forever).unwrap(), 4096);
        assert!(
            pipe.data.is_empty(),
            "10 frames of 4161 bytes fit the buffer: one read takes them all"
        );
        for i in 1..10u8 {
            assert_eq!(r.recv(&mut pipe, &mut out, Wait::Forever).unwrap(), 4096);
            assert_eq!(out[0], i);
        }
        // Over a socket, a waiting receive still reads one frame at a time.
        let mut pipe = pipe_holding(3, 4096, 4096);
        let mut r = FrameReader::over_socket(4096);
        assert_eq!(r.recv(&mut pipe, &mut out, Wait::Forever).unwrap(), 4096);
        assert_eq!(pipe.data.len(), 2 * frame_len(4096));
    }

    #[test]
    fn a_batch_of_small_messages_goes_in_atomic_writes_of_whole_frames() {
        let mut pipe = MemPipe::new(1 << 20);
        let mut w = FrameWriter::new(1000);
        let msgs: Vec<Vec<u8>> = (0..200u8).map(|i| vec![i; 64]).collect();
        let batch: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        assert_eq!(w.send_batch(&mut pipe, &batch, Wait::Never).unwrap(), 200);
        // 69-byte frames, 59 to a PIPE_BUF: four writes, none above PIPE_BUF.
        assert_eq!(pipe.writes, 200usize.div_ceil(PIPE_BUF / frame_len(64)));
        assert_eq!(pipe.data.len(), 200 * frame_len(64));
        let mut r = FrameReader::new(1000);
        let mut out = [0u8; 1000];
        for msg in &msgs {
            let n = r.recv(&mut pipe, &mut out, Wait::Never).unwrap();
            assert_eq!(&out[..n], &msg[..]);
        }
    }

    #[test]
    fn a_blocking_batch_sends_every_message_when_the_stream_takes_part_of_each_write() {
        // A TCP sender's window cuts writes anywhere, as this pipe does.
        let mut pipe = MemPipe::new(1 << 20);
        pipe.write_chunk = 1000;
        let mut w = FrameWriter::new(1000);
        let msgs: Vec<Vec<u8>> = (0..100u8).map(|i| vec![i; 64]).collect();
        let batch: Vec<&[u8]> = msgs.iter().map(Vec::as_slice).collect();
        assert_eq!(w.send_batch(&mut pipe, &batch, Wait::Forever).unwrap(), 100);
        let mut r = FrameReader::new(1000);
        let mut out = [0u8; 1000];
        for msg in &msgs {
            let n = r.recv(&mut pipe, &mut out, Wait::Never).unwrap();
            assert_eq!(&out[..n], &msg[..]);
        }
        assert!(matches!(
            r.recv(&mut pipe, &mut out, Wait::Never),
            Err(Error::Empty)
        ));
    }

    #[test]
    fn a_batch_stops_before_a_message_too_large_and_reports_it_next() {
        let mut pipe = MemPipe::new(1 << 20);
        let mut w = FrameWriter::new(100);
        let big = [0u8; 101];
        let batch: [&[u8]; 3] = [b"a", &big, b"c"];
        assert_eq!(w.send_batch(&mut pipe, &batch, Wait::Never).unwrap(), 1);
        assert!(matches!(
            w.send_batch(&mut pipe, &batch[1..], Wait::Never),
            Err(Error::MessageTooLarge { len: 101, max: 100 })
        ));
        assert_eq!(w.send_batch(&mut pipe, &[], Wait::Never).unwrap(), 0);
    }

    #[test]
    fn a_batch_that_finds_no_room_is_full_and_sends_nothing() {
        let mut pipe = MemPipe::new(frame_len(10));
        let mut w = FrameWriter::new(100);
        w.send(&mut pipe, &[1; 10], Wait::Never).unwrap();
        let batch: [&[u8]; 2] = [&[2; 10], &[3; 10]];
        let got = w.send_batch(&mut pipe, &batch, Wait::Never);
        assert!(matches!(got, Err(Error::Full)), "{got:?}");
        assert!(!w.owes());
        let mut r = FrameReader::new(100);
        let mut out = [0u8; 100];
        assert_eq!(r.recv(&mut pipe, &mut out, Wait::Never).unwrap(), 10);
        assert_eq!(out[..10], [1; 10]);
        let got = r.recv(&mut pipe, &mut out, Wait::Never);
        assert!(matches!(got, Err(Error::Empty)), "{got:?}");
    }

    #[test]
    fn round_trips_and_reports_empty() {
        let mut pipe = MemPipe::new(1 << 20);
        let mut w = FrameWriter::new(1000);
        let mut r = FrameReader::new(1000);
        let mut out = [0u8; 1000];
        for msg in [&b""[..], b"a", &[7u8; 1000]] {
            w.send(&mut pipe, msg, Wait::Never).unwrap();
        }
        assert!(!r.next_is_buffered());
        assert_eq!(r.recv(&mut pipe, &mut out, Wait::Never).unwrap(), 0);
        // Read ahead: the next two are in the reader's buffer, no longer in the pipe.
        assert!(pipe.data.is_empty());
        assert!(r.next_is_buffered());
        assert_eq!(r.recv(&mut pipe, &mut out, Wait::Never).unwrap(), 1);
        assert_eq!(out[0], b'a');
        assert!(r.next_is_buffered());
        assert_eq!(r.recv(&mut pipe, &mut out, Wait::Never).unwrap(), 1000);
        assert!(!r.next_is_buffered());
        assert!(matches!(
            r.recv(&mut pipe, &mut out, Wait::Never),
            Err(Error::Empty)
        ));
        assert!(matches!(
            w.send(&mut pipe, &[0; 1001], Wait::Never),
            Err(Error::MessageTooLarge {
                len: 1001,
                max: 1000
            })
        ));
    }

    /// Sends `msg` without waiting, trying again as the reader drains the stream, which must
    /// find no message while the writer's debt is being paid.
    fn send_after_debt(
        w: &mut FrameWriter,
        r: &mut FrameReader,
        pipe: &mut MemPipe,
        out: &mut [u8],
        msg: &[u8],
    ) {
        for _ in 0..100 {
            match w.send(pipe, msg, Wait::Never) {
                Ok(()) => return,
                Err(Error::Full) => {
                    assert!(matches!(r.recv(pipe, out, Wait::Never), Err(Error::Empty)));
                }
                Err(e) => panic!("{e}"),
            }
        }
        panic!("not sent in 100 tries");
    }

    #[test]
    fn abandoned_frame_is_never_delivered() {
        let mut pipe = MemPipe::new(100);
        let mut w = FrameWriter::new(1000);
        let mut r = FrameReader::new(1000);
        let mut out = [0u8; 1000];
        w.send(&mut pipe, b"first", Wait::Never).unwrap();
        // Does not fit: part of it goes out, then the call fails and the frame is owed.
        assert!(matches!(
            w.send(&mut pipe, &[9u8; 500], Wait::Never),
            Err(Error::Full)
        ));
        assert_eq!(r.recv(&mut pipe, &mut out, Wait::Never).unwrap(), 5);
        // Paying the debt takes several rounds as the reader drains.
        send_after_debt(&mut w, &mut r, &mut pipe, &mut out, b"second");
        assert_eq!(r.recv(&mut pipe, &mut out, Wait::Never).unwrap(), 6);
        assert_eq!(&out[..6], b"second");
    }

    /// A small frame goes out of a buffer of its own (`SMALL_FRAME`); cut short by the
    /// stream, it is finished or owed as any frame is.
    #[test]
    fn a_small_frame_the_stream_takes_in_part_is_finished_or_aborted() {
        let mut pipe = MemPipe::new(1000);
        pipe.write_chunk = 10;
        let mut w = FrameWriter::new(1000);
        let mut r = FrameReader::new(1000);
        let mut out = [0u8; 1000];
        let msg: Vec<u8> = (0..64).collect();
        // A send that may wait writes on, ten bytes a call, to the end.
        w.send(&mut pipe, &msg, Wait::Forever).unwrap();
        assert_eq!(pipe.writes, frame_len(64).div_ceil(10));
        assert_eq!(r.recv(&mut pipe, &mut out, Wait::Never).unwrap(), 64);
        assert_eq!(&out[..64], &msg[..]);
        assert!(!w.owes());
        // One that may not, on a stream with room for ten bytes, owes the rest as aborted.
        let mut pipe = MemPipe::new(10);
        assert!(matches!(
            w.send(&mut pipe, &msg, Wait::Never),
            Err(Error::Full)
        ));
        assert!(w.owes());
        assert_eq!(pipe.data.len(), 10);
        send_after_debt(&mut w, &mut r, &mut pipe, &mut out, b"next");
        assert_eq!(r.recv(&mut pipe, &mut out, Wait::Never).unwrap(), 4);
        assert_eq!(&out[..4], b"next");
        assert!(matches!(
            r.recv(&mut pipe, &mut out, Wait::Never),
            Err(Error::Empty)
        ));
    }

    #[test]
    fn small_buffer_keeps_the_message() {
        let mut pipe = MemPipe::new(1 << 16);
        let mut w = FrameWriter::new(100);
        let mut r = FrameReader::new(100);
        w.send(&mut pipe, &[1; 50], Wait::Never).unwrap();
        let mut small = [0u8; 10];
        assert!(matches!(
            r.recv(&mut pipe, &mut small, Wait::Never),
            Err(Error::BufferTooSmall {
                len: 10,
                needed: 50
            })
        ));
        let mut big = [0u8; 100];
        assert_eq!(r.recv(&mut pipe, &mut big, Wait::Never).unwrap(), 50);
    }

    #[test]
    fn oversized_length_is_corrupted_and_sticky() {
        let mut pipe = MemPipe::new(1 << 16);
        pipe.data.extend(u32::MAX.to_le_bytes());
        let mut r = FrameReader::new(100);
        let mut out = [0u8; 100];
        assert!(matches!(
            r.recv(&mut pipe, &mut out, Wait::Never),
            Err(Error::Corrupted { .. })
        ));
        assert!(matches!(
            r.recv(&mut pipe, &mut out, Wait::Never),
            Err(Error::Corrupted { .. })
        ));
    }

    #[test]
    fn truncated_frame_at_end_of_stream_is_dropped() {
        let mut pipe = MemPipe::new(1 << 16);
        let mut w = FrameWriter::new(10_000);
        w.send(&mut pipe, b"whole", Wait::Never).unwrap();
        // Only a frame above PIPE_BUF can be cut short by its sender.
        pipe.data.extend(5000u32.to_le_bytes());
        pipe.data.extend([0; 60]);
        pipe.data.extend(b"half");
        pipe.writer_closed = true;
        let mut r = FrameReader::new(10_000);
        let mut out = [0u8; 100];
        assert_eq!(r.recv(&mut pipe, &mut out, Wait::Never).unwrap(), 5);
        assert!(!r.next_is_buffered());
        assert!(matches!(
            r.recv(&mut pipe, &mut out, Wait::Never),
            Err(Error::Disconnected)
        ));
        assert!(r.next_is_buffered());
        assert!(matches!(
            r.recv(&mut pipe, &mut out, Wait::Never),
            Err(Error::Disconnected)
        ));
    }

    #[test]
    fn over_a_socket_any_frame_cut_at_end_of_stream_is_dropped() {
        // A small frame cut short: impossible on a pipe, a dead sender's on a TCP connection.
        for tail in [&[10u8, 0, 0, 0, b'h'][..], &[10, 0]] {
            let mut pipe = MemPipe::new(1 << 16);
            FrameWriter::new(100)
                .send(&mut pipe, b"whole", Wait::Never)
                .unwrap();
            pipe.data.extend(tail);
            pipe.writer_closed = true;
            let mut r = FrameReader::over_socket(100);
            let mut out = [0u8; 100];
            assert_eq!(r.recv(&mut pipe, &mut out, Wait::Never).unwrap(), 5);
            let end = r.recv(&mut pipe, &mut out, Wait::Never);
            assert!(matches!(end, Err(Error::Disconnected)), "{tail:?}: {end:?}");
        }
    }

    #[test]
    fn foreign_bytes_at_end_of_stream_are_corrupted_with_a_hint() {
        // `printf 'hi\n'`, a short frame cut short (never from ipc: it is atomic), non-zero
        // padding.
        let mut padded = 5000u32.to_le_bytes().to_vec();
        padded.extend([1; 60]);
        for tail in [&b"hi\n"[..], &[10, 0, 0, 0, b'h'], &padded] {
            let mut pipe = MemPipe::new(1 << 16);
            pipe.data.extend(tail);
            pipe.writer_closed = true;
            let mut r = FrameReader::new(10_000);
            let mut out = [0u8; 100];
            match r.recv(&mut pipe, &mut out, Wait::Never) {
                Err(Error::Corrupted { what }) => assert!(what.contains("framing=lines"), "{what}"),
                other => panic!("{tail:?}: {other:?}"),
            }
        }
    }

    /// The message `i` of a test: `len` bytes that tell it apart from any other.
    fn message(i: usize, len: usize) -> Vec<u8> {
        (0..len).map(|j| (i * 31 + j * 7 + 1) as u8).collect()
    }

    /// Reads every whole message the pipe holds now.
    fn drain(r: &mut FrameReader, pipe: &mut MemPipe, out: &mut [u8]) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        loop {
            match r.recv(pipe, out, Wait::Never) {
                Ok(n) => got.push(out[..n].to_vec()),
                Err(Error::Empty) => return got,
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn a_frame_five_times_the_room_goes_through_when_resumed() {
        for (capacity, chunk) in [(1000, usize::MAX), (1000, 333), (4096, 1000)] {
            let mut pipe = MemPipe::new(capacity);
            pipe.write_chunk = chunk;
            let len = 5 * capacity;
            let mut w = FrameWriter::new(len);
            let mut r = FrameReader::new(len);
            let mut out = vec![0u8; len];
            let big = message(1, len);
            let mut resume = false;
            let mut rounds = 0;
            loop {
                match w.send_part(&mut pipe, &big, resume) {
                    Ok(()) => break,
                    Err(Error::Full) => {}
                    Err(e) => panic!("{e}"),
                }
                assert!(w.owes());
                resume = true;
                rounds += 1;
                assert!(rounds < 1000, "no progress");
                // The reader sees nothing yet: the frame is incomplete.
                assert!(drain(&mut r, &mut pipe, &mut out).is_empty());
            }
            assert!(rounds >= 5, "{rounds} rounds for a frame 5x the pipe");
            assert!(!w.owes());
            w.send_part(&mut pipe, b"after", false).unwrap();
            let got = drain(&mut r, &mut pipe, &mut out);
            assert_eq!(got, vec![big, b"after".to_vec()]);
        }
    }

    /// Sends `msg` as an event loop would: `send_part(resume = false)`, then resumed, draining
    /// the pipe between attempts; returns what the reader got meanwhile.
    fn send_part_draining(
        w: &mut FrameWriter,
        r: &mut FrameReader,
        pipe: &mut MemPipe,
        msg: &[u8],
        out: &mut [u8],
    ) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        for attempt in 0..1000 {
            match w.send_part(pipe, msg, attempt > 0) {
                Ok(()) => {
                    got.extend(drain(r, pipe, out));
                    return got;
                }
                Err(Error::Full) => got.extend(drain(r, pipe, out)),
                Err(e) => panic!("{e}"),
            }
        }
        panic!("no progress");
    }

    #[test]
    fn an_abandoned_pending_frame_is_dropped_and_the_next_arrives_intact() {
        type GiveUp = dyn Fn(&mut FrameWriter, &mut MemPipe) -> Result<()>;
        let abandon: [&GiveUp; 4] = [
            // A new message instead of the pending one.
            &|w, pipe| w.send_part(pipe, b"next", false),
            // A resume with another message (another length) is not a resume.
            &|w, pipe| w.send_part(pipe, b"next", true),
            // Another send method.
            &|w, pipe| w.send(pipe, b"next", Wait::Never),
            &|w, pipe| w.settle(pipe, Wait::Never),
        ];
        for (case, give_up) in abandon.iter().enumerate() {
            let mut pipe = MemPipe::new(1000);
            let mut w = FrameWriter::new(5000);
            let mut r = FrameReader::new(5000);
            let mut out = vec![0u8; 5000];
            let big = message(2, 5000);
            assert!(matches!(
                w.send_part(&mut pipe, &big, false),
                Err(Error::Full)
            ));
            assert!(drain(&mut r, &mut pipe, &mut out).is_empty());
            // One more resumed part, so the pending frame spans several wake-ups.
            assert!(matches!(
                w.send_part(&mut pipe, &big, true),
                Err(Error::Full)
            ));
            assert!(drain(&mut r, &mut pipe, &mut out).is_empty());
            // The pipe is full: the give-up call cannot finish, and owes the abort.
            assert!(give_up(&mut w, &mut pipe).is_err(), "case {case}");
            // A resume of the big one now is no resume: the abort is paid first.
            let mut got = send_part_draining(&mut w, &mut r, &mut pipe, &big, &mut out);
            got.extend(send_part_draining(
                &mut w, &mut r, &mut pipe, b"next", &mut out,
            ));
            assert_eq!(got, vec![big.clone(), b"next".to_vec()], "case {case}");
        }
    }

    #[test]
    fn resume_with_nothing_pending_sends_afresh_and_too_large_gives_up() {
        let mut pipe = MemPipe::new(1000);
        let mut w = FrameWriter::new(5000);
        let mut r = FrameReader::new(5000);
        let mut out = vec![0u8; 5000];
        w.send_part(&mut pipe, b"one", true).unwrap();
        assert_eq!(drain(&mut r, &mut pipe, &mut out), vec![b"one".to_vec()]);
        let big = message(3, 5000);
        assert!(matches!(
            w.send_part(&mut pipe, &big, false),
            Err(Error::Full)
        ));
        let mut too_big = FrameWriter::new(5000);
        assert!(matches!(
            too_big.send_part(&mut pipe, &[0; 5001], true),
            Err(Error::MessageTooLarge { .. })
        ));
        assert!(matches!(
            w.send_part(&mut pipe, &[0; 5001], true),
            Err(Error::MessageTooLarge { .. })
        ));
        // The pending frame was given up by the call above, even though it failed.
        let got = send_part_draining(&mut w, &mut r, &mut pipe, b"two", &mut out);
        assert_eq!(got, vec![b"two".to_vec()]);
    }

    /// One step of an event loop around a frame writer, for the interleaving proptest.
    #[derive(Debug, Clone)]
    enum Step {
        /// `send_part(new message of this length, resume = false)`.
        Fresh(usize),
        /// `send_part(the last message, resume = true)`.
        Resume,
        /// `send(new message of this length, Wait::Never)`.
        Send(usize),
        /// The reader takes all it can.
        Drain,
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            2 => (0usize..9000).prop_map(Step::Fresh),
            3 => Just(Step::Resume),
            1 => (0usize..9000).prop_map(Step::Send),
            3 => Just(Step::Drain),
        ]
    }

    proptest::proptest! {
        #[test]
        fn any_interleaving_of_parts_resumes_and_sends_delivers_exactly_the_accepted(
            steps in proptest::collection::vec(step(), 1..80),
            capacity in 16usize..20_000,
            chunk in 1usize..7000,
        ) {
            let mut pipe = MemPipe::new(capacity);
            pipe.write_chunk = chunk;
            let mut w = FrameWriter::new(9000);
            let mut r = FrameReader::new(9000);
            let mut out = vec![0u8; 9000];
            let mut delivered = Vec::new();
            let mut accepted = Vec::new();
            // The message the last send_part left unfinished, if any.
            let mut last: Option<Vec<u8>> = None;
            for (i, step) in steps.iter().enumerate() {
                let (msg, result) = match step {
                    Step::Fresh(len) => {
                        let msg = message(i, *len);
                        let result = w.send_part(&mut pipe, &msg, false);
                        (msg, result)
                    }
                    Step::Resume => {
                        let Some(msg) = last.take() else { continue };
                        let result = w.send_part(&mut pipe, &msg, true);
                        (msg, result)
                    }
                    Step::Send(len) => {
                        let msg = message(i, *len);
                        let result = w.send(&mut pipe, &msg, Wait::Never);
                        last = None;
                        (msg, result)
                    }
                    Step::Drain => {
                        delivered.extend(drain(&mut r, &mut pipe, &mut out));
                        continue;
                    }
                };
                match result {
                    Ok(()) => accepted.push(msg),
                    Err(Error::Full) => {
                        if !matches!(step, Step::Send(_)) {
                            last = Some(msg);
                        }
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            // Finish the last message if it is still pending, else flush any debt with an
            // empty message.
            let (msg, resume) = match last {
                Some(msg) => (msg, true),
                None => (Vec::new(), false),
            };
            let mut done = false;
            for _ in 0..10_000 {
                match w.send_part(&mut pipe, &msg, resume) {
                    Ok(()) => {
                        accepted.push(msg.clone());
                        done = true;
                        break;
                    }
                    Err(Error::Full) => {}
                    Err(e) => panic!("{e}"),
                }
                delivered.extend(drain(&mut r, &mut pipe, &mut out));
            }
            proptest::prop_assert!(done);
            delivered.extend(drain(&mut r, &mut pipe, &mut out));
            proptest::prop_assert_eq!(delivered, accepted);
        }
    }

    proptest::proptest! {
        #[test]
        fn any_sequence_survives_partial_writes_and_aborts(
            // Both sides of ALIGNED_FROM, so both header layouts interleave.
            sizes in proptest::collection::vec(0usize..9000, 1..40),
            capacity in 16usize..20_000,
            chunk in 1usize..7000,
        ) {
            let mut pipe = MemPipe::new(capacity);
            pipe.write_chunk = chunk;
            let mut w = FrameWriter::new(9000);
            let mut r = FrameReader::new(9000);
            let mut out = vec![0u8; 9000];
            let mut delivered = Vec::new();
            let mut accepted = Vec::new();
            for (i, size) in sizes.iter().enumerate() {
                let msg: Vec<u8> = (0..*size).map(|j| (i * 31 + j) as u8).collect();
                // Try a few times, draining in between, as a real sender would.
                for _ in 0..3 {
                    match w.send(&mut pipe, &msg, Wait::Never) {
                        Ok(()) => { accepted.push(msg.clone()); break; }
                        Err(Error::Full) => {}
                        Err(e) => panic!("{e}"),
                    }
                    while let Ok(n) = r.recv(&mut pipe, &mut out, Wait::Never) {
                        delivered.push(out[..n].to_vec());
                    }
                }
            }
            // Flush any debt with an empty message, then drain.
            for _ in 0..10_000 {
                if w.send(&mut pipe, b"", Wait::Never).is_ok() {
                    accepted.push(Vec::new());
                    break;
                }
                while let Ok(n) = r.recv(&mut pipe, &mut out, Wait::Never) {
                    delivered.push(out[..n].to_vec());
                }
            }
            while let Ok(n) = r.recv(&mut pipe, &mut out, Wait::Never) {
                delivered.push(out[..n].to_vec());
            }
            proptest::prop_assert_eq!(delivered, accepted);
        }

        /// Batches across partial writes and a full pipe: each call reports exactly the
        /// messages that will be delivered, whole and in order, and the rest go next time.
        #[test]
        fn any_batch_reports_exactly_what_is_delivered(
            sizes in proptest::collection::vec(0usize..5000, 1..80),
            // Room for any one frame once drained: a try never gets a frame larger than the
            // free room through (that is what `try_send_part` is for).
            capacity in 5100usize..20_000,
            chunk in 1usize..7000,
        ) {
            let mut pipe = MemPipe::new(capacity);
            pipe.write_chunk = chunk;
            let mut w = FrameWriter::new(5000);
            let mut r = FrameReader::new(5000);
            let mut out = vec![0u8; 5000];
            let msgs: Vec<Vec<u8>> = sizes
                .iter()
                .enumerate()
                .map(|(i, size)| (0..*size).map(|j| (i * 31 + j) as u8).collect())
                .collect();
            let mut delivered = Vec::new();
            let mut next = 0;
            for _ in 0..100_000 {
                if next == msgs.len() {
                    break;
                }
                let batch: Vec<&[u8]> = msgs[next..].iter().map(Vec::as_slice).collect();
                match w.send_batch(&mut pipe, &batch, Wait::Never) {
                    Ok(n) => {
                        proptest::prop_assert!(n >= 1 && n <= batch.len());
                        next += n;
                    }
                    Err(Error::Full) => {}
                    Err(e) => panic!("{e}"),
                }
                while let Ok(n) = r.recv(&mut pipe, &mut out, Wait::Never) {
                    delivered.push(out[..n].to_vec());
                }
            }
            proptest::prop_assert_eq!(next, msgs.len(), "the batch never went through");
            // A frame left in part by the last call is finished by settling, then drained.
            for _ in 0..10_000 {
                if w.settle(&mut pipe, Wait::Never).is_ok() {
                    break;
                }
                while let Ok(n) = r.recv(&mut pipe, &mut out, Wait::Never) {
                    delivered.push(out[..n].to_vec());
                }
            }
            while let Ok(n) = r.recv(&mut pipe, &mut out, Wait::Never) {
                delivered.push(out[..n].to_vec());
            }
            proptest::prop_assert_eq!(delivered, msgs);
        }
    }
}
