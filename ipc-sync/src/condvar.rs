//! STUB — to be replaced: futex-based condition variable in a segment.
use ipc_core::Result;

use crate::sys::mem::Shared;

/// Bytes a condvar region takes.
pub const CONDVAR_REGION_SIZE: usize = 64;

/// A process-shared condition variable.
#[derive(Debug)]
pub struct Condvar {
    _shared: Shared,
}

impl Condvar {
    /// Initialises at `offset`.
    pub fn init_at(_shared: &Shared, _offset: usize) -> Result<()> {
        todo!()
    }
    /// The condvar at `offset`.
    pub fn at(_shared: &Shared, _offset: usize) -> Result<Condvar> {
        todo!()
    }
}
