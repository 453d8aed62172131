//! The whole suite through a [`SpecFactory`], as a crate outside the workspace runs it against
//! the scheme it registers: here `file-shm:` rings named by their string alone (the receiver
//! makes the file, senders wait for it), with the peers named by `peer =`. The ring's own
//! factory ([`FileShmFactory`](ipc_tests::factory_file_shm::FileShmFactory), tests/file_shm.rs)
//! sizes rings for large messages and picks who creates; this one takes the defaults, so it
//! stays within what the default ring holds.

use ipc_tests::{Cfg, Fresh, PathGuard, SpecFactory};

/// A ring at a fresh path in `/tmp`, which the guard removes whoever made it; shared by several
/// producers when several write.
fn ring(cfg: &Cfg, writers: usize) -> Fresh {
    let path = PathGuard::unique("ring");
    let mut spec = format!("file-shm:{}{}&open_timeout=10s", path.as_str(), cfg.query());
    if writers > 1 {
        spec.push_str("&producers=multi");
    }
    Fresh::new(spec, path)
}

ipc_tests::conformance_tests!(
    SpecFactory {
        name: "file-shm",
        sees_peer_death: true,
        // The largest record the default ring (64 KiB) takes.
        max_message_size: 16 * 1024,
        // A multi-producer ring serialises whole records.
        multi_writer_max: 16 * 1024,
        fresh: ring,
    },
    connected,
    peer = env!("CARGO_BIN_EXE_ipc-test-peer")
);
