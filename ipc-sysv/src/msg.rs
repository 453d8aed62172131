//! System V message queues as a transport: `sysv-mq:key=0x1234?capacity=N&message_size=B`.
//!
//! The kernel keeps message boundaries and a type (`mtype`) per message, so messages are not
//! framed: a C program using `msgsnd` / `msgrcv` on the same key interoperates (the trait's
//! [`Sender::send`] sends type [`SEND_TYPE`] = 1, [`Receiver::recv`] takes any type).
//!
//! ```
//! use ipc_core::{Receiver, Sender, TransportSpec, Wait};
//! use ipc_sysv::msg::{MsgReceiver, MsgSender, Selector};
//!
//! # fn main() -> Result<(), ipc_core::Error> {
//! # let key = 0x4d00_0000 | (std::process::id() as i32 & 0xffff);
//! let spec: TransportSpec = format!("sysv-mq:key={key:#x}?capacity=4&message_size=64").parse()?;
//! let mut rx = MsgReceiver::open(&spec)?; // creates the queue, mode 0600
//! let mut tx = MsgSender::open(&spec)?;   // opens it (after checking owner and mode)
//! tx.send_type(b"for 7", 7, Wait::Never)?;
//! tx.send(b"plain")?; // type 1
//! let mut buf = [0; 64];
//! let (n, mtype) = rx.recv_type(&mut buf, Selector::Exactly(7), Wait::Never)?;
//! assert_eq!((&buf[..n], mtype), (&b"for 7"[..], 7));
//! # Ok(())
//! # } // dropping rx removes the queue
//! ```
//!
//! # Keys, creation, removal
//!
//! The address is a [`Key`]: `key=N`, `ftok=PATH:PROJ_ID` or `private`. Like `posix-mq`, both
//! ends default to `create=if_missing`: each first tries to create the queue exclusively
//! (`IPC_CREAT | IPC_EXCL`, mode 0600 unless `mode` says otherwise) and only if a queue with
//! that key exists opens it, after checking with `IPC_STAT` that it belongs to us and grants
//! nothing beyond the requested mode (else [`Error::Incompatible`]: a key may have been
//! squatted, or an `ftok` key may collide). `create=always` refuses an existing queue
//! ([`Error::AlreadyExists`]); `create=never` refuses a missing one ([`Error::NotFound`]).
//! `private` always makes a new queue, reachable only through its id ([`MsgReceiver::msqid`],
//! [`MsgSender::open_id`]).
//!
//! A *receiver* that created the queue removes it (`IPC_RMID`) when dropped
//! ([`MsgReceiver::release_queue`] keeps it), and only if the id still names the same queue
//! (same key and creator): never a successor. A sender never removes the queue. [`destroy`]
//! removes a queue by key, [`remove`] by id.
//!
//! # Capacity and limits
//!
//! `capacity` counts messages, as for `posix-mq`: the queue's byte limit (`msg_qbytes`) is set
//! to `capacity × message_size`, so that `capacity` messages of the largest size always fit
//! (the kernel holds more smaller ones: it bounds both the bytes and the number of messages by
//! `msg_qbytes`). Defaults: `message_size` = min(8192, `kernel.msgmax`), `capacity` =
//! `kernel.msgmnb / message_size` (at least 1). Kernel limits are checked before `msgget`, also
//! for privileged processes (who could exceed `msgmnb`), so that what works as root works for
//! everyone: a `message_size` above `kernel.msgmax` or a queue above `kernel.msgmnb` bytes is
//! [`Error::LimitExceeded`] naming the sysctl and its value; too many queues is
//! `kernel.msgmni`. A `message_size` above `i32::MAX`, which no `kernel.msgmax` allows, is
//! [`Error::InvalidSpec`]. An existing queue is opened with the `message_size` asked for (default:
//! min(`kernel.msgmax`, its `msg_qbytes`)); if `capacity` is also given, its `msg_qbytes` must
//! be `capacity × message_size`.
//!
//! # Waiting
//!
//! Blocking calls are plain blocking `msgsnd` / `msgrcv` (but see "Event loops" for a
//! receiver whose readiness was used). `try_` calls use `IPC_NOWAIT`
//! (`EAGAIN` / `ENOMSG` are [`Error::Full`] / [`Error::Empty`]). System V has no timed
//! `msgsnd` / `msgrcv`, so `_timeout` calls poll with `IPC_NOWAIT`, sleeping between attempts
//! with an exponential back-off from 50 µs to 2 ms, never past the deadline: a timed call
//! notices a message or room up to 2 ms late, and returns [`Error::Timeout`] no earlier than
//! its deadline (and at most a scheduler tick or so after it). `EINTR` (these calls are never
//! restarted by the kernel, whatever `SA_RESTART` says) is retried, keeping the deadline.
//!
//! # Disconnection
//!
//! A queue has no connection, so a dead peer cannot be seen (as with `posix-mq`): its
//! messages stay queued. What is seen is the queue being removed: a blocked call wakes with
//! `EIDRM`, a later one finds the id invalid, and both are [`Error::Disconnected`].
//!
//! # Event loops
//!
//! A System V queue has no descriptor, so each end makes one for its [`Readiness`], at its
//! first `ready_fd` or `prepare_wait`; an end whose readiness is never asked for costs
//! nothing more.
//!
//! A **receiver** starts a helper thread (64 KiB of stack, all signals blocked) that sleeps in
//! a blocking `msgrcv(msqid, buf, 0, 0, 0)`: room for no text, any type, as
//! [`Receiver::recv`] takes. For a message of non-zero length the kernel answers `E2BIG` and
//! leaves it queued, so the helper learns that a message is there without taking it, signals
//! an `eventfd` (the receiver's readiness descriptor, `Readable`) and waits until the receiver
//! re-arms it in `prepare_wait` before looking again. A message of zero length fits in no
//! text and is taken: the helper keeps it in a one-message slot, which the receiver's next
//! receive delivers first, with its type (for [`Selector::AtMost`], after any lower type still
//! queued, as the kernel would order them). When the queue is removed the helper's `msgrcv`
//! fails (`EIDRM`): it signals and ends, and the next `try_recv` returns
//! [`Error::Disconnected`].
//!
//! What it costs: one thread per receiver that uses readiness, and per wake-up one more thread
//! switch (the helper's `msgrcv` returning, its write to the `eventfd`) before the event loop
//! wakes, a few microseconds; `prepare_wait` takes a mutex and signals a condition variable.
//! The helper looks for a message of any type: a receiver that waits for one type only
//! ([`MsgReceiver::recv_type`] with a selector) is woken by messages of other types too, and
//! woken again at each re-arm while such a message stays queued, so readiness is meant for
//! receivers that take any type. Once readiness was used, `recv` and `recv_timeout` wait
//! through the helper as well (a blocking `msgrcv` of the receiver's own could lose a
//! zero-length message to the helper), and a waiting `recv_type` with a selector polls with the
//! back-off above.
//!
//! When the receiver is dropped the helper is told to stop. A zero-length message it holds goes
//! back on the queue (`msgsnd`, `IPC_NOWAIT`, or from the helper once there is room), **at
//! the back of the queue**, behind messages sent after it. The helper cannot be woken out of
//! `msgrcv` without a signal, so it stays blocked in the kernel until its next wake-up: the
//! next message (which it leaves queued, or gives back if it took it), or the queue's removal
//! (at once if the receiver owned the queue, which its drop removes). Until then it holds
//! nothing but its stack and a few bytes of state; no descriptor.
//!
//! A **sender** cannot learn from the kernel when a full queue gets room, so its readiness is a
//! `timerfd` (`Readable`): `prepare_wait` checks with `IPC_STAT` whether the message last
//! refused would fit now (then "retry now"), and else arms the timer to expire after a
//! back-off of 50 µs, doubling at each wait up to 2 ms (the timed calls' back-off), and back
//! to 50 µs after a message goes. So a sender waiting for room notices it up to 2 ms late once
//! it has waited a few milliseconds, and wakes up to 500 times a second while the queue stays
//! full, with an `IPC_STAT` and a `timerfd_settime` each time. A removed queue is noticed at the
//! next expiry (or at once by `IPC_STAT`), and `try_send` returns `Disconnected`.
//!
//! # Receive buffers
//!
//! `msgrcv` is called with the caller's buffer length and without `MSG_NOERROR`: a longer
//! message is refused by the kernel (`E2BIG`) and stays queued, and the call returns
//! [`Error::BufferTooSmall`] with the message's length, read with `MSG_COPY` (a copy that takes
//! nothing; where the kernel lacks it, `needed` is `kernel.msgmax`, an upper bound).
//!
//! # References
//!
//! `sysvipc(7)`, `msgget(2)`, `msgop(2)`, `msgctl(2)`.

