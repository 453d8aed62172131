//! The conformance suite on TCP over loopback.
//!
//! Three tests are known to fail now and then, and stay listed (`--ignored` runs them): they
//! need a `Full` that stays full until the receiver reads, and TCP does not give one. A
//! receiver's kernel merges the small segments it holds to save memory (`tcp_collapse`), which
//! reopens its window, and the sender's buffer drains into it with nobody reading.

ipc_tests::conformance_tests!(@tcp ipc_tests::factory_socket::TcpFactory);
