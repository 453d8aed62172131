//! System V message queues: ours is `ipc::sysv::msg`, the baseline plain blocking `msgsnd` /
//! `msgrcv` (type 1, any type) on queues made with `msgget`. Both get the same queues: mode
//! 0600, `msg_qbytes` = the most messages of the size measured that fit in `kernel.msgmnb`.
//!
//! The parent creates both queues of a link (key `0x6b<pid><n>`, exclusively, one each way)
//! before it starts the peer, which only opens them (`create=never`), and removes them when
//! the link is done, also on the way out of a failure ([`Queues`]) or an interrupt.
//!
//! A queue is no connection: neither side sees the other leave. So the parent ends its stream
//! with an empty message ([`Link::ended_by_empty_message`]), and a [`Watcher`] thread speaks
//! for the peer once it has exited, whatever way it exited, so that the parent never waits for
//! a dead peer.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread;
use std::time::Duration;

use ipc::sysv::Key;
use ipc::sysv::msg::raw::{self, MsgBuf};
use ipc::sysv::msg::{MsgLimits, MsgReceiver, MsgSender};
use ipc::{Receiver, Sender, TransportSpec, Wait};
use nix::errno::Errno;
use nix::libc;
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;

use crate::interrupt::{self, Named};
use crate::protocol::Variant;
use crate::transport::{BenchTransport, Link, Peer, Scratch};

pub struct SysvMq;

/// The type of every message of the bench.
const MTYPE: i64 = 1;

impl BenchTransport for SysvMq {
    fn name(&self) -> &'static str {
        "sysv-mq"
    }

    fn unsupported(&self, size: usize) -> Option<String> {
        let limits = MsgLimits::read();
        if size as u64 > limits.msgmax {
            Some(format!(
                "message_size above kernel.msgmax {}",
                limits.msgmax
            ))
        } else if size as u64 > limits.msgmnb {
            Some(format!(
                "message_size above kernel.msgmnb {}",
                limits.msgmnb
            ))
        } else {
            None
        }
    }

    fn connect(
        &self,
        variant: Variant,
        size: usize,
        _scratch: &Scratch,
        mut cmd: Command,
    ) -> ipc::Result<Link> {
        let capacity = (MsgLimits::read().msgmnb / size.max(1) as u64).max(1);
        let qbytes = capacity * size.max(1) as u64;
        let mut queues = Queues::new();
        let to_peer_key = Queues::fresh_key();
        let from_peer_key = Queues::fresh_key();
        let (to_peer, from_peer): (Box<dyn Sender>, Box<dyn Receiver>) = match variant {
            Variant::Ours => {
                let spec = |key: i32, create: &str| {
                    format!(
                        "sysv-mq:key={:#x}?capacity={capacity}&message_size={size}&create={create}",
                        key as u32
                    )
                };
                let to_peer = MsgSender::open(&spec(to_peer_key, "always").parse()?)?;
                queues.created(to_peer.msqid());
                let mut from_peer = MsgReceiver::open(&spec(from_peer_key, "always").parse()?)?;
                queues.created(from_peer.msqid());
                // Removed by `queues` once the peer is done, not by the receiver when it goes.
                from_peer.release_queue();
                cmd.arg("--rx").arg(spec(to_peer_key, "never"));
                cmd.arg("--tx").arg(spec(from_peer_key, "never"));
                (Box::new(to_peer), Box::new(from_peer))
            }
            Variant::Raw => {
                let create = |key: i32| -> ipc::Result<i32> {
                    let id =
                        raw::get(key, libc::IPC_CREAT | libc::IPC_EXCL | 0o600).map_err(|e| {
                            ipc::Error::from_os(
                                "msgget",
                                &format!("sysv-mq:key={:#x}", key as u32),
                                e,
                            )
                        })?;
                    Ok(id)
                };
                let to_peer = create(to_peer_key)?;
                queues.created(to_peer);
                let from_peer = create(from_peer_key)?;
                queues.created(from_peer);
                for id in [to_peer, from_peer] {
                    raw::set_qbytes(id, qbytes)
                        .map_err(|e| ipc::Error::io("msgctl IPC_SET msg_qbytes", e))?;
                }
                cmd.arg("--rx")
                    .arg(format!("sysv-mq:key={:#x}", to_peer_key as u32));
                cmd.arg("--tx")
                    .arg(format!("sysv-mq:key={:#x}", from_peer_key as u32));
                (
                    Box::new(RawMsgSender::new(to_peer, size)),
                    Box::new(RawMsgReceiver::new(from_peer, size)),
                )
            }
        };
        let watcher = Watcher::new(&queues, size);
        let peer = Peer::spawn(cmd)?;
        watcher.start(&peer)?;
        Ok(Link::new(to_peer, from_peer, peer)
            .ended_by_empty_message()
            .keeping(queues))
    }

    fn open_raw_peer(
        &self,
        size: usize,
        rx: &str,
        tx: &str,
    ) -> ipc::Result<(Box<dyn Receiver>, Box<dyn Sender>)> {
        Ok((
            Box::new(RawMsgReceiver::new(open_existing(rx)?, size)),
            Box::new(RawMsgSender::new(open_existing(tx)?, size)),
        ))
    }
}

