//! The ring family (`posix-shm-*`, `sysv-shm`, `file-shm`): ours is a ring of the `ipc` facade on two
//! segments, one each way, which this process creates (`create=always`) before it starts the
//! peer, which only opens them (`create=never`). A transport of the family says only how its
//! segments are named and spelt ([`RingKind`]).
//!
//! The stream ends with an empty message: a ring reports a dead peer by itself, but only one
//! that had attached, so a watcher speaks for a peer that dies ([`watch::end_ring`]).

use std::process::Command;

use ipc::sync::ring::Geometry;

use crate::interrupt::Named;
use crate::made::Made;
use crate::transport::Link;
use crate::watch;

/// What a ring transport tells the family's driver.
pub trait RingKind {
    /// A segment no other of this process gets: its address in a spec, and what removes it.
    fn fresh(&self) -> (String, Named);
    /// The spec of one ring of a link for `size`-byte messages, created as `create` says.
    fn spec(&self, address: &str, size: usize, create: &str) -> String;
}

/// Ours on the ring transport `kind`: creates both rings, hands the peer their specs, starts it
/// and its watcher.
pub fn connect_ours(
    kind: &dyn RingKind,
    size: usize,
    mut cmd: Command,
    mut made: Made,
) -> ipc::Result<Link> {
    let (to_peer_address, named) = kind.fresh();
    let to_peer = ipc::open_sender(&kind.spec(&to_peer_address, size, "always"))?;
    // A sender never removes its segment: `made` does.
    made.created(named);
    let (from_peer_address, named) = kind.fresh();
    let from_peer = ipc::open_receiver(&kind.spec(&from_peer_address, size, "always"))?;
    // Removed by the receiver when it goes, and by `made` in any case.
    made.created(named);
    cmd.arg("--rx")
        .arg(kind.spec(&to_peer_address, size, "never"));
    cmd.arg("--tx")
        .arg(kind.spec(&from_peer_address, size, "never"));
    // The watcher's own sender does not wait for a segment already removed.
    let spec = kind.spec(&from_peer_address, size, "never") + "&open_timeout=0ms";
    made.link(to_peer, from_peer, cmd, "shm", watch::end_ring(spec))
}

/// Smallest ring capacity; a ring also holds at least [`MESSAGES_IN_RING`] messages.
///
/// Over twice a core's L2 cache (2 MiB here, 1–2 MiB on current x86 servers) and well under
/// the shared L3. The likely cause: in a ring that fits in L2, the lines a producer writes
/// were last read by the consumer and are still in its cache, and the lines the consumer reads
/// are still in the producer's, so each line crosses between the cores' private caches twice
/// per message; in a larger ring they have gone out to the shared L3 by the time the other
/// side comes to them. A C model of the copy alone shows the same. 64 KiB streams went
/// from 0.23–0.31× memcpy (1 MiB rings) to 0.8× in most rounds (4 MiB), the 64 KiB round
/// trip from 10.7 to 6.8 µs; 8 MiB was no better, 16 MiB (two rings fill the L3) worse.
const MIN_CAPACITY: usize = 4 << 20;
const MESSAGES_IN_RING: usize = 16;

/// The capacity of a ring for `size`-byte messages: at least [`MIN_CAPACITY`] and
/// [`MESSAGES_IN_RING`] messages, a power of two, and large enough that the ring takes
/// `size`-byte messages at all ([`Geometry::max_message_for`]).
pub fn ring_capacity(size: usize) -> usize {
    let mut capacity = MIN_CAPACITY
        .max(MESSAGES_IN_RING.saturating_mul(size))
        .checked_next_power_of_two()
        .unwrap_or(usize::MAX);
    while Geometry::max_message_for(capacity as u64) < size && capacity < usize::MAX / 2 {
        capacity *= 2;
    }
    capacity
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_take_their_messages() {
        for size in [1, 64, 4096, 65536, 1 << 20, (1 << 20) + 1, 64 << 20] {
            let capacity = ring_capacity(size);
            assert!(
                capacity >= MIN_CAPACITY && capacity.is_power_of_two(),
                "{size}"
            );
            assert!(capacity >= MESSAGES_IN_RING * size, "{size}");
            assert!(Geometry::max_message_for(capacity as u64) >= size, "{size}");
        }
        assert_eq!(ring_capacity(64), MIN_CAPACITY);
        assert_eq!(ring_capacity(65536), MIN_CAPACITY);
        assert_eq!(ring_capacity(1 << 20), 16 << 20);
    }
}
