//! Why the command failed, and the exit code and one-line message that says so.
//!
//! Standard output closed by its reader (`ipc ls | head -1`: `EPIPE`, since Rust ignores
//! `SIGPIPE`) is not a failure of the command but the end of its audience: the command stops
//! writing and ends with [`Failure::Closed`], which prints nothing, not even on stderr, and
//! exits 0, or 1 when a received message was lost with it (`ipc recv`). `SIGPIPE` is left
//! ignored rather than reset: a death by signal (status 141 in a shell) would tell a script
//! that the command failed. Nothing the command writes panics: stdout errors are returned,
//! stderr errors ignored (there is nowhere left to say anything).

use std::io::{self, Write};
use std::process::ExitCode;

use crate::text::escape;
pub use crate::text::note;

/// A failure of the command, by the exit code it gets.
#[derive(Debug)]
pub enum Failure {
    /// A bad spec or option (exit 2): the user has to change the command line.
    Usage(String),
    /// A wait ran out (exit 3): the same command may succeed later.
    Timeout(String),
    /// Anything else (exit 1).
    Runtime(String),
    /// Standard output was closed by its reader (`EPIPE`): nobody reads what comes next, so
    /// the command stops and says nothing. Exit 0, as for a command that had nothing more to
    /// say; exit 1 if `lost`: `ipc recv` had taken a message off the transport that it could
    /// not hand on, and a script (`set -o pipefail`) should learn that the message is gone.
    Closed {
        /// A message was taken from the transport and not delivered.
        lost: bool,
    },
}

impl Failure {
    /// Wraps an `ipc` error with what we were doing, keeping its exit code.
    pub fn context(what: impl std::fmt::Display, e: ipc::Error) -> Failure {
        match Failure::from(e) {
            Failure::Usage(m) => Failure::Usage(m),
            Failure::Timeout(m) => Failure::Timeout(format!("{what}: {m}")),
            Failure::Runtime(m) => Failure::Runtime(format!("{what}: {m}")),
            closed @ Failure::Closed { .. } => closed,
        }
    }

    /// A failed write to standard output: [`Failure::Closed`] if its reader left, else a
    /// runtime error.
    pub fn stdout(e: io::Error) -> Failure {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Failure::Closed { lost: false }
        } else {
            Failure::Runtime(format!("writing standard output: {e}"))
        }
    }

    fn exit_code(&self) -> u8 {
        match self {
            Failure::Closed { lost } => u8::from(*lost),
            Failure::Runtime(_) => 1,
            Failure::Usage(_) => 2,
            Failure::Timeout(_) => 3,
        }
    }

    /// Prints `ipc: <message>` as exactly one line on stderr (nothing for
    /// [`Failure::Closed`]) and returns the exit code.
    pub fn report(self) -> ExitCode {
        let code = self.exit_code();
        match self {
            Failure::Usage(m) | Failure::Timeout(m) | Failure::Runtime(m) => {
                // Escaped as a whole: the message quotes the command line and the system
                // (names, paths, OS errors, which may also carry a newline: one line per
                // failure is the promise), and escaping is idempotent.
                note(&format!("ipc: {m}"));
            }
            Failure::Closed { .. } => {}
        }
        ExitCode::from(code)
    }
}

/// Writes `line`, escaped, as one line on `out` (standard output, locked by the caller).
pub fn say(out: &mut impl Write, line: &str) -> Result<(), Failure> {
    writeln!(out, "{}", escape(line)).map_err(Failure::stdout)
}

impl From<ipc::Error> for Failure {
    fn from(e: ipc::Error) -> Failure {
        match e {
            ipc::Error::InvalidSpec { .. } => Failure::Usage(e.to_string()),
            ipc::Error::Timeout => Failure::Timeout(e.to_string()),
            _ => Failure::Runtime(e.to_string()),
        }
    }
}

/// Adds what we were doing to the error of an `ipc` call.
pub trait Context<T> {
    /// Like [`Failure::context`], for a `Result`.
    fn context<D: std::fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T, Failure>;
}

impl<T> Context<T> for ipc::Result<T> {
    fn context<D: std::fmt::Display>(self, what: impl FnOnce() -> D) -> Result<T, Failure> {
        self.map_err(|e| Failure::context(what(), e))
    }
}

/// Parses a transport spec; a bad one is a usage error naming the bad part.
pub fn parse_spec(text: &str) -> Result<ipc::TransportSpec, Failure> {
    text.parse().map_err(Failure::from)
}

/// clap value parser for durations such as `500ms` or `5s`.
pub fn parse_duration_arg(text: &str) -> Result<std::time::Duration, String> {
    ipc::spec::parse_duration(text)
}

impl From<ipc_bench::Error> for Failure {
    fn from(e: ipc_bench::Error) -> Failure {
        match e {
            ipc_bench::Error::Usage(m) => Failure::Usage(m),
            ipc_bench::Error::Ipc { what, source } => Failure::context(what, source),
            ipc_bench::Error::Runtime(m) => Failure::Runtime(m),
            ipc_bench::Error::Closed => Failure::Closed { lost: false },
        }
    }
}
