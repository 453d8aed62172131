//! Rings in mapped regular files (`file-shm`): the `file-shm:` ring of the `ipc` facade,
//! waiting the default way (`spin`), in files `ipc-bench-file-<pid>-<n>` of the temporary
//! directory (`$TMPDIR`, else `/tmp`: a tmpfs or a disk, whichever the machine has, which is
//! what a user of the transport gets). The raw baseline is `posix-shm-spin`'s: a mailbox each
//! way in `/dev/shm`, waiting the same way, since the ring is the same and only where its
//! pages come from differs.
//!
//! The rest is the ring family's ([`crate::ring`]); the files' removal on an interrupting
//! signal is [`Named::File`].

use std::path::PathBuf;

use ipc::WaitStrategy;

use crate::interrupt::{self, Named};
use crate::made::Made;
use crate::posix_shm;
use crate::protocol::Variant;
use crate::ring::{self, RingKind};
use crate::transport::{BenchTransport, Ends, Link, Setup};

/// The bench transport `file-shm`.
pub struct FileShm;

/// How both ends wait, in ours and in the raw baseline.
const WAIT: WaitStrategy = WaitStrategy::Spin;

impl RingKind for FileShm {
    /// A path `$TMPDIR/ipc-bench-file-<pid>-<n>`.
    fn fresh(&self) -> (String, Named) {
        let path: PathBuf = std::env::temp_dir().join(interrupt::fresh_name("ipc-bench-file"));
        let text = path.display().to_string();
        (text, Named::File(path))
    }

    fn spec(&self, path: &str, size: usize, create: &str) -> String {
        let capacity = ring::ring_capacity(size);
        format!(
            "file-shm:{path}?capacity={capacity}&message_size={size}&create={create}&wait={WAIT}"
        )
    }
}

impl BenchTransport for FileShm {
    fn name(&self) -> &'static str {
        "file-shm"
    }

    fn connect(&self, setup: Setup<'_>) -> ipc::Result<Link> {
        let (variant, size, cmd) = (setup.variant, setup.size, setup.cmd);
        match variant {
            Variant::Ours => ring::connect_ours(self, size, cmd, Made::default()),
            Variant::Raw => posix_shm::connect_raw(WAIT, size, cmd, Made::default()),
        }
    }

    fn open_raw_peer(&self, size: usize, rx: &str, tx: &str) -> ipc::Result<Ends> {
        posix_shm::open_raw_mailboxes(WAIT, size, rx, tx)
    }
}