mod ready;

use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use ipc_core::{
    Adoption, Create, Error, Interest, Owner, Readiness, Receiver, Removable, Result, Sender,
    Transport, TransportSpec, Wait,
};

use crate::Key;
use crate::sys::event;
use crate::sys::msg as sys;
use ready::{Helper, RoomTimer};

/// Permissions of a queue we create when the string gives no `mode`.
pub const DEFAULT_MODE: u32 = 0o600;
/// `message_size` when the string gives none (capped at `kernel.msgmax`).
pub const DEFAULT_MESSAGE_SIZE: usize = 8192;
/// The type [`Sender::send`] gives its messages.
pub const SEND_TYPE: i64 = 1;
/// First sleep between two attempts of a timed call.
const BACKOFF_MIN: Duration = Duration::from_micros(50);
/// Longest sleep between two attempts of a timed call.
const BACKOFF_MAX: Duration = Duration::from_millis(2);

/// The kernel limits that bound a System V queue, as read now from `/proc/sys/kernel`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsgLimits {
    /// `kernel.msgmax`: largest message.
    pub msgmax: u64,
    /// `kernel.msgmnb`: default (and, unprivileged, largest) bytes in one queue.
    pub msgmnb: u64,
    /// `kernel.msgmni`: most queues on the system.
    pub msgmni: u64,
}

impl MsgLimits {
    /// Reads the limits (the kernel's defaults where `/proc` cannot be read).
    pub fn read() -> MsgLimits {
        let sysctl = |name: &str, default: u64| {
            ipc_core::sysctl(&format!("kernel.{name}")).unwrap_or(default)
        };
        MsgLimits {
            msgmax: sysctl("msgmax", 8192),
            msgmnb: sysctl("msgmnb", 16384),
            msgmni: sysctl("msgmni", 32000),
        }
    }

    fn message_size_error(&self, asked: u64) -> Error {
        Error::LimitExceeded {
            what: format!("kernel.msgmax (message_size {asked} asked)"),
            limit: self.msgmax,
        }
    }
}

/// Which message [`MsgReceiver::recv_type`] takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selector {
    /// The oldest message, whatever its type (`msgtyp` 0).
    Any,
    /// The oldest message of this type (> 0).
    Exactly(i64),
    /// The oldest message of the lowest type that is at most this (> 0) (`msgtyp` −n).
    AtMost(i64),
}

impl Selector {
    fn msgtyp(self) -> Result<i64> {
        match self {
            Selector::Any => Ok(0),
            Selector::Exactly(n) if n > 0 => Ok(n),
            Selector::AtMost(n) if n > 0 => Ok(-n),
            other => Err(Error::invalid_spec(
                format!("{other:?}"),
                "a message type must be positive",
            )),
        }
    }

    fn takes(self, mtype: i64) -> bool {
        match self {
            Selector::Any => true,
            Selector::Exactly(n) => mtype == n,
            Selector::AtMost(n) => mtype <= n,
        }
    }
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// A queue this process created: what an [`Owner`] guard removes, only while its id still
/// names the queue we made (same key and creator; ids carry a sequence number, so a successor
/// gets another id).
#[derive(Debug)]
pub struct QueueId {
    msqid: i32,
    key: libc::key_t,
    cuid: u32,
    object: String,
}

impl Removable for QueueId {
    fn remove(&self) -> Result<()> {
        let ds = match sys::stat(self.msqid) {
            Ok(ds) => ds,
            // Gone already: nothing of ours to remove.
            Err(e) if matches!(errno(&e), libc::EINVAL | libc::EIDRM) => return Ok(()),
            Err(e) => return Err(Error::from_os("msgctl IPC_STAT", &self.object, e)),
        };
        if ds.msg_perm.__key != self.key || ds.msg_perm.cuid != self.cuid {
            return Err(Error::Incompatible {
                object: self.object.clone(),
                reason: format!("id {} now names another queue, left alone", self.msqid),
            });
        }
        remove(self.msqid)
    }

