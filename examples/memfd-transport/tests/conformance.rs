// The conformance suite, once ipc-tests' harness lands.
