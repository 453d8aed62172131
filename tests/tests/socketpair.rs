//! The conformance suite on socket pairs handed to children.

ipc_tests::conformance_tests!(ipc_tests::factory_socket::SocketPairFactory);
