//! The one validated name type of POSIX IPC objects.

use std::ffi::CString;
use std::fmt;

use ipc_core::spec::check_posix_name;
use ipc_core::{Error, Result};

/// A POSIX IPC object name: a leading `/`, no other `/`, 1..=`NAME_MAX` bytes after it, no NUL.
///
/// ```
/// use ipc_posix::PosixName;
///
/// assert!(PosixName::new("/orders").is_ok());
/// assert!(PosixName::new("orders").is_err()); // InvalidSpec naming the problem
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PosixName {
    text: String,
    c: CString,
}

impl PosixName {
    /// Validates `name`; a bad one is [`Error::InvalidSpec`] saying what is wrong.
    pub fn new(name: &str) -> Result<PosixName> {
        check_posix_name(name).map_err(|reason| Error::invalid_spec(name, reason))?;
        let c = CString::new(name).map_err(|_| Error::invalid_spec(name, "contains NUL"))?;
        Ok(PosixName {
            text: name.to_owned(),
            c,
        })
    }

    /// The name as given, with its leading `/`.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The name for the C library.
    pub fn as_c_str(&self) -> &std::ffi::CStr {
        &self.c
    }
}

impl fmt::Display for PosixName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for PosixName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PosixName({:?})", self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_what_the_kernel_would() {
        for bad in ["", "/", "x", "/a/b", "//", "/.", "/.."] {
            assert!(
                matches!(PosixName::new(bad), Err(Error::InvalidSpec { .. })),
                "{bad:?}"
            );
        }
        let long = format!("/{}", "a".repeat(256));
        assert!(PosixName::new(&long).is_err());
        assert!(PosixName::new(&format!("/{}", "a".repeat(255))).is_ok());
    }
}
