//! POSIX message queues: ours is `ipc::posix::mq`, the baseline plain blocking `mq_send` /
//! `mq_receive` on queues made with `mq_open`. Both get the same queues (`/ipc-bench-<pid>-<n>`):
//! capacity `fs.mqueue.msg_max`, message size the size measured, mode 0600. The link itself is
//! the queue family's ([`crate::queue`]).

use ipc::posix::mq::MqLimits;
use ipc::{Address, Receiver, Sender, TransportSpec, Wait};
use nix::errno::Errno;
use nix::mqueue::{
    MQ_OFlag, MqAttr, MqdT, mq_attr_member_t, mq_close, mq_getattr, mq_open, mq_receive, mq_send,
};
use nix::sys::stat::Mode;

use crate::interrupt::{self, Named};
use crate::queue::{Act, QueueKind};
use crate::transport::Ends;

pub struct PosixMq;

impl QueueKind for PosixMq {
    fn scheme(&self) -> &'static str {
        "posix-mq"
    }

    fn unsupported(&self, size: usize) -> Option<String> {
        let max = MqLimits::read().msgsize_max;
        (size as u64 > max).then(|| format!("message_size above fs.mqueue.msgsize_max {max}"))
    }

    fn capacity(&self, _size: usize) -> u64 {
        MqLimits::read().msg_max
    }

    fn fresh(&self) -> String {
        interrupt::fresh_name("/ipc-bench")
    }

    fn create_raw(&self, address: &str, capacity: u64, size: usize) -> ipc::Result<Named> {
        let attr = MqAttr::new(0, attr_member(capacity)?, attr_member(size)?, 0);
        let oflag = MQ_OFlag::O_RDWR | MQ_OFlag::O_CREAT | MQ_OFlag::O_EXCL;
        drop(open_queue(address, oflag, Some(&attr))?);
        self.named(address)
    }

    fn named(&self, address: &str) -> ipc::Result<Named> {
        Ok(Named::Queue(address.to_owned()))
    }

    fn raw_ends(&self, _size: usize, rx: &str, tx: &str) -> ipc::Result<Ends> {
        let rx = open_queue(&name(rx)?, MQ_OFlag::O_RDONLY, None)?;
        let tx = open_queue(&name(tx)?, MQ_OFlag::O_WRONLY, None)?;
        Ok((
            Box::new(RawMqReceiver::new(rx)?),
            Box::new(RawMqSender::new(tx)?),
        ))
    }

    /// Sends the empty message until there is room, which there is at once: the queue to
    /// this process holds at most one message (an echo, or the count), and it is read.
    fn speak_for_peer(&self, to_peer: &str, from_peer: &str, size: usize) -> ipc::Result<Act> {
        let to_peer = open_queue(to_peer, MQ_OFlag::O_RDONLY | MQ_OFlag::O_NONBLOCK, None)?;
        let from_peer = open_queue(from_peer, MQ_OFlag::O_WRONLY | MQ_OFlag::O_NONBLOCK, None)?;
        let mut told = false;
        let mut buf = vec![0; size];
        let mut prio = 0;
        Ok(Box::new(move || {
            told = told || mq_send(from_peer.mqd(), &[], 0) != Err(Errno::EAGAIN);
            while mq_receive(to_peer.mqd(), &mut buf, &mut prio).is_ok() {}
            true
        }))
    }
}

fn name(spec: &str) -> ipc::Result<String> {
    match spec.parse::<TransportSpec>()?.address {
        Address::Name(name) => Ok(name),
        _ => Err(ipc::Error::invalid_spec(spec, "expected `posix-mq:/name`")),
    }
}

fn attr_member(n: impl TryInto<mq_attr_member_t>) -> ipc::Result<mq_attr_member_t> {
    n.try_into().map_err(|_| ipc::Error::LimitExceeded {
        what: "mq_attr member".into(),
        limit: mq_attr_member_t::MAX as u64,
    })
}

/// `mq_open` with the creation mode 0600 and close-on-exec (only the peer's own ends should
/// be open in the peer).
fn open_queue(name: &str, oflag: MQ_OFlag, attr: Option<&MqAttr>) -> ipc::Result<Queue> {
    let mode = Mode::S_IRUSR | Mode::S_IWUSR;
    mq_open(name, oflag | MQ_OFlag::O_CLOEXEC, mode, attr)
        .map(Queue::new)
        .map_err(|e| ipc::Error::from_os("mq_open", &format!("posix-mq:{name}"), e.into()))
}

/// An open queue descriptor, closed when dropped (nix's [`MqdT`] is not).
struct Queue(Option<MqdT>);

impl Queue {
    fn new(mqd: MqdT) -> Queue {
        Queue(Some(mqd))
    }

    fn mqd(&self) -> &MqdT {
        self.0
            .as_ref()
            .expect("a queue descriptor is only taken when dropped")
    }

    /// The queue's `mq_msgsize`, which a receiver's buffer must hold.
    fn message_size(&self) -> ipc::Result<usize> {
        let attr = mq_getattr(self.mqd()).map_err(|e| ipc::Error::io("mq_getattr", e.into()))?;
        Ok(usize::try_from(attr.msgsize()).unwrap_or(0))
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        if let Some(mqd) = self.0.take() {
            let _ = mq_close(mqd);
        }
    }
}

/// The baseline's sending end: one blocking `mq_send` per message, nothing else.
///
/// It implements our `Sender` only so that the workloads run unchanged on both.
struct RawMqSender {
    queue: Queue,
    message_size: usize,
}

impl RawMqSender {
    fn new(queue: Queue) -> ipc::Result<RawMqSender> {
        let message_size = queue.message_size()?;
        Ok(RawMqSender {
            queue,
            message_size,
        })
    }
}

impl Sender for RawMqSender {
    fn max_message_size(&self) -> usize {
        self.message_size
    }

    /// Blocks regardless of `wait`: the bench only ever blocks.
    fn send_with(&mut self, msg: &[u8], _wait: Wait) -> ipc::Result<()> {
        loop {
            match mq_send(self.queue.mqd(), msg, 0) {
                Ok(()) => return Ok(()),
                Err(Errno::EINTR) => {}
                Err(e) => return Err(ipc::Error::io("mq_send", e.into())),
            }
        }
    }
}

/// The baseline's receiving end: one blocking `mq_receive` per message into the caller's
/// buffer (which must hold the queue's message size, as the kernel wants).
struct RawMqReceiver {
    queue: Queue,
    message_size: usize,
}

impl RawMqReceiver {
    fn new(queue: Queue) -> ipc::Result<RawMqReceiver> {
        // The workloads size their receive buffers by this.
        let message_size = queue.message_size()?;
        Ok(RawMqReceiver {
            queue,
            message_size,
        })
    }
}

impl Receiver for RawMqReceiver {
    fn max_message_size(&self) -> usize {
        self.message_size
    }

    /// Blocks regardless of `wait`: the bench only ever blocks.
    fn recv_with(&mut self, buf: &mut [u8], _wait: Wait) -> ipc::Result<usize> {
        let mut prio = 0;
        loop {
            match mq_receive(self.queue.mqd(), buf, &mut prio) {
                Ok(len) => return Ok(len),
                Err(Errno::EINTR) => {}
                Err(Errno::EMSGSIZE) => {
                    return Err(ipc::Error::BufferTooSmall {
                        len: buf.len(),
                        needed: self.message_size,
                    });
                }
                Err(e) => return Err(ipc::Error::io("mq_receive", e.into())),
            }
        }
    }
}
