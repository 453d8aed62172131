//! System V message-queue calls: `msgget`, `msgsnd`, `msgrcv`, `msgctl`, behind safe functions.
//!
//! Messages go through a [`MsgBuf`]: the kernel's `struct msgbuf` (a `long` type followed by
//! the text) in a buffer aligned for the `long`, whose length the functions check before every
//! call, so that the kernel never writes or reads past it.

use std::io;

/// `MSG_COPY` (`linux/msg.h`): copy the message at an index instead of taking it (needs
/// `IPC_NOWAIT`; `CONFIG_CHECKPOINT_RESTORE`).
pub const MSG_COPY: libc::c_int = 0o40000;

/// Size of the `long mtype` in front of a message's text.
const HEADER: usize = std::mem::size_of::<libc::c_long>();

/// A `struct msgbuf` with room for `capacity` bytes of text.
#[derive(Debug)]
pub struct MsgBuf {
    /// `words[0]` is `mtype`; the text follows. `c_long`s, so the header is aligned.
    words: Vec<libc::c_long>,
    capacity: usize,
}

impl MsgBuf {
    /// A buffer for messages of up to `capacity` bytes.
    pub fn new(capacity: usize) -> MsgBuf {
        MsgBuf {
            words: vec![0; 1 + capacity.div_ceil(HEADER)],
            capacity,
        }
    }

    /// Largest text the buffer holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The type of the message last received (or set).
    // `c_long` is `i64` here, `i32` on 32-bit targets.
    #[allow(clippy::useless_conversion)]
    pub fn mtype(&self) -> i64 {
        i64::from(self.words[0])
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `words` is an initialised allocation of `words.len() * HEADER` bytes; u8 has
        // no alignment or validity requirement, and the borrow of `self` keeps it alive and
        // unaliased by writers for the slice's lifetime.
        unsafe {
            std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.words.len() * HEADER)
        }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `bytes`, with the exclusive borrow of `self` making the slice the only
        // access to the allocation while it lives; any byte pattern is a valid `c_long`.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.words.as_mut_ptr().cast::<u8>(),
                self.words.len() * HEADER,
            )
        }
    }

    /// Puts `mtype` and `text` (at most [`capacity`](MsgBuf::capacity) bytes, else `None`) in
    /// the buffer.
    pub fn fill(&mut self, mtype: i64, text: &[u8]) -> Option<()> {
        if text.len() > self.capacity {
            return None;
        }
        self.words[0] = mtype as libc::c_long;
        self.bytes_mut()[HEADER..HEADER + text.len()].copy_from_slice(text);
        Some(())
    }

    /// The first `len` bytes of text (clamped to the capacity).
    pub fn text(&self, len: usize) -> &[u8] {
        &self.bytes()[HEADER..HEADER + len.min(self.capacity)]
    }
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `msgget(key, flags)`: the queue's id.
pub fn get(key: libc::key_t, flags: libc::c_int) -> io::Result<libc::c_int> {
    // SAFETY: msgget takes plain integers and touches no memory of ours.
    check(unsafe { libc::msgget(key, flags) })
}

/// `msgctl(id, IPC_STAT)`.
pub fn stat(id: libc::c_int) -> io::Result<libc::msqid_ds> {
    // SAFETY: msqid_ds is plain data for which all-zero is a valid value.
    let mut ds: libc::msqid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: `ds` is a valid, writable msqid_ds for the duration of the call.
    check(unsafe { libc::msgctl(id, libc::IPC_STAT, &mut ds) })?;
    Ok(ds)
}

/// A queue's byte limit (`msg_qbytes`, whose C type varies by target).
#[allow(clippy::useless_conversion)]
pub fn qbytes(ds: &libc::msqid_ds) -> u64 {
    u64::from(ds.msg_qbytes)
}

/// What a queue holds now: `(bytes, messages)` (`__msg_cbytes`, `msg_qnum`).
#[allow(clippy::useless_conversion)]
pub fn occupancy(ds: &libc::msqid_ds) -> (u64, u64) {
    (u64::from(ds.__msg_cbytes), u64::from(ds.msg_qnum))
}

/// `msgctl(id, IPC_SET)` with the queue's current attributes but `msg_qbytes` = `qbytes`.
pub fn set_qbytes(id: libc::c_int, qbytes: u64) -> io::Result<()> {
    let mut ds = stat(id)?;
    ds.msg_qbytes = qbytes as libc::msglen_t;
    // SAFETY: `ds` is a valid msqid_ds filled by IPC_STAT, readable for the call.
    check(unsafe { libc::msgctl(id, libc::IPC_SET, &mut ds) }).map(drop)
}

/// `msgctl(id, IPC_RMID)`: removes the queue; blocked callers get `EIDRM`.
pub fn remove(id: libc::c_int) -> io::Result<()> {
    // SAFETY: IPC_RMID does not read the buffer argument; null is allowed.
    check(unsafe { libc::msgctl(id, libc::IPC_RMID, std::ptr::null_mut()) }).map(drop)
}

/// `msgsnd(id, buf, len, flags)`: sends the first `len` bytes of text with the buffer's type.
pub fn send(id: libc::c_int, buf: &MsgBuf, len: usize, flags: libc::c_int) -> io::Result<()> {
    if len > buf.capacity {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: the buffer holds HEADER + capacity >= HEADER + len initialised bytes, the layout
    // msgsnd reads; the shared borrow keeps it alive and unchanged during the call.
    check(unsafe { libc::msgsnd(id, buf.words.as_ptr().cast(), len, flags) }).map(drop)
}

/// `msgrcv(id, buf, msgsz, msgtyp, flags)`: receives up to `msgsz` bytes of text (at most the
/// buffer's capacity); returns the text's length, the type being in [`MsgBuf::mtype`].
pub fn recv(
    id: libc::c_int,
    buf: &mut MsgBuf,
    msgsz: usize,
    msgtyp: i64,
    flags: libc::c_int,
) -> io::Result<usize> {
    let msgsz = msgsz.min(buf.capacity);
    // SAFETY: the buffer has room for HEADER + capacity >= HEADER + msgsz bytes, all msgrcv
    // writes; the exclusive borrow makes it the only access during the call.
    let n = unsafe {
        libc::msgrcv(
            id,
            buf.words.as_mut_ptr().cast(),
            msgsz,
            msgtyp as libc::c_long,
            flags,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}
