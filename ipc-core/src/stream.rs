//! How messages are laid on a byte stream (pipes, FIFOs): the `framing` option.
//!
//! | `framing=` | a message on the wire         | boundaries | talks to                       |
//! |------------|-------------------------------|------------|--------------------------------|
//! | `frames`   | [`framing`](crate::framing)'s length-prefixed frame | kept | another `ipc` endpoint (or a C program that reads the format) |
//! | `lines`    | its bytes, then `\n`          | kept, if no message holds `\n` | any program that reads or writes text lines |
//! | `raw`      | its bytes                     | none       | any program                    |
//! | `packets`  | its bytes, as one packet of a packet-mode pipe | kept, by the kernel | a program whose writes are whole messages in packet mode (`O_DIRECT`) |
//!
//! `frames` is the default: only it carries any byte string, and only it can withdraw a message
//! that a deadline cut short. `lines` and `raw` exist so that programs that do not link this
//! crate (a shell's `printf > fifo`, a textbook C client) can be peers; `packets` so that
//! messages of up to a page go at the speed of a plain `write`/`read` loop.
//!
//! # `lines`
//!
//! A message is the bytes up to a `\n`, which is not part of it. Sending a message that holds a
//! `\n` is [`Error::InvalidMessage`] (it would arrive as two). A last line without `\n` at end of
//! stream is delivered (that is how `printf 'hi' > fifo` ends). A line longer than
//! `message_size` cannot be delivered: the receive returns [`Error::MessageTooLarge`] (with
//! `len` the bytes seen so far, more than `max`), the line is skipped up to its `\n`, and the
//! next receive goes on with the line after it. An empty line is an empty message.
//!
//! # `raw`
//!
//! A receive returns what one `read(2)` got, up to the caller's buffer and `message_size`;
//! nothing ties it to what one send wrote (two sends may arrive as one receive, one send as
//! several). A send writes the bytes as they are.
//!
//! # `packets`
//!
//! A pipe whose writing end is in packet mode (`O_DIRECT` on the open file, Linux 3.4 and
//! later; `pipe(7)`) keeps every `write` of up to `PIPE_BUF` (4096) bytes apart as a packet, and
//! a `read` takes one packet at most. A message is one packet, with no header: a 4 KiB message
//! fills one page of the pipe and is read straight into the caller's buffer, as in a raw loop,
//! where its 4161-byte frame spans two pages and is copied out of the reader's buffer
//! (`docs/measurements/frame-bytes.md`: a raw loop of 4161-byte writes is itself about 1.2×
//! slower than one of 4096-byte writes).
//!
//! What it costs:
//! - messages are 1 to 4096 bytes: `message_size` is at most `PIPE_BUF` (and is `PIPE_BUF`
//!   unless given), and an empty message is [`Error::InvalidMessage`], because the kernel makes
//!   no packet of a zero-byte write;
//! - every message takes a page of the pipe whatever its size, so the pipe holds `capacity /
//!   4096` of them (16 by default) and a receiver reads one per system call: small messages go
//!   faster as frames (64 B packets ran at about 0.8× the speed of 64 B writes in byte mode);
//! - the receiver cannot see whether a writer is in packet mode. Ours put their descriptor in it
//!   (a `pipe:` sender's end is shared with whoever inherited it); a foreign writer must do so
//!   too (`fcntl(fd, F_SETFL, flags | O_DIRECT)`, or `pipe2(fds, O_DIRECT)`), or its writes run
//!   together as in `raw`. A packet longer than the receiver's `message_size` is cut by the
//!   kernel: the receive returns [`Error::MessageTooLarge`] (with `len` the bytes read, more
//!   than `max`) and the next one goes on.
//!
//! A packet is written whole or not at all, so `try_send` and `send_timeout` are exact and
//! nothing is ever owed.
//!
//! # Deadlines and partial writes in `lines` and `raw`
//!
//! There is no abort marker without frames, so a message partly written cannot be withdrawn.
//! A message of up to `PIPE_BUF` (4096) bytes on the wire is written atomically, so `try_send`
//! and `send_timeout` of it are exact: `Full`/`Timeout` means nothing of it went out. A longer
//! one may be cut by the deadline after part of it went out; the writer then keeps the rest
//! (a copy) and writes it before anything else, so the message still arrives whole and
//! untorn. `send_with` then returns `Ok` (the message is accepted, as a blocking send's would
//! be), and [`Sender::try_send_part`](crate::Sender::try_send_part) returns `Full` (pending:
//! resume it, or it is completed before the next message anyway — never dropped, unlike a
//! frame). [`StreamWriter::settle`] writes the rest out, e.g. before the descriptor is handed
//! on; a pipe or FIFO sender dropped while it owes one does so too, waiting a bounded time.

