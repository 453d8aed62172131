//! Message-level flow control of `tcp:`: the bookkeeping of the window a sender may fill and of
//! the acknowledgements its receiver returns (the wire format is in the crate documentation).
//!
//! TCP's own window cannot make `Full` exact: the receiver's kernel merges small segments and
//! reopens its window with nobody reading. So the sender counts the frame bytes it wrote and
//! the receiver tells it, on the same connection, how many it has taken out with `recv`; the
//! difference may never exceed the window the sender announced when it connected.

use ipc_core::{Error, Result};

/// First bytes a sender writes on its connection, before the window.
pub const TCP_HELLO_MAGIC: [u8; 8] = *b"ipc-tcp1";
/// Bytes of the hello: [`TCP_HELLO_MAGIC`], then the window (`u64`, little endian).
pub(crate) const HELLO_LEN: usize = 16;
/// Bytes of an acknowledgement: the total of frame bytes taken out (`u64`, little endian).
pub(crate) const ACK_LEN: usize = 8;

/// The hello announcing `window` bytes.
pub(crate) fn hello(window: u64) -> [u8; HELLO_LEN] {
    let mut out = [0; HELLO_LEN];
    out[..8].copy_from_slice(&TCP_HELLO_MAGIC);
    out[8..].copy_from_slice(&window.to_le_bytes());
    out
}

/// The window a hello announces.
pub(crate) fn parse_hello(bytes: &[u8; HELLO_LEN]) -> Result<u64> {
    if bytes[..8] != TCP_HELLO_MAGIC {
        return Err(Error::corrupted(
            "a tcp peer that does not speak ipc frames: its first bytes are not the ipc-tcp1 \
             hello",
        ));
    }
    let window = u64::from_le_bytes(bytes[8..].try_into().expect("8 bytes"));
    if window == 0 || window > i32::MAX as u64 {
        return Err(Error::corrupted(format!(
            "a tcp sender announced a window of {window} bytes (1..=i32::MAX)"
        )));
    }
    Ok(window)
}

/// The sender's side: what it may still write.
#[derive(Debug)]
pub(crate) struct Credit {
    window: u64,
    /// Frame bytes written since the hello.
    sent: u64,
    /// Frame bytes the receiver said it took out.
    acked: u64,
    /// An acknowledgement read in part.
    record: [u8; ACK_LEN],
    record_len: usize,
    /// Why the receiver's acknowledgements were refused; every later call says it again.
    corrupted: Option<String>,
}

impl Credit {
    pub(crate) fn new(window: u64) -> Credit {
        Credit {
            window,
            sent: 0,
            acked: 0,
            record: [0; ACK_LEN],
            record_len: 0,
            corrupted: None,
        }
    }

    /// Bytes that may be written now.
    pub(crate) fn available(&self) -> u64 {
        self.window - (self.sent - self.acked)
    }

    /// Counts `n` bytes written (at most [`Credit::available`]).
    pub(crate) fn spend(&mut self, n: usize) {
        debug_assert!(n as u64 <= self.available());
        self.sent += n as u64;
    }

    /// `Corrupted` once the receiver sent something that is not an acknowledgement.
    pub(crate) fn check(&self) -> Result<()> {
        match &self.corrupted {
            Some(what) => Err(Error::corrupted(what.clone())),
            None => Ok(()),
        }
    }

    /// Takes in bytes read from the receiver. An acknowledgement must move forward and may not
    /// cover more than was written; anything else is [`Error::Corrupted`], for good.
    pub(crate) fn take(&mut self, mut bytes: &[u8]) -> Result<()> {
        self.check()?;
        while !bytes.is_empty() {
            let n = (ACK_LEN - self.record_len).min(bytes.len());
            self.record[self.record_len..self.record_len + n].copy_from_slice(&bytes[..n]);
            self.record_len += n;
            bytes = &bytes[n..];
            if self.record_len < ACK_LEN {
                break;
            }
            self.record_len = 0;
            let total = u64::from_le_bytes(self.record);
            if total <= self.acked || total > self.sent {
                let what = format!(
                    "the tcp receiver acknowledged {total} bytes taken out, after {} and with \
                     {} written: not an ipc receiver, or a broken one",
                    self.acked, self.sent
                );
                self.corrupted = Some(what);
                return self.check();
            }
            self.acked = total;
        }
        Ok(())
    }
}

/// The receiver's side of one connection: what it read, and what it acknowledged.
#[derive(Debug)]
pub(crate) struct Acks {
    window: u64,
    /// Frame bytes read from the connection.
    received: u64,
    /// The total of the last acknowledgement written whole.
    acked: u64,
    /// An acknowledgement being written, and how much of it went out: it is finished before
    /// any other, so the sender never sees a torn record.
    pending: Option<([u8; ACK_LEN], usize)>,
}

impl Acks {
    pub(crate) fn new(window: u64) -> Acks {
        Acks {
            window,
            received: 0,
            acked: 0,
            pending: None,
        }
    }

