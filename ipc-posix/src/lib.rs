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
