//! `socketpair:` — a `SOCK_SEQPACKET` socket pair, both directions, handed to a child as
//! `pipe:` hands a pipe end (see the crate documentation).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::process::Command;

use ipc_core::{
    Address, Error, Interest, Options, Readiness, Receiver, Result, Sender, Transport,
    TransportSpec, Wait,
};
use nix::sys::socket::{AddressFamily, SockFlag, SockType, getsockopt, socketpair, sockopt};

use crate::SocketConfig;
use crate::seq::{SeqSocket, size_send_buffer};

/// Creates a socket pair; either end sends to and receives from the other.
pub fn channel(config: &SocketConfig) -> Result<(SocketPairEnd, SocketPairEnd)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| Error::io("socketpair(AF_UNIX, SOCK_SEQPACKET)", e.into()))?;
    let end = |fd| -> Result<SocketPairEnd> {
        size_send_buffer(
            std::os::fd::AsFd::as_fd(&fd),
            config.message_size,
            config.capacity,
        )?;
        Ok(SocketPairEnd::new(
            SeqSocket::new(fd, config.message_size),
            *config,
        ))
    };
    Ok((end(a)?, end(b)?))
}

/// Opens the end named by `spec` (`socketpair:fd=N`), inherited from the parent. It must be an
/// open `SOCK_SEQPACKET` socket ([`Error::NotFound`] / [`Error::Incompatible`] otherwise),
/// adopted once ([`Error::AlreadyExists`] for a second time), and it gets `FD_CLOEXEC` again.
pub fn open(spec: &TransportSpec) -> Result<SocketPairEnd> {
    if spec.transport != Transport::SocketPair {
        return Err(Error::invalid_spec(
            spec.to_string(),
            "not a socketpair transport string",
        ));
    }
    let config = SocketConfig::from_options(&spec.options)?;
    let Address::Fd(fd) = spec.address else {
        return Err(Error::invalid_spec(
            spec.to_string(),
            "a socket pair is made with ipc_socket::pair::channel() and handed to a child with \
             inherit(); the child opens `socketpair:fd=N`",
        ));
    };
    let object = format!("socketpair:fd={fd}");
    let owned = ipc_pipe::raw::adopt_inherited(fd, &object, |borrowed| {
        match getsockopt(&borrowed, sockopt::SockType) {
            Ok(SockType::SeqPacket) => Ok(()),
            _ => Err(Error::Incompatible {
                object: object.clone(),
                reason: "descriptor is not a SOCK_SEQPACKET socket".into(),
            }),
        }
    })?;
    size_send_buffer(owned.as_fd(), config.message_size, config.capacity)?;
    Ok(SocketPairEnd::new(
        SeqSocket::new(owned, config.message_size),
        config,
    ))
}

/// An end of a socket pair that a child process will inherit. Keep it until the child is
/// spawned, then drop it to close the parent's copy.
#[derive(Debug)]
pub struct Inherited {
    _fd: ipc_pipe::raw::InheritedFd,
    spec: TransportSpec,
}

impl Inherited {
    /// The transport string the child opens its end with (`socketpair:fd=N`, with the options
    /// that make both ends agree).
    pub fn spec(&self) -> &TransportSpec {
        &self.spec
    }
}

/// One end of a socket pair: a [`Sender`] and a [`Receiver`] at once. (Both traits have
/// `max_message_size` and `readiness`: name the trait, `Sender::readiness(&mut end)`.)
#[derive(Debug)]
pub struct SocketPairEnd {
    sock: SeqSocket,
    config: SocketConfig,
    /// What the last `readiness()` was asked for: writable for a sender, readable for a
    /// receiver. An end used both ways in one event loop registers its descriptor for both.
    interest: Interest,
}

impl SocketPairEnd {
    fn new(sock: SeqSocket, config: SocketConfig) -> SocketPairEnd {
        SocketPairEnd {
            sock,
            config,
            interest: Interest::Readable,
        }
    }

    /// Another handle on the same end (`dup`). Records are written whole, so any number of
    /// processes may send on one end without interleaving.
    pub fn try_clone(&self) -> Result<SocketPairEnd> {
        let fd = self
            .sock
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| Error::io("dup socket", e))?;
        Ok(SocketPairEnd::new(
            SeqSocket::new(fd, self.sock.max_message_size()),
            self.config,
        ))
    }

    /// Hands this end to the child `cmd` will spawn (see the crate documentation). Nothing is
    /// buffered in the end itself, so it can be handed over at any time.
    pub fn inherit(self, cmd: &mut Command) -> Result<Inherited> {
        let fd = self.sock.into_fd();
        let mut spec = TransportSpec {
            transport: Transport::SocketPair,
            address: Address::Fd(fd.as_raw_fd()),
            options: Options::default(),
        };
        self.config.write_options(&mut spec.options);
        Ok(Inherited {
            _fd: ipc_pipe::raw::inherit_fd(fd, cmd),
            spec,
        })
    }
}

