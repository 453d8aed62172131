//! Every system interface of the crate, and every `unsafe` operation: doorbell sockets and
//! epoll, typed access to shared memory at checked offsets, pthread robust mutexes, and process
//! liveness. Futex calls and `pidfd_open` go through rustix's safe wrappers.
//!
//! # Safety
//!
//! Shared memory is reached only through [`mem::Shared`], which keeps the mapping alive and
//! bounds-checks and alignment-checks every offset before turning it into a reference; the
//! references are to atomics or to raw bytes (`u8` has no invalid values), so a peer writing the
//! memory concurrently can change values but never break a Rust invariant.
#![allow(unsafe_code)]

pub mod bell;
pub mod futex;
pub mod mem;
pub mod process;
pub mod pthread;