    fn object_name(&self) -> String {
        self.object.clone()
    }
}

/// Removes the queue with `key` (`IPC_RMID`), whoever made it. Blocked callers get
/// [`Error::Disconnected`]; its messages are gone.
pub fn destroy(key: &Key) -> Result<()> {
    let object = format!("sysv-mq:{key}");
    if *key == Key::Private {
        return Err(Error::invalid_spec(
            object,
            "a private queue has no key: remove it by id",
        ));
    }
    let id = sys::get(key.resolve()?, 0).map_err(|e| Error::from_os("msgget", &object, e))?;
    sys::remove(id).map_err(|e| Error::from_os("msgctl IPC_RMID", &object, e))
}

/// Removes the queue with id `msqid` (`IPC_RMID`), whoever made it.
pub fn remove(msqid: i32) -> Result<()> {
    sys::remove(msqid).map_err(|e| match errno(&e) {
        libc::EINVAL | libc::EIDRM => Error::NotFound {
            object: format!("sysv-mq id {msqid}"),
        },
        _ => Error::from_os("msgctl IPC_RMID", &format!("sysv-mq id {msqid}"), e),
    })
}

/// The bare system calls, in safe wrappers that check only that the kernel stays inside the
/// buffer: no limits, no ownership checks, no retries. For baselines (`ipc bench`) and for
/// interoperating with code that manages its queues itself.
pub mod raw {
    pub use crate::sys::msg::{MsgBuf, get, recv, remove, send, set_qbytes, stat};
}

/// An open queue and what it was opened with.
#[derive(Debug)]
struct Queue {
    msqid: i32,
    object: String,
    message_size: usize,
    qbytes: u64,
    /// Holds the message being sent or received, with its type in front.
    buf: sys::MsgBuf,
    /// Present if this end created the queue: removes it on drop.
    owner: Option<Owner<QueueId>>,
}

/// What a transport string asks of a queue.
struct Request {
    key: Key,
    capacity: Option<u64>,
    message_size: Option<u64>,
    mode: u32,
    /// Which existing queue we accept (owner, group, widest mode).
    adoption: Adoption,
    create: Create,
}

impl Request {
    fn from_spec(spec: &TransportSpec) -> Result<Request> {
        if spec.transport != Transport::SysvMq {
            return Err(Error::invalid_spec(
                spec.to_string(),
                "not a sysv-mq transport string (`sysv-mq:key=N`)",
            ));
        }
        // `kernel.msgmax` is an int: no setting lets a larger message through, and a buffer
        // that size is never worth allocating for an existing queue either.
        if let Some(m) = spec.options.message_size.filter(|m| *m > i32::MAX as u64) {
            return Err(Error::invalid_spec(
                format!("message_size={m}"),
                format!(
                    "a System V message is at most {} bytes (kernel.msgmax is an int)",
                    i32::MAX
                ),
            ));
        }
        let request = Request {
            key: Key::from_address(&spec.address)?,
            capacity: spec.options.capacity,
            message_size: spec.options.message_size,
            mode: spec.options.mode.unwrap_or(DEFAULT_MODE),
            adoption: Adoption::from_options(&spec.options, DEFAULT_MODE)?,
            create: spec.options.create.unwrap_or(Create::IfMissing),
        };
        if request.key == Key::Private && request.create == Create::Never {
            return Err(Error::invalid_spec(
                spec.to_string(),
                "create=never: a private queue can only be made, not opened (open it by id)",
            ));
        }
        Ok(request)
    }

    fn object(&self) -> String {
        format!("sysv-mq:{}", self.key)
    }

    fn open(self) -> Result<Queue> {
        if self.create != Create::Never {
            match self.create_new() {
                Err(Error::AlreadyExists { .. }) if self.create == Create::IfMissing => {}
                other => return other,
            }
        }
        let key = self.key.resolve()?;
        let msqid = sys::get(key, 0).map_err(|e| Error::from_os("msgget", &self.object(), e))?;
        Queue::adopt(
            msqid,
            self.object(),
            &self.adoption,
            self.message_size,
            self.capacity,
        )
    }

    fn create_new(&self) -> Result<Queue> {
        let limits = MsgLimits::read();
        let message_size = self
            .message_size
            .unwrap_or((DEFAULT_MESSAGE_SIZE as u64).min(limits.msgmax));
        if message_size > limits.msgmax {
            return Err(limits.message_size_error(message_size));
        }
        let capacity = self
            .capacity
            .unwrap_or_else(|| (limits.msgmnb / message_size.max(1)).max(1));
        let qbytes = capacity.saturating_mul(message_size.max(1));
        if qbytes > limits.msgmnb {
            return Err(Error::LimitExceeded {
                what: format!(
                    "kernel.msgmnb (a queue of capacity {capacity} × message_size \
                     {message_size} = {qbytes} bytes asked)"
                ),
                limit: limits.msgmnb,
            });
        }
        let key = self.key.resolve()?;
        let flags = libc::IPC_CREAT | libc::IPC_EXCL | (self.mode & 0o777) as libc::c_int;
        let msqid = sys::get(key, flags).map_err(|e| match errno(&e) {
            libc::ENOSPC => Error::LimitExceeded {
                what: "kernel.msgmni (queues on the system)".into(),
                limit: limits.msgmni,
            },
            _ => Error::from_os("msgget", &self.object(), e),
        })?;
        let object = self.object();
        let stat = sys::stat(msqid).map_err(|e| Error::from_os("msgctl IPC_STAT", &object, e));
        let ds = match stat {
            Ok(ds) => ds,
            Err(e) => {
                let _ = sys::remove(msqid);
                return Err(e);
            }
        };
        // From here on, a failure removes the queue through the guard.
        let owner = Owner::new(QueueId {
            msqid,
            key: ds.msg_perm.__key,
            cuid: ds.msg_perm.cuid,
            object: object.clone(),
        });
        if sys::qbytes(&ds) != qbytes {
            sys::set_qbytes(msqid, qbytes)
                .map_err(|e| Error::from_os("msgctl IPC_SET msg_qbytes", &object, e))?;
        }
        Ok(Queue {
            msqid,
            object,
            message_size: message_size as usize,
            qbytes,
            buf: sys::MsgBuf::new(limits.msgmax.max(message_size) as usize),
            owner: Some(owner),
        })
    }
}

impl Queue {
    /// Opens the existing queue `msqid` after checking that we may trust it.
    fn adopt(
        msqid: i32,
        object: String,
        adoption: &Adoption,
        message_size: Option<u64>,
        capacity: Option<u64>,
    ) -> Result<Queue> {
        let incompatible = |reason: String| Error::Incompatible {
            object: object.clone(),
            reason,
        };
        let ds = sys::stat(msqid).map_err(|e| match errno(&e) {
            libc::EINVAL | libc::EIDRM => Error::NotFound {
                object: object.clone(),
            },
            _ => Error::from_os("msgctl IPC_STAT", &object, e),
        })?;
        adoption
            .check(
                ds.msg_perm.uid,
                ds.msg_perm.gid,
                u32::from(ds.msg_perm.mode),
            )
            .map_err(incompatible)?;
        let limits = MsgLimits::read();
        let qbytes = sys::qbytes(&ds);
        let message_size = message_size.unwrap_or(limits.msgmax.min(qbytes));
        if message_size > limits.msgmax {
            return Err(limits.message_size_error(message_size));
        }
        if message_size > qbytes {
            return Err(incompatible(format!(
                "it holds {qbytes} bytes (msg_qbytes), less than message_size {message_size}"
            )));
        }
        if let Some(capacity) = capacity
            && capacity.saturating_mul(message_size) != qbytes
        {
            return Err(incompatible(format!(
                "it holds {qbytes} bytes (msg_qbytes); asked for capacity {capacity} × \
                 message_size {message_size} = {} bytes",
                capacity.saturating_mul(message_size)
            )));
        }
        Ok(Queue {
            msqid,
            object,
            message_size: message_size as usize,
            qbytes,
            buf: sys::MsgBuf::new(limits.msgmax.max(message_size) as usize),
            owner: None,
        })
    }

