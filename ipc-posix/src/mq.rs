//! POSIX message queues as a transport: `posix-mq:/name?capacity=N&message_size=B`.
//!
//! A queue keeps message boundaries and priorities itself, so messages are not framed. It
//! outlives the processes that use it, until removed (`mq_unlink`, [`destroy`]).
//!
//! Who creates and who removes: a queue is a mailbox, so both ends create it if it is missing
//! (`create=if_missing` by default, unlike pipes and FIFOs, whose senders wait for a receiver).
//! A *receiver* that created the queue removes it when dropped, through an
//! [`Owner`] guard ([`MqReceiver::release_queue`] keeps it). A sender never
//! removes it, even one that created it: its messages must wait there for a receiver. So
//! `printf 'x\ny\n' | ipc send posix-mq:/demo` followed by `ipc recv posix-mq:/demo --count 2`
//! works, and leaves `/demo` for [`destroy`].
//!
//! ```
//! use ipc_core::{Receiver, Sender, TransportSpec};
//! use ipc_posix::mq::{MqReceiver, MqSender};
//!
//! # fn main() -> Result<(), ipc_core::Error> {
//! let spec: TransportSpec = format!("posix-mq:/ipc-doc-mq-{}?capacity=4", std::process::id()).parse()?;
//! let mut rx = MqReceiver::open(&spec)?; // creates the queue, mode 0600
//! let mut tx = MqSender::open(&spec)?;
//! tx.send_priority(b"urgent", 9, ipc_core::Wait::Forever)?;
//! tx.send(b"routine")?;
//! let mut buf = vec![0; rx.max_message_size()];
//! let (n, prio) = rx.recv_priority(&mut buf, ipc_core::Wait::Never)?;
//! assert_eq!((&buf[..n], prio), (&b"urgent"[..], 9));
//! # Ok(())
//! # } // dropping rx removes the queue
//! ```
//!
//! # Waiting, limits, disconnection
//!
//! `try_` and `_timeout` calls use `mq_timedsend` / `mq_timedreceive` with an absolute deadline
//! (one in the past for `try_`), so the descriptor's `O_NONBLOCK` is never touched; `EINTR` is
//! retried with the deadline kept. Kernel limits are checked before `mq_open`, also for
//! privileged processes, so that what works as root works for everyone: a `capacity` above
//! `fs.mqueue.msg_max`, a `message_size` above `fs.mqueue.msgsize_max`, or a queue larger than
//! `RLIMIT_MSGQUEUE` is [`Error::LimitExceeded`] naming the limit and its value; too many queues
//! (`fs.mqueue.queues_max`) is found at `mq_open`. Above the kernel's own ceilings, which no
//! sysctl raises ([`HARD_MSGMAX`] messages, [`HARD_MSGSIZEMAX`] bytes), the value can never
//! work: [`Error::InvalidSpec`] naming the option.
//!
//! A queue has no connection, so a dead peer cannot be seen. What can be seen is the queue
//! being removed: a blocked call checks every 100 ms whether the queue still has a name, and
//! returns [`Error::Disconnected`] once it has none. A sender that is not blocked does not
//! check (it would cost a system call per message).
//!
//! # Event loops
//!
//! On Linux a queue descriptor (`mqd_t`) is a file descriptor that `poll`/`epoll` understand:
//! readable while the queue holds a message, writable while it has room. Both ends implement
//! [`AsFd`] on it, for programs that want the bare descriptor. A receiver's
//! [`Readiness::prepare_wait`] says "retry now" while it holds a message taken off the queue
//! for a buffer that was too small (the descriptor no longer shows it).
//!
//! `try_send` and `try_recv` never wait: they pass an absolute deadline of 0 (long past),
//! which the kernel takes as "do not sleep" (`ETIMEDOUT` at once), whether or not the
//! descriptor is blocking.
//!
//! What the descriptor cannot show is the queue being removed: the kernel wakes no `poll`er
//! for `mq_unlink`, and the queue goes on working for those who hold it open. So the
//! [`Readiness`] descriptor is an epoll set of the queue descriptor and a timer that
//! `prepare_wait` arms for 100 ms when it is not armed already: an event loop waiting on a
//! removed queue wakes within that bound, like a blocked call, and its next `try_` call checks
//! the name and returns [`Error::Disconnected`]. That costs a `timerfd_settime` every 100 ms
//! of waiting and an `fstat` when the timer fires, and a wake-up every 100 ms while the queue
//! stays quiet.
//!
//! # References
//!
//! `mq_overview(7)`, `mq_open(3)`, `mq_timedsend(3)`, `mq_timedreceive(3)`.

use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};

use ipc_core::{
    Address, Adoption, Create, Error, Interest, Owner, Readiness, Receiver, Removable, Result,
    Sender, Transport, TransportSpec, Wait,
};
use nix::errno::Errno;
use nix::sys::stat::fstat;

use crate::PosixName;
use crate::sys::mq as sys;

