//! System V IPC: shared-memory segments, message queues and semaphore sets, behind the
//! `ipc-core` contract, interoperable with plain C programs that use `ftok` / `shmget` /
//! `msgget` / `semget`.
//!
//! | object            | module   | lives until                 | transport string          |
//! |-------------------|----------|-----------------------------|---------------------------|
//! | shared memory     | [`shm`]  | `IPC_RMID` (and last detach) | `sysv-shm:ftok=/p:0x66`  |
//! | message queue     | [`msg`]  | `IPC_RMID`                  | `sysv-mq:key=0x1234`      |
//! | semaphore set     | [`sem`]  | `IPC_RMID`                  |                           |
//!
//! System V objects live in the kernel until removed or reboot. Objects are addressed by a
//! [`Key`]: explicit (`key=0x6666`), from `ftok(path, proj_id)`, or private. Because `ftok`
//! keys collide (16 bits of inode, 8 of device), creating with a key is always exclusive
//! (`IPC_EXCL`) unless the caller asks to open an existing object, and opening checks the
//! object's owner, mode and size (`IPC_STAT`) before use.
#![deny(unsafe_code)]

pub mod key;
pub mod msg;
pub mod ring;
pub mod sem;
pub mod shm;
mod sys;

pub use key::Key;

use ipc_core::Transport;
use ipc_core::registry::Scheme;

/// The transports of this crate, `sysv-mq:` and `sysv-shm:`, for a
/// [`Registry`](ipc_core::registry::Registry).
pub static SCHEMES: &[&Scheme] = &[
    &Scheme::built_in(
        Transport::SysvMq,
        |spec| Ok(Box::new(msg::MsgSender::open(spec)?)),
        |spec| Ok(Box::new(msg::MsgReceiver::open(spec)?)),
    ),
    &Scheme::built_in(
        Transport::SysvShm,
        |spec| Ok(Box::new(ring::SysvShmSender::open(spec)?)),
        |spec| Ok(Box::new(ring::SysvShmReceiver::open(spec)?)),
    ),
];
