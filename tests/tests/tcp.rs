//! The conformance suite on TCP over loopback.

ipc_tests::conformance_tests!(ipc_tests::factory_socket::TcpFactory);