use std::io::IoSlice;

use crate::framing::{FrameReader, FrameWriter, StreamIo};
use crate::{Error, Result, Wait};

/// How messages are laid on a byte stream (see the [module documentation](self)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Framing {
    /// Length-prefixed frames with a commit/abort trailer (the default).
    #[default]
    Frames,
    /// One message per `\n`-terminated line.
    Lines,
    /// Bytes as they come; no boundaries.
    Raw,
    /// One message per packet of a packet-mode pipe, up to `PIPE_BUF` bytes.
    Packets,
}

crate::spec::keywords!(Framing, "framing must be frames, lines, raw or packets" {
    Frames => "frames",
    Lines => "lines",
    Raw => "raw",
    Packets => "packets",
});

/// Largest message of [`Framing::Packets`]: `PIPE_BUF`, the largest write a pipe keeps whole.
pub const PACKET_MAX: usize = 4096;

/// Smallest read buffer of a line reader, so that short lines are read many per system call.
const MIN_LINE_BUFFER: usize = 64 * 1024;

/// Writes messages in one [`Framing`].
#[derive(Debug)]
pub enum StreamWriter {
    /// `framing=frames`.
    Frames(FrameWriter),
    /// `framing=lines` or `framing=raw`.
    Bytes(BytesWriter),
}

impl StreamWriter {
    /// A writer of messages up to `max` bytes in `framing`.
    pub fn new(framing: Framing, max: usize) -> StreamWriter {
        match framing {
            Framing::Frames => StreamWriter::Frames(FrameWriter::new(max)),
            Framing::Lines => StreamWriter::Bytes(BytesWriter::new(max, Delimit::Newline)),
            Framing::Raw => StreamWriter::Bytes(BytesWriter::new(max, Delimit::Nothing)),
            Framing::Packets => {
                StreamWriter::Bytes(BytesWriter::new(max.min(PACKET_MAX), Delimit::Packet))
            }
        }
    }

    /// Largest message accepted.
    pub fn max_message_size(&self) -> usize {
        match self {
            StreamWriter::Frames(w) => w.max_message_size(),
            StreamWriter::Bytes(w) => w.max,
        }
    }

    /// See [`FrameWriter::send`] and, for lines and raw, the [module documentation](self).
    #[inline]
    pub fn send(&mut self, io: &mut impl StreamIo, msg: &[u8], wait: Wait) -> Result<()> {
        match self {
            StreamWriter::Frames(w) => w.send(io, msg, wait),
            StreamWriter::Bytes(w) => w.send(io, msg, wait),
        }
    }

    /// Sends `msgs` in order (see [`Sender::send_batch`](crate::Sender::send_batch)): frames
    /// many per system call, lines and raw bytes one by one.
    pub fn send_batch(
        &mut self,
        io: &mut impl StreamIo,
        msgs: &[&[u8]],
        wait: Wait,
    ) -> Result<usize> {
        match self {
            StreamWriter::Frames(w) => w.send_batch(io, msgs, wait),
            _ => crate::send_each(msgs, |msg| self.send(io, msg, wait)),
        }
    }

    /// See [`FrameWriter::send_part`] and, for lines and raw, the [module documentation](self).
    pub fn send_part(&mut self, io: &mut impl StreamIo, msg: &[u8], resume: bool) -> Result<()> {
        match self {
            StreamWriter::Frames(w) => w.send_part(io, msg, resume),
            StreamWriter::Bytes(w) => w.send_part(io, msg, resume),
        }
    }

