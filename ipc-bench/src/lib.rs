//! `ipc bench`: each transport against a plain loop of its own system calls, between two
//! processes.
//!
//! For every transport × size, four runs, each with a fresh peer process (`ipc bench-peer`):
//! ping-pong on the raw baseline and on ours, then one-way throughput on both. Each gets a
//! quarter of the per-cell budget, the first tenth of which is warm-up.
//!
//! Round trips go into an HDR histogram (p50, p99, p99.9). Both processes measure their CPU
//! time (`CLOCK_PROCESS_CPUTIME_ID`) over the measured interval, which starts at the first
//! message marked `protocol::MEASURED`; the peer prints its figure on its stdout, which
//! `Link::finish` reads (`protocol::PeerReport`). `--plot` draws the rows into an SVG
//! (`plot`); a progress bar goes to stderr when it is a terminal, between the rows.
//!
//! When a posix-shm row is measured, the report ends with references for it: single-process
//! memcpy speed, and the "spin floor" and "futex floor" (the 64 B round trip of the raw busy
//! and park mailboxes).
//!
//! With `--async`, a cell also measures ours through the readiness paths its transport names
//! (`BenchTransport::readiness_apis`: tokio, a `WaitSet`), both processes alike
//! (`readiness`), two more runs each, and reports each as a row of its own under the
//! blocking one, with its ratios to it.
//!
//! `--batch` adds a `+batch` row to a cell: one-way throughput with `send_batch` and
//! `recv_batch` (`protocol::BATCH`, 32 messages a call) against the raw per-message loop.
//! `--repeat N` measures every cell N times in interleaved rounds and reports each figure's
//! median with its range (`repeat`).
//!
//! The library behind `ipc bench`: the `ipc` binary flattens [`Args`] and [`PeerArgs`] into
//! its subcommands and calls [`run`] and [`run_peer`]. ARCHITECTURE.md lists the layers of
//! its modules.

#![deny(unsafe_code)]

mod args;
mod cpu;
mod error;
mod fifo;
mod file_shm;
mod interrupt;
mod made;
mod mailbox;
mod memcpy;
mod peer;
mod pingpong;
mod pipe;
mod plot;
mod posix_mq;
mod posix_shm;
mod protocol;
mod queue;
mod raw;
#[cfg(feature = "zenoh")]
mod raw_zenoh;
mod readiness;
mod repeat;
mod report;
mod ring;
mod run;
mod socket;
mod stall;
mod sysv_mq;
mod sysv_shm;
pub mod text;
mod throughput;
mod transport;
mod transports;
mod watch;
#[cfg(feature = "zenoh")]
mod zenoh;

pub use args::Args;
pub use error::Error;
pub use peer::{Args as PeerArgs, run as run_peer};
pub use run::run;
