//! System V shared memory (`sysv-shm`): the `sysv-shm:` ring of the `ipc` facade, waiting the
//! default way (`spin`). It is the same ring as `posix-shm` over another kind of segment, so
//! there is no raw baseline of its own: compare with the `posix-shm-spin` row (and its raw
//! mailbox).
//!
//! The segments of a link are keyed `0x6…` from the pid and a counter; the rest is the ring
//! family's ([`crate::ring`]), their removal on an interrupting signal [`Named::SysvShm`].

use ipc::sysv::Key;
use ipc::sysv::shm::SysvSegment;

use crate::interrupt::{self, Named};
use crate::made::Made;
use crate::protocol::Variant;
use crate::ring::{self, RingKind};
use crate::transport::{BenchTransport, Ends, Link, Setup};

/// The bench transport `sysv-shm`.
pub struct SysvShm;

impl RingKind for SysvShm {
    /// A key `0x6000_0000 | (pid & 0xf_ffff) << 8 | n`, skipping keys in use (another
    /// program's, or ours after the counter wrapped).
    fn fresh(&self) -> (String, Named) {
        loop {
            let n = interrupt::serial() & 0xff;
            // At most 0x6fff_ffff: a positive i32, never IPC_PRIVATE.
            let key = (0x6000_0000 | ((std::process::id() & 0xf_ffff) << 8) | n) as i32;
            if SysvSegment::lookup(&Key::Explicit(key)).is_err() {
                return (format!("{key:#x}"), Named::SysvShm(key));
            }
        }
    }

    fn spec(&self, key: &str, size: usize, create: &str) -> String {
        let capacity = ring::ring_capacity(size);
        format!(
            "sysv-shm:key={key}?capacity={capacity}&message_size={size}&create={create}&wait=spin"
        )
    }
}

impl BenchTransport for SysvShm {
    fn name(&self) -> &'static str {
        "sysv-shm"
    }

    fn has_raw_baseline(&self) -> bool {
        false
    }

    fn connect(&self, setup: Setup<'_>) -> ipc::Result<Link> {
        let (variant, size, cmd) = (setup.variant, setup.size, setup.cmd);
        match variant {
            Variant::Ours => ring::connect_ours(self, size, cmd, Made::default()),
            Variant::Raw => Err(no_raw_baseline()),
        }
    }

    fn open_raw_peer(&self, _: usize, _: &str, _: &str) -> ipc::Result<Ends> {
        Err(no_raw_baseline())
    }
}

fn no_raw_baseline() -> ipc::Error {
    ipc::Error::invalid_spec(
        "sysv-shm",
        "the sysv-shm bench has no raw baseline (compare with posix-shm-spin)",
    )
}