/// Permissions of a queue we create when the string gives no `mode`.
pub const DEFAULT_MODE: u32 = 0o600;
/// `message_size` when the string gives none (capped at `fs.mqueue.msgsize_max`).
pub const DEFAULT_MESSAGE_SIZE: usize = 8192;
/// `capacity` when the string gives none (capped at `fs.mqueue.msg_max`).
pub const DEFAULT_CAPACITY: usize = 10;
/// The kernel's ceiling for `fs.mqueue.msg_max` (`HARD_MSGMAX`, Linux 3.5 on): no queue holds
/// more messages, whatever the sysctl says and whoever asks.
pub const HARD_MSGMAX: u64 = 65536;
/// The kernel's ceiling for `fs.mqueue.msgsize_max` (`HARD_MSGSIZEMAX`, Linux 3.5 on).
pub const HARD_MSGSIZEMAX: u64 = 16 * 1024 * 1024;
/// How often a blocked call checks that the queue still exists.
const REMOVAL_CHECK: Duration = Duration::from_millis(100);
/// Kernel bookkeeping per message (`struct msg_msg` and a share of the priority tree), as
/// `ipc/mqueue.c` charges it against `RLIMIT_MSGQUEUE` (measured on 6.18: 96 bytes).
const KERNEL_BYTES_PER_MESSAGE: u64 = 96;

/// The kernel limits that bound a POSIX queue, as read now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MqLimits {
    /// `fs.mqueue.msg_max`: most messages in one queue.
    pub msg_max: u64,
    /// `fs.mqueue.msgsize_max`: largest message.
    pub msgsize_max: u64,
    /// `fs.mqueue.queues_max`: most queues on the system.
    pub queues_max: u64,
    /// Soft `RLIMIT_MSGQUEUE`: bytes of all this user's queues.
    pub rlimit_msgqueue: u64,
}

impl MqLimits {
    /// Reads the limits from `/proc/sys/fs/mqueue` and `getrlimit`.
    pub fn read() -> MqLimits {
        let sysctl = |name: &str, default: u64| {
            ipc_core::sysctl(&format!("fs.mqueue.{name}")).unwrap_or(default)
        };
        let rlimit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_MSGQUEUE)
            .map(|(soft, _)| soft)
            .unwrap_or(819_200);
        MqLimits {
            msg_max: sysctl("msg_max", 10),
            msgsize_max: sysctl("msgsize_max", 8192),
            queues_max: sysctl("queues_max", 256),
            rlimit_msgqueue: rlimit,
        }
    }

    /// Refuses attributes the kernel would refuse (or allow only to privileged processes).
    fn check(&self, capacity: usize, message_size: usize) -> Result<()> {
        let exceeded = |what: &str, limit: u64| Error::LimitExceeded {
            what: what.to_owned(),
            limit,
        };
        if capacity as u64 > self.msg_max {
            return Err(exceeded(
                &format!("fs.mqueue.msg_max (capacity {capacity} asked)"),
                self.msg_max,
            ));
        }
        if message_size as u64 > self.msgsize_max {
            return Err(exceeded(
                &format!("fs.mqueue.msgsize_max (message_size {message_size} asked)"),
                self.msgsize_max,
            ));
        }
        let bytes = capacity as u64 * (message_size as u64 + KERNEL_BYTES_PER_MESSAGE);
        if bytes > self.rlimit_msgqueue {
            return Err(exceeded(
                &format!("RLIMIT_MSGQUEUE (a queue of {bytes} bytes asked)"),
                self.rlimit_msgqueue,
            ));
        }
        Ok(())
    }
}

/// A queue this process created, removable (`mq_unlink`): what an [`Owner`] guard holds. It
/// removes the name only while the name still refers to that queue (device and inode), never a
/// successor someone made under the same name after ours was removed.
#[derive(Debug)]
pub struct QueueName {
    name: PosixName,
    identity: (u64, u64),
}

impl QueueName {
    fn object(name: &PosixName) -> String {
        format!("posix-mq:{name}")
    }
}

impl Removable for QueueName {
    fn remove(&self) -> Result<()> {
        // There is no stat by name without /dev/mqueue mounted: open the name and compare.
        let current = match sys::open(self.name.as_c_str(), libc::O_RDONLY, 0, None) {
            Ok(fd) => fstat(fd.as_fd())
                .map(|st| (st.st_dev, st.st_ino))
                .map_err(|e| Error::from_os("fstat", &self.object_name(), e.into()))?,
            // Gone already: nothing of ours to remove.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
            Err(e) => return Err(Error::from_os("mq_open", &self.object_name(), e)),
        };
        if current != self.identity {
            return Err(Error::Incompatible {
                object: self.object_name(),
                reason: "the name now refers to another queue, which is left alone".into(),
            });
        }
        destroy(&self.name)
    }

    fn object_name(&self) -> String {
        QueueName::object(&self.name)
    }
}

