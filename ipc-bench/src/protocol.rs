//! What the two processes of a bench run agree on: the names on the peer's command line,
//! the marks and counts inside the messages, the end of a stream, and the peer's report.

use std::fmt;
use std::time::Duration;

use ipc::Receiver;

/// Which side of the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Variant {
    /// The transport of the `ipc` crate.
    Ours,
    /// A plain loop of the system calls under it.
    Raw,
}

/// How both processes drive the endpoints ours opens: through their blocking calls, or through
/// a readiness path (`ipc bench --async`, see [`crate::readiness`]). A readiness path wraps
/// the very endpoints the transport's `connect` opened ([`Link::through`]), so that it
/// measures the same transport objects, and no transport has to know about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Api {
    /// `send` and `recv`, which wait as the endpoint's own strategy says.
    Blocking,
    /// `ipc::AsyncSender` / `AsyncReceiver` on a current-thread tokio runtime.
    Async,
    /// Each end waited for through an `ipc::WaitSet`: readiness with poll(2), no tokio.
    WaitSet,
    /// The blocking calls, [`BATCH`] messages a call: `send_batch` and `recv_batch`
    /// (`ipc bench --batch`, one-way throughput only).
    Batch,
}

/// Messages per `send_batch` call of [`Api::Batch`], and most per `recv_batch` call.
pub const BATCH: usize = 32;

/// What the peer does with the messages it receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Sends each one straight back (ping-pong).
    Echo,
    /// Counts them, and once the sender is gone sends back one message with the count.
    Sink,
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // As clap spells them: the peer's command line carries this.
        f.write_str(match self {
            Variant::Ours => "ours",
            Variant::Raw => "raw",
        })
    }
}

impl fmt::Display for Api {
    // As clap spells them: the peer's command line carries this.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Api::Blocking => "blocking",
            Api::Async => "async",
            Api::WaitSet => "wait-set",
            Api::Batch => "batch",
        })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Echo => "echo",
            Role::Sink => "sink",
        })
    }
}

/// How long a peer may take to start and open its ends. Generous: a loaded machine may need
/// a while to start a process, and a peer that fails says so on its own.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Receives one message, an empty one being the end of the stream ([`ipc::Error::Disconnected`])
/// like a closed connection.
///
/// The bench's messages are never empty, so this costs ours and raw the same one comparison per
/// message; it lets a transport without connections (a message queue) end its stream.
#[inline]
pub fn recv_message(rx: &mut dyn Receiver, buf: &mut [u8]) -> ipc::Result<usize> {
    match rx.recv(buf) {
        Ok(0) => Err(ipc::Error::Disconnected),
        other => other,
    }
}

/// What the peer measured of its own side, from the first message marked as measured
/// ([`MEASURED`]) to the end of the stream; it prints it on its stdout as it exits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerReport {
    /// CPU time of the peer process (`CLOCK_PROCESS_CPUTIME_ID`) over that interval.
    pub cpu: Duration,
    /// Messages it received over that interval.
    pub messages: u64,
}

impl PeerReport {
    /// The line the peer prints.
    pub fn line(&self) -> String {
        format!("cpu_ns={} messages={}", self.cpu.as_nanos(), self.messages)
    }

    /// Reads what [`PeerReport::line`] wrote.
    pub fn parse(text: &str) -> Option<PeerReport> {
        let mut cpu = None;
        let mut messages = None;
        for field in text.split_whitespace() {
            match field.split_once('=')? {
                ("cpu_ns", v) => cpu = Some(Duration::from_nanos(v.parse().ok()?)),
                ("messages", v) => messages = Some(v.parse().ok()?),
                _ => {}
            }
        }
        Some(PeerReport {
            cpu: cpu?,
            messages: messages?,
        })
    }

    /// The peer's CPU time per message, in nanoseconds (NaN without messages).
    pub fn cpu_ns_per_message(&self) -> f64 {
        self.cpu.as_nanos() as f64 / self.messages as f64
    }
}

/// First byte of every message sent in a measured interval; the warm-up's messages start with
/// another byte. The peer starts its CPU clock and its count at the first one: a comparison
/// per message until then, the same for ours and raw.
pub const MEASURED: u8 = 0xa5;
/// First byte of every warm-up message.
pub const WARM_UP: u8 = 0x5a;

/// Writes `count` into a message of any size: little endian, as many low bytes as fit.
pub fn encode_count(count: u64, msg: &mut [u8]) {
    let bytes = count.to_le_bytes();
    let n = msg.len().min(bytes.len());
    msg[..n].copy_from_slice(&bytes[..n]);
}

/// Whether `msg` is what [`encode_count`] writes for `count`.
pub fn matches_count(count: u64, msg: &[u8]) -> bool {
    let mut expected = vec![0; msg.len()];
    encode_count(count, &mut expected);
    let n = msg.len().min(8);
    msg[..n] == expected[..n]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peer_report_reads_back() {
        let report = PeerReport {
            cpu: Duration::from_nanos(123_456),
            messages: 789,
        };
        assert_eq!(
            PeerReport::parse(&format!("{}\n", report.line())),
            Some(report)
        );
        assert_eq!(PeerReport::parse(""), None);
        assert_eq!(PeerReport::parse("cpu_ns=x messages=1"), None);
        assert!(PeerReport::default().cpu_ns_per_message().is_nan());
    }
}
