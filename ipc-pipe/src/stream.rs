//! A message channel over one pipe descriptor, in any [`Framing`]: what anonymous pipes and
//! FIFOs share.
//!
//! An anonymous pipe's descriptor stays in blocking mode, so a blocking send or receive is a
//! single `pwritev2`/`read`. The `try_` and `_timeout` forms must not wait in the kernel and wait
//! in `poll(2)` with the caller's deadline instead. How they tell the kernel not to wait depends
//! on who shares the open file:
//!
//! - an anonymous pipe's open file is shared with the processes that inherited it, and its
//!   `O_NONBLOCK` flag with them, so it is never changed: each call passes `RWF_NOWAIT`;
//! - a FIFO's open file is the opener's alone, and Linux refuses `RWF_NOWAIT` on FIFOs
//!   (`EOPNOTSUPP`, seen on 6.18), so it is put in `O_NONBLOCK` once, and a blocking call that
//!   finds no data or room waits in `poll(2)` and tries again. Switching the flag by the kind of
//!   call cost two `fcntl` per `recv_batch` (a blocking receive, then non-blocking ones): FIFO
//!   throughput at 4 KiB was 2.1× the raw loop's; the flag is given back (blocking) with the
//!   descriptor;
//! - a FIFO handed over as a descriptor (`pipe:fd=N`) has neither: the call polls first and then
//!   makes the blocking call. That is exact for the (single) reader and for frames up to
//!   `PIPE_BUF`; a larger frame may then wait for the reader to drain part of it.
//!
//! A FIFO receiver opened before any writer reads end of file until one comes. It learns of
//! that writer from a [`WriterWatch`] rather than by polling the FIFO, which would make every
//! later write wake the readers' queue (see [`crate::WriterWatch`]); without one, it waits in
//! `poll` as before.
//!
//! # Readiness
//!
//! Each end is its own [`Readiness`] on its descriptor (see the crate documentation, "Event
//! loops"): nothing to arm or consume, as the kernel's readiness of a pipe is level-triggered
//! and exact. `prepare_wait` of a receiver says "retry now" when a whole frame was read ahead
//! into its buffer, which the descriptor no longer shows.

use std::io::IoSlice;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use ipc_core::framing::{StreamIo, join_small};
use ipc_core::stream::{StreamReader, StreamWriter};
use ipc_core::{
    Error, Framing, Interest, Readiness, Receiver, Result, Sender, Wait, WaitStrategy,
    poll_before_sleep, poll_fd,
};
use nix::errno::Errno;
use nix::poll::PollFlags;

use crate::first_writer::{Seen, WriterWatch};
use crate::sys;

/// One end of a pipe as the framing sees it.
#[derive(Debug)]
pub(crate) struct FdIo {
    fd: OwnedFd,
    /// A FIFO reader opened before any writer reads end of file until one comes; this says
    /// whether one has (see [`FirstWriter`]).
    first_writer: FirstWriter,
    no_wait: NoWait,
    /// `SIGPIPE` was ignored when the endpoint was made: a blocking write may be a plain
    /// `write(2)`, cheaper than `pwritev2` with `RWF_NOSIGNAL` (see [`FdIo::write`]).
    plain_write: bool,
    /// Where the parts of a small frame (or of a batch's group) are joined into one buffer:
    /// one segment costs the kernel less than three. Empty until the first such write.
    staging: Vec<u8>,
    /// How a receive waits for data before sleeping in the kernel (see
    /// [`poll_before_sleep`]); senders always sleep at once.
    wait: WaitStrategy,
}

/// Whether the writer a FIFO receiver waits for has come, and how it will learn of it.
#[derive(Debug)]
enum FirstWriter {
    /// One has (or the descriptor never waited for one: an anonymous pipe, a FIFO sender).
    Came,
    /// None yet; the watch tells of opens and of writers' closes, so the FIFO is never polled
    /// (see [`WriterWatch`]).
    Watched(WriterWatch),
    /// None yet, and only `poll` on the FIFO can tell (inotify refused).
    Polled,
}

/// What a FIFO receiver found looking for its first writer.
enum Arrival {
    /// The first bytes, read into the caller's buffer.
    Data(usize),
    /// A writer holds the FIFO open, or one came and went: read as usual.
    Came,
    /// No writer yet, and the call may not wait.
    NotYet,
}