/// Removes the queue `name` (`mq_unlink`), whoever made it. Open descriptors keep working;
/// nobody can open it by name any more.
pub fn destroy(name: &PosixName) -> Result<()> {
    sys::unlink(name.as_c_str())
        .map_err(|e| Error::from_os("mq_unlink", &QueueName::object(name), e))
}

/// An open queue and what it was opened with.
#[derive(Debug)]
struct Queue {
    fd: sys::Mq,
    name: PosixName,
    capacity: usize,
    message_size: usize,
    /// Present if this end created the queue: removes it on drop.
    owner: Option<Owner<QueueName>>,
    /// Made when an event loop first asks for readiness.
    watch: Option<RemovalWatch>,
}

/// An event loop's view of a queue: the queue descriptor and a removal-check timer in one
/// epoll set (see the module documentation, "Event loops").
#[derive(Debug)]
struct RemovalWatch {
    epoll: Epoll,
    timer: TimerFd,
    /// When the timer fires, while it is armed and has not been seen to fire.
    due: Option<std::time::Instant>,
    /// The timer fired: the next `try_` call looks whether the queue still has a name.
    check_due: bool,
}

impl Queue {
    fn watch(&mut self, interest: Interest) -> Result<&mut RemovalWatch> {
        if self.watch.is_none() {
            let failed =
                |e: Errno| Error::io(format!("readiness for posix-mq:{}", self.name), e.into());
            let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).map_err(failed)?;
            let timer = TimerFd::new(
                ClockId::CLOCK_MONOTONIC,
                TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
            )
            .map_err(failed)?;
            let events = match interest {
                Interest::Readable => EpollFlags::EPOLLIN,
                Interest::Writable => EpollFlags::EPOLLOUT,
            };
            epoll
                .add(self.fd.as_fd(), EpollEvent::new(events, 0))
                .map_err(failed)?;
            epoll
                .add(timer.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, 1))
                .map_err(failed)?;
            self.watch = Some(RemovalWatch {
                epoll,
                timer,
                due: None,
                check_due: false,
            });
        }
        Ok(self.watch.as_mut().expect("made above"))
    }

    fn ready_fd(&mut self, interest: Interest) -> Result<(BorrowedFd<'_>, Interest)> {
        let watch = self.watch(interest)?;
        Ok((watch.epoll.0.as_fd(), Interest::Readable))
    }

    /// Arms the removal check, unless it is armed already: a waiter looks within
    /// [`REMOVAL_CHECK`] of its first wait, and the queue's name is looked at only when the
    /// timer fires, so a busy queue costs no system call here.
    fn prepare_wait(&mut self, interest: Interest) -> Result<bool> {
        let watch = self.watch(interest)?;
        let now = std::time::Instant::now();
        if watch.due.is_some_and(|due| due > now) {
            return Ok(false);
        }
        watch
            .timer
            .set(
                Expiration::OneShot(TimeSpec::from_duration(REMOVAL_CHECK)),
                TimerSetTimeFlags::empty(),
            )
            .map_err(|e| Error::io("timerfd_settime", e.into()))?;
        watch.due = Some(now + REMOVAL_CHECK);
        Ok(false)
    }

    fn after_wake(&mut self) {
        if let Some(watch) = &mut self.watch {
            // The timer cannot have fired before it is due: no read then.
            let now = std::time::Instant::now();
            // Non-blocking: Ok only if the timer fired (and it is reset by the read).
            if watch.due.is_some_and(|due| due <= now) && watch.timer.wait().is_ok() {
                watch.due = None;
                watch.check_due = true;
            }
        }
    }
}

/// What a transport string asks of a queue.
struct Request {
    name: PosixName,
    capacity: Option<usize>,
    message_size: Option<usize>,
    mode: u32,
    /// Which existing queue we accept (owner, group, widest mode).
    adoption: Adoption,
    create: Create,
}

impl Request {
    fn from_spec(spec: &TransportSpec, default_create: Create) -> Result<Request> {
        let (Transport::PosixMq, Address::Name(name)) = (spec.transport, &spec.address) else {
            return Err(Error::invalid_spec(
                spec.to_string(),
                "not a posix-mq transport string (`posix-mq:/name`)",
            ));
        };
        // Past the kernel's ceilings no setting helps and no existing queue matches: the
        // string is at fault, not the machine (below them, LimitExceeded names the sysctl).
        let o = &spec.options;
        for (name, value, ceiling, what) in [
            ("capacity", o.capacity, HARD_MSGMAX, "messages"),
            ("message_size", o.message_size, HARD_MSGSIZEMAX, "bytes"),
        ] {
            if let Some(v) = value.filter(|v| *v > ceiling) {
                return Err(Error::invalid_spec(
                    format!("{name}={v}"),
                    format!(
                        "a POSIX queue's {name} is at most {ceiling} {what} (the kernel's \
                         ceiling, whatever fs.mqueue says)"
                    ),
                ));
            }
        }
        let to_usize = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        Ok(Request {
            name: PosixName::new(name)?,
            capacity: spec.options.capacity.map(to_usize),
            message_size: spec.options.message_size.map(to_usize),
            mode: spec.options.mode.unwrap_or(DEFAULT_MODE),
            adoption: Adoption::from_options(&spec.options, DEFAULT_MODE)?,
            create: spec.options.create.unwrap_or(default_create),
        })
    }

