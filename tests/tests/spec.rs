//! Transport strings through the public facade: every valid spec survives `Display` then
//! `FromStr`, and malformed ones are `InvalidSpec` naming the offending part, before anything
//! is opened or created.

use std::time::Duration;

use ipc::{
    Address, Create, Error, Framing, Options, Producers, Scouting, Transport, TransportSpec,
    WaitStrategy, ZenohMode,
};
use ipc_tests::PathGuard;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

/// A path as transport strings take it: non-empty, no NUL, no `?` (which starts the options).
fn path() -> impl Strategy<Value = String> {
    prop_oneof![
        "/[a-zA-Z0-9._-]{1,30}(/[a-zA-Z0-9._-]{1,30}){0,3}",
        // Anything else goes too, including `:`, `&`, `=`, spaces and non-ASCII.
        "[^\u{0}?]{1,40}",
    ]
}

/// A POSIX object name: `/`, then 1..=NAME_MAX bytes without `/` or NUL, not `.` or `..`.
fn posix_name() -> impl Strategy<Value = String> {
    prop_oneof!["/[a-zA-Z0-9._-]{1,40}", "/[^/\u{0}?]{1,60}", "/[a-z]{255}",]
        .prop_filter("`.` and `..` are not names", |n| n != "/." && n != "/..")
        .prop_filter("at most NAME_MAX bytes", |n| n.len() <= 256)
}

fn address(t: Transport) -> BoxedStrategy<Address> {
    match t {
        Transport::Pipe => {
            prop_oneof![Just(Address::Unnamed), (0..=i32::MAX).prop_map(Address::Fd),].boxed()
        }
        Transport::Fifo => path().prop_map(Address::Path).boxed(),
        Transport::PosixMq | Transport::PosixShm => posix_name().prop_map(Address::Name).boxed(),
        Transport::SysvMq | Transport::SysvShm => prop_oneof![
            any::<i32>()
                .prop_filter("0 is IPC_PRIVATE", |k| *k != 0)
                .prop_map(Address::Key),
            (path(), 1..=255u8).prop_map(|(path, proj_id)| Address::Ftok { path, proj_id }),
            Just(Address::Private),
        ]
        .boxed(),
        // Absolute only: both ends must mean the same file wherever they run.
        Transport::FileShm => path()
            .prop_map(|p| format!("/{p}"))
            .prop_map(Address::Path)
            .boxed(),
        Transport::Unix => prop_oneof![
            path()
                .prop_filter("`@` starts an abstract name", |p| !p.starts_with('@'))
                .prop_map(Address::Path),
            "[^\u{0}?]{1,40}".prop_map(Address::Abstract),
        ]
        .prop_filter("fits sun_path", |a| a.to_string().len() < 108)
        .boxed(),
        Transport::Tcp => (
            prop_oneof![
                any::<std::net::Ipv4Addr>().prop_map(|a| a.to_string()),
                any::<std::net::Ipv6Addr>().prop_map(|a| a.to_string()),
                "[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\\.[a-z0-9]{1,10}){0,3}",
            ],
            any::<u16>(),
        )
            .prop_map(|(host, port)| Address::Host { host, port })
            .boxed(),
        Transport::SocketPair => {
            prop_oneof![Just(Address::Unnamed), (0..=i32::MAX).prop_map(Address::Fd),].boxed()
        }
        Transport::Zenoh => "[a-zA-Z0-9_.-]{1,12}(/[a-zA-Z0-9_.:-]{1,12}){0,3}"
            .prop_map(Address::KeyExpr)
            .boxed(),
        other => panic!("no address strategy for {other}: add one"),
    }
}

/// A byte count, often a multiple of a unit so that `KiB`/`MiB`/`GiB` are written.
fn size() -> impl Strategy<Value = u64> {
    prop_oneof![
        1..=u64::MAX,
        1..=65_536u64,
        (1..=(u64::MAX >> 10)).prop_map(|k| k << 10),
        (1..=(u64::MAX >> 20)).prop_map(|m| m << 20),
        (1..=(u64::MAX >> 30)).prop_map(|g| g << 30),
    ]
}

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        any::<u64>().prop_map(Duration::from_nanos),
        (0..=1_000_000_000u64).prop_map(Duration::from_micros),
        (0..=10_000_000u64).prop_map(Duration::from_millis),
        any::<u64>().prop_map(Duration::from_secs),
        (0..=1_000_000u64).prop_map(|m| Duration::from_secs(m * 60)),
        (0..=1_000_000u64).prop_map(|h| Duration::from_secs(h * 3600)),
    ]
}