impl Sender for SocketPairEnd {
    fn max_message_size(&self) -> usize {
        self.sock.max_message_size()
    }

    fn send_with(&mut self, msg: &[u8], wait: Wait) -> Result<()> {
        self.sock.send(msg, wait)
    }

    fn readiness(&mut self) -> Option<&mut dyn Readiness> {
        self.interest = Interest::Writable;
        Some(self)
    }
}

impl Receiver for SocketPairEnd {
    fn max_message_size(&self) -> usize {
        self.sock.max_message_size()
    }

    fn recv_with(&mut self, buf: &mut [u8], wait: Wait) -> Result<usize> {
        self.sock.recv(buf, wait, self.config.wait)
    }

    fn readiness(&mut self) -> Option<&mut dyn Readiness> {
        self.interest = Interest::Readable;
        Some(self)
    }
}

impl AsFd for SocketPairEnd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

/// The socket: readable when a record (or the other end's close) is there, writable when its
/// send buffer has room; level-triggered and exact, so nothing to arm or consume.
impl Readiness for SocketPairEnd {
    fn ready_fd(&mut self) -> Result<(BorrowedFd<'_>, Interest)> {
        Ok((self.sock.as_fd(), self.interest))
    }

    fn prepare_wait(&mut self) -> Result<bool> {
        Ok(false)
    }