    fn object(&self) -> String {
        format!("posix-mq:{}", self.name)
    }

    fn open(self, access: libc::c_int) -> Result<Queue> {
        if self.create != Create::Never {
            match self.create_new(access) {
                Err(Error::AlreadyExists { .. }) if self.create == Create::IfMissing => {}
                other => return other,
            }
        }
        self.open_existing(access)
    }

    fn create_new(&self, access: libc::c_int) -> Result<Queue> {
        let limits = MqLimits::read();
        let capacity = self
            .capacity
            .unwrap_or((DEFAULT_CAPACITY as u64).min(limits.msg_max) as usize);
        let message_size = self
            .message_size
            .unwrap_or((DEFAULT_MESSAGE_SIZE as u64).min(limits.msgsize_max) as usize);
        limits.check(capacity, message_size)?;
        let fd = sys::open(
            self.name.as_c_str(),
            access | libc::O_CREAT | libc::O_EXCL,
            self.mode as libc::mode_t,
            Some((capacity as i64, message_size as i64)),
        )
        .map_err(|e| self.open_error(e, &limits))?;
        let identity = fstat(fd.as_fd())
            .map(|st| (st.st_dev, st.st_ino))
            .map_err(|e| Error::from_os("fstat", &self.object(), e.into()));
        let identity = match identity {
            Ok(identity) => identity,
            Err(e) => {
                let _ = destroy(&self.name);
                return Err(e);
            }
        };
        let owner = Owner::new(QueueName {
            name: self.name.clone(),
            identity,
        });
        // mq_open applies the umask; the mode asked for is what the queue gets.
        nix::sys::stat::fchmod(
            fd.as_fd(),
            nix::sys::stat::Mode::from_bits_truncate(self.mode),
        )
        .map_err(|e| Error::from_os("fchmod", &self.object(), e.into()))?;
        Ok(Queue {
            fd,
            name: self.name.clone(),
            capacity,
            message_size,
            owner: Some(owner),
            watch: None,
        })
    }

    fn open_existing(&self, access: libc::c_int) -> Result<Queue> {
        let fd = sys::open(self.name.as_c_str(), access, 0, None)
            .map_err(|e| self.open_error(e, &MqLimits::read()))?;
        let incompatible = |reason: String| Error::Incompatible {
            object: self.object(),
            reason,
        };
        let st =
            fstat(fd.as_fd()).map_err(|e| Error::from_os("fstat", &self.object(), e.into()))?;
        self.adoption
            .check(st.st_uid, st.st_gid, st.st_mode)
            .map_err(incompatible)?;
        let (maxmsg, msgsize, _) =
            sys::getattr(&fd).map_err(|e| Error::io(format!("mq_getattr {}", self.object()), e))?;
        let (capacity, message_size) = (maxmsg as usize, msgsize as usize);
        if self.capacity.is_some_and(|c| c != capacity)
            || self.message_size.is_some_and(|m| m != message_size)
        {
            return Err(incompatible(format!(
                "it has capacity {capacity} and message_size {message_size}; asked for capacity \
                 {} and message_size {}",
                self.capacity.map_or("any".into(), |c| c.to_string()),
                self.message_size.map_or("any".into(), |m| m.to_string()),
            )));
        }
        Ok(Queue {
            fd,
            name: self.name.clone(),
            capacity,
            message_size,
            owner: None,
            watch: None,
        })
    }

    fn open_error(&self, e: std::io::Error, limits: &MqLimits) -> Error {
        match Errno::from_raw(e.raw_os_error().unwrap_or(0)) {
            Errno::ENOSPC => Error::LimitExceeded {
                what: "fs.mqueue.queues_max".into(),
                limit: limits.queues_max,
            },
            Errno::EMFILE => Error::LimitExceeded {
                what: "RLIMIT_MSGQUEUE (bytes of all this user's queues) or RLIMIT_NOFILE".into(),
                limit: limits.rlimit_msgqueue,
            },
            _ => Error::from_os("mq_open", &self.object(), e),
        }
    }
}

impl Queue {
    /// A queue without a name any more (`mq_unlink`ed) can get no new peer.
    fn removed(&self) -> Result<bool> {
        let st = fstat(self.fd.as_fd())
            .map_err(|e| Error::io(format!("fstat posix-mq:{}", self.name), e.into()))?;
        Ok(st.st_nlink == 0)
    }