    /// The error for `EINVAL` / `EIDRM` from `msgsnd` / `msgrcv`: `Disconnected` if the queue
    /// is gone, else what `EINVAL` means for a message of `len` bytes.
    fn invalid(&self, op: &str, len: usize, e: io::Error) -> Error {
        if errno(&e) == libc::EIDRM {
            return Error::Disconnected;
        }
        match sys::stat(self.msqid) {
            Err(s) if matches!(errno(&s), libc::EINVAL | libc::EIDRM) => Error::Disconnected,
            _ => {
                let limits = MsgLimits::read();
                if len as u64 > limits.msgmax {
                    Error::LimitExceeded {
                        what: format!("kernel.msgmax (a message of {len} bytes)"),
                        limit: limits.msgmax,
                    }
                } else {
                    Error::io(format!("{op} {}", self.object), e)
                }
            }
        }
    }

    /// The error for anything else `msgsnd` / `msgrcv` returned.
    fn failed(&self, op: &str, len: usize, e: io::Error) -> Error {
        match errno(&e) {
            libc::EINVAL | libc::EIDRM => self.invalid(op, len, e),
            libc::EACCES => Error::PermissionDenied {
                object: self.object.clone(),
            },
            _ => Error::io(format!("{op} {}", self.object), e),
        }
    }
}

/// How one timed call paces its `IPC_NOWAIT` attempts.
struct Backoff {
    wait: Wait,
    next: Duration,
}

impl Backoff {
    fn new(wait: Wait) -> Backoff {
        Backoff {
            wait,
            next: BACKOFF_MIN,
        }
    }

    /// The `msgsnd` / `msgrcv` flags of an attempt.
    fn flags(&self) -> libc::c_int {
        if self.wait.is_forever() {
            0
        } else {
            libc::IPC_NOWAIT
        }
    }

    /// After an attempt found no message or room: `Err(expired)` if the wait is over, else
    /// sleeps until the next attempt (never past the deadline; a wait without one polls too,
    /// where the caller cannot block in the kernel).
    fn pause(&mut self, expired: Error) -> Result<()> {
        let left = match self.wait.remaining() {
            None => self.next,
            Some(left) if !left.is_zero() => left,
            _ => return Err(expired),
        };
        std::thread::sleep(self.next.min(left));
        self.next = (self.next * 2).min(BACKOFF_MAX);
        Ok(())
    }
}

/// The sending end of a System V queue.
#[derive(Debug)]
pub struct MsgSender {
    queue: Queue,
    /// The readiness timer, made at the first use of readiness.
    ready: Option<RoomTimer>,
    /// Length of the last message refused for want of room: what `prepare_wait` looks for.
    blocked_len: usize,
}

impl MsgSender {
    /// Opens the queue `spec` names for sending, creating it if missing (unless the string
    /// says `create=never`). A sender never removes the queue, even one it created.
    pub fn open(spec: &TransportSpec) -> Result<MsgSender> {
        let mut queue = Request::from_spec(spec)?.open()?;
        if let Some(owner) = queue.owner.take() {
            owner.release();
        }
        Ok(MsgSender::new(queue))
    }

    fn new(queue: Queue) -> MsgSender {
        MsgSender {
            queue,
            ready: None,
            blocked_len: 0,
        }
    }

    /// Opens the existing queue with id `msqid` (e.g. a `private` one made by a parent), after
    /// checking that it is ours with at most `mode`; `message_size` as for a string without
    /// one.
    pub fn open_id(msqid: i32, mode: u32) -> Result<MsgSender> {
        let queue = Queue::adopt(
            msqid,
            format!("sysv-mq id {msqid}"),
            &Adoption::strict(mode),
            None,
            None,
        )?;
        Ok(MsgSender::new(queue))
    }

    /// The queue's id.
    pub fn msqid(&self) -> i32 {
        self.queue.msqid
    }

    /// The queue's byte limit (`msg_qbytes`) when opened.
    pub fn queue_bytes(&self) -> u64 {
        self.queue.qbytes
    }

    /// Sends `msg` with type `mtype` (> 0), waiting as `wait` allows.
    pub fn send_type(&mut self, msg: &[u8], mtype: i64, wait: Wait) -> Result<()> {
        if mtype <= 0 {
            return Err(Error::invalid_spec(
                format!("mtype {mtype}"),
                "a message type must be positive",
            ));
        }
        if msg.len() > self.queue.message_size {
            return Err(Error::MessageTooLarge {
                len: msg.len(),
                max: self.queue.message_size,
            });
        }
        let queue = &mut self.queue;
        if queue.buf.fill(mtype, msg).is_none() {
            return Err(Error::MessageTooLarge {
                len: msg.len(),
                max: queue.buf.capacity(),
            });
        }
        let mut backoff = Backoff::new(wait);
        loop {
            match sys::send(queue.msqid, &queue.buf, msg.len(), backoff.flags()) {
                Ok(()) => {
                    if let Some(timer) = &mut self.ready {
                        timer.reset();
                    }
                    return Ok(());
                }
                Err(e) => match errno(&e) {
                    libc::EINTR => {}
                    libc::EAGAIN => {
                        self.blocked_len = msg.len();
                        backoff.pause(wait.full_error())?
                    }
                    _ => return Err(queue.failed("msgsnd", msg.len(), e)),
                },
            }
        }
    }
}

impl Sender for MsgSender {
    fn max_message_size(&self) -> usize {
        self.queue.message_size
    }

    fn send_with(&mut self, msg: &[u8], wait: Wait) -> Result<()> {
        self.send_type(msg, SEND_TYPE, wait)
    }

    fn readiness(&mut self) -> Option<&mut dyn Readiness> {
        Some(self)
    }
}

impl MsgSender {
    fn room_timer(&mut self) -> Result<&mut RoomTimer> {
        if self.ready.is_none() {
            let timer = RoomTimer::new().map_err(|e| Error::io("timerfd_create", e))?;
            self.ready = Some(timer);
        }
        Ok(self.ready.as_mut().expect("made above"))
    }

