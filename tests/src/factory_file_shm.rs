//! [`FileShmFactory`]: the conformance suite on rings in mapped regular files (`file-shm:`),
//! the [`RingFactory`] over a path in `/tmp` instead of a name in `/dev/shm`.

use std::path::PathBuf;

use crate::PathGuard;
use crate::factory::{RingFactory, RingPlace};

/// Rings in regular files, `/tmp/ipc-test-<pid>-<n>.ring`: on whatever file system `/tmp` is
/// (a disk or a tmpfs), which is the point of the transport.
pub enum FileShmPlace {}

impl RingPlace for FileShmPlace {
    const NAME: &'static str = "file-shm";
    type Guard = PathGuard;
    type Id = PathBuf;

    fn fresh() -> PathGuard {
        PathGuard::unique("ring")
    }

    fn id(guard: &PathGuard) -> PathBuf {
        guard.path().to_owned()
    }

    fn address(guard: &PathGuard) -> String {
        format!("file-shm:{}", guard.as_str())
    }
}

/// The suite on rings in mapped files: who creates and who removes is as for every
/// [`RingFactory`], with a [`PathGuard`] on the [`Pair`](crate::Pair) or
/// [`Peer`](crate::process::Peer) removing the file in every other ending.
pub type FileShmFactory = RingFactory<FileShmPlace>;