    /// The absolute `CLOCK_REALTIME` deadline for one attempt: in the past for `Never`, else
    /// at most [`REMOVAL_CHECK`] away so that a removed queue is noticed.
    fn attempt_deadline(wait: Wait) -> libc::timespec {
        let slice = match wait.remaining() {
            None => REMOVAL_CHECK,
            Some(left) if left.is_zero() => {
                return libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
            }
            Some(left) => left.min(REMOVAL_CHECK),
        };
        // SystemTime is CLOCK_REALTIME, the clock mq_timed* deadlines are measured on.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let at = now + slice;
        libc::timespec {
            tv_sec: at.as_secs() as libc::time_t,
            tv_nsec: at.subsec_nanos() as libc::c_long,
        }
    }

    /// After an attempt timed out: the caller's error if the wait is over, `Disconnected` if
    /// the queue was removed, else `None` (try again).
    fn after_timeout(&mut self, wait: Wait, expired: Error) -> Option<Error> {
        if wait == Wait::Never || wait.expired() {
            // An event loop's removal timer fired: look once, as a blocked call would.
            if self
                .watch
                .as_mut()
                .is_some_and(|w| std::mem::take(&mut w.check_due))
                && matches!(self.removed(), Ok(true))
            {
                return Some(Error::Disconnected);
            }
            return Some(expired);
        }
        match self.removed() {
            Ok(true) => Some(Error::Disconnected),
            Ok(false) => None,
            Err(e) => Some(e),
        }
    }
}

/// The sending end of a POSIX queue.
#[derive(Debug)]
pub struct MqSender {
    queue: Queue,
}

impl MqSender {
    /// Opens the queue `spec` names for sending, creating it if missing (unless the string
    /// says `create=never`). A sender never removes the queue, even one it created.
    pub fn open(spec: &TransportSpec) -> Result<MqSender> {
        let mut queue = Request::from_spec(spec, Create::IfMissing)?.open(libc::O_WRONLY)?;
        if let Some(owner) = queue.owner.take() {
            owner.release();
        }
        Ok(MqSender { queue })
    }

    /// Sends `msg` with priority `prio` (higher is received first; at most 32767), waiting as
    /// `wait` allows.
    pub fn send_priority(&mut self, msg: &[u8], prio: u32, wait: Wait) -> Result<()> {
        if msg.len() > self.queue.message_size {
            return Err(Error::MessageTooLarge {
                len: msg.len(),
                max: self.queue.message_size,
            });
        }
        loop {
            let deadline = Queue::attempt_deadline(wait);
            match sys::timedsend(&self.queue.fd, msg, prio, &deadline) {
                Ok(()) => return Ok(()),
                Err(e) => match Errno::from_raw(e.raw_os_error().unwrap_or(0)) {
                    Errno::EINTR => continue,
                    Errno::ETIMEDOUT => {
                        if let Some(err) = self.queue.after_timeout(wait, wait.full_error()) {
                            return Err(err);
                        }
                    }
                    Errno::EINVAL if prio >= 32768 => {
                        return Err(Error::LimitExceeded {
                            what: "MQ_PRIO_MAX (priority)".into(),
                            limit: 32768,
                        });
                    }
                    _ => {
                        return Err(Error::io(
                            format!("mq_timedsend posix-mq:{}", self.queue.name),
                            e,
                        ));
                    }
                },
            }
        }
    }

    /// Messages the queue holds (`capacity` in the transport string).
    pub fn capacity(&self) -> usize {
        self.queue.capacity
    }
}

impl Sender for MqSender {
    fn max_message_size(&self) -> usize {
        self.queue.message_size
    }

    fn send_with(&mut self, msg: &[u8], wait: Wait) -> Result<()> {
        self.send_priority(msg, 0, wait)
    }

    fn readiness(&mut self) -> Option<&mut dyn Readiness> {
        Some(self)
    }
}

impl AsFd for MqSender {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.queue.fd.as_fd()
    }
}

/// The queue descriptor (writable while the queue has room) and the removal check, in one
/// epoll set.
impl Readiness for MqSender {
    fn ready_fd(&mut self) -> Result<(BorrowedFd<'_>, Interest)> {
        self.queue.ready_fd(Interest::Writable)
    }

    /// "Retry now" only if the queue was removed: room shows on the descriptor.
    fn prepare_wait(&mut self) -> Result<bool> {
        self.queue.prepare_wait(Interest::Writable)
    }

    fn after_wake(&mut self) {
        self.queue.after_wake();
    }
}

/// The receiving end of a POSIX queue.
#[derive(Debug)]
pub struct MqReceiver {
    queue: Queue,
    /// A message taken off the queue for a caller whose buffer was too small: delivered next.
    pending: Option<(usize, u32)>,
    /// Holds `pending`; `mq_msgsize` bytes, allocated the first time a small buffer is used.
    scratch: Vec<u8>,
}

impl MqReceiver {
    /// Opens the queue `spec` names for receiving, creating it unless the string says
    /// `create=never`. If this call created it, dropping the receiver removes it.
    pub fn open(spec: &TransportSpec) -> Result<MqReceiver> {
        let queue = Request::from_spec(spec, Create::IfMissing)?.open(libc::O_RDONLY)?;
        Ok(MqReceiver {
            queue,
            pending: None,
            scratch: Vec::new(),
        })
    }

