//! System V message queues: ours is `ipc::sysv::msg`, the baseline plain blocking `msgsnd` /
//! `msgrcv` (type 1, any type) on queues made with `msgget`. Both get the same queues: mode
//! 0600, `msg_qbytes` = the most messages of the size measured that fit in `kernel.msgmnb`.
//!
//! The parent creates both queues of a link (key `0x6b<pid><n>`, exclusively, one each way)
//! before it starts the peer, which only opens them (`create=never`), and removes them when
//! the link is done, also on the way out of a failure ([`Made`]) or an interrupt.
//!
//! A queue is no connection: neither side sees the other leave. So the parent ends its stream
//! with an empty message ([`Link::ended_by_empty_message`]), and a watcher thread speaks
//! for the peer once it has exited, whatever way it exited, so that the parent never waits for
//! a dead peer.

use ipc::sysv::Key;
use ipc::sysv::msg::raw::{self, MsgBuf};
use ipc::sysv::msg::{MsgLimits, MsgReceiver, MsgSender};
use ipc::{Receiver, Sender, TransportSpec, Wait};
use nix::errno::Errno;
use nix::libc;

use crate::interrupt::{self, Named};
use crate::made::Made;
use crate::protocol::Variant;
use crate::transport::{BenchTransport, Ends, Link, Setup};

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

    fn connect(&self, setup: Setup<'_>) -> ipc::Result<Link> {
        let (variant, size, mut cmd) = (setup.variant, setup.size, setup.cmd);
        let capacity = (MsgLimits::read().msgmnb / size.max(1) as u64).max(1);
        let qbytes = capacity * size.max(1) as u64;
        let mut queues = Made::default();
        let mut ids = [0; 2];
        let to_peer_key = fresh_key();
        let from_peer_key = fresh_key();
        let (to_peer, from_peer): (Box<dyn Sender>, Box<dyn Receiver>) = match variant {
            Variant::Ours => {
                let spec = |key: i32, create: &str| {
                    format!(
                        "sysv-mq:key={:#x}?capacity={capacity}&message_size={size}&create={create}",
                        key as u32
                    )
                };
                let to_peer = MsgSender::open(&spec(to_peer_key, "always").parse()?)?;
                ids[0] = to_peer.msqid();
                queues.created(Named::SysvQueue(ids[0]));
                let mut from_peer = MsgReceiver::open(&spec(from_peer_key, "always").parse()?)?;
                ids[1] = from_peer.msqid();
                queues.created(Named::SysvQueue(ids[1]));
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
                ids[0] = to_peer;
                queues.created(Named::SysvQueue(to_peer));
                let from_peer = create(from_peer_key)?;
                ids[1] = from_peer;
                queues.created(Named::SysvQueue(from_peer));
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
        let act = speak_for_peer(ids[0], ids[1], size);
        queues.link(to_peer, from_peer, cmd, "sysv-mq", act)
    }

    fn open_raw_peer(&self, size: usize, rx: &str, tx: &str) -> ipc::Result<Ends> {
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

/// A key no other queue of this process gets: `0x6b<pid:16 bits><n:8 bits>`. Creation is
/// exclusive: a collision (with a leftover, or a process whose pid shares the low bits)
/// fails the run instead of sharing a queue.
fn fresh_key() -> i32 {
    let n = interrupt::serial() & 0xff;
    ((0x6b << 24) | ((std::process::id() & 0xffff) << 8) | n) as i32
}

/// What the watcher does for the peer once it has exited ([`watch`]), on the link's first
/// queue (to the peer) and second (from the peer), both with `IPC_NOWAIT`:
///
/// - sends an empty message to the parent, which ends whatever receive it waits in (the
///   stream's end, see [`Link::ended_by_empty_message`]);
/// - keeps emptying the queue to the peer, so that a send blocked on it returns.
fn speak_for_peer(to_peer: i32, from_peer: i32, size: usize) -> impl FnMut() -> bool + Send {
    let mut told = false;
    let mut empty = MsgBuf::new(0);
    let _ = empty.fill(MTYPE, &[]);
    let mut buf = MsgBuf::new(size);
    move || {
        // Until there is room, which there is at once: the queue to the parent holds at most
        // one message (an echo, or the count), and the parent reads it.
        told = told
            || raw::send(from_peer, &empty, 0, libc::IPC_NOWAIT).map_err(|e| e.raw_os_error())
                != Err(Some(Errno::EAGAIN as i32));
        // Whatever is there goes, whatever its size.
        let flags = libc::IPC_NOWAIT | libc::MSG_NOERROR;
        while raw::recv(to_peer, &mut buf, size, 0, flags).is_ok() {}
        true
    }
}
