//! Conformance suite of the `ipc` workspace: one set of tests, run against every transport.
//!
//! - [`Factory`] makes transports of one kind: both ends in this process, or one end in a
//!   peer process. A backend joins the suite with one factory and one test file:
//!
//!   ```text
//!   // tests/tests/pipe.rs
//!   ipc_tests::conformance_tests!(ipc_tests::PipeFactory);
//!   ```
//!
//! - [`suite`] holds the tests, generic over the factory.
//! - [`process`] runs the peer binary (`ipc-test-peer`, a fresh exec, not a fork) and keeps
//!   every test bounded: peers are killed when dropped, waits have deadlines. [`peer`] is that
//!   binary's body, so that another crate's peer binary is the same in two lines.
//! - [`message`] makes messages that check themselves (writer, sequence number, seal).
//! - [`fixtures`] names objects uniquely and removes them even when a test fails.
//! - [`shm_ring`] opens the rings of every shared-memory transport, maps a live segment for a test
//!   playing the hostile peer, and reads its region table; [`board`] is where `ipc-shm-peer`
//!   processes report what they are doing when a test kills them.
//! - [`via`] runs the suite through the event-loop APIs: [`ViaFactory`] wraps a factory so that
//!   every endpoint of a test, here and in its peers, waits through an `ipc::WaitSet`.
//! - [`kill_producers`] is one trial of producers SIGKILLed mid-stream on a multi-producer
//!   ring, shared by `tests/issue_11.rs` and the `ipc-stress` binary.
//! - [`factory_spec`]: [`SpecFactory`], the factory of a transport opened from a string, for
//!   transports outside the workspace (below).
//!
//! # Running the suite against your own transport
//!
//! A crate outside the workspace whose transport both ends open from a transport string, once
//! its scheme is registered with the facade (`ipc::open_sender` / `ipc::open_receiver` then
//! dispatch to it), runs the whole suite across real processes with four pieces;
//! `examples/memfd-transport` is the worked example.
//!
//! **The dependency.** The peer binary needs this crate as a regular dependency (a `[[bin]]`
//! cannot use dev-dependencies); an optional one, on by default, keeps it out of the builds of
//! programs that turn default features off and only want the transport:
//!
//! ```toml
//! [dependencies]
//! ipc-tests = { path = "../../tests", optional = true }
//!
//! [features]
//! default = ["suite"]
//! suite = ["dep:ipc-tests"]
//!
//! [[bin]]
//! name = "memfd-peer"
//! path = "src/bin/memfd-peer.rs"
//! required-features = ["suite"]
//!
//! [[test]]
//! name = "conformance"
//! required-features = ["suite"]
//! ```
//!
//! (A crate of its own holding the peer and the test file, depending on the transport and on
//! this one, does as well.)
//!
//! **The peer binary**, the other process of every cross-process test: [`peer::main`] once the
//! scheme is registered (the peer opens its end from the string the test hands it).
//!
//! ```text
//! // src/bin/memfd-peer.rs
//! fn main() -> std::process::ExitCode {
//!     memfd_transport::register().expect("registering memfd:");
//!     ipc_tests::peer::main()
//! }
//! ```
//!
//! **The factory**: a [`SpecFactory`], the facts the suite must know and a function that makes
//! a transport no other test uses, as a [`Fresh`]: its string (with [`Cfg::query`], the
//! `?message_size=..` the test asks for) and the guard that removes what it leaves, such as a
//! [`PathGuard`] on a [`unique_path`]. The receiver makes the transport; a sender opened
//! before it must wait for it (an `open_timeout`), as a peer may receive.
//!
//! **The test file**, which registers the scheme for this process's ends too (before the
//! first open: in `fresh`, say, once) and stamps out the tests with the peer binary:
//!
//! ```text
//! // tests/conformance.rs
//! fn fresh(cfg: &ipc_tests::Cfg, _writers: usize) -> ipc_tests::Fresh {
//!     static REGISTER: std::sync::Once = std::sync::Once::new();
//!     REGISTER.call_once(|| memfd_transport::register().expect("registering memfd:"));
//!     let path = ipc_tests::PathGuard::unique("memfd");
//!     let spec = format!("memfd:{}{}&open_timeout=10s", path.as_str(), cfg.query());
//!     ipc_tests::Fresh::new(spec, path)
//! }
//!
//! ipc_tests::conformance_tests!(
//!     ipc_tests::SpecFactory {
//!         name: "memfd",
//!         sees_peer_death: true,
//!         max_message_size: 64 * 1024,
//!         multi_writer_max: 64 * 1024,
//!         fresh,
//!     },
//!     connected,
//!     peer = env!("CARGO_BIN_EXE_memfd-peer")
//! );
//! ```
//!
//! `tests/spec_factory.rs` is such a file, over `file-shm:`.
//!
//! **Which properties.** Every transport gets the common group: messages whole, once and in
//! order (random sizes, here and across processes, several writers in as many processes up to
//! [`multi_writer_max`](Factory::multi_writer_max)), oversized messages and small buffers
//! refused, `Full` / `Empty` / `Timeout` exact and deadlines neither early nor late, signals
//! (handled, no `SA_RESTART`) breaking no call, SIGPIPE killing no sender, a dropped receiver
//! waking a blocked sender, blocked calls asleep rather than spinning, `send_batch` and
//! `recv_batch` keeping every message whole, once and in order and counting exactly what a
//! full transport cut short ([`suite::batches`]). Then what the transport
//! declares, as the second argument of [`conformance_tests!`]:
//!
//! - `connected` (`sees_peer_death: true`): a dropped, exited or killed peer is `Disconnected`
//!   at the other end, after the messages it sent;
//! - `connectionless` (`sees_peer_death: false`): it is invisible; its messages stay queued.
//!
//! The suite checks that the declaration and [`Factory::sees_peer_death`] agree. A byte
//! stream that takes `framing=` (`lines`, `raw`; [`Cfg::framing`], passed on by
//! [`Cfg::query`]) adds `ipc_tests::conformance_tests!(@framings);` for what those framings
//! promise ([`suite::framings`]). Message priorities are not a property of the suite (the
//! POSIX queues test theirs in their own file). A known gap is not left out silently: build
//! the selection from the parts (`@ctx FACTORY, peer = ...`, then `@each name, ...` for what
//! passes) and list what does not as `@ignored "why": name, ...`, which keeps it visible and
//! runnable with `--ignored` (`tests/zenoh.rs` does). Wrapping the factory in a
//! [`ViaFactory`] (`ViaFactory::new(FACTORY, Via::WaitSet)`) runs it all again through the
//! transport's `Readiness`, in every process.