/// How a call tells the kernel not to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NoWait {
    /// `RWF_NOWAIT` per call: for open files shared with other processes.
    PerCall,
    /// `O_NONBLOCK` on the open file, which is ours alone, switched to suit each call
    /// (`nonblocking` says how it is now): a call that may wait forever is then one blocking
    /// system call, as a raw loop's. A FIFO needs this: it refuses `RWF_NOWAIT`.
    OwnFlag { nonblocking: bool },
    /// Neither is possible (a shared FIFO): `poll` first, then the blocking call.
    PollFirst,
}

impl FdIo {
    fn new(fd: OwnedFd, private_open_file: bool, first_writer: FirstWriter) -> FdIo {
        FdIo {
            fd,
            first_writer,
            no_wait: if private_open_file {
                NoWait::OwnFlag { nonblocking: false }
            } else {
                NoWait::PerCall
            },
            plain_write: sys::sigpipe_ignored(),
            staging: Vec::new(),
            wait: WaitStrategy::Park,
        }
    }

    /// One write of `bufs` at most, with `nowait` as [`FdIo::prepare`] decided. Parts that
    /// together fit in `PIPE_BUF` are copied into one buffer first (as atomic as the parts
    /// written together); with `SIGPIPE` ignored and nothing to pass in flags, the call is a
    /// plain `write`, else `pwritev2` with `RWF_NOSIGNAL`.
    fn write_once(&mut self, bufs: &[IoSlice<'_>], nowait: bool) -> std::io::Result<usize> {
        let joined;
        let bufs = match join_small(bufs, &mut self.staging) {
            Some(one) => {
                joined = [IoSlice::new(one)];
                &joined[..]
            }
            None => bufs,
        };
        match bufs {
            [one] if self.plain_write && !nowait => {
                nix::unistd::write(&self.fd, one).map_err(std::io::Error::from)
            }
            _ => sys::write_no_sigpipe(self.fd.as_fd(), bufs, nowait),
        }
    }

    /// Prepares the descriptor for a call that may (`block`) or may not wait; returns whether
    /// the call itself must pass `RWF_NOWAIT`.
    fn prepare(&mut self, block: bool) -> Result<bool> {
        match self.no_wait {
            NoWait::PerCall => Ok(!block),
            NoWait::PollFirst => Ok(false),
            NoWait::OwnFlag { nonblocking } => {
                // A receiver that spins before sleeping reads without blocking, then sleeps in
                // `poll`: switching the flag at every sleep would cost two more calls.
                let wanted = !block || self.wait != WaitStrategy::Park;
                if nonblocking != wanted {
                    sys::set_nonblocking(self.fd.as_fd(), wanted)
                        .map_err(|e| Error::io("fcntl O_NONBLOCK", e))?;
                    self.no_wait = NoWait::OwnFlag {
                        nonblocking: wanted,
                    };
                }
                Ok(false)
            }
        }
    }

    /// After `EAGAIN`: whether a blocking call goes on (having waited in `poll` for `events`),
    /// which only a descriptor in `O_NONBLOCK` of our own asks for.
    fn waited_for(&self, events: PollFlags, block: bool) -> Result<bool> {
        Ok(block
            && matches!(self.no_wait, NoWait::OwnFlag { nonblocking: true })
            && self.poll(events, Wait::Forever)?)
    }

    /// Clears our `O_NONBLOCK`, for a descriptor handed back to its caller.
    fn restore_blocking(&mut self) -> Result<()> {
        if matches!(self.no_wait, NoWait::OwnFlag { nonblocking: true }) {
            sys::set_nonblocking(self.fd.as_fd(), false)
                .map_err(|e| Error::io("fcntl O_NONBLOCK", e))?;
            self.no_wait = NoWait::OwnFlag { nonblocking: false };
        }
        Ok(())
    }

    fn poll(&self, events: PollFlags, wait: Wait) -> Result<bool> {
        poll_fd(self.fd.as_fd(), events, wait)
    }

    /// Looks for the first writer of a FIFO (see [`FirstWriter`]), waiting for it with
    /// `block`.
    fn await_first_writer(&mut self, buf: &mut [u8], block: bool) -> Result<Arrival> {
        match std::mem::replace(&mut self.first_writer, FirstWriter::Came) {
            FirstWriter::Came => Ok(Arrival::Came),
            FirstWriter::Polled => {
                let wait = if block { Wait::Forever } else { Wait::Never };
                let came = self.poll(PollFlags::POLLIN, wait);
                if !matches!(came, Ok(true)) {
                    self.first_writer = FirstWriter::Polled;
                }
                Ok(if came? {
                    Arrival::Came
                } else {
                    Arrival::NotYet
                })
            }
            FirstWriter::Watched(watch) => match self.watch_for_writer(&watch, buf, block) {
                Ok(Some(Arrival::NotYet)) => {
                    self.first_writer = FirstWriter::Watched(watch);
                    Ok(Arrival::NotYet)
                }
                Ok(Some(arrival)) => Ok(arrival),
                // The watch lost track: `poll` tells from now on.
                Ok(None) => {
                    self.first_writer = FirstWriter::Polled;
                    self.await_first_writer(buf, block)
                }
                Err(e) => {
                    self.first_writer = FirstWriter::Watched(watch);
                    Err(e)
                }
            },
        }
    }

    /// [`FdIo::await_first_writer`] through `watch`; `None` once the watch can no longer be
    /// trusted.
    fn watch_for_writer(
        &mut self,
        watch: &WriterWatch,
        buf: &mut [u8],
        block: bool,
    ) -> Result<Option<Arrival>> {
        loop {
            // A read that does not wait tells data, `EAGAIN` (a writer has the FIFO open) or
            // end of file (none has).
            let nowait = self.prepare(false)?;
            match sys::read(self.fd.as_fd(), buf, nowait) {
                Ok(0) => {}
                Ok(n) => return Ok(Some(Arrival::Data(n))),
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => return Ok(Some(Arrival::Came)),
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => return Err(Error::io("read from pipe", e)),
            }
            // The case a read cannot tell: a writer that came and went before we looked,
            // told by its close. An open since the last look may be a writer's that came
            // after the read: read again rather than sleep through it.
            match watch.take_events() {
                None => return Ok(None),
                Some(Seen::WriterClosed) => return Ok(Some(Arrival::Came)),
                Some(Seen::Opened) => {}
                Some(Seen::Nothing) if !block => return Ok(Some(Arrival::NotYet)),
                Some(Seen::Nothing) => {
                    poll_fd(watch.as_fd(), PollFlags::POLLIN, Wait::Forever)?;
                }
            }
        }
    }
}

/// Most bytes one `write` puts in a pipe. Linux keeps two spare pages per pipe (since 2025; one
/// before): a write of at most two pages takes its pages from there, and the reader puts them
/// back as it empties them, where a larger write takes the rest from the page allocator,
/// memory-cgroup charging included, under the pipe's lock, and the reader frees them again.
/// Large messages written in pieces of two pages went through 1.6-2.5x as fast as written at
/// once, from 16 KiB to 1 MiB (`docs/measurements/pipe-write-chunks.md`). Frames of up to
/// `PIPE_BUF` are never cut, so they stay atomic.
const WRITE_CHUNK: usize = 8192;

/// The first [`WRITE_CHUNK`] bytes of `bufs`, in `room`, if `bufs` holds more; else `bufs`.
/// Only a frame's slices (three at most) or a message and its newline can hold more; of any
/// longer list, a prefix of its first three slices.
fn first_chunk<'a>(bufs: &'a [IoSlice<'a>], room: &'a mut [IoSlice<'a>; 3]) -> &'a [IoSlice<'a>] {
    if bufs.iter().map(|b| b.len()).sum::<usize>() <= WRITE_CHUNK {
        return bufs;
    }
    let mut left = WRITE_CHUNK;
    let mut n = 0;
    for b in bufs.iter().take(room.len()) {
        if left == 0 {
            break;
        }
        let take = b.len().min(left);
        room[n] = IoSlice::new(&b[..take]);
        n += 1;
        left -= take;
    }
    &room[..n]
}

impl StreamIo for FdIo {
    fn write(&mut self, bufs: &[IoSlice<'_>], block: bool) -> Result<Option<usize>> {
        let mut room = [IoSlice::new(&[]); 3];
        let bufs = first_chunk(bufs, &mut room);
        if !block
            && self.no_wait == NoWait::PollFirst
            && !self.poll(PollFlags::POLLOUT, Wait::Never)?
        {
            return Ok(None);
        }
        let nowait = self.prepare(block)?;
        loop {
            match self.write_once(bufs, nowait) {
                Ok(n) => return Ok(Some(n)),
                Err(e) => match Errno::from_raw(e.raw_os_error().unwrap_or(0)) {
                    Errno::EINTR => continue,
                    Errno::EOPNOTSUPP if nowait => {
                        self.no_wait = NoWait::PollFirst;
                        return self.write(bufs, block);
                    }
                    Errno::EAGAIN if self.waited_for(PollFlags::POLLOUT, block)? => continue,
                    Errno::EAGAIN if !block => return Ok(None),
                    Errno::EPIPE => return Err(Error::Disconnected),
                    _ => return Err(Error::io("write to pipe", e)),
                },
            }
        }
    }

    fn wait_writable(&mut self, wait: Wait) -> Result<bool> {
        self.poll(PollFlags::POLLOUT, wait)
    }

    fn read(&mut self, buf: &mut [u8], block: bool) -> Result<Option<usize>> {
        if !matches!(self.first_writer, FirstWriter::Came) {
            match self.await_first_writer(buf, block)? {
                Arrival::Data(n) => {
                    // As the next call of its kind will want the descriptor (once).
                    self.prepare(block)?;
                    return Ok(Some(n));
                }
                Arrival::NotYet => return Ok(None),
                Arrival::Came => {}
            }
        }
        if !block
            && self.no_wait == NoWait::PollFirst
            && !self.poll(PollFlags::POLLIN, Wait::Never)?
        {
            return Ok(None);
        }
        if block && self.wait != WaitStrategy::Park && self.no_wait != NoWait::PollFirst {
            // Non-blocking reads rather than `poll`: measured, they let the writer through
            // as well and catch its frame sooner.
            let nowait = self.prepare(false)?;
            let fd = self.fd.as_fd();
            let polled = poll_before_sleep(self.wait, Wait::Forever, || {
                match sys::read(fd, buf, nowait) {
                    Ok(n) => Ok(Some(n)),
                    Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) => {
                        Ok(None)
                    }
                    Err(e) => Err(Error::io("read from pipe", e)),
                }
            })?;
            if polled.is_some() {
                return Ok(polled);
            }
        }
        let nowait = self.prepare(block)?;
        loop {
            match sys::read(self.fd.as_fd(), buf, nowait) {
                Ok(n) => return Ok(Some(n)),
                Err(e) => match Errno::from_raw(e.raw_os_error().unwrap_or(0)) {
                    Errno::EINTR => continue,
                    Errno::EOPNOTSUPP if nowait => {
                        self.no_wait = NoWait::PollFirst;
                        return self.read(buf, block);
                    }
                    Errno::EAGAIN if self.waited_for(PollFlags::POLLIN, block)? => continue,
                    Errno::EAGAIN if !block => return Ok(None),
                    _ => return Err(Error::io("read from pipe", e)),
                },
            }
        }
    }

    fn wait_readable(&mut self, wait: Wait) -> Result<bool> {
        if let FirstWriter::Watched(watch) = &self.first_writer {
            // Not on the FIFO (see `FirstWriter`): an open or a writer's close is what can
            // change what a read finds, and the next read looks.
            return poll_fd(watch.as_fd(), PollFlags::POLLIN, wait);
        }
        let polled = poll_before_sleep(self.wait, wait, || {
            Ok(self.poll(PollFlags::POLLIN, Wait::Never)?.then_some(()))
        })?;
        let ready = polled.is_some() || self.poll(PollFlags::POLLIN, wait)?;
        if ready {
            // Data, or the hang-up of a writer that came and went.
            self.first_writer = FirstWriter::Came;
        }
        Ok(ready)
    }
}

/// Sends framed messages on the write end of a pipe or FIFO.
#[derive(Debug)]
pub struct StreamSender {
    io: FdIo,
    writer: StreamWriter,
}

impl StreamSender {
    /// Writes messages of up to `message_size` bytes onto `fd`, a pipe's write end, in
    /// `framing`.
    ///
    /// With [`Framing::Packets`] the descriptor's open file is put in packet mode (`O_DIRECT`),
    /// for every process that shares it.
    pub fn new(fd: OwnedFd, message_size: usize, framing: Framing) -> Result<StreamSender> {
        StreamSender::with_io(
            FdIo::new(fd, false, FirstWriter::Came),
            message_size,
            framing,
        )
    }

    /// As [`StreamSender::new`], for a descriptor whose open file no other process shares (a
    /// FIFO this process opened): its `O_NONBLOCK` flag may be switched.
    pub fn new_private(fd: OwnedFd, message_size: usize, framing: Framing) -> Result<StreamSender> {
        StreamSender::with_io(
            FdIo::new(fd, true, FirstWriter::Came),
            message_size,
            framing,
        )
    }

    fn with_io(io: FdIo, message_size: usize, framing: Framing) -> Result<StreamSender> {
        if framing == Framing::Packets {
            sys::set_packet_mode(io.fd.as_fd()).map_err(|e| Error::io("fcntl O_DIRECT", e))?;
        }
        Ok(StreamSender {
            io,
            writer: StreamWriter::new(framing, message_size),
        })
    }

    /// The descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.io.fd.as_fd()
    }

    /// Completes a message that an earlier timed-out send left half written (a frame as an
    /// aborted frame, which the receiver drops; a line or raw bytes as themselves), waiting as
    /// `wait` allows; then returns the descriptor.
    pub fn into_fd(mut self, wait: Wait) -> Result<OwnedFd> {
        self.writer.settle(&mut self.io, wait)?;
        self.io.restore_blocking()?;
        // A duplicate shares the open file (flags, locks), and lets `Drop` stay simple.
        self.io.fd.try_clone().map_err(|e| Error::io("dup pipe", e))
    }
}

/// How long a dropped sender waits to finish a line (or raw bytes) that a deadline cut short.
const DROP_SETTLE: std::time::Duration = std::time::Duration::from_secs(5);

impl Drop for StreamSender {
    /// A frame cut short is withdrawn by its truncation (the receiver drops it at end of
    /// stream), but a line or raw bytes cut short were reported sent and cannot be withdrawn:
    /// their rest is written, within `DROP_SETTLE` (5 s), so the receiver does not get them
    /// torn.
    fn drop(&mut self) {
        if self.writer.owes_delivery() {
            let _ = self.writer.settle(&mut self.io, Wait::timeout(DROP_SETTLE));
        }
    }
}

impl Sender for StreamSender {
    fn max_message_size(&self) -> usize {
        self.writer.max_message_size()
    }

    fn send_with(&mut self, msg: &[u8], wait: Wait) -> Result<()> {
        self.writer.send(&mut self.io, msg, wait)
    }

    /// Frames go many to a `writev` of at most `PIPE_BUF` bytes, atomic like single frames.
    fn send_batch(&mut self, msgs: &[&[u8]], wait: Wait) -> Result<usize> {
        self.writer.send_batch(&mut self.io, msgs, wait)
    }

    fn try_send_part(&mut self, msg: &[u8], resume: bool) -> Result<()> {
        self.writer.send_part(&mut self.io, msg, resume)
    }

    fn readiness(&mut self) -> Option<&mut dyn Readiness> {
        Some(self)
    }
}

impl AsFd for StreamSender {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.fd.as_fd()
    }
}

/// The pipe's descriptor, writable when there is room (or `POLLERR` once no reader is left).
impl Readiness for StreamSender {
    fn ready_fd(&mut self) -> Result<(BorrowedFd<'_>, Interest)> {
        Ok((self.io.fd.as_fd(), Interest::Writable))
    }

