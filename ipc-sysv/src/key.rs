//! Keys of System V objects.

use std::ffi::CString;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use ipc_core::{Address, Error, Result};

use crate::sys;

/// How a System V object is named.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// An explicit key (`key=0x6666`); never 0 (`IPC_PRIVATE`).
    Explicit(i32),
    /// `ftok(path, proj_id)` (`ftok=/path:0x66`); the path must exist.
    ///
    /// glibc's `ftok` uses only the low 8 bits of its `int proj_id`, so this holds those bits:
    /// C's `ftok(path, 0x6666)` is `Key::ftok(path, 0x6666)`, which is `proj_id: 0x66`, and it
    /// displays as `ftok=path:0x66`. 0 is refused by [`Key::resolve`] (see [`Key::ftok`]).
    Ftok {
        /// An existing file or directory.
        path: String,
        /// The low 8 bits of C's `proj_id`, the only bits that go into the key; never 0.
        proj_id: u8,
    },
    /// `IPC_PRIVATE`: a new object only reachable by its id (or by inheriting it).
    Private,
}

impl Key {
    /// The key C's `ftok(path, proj_id)` gives, for any `proj_id` C accepts: its low 8 bits
    /// are kept, as glibc does, so `Key::ftok(p, 0x6666) == Key::ftok(p, 0x66)`.
    ///
    /// Low 8 bits of 0 are refused when the key is resolved ([`Error::InvalidSpec`]): the
    /// key would then be only 8 bits of device and 16 of inode, which can be 0, that is
    /// `IPC_PRIVATE`, silently making a private object where a shared one was meant.
    pub fn ftok(path: impl Into<String>, proj_id: i32) -> Key {
        Key::Ftok {
            path: path.into(),
            proj_id: proj_id as u8,
        }
    }

    /// The key an address of a `sysv-*` transport string names.
    pub fn from_address(address: &Address) -> Result<Key> {
        match address {
            Address::Key(k) => Ok(Key::Explicit(*k)),
            Address::Ftok { path, proj_id } => Ok(Key::Ftok {
                path: path.clone(),
                proj_id: Some(*proj_id).filter(|p| *p != 0).ok_or_else(|| {
                    Error::invalid_spec(
                        format!("ftok={path}:{proj_id:#x}"),
                        "proj_id has low 8 bits 0, which ftok(3) refuses (the key could be 0, \
                         IPC_PRIVATE)",
                    )
                })?,
            }),
            Address::Private => Ok(Key::Private),
            other => Err(Error::invalid_spec(
                other.to_string(),
                "System V objects are named key=N, ftok=PATH:PROJ_ID or private",
            )),
        }
    }

    /// The numeric key (`ftok` is computed now: a missing path is [`Error::NotFound`] naming
    /// it).
    pub fn resolve(&self) -> Result<libc::key_t> {
        match self {
            Key::Explicit(k) => Ok(*k),
            Key::Private => Ok(libc::IPC_PRIVATE),
            Key::Ftok { path, proj_id } => {
                if *proj_id == 0 {
                    return Err(Error::invalid_spec(
                        self.to_string(),
                        "proj_id has low 8 bits 0, which ftok(3) refuses (the key could be 0, \
                         IPC_PRIVATE)",
                    ));
                }
                if !Path::new(path).exists() {
                    return Err(Error::NotFound {
                        object: format!("ftok path {path}"),
                    });
                }
                let c_path = CString::new(Path::new(path).as_os_str().as_bytes())
                    .map_err(|_| Error::invalid_spec(path.clone(), "path contains a NUL byte"))?;
                sys::ftok(&c_path, *proj_id)
                    .map_err(|e| Error::from_os("ftok", &self.to_string(), e))
            }
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Explicit(k) => write!(f, "key={:#x}", *k as u32),
            Key::Ftok { path, proj_id } => write!(f, "ftok={path}:{proj_id:#x}"),
            Key::Private => f.write_str("private"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ftok_on_a_missing_path_is_not_found_naming_it() {
        let key = Key::Ftok {
            path: "/nonexistent/ipc-sysv-test".into(),
            proj_id: 0x66,
        };
        match key.resolve() {
            Err(Error::NotFound { object }) => {
                assert!(object.contains("/nonexistent/ipc-sysv-test"))
            }
            other => panic!("expected NotFound, got {other:?}"),
        }
    }

    #[test]
    fn ftok_keeps_the_low_8_bits_of_proj_id_and_refuses_0() {
        assert_eq!(Key::ftok("/tmp", 0x6666), Key::ftok("/tmp", 0x66));
        assert_eq!(Key::ftok("/tmp", 0x6666).to_string(), "ftok=/tmp:0x66");
        assert_eq!(Key::ftok("/tmp", -1), Key::ftok("/tmp", 0xff));
        match Key::ftok("/tmp", 0x100).resolve() {
            Err(Error::InvalidSpec { reason, .. }) => assert!(reason.contains("IPC_PRIVATE")),
            other => panic!("expected InvalidSpec, got {other:?}"),
        }
    }

    #[test]
    fn ftok_matches_the_c_library_and_explicit_keys_pass_through() {
        let key = Key::Ftok {
            path: "/tmp".into(),
            proj_id: 0x66,
        };
        let a = key.resolve().unwrap();
        assert_eq!(a, key.resolve().unwrap());
        assert_ne!(a, -1);
        assert_eq!(Key::Explicit(0x6666).resolve().unwrap(), 0x6666);
        assert_eq!(Key::Private.resolve().unwrap(), libc::IPC_PRIVATE);
    }
}