pub mod board;
pub mod drive;
pub mod expect;
pub mod factory;
pub mod factory_file_shm;
pub mod factory_socket;
pub mod factory_spec;
pub mod factory_sysv_mq;
pub mod factory_sysv_shm;
#[cfg(feature = "zenoh")]
pub mod factory_zenoh;
pub mod fixtures;
pub mod kill_producers;
pub mod message;
pub mod peer;
pub mod process;
pub mod shm_ring;
pub mod signals;
pub mod suite;
pub mod via;
pub mod waiting;

pub use factory::{
    Cfg, Factory, FifoFactory, MqFactory, Pair, PipeFactory, RingFactory, RingPlace, ShmFactory,
};
pub use factory_spec::{Fresh, SpecFactory};
pub use fixtures::{
    Cleanup, MqGuard, PathGuard, ShmGuard, mq_exists, shm_exists, unique_name, unique_path,
};
pub use via::{Via, ViaFactory};
pub use waiting::WaitingFactory;

/// Stamps out one `#[test]` per generic test of [`suite`] for the transport of `$factory` (a
/// `'static` value implementing [`Factory`]), in an integration test file.
///
/// The peers are run from `peer = $peer`, the path of a binary whose `main` is
/// [`peer::main`] (a `&'static str`, `env!("CARGO_BIN_EXE_<name>")` for a binary of the crate
/// whose tests these are). Without it, the peer is this crate's `ipc-test-peer`, which only its
/// own integration tests can name.
///
/// The second argument says which behaviour of a dead peer the transport has, as its
/// [`Factory::sees_peer_death`] does (the tests check the two agree):
///
/// - `connected` (the default): a dropped end or a dead process is `Disconnected` at the other
///   end (pipes, FIFOs);
/// - `connectionless`: it is invisible, the transport keeps its messages; only the transport's
///   removal is seen (message queues).
///
/// ```text
/// ipc_tests::conformance_tests!(ipc_tests::PipeFactory);
/// ipc_tests::conformance_tests!(ipc_tests::MqFactory::new(), connectionless);
/// // In another crate, with its own peer binary `memfd-peer`:
/// ipc_tests::conformance_tests!(FACTORY, connected, peer = env!("CARGO_BIN_EXE_memfd-peer"));
/// ```
///
/// A file that needs another selection builds it from the parts: `@ctx $factory` (the factory
/// the tests run against), `@common $factory` (that and the tests of both groups), both taking
/// `, peer = $peer` too; `@connected_only` and `@connectionless_only` (the tests of one group);
/// `@framings` (the byte streams' `framing=` tests, see [`suite::framings`]); `@each name, ...`
/// (those tests) and `@ignored "why": name, ...` (those tests, `#[ignore]`d with the reason: a
/// known failure stays listed and runnable with `--ignored` until fixed). The expansion names
/// only this crate's public items, through `$crate`.
#[macro_export]
macro_rules! conformance_tests {
    (@each $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::suite::$name(&ctx());
            }
        )*
    };
    (@ignored $why:literal: $($name:ident),* $(,)?) => {
        $(
            #[test]
            #[ignore = $why]
            fn $name() {
                $crate::suite::$name(&ctx());
            }
        )*
    };
    // What `framing=lines`, `raw` and `packets` still promise (see `suite::framings`): for the byte
    // streams, which alone take the option.
    (@framings) => {
        $crate::conformance_tests!(@framings_each
            lines_arrive_whole_once_in_order,
            a_line_holding_a_newline_is_refused_and_sends_nothing,
            lines_try_send_on_full_is_exact,
            a_long_line_cut_by_its_deadline_arrives_whole_before_the_next,
            lines_read_ahead_show_through_readiness,
            raw_delivers_the_bytes_in_order,
            packets_arrive_whole_once_in_order,
            an_empty_packet_is_refused_and_sends_nothing,
            packets_try_send_on_full_is_exact,
        );
    };
    (@framings_each $($name:ident),* $(,)?) => {
        mod framings {
            use super::ctx;
            $(
                #[test]
                fn $name() {
                    $crate::suite::framings::$name(&ctx());
                }
            )*
        }
    };
    (@ctx $factory:expr, peer = $peer:expr) => {
        fn ctx() -> $crate::suite::Ctx {
            static FACTORY: &dyn $crate::Factory = &$factory;
            $crate::suite::Ctx::new(FACTORY, $peer)
        }
    };
    (@ctx $factory:expr) => {
        $crate::conformance_tests!(@ctx $factory, peer = env!("CARGO_BIN_EXE_ipc-test-peer"));
    };
    (@common $factory:expr, peer = $peer:expr) => {
        $crate::conformance_tests!(@ctx $factory, peer = $peer);
        $crate::conformance_tests!(@common_but_cost);
        $crate::conformance_tests!(@each blocked_calls_sleep_rather_than_spin);
    };
    (@common $factory:expr) => {
        $crate::conformance_tests!(@common $factory, peer = env!("CARGO_BIN_EXE_ipc-test-peer"));
    };
    // The tests of both groups but for what waiting costs (`blocked_calls_sleep_rather_than_spin`),
    // for a selection that must leave that one out.
    (@common_but_cost) => {
        $crate::conformance_tests!(@each
            try_send_on_full_is_full_and_send_timeout_waits,
            signals_do_not_break_blocking_send,
            random_messages_arrive_whole_once_in_order,
            oversized_message_is_refused_and_sends_nothing,
            small_buffer_is_refused_and_keeps_the_message,
            try_recv_on_empty_is_empty,
            recv_timeout_waits_out_its_deadline,
            timed_out_send_is_never_delivered,
            blocked_send_wakes_when_receiver_dropped,
            messages_cross_to_a_child_process,
            messages_cross_from_a_child_process,
            several_writer_processes_do_not_interleave,
            sigpipe_default_child_blocked_in_send_gets_disconnected,
            signals_do_not_break_blocking_recv,
            signals_do_not_break_recv_timeout,
            signals_do_not_shorten_recv_timeout,
            signals_do_not_shorten_send_timeout,
            batches_cross_from_a_child_process_whole_once_in_order,
            batch_on_full_sends_exactly_what_it_counts,
        );
    };
    (@connected_only) => {
        $crate::conformance_tests!(@each
            dropped_sender_disconnects_after_queued_messages,
            blocked_recv_wakes_when_sender_dropped,
            dropped_receiver_disconnects_sender,
            exited_sender_disconnects_after_its_messages,
            killed_sender_disconnects_after_its_messages,
            blocked_recv_wakes_when_sender_killed,
            exited_receiver_disconnects_sender,
            killed_receiver_wakes_blocked_sender,
            sigpipe_default_child_gets_disconnected,
        );
    };
    (@connectionless_only) => {
        $crate::conformance_tests!(@each
            dropped_sender_leaves_its_messages_queued,
            exited_sender_leaves_its_messages,
            killed_sender_leaves_its_messages,
            exited_receiver_is_invisible_to_sender,
        );
    };
    ($factory:expr, connected, peer = $peer:expr) => {
        $crate::conformance_tests!(@common $factory, peer = $peer);
        $crate::conformance_tests!(@connected_only);
    };
    ($factory:expr, connectionless, peer = $peer:expr) => {
        $crate::conformance_tests!(@common $factory, peer = $peer);
        $crate::conformance_tests!(@connectionless_only);
    };
    ($factory:expr, peer = $peer:expr) => {
        $crate::conformance_tests!($factory, connected, peer = $peer);
    };
    ($factory:expr, $group:ident) => {
        $crate::conformance_tests!(
            $factory,
            $group,
            peer = env!("CARGO_BIN_EXE_ipc-test-peer")
        );
    };
    ($factory:expr) => {
        $crate::conformance_tests!($factory, connected);
    };
}

