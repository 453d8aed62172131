//! The workspace's whole conformance suite against `memfd:`, across real processes: the peers
//! are `memfd-peer` (src/bin/memfd-peer.rs), the suite's own peer with the scheme registered.
//! Run once as the transport's own calls, once through an `ipc::WaitSet` and once on tokio, in
//! this process and in every peer: the facade's event-loop entry points open a registered
//! scheme like a built-in one.

use ipc_tests::{Cfg, Fresh, PathGuard, SpecFactory, Via, ViaFactory};

/// A ring at a fresh socket path, which the guard removes if a test leaves it; sized for the
/// suite's 64 KiB messages unless the test picks a capacity, and open to several producers
/// when several write.
fn memfd(cfg: &Cfg, writers: usize) -> Fresh {
    static REGISTER: std::sync::Once = std::sync::Once::new();
    REGISTER.call_once(|| memfd_transport::register().expect("registering memfd:"));
    let path = PathGuard::unique("sock");
    let mut spec = format!("memfd:{}{}&open_timeout=10s", path.as_str(), cfg.query());
    if cfg.capacity.is_none() {
        spec.push_str("&capacity=256KiB");
    }
    if writers > 1 {
        spec.push_str("&producers=multi");
    }
    Fresh::new(spec, path)
}

const MEMFD: SpecFactory = SpecFactory {
    name: "memfd",
    sees_peer_death: true,
    // A quarter of the 256 KiB ring: the largest record it takes.
    max_message_size: 64 * 1024,
    // A multi-producer ring serialises whole records.
    multi_writer_max: 64 * 1024,
    fresh: memfd,
};

ipc_tests::conformance_tests!(MEMFD, connected, peer = env!("CARGO_BIN_EXE_memfd-peer"));

mod via_wait_set {
    use super::*;

    ipc_tests::conformance_tests!(
        ViaFactory::new(MEMFD, Via::WaitSet),
        connected,
        peer = env!("CARGO_BIN_EXE_memfd-peer")
    );
}

mod via_tokio {
    use super::*;

    ipc_tests::conformance_tests!(
        ViaFactory::new(MEMFD, Via::Tokio),
        connected,
        peer = env!("CARGO_BIN_EXE_memfd-peer")
    );
}
