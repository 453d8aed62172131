//! Transport strings: one line that names a transport and its options.
//!
//! ```text
//! pipe:                                   inherited from the parent (see ipc-pipe)
//! pipe:fd=7                               a pipe end handed over as descriptor 7
//! fifo:/tmp/app.fifo?capacity=128KiB
//! posix-mq:/orders?capacity=64&message_size=8192
//! posix-shm:/ticks?capacity=1MiB&wait=busy&producers=multi
//! sysv-mq:key=0x6666
//! sysv-shm:ftok=/tmp/app:0x66?capacity=64KiB
//! file-shm:/dev/shm/app.ring?capacity=1MiB
//! unix:/run/app.sock                      a SOCK_SEQPACKET socket file (see ipc-socket)
//! unix:@app                               the same, in the abstract namespace
//! tcp:127.0.0.1:7000   tcp:[::1]:7000     frames over TCP; trusted networks only
//! socketpair:fd=5                         a socket pair end handed over as descriptor 5
//! zenoh:app/ticks?connect=tcp/10.0.0.2:7447
//! zenoh:app/ticks?listen=tcp/127.0.0.1:7447&mode=peer
//! ```
//!
//! The grammar is `TRANSPORT ":" ADDRESS [ "?" NAME "=" VALUE { "&" NAME "=" VALUE } ]`. The
//! address cannot contain `?`. [`Display`](std::fmt::Display) writes the canonical form, which
//! parses back to an equal [`TransportSpec`]; unknown options, options that do not apply to the
//! transport and malformed values are [`Error::InvalidSpec`] naming the offending part.
//!
//! | option         | value                               | taken by                          |
//! |----------------|-------------------------------------|-----------------------------------|
//! | `capacity`     | bytes (`64KiB`), messages for queues | all (sockets: buffer bytes; tcp: the sender's window of frame bytes) |
//! | `message_size` | bytes                               | all                               |
//! | `mode`         | octal, `0000`..=`0777`              | all but `pipe`, `tcp`, `socketpair`, `zenoh` |
//! | `create`       | `always`, `never`, `if_missing`     | all but `pipe`, `tcp`, `socketpair`, `zenoh` |
//! | `open_timeout` | duration (`500ms`, `10s`)           | `fifo`, the rings (`*-shm`), `unix`, `tcp`, `zenoh` |
//! | `wait`         | [`WaitStrategy`]: `busy`, `spin`, `park` | the rings (default `spin`); `pipe`, `fifo`, `unix`, `tcp`, `socketpair`, `zenoh`: how a receiver waits for data (default `park`) |
//! | `producers`    | [`Producers`]: `single`, `multi`    | the rings                         |
//! | `framing`      | [`Framing`]: `frames`, `lines`, `raw` | `pipe`, `fifo`                  |
//! | `owner`        | `any`, uid or user name             | all but `pipe`, `tcp`, `socketpair`, `zenoh` (`unix`: the peer's uid) |
//! | `group`        | gid or group name                   | all but `pipe`, `tcp`, `socketpair`, `zenoh` |
//! | `mode`         | [`ZenohMode`]: `peer`, `client`     | `zenoh` (instead of permissions)  |
//! | `connect`      | Zenoh endpoints, `,`-separated      | `zenoh`                           |
//! | `listen`       | Zenoh endpoints, `,`-separated      | `zenoh`                           |
//! | `scouting`     | [`Scouting`]: `off`, `multicast`    | `zenoh`                           |
//!
//! A Zenoh endpoint is `PROTOCOL/ADDRESS` as Zenoh writes it (`tcp/127.0.0.1:7447`,
//! `tcp/[::1]:7447`); `zenoh` also takes `capacity` (messages), `message_size` and
//! `open_timeout`. Its address is a key expression (see [`check_key_expr`]). Without `listen`
//! a Zenoh endpoint listens nowhere, and without `scouting=multicast` it looks for nobody: it
//! talks only to the endpoints the string names.
//!
//! `owner`, `group` and `mode` also say which existing objects an opener accepts: see
//! [`Adoption`](crate::Adoption).
//!
//! ```
//! use ipc_core::{Create, Transport, TransportSpec};
//!
//! # fn main() -> Result<(), ipc_core::Error> {
//! let spec: TransportSpec = "fifo:/tmp/app.fifo?capacity=64KiB&create=never".parse()?;
//! assert_eq!(spec.transport, Transport::Fifo);
//! assert_eq!(spec.options.capacity, Some(64 * 1024));
//! assert_eq!(spec.options.create, Some(Create::Never));
//! assert_eq!(spec.to_string(), "fifo:/tmp/app.fifo?capacity=64KiB&create=never");
//!
//! let err = "fifo:/tmp/app.fifo?bogus=1".parse::<TransportSpec>().unwrap_err();
//! assert!(err.to_string().contains("bogus"));
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::registry::{Registry, Scheme, name_list};
use crate::{Error, Framing, Result};

/// `FromStr` and `Display` for an option whose value is one of a few keywords: each variant
/// is written as its first word and also read from the others; anything else is
/// [`Error::InvalidSpec`] saying `$expected`.
macro_rules! keywords {
    ($ty:ident, $expected:literal { $($variant:ident => $word:literal $(| $alias:literal)*),+ $(,)? }) => {
        impl std::str::FromStr for $ty {
            type Err = $crate::Error;

            fn from_str(s: &str) -> $crate::Result<$ty> {
                match s {
                    $($word $(| $alias)* => Ok($ty::$variant),)+
                    _ => Err($crate::Error::invalid_spec(s, format!("{}, not `{s}`", $expected))),
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(match self {
                    $($ty::$variant => $word,)+
                })
            }
        }
    };
}
pub(crate) use keywords;

/// The options of every ring (`posix-shm`, `sysv-shm`, `file-shm`), for a registered scheme
/// of a ring of its own too: a sender waits for the segment (`open_timeout`), each end picks
/// how it waits for the other (`wait`), the creator fixes how many may send (`producers`).
pub const RING_OPTIONS: &[&str] = &[
    "capacity",
    "message_size",
    "mode",
    "create",
    "open_timeout",
    "wait",
    "producers",
    "owner",
    "group",
];

/// Longest name component the kernel accepts for POSIX objects (`NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// The transports a string can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Transport {
    /// Anonymous pipe (`ipc-pipe`).
    Pipe,
    /// Named pipe (`ipc-fifo`).
    Fifo,
    /// POSIX message queue (`ipc-posix`).
    PosixMq,
    /// POSIX shared-memory ring (`ipc-posix` + `ipc-sync`).
    PosixShm,
    /// System V message queue (`ipc-sysv`).
    SysvMq,
    /// System V shared-memory ring (`ipc-sysv` + `ipc-sync`).
    SysvShm,
    /// Ring in a regular file mapped `MAP_SHARED` (`ipc-posix` + `ipc-sync`).
    FileShm,
    /// Unix-domain `SOCK_SEQPACKET` socket, by path or abstract name (`ipc-socket`).
    Unix,
    /// TCP stream carrying frames (`ipc-socket`).
    Tcp,
    /// A `SOCK_SEQPACKET` socket pair handed to a child (`ipc-socket`).
    SocketPair,
    /// Publisher and subscriber of a Zenoh key expression (`ipc-zenoh`), beyond one host.
    Zenoh,
    /// A transport of a crate outside the workspace, [registered](crate::registry) under its
    /// scheme's name.
    Registered(&'static Scheme),
}

impl Transport {
    /// Every transport, in the order tables list them.
    pub const ALL: [Transport; 11] = [
        Transport::Pipe,
        Transport::Fifo,
        Transport::PosixMq,
        Transport::PosixShm,
        Transport::SysvMq,
        Transport::SysvShm,
        Transport::FileShm,
        Transport::Unix,
        Transport::Tcp,
        Transport::SocketPair,
        Transport::Zenoh,
    ];

    /// The name used before the `:` in a transport string.
    pub fn scheme(self) -> &'static str {
        match self {
            Transport::Pipe => "pipe",
            Transport::Fifo => "fifo",
            Transport::PosixMq => "posix-mq",
            Transport::PosixShm => "posix-shm",
            Transport::SysvMq => "sysv-mq",
            Transport::SysvShm => "sysv-shm",
            Transport::FileShm => "file-shm",
            Transport::Unix => "unix",
            Transport::Tcp => "tcp",
            Transport::SocketPair => "socketpair",
            Transport::Zenoh => "zenoh",
            Transport::Registered(scheme) => scheme.name(),
        }
    }

    /// The cargo feature of the `ipc` facade that builds this transport; `None` for a
    /// registered one.
    pub fn feature(self) -> Option<&'static str> {
        Some(match self {
            Transport::Pipe => "pipe",
            Transport::Fifo => "fifo",
            Transport::PosixMq | Transport::PosixShm => "posix",
            Transport::SysvMq | Transport::SysvShm => "sysv",
            // A mapped file is what a POSIX shared-memory object is, outside /dev/shm: the
            // same crate, the same feature.
            Transport::FileShm => "posix",
            Transport::Unix | Transport::Tcp | Transport::SocketPair => "socket",
            Transport::Zenoh => "zenoh",
            Transport::Registered(_) => return None,
        })
    }

    /// Whether `capacity` counts bytes (pipes and rings) rather than messages (queues).
    pub fn capacity_in_bytes(self) -> bool {
        match self {
            Transport::PosixMq | Transport::SysvMq | Transport::Zenoh => false,
            Transport::Registered(scheme) => scheme.capacity_in_bytes(),
            _ => true,
        }
    }

    /// The options this transport understands.
    pub fn options(self) -> &'static [&'static str] {
        match self {
            Transport::Registered(scheme) => scheme.options(),
            // Byte streams choose how messages are laid on them (`framing`).
            // Byte streams and sockets: how a receiver waits for data (`wait`).
            Transport::Pipe => &["capacity", "message_size", "framing", "wait"],
            Transport::Fifo => &[
                "capacity",
                "message_size",
                "mode",
                "create",
                "open_timeout",
                "owner",
                "group",
                "framing",
                "wait",
            ],
            Transport::PosixMq | Transport::SysvMq => &[
                "capacity",
                "message_size",
                "mode",
                "create",
                "owner",
                "group",
            ],
            Transport::PosixShm | Transport::SysvShm | Transport::FileShm => RING_OPTIONS,
            // Sockets: `capacity` sizes the socket buffers (tcp: the sender's window); the
            // peer's uid is checked on unix sockets (`owner`, `group`), the socket file's mode
            // set (`mode`, `create`).
            Transport::Unix => &[
                "capacity",
                "message_size",
                "mode",
                "create",
                "open_timeout",
                "owner",
                "group",
                "wait",
            ],
            Transport::Tcp => &["capacity", "message_size", "open_timeout", "wait"],
            Transport::SocketPair => &["capacity", "message_size", "wait"],
            // A subscriber's queue counts messages; `mode` is Zenoh's (peer or client), not
            // permissions: nothing of ours has a mode on the network.
            Transport::Zenoh => &[
                "capacity",
                "message_size",
                "open_timeout",
                "mode",
                "connect",
                "listen",
                "scouting",
                "wait",
            ],
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.scheme())
    }
}

