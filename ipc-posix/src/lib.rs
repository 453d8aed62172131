//! POSIX IPC: shared-memory segments (and regular files mapped as such), message queues and
//! named semaphores, behind the `ipc-core` contract.
//!
//! | object            | type                    | lives until        | transport string |
//! |-------------------|-------------------------|--------------------|------------------|
//! | message queue     | [`mq::MqSender`], [`mq::MqReceiver`] | `mq_unlink` | `posix-mq:/name` |
//! | shared memory     | [`shm::SharedMemory`]   | `shm_unlink`       |                  |
//! | ring in shared memory | [`ring::ShmSender`], [`ring::ShmReceiver`] | `shm_unlink` | `posix-shm:/name` |
//! | named semaphore   | [`sem::NamedSemaphore`] | `sem_unlink`       |                  |
//! | mapped regular file | [`file::MappedFile`]  | `unlink`           |                  |
//! | ring in a mapped file | [`ring::FileShmSender`], [`ring::FileShmReceiver`] | `unlink` | `file-shm:/path` |
//!
//! Objects are created exclusively with mode `0600` unless asked otherwise; an object opened
//! rather than created is checked (owner, mode, size or attributes) before use, so a name
//! squatted by someone else fails closed with [`ipc_core::Error::Incompatible`].
#![deny(unsafe_code)]

pub mod file;
pub mod mq;
mod name;
pub mod ring;
pub mod sem;
pub mod shm;
mod sys;

pub use name::PosixName;

use ipc_core::Transport;
use ipc_core::registry::Scheme;

/// The transports of this crate, `posix-mq:`, `posix-shm:` and `file-shm:`, for a
/// [`Registry`](ipc_core::registry::Registry).
pub static SCHEMES: &[&Scheme] = &[
    &Scheme::built_in(
        Transport::PosixMq,
        |spec| Ok(Box::new(mq::MqSender::open(spec)?)),
        |spec| Ok(Box::new(mq::MqReceiver::open(spec)?)),
    ),
    &Scheme::built_in(
        Transport::PosixShm,
        |spec| Ok(Box::new(ring::ShmSender::open(spec)?)),
        |spec| Ok(Box::new(ring::ShmReceiver::open(spec)?)),
    ),
    &Scheme::built_in(
        Transport::FileShm,
        |spec| Ok(Box::new(ring::FileShmSender::open(spec)?)),
        |spec| Ok(Box::new(ring::FileShmReceiver::open(spec)?)),
    ),
];
