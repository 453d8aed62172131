//! Named pipes: ours is `ipc::fifo` (`fifo`; `fifo-packets` with one message per packet,
//! `framing=packets`), the baseline `write`/`read` on FIFOs made with `mkfifo`, the same for
//! both (see [`crate::pipe`] for why packets get the byte-mode loop). Both FIFOs of a link live
//! in the bench's private directory.

use std::os::fd::AsFd;

use ipc::{Framing, TransportSpec, Wait};
use nix::poll::PollFlags;
use nix::sys::stat::Mode;

use crate::pipe::{framing_unsupported, size_like_ours};
use crate::protocol::{OPEN_TIMEOUT, Variant};
use crate::raw::{fd_ends, open_fifo};
use crate::transport::{BenchTransport, Ends, Link, Peer, Setup};

pub struct Fifo {
    name: &'static str,
    /// How ours lays messages on the FIFO (the raw baseline writes them as they are).
    framing: Framing,
}

pub static FIFO: Fifo = Fifo {
    name: "fifo",
    framing: Framing::Frames,
};

pub static FIFO_PACKETS: Fifo = Fifo {
    name: "fifo-packets",
    framing: Framing::Packets,
};

impl BenchTransport for Fifo {
    fn name(&self) -> &'static str {
        self.name
    }

    fn unsupported(&self, size: usize) -> Option<String> {
        framing_unsupported(self.framing, size)
    }

    fn connect(&self, setup: Setup<'_>) -> ipc::Result<Link> {
        let (variant, size, scratch, mut cmd) =
            (setup.variant, setup.size, setup.scratch, setup.cmd);
        let to_peer_path = scratch.unique_path("to-peer")?;
        let from_peer_path = scratch.unique_path("from-peer")?;
        match variant {
            Variant::Ours => {
                // Frames are the default: their strings read as they always did.
                let framing = match self.framing {
                    Framing::Frames => String::new(),
                    other => format!("&framing={other}"),
                };
                let spec = |path: &str| {
                    format!(
                        "fifo:{path}?message_size={size}&open_timeout={}ms{framing}",
                        OPEN_TIMEOUT.as_millis()
                    )
                };
                // Our receiver first: the peer's sender waits for a reader.
                let from_peer = ipc::open_receiver(&spec(&from_peer_path))?;
                cmd.arg("--rx").arg(spec(&to_peer_path));
                cmd.arg("--tx").arg(spec(&from_peer_path));
                let peer = Peer::spawn(cmd)?;
                // Waits (up to open_timeout) for the peer to create this FIFO and read it.
                let to_peer = ipc::open_sender(&spec(&to_peer_path))?;
                Ok(Link::new(to_peer, from_peer, peer))
            }
            Variant::Raw => {
                for path in [&to_peer_path, &from_peer_path] {
                    nix::unistd::mkfifo(path.as_str(), Mode::S_IRUSR | Mode::S_IWUSR)
                        .map_err(|e| ipc::Error::from_os("mkfifo", path, e.into()))?;
                }
                let from_peer = open_fifo(&from_peer_path, false)?;
                // A reader of our own lets us open the writing end before the peer is there;
                // it goes once the peer has its own.
                let stand_in = open_fifo(&to_peer_path, false)?;
                let to_peer = open_fifo(&to_peer_path, true)?;
                size_like_ours(to_peer.as_fd(), size, self.framing)?;
                size_like_ours(from_peer.as_fd(), size, self.framing)?;
                cmd.arg("--rx").arg(format!("fifo:{to_peer_path}"));
                cmd.arg("--tx").arg(format!("fifo:{from_peer_path}"));
                let peer = Peer::spawn(cmd)?;
                // The peer opens its reader, then its writer, then sends: once there is
                // something to read, both its ends are open. (On a FIFO that no writer has
                // opened yet, `read` returns end of file at once while `poll` waits.)
                let opened = Wait::timeout(OPEN_TIMEOUT);
                if !ipc::poll_fd(from_peer.as_fd(), PollFlags::POLLIN, opened)? {
                    return Err(ipc::Error::Timeout);
                }
                drop(stand_in);
                // Both ends are open on both sides: the names are no longer needed.
                let _ = std::fs::remove_file(&to_peer_path);
                let _ = std::fs::remove_file(&from_peer_path);
                let (from_peer, to_peer) = fd_ends(from_peer, to_peer, size);
                Ok(Link::new(to_peer, from_peer, peer))
            }
        }
    }

    fn open_raw_peer(&self, size: usize, rx: &str, tx: &str) -> ipc::Result<Ends> {
        let rx = open_fifo(&path(rx)?, false)?;
        let tx = open_fifo(&path(tx)?, true)?;
        Ok(fd_ends(rx, tx, size))
    }
}

fn path(spec: &str) -> ipc::Result<String> {
    match spec.parse::<TransportSpec>()?.address {
        ipc::Address::Path(path) => Ok(path),
        _ => Err(ipc::Error::invalid_spec(spec, "expected `fifo:PATH`")),
    }
}