impl FromStr for Transport {
    type Err = Error;

    /// A built-in transport, or a scheme [registered](crate::registry::register) in this
    /// process.
    fn from_str(s: &str) -> Result<Transport> {
        transport_named(s, &crate::registry::registered())
    }
}

/// The transport named `name`: built in, or a scheme of `registry`; the error lists both.
fn transport_named(name: &str, registry: &Registry) -> Result<Transport> {
    if let Some(t) = Transport::ALL.into_iter().find(|t| t.scheme() == name) {
        return Ok(t);
    }
    if let Some(scheme) = registry.get(name) {
        return Ok(scheme.transport());
    }
    let built_in = || Transport::ALL.iter().map(|t| t.scheme());
    let registered = name_list(
        registry
            .schemes()
            .map(Scheme::name)
            .filter(|n| !built_in().any(|b| b == *n)),
    );
    Err(Error::invalid_spec(
        name,
        format!(
            "unknown transport `{name}` (built in: {}; registered: {registered})",
            name_list(built_in())
        ),
    ))
}

/// How many producers a shared-memory ring admits (`producers=single|multi`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Producers {
    /// One at a time (lock-free). A second live producer is refused.
    #[default]
    Single,
    /// Several at once (`ipc_sync::ring::MAX_PRODUCERS`), serialised by a robust mutex in the segment.
    Multi,
}

/// How an endpoint waits for its peer: on a ring, a sender for room and a receiver for data;
/// on a pipe, FIFO or socket, a receiver for data (a sender sleeps in the kernel at once).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum WaitStrategy {
    /// Poll without ever sleeping: lowest latency, one core busy while waiting.
    Busy,
    /// Poll for [`SPIN_FOR`](crate::SPIN_FOR), then sleep (a ring's default).
    #[default]
    Spin,
    /// Sleep at once (a futex, or the kernel's own wait in `read`): no CPU while waiting, a
    /// wake-up per message that finds the peer asleep (the default but on rings).
    Park,
}

/// The role of a Zenoh session (`mode=peer|client` of a `zenoh:` string).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ZenohMode {
    /// Talks to other peers directly (the default): `connect` and `listen` name them.
    #[default]
    Peer,
    /// Talks only through a Zenoh router, named by `connect`.
    Client,
}

/// How a Zenoh session looks for others besides its `connect` endpoints
/// (`scouting=off|multicast`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Scouting {
    /// Not at all (the default): only the endpoints the string names.
    #[default]
    Off,
    /// UDP multicast scouting on the local network, as Zenoh does by default: asked for by name
    /// because it talks to (and answers) every Zenoh node on the segment.
    Multicast,
}

keywords!(Producers, "producers must be single or multi" {
    Single => "single" | "1",
    Multi => "multi" | "many",
});
keywords!(WaitStrategy, "wait must be busy, spin or park" {
    Busy => "busy",
    Spin => "spin",
    Park => "park",
});
keywords!(ZenohMode, "a zenoh mode is peer or client" {
    Peer => "peer",
    Client => "client",
});
keywords!(Scouting, "scouting is off or multicast" {
    Off => "off",
    Multicast => "multicast",
});

/// Whether opening may create the object, and whether it must.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Create {
    /// Create exclusively (`O_EXCL` / `IPC_EXCL`); an existing object is
    /// [`Error::AlreadyExists`].
    Always,
    /// Open an existing object only; a missing one is [`Error::NotFound`].
    Never,
    /// Open the object if it exists (after checking it), else create it.
    IfMissing,
}

impl Create {
    fn as_str(self) -> &'static str {
        match self {
            Create::Always => "always",
            Create::Never => "never",
            Create::IfMissing => "if_missing",
        }
    }
}

/// Where the transport's object lives.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Address {
    /// `pipe:`: a pipe created by this process, to be handed to a child.
    Unnamed,
    /// `pipe:fd=N`: a pipe end inherited as file descriptor `N`.
    Fd(i32),
    /// `fifo:PATH`, `file-shm:/PATH`: a file-system path (UTF-8, no NUL, no `?`; absolute
    /// for `file-shm`).
    Path(String),
    /// `posix-*:/name`: a POSIX object name (leading `/`, no other `/`, at most `NAME_MAX`).
    Name(String),
    /// `sysv-*:key=0x6666`: an explicit System V key (never `IPC_PRIVATE`).
    Key(i32),
    /// `sysv-*:ftok=/path:0x66`: a key computed by `ftok(path, proj_id)`. As in C, `proj_id` is
    /// any `int` of which glibc uses the low 8 bits, so `ftok=/p:0x6666` is `ftok=/p:0x66` and
    /// displays as such; low 8 bits of 0 are refused (see [`parse_proj_id`]).
    Ftok {
        /// The existing file whose inode feeds the key.
        path: String,
        /// The low 8 bits that go into the key.
        proj_id: u8,
    },
    /// `sysv-*:private`: `IPC_PRIVATE`, a new object only this process (and its children) know.
    Private,
    /// `unix:@name`: a name in the abstract socket namespace (no file; gone with its socket).
    Abstract(String),
    /// `tcp:HOST:PORT`: an IPv4 address, a host name, or an IPv6 address in brackets
    /// (`tcp:[::1]:7000`); port 0 lets a receiver pick a free port.
    Host {
        /// The address or host name, without brackets.
        host: String,
        /// The TCP port.
        port: u16,
    },
    /// `zenoh:app/ticks`: a Zenoh key expression naming one key (see [`check_key_expr`]).
    KeyExpr(String),
    /// The address of a [registered](crate::registry) transport, as written (no `?`); its
    /// scheme's check accepted it.
    Registered(String),
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Unnamed => Ok(()),
            Address::Fd(fd) => write!(f, "fd={fd}"),
            Address::Path(p) | Address::Name(p) => f.write_str(p),
            Address::Key(key) => write!(f, "key={:#x}", *key as u32),
            Address::Ftok { path, proj_id } => write!(f, "ftok={path}:{proj_id:#x}"),
            Address::Private => f.write_str("private"),
            Address::Abstract(name) => write!(f, "@{name}"),
            Address::Host { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Address::Host { host, port } => write!(f, "{host}:{port}"),
            Address::KeyExpr(k) | Address::Registered(k) => f.write_str(k),
        }
    }
}

