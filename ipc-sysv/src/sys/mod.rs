//! Every `unsafe` call of the crate, one file per object kind, each behind safe functions that
//! take validated arguments (ids, keys, slices whose pointer and length agree).
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;

pub mod event;
pub mod msg;
pub mod sem;
pub mod shm;

/// `ftok(path, proj_id)`.
pub fn ftok(path: &CStr, proj_id: u8) -> io::Result<libc::key_t> {
    // SAFETY: `path` is a valid NUL-terminated string for the call.
    let key = unsafe { libc::ftok(path.as_ptr(), i32::from(proj_id)) };
    if key == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(key)
}
