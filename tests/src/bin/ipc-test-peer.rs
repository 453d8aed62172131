//! The other process of the cross-process tests: [`ipc_tests::peer`] over the workspace's own
//! transports.

fn main() -> std::process::ExitCode {
    ipc_tests::peer::main()
}