    /// Writes out what a cut-short message still owes (see [`FrameWriter::settle`]; in lines
    /// and raw, the rest of the message itself), waiting as `wait` allows.
    pub fn settle(&mut self, io: &mut impl StreamIo, wait: Wait) -> Result<()> {
        match self {
            StreamWriter::Frames(w) => w.settle(io, wait),
            StreamWriter::Bytes(w) => w.settle(io, wait),
        }
    }

    /// Whether part of a message that will be delivered is still to be written: a line or raw
    /// bytes cut short (a frame cut short is withdrawn instead, and owes only filler).
    pub fn owes_delivery(&self) -> bool {
        matches!(self, StreamWriter::Bytes(w) if w.debt.is_some())
    }

    /// Whether part of a message is still to be written.
    pub fn owes(&self) -> bool {
        match self {
            StreamWriter::Frames(w) => w.owes(),
            StreamWriter::Bytes(w) => w.debt.is_some(),
        }
    }
}

/// Writes messages as bytes, each followed by `\n` for `lines`, each one write for `packets`
/// (see the [module documentation](self)).
#[derive(Debug)]
pub struct BytesWriter {
    max: usize,
    delimit: Delimit,
    debt: Option<Owed>,
}

/// What keeps a [`BytesWriter`]'s messages apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delimit {
    /// `lines`: a `\n` after each.
    Newline,
    /// `raw`: nothing.
    Nothing,
    /// `packets`: the kernel, one packet per write (never cut: at most `PIPE_BUF`).
    Packet,
}

/// The unwritten rest of a message cut short, copied: it is written whatever the caller does
/// next, because without frames a started message cannot be withdrawn.
#[derive(Debug)]
struct Owed {
    rest: Vec<u8>,
    /// Length of the message (without `\n`), to recognise a resume.
    len: usize,
    /// Left by `send_part`: its caller is told `Full` and may resume.
    resumable: bool,
}

impl BytesWriter {
    fn new(max: usize, delimit: Delimit) -> BytesWriter {
        BytesWriter {
            max,
            delimit,
            debt: None,
        }
    }

    fn check(&self, msg: &[u8]) -> Result<()> {
        if msg.len() > self.max {
            return Err(Error::MessageTooLarge {
                len: msg.len(),
                max: self.max,
            });
        }
        if self.delimit == Delimit::Packet && msg.is_empty() {
            return Err(Error::InvalidMessage {
                reason: "an empty message cannot be sent with framing=packets: a pipe makes no \
                         packet of a zero-byte write (use framing=frames to send empty messages)"
                    .into(),
            });
        }
        let newline_at = match self.delimit {
            Delimit::Newline => msg.iter().position(|&b| b == b'\n'),
            Delimit::Nothing | Delimit::Packet => None,
        };
        if let Some(at) = newline_at {
            return Err(Error::InvalidMessage {
                reason: format!(
                    "byte {at} of {} is `\\n`, which ends a message with framing=lines \
                     (use framing=frames for arbitrary bytes)",
                    msg.len()
                ),
            });
        }
        Ok(())
    }

    fn send(&mut self, io: &mut impl StreamIo, msg: &[u8], wait: Wait) -> Result<()> {
        self.check(msg)?;
        self.settle(io, wait)?;
        match self.write_new(io, msg, wait, false)? {
            // Nothing of it went out: exact, as the trait promises.
            Written::None => Err(wait.full_error()),
            // Whole, or in part with the rest owed: either way it will arrive whole.
            Written::All | Written::Part => Ok(()),
        }
    }

    fn send_part(&mut self, io: &mut impl StreamIo, msg: &[u8], resume: bool) -> Result<()> {
        let resuming = resume
            && self
                .debt
                .as_ref()
                .is_some_and(|d| d.resumable && d.len == msg.len());
        if resuming {
            return match self.write_owed(io, Wait::Never)? {
                true => Ok(()),
                false => Err(Error::Full),
            };
        }
        if let Some(d) = &mut self.debt {
            d.resumable = false;
        }
        self.check(msg)?;
        self.settle(io, Wait::Never)?;
        match self.write_new(io, msg, Wait::Never, true)? {
            Written::All => Ok(()),
            Written::None | Written::Part => Err(Error::Full),
        }
    }