    /// Never "retry now": whatever would let a send on, the descriptor shows.
    fn prepare_wait(&mut self) -> Result<bool> {
        Ok(false)
    }

    fn after_wake(&mut self) {}
}

/// Receives framed messages from the read end of a pipe or FIFO.
#[derive(Debug)]
pub struct StreamReceiver {
    io: FdIo,
    reader: StreamReader,
}

impl StreamReceiver {
    /// Reads messages of up to `message_size` bytes from `fd`, a pipe's read end, in
    /// `framing`.
    pub fn new(fd: OwnedFd, message_size: usize, framing: Framing) -> StreamReceiver {
        StreamReceiver {
            io: FdIo::new(fd, false, FirstWriter::Came),
            reader: StreamReader::new(framing, message_size),
        }
    }

    /// Waits for data as `wait` says before sleeping in the kernel (see
    /// [`PipeConfig::wait`](crate::PipeConfig::wait)); `park` unless set.
    pub fn with_wait(mut self, wait: WaitStrategy) -> StreamReceiver {
        self.io.wait = wait;
        self
    }

    /// Reads from a FIFO this process opened before any writer came: its open file is ours
    /// alone, and end of file is not taken for a disconnection until a writer has come.
    ///
    /// `watch`, made on the FIFO's path before it was opened, tells of the first writer
    /// without polling the FIFO, which would slow every later write (see [`WriterWatch`]);
    /// without one, the first receive waits for it in `poll`.
    pub fn new_fifo(
        fd: OwnedFd,
        message_size: usize,
        framing: Framing,
        watch: Option<WriterWatch>,
    ) -> StreamReceiver {
        StreamReceiver {
            io: FdIo::new(
                fd,
                true,
                watch.map_or(FirstWriter::Polled, FirstWriter::Watched),
            ),
            reader: StreamReader::new(framing, message_size),
        }
    }