/// The options of a transport string. `None` means "the transport's default".
///
/// Non-exhaustive, so that a transport can gain an option without breaking anyone: start
/// from [`Options::default`] and set what you need, by field or by the `with_` methods.
///
/// ```
/// use std::time::Duration;
/// use ipc_core::{Address, Options, Transport, TransportSpec};
///
/// let options = Options::default()
///     .with_capacity(64 * 1024)
///     .with_open_timeout(Duration::from_secs(2));
/// let mut spec = TransportSpec::new(Transport::Fifo, Address::Path("/tmp/app.fifo".into()))?;
/// spec.options = options;
/// assert_eq!(spec.to_string(), "fifo:/tmp/app.fifo?capacity=64KiB&open_timeout=2s");
/// # Ok::<(), ipc_core::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Options {
    /// Messages for queues; bytes for pipes and rings (units `KiB`, `MiB`, `GiB` accepted).
    pub capacity: Option<u64>,
    /// Largest message in bytes (units accepted).
    pub message_size: Option<u64>,
    /// Permissions of a created object (octal, default `0600`); for an existing object, the
    /// widest it may grant.
    pub mode: Option<u32>,
    /// Whether opening may or must create (default: receivers `if_missing`, senders `never`).
    pub create: Option<Create>,
    /// How long opening waits for the other side (FIFO) or for the object to appear
    /// (shared-memory sender), e.g. `500ms`, `10s`.
    pub open_timeout: Option<Duration>,
    /// How a shared-memory ring endpoint waits for its peer (`busy`, `spin` or `park`; default
    /// `spin`). Per endpoint: the two ends may differ. On pipes, FIFOs and sockets, how a
    /// receiver waits for data before sleeping in the kernel (default `park`: at once; see
    /// [`poll_before_sleep`](crate::poll_before_sleep)).
    pub wait: Option<WaitStrategy>,
    /// How many producers a shared-memory ring admits (`single` or `multi`; default `single`).
    /// Fixed by whoever creates the ring; an opener that names it must match.
    pub producers: Option<Producers>,
    /// Whose existing objects are accepted besides our own (`owner=any|UID|NAME`).
    pub owner: Option<crate::OwnerChoice>,
    /// Existing objects of this group are accepted whoever owns them (`group=GID|NAME`).
    pub group: Option<crate::Principal>,
    /// How messages are laid on a byte stream (`frames`, `lines` or `raw`; default `frames`).
    /// Both ends must agree; `lines` and `raw` talk to programs that do not frame.
    pub framing: Option<Framing>,
    /// Zenoh: the session's role (`mode=peer|client`; default `peer`). Written `mode` in the
    /// string, like permissions, which `zenoh` does not take.
    pub zenoh_mode: Option<ZenohMode>,
    /// Zenoh: endpoints to connect to (`connect=tcp/10.0.0.2:7447,tcp/10.0.0.3:7447`); empty
    /// when not given.
    pub connect: Vec<String>,
    /// Zenoh: endpoints to listen on (`listen=tcp/127.0.0.1:7447`); empty when not given, and
    /// then the session listens nowhere.
    pub listen: Vec<String>,
    /// Zenoh: how the session looks for others (`scouting=off|multicast`; default `off`).
    pub scouting: Option<Scouting>,
    /// The options a [registered](crate::registry) scheme declares beyond the ones above,
    /// `(name, value)` as written, in the order written; empty for built-in transports.
    pub extra: Vec<(String, String)>,
}

impl Options {
    /// Sets [`Options::capacity`].
    pub fn with_capacity(mut self, capacity: u64) -> Options {
        self.capacity = Some(capacity);
        self
    }

    /// Sets [`Options::message_size`].
    pub fn with_message_size(mut self, message_size: u64) -> Options {
        self.message_size = Some(message_size);
        self
    }

    /// Sets [`Options::mode`].
    pub fn with_mode(mut self, mode: u32) -> Options {
        self.mode = Some(mode);
        self
    }

    /// Sets [`Options::create`].
    pub fn with_create(mut self, create: Create) -> Options {
        self.create = Some(create);
        self
    }

    /// Sets [`Options::open_timeout`].
    pub fn with_open_timeout(mut self, open_timeout: Duration) -> Options {
        self.open_timeout = Some(open_timeout);
        self
    }

    /// Sets [`Options::wait`].
    pub fn with_wait(mut self, wait: WaitStrategy) -> Options {
        self.wait = Some(wait);
        self
    }

    /// Sets [`Options::producers`].
    pub fn with_producers(mut self, producers: Producers) -> Options {
        self.producers = Some(producers);
        self
    }

    /// Sets [`Options::owner`].
    pub fn with_owner(mut self, owner: crate::OwnerChoice) -> Options {
        self.owner = Some(owner);
        self
    }

    /// Sets [`Options::group`].
    pub fn with_group(mut self, group: crate::Principal) -> Options {
        self.group = Some(group);
        self
    }

    /// Sets [`Options::framing`].
    pub fn with_framing(mut self, framing: Framing) -> Options {
        self.framing = Some(framing);
        self
    }

    /// Sets [`Options::zenoh_mode`].
    pub fn with_zenoh_mode(mut self, mode: ZenohMode) -> Options {
        self.zenoh_mode = Some(mode);
        self
    }

    /// Sets [`Options::connect`].
    pub fn with_connect<S: Into<String>>(
        mut self,
        endpoints: impl IntoIterator<Item = S>,
    ) -> Options {
        self.connect = endpoints.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`Options::listen`].
    pub fn with_listen<S: Into<String>>(
        mut self,
        endpoints: impl IntoIterator<Item = S>,
    ) -> Options {
        self.listen = endpoints.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`Options::scouting`].
    pub fn with_scouting(mut self, scouting: Scouting) -> Options {
        self.scouting = Some(scouting);
        self
    }
}

/// A parsed transport string. See the [module documentation](self) for the format.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TransportSpec {
    /// Which transport.
    pub transport: Transport,
    /// Where its object lives.
    pub address: Address,
    /// Its options.
    pub options: Options,
}