/// The id of the existing queue `spec` (`sysv-mq:key=N`) names.
fn open_existing(spec: &str) -> ipc::Result<i32> {
    let key = Key::from_address(&spec.parse::<TransportSpec>()?.address)?;
    raw::get(key.resolve()?, 0).map_err(|e| ipc::Error::from_os("msgget", spec, e))
}

/// The baseline's sending end: one blocking `msgsnd` per message, nothing else (the message
/// is put behind its type in the `msgbuf` first, as any caller of `msgsnd` must).
///
/// It implements our `Sender` only so that the workloads run unchanged on both.
struct RawMsgSender {
    msqid: i32,
    buf: MsgBuf,
}

impl RawMsgSender {
    fn new(msqid: i32, size: usize) -> RawMsgSender {
        RawMsgSender {
            msqid,
            buf: MsgBuf::new(size),
        }
    }
}

impl Sender for RawMsgSender {
    fn max_message_size(&self) -> usize {
        self.buf.capacity()
    }

    /// Blocks regardless of `wait`: the bench only ever blocks.
    fn send_with(&mut self, msg: &[u8], _wait: Wait) -> ipc::Result<()> {
        self.buf
            .fill(MTYPE, msg)
            .ok_or(ipc::Error::MessageTooLarge {
                len: msg.len(),
                max: self.buf.capacity(),
            })?;
        loop {
            match raw::send(self.msqid, &self.buf, msg.len(), 0) {
                Ok(()) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(Errno::EINTR as i32) => {}
                Err(e) => return Err(ipc::Error::io("msgsnd", e)),
            }
        }
    }
}

/// The baseline's receiving end: one blocking `msgrcv` (any type) per message into its
/// `msgbuf`, then the text to the caller's buffer.
struct RawMsgReceiver {
    msqid: i32,
    buf: MsgBuf,
}

impl RawMsgReceiver {
    fn new(msqid: i32, size: usize) -> RawMsgReceiver {
        RawMsgReceiver {
            msqid,
            buf: MsgBuf::new(size),
        }
    }
}

impl Receiver for RawMsgReceiver {
    fn max_message_size(&self) -> usize {
        self.buf.capacity()
    }

    /// Blocks regardless of `wait`: the bench only ever blocks.
    fn recv_with(&mut self, out: &mut [u8], _wait: Wait) -> ipc::Result<usize> {
        loop {
            match raw::recv(self.msqid, &mut self.buf, out.len(), 0, 0) {
                Ok(len) => {
                    out[..len].copy_from_slice(self.buf.text(len));
                    return Ok(len);
                }
                Err(e) if e.raw_os_error() == Some(Errno::EINTR as i32) => {}
                Err(e) if e.raw_os_error() == Some(Errno::E2BIG as i32) => {
                    return Err(ipc::Error::BufferTooSmall {
                        len: out.len(),
                        needed: self.buf.capacity(),
                    });
                }
                Err(e) => return Err(ipc::Error::io("msgrcv", e)),
            }
        }
    }
}