    /// The descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.io.fd.as_fd()
    }

    /// Returns the descriptor, or `Incompatible` if messages were already read ahead into this
    /// receiver's buffer (they would be lost).
    pub fn into_fd(mut self) -> Result<OwnedFd> {
        match self.reader.buffered() {
            0 => {
                self.io.restore_blocking()?;
                Ok(self.io.fd)
            }
            n => Err(Error::Incompatible {
                object: "pipe receiver".into(),
                reason: format!(
                    "{n} bytes already read ahead would be lost; hand it over before receiving"
                ),
            }),
        }
    }
}

impl Receiver for StreamReceiver {
    fn max_message_size(&self) -> usize {
        self.reader.max_message_size()
    }

    fn recv_with(&mut self, buf: &mut [u8], wait: Wait) -> Result<usize> {
        self.reader.recv(&mut self.io, buf, wait)
    }

    fn readiness(&mut self) -> Option<&mut dyn Readiness> {
        Some(self)
    }
}

impl AsFd for StreamReceiver {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.io.fd.as_fd()
    }
}

/// The pipe's descriptor, readable when data is there or the last writer has gone.
impl Readiness for StreamReceiver {
    fn ready_fd(&mut self) -> Result<(BorrowedFd<'_>, Interest)> {
        Ok((self.io.fd.as_fd(), Interest::Readable))
    }