    /// Whether the message last refused for want of room fits now, by `IPC_STAT` (the
    /// kernel's own test: bytes and number of messages both within `msg_qbytes`); also `true`
    /// when the queue is gone, so that the next send says so.
    fn room_now(&self) -> bool {
        match sys::stat(self.queue.msqid) {
            Ok(ds) => {
                let (bytes, messages) = sys::occupancy(&ds);
                let limit = sys::qbytes(&ds);
                messages < limit && bytes + self.blocked_len as u64 <= limit
            }
            Err(e) => matches!(errno(&e), libc::EINVAL | libc::EIDRM),
            // Without read permission there is no looking: the timer alone says when.
        }
    }
}

/// A `timerfd` that expires after a back-off: a System V queue has no descriptor, and nothing
/// tells when it has room (see the module documentation, "Event loops").
impl Readiness for MsgSender {
    fn ready_fd(&mut self) -> Result<(BorrowedFd<'_>, Interest)> {
        Ok((self.room_timer()?.fd(), Interest::Readable))
    }

    /// `IPC_STAT`: "retry now" if the message last refused fits now; else arms the timer for
    /// the next back-off (50 µs, doubling up to 2 ms, back to 50 µs after a send).
    fn prepare_wait(&mut self) -> Result<bool> {
        self.room_timer()?;
        if self.room_now() {
            return Ok(true);
        }
        let timer = self.ready.as_mut().expect("made above");
        timer.arm().map_err(|e| Error::io("timerfd_settime", e))?;
        Ok(false)
    }

    fn after_wake(&mut self) {
        if let Some(timer) = &self.ready {
            timer.after_wake();
        }
    }
}

/// The receiving end of a System V queue.
#[derive(Debug)]
pub struct MsgReceiver {
    /// The readiness helper, started at the first use of readiness. Declared before `queue`,
    /// so that a taken message goes back before an owned queue is removed.
    helper: Option<Helper>,
    queue: Queue,
}

impl MsgReceiver {
    /// Opens the queue `spec` names for receiving, creating it unless the string says
    /// `create=never`. If this call created it, dropping the receiver removes it.
    pub fn open(spec: &TransportSpec) -> Result<MsgReceiver> {
        let queue = Request::from_spec(spec)?.open()?;
        Ok(MsgReceiver {
            helper: None,
            queue,
        })
    }

    /// Opens the existing queue with id `msqid`, as [`MsgSender::open_id`]; never removes it.
    pub fn open_id(msqid: i32, mode: u32) -> Result<MsgReceiver> {
        let queue = Queue::adopt(
            msqid,
            format!("sysv-mq id {msqid}"),
            &Adoption::strict(mode),
            None,
            None,
        )?;
        Ok(MsgReceiver {
            helper: None,
            queue,
        })
    }

    /// The queue's id (how a `private` queue is reached).
    pub fn msqid(&self) -> i32 {
        self.queue.msqid
    }

    /// The queue's byte limit (`msg_qbytes`) when opened.
    pub fn queue_bytes(&self) -> u64 {
        self.queue.qbytes
    }

    /// Whether dropping this receiver removes the queue (it created it and keeps it).
    pub fn owns_queue(&self) -> bool {
        self.queue.owner.is_some()
    }

    /// Keeps the queue after this receiver is dropped, even if it created it.
    pub fn release_queue(&mut self) {
        if let Some(owner) = self.queue.owner.take() {
            owner.release();
        }
    }

    /// Receives the message `selector` picks into `buf`, waiting as `wait` allows; returns
    /// its length and type. A message longer than `buf` stays queued
    /// ([`Error::BufferTooSmall`] says how long it is).
    ///
    /// Once readiness has been used, a zero-length message the helper took is delivered from
    /// here first, and calls that wait do so through the helper (any type) or by polling with
    /// the timed calls' back-off (another selector) rather than in `msgrcv`, where the helper
    /// could take a zero-length message from under them (module documentation, "Event
    /// loops").
    pub fn recv_type(
        &mut self,
        buf: &mut [u8],
        selector: Selector,
        wait: Wait,
    ) -> Result<(usize, i64)> {
        selector.msgtyp()?;
        if self.helper.is_none() {
            return recv_queue(&mut self.queue, buf, selector, wait);
        }
        match (wait, selector) {
            (Wait::Never, _) => self.recv_now(buf, selector),
            (_, Selector::Any) => self.recv_any_through_helper(buf, wait),
            _ => {
                let mut backoff = Backoff::new(wait);
                loop {
                    match self.recv_now(buf, selector) {
                        Err(Error::Empty) => backoff.pause(wait.empty_error())?,
                        done => return done,
                    }
                }
            }
        }
    }

    /// With the helper running: the message it took, if `selector` takes it and nothing on the
    /// queue comes first; else the queue's, without waiting.
    fn recv_now(&mut self, buf: &mut [u8], selector: Selector) -> Result<(usize, i64)> {
        let helper = self
            .helper
            .as_ref()
            .expect("called with the helper running");
        let status = helper.status();
        if let Some(mtype) = status.taken.filter(|&t| selector.takes(t)) {
            // It was the oldest message when taken, so it comes first for any type and for its
            // own; for "lowest type at most n", a lower type still queued comes first.
            if matches!(selector, Selector::AtMost(_)) && mtype > 1 {
                match recv_queue(
                    &mut self.queue,
                    buf,
                    Selector::AtMost(mtype - 1),
                    Wait::Never,
                ) {
                    Err(Error::Empty) => {}
                    done => return done,
                }
            }
            helper.clear_taken();
            return Ok((0, mtype));
        }
        if status.removed {
            return Err(Error::Disconnected);
        }
        recv_queue(&mut self.queue, buf, selector, Wait::Never)
    }

    /// A waiting receive of any type with the helper running: the readiness protocol, with
    /// `poll` on the helper's descriptor.
    fn recv_any_through_helper(&mut self, buf: &mut [u8], wait: Wait) -> Result<(usize, i64)> {
        loop {
            match self.recv_now(buf, Selector::Any) {
                Err(Error::Empty) => {}
                done => return done,
            }
            if Readiness::prepare_wait(self)? {
                continue;
            }
            let timeout = wait.remaining();
            if timeout.is_some_and(|left| left.is_zero()) {
                return Err(Error::Timeout);
            }
            let helper = self.helper.as_ref().expect("started by prepare_wait");
            if event::poll_readable(helper.fd(), timeout)
                .map_err(|e| Error::io("poll on the readiness eventfd", e))?
            {
                helper.after_wake();
            }
        }
    }