    fn settle(&mut self, io: &mut impl StreamIo, wait: Wait) -> Result<()> {
        if self.debt.is_none() || self.write_owed(io, wait)? {
            Ok(())
        } else {
            Err(wait.full_error())
        }
    }

    /// Writes `msg` (and `\n`) as one gathered write where it fits; keeps the rest as owed if
    /// `wait` expires after part of it went out.
    fn write_new(
        &mut self,
        io: &mut impl StreamIo,
        msg: &[u8],
        wait: Wait,
        resumable: bool,
    ) -> Result<Written> {
        debug_assert!(self.debt.is_none(), "a new message after an unpaid one");
        let newline: &[u8] = match self.delimit {
            Delimit::Newline => b"\n",
            Delimit::Nothing | Delimit::Packet => b"",
        };
        let total = msg.len() + newline.len();
        let mut written = 0;
        let block = wait.is_forever();
        while written < total {
            let slices = if written < msg.len() {
                [IoSlice::new(&msg[written..]), IoSlice::new(newline)]
            } else {
                [
                    IoSlice::new(&newline[written - msg.len()..]),
                    IoSlice::new(&[]),
                ]
            };
            // An empty part would make a single buffer two, which the pipe joins by a copy.
            let parts = if slices[1].is_empty() {
                &slices[..1]
            } else {
                &slices[..]
            };
            match io.write(parts, block)? {
                Some(n) => written += n,
                None if wait == Wait::Never || !io.wait_writable(wait)? => break,
                None => {}
            }
        }
        if written == total {
            return Ok(Written::All);
        }
        if written == 0 {
            return Ok(Written::None);
        }
        let mut rest = Vec::with_capacity(total - written);
        rest.extend_from_slice(msg.get(written..).unwrap_or_default());
        rest.extend_from_slice(&newline[written.saturating_sub(msg.len())..]);
        self.debt = Some(Owed {
            rest,
            len: msg.len(),
            resumable,
        });
        Ok(Written::Part)
    }

    /// Writes on the owed rest; `Ok(true)` once it is all out.
    fn write_owed(&mut self, io: &mut impl StreamIo, wait: Wait) -> Result<bool> {
        let block = wait.is_forever();
        let owed = self.debt.as_mut().expect("write_owed with a debt");
        let mut written = 0;
        let result = loop {
            if written == owed.rest.len() {
                break Ok(true);
            }
            match io.write(&[IoSlice::new(&owed.rest[written..])], block) {
                Ok(Some(n)) => written += n,
                Ok(None) if wait == Wait::Never => break Ok(false),
                Ok(None) => match io.wait_writable(wait) {
                    Ok(true) => {}
                    Ok(false) => break Ok(false),
                    Err(e) => break Err(e),
                },
                Err(e) => break Err(e),
            }
        };
        // Advanced in place, so that the debt stays exact whatever the outcome.
        owed.rest.drain(..written);
        if owed.rest.is_empty() {
            self.debt = None;
        }
        result
    }
}

enum Written {
    None,
    Part,
    All,
}

/// Reads messages in one [`Framing`].
#[derive(Debug)]
pub enum StreamReader {
    /// `framing=frames`.
    Frames(FrameReader),
    /// `framing=lines`.
    Lines(LineReader),
    /// `framing=raw`.
    Raw(RawReader),
    /// `framing=packets`.
    Packets(PacketReader),
}

impl StreamReader {
    /// A reader of messages up to `max` bytes in `framing`.
    pub fn new(framing: Framing, max: usize) -> StreamReader {
        match framing {
            Framing::Frames => StreamReader::Frames(FrameReader::new(max)),
            Framing::Lines => StreamReader::Lines(LineReader::new(max)),
            Framing::Raw => StreamReader::Raw(RawReader {
                max,
                end_of_stream: false,
            }),
            Framing::Packets => StreamReader::Packets(PacketReader::new(max)),
        }
    }

    /// Largest message delivered.
    pub fn max_message_size(&self) -> usize {
        match self {
            StreamReader::Frames(r) => r.max_message_size(),
            StreamReader::Lines(r) => r.max,
            StreamReader::Raw(r) => r.max,
            StreamReader::Packets(r) => r.max,
        }
    }

