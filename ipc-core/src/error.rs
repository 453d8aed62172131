//! The one error type of the workspace.
//!
//! Each variant is something a caller would handle differently; everything else is [`Error::Io`],
//! which keeps the `errno` (see [`Error::errno`]).

use std::io;

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in terms a caller can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The named object (file, queue, segment, key) does not exist.
    #[error("{object} not found")]
    NotFound {
        /// The object, as the user named it.
        object: String,
    },
    /// Exclusive creation found an object already there.
    #[error("{object} already exists")]
    AlreadyExists {
        /// The object, as the user named it.
        object: String,
    },
    /// An existing object is not what we asked for: wrong type, owner, mode, size or attributes.
    /// Objects are never silently adopted (someone may have squatted the name).
    #[error("{object} exists but is not usable: {reason}")]
    Incompatible {
        /// The object, as the user named it.
        object: String,
        /// What differs, with both values.
        reason: String,
    },
    /// The kernel refused access (`EACCES` / `EPERM`).
    #[error("permission denied on {object}")]
    PermissionDenied {
        /// The object, as the user named it.
        object: String,
    },
    /// The message is larger than the transport carries. Nothing was sent.
    #[error("message of {len} bytes exceeds the maximum of {max} bytes")]
    MessageTooLarge {
        /// Length of the message.
        len: usize,
        /// Largest message the transport takes.
        max: usize,
    },
    /// The message cannot be carried as it is by this transport's encoding (e.g. a `\n` inside
    /// a message of `framing=lines`, where `\n` ends a message, or an empty message of
    /// `framing=packets`). Nothing was sent.
    #[error("message cannot be sent: {reason}")]
    InvalidMessage {
        /// What in the message the encoding cannot carry, and where.
        reason: String,
    },
    /// The caller's receive buffer cannot hold the next message. The message was not consumed:
    /// call again with a buffer of at least `needed` bytes.
    #[error("receive buffer of {len} bytes is too small for the next message of {needed} bytes")]
    BufferTooSmall {
        /// Length of the caller's buffer.
        len: usize,
        /// Length of the waiting message.
        needed: usize,
    },
    /// `try_send` found no room. Nothing was sent.
    #[error("transport is full")]
    Full,
    /// `try_recv` found no message.
    #[error("transport is empty")]
    Empty,
    /// The deadline passed. A send that times out sent nothing.
    #[error("timed out")]
    Timeout,
    /// The peer closed its end or died. Messages it sent before are still delivered first.
    #[error("peer disconnected")]
    Disconnected,
    /// A kernel or configured limit stands in the way; `what` names it (e.g. `fs.mqueue.msg_max`).
    #[error("{what} limit of {limit} exceeded")]
    LimitExceeded {
        /// The limit, by the name the operator would raise it with.
        what: String,
        /// Its current value.
        limit: u64,
    },
    /// State shared with a peer failed validation. The channel is unusable from now on.
    #[error("corrupted: {what}")]
    Corrupted {
        /// Which check failed.
        what: String,
    },
    /// A transport string or option could not be understood.
    #[error("invalid transport spec `{spec}`: {reason}")]
    InvalidSpec {
        /// The offending part (the whole string where no part is to blame).
        spec: String,
        /// Why it was rejected.
        reason: String,
    },
    /// Any other failure of a system call; the `errno` is kept in `source`.
    #[error("{op}: {source}")]
    Io {
        /// The operation that failed, e.g. `mkfifo /tmp/app.fifo`.
        op: String,
        /// The underlying error, with its raw OS error code.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// Classifies an OS error from an operation on a named object: the actionable cases get
    /// their own variant, the rest keep the `errno` in [`Error::Io`].
    pub fn from_os(op: &str, object: &str, source: io::Error) -> Error {
        match source.kind() {
            io::ErrorKind::NotFound => Error::NotFound {
                object: object.to_owned(),
            },
            io::ErrorKind::AlreadyExists => Error::AlreadyExists {
                object: object.to_owned(),
            },
            io::ErrorKind::PermissionDenied => Error::PermissionDenied {
                object: object.to_owned(),
            },
            _ => Error::Io {
                op: format!("{op} {object}"),
                source,
            },
        }
    }

    /// Wraps an OS error without classifying it.
    pub fn io(op: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            op: op.into(),
            source,
        }
    }

    /// Builds an [`Error::InvalidSpec`].
    pub fn invalid_spec(spec: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::InvalidSpec {
            spec: spec.into(),
            reason: reason.into(),
        }
    }

    /// Builds an [`Error::Corrupted`].
    pub fn corrupted(what: impl Into<String>) -> Error {
        Error::Corrupted { what: what.into() }
    }

    /// The raw `errno` behind this error, where there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// Whether retrying the same call later can succeed without changing anything
    /// (`Full`, `Empty`, `Timeout`).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Full | Error::Empty | Error::Timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_errors_are_classified_and_keep_errno() {
        let enoent = io::Error::from_raw_os_error(2);
        assert!(matches!(
            Error::from_os("open", "/x", enoent),
            Error::NotFound { object } if object == "/x"
        ));
        let eexist = io::Error::from_raw_os_error(17);
        assert!(matches!(
            Error::from_os("open", "/x", eexist),
            Error::AlreadyExists { .. }
        ));
        let eacces = io::Error::from_raw_os_error(13);
        assert!(matches!(
            Error::from_os("open", "/x", eacces),
            Error::PermissionDenied { .. }
        ));
        let emfile = Error::from_os("open", "/x", io::Error::from_raw_os_error(24));
        assert_eq!(emfile.errno(), Some(24));
        assert!(emfile.to_string().contains("open /x"));
    }
}
