//! Why the command failed, and the exit code and one-line message that says so.

use std::process::ExitCode;

/// A failure of the command, by the exit code it gets.
#[derive(Debug)]
pub enum Failure {
    /// A bad spec or option (exit 2): the user has to change the command line.
    Usage(String),
    /// A wait ran out (exit 3): the same command may succeed later.
    Timeout(String),
    /// Anything else (exit 1).
    Runtime(String),
}

impl Failure {
    /// Wraps an `ipc` error with what we were doing, keeping its exit code.
    pub fn context(what: impl std::fmt::Display, e: ipc::Error) -> Failure {
        match Failure::from(e) {
            Failure::Usage(m) => Failure::Usage(m),
            Failure::Timeout(m) => Failure::Timeout(format!("{what}: {m}")),
            Failure::Runtime(m) => Failure::Runtime(format!("{what}: {m}")),
        }
    }

    fn exit_code(&self) -> u8 {
        match self {
            Failure::Runtime(_) => 1,
            Failure::Usage(_) => 2,
            Failure::Timeout(_) => 3,
        }
    }

    /// Prints `ipc: <message>` as exactly one line on stderr and returns the exit code.
    pub fn report(self) -> ExitCode {
        let code = self.exit_code();
        let (Failure::Usage(m) | Failure::Timeout(m) | Failure::Runtime(m)) = self;
        // Wrapped OS errors could carry a newline; one line per failure is the promise.
        let line = m.replace('\n', " ");
        eprintln!("ipc: {line}");
        ExitCode::from(code)
    }
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
