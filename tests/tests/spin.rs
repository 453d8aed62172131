//! The whole suite over the transports whose receivers sleep in the kernel unless told to poll
//! first (`wait=spin`): pipes, FIFOs and sockets. Spinning must change when a receiver finds
//! its message, never what it finds, and still leave a blocked call asleep after its 20 µs.

use ipc::WaitStrategy::Spin;
use ipc_tests::factory_socket::{SocketPairFactory, TcpFactory, UnixFactory};
use ipc_tests::{FifoFactory, PipeFactory, WaitingFactory};

mod pipe {
    use super::*;
    ipc_tests::conformance_tests!(WaitingFactory::new(PipeFactory, Spin));
}

mod fifo {
    use super::*;
    ipc_tests::conformance_tests!(WaitingFactory::new(FifoFactory, Spin));
}

mod unix {
    use super::*;
    ipc_tests::conformance_tests!(WaitingFactory::new(UnixFactory, Spin));
}

mod tcp {
    use super::*;
    ipc_tests::conformance_tests!(WaitingFactory::new(TcpFactory, Spin));
}

mod socketpair {
    use super::*;
    ipc_tests::conformance_tests!(WaitingFactory::new(SocketPairFactory, Spin));
}