    fn after_wake(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    use nix::sys::socket::{MsgFlags, Shutdown};
    use std::os::fd::{IntoRawFd, RawFd};

    /// Messages of up to 16 bytes, the rest as by default.
    fn small_messages() -> SocketConfig {
        SocketConfig {
            message_size: 16,
            ..SocketConfig::default()
        }
    }

    fn spec(fd: RawFd) -> TransportSpec {
        format!("socketpair:fd={fd}").parse().unwrap()
    }

    #[test]
    fn only_an_open_seqpacket_socket_is_adopted_and_only_once() {
        let e = open(&spec(100_000)).unwrap_err();
        assert!(matches!(e, Error::NotFound { .. }), "{e}");
        let (read, write) = nix::unistd::pipe().unwrap();
        let e = open(&spec(read.as_raw_fd())).unwrap_err();
        assert!(matches!(e, Error::Incompatible { .. }), "{e}");
        let (a, b) = channel(&SocketConfig::default()).unwrap();
        let fd = a.sock.into_fd().into_raw_fd();
        let mut adopted = open(&spec(fd)).unwrap();
        let e = open(&spec(fd)).unwrap_err();
        assert!(matches!(e, Error::AlreadyExists { .. }), "{e}");
        drop((read, write));
        let mut b = b;
        Sender::send(&mut b, b"to the adopted end").unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(Receiver::recv(&mut adopted, &mut buf).unwrap(), 18);
    }

    #[test]
    fn both_directions_and_the_other_end_going_is_disconnected() {
        let (mut a, mut b) = channel(&small_messages()).unwrap();
        let mut buf = [0u8; 16];
        assert!(matches!(
            Receiver::try_recv(&mut a, &mut buf),
            Err(Error::Empty)
        ));
        Sender::send(&mut a, b"").unwrap();
        Sender::send(&mut b, b"back").unwrap();
        assert_eq!(
            Receiver::recv(&mut b, &mut buf).unwrap(),
            0,
            "an empty message"
        );
        assert_eq!(Receiver::recv(&mut a, &mut buf).unwrap(), 4);
        let e = Sender::send(&mut a, &[0; 17]).unwrap_err();
        assert!(
            matches!(e, Error::MessageTooLarge { len: 17, max: 16 }),
            "{e}"
        );
        Sender::send(&mut a, b"twelve bytes").unwrap();
        let e = Receiver::recv(&mut b, &mut buf[..4]).unwrap_err();
        assert!(matches!(e, Error::BufferTooSmall { needed: 12, .. }), "{e}");
        assert_eq!(
            Receiver::recv(&mut b, &mut buf).unwrap(),
            12,
            "kept for a larger buffer"
        );
        drop(a);
        assert!(matches!(
            Receiver::recv(&mut b, &mut buf),
            Err(Error::Disconnected)
        ));
        assert!(matches!(
            Sender::send(&mut b, b"x"),
            Err(Error::Disconnected)
        ));
    }

    /// A receive that polls must not take the end of the connection for the end of the
    /// messages: Linux's non-blocking `SOCK_SEQPACKET` receive can find the queue empty, then
    /// find the peer gone, when the peer's last record and its close land between the two
    /// looks. A thread sends, since the race is the kernel's and a child process per trial
    /// would make the thousands of trials it takes too slow.
    #[test]
    fn a_polling_receive_sees_the_last_record_before_the_end() {
        const TRIALS: usize = 60_000;
        let (hand_over, senders) = std::sync::mpsc::channel::<SocketPairEnd>();
        let sender = std::thread::spawn(move || {
            for mut tx in senders {
                Sender::send(&mut tx, b"last").unwrap();
                // Closer to the record than the close of a drop: the race comes about twice as
                // often (measured).
                nix::sys::socket::shutdown(tx.as_fd().as_raw_fd(), Shutdown::Write).unwrap();
            }
        });
        let mut lost = 0;
        let mut buf = [0u8; 16];
        for _ in 0..TRIALS {
            let (tx, mut rx) = channel(&small_messages()).unwrap();
            hand_over.send(tx).unwrap();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            let received = loop {
                match Receiver::try_recv(&mut rx, &mut buf) {
                    Ok(_) => break 1,
                    Err(Error::Empty) => {}
                    Err(Error::Disconnected) => break 0,
                    Err(e) => panic!("{e}"),
                }
                assert!(std::time::Instant::now() < deadline, "no record, no end");
            };
            if received == 1 {
                assert!(matches!(
                    Receiver::recv(&mut rx, &mut buf),
                    Err(Error::Disconnected)
                ));
            }
            lost += 1 - received;
        }
        drop(hand_over);
        sender.join().unwrap();
        assert_eq!(
            lost, 0,
            "records lost to the end of the connection in {TRIALS} trials"
        );
    }

    /// A record of no bytes (a foreign peer's: ours always carry a tag) reads as 0, as the
    /// end does; with the peer still there it is `Corrupted`, not `Disconnected`.
    #[test]
    fn an_empty_record_from_a_connected_peer_is_corrupted_not_the_end() {
        let (mut a, mut b) = channel(&small_messages()).unwrap();
        let send_empty = |end: &SocketPairEnd| {
            nix::sys::socket::send(end.as_fd().as_raw_fd(), &[], MsgFlags::empty()).unwrap();
        };
        // A buffer of `max` reads the record itself; a smaller one peeks at it first.
        for room in [16, 4] {
            send_empty(&a);
            let mut buf = [0u8; 16];
            let e = Receiver::try_recv(&mut b, &mut buf[..room]).unwrap_err();
            assert!(matches!(e, Error::Corrupted { .. }), "room {room}: {e}");
            if room == 16 {
                Sender::send(&mut a, b"next").unwrap();
                assert_eq!(Receiver::recv(&mut b, &mut buf).unwrap(), 4);
            }
        }
        drop(a);
        let e = Receiver::recv(&mut b, &mut [0u8; 16]).unwrap_err();
        assert!(matches!(e, Error::Disconnected), "{e}");
    }

    /// Whether thread `tid` of this process is asleep (state `S` in its `stat`).
    fn sleeping(tid: nix::unistd::Pid) -> bool {
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
        // The state follows the command name, which is in parentheses and may hold spaces.
        let after_name = &stat[stat.rfind(')').unwrap() + 1..];
        after_name.split_whitespace().next() == Some("S")
    }

    /// A receive that may wait forever waits in the kernel; on a descriptor someone set to
    /// `O_NONBLOCK` (a parent, before handing it down) it still waits, in `poll`.
    #[test]
    fn a_receive_that_may_wait_forever_waits_in_blocking_and_nonblocking_mode() {
        for nonblocking in [false, true] {
            let (mut a, mut b) = channel(&SocketConfig::default()).unwrap();
            if nonblocking {
                let fd = a.as_fd();
                let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).unwrap());
                fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK)).unwrap();
            }
            let receiver = nix::unistd::gettid();
            let sender = std::thread::spawn(move || {
                // Sent once the receiver sleeps, so that the receive has to wait for it.
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                while !sleeping(receiver) {
                    assert!(std::time::Instant::now() < deadline, "receiver never slept");
                    std::thread::yield_now();
                }
                Sender::send(&mut b, b"late").unwrap();
                b
            });
            let mut buf = [0u8; 16];
            let got = Receiver::recv(&mut a, &mut buf);
            assert!(matches!(got, Ok(4)), "nonblocking {nonblocking}: {got:?}");
            assert_eq!(&buf[..4], b"late");
            drop(sender.join().unwrap());
        }
    }
}