impl TransportSpec {
    /// A spec with default options. Fails if `address` is not a kind this transport uses.
    pub fn new(transport: Transport, address: Address) -> Result<TransportSpec> {
        let spec = TransportSpec {
            transport,
            address,
            options: Options::default(),
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Checks what the types cannot: the address kind fits the transport, every option given
    /// applies to it, and values are in range. [`FromStr`] only returns specs that pass.
    pub fn validate(&self) -> Result<()> {
        let scheme = self.transport.scheme();
        let address_fits = match (&self.address, self.transport) {
            (Address::Unnamed | Address::Fd(_), Transport::Pipe | Transport::SocketPair) => true,
            (Address::Path(p), Transport::Fifo) => check_path(p).is_ok(),
            (Address::Path(p), Transport::FileShm) => check_absolute_path(p).is_ok(),
            (Address::Name(n), Transport::PosixMq | Transport::PosixShm) => {
                check_posix_name(n).is_ok()
            }
            (
                Address::Key(_) | Address::Ftok { .. } | Address::Private,
                Transport::SysvMq | Transport::SysvShm,
            ) => true,
            (Address::Path(p), Transport::Unix) => check_socket_path(p).is_ok(),
            (Address::Abstract(n), Transport::Unix) => check_abstract_name(n).is_ok(),
            (Address::Host { host, .. }, Transport::Tcp) => check_host(host).is_ok(),
            (Address::KeyExpr(k), Transport::Zenoh) => check_key_expr(k).is_ok(),
            (Address::Registered(a), Transport::Registered(scheme)) => {
                !a.contains('?') && scheme.check_address(a).is_ok()
            }
            _ => false,
        };
        if !address_fits {
            return Err(Error::invalid_spec(
                self.address.to_string(),
                format!("not a valid address for {scheme}"),
            ));
        }
        let allowed = self.transport.options();
        let o = &self.options;
        // `mode` is permissions everywhere but on `zenoh`, where it is the session's role.
        let zenoh = self.transport == Transport::Zenoh;
        let wrong_mode = if zenoh {
            o.mode.is_some()
        } else {
            o.zenoh_mode.is_some()
        };
        if wrong_mode {
            return Err(Error::invalid_spec(
                "mode",
                format!(
                    "{scheme} takes mode={}",
                    if zenoh { "peer|client" } else { "OCTAL" }
                ),
            ));
        }
        let given = [
            ("capacity", o.capacity.is_some()),
            ("message_size", o.message_size.is_some()),
            ("mode", o.mode.is_some() || o.zenoh_mode.is_some()),
            ("create", o.create.is_some()),
            ("open_timeout", o.open_timeout.is_some()),
            ("wait", o.wait.is_some()),
            ("producers", o.producers.is_some()),
            ("owner", o.owner.is_some()),
            ("group", o.group.is_some()),
            ("framing", o.framing.is_some()),
            ("connect", !o.connect.is_empty()),
            ("listen", !o.listen.is_empty()),
            ("scouting", o.scouting.is_some()),
        ];
        for (name, present) in given {
            if present && !allowed.contains(&name) {
                return Err(not_applicable(name, self.transport));
            }
        }
        for (name, value) in &o.extra {
            let well_formed = !value.is_empty() && !value.contains(['&', '?']);
            if !allowed.contains(&name.as_str()) || is_common_option(name) {
                return Err(not_applicable(name, self.transport));
            }
            if !well_formed {
                return Err(Error::invalid_spec(
                    format!("{name}={value}"),
                    "an option's value is not empty and holds no `&` or `?`",
                ));
            }
        }
        if o.capacity == Some(0) || o.message_size == Some(0) {
            return Err(Error::invalid_spec(
                self.to_string(),
                "capacity and message_size must be at least 1",
            ));
        }
        for endpoint in o.connect.iter().chain(&o.listen) {
            check_zenoh_endpoint(endpoint).map_err(|why| Error::invalid_spec(endpoint, why))?;
        }
        if o.mode.is_some_and(|m| m > 0o777) {
            return Err(Error::invalid_spec(
                self.to_string(),
                "mode must be at most 0777",
            ));
        }
        Ok(())
    }
}

fn not_applicable(name: &str, transport: Transport) -> Error {
    Error::invalid_spec(
        name,
        format!(
            "option `{name}` does not apply to {transport} (it takes: {})",
            transport.options().join(", ")
        ),
    )
}

impl fmt::Display for TransportSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.transport, self.address)?;
        let o = &self.options;
        let mut sep = '?';
        let mut put = |f: &mut fmt::Formatter<'_>, name: &str, value: &dyn fmt::Display| {
            let r = write!(f, "{sep}{name}={value}");
            sep = '&';
            r
        };
        if let Some(c) = o.capacity {
            if self.transport.capacity_in_bytes() {
                put(f, "capacity", &Size(c))?;
            } else {
                put(f, "capacity", &c)?;
            }
        }
        if let Some(m) = o.message_size {
            put(f, "message_size", &Size(m))?;
        }
        if let Some(m) = o.mode {
            put(f, "mode", &format_args!("{m:04o}"))?;
        }
        if let Some(c) = o.create {
            put(f, "create", &c.as_str())?;
        }
        if let Some(t) = o.open_timeout {
            put(f, "open_timeout", &DurationText(t))?;
        }
        if let Some(w) = o.wait {
            put(f, "wait", &w)?;
        }
        if let Some(p) = o.producers {
            put(f, "producers", &p)?;
        }
        if let Some(owner) = &o.owner {
            put(f, "owner", owner)?;
        }
        if let Some(group) = &o.group {
            put(f, "group", group)?;
        }
        if let Some(framing) = o.framing {
            put(f, "framing", &framing)?;
        }
        if let Some(mode) = o.zenoh_mode {
            put(f, "mode", &mode)?;
        }
        if !o.connect.is_empty() {
            put(f, "connect", &o.connect.join(","))?;
        }
        if !o.listen.is_empty() {
            put(f, "listen", &o.listen.join(","))?;
        }
        if let Some(scouting) = o.scouting {
            put(f, "scouting", &scouting)?;
        }
        for (name, value) in &o.extra {
            put(f, name, value)?;
        }
        Ok(())
    }
}

