//! Every `unsafe` call of the crate, one file per POSIX object kind, each behind safe
//! functions that take validated names and borrowed descriptors.
//!
//! # Safety
//!
//! Names come in as [`PosixName`](crate::PosixName) (NUL-terminated, validated), descriptors as
//! `BorrowedFd` or owned handles (open for the call), buffers as slices (pointer and length
//! agree). The `unsafe` blocks only forward these to the C library.
#![allow(unsafe_code)]

pub mod mq;
pub mod sem;
pub mod shm;