fn create() -> impl Strategy<Value = Create> {
    prop_oneof![
        Just(Create::Always),
        Just(Create::Never),
        Just(Create::IfMissing)
    ]
}

fn wait() -> impl Strategy<Value = WaitStrategy> {
    prop_oneof![
        Just(WaitStrategy::Busy),
        Just(WaitStrategy::Spin),
        Just(WaitStrategy::Park)
    ]
}

fn framing() -> impl Strategy<Value = Framing> {
    prop_oneof![
        Just(Framing::Frames),
        Just(Framing::Lines),
        Just(Framing::Raw),
        Just(Framing::Packets)
    ]
}

fn producers() -> impl Strategy<Value = Producers> {
    prop_oneof![Just(Producers::Single), Just(Producers::Multi)]
}

/// Options, each present or not, among those `t` takes.
fn options(t: Transport) -> impl Strategy<Value = Options> {
    let takes = move |name: &str| t.options().contains(&name);
    let capacity = if t.capacity_in_bytes() {
        size().boxed()
    } else {
        (1..=u64::MAX).boxed()
    };
    (
        proptest::option::of(capacity),
        proptest::option::of(size()),
        proptest::option::of(0..=0o777u32),
        proptest::option::of(create()),
        proptest::option::of(duration()),
        proptest::option::of(wait()),
        proptest::option::of(producers()),
        proptest::option::of(owner()),
        proptest::option::of(principal()),
        proptest::option::of(framing()),
    )
        .prop_map(
            move |(
                capacity,
                message_size,
                mode,
                create,
                open_timeout,
                wait,
                producers,
                owner,
                group,
                framing,
            )| {
                let mut options = Options::default();
                options.capacity = capacity.filter(|_| takes("capacity"));
                options.message_size = message_size.filter(|_| takes("message_size"));
                // `mode` is permissions, but the session's role on zenoh (`zenoh_options`).
                options.mode = mode.filter(|_| takes("mode") && t != Transport::Zenoh);
                options.create = create.filter(|_| takes("create"));
                options.open_timeout = open_timeout.filter(|_| takes("open_timeout"));
                options.wait = wait.filter(|_| takes("wait"));
                options.producers = producers.filter(|_| takes("producers"));
                options.owner = owner.filter(|_| takes("owner"));
                options.group = group.filter(|_| takes("group"));
                options.framing = framing.filter(|_| takes("framing"));
                options
            },
        )
}

/// A Zenoh endpoint: `tcp/HOST:PORT`, IPv4, IPv6 or a name.
fn endpoint() -> impl Strategy<Value = String> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| format!("tcp/{}:{port}", std::net::Ipv4Addr::from(ip))),
        any::<u16>().prop_map(|port| format!("tcp/[::1]:{port}")),
        ("[a-z][a-z0-9.-]{0,20}", any::<u16>()).prop_map(|(h, port)| format!("tcp/{h}:{port}")),
    ]
}

/// The options only `zenoh` takes, added to `options` for it.
fn zenoh_options(options: Options) -> impl Strategy<Value = Options> {
    (
        proptest::option::of(prop_oneof![Just(ZenohMode::Peer), Just(ZenohMode::Client)]),
        proptest::collection::vec(endpoint(), 0..3),
        proptest::collection::vec(endpoint(), 0..3),
        proptest::option::of(prop_oneof![Just(Scouting::Off), Just(Scouting::Multicast)]),
    )
        .prop_map(move |(mode, connect, listen, scouting)| {
            let mut options = options.clone().with_connect(connect).with_listen(listen);
            options.zenoh_mode = mode;
            options.scouting = scouting;
            options
        })
}

/// A uid/gid or a portable user or group name.
fn principal() -> impl Strategy<Value = ipc::Principal> {
    prop_oneof![
        any::<u32>().prop_map(ipc::Principal::Id),
        "[a-z_][a-z0-9._-]{0,15}".prop_map(ipc::Principal::Name),
    ]
}