    fn helper(&mut self) -> Result<&Helper> {
        if self.helper.is_none() {
            let helper = Helper::start(self.queue.msqid)
                .map_err(|e| Error::io("starting the sysv-mq readiness helper", e))?;
            self.helper = Some(helper);
        }
        Ok(self.helper.as_ref().expect("started above"))
    }
}

/// `msgrcv` on the queue itself, waiting as `wait` allows (see [`MsgReceiver::recv_type`]).
fn recv_queue(
    queue: &mut Queue,
    buf: &mut [u8],
    selector: Selector,
    wait: Wait,
) -> Result<(usize, i64)> {
    let msgtyp = selector.msgtyp()?;
    let mut backoff = Backoff::new(wait);
    loop {
        match sys::recv(
            queue.msqid,
            &mut queue.buf,
            buf.len(),
            msgtyp,
            backoff.flags(),
        ) {
            Ok(len) => {
                buf[..len].copy_from_slice(queue.buf.text(len));
                return Ok((len, queue.buf.mtype()));
            }
            Err(e) => match errno(&e) {
                libc::EINTR => {}
                libc::ENOMSG | libc::EAGAIN => backoff.pause(wait.empty_error())?,
                libc::E2BIG => {
                    // What msgrcv was asked for: the message is longer than that.
                    let limit = buf.len().min(queue.buf.capacity());
                    match peek_len(queue, selector) {
                        // Taken by another receiver meanwhile: try again.
                        Ok(None) => {}
                        // Or replaced by a shorter one: the same.
                        Ok(Some(needed))
                            if needed < limit
                                || (needed == limit && limit < queue.buf.capacity()) => {}
                        Ok(Some(needed)) if needed <= buf.len() => {
                            // Longer than our buffer for the kernel (`kernel.msgmax` when
                            // opened; the peek was cut there): raised since, and sent by
                            // someone else.
                            return Err(Error::MessageTooLarge {
                                len: needed,
                                max: queue.buf.capacity(),
                            });
                        }
                        Ok(Some(needed)) => {
                            return Err(Error::BufferTooSmall {
                                len: buf.len(),
                                needed,
                            });
                        }
                        Err(e) => return Err(e),
                    }
                }
                _ => return Err(queue.failed("msgrcv", 0, e)),
            },
        }
    }
}

/// The length of the message a `msgrcv` with `selector` would take now, read with `MSG_COPY`
/// (which copies the message at an index and takes nothing); `None` if there is none. Without
/// `MSG_COPY` in the kernel: `kernel.msgmax`, an upper bound.
fn peek_len(queue: &mut Queue, selector: Selector) -> Result<Option<usize>> {
    let flags = sys::MSG_COPY | libc::IPC_NOWAIT | libc::MSG_NOERROR;
    let capacity = queue.buf.capacity();
    let mut best: Option<(i64, usize)> = None;
    let mut index = 0;
    loop {
        match sys::recv(queue.msqid, &mut queue.buf, capacity, index, flags) {
            Ok(len) => {
                let mtype = queue.buf.mtype();
                if selector.takes(mtype) {
                    match selector {
                        Selector::AtMost(_) => {
                            if best.is_none_or(|(t, _)| mtype < t) {
                                best = Some((mtype, len));
                            }
                        }
                        _ => return Ok(Some(len)),
                    }
                }
            }
            Err(e) => match errno(&e) {
                libc::EINTR => continue,
                libc::ENOMSG => return Ok(best.map(|(_, len)| len)),
                libc::ENOSYS => {
                    let msgmax = MsgLimits::read().msgmax as usize;
                    return Ok(Some(msgmax.max(capacity + 1)));
                }
                _ => return Err(queue.failed("msgrcv MSG_COPY", 0, e)),
            },
        }
        index += 1;
    }
}

impl Receiver for MsgReceiver {
    fn max_message_size(&self) -> usize {
        self.queue.message_size
    }

    fn recv_with(&mut self, buf: &mut [u8], wait: Wait) -> Result<usize> {
        self.recv_type(buf, Selector::Any, wait).map(|(len, _)| len)
    }

    fn readiness(&mut self) -> Option<&mut dyn Readiness> {
        Some(self)
    }
}

/// An `eventfd` that a helper thread signals when a message is there (see the module
/// documentation, "Event loops"). The helper starts at the first `ready_fd` or
/// `prepare_wait`.
impl Readiness for MsgReceiver {
    fn ready_fd(&mut self) -> Result<(BorrowedFd<'_>, Interest)> {
        Ok((self.helper()?.fd(), Interest::Readable))
    }

    /// "Retry now" if the helper holds a zero-length message it took, or saw the queue
    /// removed; else asks it to look, and the descriptor becomes readable when a message is
    /// there.
    fn prepare_wait(&mut self) -> Result<bool> {
        self.helper()?;
        let helper = self.helper.as_ref().expect("started above");
        helper
            .prepare_wait()
            .map_err(|e| self.queue.failed("msgrcv (readiness helper)", 0, e))
    }