    /// Bytes read from the stream but not yet delivered.
    pub fn buffered(&self) -> usize {
        match self {
            StreamReader::Frames(r) => r.buffered(),
            StreamReader::Lines(r) => r.end - r.start,
            StreamReader::Raw(_) => 0,
            StreamReader::Packets(r) => r.held.unwrap_or(0),
        }
    }

    /// Whether the next [`recv`](StreamReader::recv) gets on without reading the stream (see
    /// [`FrameReader::next_is_buffered`]).
    pub fn next_is_buffered(&self) -> bool {
        match self {
            StreamReader::Frames(r) => r.next_is_buffered(),
            StreamReader::Lines(r) => r.next_is_buffered(),
            StreamReader::Raw(r) => r.end_of_stream,
            StreamReader::Packets(r) => r.held.is_some() || r.end_of_stream,
        }
    }

    /// Receives one message into `out`, returning its length.
    pub fn recv(&mut self, io: &mut impl StreamIo, out: &mut [u8], wait: Wait) -> Result<usize> {
        match self {
            StreamReader::Frames(r) => r.recv(io, out, wait),
            StreamReader::Lines(r) => r.recv(io, out, wait),
            StreamReader::Raw(r) => r.recv(io, out, wait),
            StreamReader::Packets(r) => r.recv(io, out, wait),
        }
    }
}

/// Reads one packet per message (see the [module documentation](self)).
#[derive(Debug)]
pub struct PacketReader {
    max: usize,
    /// Where a packet is read when the caller's buffer may be shorter than it: a read into
    /// less than a packet loses the packet's rest. Empty until first needed.
    spare: Vec<u8>,
    /// Length of the packet in `spare` that the caller's buffer could not take.
    held: Option<usize>,
    end_of_stream: bool,
}

impl PacketReader {
    fn new(max: usize) -> PacketReader {
        PacketReader {
            max: max.min(PACKET_MAX),
            spare: Vec::new(),
            held: None,
            end_of_stream: false,
        }
    }

    /// Bytes each read asks for: one more than the largest message, so that a longer packet
    /// shows (a packet never holds more than `PIPE_BUF`).
    fn read_len(&self) -> usize {
        (self.max + 1).min(PACKET_MAX)
    }

    fn recv(&mut self, io: &mut impl StreamIo, out: &mut [u8], wait: Wait) -> Result<usize> {
        if let Some(len) = self.held {
            return self.deliver_held(len, out);
        }
        if self.end_of_stream {
            return Err(Error::Disconnected);
        }
        let want = self.read_len();
        // Straight into the caller's buffer when it takes any packet whole, as a raw loop.
        let direct = out.len() >= want;
        if !direct && self.spare.len() < want {
            self.spare.resize(want, 0);
        }
        loop {
            let buf = match direct {
                true => &mut out[..want],
                false => &mut self.spare[..want],
            };
            match io.read(buf, wait.is_forever())? {
                Some(0) => {
                    self.end_of_stream = true;
                    return Err(Error::Disconnected);
                }
                // The kernel dropped the packet's rest: it is gone whatever we return.
                Some(n) if n > self.max => {
                    return Err(Error::MessageTooLarge {
                        len: n,
                        max: self.max,
                    });
                }
                Some(n) if direct => return Ok(n),
                Some(n) => {
                    self.held = Some(n);
                    return self.deliver_held(n, out);
                }
                None if wait == Wait::Never => return Err(Error::Empty),
                None => {
                    if !io.wait_readable(wait)? {
                        return Err(Error::Timeout);
                    }
                }
            }
        }
    }

    /// The packet held in `spare`, if `out` takes it; kept for a larger buffer otherwise.
    fn deliver_held(&mut self, len: usize, out: &mut [u8]) -> Result<usize> {
        match out.get_mut(..len) {
            Some(dest) => {
                dest.copy_from_slice(&self.spare[..len]);
                self.held = None;
                Ok(len)
            }
            None => Err(Error::BufferTooSmall {
                len: out.len(),
                needed: len,
            }),
        }
    }
}

/// Reads what each `read(2)` returns (see the [module documentation](self)).
#[derive(Debug)]
pub struct RawReader {
    max: usize,
    end_of_stream: bool,
}