/// `owner=any` or a user.
fn owner() -> impl Strategy<Value = ipc::OwnerChoice> {
    prop_oneof![
        Just(ipc::OwnerChoice::Any),
        // A user named `any` cannot be written: `owner=any` means anyone.
        principal()
            .prop_filter("`any` is not a user name", |p| p.to_string() != "any")
            .prop_map(ipc::OwnerChoice::User),
    ]
}

/// Any valid spec, of every transport.
fn spec() -> impl Strategy<Value = TransportSpec> {
    proptest::sample::select(Transport::ALL.to_vec()).prop_flat_map(|t| {
        let options = match t {
            Transport::Zenoh => options(t).prop_flat_map(zenoh_options).boxed(),
            _ => options(t).boxed(),
        };
        (address(t), options).prop_map(move |(address, options)| TransportSpec {
            transport: t,
            address,
            options,
        })
    })
}

#[test]
fn display_then_parse_round_trips() {
    let mut runner = TestRunner::new(Config {
        cases: 1024,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&spec(), |spec| {
            spec.validate()
                .map_err(|e| TestCaseError::fail(format!("strategy made an invalid spec: {e}")))?;
            let text = spec.to_string();
            let parsed: TransportSpec = text
                .parse()
                .map_err(|e| TestCaseError::fail(format!("`{text}` does not parse: {e}")))?;
            prop_assert_eq!(&parsed, &spec, "`{}` parsed to another spec", text);
            prop_assert_eq!(parsed.to_string(), text, "the canonical form is not stable");
            Ok(())
        })
        .unwrap();
}

#[test]
fn every_transport_is_covered_by_the_strategy() {
    // A transport added to ipc-core must get an address strategy (address() panics otherwise).
    let mut runner = TestRunner::deterministic();
    for t in Transport::ALL {
        let tree = (address(t), options(t)).new_tree(&mut runner).unwrap();
        let (address, options) = tree.current();
        TransportSpec {
            transport: t,
            address,
            options,
        }
        .validate()
        .unwrap();
    }
}

/// Each malformed string, opened either way, is `InvalidSpec` whose `spec` is exactly the
/// offending part, and nothing is created at the path it names.
#[test]
fn malformed_strings_are_invalid_spec_naming_the_part() {
    let guard = PathGuard::unique("fifo");
    let p = guard.as_str();
    let long_name = format!("/{}", "n".repeat(256));
    let table: Vec<(String, String)> = vec![
        (format!("fifo:{p}?bogus=1"), "bogus=1".into()),
        (format!("fifo:{p}?capacity=1&bogus=1"), "bogus=1".into()),
        ("fifo".into(), "fifo".into()),
        ("".into(), "".into()),
        ("udp:localhost".into(), "udp".into()),
        ("tcp:127.0.0.1".into(), "127.0.0.1".into()),
        ("tcp:[::1]:99999".into(), "[::1]:99999".into()),
        ("unix:@".into(), "@".into()),
        ("socketpair:x".into(), "x".into()),
        (format!("FIFO:{p}"), "FIFO".into()),
        ("fifo:".into(), "".into()),
        ("fifo:?capacity=1".into(), "".into()),
        ("pipe:fd=x".into(), "fd=x".into()),
        ("pipe:fd=-1".into(), "fd=-1".into()),
        ("pipe:fd=4294967296".into(), "fd=4294967296".into()),
        ("pipe:3".into(), "3".into()),
        (format!("fifo:{p}?capacity=12QiB"), "capacity=12QiB".into()),
        (format!("fifo:{p}?capacity=-1"), "capacity=-1".into()),
        (format!("fifo:{p}?capacity="), "capacity=".into()),
        (format!("fifo:{p}?capacity"), "capacity".into()),
        (
            format!("fifo:{p}?capacity=1&capacity=2"),
            "capacity=2".into(),
        ),
        (
            format!("fifo:{p}?message_size=99999999999999999999"),
            "message_size=99999999999999999999".into(),
        ),
        (format!("fifo:{p}?mode=0800"), "mode=0800".into()),
        (format!("fifo:{p}?mode=rw"), "mode=rw".into()),
        (format!("fifo:{p}?create=maybe"), "create=maybe".into()),
        (format!("fifo:{p}?open_timeout=5"), "open_timeout=5".into()),
        (
            format!("fifo:{p}?open_timeout=5y"),
            "open_timeout=5y".into(),
        ),
        ("pipe:?mode=0600".into(), "mode".into()),
        ("pipe:fd=3?open_timeout=1s".into(), "open_timeout".into()),
        ("pipe:fd=3?create=never".into(), "create".into()),
        ("posix-mq:orders".into(), "orders".into()),
        ("posix-mq:/a/b".into(), "/a/b".into()),
        ("posix-mq:/".into(), "/".into()),
        (format!("posix-shm:{long_name}"), long_name.clone()),
        ("posix-mq:/q?capacity=1KiB".into(), "capacity=1KiB".into()),
        ("posix-mq:/q?open_timeout=1s".into(), "open_timeout".into()),
        ("posix-mq:/q?wait=busy".into(), "wait".into()),
        (format!("fifo:{p}?producers=multi"), "producers".into()),
        ("sysv-mq:key=0x1234?wait=park".into(), "wait".into()),
        (
            "posix-shm:/q?wait=sometimes".into(),
            "wait=sometimes".into(),
        ),
        ("posix-shm:/q?producers=all".into(), "producers=all".into()),
        (
            "posix-shm:/q?producers=multi&producers=single".into(),
            "producers=single".into(),
        ),
        ("sysv-mq:key=0".into(), "key=0".into()),
        ("sysv-mq:key=0x1ffffffff".into(), "key=0x1ffffffff".into()),
        ("sysv-mq:ftok=/tmp/x:0".into(), "ftok=/tmp/x:0".into()),
        (
            "sysv-mq:ftok=/tmp/x:0x100".into(),
            "ftok=/tmp/x:0x100".into(),
        ),
        ("sysv-mq:ftok=/tmp/x".into(), "ftok=/tmp/x".into()),
        ("sysv-mq:/tmp/x".into(), "/tmp/x".into()),
    ];
    for (input, part) in &table {
        for (end, result) in [
            ("open_sender", ipc::open_sender(input).map(|_| ())),
            ("open_receiver", ipc::open_receiver(input).map(|_| ())),
        ] {
            match result {
                Err(Error::InvalidSpec { spec, reason }) => {
                    assert_eq!(&spec, part, "{end}(`{input}`): wrong part named ({reason})");
                    assert!(!reason.is_empty(), "{end}(`{input}`): no reason");
                }
                other => {
                    panic!("{end}(`{input}`): expected InvalidSpec naming `{part}`, got {other:?}")
                }
            }
        }
    }
    assert!(!guard.path().exists(), "a malformed spec created {p}");
}

/// Values out of range for the whole spec (rather than one option) name the whole string.
#[test]
fn zero_sizes_are_invalid_spec_naming_the_string() {
    let guard = PathGuard::unique("fifo");
    for opt in ["capacity=0", "message_size=0"] {
        let input = format!("fifo:{}?{opt}", guard.as_str());
        let e = ipc::open_receiver(&input).map(|_| ()).unwrap_err();
        assert!(
            matches!(&e, Error::InvalidSpec { spec, .. } if *spec == input),
            "{input}: {e:?}"
        );
        assert!(e.to_string().contains(opt), "{e}");
    }
    assert!(!guard.path().exists());
}

/// Every transport has a feature now, and this crate enables them all but `zenoh`, which its
/// own feature of this crate adds: the facade opens every one built. (What it says of a
/// transport whose feature is off, naming the feature, is checked by the `ipc` crate's own
/// tests when built without it.)
#[test]
fn every_transport_is_available_with_every_feature() {
    let mut expected = ipc::Transport::ALL.to_vec();
    if !cfg!(feature = "zenoh") {
        expected.retain(|t| *t != ipc::Transport::Zenoh);
    }
    assert_eq!(ipc::available_transports(), expected);
}

/// Regression: a duration whose count in the largest exact unit exceeds `u64` (e.g.
/// `Duration::new(u64::MAX, 1_000_000)`, written `open_timeout=18446744073709551615001ms`) was
/// written in a form `FromStr` rejected.
#[test]
fn huge_open_timeout_round_trips() {
    for d in [
        Duration::new(u64::MAX, 1_000_000),
        Duration::new(20_000_000_000, 1),
    ] {
        let spec = TransportSpec {
            transport: Transport::Fifo,
            address: Address::Path("/x".into()),
            options: Options::default().with_open_timeout(d),
        };
        spec.validate().unwrap();
        let text = spec.to_string();
        assert_eq!(text.parse::<TransportSpec>().ok(), Some(spec), "{text}");
    }
}
