//! The conformance suite's peer process for `memfd:`: the suite's own, with the scheme registered.

fn main() -> std::process::ExitCode {
    memfd_transport::register().expect("registering memfd:");
    ipc_tests::peer::main()
}