    fn after_wake(&mut self) {
        if let Some(helper) = &self.helper {
            helper.after_wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI32, Ordering};
    use std::time::Instant;

    /// A key of this test process: `0x4e<pid:16><n:8>`-ish, removed by [`Guard`].
    struct Guard(i32);

    impl Guard {
        fn new() -> Guard {
            static NEXT: AtomicI32 = AtomicI32::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed) & 0xff;
            Guard(0x4e00_0000 | ((std::process::id() as i32 & 0xffff) << 8) | n)
        }

        fn spec(&self, query: &str) -> TransportSpec {
            format!("sysv-mq:key={:#x}{query}", self.0).parse().unwrap()
        }
    }

    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = destroy(&Key::Explicit(self.0));
        }
    }

    #[test]
    fn types_select_and_small_buffers_leave_the_message_queued() {
        let g = Guard::new();
        let spec = g.spec("?capacity=4&message_size=64");
        let mut rx = MsgReceiver::open(&spec).unwrap();
        let mut tx = MsgSender::open(&spec).unwrap();
        tx.send_type(b"five", 5, Wait::Never).unwrap();
        tx.send_type(b"three, longer", 3, Wait::Never).unwrap();
        tx.send_type(b"nine", 9, Wait::Never).unwrap();
        let mut small = [0u8; 4];
        assert!(matches!(
            rx.recv_type(&mut small, Selector::AtMost(4), Wait::Never),
            Err(Error::BufferTooSmall { len: 4, needed: 13 })
        ));
        let mut buf = [0u8; 64];
        assert_eq!(
            rx.recv_type(&mut buf, Selector::Exactly(9), Wait::Never)
                .unwrap(),
            (4, 9)
        );
        assert_eq!(
            rx.recv_type(&mut buf, Selector::AtMost(6), Wait::Never)
                .unwrap(),
            (13, 3)
        );
        assert!(matches!(
            rx.recv_type(&mut buf, Selector::Exactly(9), Wait::Never),
            Err(Error::Empty)
        ));
        assert_eq!(rx.recv(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"five");
        assert!(
            rx.recv_type(&mut buf, Selector::Exactly(0), Wait::Never)
                .is_err()
        );
    }

    #[test]
    fn limits_are_named() {
        let limits = MsgLimits::read();
        let g = Guard::new();
        match MsgReceiver::open(&g.spec(&format!("?message_size={}", limits.msgmax + 1))) {
            Err(Error::LimitExceeded { what, limit }) => {
                assert!(what.contains("kernel.msgmax"), "{what}");
                assert_eq!(limit, limits.msgmax);
            }
            other => panic!("expected LimitExceeded, got {other:?}"),
        }
        match MsgReceiver::open(&g.spec(&format!(
            "?message_size=1024&capacity={}",
            limits.msgmnb / 1024 + 1
        ))) {
            Err(Error::LimitExceeded { what, limit }) => {
                assert!(what.contains("kernel.msgmnb"), "{what}");
                assert_eq!(limit, limits.msgmnb);
            }
            other => panic!("expected LimitExceeded, got {other:?}"),
        }
    }

    #[test]
    fn full_empty_timeout_and_removal() {
        let g = Guard::new();
        let spec = g.spec("?capacity=2&message_size=16");
        let mut rx = MsgReceiver::open(&spec).unwrap();
        assert!(rx.owns_queue());
        let mut tx = MsgSender::open(&spec).unwrap();
        assert_eq!(tx.queue_bytes(), 32);
        let mut buf = [0u8; 16];
        assert!(matches!(rx.try_recv(&mut buf), Err(Error::Empty)));
        let started = Instant::now();
        assert!(matches!(
            rx.recv_timeout(&mut buf, Duration::from_millis(100)),
            Err(Error::Timeout)
        ));
        assert!(started.elapsed() >= Duration::from_millis(100));
        tx.try_send(&[1; 16]).unwrap();
        tx.try_send(&[2; 16]).unwrap();
        assert!(matches!(tx.try_send(b"3"), Err(Error::Full)));
        assert!(matches!(
            tx.try_send(&[0; 17]),
            Err(Error::MessageTooLarge { len: 17, max: 16 })
        ));
        drop(rx);
        assert!(matches!(tx.try_send(b"x"), Err(Error::Disconnected)));
        assert!(matches!(
            MsgSender::open(&g.spec("?create=never")),
            Err(Error::NotFound { .. })
        ));
    }

    const DEADLINE: Duration = Duration::from_secs(10);
    const QUIET: Duration = Duration::from_millis(50);

    /// One round of the readiness protocol's sleep, at most `within`: whether the endpoint
    /// said to try again.
    fn wait_ready(ready: &mut dyn Readiness, within: Duration) -> bool {
        if ready.prepare_wait().unwrap() {
            return true;
        }
        let deadline = Instant::now() + within;
        let woke = loop {
            let (fd, interest) = ready.ready_fd().unwrap();
            assert_eq!(interest, Interest::Readable);
            let left = deadline.saturating_duration_since(Instant::now());
            if event::poll_readable(fd, Some(left)).unwrap() {
                break true;
            }
            if left.is_zero() {
                break false;
            }
        };
        if woke {
            ready.after_wake();
        }
        woke
    }

    /// Receives as an event loop does, within [`DEADLINE`].
    fn recv_ready(rx: &mut MsgReceiver, buf: &mut [u8]) -> Result<usize> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            match rx.try_recv(buf) {
                Err(Error::Empty) => {}
                done => return done,
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "nothing within {DEADLINE:?}");
            wait_ready(rx, left);
        }
    }

    /// Messages in the queue now.
    fn queued(rx: &MsgReceiver) -> u64 {
        sys::occupancy(&sys::stat(rx.msqid()).unwrap()).1
    }

    /// Kills and reaps a child process if the test ends before it does.
    struct Reap(std::process::Child);

    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn the_helper_wakes_on_a_message_from_another_process() {
        const CHILD: &str = "IPC_SYSV_MQ_READY_CHILD_SPEC";
        if let Some(spec) = std::env::var_os(CHILD) {
            // The child: one message, then exit.
            let spec: TransportSpec = spec.to_str().unwrap().parse().unwrap();
            MsgSender::open(&spec)
                .unwrap()
                .try_send(b"from the child")
                .unwrap();
            return;
        }
        let g = Guard::new();
        let spec = g.spec("?capacity=4&message_size=64");
        let mut rx = MsgReceiver::open(&spec).unwrap();
        let mut buf = [0u8; 64];
        assert!(matches!(rx.try_recv(&mut buf), Err(Error::Empty)));
        // Armed, and nothing there: no wake-up.
        assert!(!wait_ready(&mut rx, QUIET));
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "msg::tests::the_helper_wakes_on_a_message_from_another_process",
                "--test-threads=1",
            ])
            .env(CHILD, spec.to_string())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut child = Reap(child);
        assert!(
            wait_ready(&mut rx, DEADLINE),
            "no wake-up for the child's message"
        );
        assert_eq!(rx.try_recv(&mut buf).unwrap(), 14);
        assert_eq!(&buf[..14], b"from the child");
        assert!(child.0.wait().unwrap().success());
        // And again from a thread, with the protocol's loop.
        let mut tx = MsgSender::open(&spec).unwrap();
        let sender = std::thread::spawn(move || tx.send(b"from a thread"));
        assert_eq!(recv_ready(&mut rx, &mut buf).unwrap(), 13);
        sender.join().unwrap().unwrap();
        assert!(matches!(rx.try_recv(&mut buf), Err(Error::Empty)));
    }

    #[test]
    fn a_zero_length_message_taken_by_the_helper_is_delivered_once_with_its_type() {
        let g = Guard::new();
        let spec = g.spec("?capacity=4&message_size=64");
        let mut rx = MsgReceiver::open(&spec).unwrap();
        let mut tx = MsgSender::open(&spec).unwrap();
        let mut buf = [0u8; 64];
        assert!(!Readiness::prepare_wait(&mut rx).unwrap());
        tx.send(b"").unwrap();
        assert!(wait_ready(&mut rx, DEADLINE));
        // The helper holds it, off the queue; the next receive delivers it, once.
        assert_eq!(queued(&rx), 0);
        assert!(Readiness::prepare_wait(&mut rx).unwrap());
        assert_eq!(rx.try_recv(&mut buf).unwrap(), 0);
        assert!(matches!(rx.try_recv(&mut buf), Err(Error::Empty)));

        // With a type: a selector that does not take it leaves it; "at most" takes a lower
        // type still queued first, as the kernel would.
        assert!(!Readiness::prepare_wait(&mut rx).unwrap());
        tx.send_type(b"", 5, Wait::Never).unwrap();
        assert!(wait_ready(&mut rx, DEADLINE));
        assert_eq!(queued(&rx), 0);
        tx.send_type(b"low", 3, Wait::Never).unwrap();
        tx.send_type(b"same", 5, Wait::Never).unwrap();
        assert!(matches!(
            rx.recv_type(&mut buf, Selector::Exactly(4), Wait::Never),
            Err(Error::Empty)
        ));
        assert_eq!(
            rx.recv_type(&mut buf, Selector::AtMost(9), Wait::Never)
                .unwrap(),
            (3, 3)
        );
        assert_eq!(
            rx.recv_type(&mut buf, Selector::Exactly(5), Wait::Never)
                .unwrap(),
            (0, 5)
        );
        assert_eq!(
            rx.recv_type(&mut buf, Selector::AtMost(9), Wait::Never)
                .unwrap(),
            (4, 5)
        );

        // A blocking receive after readiness was used waits through the helper, and gets a
        // zero-length message sent while it waits.
        let sender = std::thread::spawn(move || tx.send_type(b"", 2, Wait::Forever));
        assert_eq!(rx.recv_timeout(&mut buf, DEADLINE).unwrap(), 0);
        sender.join().unwrap().unwrap();
        assert!(matches!(rx.try_recv(&mut buf), Err(Error::Empty)));
        assert_eq!(queued(&rx), 0);
    }

    #[test]
    fn removing_the_queue_while_armed_wakes_the_receiver_then_disconnected() {
        let g = Guard::new();
        let spec = g.spec("?capacity=4&message_size=64");
        let mut rx = MsgReceiver::open(&spec).unwrap();
        let mut buf = [0u8; 64];
        assert!(!Readiness::prepare_wait(&mut rx).unwrap());
        remove(rx.msqid()).unwrap();
        assert!(wait_ready(&mut rx, DEADLINE));
        assert!(matches!(rx.try_recv(&mut buf), Err(Error::Disconnected)));
        assert!(Readiness::prepare_wait(&mut rx).unwrap());
        assert!(matches!(
            rx.recv_timeout(&mut buf, DEADLINE),
            Err(Error::Disconnected)
        ));
    }

    #[test]
    fn dropping_an_armed_receiver_leaves_the_messages_to_the_next() {
        let g = Guard::new();
        let spec = g.spec("?capacity=4&message_size=64");
        // Owns the queue, and never uses readiness: the "next receiver".
        let mut keeper = MsgReceiver::open(&spec).unwrap();
        let mut tx = MsgSender::open(&spec).unwrap();
        let mut buf = [0u8; 64];

        // A helper blocked in msgrcv when its receiver goes: a message sent after is left...
        let mut rx = MsgReceiver::open(&spec).unwrap();
        assert!(!rx.owns_queue());
        assert!(!Readiness::prepare_wait(&mut rx).unwrap());
        drop(rx);
        tx.send(b"text").unwrap();
        assert_eq!(keeper.recv_timeout(&mut buf, DEADLINE).unwrap(), 4);
        // ... and a zero-length one, which that helper may take, is given back.
        let mut rx = MsgReceiver::open(&spec).unwrap();
        assert!(!Readiness::prepare_wait(&mut rx).unwrap());
        drop(rx);
        tx.send_type(b"", 7, Wait::Never).unwrap();
        assert_eq!(
            keeper
                .recv_type(&mut buf, Selector::Any, Wait::timeout(DEADLINE))
                .unwrap(),
            (0, 7)
        );

        // A zero-length message the helper holds when its receiver goes goes back at once.
        let mut rx = MsgReceiver::open(&spec).unwrap();
        assert!(!Readiness::prepare_wait(&mut rx).unwrap());
        tx.send_type(b"", 8, Wait::Never).unwrap();
        assert!(wait_ready(&mut rx, DEADLINE));
        assert_eq!(queued(&rx), 0);
        drop(rx);
        assert_eq!(
            keeper
                .recv_type(&mut buf, Selector::Any, Wait::Never)
                .unwrap(),
            (0, 8)
        );
        assert!(matches!(keeper.try_recv(&mut buf), Err(Error::Empty)));
    }

    #[test]
    fn a_full_queue_wakes_the_sender_by_timer_and_sees_room_and_removal() {
        let g = Guard::new();
        let spec = g.spec("?capacity=2&message_size=16");
        let mut rx = MsgReceiver::open(&spec).unwrap();
        rx.release_queue();
        let mut tx = MsgSender::open(&spec).unwrap();
        let mut buf = [0u8; 16];
        // Room: retry now.
        assert!(Readiness::prepare_wait(&mut tx).unwrap());
        tx.try_send(&[1; 16]).unwrap();
        tx.try_send(&[2; 16]).unwrap();
        assert!(matches!(tx.try_send(&[3; 16]), Err(Error::Full)));
        // No room: the timer wakes the loop to try again, a few times in a row.
        for _ in 0..5 {
            assert!(wait_ready(&mut tx, DEADLINE));
            assert!(matches!(tx.try_send(&[3; 16]), Err(Error::Full)));
        }
        assert_eq!(rx.try_recv(&mut buf).unwrap(), 16);
        assert!(Readiness::prepare_wait(&mut tx).unwrap());
        tx.try_send(&[3; 16]).unwrap();
        assert!(matches!(tx.try_send(&[4; 16]), Err(Error::Full)));
        assert!(!Readiness::prepare_wait(&mut tx).unwrap());
        remove(rx.msqid()).unwrap();
        assert!(wait_ready(&mut tx, DEADLINE));
        assert!(matches!(tx.try_send(&[4; 16]), Err(Error::Disconnected)));
        assert!(Readiness::prepare_wait(&mut tx).unwrap());
    }

    #[test]
    fn private_queues_are_reached_by_id() {
        let spec: TransportSpec = "sysv-mq:private?capacity=2&message_size=8".parse().unwrap();
        let mut rx = MsgReceiver::open(&spec).unwrap();
        let mut tx = MsgSender::open_id(rx.msqid(), DEFAULT_MODE).unwrap();
        tx.send(b"hi").unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(rx.recv(&mut buf).unwrap(), 2);
        let id = rx.msqid();
        drop(rx);
        assert!(matches!(remove(id), Err(Error::NotFound { .. })));
    }
}
