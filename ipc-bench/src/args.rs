//! The command line of `ipc bench`.

use std::path::PathBuf;

/// Benchmark transports between two processes against raw system calls.
///
/// Round-trip latency (ping-pong) and one-way throughput for each transport and message size,
/// each beside the same figure for a plain loop of the underlying system calls. A size a
/// transport cannot carry (posix-mq above this machine's fs.mqueue.msgsize_max; pipe-packets
/// and fifo-packets above PIPE_BUF, 4096) is skipped: "n/a" in the table, a note on stderr
/// with --json. Round trips: p50, p99 and p99.9; each side's CPU time per one-way message
/// (busy-polling shows there). With posix-shm, the report ends with single-process memcpy
/// speed and the spin and futex floors (the raw mailbox's 64 B round trips). A progress bar
/// goes to stderr when it is a terminal.
#[derive(clap::Args)]
pub struct Args {
    /// Transports to measure, comma separated. A transport's whole name selects it alone (`pipe`
    /// is not also pipe-spin and pipe-packets); a leading part that is no transport's name
    /// selects every one it begins, e.g. `posix-shm` for posix-shm-busy, -spin, -park and -multi
    /// [default: every built-in one]
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub(crate) transports: Vec<String>,
    /// Message sizes in bytes, comma separated (units accepted: 64KiB), at most 64 MiB
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        value_parser = parse_message_size,
        default_values_t = [64, 4096, 65536, 1 << 20]
    )]
    pub(crate) sizes: Vec<usize>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    /// Also draw round-trip latency (p50) and throughput (MB/s) by message size, one line per
    /// transport (and per readiness path with --async), into this SVG file.
    #[arg(long, value_name = "FILE")]
    pub(crate) plot: Option<PathBuf>,
    /// Time for each transport × size, split evenly over its four runs (the default run,
    /// every transport at the default sizes, takes under a minute on two CPUs); each readiness
    /// path of --async adds two runs of the same length.
    #[arg(long, value_name = "MS", default_value_t = DEFAULT_BUDGET_MS)]
    pub(crate) budget_ms: u64,
    /// Also measure each transport with both processes driving the same endpoints through
    /// `ipc::AsyncSender`/`AsyncReceiver` on a current-thread tokio runtime (rows `+async`),
    /// and through an `ipc::WaitSet` (rows `+wait-set`), each under its blocking row with the
    /// ratios to it. The rings do so on posix-shm-park (and tokio on posix-shm-multi): an async
    /// endpoint never uses the blocking waiting strategy.
    #[arg(long = "async")]
    pub(crate) readiness: bool,
    /// Also measure one-way throughput with 32 messages per call: `send_batch` on the sender,
    /// `recv_batch` on the receiver (rows `+batch`, one more run a cell), against the raw
    /// per-message loop (its ratio column). Pipes, FIFOs and tcp write many small frames per
    /// writev; the other transports (and packets, one write each) loop over their single calls.
    #[arg(long)]
    pub(crate) batch: bool,
    /// Runs every transport × size N times, in N rounds of each cell once (so that a change of
    /// the machine's state hits every row of a round alike), and prints each figure's median
    /// with its min–max over the rounds under it; the floors and memcpy references are
    /// measured in every round too.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub(crate) repeat: u32,
    /// Measures the raw loop in place of ours too (an A/A run; the blocking rows of the
    /// transports that have a raw loop): the ratios then show only the bench's own spread on
    /// this machine, the yardstick for a difference in a normal run. Here, two identical raw
    /// loops' median ratio over 5 rounds came out anywhere in 0.89–1.17x.
    #[arg(long)]
    pub(crate) raw_twice: bool,
}

/// The default `--budget-ms`.
const DEFAULT_BUDGET_MS: u64 = 1200;

/// The largest `--sizes` entry. Each process holds several buffers of the message size (and a
/// ring holds twice it), so a size of gigabytes is not measured but killed by the OOM killer
/// partway through the run; above this it is a usage error before anything starts. 64 MiB is
/// well past where every transport's rate is flat (memcpy-bound).
const MAX_MESSAGE_SIZE: u64 = 64 << 20;

fn parse_message_size(text: &str) -> Result<usize, String> {
    let size = ipc::spec::parse_size(text)?;
    if size > MAX_MESSAGE_SIZE {
        return Err(format!(
            "message size `{text}` is above the bench's limit of 64 MiB ({MAX_MESSAGE_SIZE} \
             bytes): each process would hold several buffers of it"
        ));
    }
    match usize::try_from(size) {
        Ok(size) if size > 0 => Ok(size),
        _ => Err(format!("message size `{text}` must be at least 1 byte")),
    }
}