    /// Keeps the queue after this receiver is dropped, even if it created it.
    pub fn release_queue(&mut self) {
        if let Some(owner) = self.queue.owner.take() {
            owner.release();
        }
    }

    /// Messages the queue holds (`capacity` in the transport string).
    pub fn capacity(&self) -> usize {
        self.queue.capacity
    }

    /// Receives the oldest message of the highest priority into `buf`, waiting as `wait`
    /// allows; returns its length and priority.
    pub fn recv_priority(&mut self, buf: &mut [u8], wait: Wait) -> Result<(usize, u32)> {
        if let Some((len, prio)) = self.pending {
            return self.deliver_pending(buf, len, prio);
        }
        // The kernel wants room for the largest message; a smaller buffer goes through scratch.
        let direct = buf.len() >= self.queue.message_size;
        if !direct && self.scratch.is_empty() {
            self.scratch = vec![0; self.queue.message_size];
        }
        loop {
            let deadline = Queue::attempt_deadline(wait);
            let target = if direct {
                &mut *buf
            } else {
                &mut self.scratch[..]
            };
            match sys::timedreceive(&self.queue.fd, target, &deadline) {
                Ok((len, prio)) if direct => return Ok((len, prio)),
                Ok((len, prio)) => return self.deliver_pending(buf, len, prio),
                Err(e) => match Errno::from_raw(e.raw_os_error().unwrap_or(0)) {
                    Errno::EINTR => continue,
                    Errno::ETIMEDOUT => {
                        if let Some(err) = self.queue.after_timeout(wait, wait.empty_error()) {
                            return Err(err);
                        }
                    }
                    _ => {
                        return Err(Error::io(
                            format!("mq_timedreceive posix-mq:{}", self.queue.name),
                            e,
                        ));
                    }
                },
            }
        }
    }

    fn deliver_pending(&mut self, buf: &mut [u8], len: usize, prio: u32) -> Result<(usize, u32)> {
        let Some(dst) = buf.get_mut(..len) else {
            self.pending = Some((len, prio));
            return Err(Error::BufferTooSmall {
                len: buf.len(),
                needed: len,
            });
        };
        dst.copy_from_slice(&self.scratch[..len]);
        self.pending = None;
        Ok((len, prio))
    }
}

impl Receiver for MqReceiver {
    fn max_message_size(&self) -> usize {
        self.queue.message_size
    }

    fn recv_with(&mut self, buf: &mut [u8], wait: Wait) -> Result<usize> {
        self.recv_priority(buf, wait).map(|(len, _)| len)
    }

    fn readiness(&mut self) -> Option<&mut dyn Readiness> {
        Some(self)
    }
}

impl AsFd for MqReceiver {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.queue.fd.as_fd()
    }
}

/// The queue descriptor (readable while the queue holds a message) and the removal check, in
/// one epoll set.
impl Readiness for MqReceiver {
    fn ready_fd(&mut self) -> Result<(BorrowedFd<'_>, Interest)> {
        self.queue.ready_fd(Interest::Readable)
    }

    /// "Retry now" while a message taken for a too-small buffer waits here, off the queue, or
    /// once the queue was removed; else messages show on the descriptor.
    fn prepare_wait(&mut self) -> Result<bool> {
        if self.pending.is_some() {
            return Ok(true);
        }
        self.queue.prepare_wait(Interest::Readable)
    }

