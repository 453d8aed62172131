//! Opening and closing Zenoh sessions for a transport string, away from the caller's thread.
//!
//! Zenoh runs on its own tokio runtimes, and its blocking calls that enter them (opening and
//! closing a session, undeclaring) panic on a thread of a current-thread tokio runtime. So
//! those calls run on a short-lived thread of ours, whatever runtime the caller is in: an
//! endpoint is then usable from plain threads and from inside any tokio runtime alike
//! (`ipc::tokio`).

use std::io;
use std::panic;
use std::time::Duration;

use ipc_core::{Error, Result, TransportSpec, ZenohMode};
use zenoh::{Config, Wait};

/// How long a blocked `put` may wait for room in Zenoh's queue before Zenoh closes the link.
/// Zenoh's default (5 s) would drop the link, and the messages in it, under a receiver that
/// merely reads slowly; a day is "as long as the receiver is alive and connected".
const BLOCK_BEFORE_CLOSE: Duration = Duration::from_secs(24 * 3600);

/// Runs `f` on a fresh thread and returns its result (a panic there is resumed here).
pub(crate) fn off_thread<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(value) => value,
        Err(panic) => panic::resume_unwind(panic),
    })
}

/// A Zenoh error as ours: Zenoh's errors are strings, so the operation and the text are kept.
pub(crate) fn zenoh_error(op: &str, e: impl std::fmt::Display) -> Error {
    Error::io(op, io::Error::other(e.to_string()))
}

/// Opens the session a transport string describes.
pub(crate) fn open(spec: &TransportSpec) -> Result<zenoh::Session> {
    let config = config(spec)?;
    off_thread(move || zenoh::open(config).wait())
        .map_err(|e| zenoh_error(&format!("open zenoh session for {spec}"), e))
}

/// Closes `session` once the entities declared on it (`parts`) are dropped, off the caller's
/// thread. Closing flushes what Zenoh still queues for the link.
pub(crate) fn close<P: Send>(session: zenoh::Session, parts: P) {
    off_thread(move || {
        drop(parts);
        let _ = session.close().wait();
    });
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_list(items: &[String]) -> String {
    let items: Vec<_> = items.iter().map(|s| json_string(s)).collect();
    format!("[{}]", items.join(","))
}

/// Zenoh's configuration for a transport string: only what the string names.
///
/// - no multicast scouting unless `scouting=multicast`, and no listening unless `listen=`
///   (Zenoh's defaults would scout the LAN and listen on every interface);
/// - QoS off on unicast links, so that everything one session sends on a link travels in one
///   queue and arrives in the order sent: the removal of a sender's liveliness token (a
///   control message, which QoS would send at a higher priority) then arrives after the last
///   message that sender published, and the receiver sees `Disconnected` only after them;
/// - a lease of 60 s rather than 10: closing a session sends what Zenoh still queues within a
///   quarter of the lease and drops the rest, and 2.5 s was too short for a sender that exits
///   right after many sends to a receiver that reads slowly; the price is that a peer that
///   vanishes without closing its TCP connection (a cut network, not a killed process) is
///   noticed after 60 s;
/// - a peer started before the one it connects to retries `connect` quickly (from 20 ms on,
///   at most every second) in the background without failing the open: `open_timeout` is
///   what bounds a sender's wait.
pub(crate) fn config(spec: &TransportSpec) -> Result<Config> {
    let o = &spec.options;
    let mode = match o.zenoh_mode.unwrap_or_default() {
        ZenohMode::Peer => "peer",
        ZenohMode::Client => "client",
    };
    let multicast = o.scouting == Some(ipc_core::Scouting::Multicast);
    // A peer retries its endpoints in the background (-1: for ever), so that a sender
    // started before its receiver connects when the receiver comes; `open_timeout` bounds
    // the sender's wait. A client's open connects to its router before returning, so there
    // the bound is the open_timeout itself.
    let connect_timeout_ms: i64 = match o.zenoh_mode.unwrap_or_default() {
        ZenohMode::Peer => -1,
        ZenohMode::Client => o
            .open_timeout
            .unwrap_or(crate::DEFAULT_OPEN_TIMEOUT)
            .as_millis()
            .try_into()
            .unwrap_or(i64::MAX),
    };
    let entries = [
        ("mode", json_string(mode)),
        ("connect/endpoints", json_list(&o.connect)),
        ("listen/endpoints", json_list(&o.listen)),
        ("scouting/multicast/enabled", multicast.to_string()),
        ("transport/unicast/qos/enabled", "false".into()),
        ("transport/link/tx/lease", "60000".into()),
        ("connect/timeout_ms", connect_timeout_ms.to_string()),
        ("connect/exit_on_failure", "false".into()),
        (
            "connect/retry",
            "{period_init_ms: 20, period_max_ms: 1000, period_increase_factor: 2}".into(),
        ),
        (
            "transport/link/tx/queue/congestion_control/block/wait_before_close",
            BLOCK_BEFORE_CLOSE.as_micros().to_string(),
        ),
    ];
    let mut config = Config::default();
    for (key, value) in entries {
        config.insert_json5(key, &value).map_err(|e| {
            Error::invalid_spec(
                spec.to_string(),
                format!("zenoh refused {key}={value}: {e}"),
            )
        })?;
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_string_option_reaches_the_config() {
        let spec: TransportSpec =
            "zenoh:a?mode=client&connect=tcp/127.0.0.1:1,tcp/127.0.0.1:2&scouting=multicast"
                .parse()
                .unwrap();
        let c = config(&spec).unwrap();
        assert_eq!(c.get_json("mode").unwrap(), "\"client\"");
        let connect = c.get_json("connect/endpoints").unwrap();
        assert!(connect.contains("tcp/127.0.0.1:2"), "{connect}");
        assert_eq!(c.get_json("scouting/multicast/enabled").unwrap(), "true");
        let plain = config(&"zenoh:a".parse().unwrap()).unwrap();
        assert_eq!(
            plain.get_json("scouting/multicast/enabled").unwrap(),
            "false"
        );
        assert_eq!(plain.get_json("listen/endpoints").unwrap(), "[]");
    }
}