    /// "Retry now" only when a whole message (frame or line) was already read ahead into the
    /// buffer (the pipe no longer shows it); else the descriptor shows whatever lets a receive
    /// on. A raw receiver reads nothing ahead.
    fn prepare_wait(&mut self) -> Result<bool> {
        Ok(self.reader.next_is_buffered())
    }

    fn after_wake(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lens(bufs: &[IoSlice<'_>]) -> Vec<usize> {
        bufs.iter().map(|b| b.len()).collect()
    }

    #[test]
    fn a_large_frame_is_written_two_pages_at_a_time_and_a_small_one_whole() {
        let header = [0u8; 64];
        let payload = vec![1u8; 100_000];
        let trailer = [2u8];
        let frame = [
            IoSlice::new(&header),
            IoSlice::new(&payload),
            IoSlice::new(&trailer),
        ];
        let mut room = [IoSlice::new(&[]); 3];
        let first = first_chunk(&frame, &mut room);
        assert_eq!(lens(first), [64, WRITE_CHUNK - 64]);
        assert_eq!(&first[1][..], &payload[..WRITE_CHUNK - 64]);

        // The rest of a frame from inside its payload: payload, then the trailer once it fits.
        let rest = [IoSlice::new(&payload[99_000..]), IoSlice::new(&trailer)];
        let mut room = [IoSlice::new(&[]); 3];
        assert_eq!(lens(first_chunk(&rest, &mut room)), [1000, 1]);

        // Up to WRITE_CHUNK (so every frame of up to PIPE_BUF, and every batch) goes as it is.
        let whole = [
            IoSlice::new(&header),
            IoSlice::new(&payload[..WRITE_CHUNK - 65]),
            IoSlice::new(&trailer),
        ];
        let mut room = [IoSlice::new(&[]); 3];
        assert_eq!(
            lens(first_chunk(&whole, &mut room)),
            [64, WRITE_CHUNK - 65, 1]
        );
        let many: Vec<IoSlice<'_>> = (0..192).map(|_| IoSlice::new(&header[..21])).collect();
        let mut room = [IoSlice::new(&[]); 3];
        assert_eq!(first_chunk(&many, &mut room).len(), 192);
    }
}