impl RawReader {
    fn recv(&mut self, io: &mut impl StreamIo, out: &mut [u8], wait: Wait) -> Result<usize> {
        if self.end_of_stream {
            return Err(Error::Disconnected);
        }
        let len = out.len().min(self.max);
        if len == 0 {
            // A read into nothing returns 0, which would read as end of stream.
            return Err(Error::BufferTooSmall { len: 0, needed: 1 });
        }
        loop {
            match io.read(&mut out[..len], wait.is_forever())? {
                Some(0) => {
                    self.end_of_stream = true;
                    return Err(Error::Disconnected);
                }
                Some(n) => return Ok(n),
                None if wait == Wait::Never => return Err(Error::Empty),
                None => {
                    if !io.wait_readable(wait)? {
                        return Err(Error::Timeout);
                    }
                }
            }
        }
    }
}

/// Reads `\n`-terminated lines (see the [module documentation](self)).
///
/// Holds one buffer of at least one whole line, allocated at construction.
#[derive(Debug)]
pub struct LineReader {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Bytes from `start` known to hold no `\n`, so a long line is scanned once.
    scanned: usize,
    max: usize,
    /// Inside a line too long to deliver: drop bytes up to its `\n`.
    skipping: bool,
    end_of_stream: bool,
}

impl LineReader {
    fn new(max: usize) -> LineReader {
        LineReader {
            // A whole line and its `\n`.
            buf: vec![0; max.saturating_add(1).max(MIN_LINE_BUFFER)].into_boxed_slice(),
            start: 0,
            end: 0,
            scanned: 0,
            max,
            skipping: false,
            end_of_stream: false,
        }
    }

    fn newline(&self) -> Option<usize> {
        self.buf[self.start + self.scanned..self.end]
            .iter()
            .position(|&b| b == b'\n')
            .map(|i| self.scanned + i)
    }