/// A transport string in a configuration file (`transport = "fifo:/tmp/app.fifo"`): read and
/// written as its string form, so a bad one fails with the same message as `parse`.
#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for TransportSpec {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = TransportSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a transport string such as `fifo:/tmp/app.fifo`")
            }
            fn visit_str<E: serde::de::Error>(
                self,
                text: &str,
            ) -> std::result::Result<TransportSpec, E> {
                text.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for TransportSpec {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl FromStr for TransportSpec {
    type Err = Error;

    /// A string of a built-in transport, or of a scheme [registered](crate::registry::register)
    /// in this process.
    fn from_str(s: &str) -> Result<TransportSpec> {
        parse(s, &crate::registry::registered())
    }
}

/// Parses a string of a built-in transport or of a scheme of `registry`.
pub(crate) fn parse(s: &str, registry: &Registry) -> Result<TransportSpec> {
    let (scheme, rest) = s.split_once(':').ok_or_else(|| {
        Error::invalid_spec(
            s,
            "missing `:` after the transport name (e.g. `fifo:/tmp/app.fifo`)",
        )
    })?;
    let transport = transport_named(scheme, registry)?;
    let (address, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    let address = parse_address(transport, address)?;
    let mut options = Options::default();
    if let Some(query) = query {
        for pair in query.split('&') {
            parse_option(transport, pair, &mut options)?;
        }
    }
    let spec = TransportSpec {
        transport,
        address,
        options,
    };
    spec.validate()?;
    Ok(spec)
}

fn parse_address(transport: Transport, text: &str) -> Result<Address> {
    let bad = |reason: String| Error::invalid_spec(text, reason);
    match transport {
        Transport::Pipe | Transport::SocketPair => {
            if text.is_empty() {
                return Ok(Address::Unnamed);
            }
            let fd = text.strip_prefix("fd=").ok_or_else(|| {
                bad(format!(
                    "a {transport} address is empty or `fd=N`, not `{text}`"
                ))
            })?;
            let fd: i32 = parse_decimal(fd)
                .and_then(|n| i32::try_from(n).ok())
                .ok_or_else(|| bad(format!("`{fd}` is not a file descriptor number")))?;
            Ok(Address::Fd(fd))
        }
        Transport::Fifo => {
            check_path(text).map_err(bad)?;
            Ok(Address::Path(text.to_owned()))
        }
        Transport::PosixMq | Transport::PosixShm => {
            check_posix_name(text).map_err(bad)?;
            Ok(Address::Name(text.to_owned()))
        }
        Transport::SysvMq | Transport::SysvShm => {
            if text == "private" {
                Ok(Address::Private)
            } else if let Some(key) = text.strip_prefix("key=") {
                let key = parse_int(key)
                    .and_then(|k| u32::try_from(k).ok())
                    .ok_or_else(|| bad(format!("`{key}` is not a 32-bit key")))?;
                if key == 0 {
                    return Err(bad("key 0 is IPC_PRIVATE: write `private`".into()));
                }
                Ok(Address::Key(key as i32))
            } else if let Some(ftok) = text.strip_prefix("ftok=") {
                let (path, proj) = ftok
                    .rsplit_once(':')
                    .ok_or_else(|| bad("ftok takes `PATH:PROJ_ID`".into()))?;
                check_path(path).map_err(bad)?;
                let proj_id = parse_proj_id(proj).map_err(bad)?;
                Ok(Address::Ftok {
                    path: path.to_owned(),
                    proj_id,
                })
            } else {
                Err(bad(
                    "a System V address is `key=0x..`, `ftok=PATH:PROJ_ID` or `private`".into(),
                ))
            }
        }
        Transport::FileShm => {
            check_absolute_path(text).map_err(bad)?;
            Ok(Address::Path(text.to_owned()))
        }
        Transport::Unix => match text.strip_prefix('@') {
            Some(name) => {
                check_abstract_name(name).map_err(bad)?;
                Ok(Address::Abstract(name.to_owned()))
            }
            None => {
                check_socket_path(text).map_err(bad)?;
                Ok(Address::Path(text.to_owned()))
            }
        },
        Transport::Tcp => parse_host_port(text).map_err(bad),
        Transport::Zenoh => {
            check_key_expr(text).map_err(bad)?;
            Ok(Address::KeyExpr(text.to_owned()))
        }
        Transport::Registered(scheme) => {
            scheme.check_address(text).map_err(bad)?;
            Ok(Address::Registered(text.to_owned()))
        }
    }
}

/// A path that means the same file to every process whatever its working directory: a ring's
/// two ends are usually started from different places.
fn check_absolute_path(path: &str) -> Result<(), String> {
    check_path(path)?;
    if path.starts_with('/') {
        Ok(())
    } else {
        Err(format!(
            "the path `{path}` must be absolute (start with `/`)"
        ))
    }
}

/// Bytes of `sun_path`, which holds a socket's path and its terminating NUL (`unix(7)`).
pub const SUN_PATH_LEN: usize = 108;

fn check_socket_path(path: &str) -> Result<(), String> {
    check_path(path)?;
    if path.starts_with('@') {
        return Err(format!(
            "`{path}` would name an abstract socket; write `./{path}` for a file"
        ));
    }
    if path.len() >= SUN_PATH_LEN {
        return Err(format!(
            "a unix socket path is at most {} bytes (sun_path), this one has {}",
            SUN_PATH_LEN - 1,
            path.len()
        ));
    }
    Ok(())
}

/// Checks the key expression of a `zenoh:` string: one key, chunks separated by `/`.
///
/// Refused: an empty expression, an empty chunk (leading, trailing or doubled `/`), the
/// wildcards `*` and `**` and the `$*` of partial chunks (a sender publishes one key, and a
/// receiver that matched several would see several streams, with no order between them),
/// `?` and `#` (Zenoh selectors and endpoint configuration), and chunks starting with `@`
/// (Zenoh's verbatim and administration space).
pub fn check_key_expr(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("the key expression is empty".into());
    }
    for chunk in key.split('/') {
        if chunk.is_empty() {
            return Err(format!(
                "key expression `{key}` has an empty chunk (a leading, trailing or double `/`)"
            ));
        }
        if let Some(c) = chunk.chars().find(|c| matches!(c, '*' | '$' | '?' | '#')) {
            return Err(format!(
                "key expression `{key}` contains `{c}`: one key is named, without wildcards"
            ));
        }
        if chunk.starts_with('@') {
            return Err(format!(
                "key expression `{key}` has a chunk starting with `@` (Zenoh's own space)"
            ));
        }
    }
    Ok(())
}

fn check_abstract_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        Err("an abstract socket name after `@` is empty".into())
    } else if name.contains('\0') {
        Err("the abstract socket name contains NUL".into())
    } else if name.len() >= SUN_PATH_LEN {
        Err(format!(
            "an abstract socket name is at most {} bytes, this one has {}",
            SUN_PATH_LEN - 1,
            name.len()
        ))
    } else {
        Ok(())
    }
}

/// An IPv4 or IPv6 address, or a host name (letters, digits, `-` and `.`).
fn check_host(host: &str) -> Result<(), String> {
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    if host.contains(':') {
        return Err(format!("`{host}` is not an IPv6 address"));
    }
    let label_ok = |l: &str| {
        !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if host.len() <= 253 && host.split('.').all(label_ok) {
        Ok(())
    } else {
        Err(format!("`{host}` is not an IP address or host name"))
    }
}

/// `HOST:PORT` or `[IPV6]:PORT`.
fn parse_host_port(text: &str) -> Result<Address, String> {
    let (host, port) = match text.strip_prefix('[') {
        Some(rest) => {
            let (host, port) = rest
                .split_once("]:")
                .ok_or_else(|| format!("`{text}`: an IPv6 address is written `[ADDR]:PORT`"))?;
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(format!("`{host}` is not an IPv6 address"));
            }
            (host, port)
        }
        None => {
            let (host, port) = text
                .rsplit_once(':')
                .ok_or_else(|| format!("`{text}`: a tcp address is `HOST:PORT`"))?;
            if host.contains(':') {
                return Err(format!(
                    "`{host}`: write an IPv6 address in brackets, `[{host}]:{port}`"
                ));
            }
            (host, port)
        }
    };
    check_host(host)?;
    let port = parse_decimal(port)
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| format!("`{port}` is not a port number (0..=65535)"))?;
    Ok(Address::Host {
        host: host.to_owned(),
        port,
    })
}

/// Checks one endpoint of `connect=` or `listen=`: `PROTOCOL/ADDRESS`, as Zenoh writes it
/// (`tcp/127.0.0.1:7447`). Whether Zenoh knows the protocol is for `ipc-zenoh` to say.
pub fn check_zenoh_endpoint(endpoint: &str) -> Result<(), String> {
    match endpoint.split_once('/') {
        Some((proto, addr))
            if !proto.is_empty()
                && proto
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !addr.is_empty() =>
        {
            Ok(())
        }
        _ => Err(format!(
            "`{endpoint}` is not a Zenoh endpoint (PROTOCOL/ADDRESS, e.g. tcp/127.0.0.1:7447)"
        )),
    }
}

fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        Err("the path is empty".into())
    } else if path.contains('\0') {
        Err("the path contains NUL".into())
    } else {
        Ok(())
    }
}

/// Checks a POSIX object name: a leading `/`, no other `/`, 1..=`NAME_MAX` characters after
/// it, no NUL, and not `/.` or `/..`.
pub fn check_posix_name(name: &str) -> Result<(), String> {
    let Some(rest) = name.strip_prefix('/') else {
        return Err(format!("POSIX name `{name}` must start with `/`"));
    };
    if rest.is_empty() || rest == "." || rest == ".." {
        Err(format!("POSIX name `{name}` needs a name after the `/`"))
    } else if rest.contains('/') {
        Err(format!(
            "POSIX name `{name}` may not contain `/` after the first"
        ))
    } else if rest.len() > NAME_MAX {
        Err(format!(
            "POSIX name is {} bytes long, NAME_MAX is {NAME_MAX}",
            rest.len()
        ))
    } else if rest.contains('\0') {
        Err("POSIX name contains NUL".into())
    } else {
        Ok(())
    }
}

/// Whether `name` is one of the options every transport may take, with the same syntax
/// everywhere (the rings' and `framing`); a registered scheme that declares one gets it parsed
/// into its field of [`Options`].
fn is_common_option(name: &str) -> bool {
    RING_OPTIONS.contains(&name) || name == "framing"
}

/// Zenoh's own options. A registered scheme that declares one gets it as written, in
/// [`Options::extra`].
const ZENOH_OPTIONS: [&str; 3] = ["connect", "listen", "scouting"];

/// Whether `name` is an option of some built-in transport.
fn is_option_name(name: &str) -> bool {
    is_common_option(name) || ZENOH_OPTIONS.contains(&name)
}

