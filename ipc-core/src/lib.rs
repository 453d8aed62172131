//! The contract every transport of the `ipc` workspace implements.
//!
//! - [`Sender`] / [`Receiver`]: message-oriented, blocking, `try_` and `_timeout` forms, all
//!   expressed through one [`Wait`]; object safe.
//! - [`Error`]: the one error type, with variants a caller can act on.
//! - [`TransportSpec`]: transport strings such as `fifo:/tmp/app.fifo?capacity=64KiB`.
//! - [`registry`]: the [`Scheme`](registry::Scheme) of each transport (how its ends are opened),
//!   built-in or registered by a crate of your own.
//! - [`framing`]: the length-prefixed framing of every byte-stream transport.
//! - [`Owner`] / [`Removable`]: the lifecycle of kernel objects that outlive processes.
//! - [`Segment`]: a mapped region of shared memory.
//! - [`Readiness`]: waiting for any endpoint in an event loop, on one descriptor.
//!
//! This crate makes no system calls but those of [`Adoption`] (our effective uid, user and
//! group names, through nix); the backends (`ipc-pipe`, `ipc-fifo`, ...) make the rest.
#![deny(unsafe_code)]

mod adopt;
mod channel;
mod error;
mod forward;
pub mod framing;
mod lifecycle;
pub mod ready;
pub mod registry;
mod segment;
pub mod spec;
pub mod stream;
mod sysctl;
mod wait;

pub use adopt::{
    AcceptOwner, Adoption, DEFAULT_SEGMENT_MODE, Expect, FileKind, OwnerChoice, Principal,
};
pub use channel::{Receiver, Sender, batch_messages, send_each};
pub use error::{Error, Result};
pub use lifecycle::{Owner, Removable, check_adoptable};
pub use ready::{Interest, Readiness};
pub use segment::{ObjectId, Segment};
pub use spec::{
    Address, Create, Options, Producers, Scouting, Transport, TransportSpec, WaitStrategy,
    ZenohMode,
};
pub use stream::Framing;
pub use sysctl::sysctl;
pub use wait::{SPIN_FOR, Wait, poll_before_sleep, poll_fd, poll_fds};