    fn next_is_buffered(&self) -> bool {
        self.end_of_stream || self.newline().is_some() || self.end - self.start > self.max
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.scanned = 0;
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    fn recv(&mut self, io: &mut impl StreamIo, out: &mut [u8], wait: Wait) -> Result<usize> {
        loop {
            let avail = self.end - self.start;
            match self.newline() {
                Some(_) if self.skipping => {
                    let at = self.newline().expect("just found");
                    self.skipping = false;
                    self.consume(at + 1);
                    continue;
                }
                Some(len) if len > self.max => {
                    // Whole in the buffer, which is larger than message_size: still too large.
                    self.consume(len + 1);
                    return Err(Error::MessageTooLarge { len, max: self.max });
                }
                Some(len) => return self.deliver(out, len, len + 1),
                None if self.end_of_stream && (avail == 0 || self.skipping) => {
                    return Err(Error::Disconnected);
                }
                None if self.skipping => self.consume(avail),
                None if avail > self.max => {
                    // The line cannot fit: report it once, then skip it.
                    self.skipping = true;
                    self.consume(avail);
                    return Err(Error::MessageTooLarge {
                        len: avail,
                        max: self.max,
                    });
                }
                None if self.end_of_stream && avail > 0 => {
                    // A last line without `\n` is still a line.
                    return self.deliver(out, avail, avail);
                }
                None => self.scanned = avail,
            }
            if self.end == self.buf.len() {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            match io.read(&mut self.buf[self.end..], wait.is_forever())? {
                Some(0) => self.end_of_stream = true,
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

    fn deliver(&mut self, out: &mut [u8], len: usize, consumed: usize) -> Result<usize> {
        let Some(dst) = out.get_mut(..len) else {
            return Err(Error::BufferTooSmall {
                len: out.len(),
                needed: len,
            });
        };
        dst.copy_from_slice(&self.buf[self.start..self.start + len]);
        self.consume(consumed);
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framing::tests::MemPipe;

    fn drain(r: &mut StreamReader, pipe: &mut MemPipe) -> Vec<Result<Vec<u8>>> {
        let mut out = vec![0; 10_000];
        let mut got = Vec::new();
        loop {
            match r.recv(pipe, &mut out, Wait::Never) {
                Ok(n) => got.push(Ok(out[..n].to_vec())),
                Err(Error::Empty) | Err(Error::Disconnected) => return got,
                Err(e) => {
                    assert!(got.len() < 1000, "no progress: {e}");
                    got.push(Err(e));
                }
            }
        }
    }

    #[test]
    fn lines_split_on_newline_and_deliver_the_last_unterminated_line() {
        let mut pipe = MemPipe::new(1 << 16);
        pipe.data.extend(b"one\n\ntwo\nlast");
        pipe.writer_closed = true;
        let mut r = StreamReader::new(Framing::Lines, 10);
        let got: Vec<_> = drain(&mut r, &mut pipe)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, [&b"one"[..], b"", b"two", b"last"]);
        assert!(r.next_is_buffered());
    }

    #[test]
    fn a_line_longer_than_message_size_is_too_large_and_skipped() {
        let mut pipe = MemPipe::new(1 << 20);
        pipe.data.extend(b"ok\n");
        pipe.data.extend([b'x'; 100_000]);
        pipe.data.extend(b"\nafter\n");
        // Short enough to be buffered whole, still longer than message_size.
        pipe.data.extend(b"eleven char\nend\n");
        let mut r = StreamReader::new(Framing::Lines, 10);
        let got = drain(&mut r, &mut pipe);
        assert_eq!(got.len(), 5, "{got:?}");
        assert!(matches!(
            got[3],
            Err(Error::MessageTooLarge { len: 11, max: 10 })
        ));
        assert_eq!(got[4].as_ref().unwrap(), b"end");
        assert_eq!(got[0].as_ref().unwrap(), b"ok");
        assert!(matches!(
            got[1],
            Err(Error::MessageTooLarge { max: 10, len }) if len > 10
        ));
        assert_eq!(got[2].as_ref().unwrap(), b"after");
    }

    #[test]
    fn lines_refuse_a_newline_inside_and_append_one() {
        let mut pipe = MemPipe::new(1 << 16);
        let mut w = StreamWriter::new(Framing::Lines, 10);
        assert!(matches!(
            w.send(&mut pipe, b"a\nb", Wait::Never),
            Err(Error::InvalidMessage { .. })
        ));
        w.send(&mut pipe, b"ab", Wait::Never).unwrap();
        assert_eq!(pipe.data.iter().copied().collect::<Vec<_>>(), b"ab\n");
    }

    #[test]
    fn a_cut_short_line_is_completed_before_the_next_not_torn() {
        for part in [false, true] {
            let mut pipe = MemPipe::new(1000);
            let mut w = StreamWriter::new(Framing::Lines, 5000);
            let mut r = StreamReader::new(Framing::Lines, 5000);
            let big = vec![b'b'; 3000];
            let first = if part {
                w.send_part(&mut pipe, &big, false)
            } else {
                w.send(&mut pipe, &big, Wait::Never)
            };
            // Accepted in part: `send` says Ok (it will arrive), `send_part` says pending.
            assert_eq!(first.is_ok(), !part);
            assert!(w.owes());
            let mut got = Vec::new();
            for _ in 0..100 {
                got.extend(drain(&mut r, &mut pipe).into_iter().map(Result::unwrap));
                match w.send(&mut pipe, b"next", Wait::Never) {
                    Ok(()) => break,
                    Err(Error::Full) => {}
                    Err(e) => panic!("{e}"),
                }
            }
            got.extend(drain(&mut r, &mut pipe).into_iter().map(Result::unwrap));
            assert_eq!(got, [big.clone(), b"next".to_vec()]);
        }
    }

    #[test]
    fn raw_returns_what_a_read_gets() {
        let mut pipe = MemPipe::new(1 << 16);
        let mut w = StreamWriter::new(Framing::Raw, 10);
        w.send(&mut pipe, b"a\nb", Wait::Never).unwrap();
        w.send(&mut pipe, b"cd", Wait::Never).unwrap();
        let mut r = StreamReader::new(Framing::Raw, 10);
        let got: Vec<_> = drain(&mut r, &mut pipe)
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got.concat(), b"a\nbcd");
    }

    #[test]
    fn framing_parses_and_prints() {
        for f in [Framing::Frames, Framing::Lines, Framing::Raw] {
            assert_eq!(f.to_string().parse::<Framing>().unwrap(), f);
        }
        assert!("text".parse::<Framing>().is_err());
    }
}