/// The queues of one link, removed (`IPC_RMID` by id) when dropped: with the link, after its
/// peer was waited for, or with a `connect` that failed half way. Also tells the link's
/// [`Watcher`] to stop.
struct Queues {
    ids: Vec<i32>,
    done: Arc<AtomicBool>,
}

impl Queues {
    fn new() -> Queues {
        Queues {
            ids: Vec::new(),
            done: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A key no other queue of this process gets: `0x6b<pid:16 bits><n:8 bits>`. Creation is
    /// exclusive: a collision (with a leftover, or a process whose pid shares the low bits)
    /// fails the run instead of sharing a queue.
    fn fresh_key() -> i32 {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed) & 0xff;
        ((0x6b << 24) | ((std::process::id() & 0xffff) << 8) | n) as i32
    }

    /// Takes the queue `msqid` in charge. Only once we created it: a queue we failed to
    /// create (it existed) is not ours to remove.
    fn created(&mut self, msqid: i32) {
        self.ids.push(msqid);
        interrupt::track(Named::SysvQueue(msqid));
    }
}

impl Drop for Queues {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Release);
        for &id in &self.ids {
            let _ = ipc::sysv::msg::remove(id);
            interrupt::untrack(&Named::SysvQueue(id));
        }
    }
}

/// How often a watcher whose peer has exited drains the queue to the peer.
const DRAIN_PERIOD: Duration = Duration::from_millis(5);

/// Speaks for the peer once it has exited, so that the parent is never left waiting on a
/// queue nobody serves (a pipe would tell it with end of file or `EPIPE`):
///
/// - sends an empty message to the parent, which ends whatever receive it waits in (the
///   stream's end, see [`Link::ended_by_empty_message`]);
/// - keeps emptying the queue to the peer, so that a send blocked on it returns.
///
/// Both with `IPC_NOWAIT`, and only after the peer exited: it takes no part in the measured
/// runs. It stops once the link's [`Queues`] are dropped.
struct Watcher {
    to_peer: i32,
    from_peer: i32,
    size: usize,
    done: Arc<AtomicBool>,
}

impl Watcher {
    /// The queues are the link's first (to the peer) and second (from the peer).
    fn new(queues: &Queues, size: usize) -> Watcher {
        Watcher {
            to_peer: queues.ids[0],
            from_peer: queues.ids[1],
            size,
            done: Arc::clone(&queues.done),
        }
    }

    fn start(self, peer: &Peer) -> ipc::Result<()> {
        let pid = Pid::from_raw(i32::try_from(peer.id()).unwrap_or(i32::MAX));
        thread::Builder::new()
            .name("bench-sysv-mq-watcher".into())
            .spawn(move || self.run(pid))
            .map(drop)
            .map_err(|e| ipc::Error::io("starting the bench's queue watcher thread", e))
    }

    fn run(self, peer: Pid) {
        // WNOWAIT: the peer stays to be reaped by `Link::finish`. Any error (ECHILD: already
        // reaped) also means the peer is gone.
        while let Err(Errno::EINTR) =
            waitid(Id::Pid(peer), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)
        {}
        let mut told = false;
        let mut empty = MsgBuf::new(0);
        let _ = empty.fill(MTYPE, &[]);
        let mut buf = MsgBuf::new(self.size);
        while !self.done.load(Ordering::Acquire) {
            // Until there is room, which there is at once: the queue to the parent holds at
            // most one message (an echo, or the count), and the parent reads it.
            told = told
                || raw::send(self.from_peer, &empty, 0, libc::IPC_NOWAIT)
                    .map_err(|e| e.raw_os_error())
                    != Err(Some(Errno::EAGAIN as i32));
            while raw::recv(
                self.to_peer,
                &mut buf,
                self.size,
                0,
                // Whatever is there goes, whatever its size.
                libc::IPC_NOWAIT | libc::MSG_NOERROR,
            )
            .is_ok()
            {}
            thread::sleep(DRAIN_PERIOD);
        }
    }
}
