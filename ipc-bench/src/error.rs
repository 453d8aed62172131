//! Why a bench run failed, in terms the `ipc` command turns into its exit code and message.

use std::fmt;
use std::io;

/// A failed bench run (or bench peer).
#[derive(Debug)]
pub enum Error {
    /// A bad option, such as an unknown transport name: the command line must change.
    Usage(String),
    /// A call of the `ipc` crate failed while the bench was doing `what`.
    Ipc {
        /// What the bench was doing, e.g. `bench pipe ours echo 64 B`.
        what: String,
        /// The error of the call.
        source: ipc::Error,
    },
    /// Anything else, said in full.
    Runtime(String),
    /// Standard output was closed by its reader: nobody reads the rest.
    Closed,
}

impl Error {
    /// A failed write to standard output: [`Error::Closed`] if its reader left.
    pub(crate) fn stdout(e: io::Error) -> Error {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Error::Closed
        } else {
            Error::Runtime(format!("writing standard output: {e}"))
        }
    }
}

/// Wraps the error of an `ipc` call with what the bench was doing (`map_err(doing(..))`).
pub(crate) fn doing<D: fmt::Display>(what: impl FnOnce() -> D) -> impl FnOnce(ipc::Error) -> Error {
    move |source| Error::Ipc {
        what: what().to_string(),
        source,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Runtime(m) => f.write_str(m),
            Error::Ipc { what, source } => write!(f, "{what}: {source}"),
            Error::Closed => f.write_str("standard output closed"),
        }
    }
}

impl std::error::Error for Error {}