    fn after_wake(&mut self) {
        self.queue.after_wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    fn unique(options: &str) -> TransportSpec {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        format!("posix-mq:/ipc-mq-unit-{}-{n}{options}", std::process::id())
            .parse()
            .unwrap()
    }

    #[test]
    fn priorities_order_delivery_and_small_buffers_lose_nothing() {
        let spec = unique("?capacity=4&message_size=64");
        let mut rx = MqReceiver::open(&spec).unwrap();
        let mut tx = MqSender::open(&spec).unwrap();
        tx.send_priority(b"low", 1, Wait::Never).unwrap();
        tx.send_priority(b"a long high message", 7, Wait::Never)
            .unwrap();
        let mut small = [0u8; 4];
        assert!(matches!(
            rx.recv_priority(&mut small, Wait::Never),
            Err(Error::BufferTooSmall { len: 4, needed: 19 })
        ));
        let mut buf = [0u8; 64];
        assert_eq!(rx.recv_priority(&mut buf, Wait::Never).unwrap(), (19, 7));
        assert_eq!(rx.recv_priority(&mut small, Wait::Never).unwrap(), (3, 1));
        assert_eq!(&small[..3], b"low");
    }

    #[test]
    fn full_empty_and_timeouts() {
        let spec = unique("?capacity=2&message_size=16");
        let mut rx = MqReceiver::open(&spec).unwrap();
        let mut tx = MqSender::open(&spec).unwrap();
        let mut buf = [0u8; 16];
        assert!(matches!(rx.try_recv(&mut buf), Err(Error::Empty)));
        tx.try_send(b"1").unwrap();
        tx.try_send(b"2").unwrap();
        assert!(matches!(tx.try_send(b"3"), Err(Error::Full)));
        let started = Instant::now();
        assert!(matches!(
            tx.send_timeout(b"3", Duration::from_millis(250)),
            Err(Error::Timeout)
        ));
        assert!(started.elapsed() >= Duration::from_millis(250));
        assert!(matches!(
            tx.try_send(&[0; 17]),
            Err(Error::MessageTooLarge { len: 17, max: 16 })
        ));
    }

    #[test]
    fn capacity_above_msg_max_names_the_limit() {
        let limits = MqLimits::read();
        let spec = unique(&format!("?capacity={}", limits.msg_max + 1));
        match MqReceiver::open(&spec) {
            Err(Error::LimitExceeded { what, limit }) => {
                assert!(what.contains("fs.mqueue.msg_max"), "{what}");
                assert_eq!(limit, limits.msg_max);
            }
            other => panic!("expected LimitExceeded, got {other:?}"),
        }
        let spec = unique(&format!("?message_size={}", limits.msgsize_max + 1));
        assert!(matches!(
            MqReceiver::open(&spec),
            Err(Error::LimitExceeded { what, .. }) if what.contains("msgsize_max")
        ));
    }

    #[test]
    fn existing_queue_with_other_attributes_is_incompatible_and_creator_removes() {
        let spec = unique("?capacity=3&message_size=32");
        let rx = MqReceiver::open(&spec).unwrap();
        let other: TransportSpec = spec
            .to_string()
            .replace("capacity=3", "capacity=5")
            .parse()
            .unwrap();
        match MqSender::open(&other) {
            Err(Error::Incompatible { reason, .. }) => {
                assert!(reason.contains("capacity 3"), "{reason}")
            }
            other => panic!("expected Incompatible, got {other:?}"),
        }
        drop(rx);
        let never: TransportSpec = format!("{spec}&create=never").parse().unwrap();
        assert!(matches!(
            MqSender::open(&never),
            Err(Error::NotFound { .. })
        ));
    }

    #[test]
    fn squatted_queue_is_refused() {
        let spec = unique("?capacity=2&message_size=16");
        let Address::Name(name) = &spec.address else {
            unreachable!()
        };
        let name = PosixName::new(name).unwrap();
        // Someone made the queue first, readable by everyone ...
        let squatter = sys::open(
            name.as_c_str(),
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL,
            0o666,
            Some((2, 16)),
        )
        .unwrap();
        struct Remove<'a>(&'a PosixName);
        impl Drop for Remove<'_> {
            fn drop(&mut self) {
                let _ = destroy(self.0);
            }
        }
        let _remove = Remove(&name);
        nix::sys::stat::fchmod(
            squatter.as_fd(),
            nix::sys::stat::Mode::from_bits_truncate(0o666),
        )
        .unwrap();
        match MqReceiver::open(&spec) {
            Err(Error::Incompatible { reason, .. }) => assert!(reason.contains("0666"), "{reason}"),
            other => panic!("expected Incompatible, got {other:?}"),
        }
        // ... or owned by another user.
        if nix::unistd::geteuid().is_root() {
            nix::sys::stat::fchmod(
                squatter.as_fd(),
                nix::sys::stat::Mode::from_bits_truncate(0o600),
            )
            .unwrap();
            nix::unistd::fchown(
                squatter.as_fd(),
                Some(nix::unistd::Uid::from_raw(65534)),
                None,
            )
            .unwrap();
            match MqSender::open(&spec) {
                Err(Error::Incompatible { reason, .. }) => {
                    assert!(reason.contains("uid 65534"), "{reason}")
                }
                other => panic!("expected Incompatible, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_sender_creates_a_missing_queue_and_leaves_it_for_the_receiver() {
        let spec = unique("?capacity=8&message_size=16");
        let Address::Name(name) = &spec.address else {
            unreachable!()
        };
        let name = PosixName::new(name).unwrap();
        let mut tx = MqSender::open(&spec).unwrap();
        tx.send(b"x").unwrap();
        drop(tx);
        // The receiver opens what the sender made (and, not having created it, leaves it).
        let mut rx = MqReceiver::open(&spec).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(rx.try_recv(&mut buf).unwrap(), 1);
        drop(rx);
        destroy(&name).unwrap();
    }

    /// One round of the readiness protocol's sleep, at most `within`: whether the endpoint
    /// said to try again.
    fn wait_ready(ready: &mut dyn Readiness, within: Duration) -> bool {
        if ready.prepare_wait().unwrap() {
            return true;
        }
        let woke = {
            let (fd, interest) = ready.ready_fd().unwrap();
            crate::sys::poll_one(fd, interest == Interest::Readable, within).unwrap()
        };
        if woke {
            ready.after_wake();
        }
        woke
    }

    const DEADLINE: Duration = Duration::from_secs(10);
    const QUIET: Duration = Duration::from_millis(50);

    #[test]
    fn the_queue_descriptor_shows_messages_and_room() {
        let spec = unique("?capacity=2&message_size=16");
        let mut rx = MqReceiver::open(&spec).unwrap();
        let mut tx = MqSender::open(&spec).unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(
            rx.readiness().unwrap().ready_fd().unwrap().1,
            Interest::Readable
        );
        assert!(matches!(rx.try_recv(&mut buf), Err(Error::Empty)));
        assert!(!wait_ready(rx.readiness().unwrap(), QUIET));
        assert!(wait_ready(tx.readiness().unwrap(), DEADLINE));
        tx.try_send(b"1").unwrap();
        assert!(wait_ready(rx.readiness().unwrap(), DEADLINE));
        tx.try_send(b"2").unwrap();
        // Full: try_send does not wait, and the sender is not ready until a message goes.
        let started = Instant::now();
        assert!(matches!(tx.try_send(b"3"), Err(Error::Full)));
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(!wait_ready(tx.readiness().unwrap(), QUIET));
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 16];
            rx.recv_timeout(&mut buf, DEADLINE).map(|n| (rx, n))
        });
        assert!(wait_ready(tx.readiness().unwrap(), DEADLINE));
        tx.try_send(b"3").unwrap();
        let (mut rx, n) = reader.join().unwrap().unwrap();
        assert_eq!(n, 1);
        // A message held back for a small buffer is off the queue: retry now.
        let mut small = [0u8; 0];
        assert!(matches!(
            rx.try_recv(&mut small),
            Err(Error::BufferTooSmall { .. })
        ));
        assert!(rx.readiness().unwrap().prepare_wait().unwrap());
        assert_eq!(rx.try_recv(&mut buf).unwrap(), 1);
        assert!(wait_ready(rx.readiness().unwrap(), DEADLINE));
        assert_eq!(rx.try_recv(&mut buf).unwrap(), 1);
        assert!(!rx.readiness().unwrap().prepare_wait().unwrap());
        let started = Instant::now();
        assert!(matches!(rx.try_recv(&mut buf), Err(Error::Empty)));
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn blocked_receiver_sees_the_queue_removed() {
        let spec = unique("?capacity=2&message_size=16");
        let mut rx = MqReceiver::open(&spec).unwrap();
        rx.release_queue();
        let Address::Name(name) = &spec.address else {
            unreachable!()
        };
        let name = PosixName::new(name).unwrap();
        let remover = std::thread::spawn(move || destroy(&name));
        let mut buf = [0u8; 16];
        let started = Instant::now();
        let result = rx.recv_timeout(&mut buf, Duration::from_secs(10));
        remover.join().unwrap().unwrap();
        assert!(matches!(result, Err(Error::Disconnected)), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn an_event_loop_sees_the_queue_removed_within_the_blocking_bound() {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        let spec = unique("?capacity=2&message_size=16");
        let mut rx = MqReceiver::open(&spec).unwrap();
        rx.release_queue();
        let mut tx = MqSender::open(&spec).unwrap();
        let Address::Name(name) = &spec.address else {
            unreachable!()
        };
        let mut buf = [0u8; 16];
        assert!(matches!(rx.try_recv(&mut buf), Err(Error::Empty)));
        assert!(!rx.prepare_wait().unwrap());
        while tx.try_send(b"x").is_ok() {}
        assert!(!tx.prepare_wait().unwrap());
        destroy(&PosixName::new(name).unwrap()).unwrap();
        for end in [&mut rx as &mut dyn Readiness, &mut tx] {
            let started = Instant::now();
            let (fd, interest) = end.ready_fd().unwrap();
            assert_eq!(interest, Interest::Readable);
            let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
            assert_eq!(poll(&mut fds, PollTimeout::from(5000u16)).unwrap(), 1);
            assert!(started.elapsed() < Duration::from_secs(2));
            end.after_wake();
        }
        // The sender's queue is full: the removal shows on the next try.
        assert!(matches!(tx.try_send(b"x"), Err(Error::Disconnected)));
        // The receiver's queue holds messages: they are delivered first; then the next wait
        // ends within the removal check and says so.
        while rx.try_recv(&mut buf).is_ok() {}
        let started = Instant::now();
        loop {
            match rx.try_recv(&mut buf) {
                Err(Error::Disconnected) => break,
                Err(Error::Empty) => {}
                other => panic!("{other:?}"),
            }
            assert!(started.elapsed() < Duration::from_secs(2));
            if rx.prepare_wait().unwrap() {
                continue;
            }
            let (fd, _) = rx.ready_fd().unwrap();
            let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::from(5000u16)).unwrap();
            rx.after_wake();
        }
    }
}
