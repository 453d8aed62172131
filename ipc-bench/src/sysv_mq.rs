//! System V message queues: ours is `ipc::sysv::msg`, the baseline plain blocking `msgsnd` /
//! `msgrcv` (type 1, any type) on queues made with `msgget`. Both get the same queues (key
//! `0x6b<pid><n>`, exclusively): mode 0600, `msg_qbytes` = the most messages of the size
//! measured that fit in `kernel.msgmnb`. The link itself is the queue family's
//! ([`crate::queue`]).

use ipc::sysv::Key;
use ipc::sysv::msg::MsgLimits;
use ipc::sysv::msg::raw::{self, MsgBuf};
use ipc::{Receiver, Sender, TransportSpec, Wait};
use nix::errno::Errno;
use nix::libc;

use crate::interrupt::{self, Named};
use crate::queue::{Act, QueueKind};
use crate::transport::Ends;

pub struct SysvMq;

/// The type of every message of the bench.
const MTYPE: i64 = 1;

impl QueueKind for SysvMq {
    fn scheme(&self) -> &'static str {
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

    fn capacity(&self, size: usize) -> u64 {
        (MsgLimits::read().msgmnb / size.max(1) as u64).max(1)
    }

    /// `key=0x6b<pid:16 bits><n:8 bits>`. Creation is exclusive: a collision (with a
    /// leftover, or a process whose pid shares the low bits) fails the run instead of sharing
    /// a queue.
    fn fresh(&self) -> String {
        let n = interrupt::serial() & 0xff;
        format!(
            "key={:#x}",
            (0x6b << 24) | ((std::process::id() & 0xffff) << 8) | n
        )
    }

    fn create_raw(&self, address: &str, capacity: u64, size: usize) -> ipc::Result<Named> {
        let key = key_of(address)?;
        let id = raw::get(key, libc::IPC_CREAT | libc::IPC_EXCL | 0o600)
            .map_err(|e| ipc::Error::from_os("msgget", &format!("sysv-mq:{address}"), e))?;
        let named = Named::SysvQueue(id);
        raw::set_qbytes(id, capacity * size.max(1) as u64)
            .map_err(|e| ipc::Error::io("msgctl IPC_SET msg_qbytes", e))?;
        Ok(named)
    }

    fn named(&self, address: &str) -> ipc::Result<Named> {
        Ok(Named::SysvQueue(open_existing(&format!(
            "sysv-mq:{address}"
        ))?))
    }

    fn raw_ends(&self, size: usize, rx: &str, tx: &str) -> ipc::Result<Ends> {
        Ok((
            Box::new(RawMsgReceiver::new(open_existing(rx)?, size)),
            Box::new(RawMsgSender::new(open_existing(tx)?, size)),
        ))
    }

    /// Both queues with `IPC_NOWAIT`; the empty message is sent until there is room, which
    /// there is at once: the queue to this process holds at most one message (an echo, or
    /// the count), and it is read.
    fn speak_for_peer(&self, to_peer: &str, from_peer: &str, size: usize) -> ipc::Result<Act> {
        let to_peer = open_existing(&format!("sysv-mq:{to_peer}"))?;
        let from_peer = open_existing(&format!("sysv-mq:{from_peer}"))?;
        let mut told = false;
        let mut empty = MsgBuf::new(0);
        let _ = empty.fill(MTYPE, &[]);
        let mut buf = MsgBuf::new(size);
        Ok(Box::new(move || {
            told = told
                || raw::send(from_peer, &empty, 0, libc::IPC_NOWAIT).map_err(|e| e.raw_os_error())
                    != Err(Some(Errno::EAGAIN as i32));
            // Whatever is there goes, whatever its size.
            let flags = libc::IPC_NOWAIT | libc::MSG_NOERROR;
            while raw::recv(to_peer, &mut buf, size, 0, flags).is_ok() {}
            true
        }))
    }
}

fn key_of(address: &str) -> ipc::Result<i32> {
    let spec = format!("sysv-mq:{address}").parse::<TransportSpec>()?;
    Key::from_address(&spec.address)?.resolve()
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
