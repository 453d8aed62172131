//! The conformance suite through the `tokio` feature of `ipc`, for every transport: each
//! endpoint of each test, in this process and in its peers, does every wait as an `.await` of
//! `ipc::AsyncSender::send` / `ipc::AsyncReceiver::recv` on a current-thread runtime of its own
//! (see `ipc_tests::via`), never in the transport's blocking call.

const PEER: &str = env!("CARGO_BIN_EXE_ipc-test-peer");

ipc_tests::conformance_tests_via!(ipc_tests::Via::Tokio);

/// The adapters are what the suite runs: a receive waits in the runtime's `epoll_wait`, here
/// and in a peer, and the sender's going wakes it (see `ipc_tests::via::check_endpoints_wait`).
#[test]
fn endpoints_wait_in_the_runtime_here_and_in_peers() {
    ipc_tests::via::check_endpoints_wait(ipc_tests::Via::Tokio, PEER);
}
