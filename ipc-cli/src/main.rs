//! `ipc`: send and receive messages over any transport of the `ipc` crate, and benchmark the
//! transports against plain system calls.
//!
//! Exit codes: 0 success, 1 runtime error, 2 bad spec or option, 3 timed out. A standard
//! output closed by its reader ends a command quietly (see `Failure::Closed`).

mod clean;
mod doctor;
mod failure;
mod format;
mod inspect;
mod ls;
mod objects;
mod recv;
mod send;
mod shm;
mod text;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};

use crate::failure::Failure;

/// Send, receive and benchmark messages over Linux IPC transports.
///
/// A transport is named by a spec such as `fifo:/tmp/app.fifo?message_size=4KiB` or `pipe:fd=0`.
/// Exit codes: 0 success, 1 runtime error, 2 bad spec or option, 3 timed out. When the reader
/// of the output leaves (`| head`), a command stops and exits 0 without a word (`recv`: 1,
/// since the message it had taken is lost).
#[derive(Parser)]
#[command(name = "ipc", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Send(send::Args),
    Recv(recv::Args),
    Bench(ipc_bench::Args),
    Shm(shm::Args),
    Ls(ls::Args),
    Clean(clean::Args),
    Inspect(inspect::Args),
    Doctor(doctor::Args),
    /// The other process of `ipc bench`, started by it.
    #[command(hide = true)]
    BenchPeer(ipc_bench::PeerArgs),
}

fn main() -> ExitCode {
    // Before the arguments are parsed: transport strings in them may be of these schemes.
    #[cfg(feature = "memfd")]
    if let Err(e) = memfd_transport::register() {
        eprintln!("ipc: registering memfd: {e}");
        return ExitCode::FAILURE;
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let result = match cli.command {
        Command::Send(args) => send::run(args),
        Command::Recv(args) => recv::run(args),
        Command::Bench(args) => ipc_bench::run(args).map_err(Failure::from),
        Command::Shm(args) => shm::run(args),
        Command::Ls(args) => ls::run(args),
        Command::Clean(args) => clean::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::BenchPeer(args) => ipc_bench::run_peer(args).map_err(Failure::from),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

/// Help and version go out as clap prints them; a usage error becomes one line, like every
/// other error of this command, so that scripts can show it as it is.
fn usage_error(e: clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        _ => {
            // clap puts the offending argument in the first paragraph (for a missing argument,
            // on the lines after the first); usage and tips follow a blank line.
            let rendered = e.render().to_string();
            let first = rendered.split("\n\n").next().unwrap_or_default();
            let line = first.split_whitespace().collect::<Vec<_>>().join(" ");
            let line = line.strip_prefix("error: ").unwrap_or(&line);
            Failure::Usage(format!("{line} (see `ipc --help`)")).report()
        }
    }
}
