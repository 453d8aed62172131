//! The bench's table of transports, and choosing from it by name.

use crate::error::Error;
use crate::queue::Queues;
use crate::transport::BenchTransport;
use crate::{fifo, file_shm, pipe, posix_mq, posix_shm, socket, sysv_mq, sysv_shm};

/// The transports `ipc bench` knows, in the order it runs them. A new transport is one more
/// entry here.
pub(crate) static TRANSPORTS: &[&dyn BenchTransport] = &[
    &pipe::PIPE,
    &pipe::PIPE_SPIN,
    &pipe::PIPE_PACKETS,
    &fifo::FIFO,
    &fifo::FIFO_PACKETS,
    &Queues(posix_mq::PosixMq),
    &posix_shm::BUSY,
    &posix_shm::SPIN,
    &posix_shm::PARK,
    &posix_shm::MULTI,
    &Queues(sysv_mq::SysvMq),
    &sysv_shm::SysvShm,
    &file_shm::FileShm,
    &socket::UNIX,
    &socket::UNIX_SPIN,
    &socket::TCP,
    &socket::TCP_SPIN,
    &socket::SOCKETPAIR,
    #[cfg(feature = "zenoh")]
    &crate::zenoh::ZENOH,
    #[cfg(feature = "zenoh")]
    &crate::zenoh::ZENOH_SPIN,
];

/// The transport called `name` (as the peer's command line names it).
pub(crate) fn lookup(name: &str) -> Result<&'static dyn BenchTransport, Error> {
    TRANSPORTS
        .iter()
        .copied()
        .find(|t| t.name() == name)
        .ok_or_else(|| unknown(name))
}

/// The transports `name` selects on the command line: the one of that name, or else every
/// one whose name continues it after a dash (`posix-shm`: `posix-shm-busy`, `-spin`, `-park`).
pub(crate) fn select(name: &str) -> Result<Vec<&'static dyn BenchTransport>, Error> {
    if let Ok(transport) = lookup(name) {
        return Ok(vec![transport]);
    }
    let group: Vec<_> = TRANSPORTS
        .iter()
        .copied()
        .filter(|t| {
            t.name()
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('-'))
        })
        .collect();
    if group.is_empty() {
        Err(unknown(name))
    } else {
        Ok(group)
    }
}

fn unknown(name: &str) -> Error {
    if name == "zenoh" {
        return Error::Usage(
            "bench transport `zenoh` is not built in: build `ipc` with the feature `zenoh` \
             (`cargo install --path ipc-cli --features zenoh`)"
                .into(),
        );
    }
    let known: Vec<_> = TRANSPORTS.iter().map(|t| t.name()).collect();
    Error::Usage(format!(
        "unknown bench transport `{name}` (built in: {}; a leading part such as `posix-shm` \
         selects every one it begins)",
        known.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(transports: &[&dyn BenchTransport]) -> Vec<&'static str> {
        transports.iter().map(|t| t.name()).collect()
    }

    #[test]
    fn names_are_unique_and_each_looks_up_itself() {
        let all = names(TRANSPORTS);
        for (i, name) in all.iter().enumerate() {
            assert!(!all[..i].contains(name), "{name} twice");
            assert_eq!(lookup(name).map(|t| t.name()).ok(), Some(*name));
        }
        assert!(lookup("carrier-pigeon").is_err());
    }

    #[test]
    fn a_whole_name_selects_itself_and_a_leading_part_its_group() {
        let selected = |name| names(&select(name).unwrap());
        assert_eq!(selected("pipe"), ["pipe"]);
        assert_eq!(selected("fifo"), ["fifo"]);
        assert_eq!(selected("pipe-packets"), ["pipe-packets"]);
        assert_eq!(
            selected("posix-shm"),
            [
                "posix-shm-busy",
                "posix-shm-spin",
                "posix-shm-park",
                "posix-shm-multi"
            ]
        );
        assert!(select("pip").is_err());
    }

    #[test]
    fn packets_skip_sizes_above_pipe_buf_and_frames_skip_none() {
        for packets in [
            &pipe::PIPE_PACKETS as &dyn BenchTransport,
            &fifo::FIFO_PACKETS,
        ] {
            assert_eq!(packets.unsupported(1), None);
            assert_eq!(packets.unsupported(4096), None);
            let why = packets.unsupported(4097).expect("4097 B is not a packet");
            assert!(why.contains("PIPE_BUF"), "{why}");
        }
        for frames in [
            &pipe::PIPE as &dyn BenchTransport,
            &pipe::PIPE_SPIN,
            &fifo::FIFO,
        ] {
            assert_eq!(frames.unsupported(64 << 20), None);
        }
    }
}
