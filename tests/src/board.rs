//! The *board*: a small POSIX shared-memory segment on which `ipc-shm-peer` processes publish
//! what they are doing and how many messages they have finished, one 64-byte slot each. A
//! test that SIGKILLs a peer reads the slot afterwards to know whether the victim died inside
//! a send, and so exactly which of its messages must arrive.
//!
//! The peer writes the board (see `src/bin/ipc-shm-peer.rs`); tests create, reset and read it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ipc::Owner;
use ipc::posix::PosixName;
use ipc::posix::shm::SharedMemory;
use ipc::sync::Shared;

use crate::unique_name;

/// Bytes of the board segment.
pub const SIZE: usize = 4096;
/// Bytes of one slot.
pub const SLOT: usize = 64;
/// Offset of the phase word in a slot.
pub const PHASE: usize = 0;
/// Offset of the count word in a slot: messages finished (sent, or received and checked).
pub const COUNT: usize = 8;

/// Between two messages.
pub const IDLE: u64 = 0;
/// Inside `loan`: waiting for room (or the producers' lock), nothing reserved yet.
pub const RESERVING: u64 = 1;
/// Holding a loan: reserved, writing the payload, not committed.
pub const WRITING: u64 = 2;
/// Inside `commit` / `commit_len`.
pub const COMMITTING: u64 = 3;
/// Inside `send` (reserve, copy and commit in one call).
pub const COPYING: u64 = 4;
/// Consumer: inside `recv_in_place`.
pub const RECEIVING: u64 = 5;
/// Consumer: holding a record in place (checked or not), not yet released.
pub const HOLDING: u64 = 6;
/// Consumer: releasing the record it held (it may be released already).
pub const RELEASING: u64 = 7;

/// The phases' names, by value.
pub const NAMES: [&str; 8] = [
    "idle",
    "reserving",
    "writing-loan",
    "committing",
    "copying",
    "receiving",
    "holding",
    "releasing",
];

/// The name of `phase`.
pub fn name(phase: u64) -> &'static str {
    NAMES.get(phase as usize).copied().unwrap_or("?")
}

/// Whether a producer killed in `phase` was inside a send: holding a reservation, or
/// publishing one.
pub fn inside_send(phase: u64) -> bool {
    matches!(phase, WRITING | COMMITTING | COPYING)
}

/// How many of its messages a producer killed in `phase`, with `committed` finished, may have
/// delivered: those finished, plus the one in progress if it was inside `commit` or `send`
/// (the record may be published before the call returns and the count is written).
pub fn deliverable(phase: u64, committed: u64) -> std::ops::RangeInclusive<u64> {
    match phase {
        COMMITTING | COPYING => committed..=committed + 1,
        _ => committed..=committed,
    }
}

/// The board segment, created exclusively by the test and removed when dropped.
pub struct Board {
    name: String,
    shared: Shared,
    _owner: Owner<SharedMemory>,
}

impl Board {
    /// A fresh board under a unique name.
    pub fn create() -> ipc::Result<Board> {
        let name = format!("/{}", unique_name());
        let posix = PosixName::new(&name)?;
        let owner = SharedMemory::create(&posix, SIZE, 0o600)?;
        let shared = Shared::new(Arc::new(owner.map()?));
        Ok(Board {
            name,
            shared,
            _owner: owner,
        })
    }

    /// Its name, for the peers' command line.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn word(&self, slot: usize, field: usize) -> &AtomicU64 {
        self.shared
            .u64_at(slot * SLOT + field)
            .expect("board word in bounds")
    }

    /// Clears a slot before a new peer reports in it.
    pub fn reset(&self, slot: usize) {
        self.word(slot, PHASE).store(0, Ordering::SeqCst);
        self.word(slot, COUNT).store(0, Ordering::SeqCst);
    }

    /// `(phase, count)` of a slot.
    pub fn read(&self, slot: usize) -> (u64, u64) {
        (
            self.word(slot, PHASE).load(Ordering::SeqCst),
            self.word(slot, COUNT).load(Ordering::SeqCst),
        )
    }
}
