//! The conformance suite on unix `SOCK_SEQPACKET` sockets (a socket file per test).

ipc_tests::conformance_tests!(ipc_tests::factory_socket::UnixFactory);