    /// Counts `n` bytes read; a sender writing past its window is [`Error::Corrupted`].
    pub(crate) fn received(&mut self, n: usize) -> Result<()> {
        self.received += n as u64;
        if self.received - self.acked > self.window {
            return Err(Error::corrupted(format!(
                "a tcp sender wrote {} bytes past the acknowledged ones, beyond its window of {}",
                self.received - self.acked,
                self.window
            )));
        }
        Ok(())
    }

    /// The acknowledgement to write, if one is due, given how many bytes are read but not
    /// taken out (`unread`) and whether the next receive must read the connection (`drained`).
    ///
    /// Due only when the sender has used its whole window (all of it has been read: it can
    /// write nothing more), and everything whole has been taken out or half the window has
    /// (so that the sender refills that half while the rest is taken out): one or two
    /// acknowledgements per window, and never one the sender might not read. A sender that closes its socket with
    /// acknowledgements on their way is reset by its kernel when they arrive, which throws away
    /// what it had not transmitted yet; this one comes only when the sender has nothing left in
    /// flight (everything it wrote has been read here), so such a reset loses nothing.
    pub(crate) fn due(
        &mut self,
        unread: usize,
        drained: bool,
    ) -> Option<&mut ([u8; ACK_LEN], usize)> {
        if self.pending.is_none() {
            let taken = self.received - unread as u64;
            let stalled = self.received - self.acked >= self.window;
            let owed = taken - self.acked;
            if owed == 0 || !stalled || !(drained || owed >= self.window.div_ceil(2)) {
                return None;
            }
            self.pending = Some((taken.to_le_bytes(), 0));
        }
        self.pending.as_mut()
    }

    /// Counts `n` bytes of the pending acknowledgement written.
    pub(crate) fn wrote(&mut self, n: usize) {
        if let Some((record, done)) = &mut self.pending {
            *done += n;
            if *done == ACK_LEN {
                self.acked = u64::from_le_bytes(*record);
                self.pending = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_round_trips_and_foreign_bytes_are_corrupted() {
        assert_eq!(parse_hello(&hello(4096)).unwrap(), 4096);
        let e = parse_hello(b"GET / HTTP/1.1\r\n").unwrap_err();
        assert!(matches!(e, Error::Corrupted { .. }), "{e:?}");
        let e = parse_hello(&hello(0)).unwrap_err();
        assert!(matches!(e, Error::Corrupted { .. }), "{e:?}");
    }

    #[test]
    fn acknowledgements_return_credit_even_in_pieces() {
        let mut c = Credit::new(100);
        c.spend(100);
        assert_eq!(c.available(), 0);
        let ack = 60u64.to_le_bytes();
        c.take(&ack[..3]).unwrap();
        assert_eq!(c.available(), 0, "a record in part returns nothing");
        c.take(&ack[3..]).unwrap();
        assert_eq!(c.available(), 60);
    }

    #[test]
    fn garbage_acknowledgements_are_corrupted_for_good() {
        let mut c = Credit::new(100);
        c.spend(50);
        let e = c.take(&51u64.to_le_bytes()).unwrap_err();
        assert!(
            matches!(e, Error::Corrupted { .. }),
            "more than written: {e:?}"
        );
        assert!(c.take(&10u64.to_le_bytes()).is_err(), "sticky");
        assert!(c.check().is_err());

        let mut c = Credit::new(100);
        c.spend(50);
        c.take(&20u64.to_le_bytes()).unwrap();
        let e = c.take(&20u64.to_le_bytes()).unwrap_err();
        assert!(matches!(e, Error::Corrupted { .. }), "not forward: {e:?}");
        assert_eq!(c.available(), 70, "credit from before the garbage stays");
    }

    #[test]
    fn acknowledgements_only_once_the_sender_is_out_of_window() {
        let mut a = Acks::new(100);
        a.received(60).unwrap();
        assert!(a.due(0, true).is_none(), "the sender still has credit");
        a.received(40).unwrap();
        assert!(a.due(60, false).is_none(), "40 taken out, more to take");
        let (record, _) = *a.due(10, true).expect("window used and drained");
        assert_eq!(u64::from_le_bytes(record), 90);
        a.wrote(5);
        assert_eq!(
            a.due(0, true).unwrap().1,
            5,
            "the record in part is finished first"
        );
        a.wrote(3);
        assert!(
            a.due(0, true).is_none(),
            "nothing more until the sender is out again"
        );
        a.received(90).unwrap();
        assert!(a.due(60, false).is_none(), "30 of 100 taken out");
        let (record, _) = *a.due(50, false).expect("half the window taken out");
        assert_eq!(u64::from_le_bytes(record), 140);
        a.wrote(8);
        a.received(50).unwrap();
        let e = a.received(1).unwrap_err();
        assert!(
            matches!(e, Error::Corrupted { .. }),
            "past the window: {e:?}"
        );
    }
}