/// Stamps out the whole suite for every transport, each endpoint waiting `$via` (a
/// [`Via`](via::Via), by its full path): one module per transport, with the group of tests of
/// the transport's own file (`tests/<transport>.rs`), on a [`ViaFactory`] over its factory.
/// A test file per way to wait is then one line:
///
/// ```text
/// // tests/tests/via_wait_set.rs
/// ipc_tests::conformance_tests_via!(ipc_tests::Via::WaitSet);
/// ```
#[macro_export]
macro_rules! conformance_tests_via {
    ($via:expr) => {
        mod pipe {
            $crate::conformance_tests!($crate::ViaFactory::new($crate::PipeFactory, $via));
        }

        mod fifo {
            $crate::conformance_tests!($crate::ViaFactory::new($crate::FifoFactory, $via));
        }

        mod posix_mq {
            $crate::conformance_tests!(
                $crate::ViaFactory::new($crate::MqFactory::new(), $via),
                connectionless
            );
        }

        mod posix_shm {
            $crate::conformance_tests!(
                $crate::ViaFactory::new($crate::ShmFactory::new(), $via),
                connected
            );
        }

        mod sysv_mq {
            // The group of tests/sysv_mq.rs: the connectionless one but for
            // `exited_receiver_is_invisible_to_sender` (a queue bounded in bytes; see there).
            $crate::conformance_tests!(@common $crate::ViaFactory::new(
                $crate::factory_sysv_mq::SysvMqFactory::new(),
                $via
            ));
            $crate::conformance_tests!(@each
                dropped_sender_leaves_its_messages_queued,
                exited_sender_leaves_its_messages,
                killed_sender_leaves_its_messages,
            );
        }

        mod unix {
            $crate::conformance_tests!($crate::ViaFactory::new(
                $crate::factory_socket::UnixFactory,
                $via
            ));
        }

        mod tcp {
            $crate::conformance_tests!($crate::ViaFactory::new(
                $crate::factory_socket::TcpFactory,
                $via
            ));
        }

        mod socketpair {
            $crate::conformance_tests!($crate::ViaFactory::new(
                $crate::factory_socket::SocketPairFactory,
                $via
            ));
        }

        mod sysv_shm {
            $crate::conformance_tests!(
                $crate::ViaFactory::new(
                    $crate::factory_sysv_shm::SysvShmFactory::new(),
                    $via
                ),
                connected
            );
        }

        mod file_shm {
            $crate::conformance_tests!(
                $crate::ViaFactory::new(
                    $crate::factory_file_shm::FileShmFactory::new(),
                    $via
                ),
                connected
            );
        }
    };
}