fn parse_option(transport: Transport, pair: &str, o: &mut Options) -> Result<()> {
    let (name, value) = pair
        .split_once('=')
        .ok_or_else(|| Error::invalid_spec(pair, "an option is written `name=value`"))?;
    if value.is_empty() {
        return Err(Error::invalid_spec(
            pair,
            format!("option `{name}` has no value"),
        ));
    }
    let registered_own = matches!(transport, Transport::Registered(_)) && !is_common_option(name);
    if registered_own && transport.options().contains(&name) {
        if o.extra.iter().any(|(n, _)| n == name) {
            return Err(Error::invalid_spec(
                pair,
                format!("option `{name}` is given twice"),
            ));
        }
        o.extra.push((name.to_owned(), value.to_owned()));
        return Ok(());
    }
    if !is_option_name(name) {
        return Err(Error::invalid_spec(
            pair,
            format!(
                "unknown option `{name}` (for {transport}: {})",
                transport.options().join(", ")
            ),
        ));
    }
    if !transport.options().contains(&name) {
        return Err(not_applicable(name, transport));
    }
    let bad = |reason: String| Error::invalid_spec(pair, reason);
    let twice = || bad(format!("option `{name}` is given twice"));
    match name {
        "capacity" => {
            let v = if transport.capacity_in_bytes() {
                parse_size(value).map_err(bad)?
            } else {
                parse_decimal(value).ok_or_else(|| {
                    bad(format!(
                        "capacity of {transport} counts messages: `{value}` is not a number"
                    ))
                })?
            };
            set_once(&mut o.capacity, v).map_err(|()| twice())
        }
        "message_size" => {
            set_once(&mut o.message_size, parse_size(value).map_err(bad)?).map_err(|()| twice())
        }
        "mode" if transport == Transport::Zenoh => {
            let mode = value.parse::<ZenohMode>().map_err(|e| bad(reason_of(e)))?;
            set_once(&mut o.zenoh_mode, mode).map_err(|()| twice())
        }
        "mode" => {
            let mode = u32::from_str_radix(value, 8)
                .ok()
                .filter(|m| *m <= 0o777 && value.len() <= 4 && !value.starts_with('+'))
                .ok_or_else(|| bad(format!("mode `{value}` is not octal 0000..=0777")))?;
            set_once(&mut o.mode, mode).map_err(|()| twice())
        }
        "create" => {
            let c = match value {
                "always" => Create::Always,
                "never" => Create::Never,
                "if_missing" => Create::IfMissing,
                _ => {
                    return Err(bad(format!(
                        "create `{value}` is not one of always, never, if_missing"
                    )));
                }
            };
            set_once(&mut o.create, c).map_err(|()| twice())
        }
        "open_timeout" => {
            set_once(&mut o.open_timeout, parse_duration(value).map_err(bad)?).map_err(|()| twice())
        }
        // The enums' own errors name the value; these name the whole `name=value` pair.
        "wait" => {
            let w = value
                .parse::<WaitStrategy>()
                .map_err(|e| bad(reason_of(e)))?;
            set_once(&mut o.wait, w).map_err(|()| twice())
        }
        "producers" => {
            let p = value.parse::<Producers>().map_err(|e| bad(reason_of(e)))?;
            set_once(&mut o.producers, p).map_err(|()| twice())
        }
        "owner" => {
            let owner = match value {
                "any" => crate::OwnerChoice::Any,
                _ => crate::OwnerChoice::User(crate::Principal::parse(value).map_err(bad)?),
            };
            set_once(&mut o.owner, owner).map_err(|()| twice())
        }
        "group" => {
            let group = crate::Principal::parse(value).map_err(bad)?;
            set_once(&mut o.group, group).map_err(|()| twice())
        }
        "framing" => {
            let framing = value.parse::<Framing>().map_err(|e| bad(reason_of(e)))?;
            set_once(&mut o.framing, framing).map_err(|()| twice())
        }
        "connect" | "listen" => {
            let slot = if name == "connect" {
                &mut o.connect
            } else {
                &mut o.listen
            };
            if !slot.is_empty() {
                return Err(twice());
            }
            for endpoint in value.split(',') {
                check_zenoh_endpoint(endpoint).map_err(bad)?;
                slot.push(endpoint.to_owned());
            }
            Ok(())
        }
        "scouting" => {
            let scouting = value.parse::<Scouting>().map_err(|e| bad(reason_of(e)))?;
            set_once(&mut o.scouting, scouting).map_err(|()| twice())
        }
        _ => unreachable!("checked against the known list above"),
    }
}

/// The reason of an [`Error::InvalidSpec`], to restate it for a larger part of the string.
fn reason_of(e: Error) -> String {
    match e {
        Error::InvalidSpec { reason, .. } => reason,
        other => other.to_string(),
    }
}

fn set_once<T>(slot: &mut Option<T>, value: T) -> Result<(), ()> {
    if slot.is_some() {
        return Err(());
    }
    *slot = Some(value);
    Ok(())
}

fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The `proj_id` of `ftok=PATH:PROJ_ID`, reduced to the 8 bits `ftok(3)` uses.
///
/// C programs pass any `int` (the textbook System V example uses `0x6666`); glibc keeps its
/// low 8 bits, so we accept what C accepts (decimal, `0x` hex, a negative decimal, anything
/// that fits in 32 bits) and keep the same 8 bits: `0x6666` and `0x66` name the same key.
/// Low 8 bits of 0 are refused: `ftok(3)` requires them nonzero, because with 0 the key is
/// just 8 bits of device and 16 of inode, which can be 0, that is `IPC_PRIVATE`, and then a
/// program meaning to share an object would silently make a private one.
pub fn parse_proj_id(text: &str) -> Result<u8, String> {
    let value = match text.strip_prefix('-') {
        // A negative C int, as two's complement: -1 is 0xffffffff, low 8 bits 0xff.
        Some(digits) => parse_decimal(digits)
            .filter(|n| *n <= 1 << 31)
            .map(|n| (n as u32).wrapping_neg()),
        None => parse_int(text).and_then(|n| u32::try_from(n).ok()),
    }
    .ok_or_else(|| format!("proj_id `{text}` is not a 32-bit integer (e.g. 0x66 or 0x6666)"))?;
    match value as u8 {
        0 => Err(format!(
            "proj_id `{text}` has low 8 bits 0, the only bits ftok uses: the key could then be \
             0 (IPC_PRIVATE), so ftok(3) requires them nonzero; use 1..=255 (or any int whose \
             low byte is not 0, such as 0x6666, which is 0x66)"
        )),
        low => Ok(low),
    }
}

fn parse_int(s: &str) -> Option<u64> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) if !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            u64::from_str_radix(hex, 16).ok()
        }
        Some(_) => None,
        None => parse_decimal(s),
    }
}

const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];

/// Parses a byte count: `4096`, `64KiB`, `1MiB`, `2GiB`.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let (digits, scale) = UNITS
        .iter()
        .find_map(|(unit, scale)| s.strip_suffix(unit).map(|d| (d, *scale)))
        .unwrap_or((s, 1));
    parse_decimal(digits)
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("`{s}` is not a size (e.g. 4096, 64KiB, 1MiB)"))
}

/// Writes a byte count in the largest unit that divides it exactly.
struct Size(u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match UNITS
            .iter()
            .find(|(_, scale)| self.0 != 0 && self.0 % scale == 0)
        {
            Some((unit, scale)) => write!(f, "{}{unit}", self.0 / scale),
            None => write!(f, "{}", self.0),
        }
    }
}

