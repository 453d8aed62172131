//! The conformance suite through `ipc::WaitSet`, for every transport: each endpoint of each
//! test, in this process and in its peers, does every wait in a wait set of its own (see
//! `ipc_tests::via`), never in the transport's blocking call. One module per transport, with
//! the group of tests of the transport's own file (see `conformance_tests_via!`), so the
//! properties, their time bounds and the peer-death tests are the direct ones.

const PEER: &str = env!("CARGO_BIN_EXE_ipc-test-peer");

ipc_tests::conformance_tests_via!(ipc_tests::Via::WaitSet);

/// The adapters are what the suite runs: a receive waits in the set's `poll(2)`, here and in a
/// peer, and the sender's going wakes it (see `ipc_tests::via::check_endpoints_wait`).
#[test]
fn endpoints_wait_in_the_set_here_and_in_peers() {
    ipc_tests::via::check_endpoints_wait(ipc_tests::Via::WaitSet, PEER);
}