const DURATION_UNITS: [(&str, u128); 6] = [
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

/// Parses a duration with a unit: `250ms`, `5s`, `2m`, `1h`, `10us`, `100ns`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("`{s}` is not a duration (e.g. 500ms, 5s, 2m)");
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{s}` needs a unit (ns, us, ms, s, m, h)"))?;
    let (digits, unit) = s.split_at(split);
    let scale = DURATION_UNITS
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|(_, scale)| *scale)
        .ok_or_else(bad)?;
    // u128: the canonical form of a long duration in a small unit exceeds u64.
    let nanos = Some(digits)
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|d| d.parse::<u128>().ok())
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(bad)?;
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| bad())?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

/// Writes a duration in the largest unit that divides it exactly.
struct DurationText(Duration);

impl fmt::Display for DurationText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nanos = self.0.as_nanos();
        let (unit, scale) = DURATION_UNITS
            .iter()
            .find(|(_, scale)| nanos % scale == 0 && nanos != 0)
            .copied()
            .unwrap_or(("s", 1_000_000_000));
        write!(f, "{}{unit}", nanos / scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(s: &str) -> (String, String) {
        match s.parse::<TransportSpec>() {
            Err(Error::InvalidSpec { spec, reason }) => (spec, reason),
            other => panic!("{s}: expected InvalidSpec, got {other:?}"),
        }
    }

    #[test]
    fn ftok_takes_any_c_int_and_keeps_the_low_8_bits_as_glibc_does() {
        for (text, low) in [
            ("0x6666", 0x66),
            ("26214", 0x66),
            ("0x66", 0x66),
            ("-1", 0xff),
            ("0xffffff01", 1),
            ("-2147483648", 0),
        ] {
            let parsed = format!("sysv-shm:ftok=/tmp/app:{text}").parse::<TransportSpec>();
            match (parsed, low) {
                (Ok(spec), low) => {
                    let want = Address::Ftok {
                        path: "/tmp/app".into(),
                        proj_id: low,
                    };
                    assert_eq!(spec.address, want, "{text}");
                    // The canonical form: what `ipc ls` and error messages show.
                    assert_eq!(spec.to_string(), format!("sysv-shm:ftok=/tmp/app:{low:#x}"));
                }
                (Err(Error::InvalidSpec { reason, .. }), 0) => {
                    assert!(reason.contains("low 8 bits 0"), "{text}: {reason}")
                }
                (other, _) => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn parses_the_design_examples() {
        for s in [
            "pipe:",
            "pipe:fd=7",
            "fifo:/tmp/app.fifo",
            "sysv-mq:key=0x6666",
            "sysv-mq:ftok=/tmp/app:0x66",
            "sysv-shm:ftok=/tmp/app:0x66?capacity=64KiB",
            "posix-mq:/orders?capacity=64&message_size=8KiB",
            "posix-shm:/ticks?capacity=1MiB",
            "file-shm:/dev/shm/app.ring?capacity=1MiB&producers=multi",
        ] {
            let spec: TransportSpec = s.parse().unwrap();
            assert_eq!(spec.to_string(), s);
        }
    }

    #[test]
    fn framing_is_for_byte_streams_only() {
        for s in ["fifo:/tmp/f?framing=lines", "pipe:fd=0?framing=raw"] {
            let spec: TransportSpec = s.parse().unwrap();
            assert_eq!(spec.to_string(), s);
        }
        let (part, why) = reason("posix-mq:/q?framing=lines");
        assert_eq!(part, "framing");
        assert!(why.contains("does not apply to posix-mq"), "{why}");
        let (part, why) = reason("fifo:/tmp/f?framing=text");
        assert_eq!(part, "framing=text");
        assert!(why.contains("frames, lines, raw or packets"), "{why}");
    }

    #[test]
    fn canonical_form_uses_largest_exact_unit() {
        let spec: TransportSpec = "fifo:/x?message_size=65536&capacity=1048576&mode=644"
            .parse()
            .unwrap();
        assert_eq!(
            spec.to_string(),
            "fifo:/x?capacity=1MiB&message_size=64KiB&mode=0644"
        );
        let spec: TransportSpec = "posix-mq:/q?capacity=1024".parse().unwrap();
        assert_eq!(spec.to_string(), "posix-mq:/q?capacity=1024");
        let huge = Duration::new(u64::MAX, 1_000_000);
        let mut spec: TransportSpec = "fifo:/x".parse().unwrap();
        spec.options.open_timeout = Some(huge);
        assert_eq!(spec.to_string().parse::<TransportSpec>().unwrap(), spec);
        let spec: TransportSpec = "fifo:/x?open_timeout=1500ms".parse().unwrap();
        assert_eq!(spec.options.open_timeout, Some(Duration::from_millis(1500)));
        assert_eq!(spec.to_string(), "fifo:/x?open_timeout=1500ms");
    }

    #[test]
    fn errors_name_the_offending_part() {
        let table: &[(&str, &str, &str)] = &[
            ("fifo:/x?bogus=1", "bogus=1", "unknown option `bogus`"),
            ("fifo", "fifo", "missing `:`"),
            ("udp:localhost", "udp", "unknown transport `udp`"),
            ("fifo:", "", "path is empty"),
            ("pipe:fd=x", "fd=x", "not a file descriptor"),
            ("pipe:3", "3", "`fd=N`"),
            ("fifo:/x?capacity=12QiB", "capacity=12QiB", "not a size"),
            ("fifo:/x?capacity=", "capacity=", "has no value"),
            ("fifo:/x?capacity", "capacity", "`name=value`"),
            ("fifo:/x?capacity=1&capacity=2", "capacity=2", "twice"),
            ("fifo:/x?mode=0800", "mode=0800", "not octal"),
            ("fifo:/x?create=maybe", "create=maybe", "not one of"),
            ("fifo:/x?open_timeout=5", "open_timeout=5", "needs a unit"),
            ("pipe:?mode=0600", "mode", "does not apply to pipe"),
            ("posix-mq:orders", "orders", "must start with `/`"),
            ("posix-mq:/a/b", "/a/b", "may not contain `/`"),
            (
                "posix-mq:/q?capacity=1KiB",
                "capacity=1KiB",
                "counts messages",
            ),
            ("sysv-mq:key=0", "key=0", "IPC_PRIVATE"),
            ("sysv-mq:ftok=/tmp/x:0", "ftok=/tmp/x:0", "IPC_PRIVATE"),
            (
                "sysv-mq:ftok=/tmp/x:0x100",
                "ftok=/tmp/x:0x100",
                "low 8 bits 0",
            ),
            (
                "sysv-mq:ftok=/tmp/x:0x100000000",
                "ftok=/tmp/x:0x100000000",
                "32-bit",
            ),
            ("sysv-mq:ftok=/tmp/x:-0x1", "ftok=/tmp/x:-0x1", "32-bit"),
            ("sysv-mq:/tmp/x", "/tmp/x", "System V address"),
            ("fifo:/x?capacity=0", "fifo:/x?capacity=0", "at least 1"),
            (
                "fifo:/x?capacity=99999999999999999999",
                "capacity=99999999999999999999",
                "not a size",
            ),
        ];
        for (input, part, why) in table {
            let (spec, reason) = reason(input);
            assert_eq!(&spec, part, "{input}");
            assert!(reason.contains(why), "{input}: {reason}");
        }
        let long = format!("posix-shm:/{}", "n".repeat(NAME_MAX + 1));
        assert!(reason(&long).1.contains("NAME_MAX"));
    }

    #[test]
    fn ring_options_parse_and_round_trip() {
        let spec: TransportSpec =
            "posix-shm:/t?producers=multi&wait=busy&capacity=1048576&open_timeout=2s"
                .parse()
                .unwrap();
        assert_eq!(spec.options.wait, Some(WaitStrategy::Busy));
        assert_eq!(spec.options.producers, Some(Producers::Multi));
        assert_eq!(
            spec.to_string(),
            "posix-shm:/t?capacity=1MiB&open_timeout=2s&wait=busy&producers=multi"
        );
        for wait in ["busy", "spin", "park"] {
            let s = format!("sysv-shm:key=0x1?wait={wait}&producers=single");
            assert_eq!(s.parse::<TransportSpec>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn ring_options_are_refused_elsewhere_and_checked() {
        let table: &[(&str, &str, &str)] = &[
            (
                "posix-mq:/q?wait=busy",
                "wait",
                "does not apply to posix-mq",
            ),
            (
                "posix-mq:/q?producers=multi",
                "producers",
                "does not apply to posix-mq",
            ),
            ("pipe:?wait=fast", "wait=fast", "busy, spin or park"),
            ("posix-shm:/t?wait=fast", "wait=fast", "busy, spin or park"),
            ("posix-shm:/t?producers=3", "producers=3", "single or multi"),
            ("posix-shm:/t?wait=busy&wait=spin", "wait=spin", "twice"),
        ];
        for (input, part, why) in table {
            let (spec, reason) = reason(input);
            assert_eq!(&spec, part, "{input}");
            assert!(reason.contains(why), "{input}: {reason}");
        }
        // Pipes, FIFOs and sockets take `wait` for their receivers.
        for text in [
            "pipe:fd=3?wait=spin",
            "fifo:/x?wait=busy",
            "unix:@u?wait=spin",
            "tcp:127.0.0.1:1?wait=park",
            "socketpair:fd=4?wait=spin",
            "zenoh:k?wait=spin",
        ] {
            let spec: TransportSpec = text.parse().unwrap();
            assert!(spec.options.wait.is_some(), "{text}");
            assert_eq!(spec.to_string(), text);
        }
        // Set by hand rather than parsed: validate still refuses it.
        let mut spec: TransportSpec = "posix-mq:/q".parse().unwrap();
        spec.options.wait = Some(WaitStrategy::Park);
        assert!(matches!(spec.validate(), Err(Error::InvalidSpec { spec, .. }) if spec == "wait"));
    }

    #[test]
    fn zenoh_strings_parse_and_round_trip() {
        let spec: TransportSpec = "zenoh:app/ticks?connect=tcp/10.0.0.2:7447,tcp/[::1]:7447"
            .parse()
            .unwrap();
        assert_eq!(spec.address, Address::KeyExpr("app/ticks".into()));
        assert_eq!(
            spec.options.connect,
            ["tcp/10.0.0.2:7447", "tcp/[::1]:7447"]
        );
        assert_eq!(spec.options.zenoh_mode, None);
        for s in [
            "zenoh:app/ticks?connect=tcp/10.0.0.2:7447",
            "zenoh:a?capacity=64&message_size=1MiB&open_timeout=2s&mode=client&connect=tcp/r:7447",
            "zenoh:a/b/c?mode=peer&listen=tcp/127.0.0.1:7447&scouting=multicast",
            "zenoh:a?connect=tcp/127.0.0.1:1,tcp/127.0.0.1:2&listen=tcp/127.0.0.1:3",
        ] {
            let spec: TransportSpec = s.parse().unwrap();
            assert_eq!(spec.to_string(), s);
        }
        let spec: TransportSpec = "zenoh:k?mode=client&scouting=off".parse().unwrap();
        assert_eq!(spec.options.zenoh_mode, Some(ZenohMode::Client));
        assert_eq!(spec.options.scouting, Some(Scouting::Off));
    }

    #[test]
    fn zenoh_errors_name_the_offending_part() {
        let table: &[(&str, &str, &str)] = &[
            ("zenoh:", "", "empty"),
            ("zenoh:a//b", "a//b", "empty chunk"),
            ("zenoh:/a", "/a", "empty chunk"),
            ("zenoh:a/", "a/", "empty chunk"),
            ("zenoh:a/*", "a/*", "wildcards"),
            ("zenoh:a/**/b", "a/**/b", "wildcards"),
            ("zenoh:a/b$*", "a/b$*", "wildcards"),
            ("zenoh:@/a", "@/a", "`@`"),
            ("zenoh:a?mode=0600", "mode=0600", "peer or client"),
            ("zenoh:a?mode=router", "mode=router", "peer or client"),
            ("zenoh:a?connect=7447", "connect=7447", "PROTOCOL/ADDRESS"),
            (
                "zenoh:a?connect=tcp/a:1,",
                "connect=tcp/a:1,",
                "PROTOCOL/ADDRESS",
            ),
            ("zenoh:a?listen=/x", "listen=/x", "PROTOCOL/ADDRESS"),
            ("zenoh:a?scouting=udp", "scouting=udp", "off or multicast"),
            ("zenoh:a?create=always", "create", "does not apply to zenoh"),
            (
                "zenoh:a?connect=tcp/a:1&connect=tcp/b:1",
                "connect=tcp/b:1",
                "twice",
            ),
            ("zenoh:a?capacity=1KiB", "capacity=1KiB", "counts messages"),
            (
                "fifo:/x?connect=tcp/a:1",
                "connect",
                "does not apply to fifo",
            ),
            ("fifo:/x?mode=peer", "mode=peer", "not octal"),
        ];
        for (input, part, why) in table {
            let (spec, reason) = reason(input);
            assert_eq!(&spec, part, "{input}");
            assert!(reason.contains(why), "{input}: {reason}");
        }
        // Set by hand rather than parsed: validate still refuses them.
        let mut spec: TransportSpec = "zenoh:a".parse().unwrap();
        spec.options.mode = Some(0o600);
        assert!(matches!(spec.validate(), Err(Error::InvalidSpec { spec, .. }) if spec == "mode"));
        let mut spec: TransportSpec = "fifo:/x".parse().unwrap();
        spec.options.listen = vec!["tcp/127.0.0.1:1".into()];
        assert!(spec.validate().is_err());
    }

    #[test]
    fn new_rejects_mismatched_address() {
        assert!(TransportSpec::new(Transport::Fifo, Address::Fd(3)).is_err());
        assert!(TransportSpec::new(Transport::Pipe, Address::Fd(3)).is_ok());
    }

    #[test]
    fn a_mapped_file_is_named_by_an_absolute_path() {
        let (part, why) = reason("file-shm:app.ring");
        assert_eq!(part, "app.ring");
        assert!(why.contains("absolute"), "{why}");
        let path = Address::Path("/tmp/app.ring".into());
        assert!(TransportSpec::new(Transport::FileShm, path).is_ok());
        let relative = Address::Path("tmp/app.ring".into());
        assert!(TransportSpec::new(Transport::FileShm, relative).is_err());
        // The ring options, as posix-shm takes them.
        assert_eq!(Transport::FileShm.options(), Transport::PosixShm.options());
    }

    #[cfg(feature = "serde")]
    #[test]
    fn a_config_file_reads_the_string_form() {
        use serde::Deserialize;
        use serde::de::IntoDeserializer;
        use serde::de::value::{Error as ValueError, StrDeserializer};
        let text = "fifo:/tmp/app.fifo?message_size=4KiB";
        let de: StrDeserializer<'_, ValueError> = text.into_deserializer();
        let spec = TransportSpec::deserialize(de).unwrap();
        assert_eq!(spec, text.parse::<TransportSpec>().unwrap());
        let de: StrDeserializer<'_, ValueError> = "fifo:/x?bogus=1".into_deserializer();
        let err = TransportSpec::deserialize(de).unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }

    #[test]
    fn socket_strings_parse_and_round_trip() {
        for (s, address) in [
            ("unix:/run/app.sock", Address::Path("/run/app.sock".into())),
            ("unix:@app", Address::Abstract("app".into())),
            (
                "tcp:127.0.0.1:7000",
                Address::Host {
                    host: "127.0.0.1".into(),
                    port: 7000,
                },
            ),
            (
                "tcp:[::1]:7000",
                Address::Host {
                    host: "::1".into(),
                    port: 7000,
                },
            ),
            (
                "tcp:localhost:0",
                Address::Host {
                    host: "localhost".into(),
                    port: 0,
                },
            ),
            ("socketpair:", Address::Unnamed),
            ("socketpair:fd=5", Address::Fd(5)),
        ] {
            let spec: TransportSpec = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(spec.address, address, "{s}");
            assert_eq!(spec.to_string(), s);
        }
        let spec: TransportSpec = "unix:@app?capacity=256KiB&owner=any&open_timeout=2s"
            .parse()
            .unwrap();
        assert_eq!(spec.transport, Transport::Unix);
        assert_eq!(spec.to_string().parse::<TransportSpec>().unwrap(), spec);
    }

    #[test]
    fn socket_errors_name_the_bad_part() {
        for (s, part) in [
            ("tcp:::1:7000", "brackets"),
            ("tcp:127.0.0.1", "HOST:PORT"),
            ("tcp:127.0.0.1:70000", "70000"),
            ("tcp:[::1]7000", "[ADDR]:PORT"),
            ("tcp:[1.2.3.4]:7000", "1.2.3.4"),
            ("tcp:bad_host:7000", "bad_host"),
            ("tcp:127.0.0.1:7000?mode=0600", "mode"),
            ("tcp:127.0.0.1:7000?owner=any", "owner"),
            ("unix:@", "empty"),
            ("socketpair:fd=x", "`x`"),
            ("socketpair:/p", "fd=N"),
            ("socketpair:?open_timeout=1s", "open_timeout"),
        ] {
            let e = s.parse::<TransportSpec>().unwrap_err().to_string();
            assert!(e.contains(part), "{s}: {e}");
        }
        let long = format!("unix:/{}", "a".repeat(SUN_PATH_LEN));
        let e = long.parse::<TransportSpec>().unwrap_err().to_string();
        assert!(e.contains("sun_path"), "{e}");
    }
}
