//! Which code opens the transport a string names: a [`Scheme`] per transport, gathered in a
//! [`Registry`].
//!
//! Every transport, built-in or not, is a `static` [`Scheme`]: its name (what comes before the
//! `:`), what its strings may hold, and a function per direction that opens an end. The
//! backends of this workspace export theirs (`ipc_fifo::SCHEME`, ...) and the `ipc` facade
//! registers those its features build; a crate of your own declares one the same way and
//! registers it at start-up, so that its strings parse, and `ipc::open_sender` and everything
//! built on it (the CLI, tokio, the conformance suite's peers) open it:
//!
//! ```
//! use ipc_core::registry::{self, Scheme};
//! use ipc_core::{Address, Error, Receiver, Result, Sender, TransportSpec};
//!
//! fn open_sender(spec: &TransportSpec) -> Result<Box<dyn Sender>> {
//!     let Address::Registered(name) = &spec.address else { unreachable!() };
//!     Err(Error::NotFound { object: format!("loop:{name}") })
//! }
//!
//! fn open_receiver(spec: &TransportSpec) -> Result<Box<dyn Receiver>> {
//!     Err(Error::NotFound { object: spec.to_string() })
//! }
//!
//! /// `loop:NAME?capacity=..&message_size=..&color=..`
//! static LOOP: Scheme = Scheme::new("loop", open_sender, open_receiver)
//!     .with_options(&["capacity", "message_size", "color"])
//!     .with_address(|name| match name.is_empty() {
//!         true => Err("a loop needs a name".into()),
//!         false => Ok(()),
//!     });
//!
//! registry::register(&LOOP)?;
//! let spec: TransportSpec = "loop:demo?capacity=4KiB&color=red".parse()?;
//! assert_eq!(spec.transport.scheme(), "loop");
//! assert_eq!(spec.options.capacity, Some(4096));
//! assert_eq!(spec.options.extra, [("color".to_string(), "red".to_string())]);
//! assert_eq!(spec.to_string(), "loop:demo?capacity=4KiB&color=red");
//!
//! let unknown = "lop:demo".parse::<TransportSpec>().unwrap_err().to_string();
//! assert!(unknown.contains("loop"), "{unknown}");
//! # Ok::<(), ipc_core::Error>(())
//! ```
//!
//! Registration is explicit: [`register`] adds to the process-wide registry that
//! [`TransportSpec`]'s `FromStr` and the facade's `open_*` functions consult, and a
//! [`Registry`] value is the same thing passed around instead, for a program that keeps its
//! schemes to itself.
//!
//! The options a registered scheme declares keep their meaning and syntax when they are the
//! workspace's own (`capacity`, `message_size`, `mode`, `create`, `open_timeout`, `wait`,
//! `producers`, `owner`, `group`, `framing`: see [`spec`]); any other name it
//! declares is kept as written in [`Options::extra`](crate::Options::extra), for the scheme
//! to read.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{PoisonError, RwLock};

use crate::spec::{self, Transport, TransportSpec};
use crate::{Error, Receiver, Result, Sender};

/// Opens the sending end of a transport string of one scheme.
pub type OpenSender = fn(&TransportSpec) -> Result<Box<dyn Sender>>;

/// Opens the receiving end of a transport string of one scheme.
pub type OpenReceiver = fn(&TransportSpec) -> Result<Box<dyn Receiver>>;

/// Checks the address part of a registered scheme's strings; the error says why it is refused.
pub type CheckAddress = fn(&str) -> std::result::Result<(), String>;

/// One transport: its name in strings, what its strings may hold, and how its ends are opened.
///
/// Two schemes are equal when their names are: a registry holds one scheme per name.
pub struct Scheme {
    declared: Declared,
    open_sender: OpenSender,
    open_receiver: OpenReceiver,
}

/// What a scheme's strings may hold: a built-in transport's grammar is in [`spec`], a
/// registered scheme's is declared with it.
#[derive(Clone, Copy)]
enum Declared {
    BuiltIn(Transport),
    Registered {
        name: &'static str,
        options: &'static [&'static str],
        capacity_in_bytes: bool,
        check_address: CheckAddress,
    },
}

impl Scheme {
    /// A scheme named `name` (`[a-z][a-z0-9-]*`, not a built-in transport's name: checked when
    /// it is registered) whose ends `open_sender` and `open_receiver` open.
    ///
    /// It takes `capacity` (in bytes) and `message_size` unless [`with_options`] says
    /// otherwise, and any address unless [`with_address`] checks it.
    ///
    /// [`with_options`]: Scheme::with_options
    /// [`with_address`]: Scheme::with_address
    pub const fn new(
        name: &'static str,
        open_sender: OpenSender,
        open_receiver: OpenReceiver,
    ) -> Scheme {
        Scheme {
            declared: Declared::Registered {
                name,
                options: &["capacity", "message_size"],
                capacity_in_bytes: true,
                check_address: |_| Ok(()),
            },
            open_sender,
            open_receiver,
        }
    }

    /// The scheme of a transport built into the workspace: its grammar is that of
    /// [`spec`]. For the backend crates; a scheme of your own is [`Scheme::new`].
    pub const fn built_in(
        transport: Transport,
        open_sender: OpenSender,
        open_receiver: OpenReceiver,
    ) -> Scheme {
        Scheme {
            declared: Declared::BuiltIn(transport),
            open_sender,
            open_receiver,
        }
    }

    /// The options the scheme's strings may give (`?name=value`); any other is an error naming
    /// it. Names of the workspace's options are parsed as everywhere else; other names (`[a-z_]+`)
    /// are kept as written in [`Options::extra`](crate::Options::extra). No effect on a
    /// built-in scheme.
    pub const fn with_options(mut self, options: &'static [&'static str]) -> Scheme {
        if let Declared::Registered { options: o, .. } = &mut self.declared {
            *o = options;
        }
        self
    }

    /// Checks the address part (between `:` and `?`) of the scheme's strings: parsing refuses
    /// an address `check` refuses, with its reason. No effect on a built-in scheme.
    pub const fn with_address(mut self, check: CheckAddress) -> Scheme {
        if let Declared::Registered { check_address, .. } = &mut self.declared {
            *check_address = check;
        }
        self
    }

    /// `capacity` counts messages (as for message queues) rather than bytes, so it is written
    /// and read without units. No effect on a built-in scheme.
    pub const fn capacity_in_messages(mut self) -> Scheme {
        if let Declared::Registered {
            capacity_in_bytes, ..
        } = &mut self.declared
        {
            *capacity_in_bytes = false;
        }
        self
    }

    /// The name before the `:` in the scheme's strings.
    pub fn name(&self) -> &'static str {
        match self.declared {
            Declared::BuiltIn(t) => t.scheme(),
            Declared::Registered { name, .. } => name,
        }
    }

    /// The transport this scheme's strings name ([`Transport::Registered`] for a scheme of
    /// [`Scheme::new`]).
    pub fn transport(&'static self) -> Transport {
        match self.declared {
            Declared::BuiltIn(t) => t,
            Declared::Registered { .. } => Transport::Registered(self),
        }
    }

    /// The options the scheme's strings may give.
    pub fn options(&self) -> &'static [&'static str] {
        match self.declared {
            Declared::BuiltIn(t) => t.options(),
            Declared::Registered { options, .. } => options,
        }
    }

    /// Whether `capacity` counts bytes rather than messages.
    pub fn capacity_in_bytes(&self) -> bool {
        match self.declared {
            Declared::BuiltIn(t) => t.capacity_in_bytes(),
            Declared::Registered {
                capacity_in_bytes, ..
            } => capacity_in_bytes,
        }
    }

    /// Checks a registered scheme's address; built-in addresses are typed by [`spec`].
    pub(crate) fn check_address(&self, address: &str) -> std::result::Result<(), String> {
        match self.declared {
            Declared::BuiltIn(t) => Err(format!("{t} addresses are not plain text")),
            Declared::Registered { check_address, .. } => check_address(address),
        }
    }

    /// Opens the sending end of `spec`, a string of this scheme.
    pub fn open_sender(&self, spec: &TransportSpec) -> Result<Box<dyn Sender>> {
        self.check_is_mine(spec)?;
        (self.open_sender)(spec)
    }

    /// Opens the receiving end of `spec`, a string of this scheme.
    pub fn open_receiver(&self, spec: &TransportSpec) -> Result<Box<dyn Receiver>> {
        self.check_is_mine(spec)?;
        (self.open_receiver)(spec)
    }

    fn check_is_mine(&self, spec: &TransportSpec) -> Result<()> {
        spec.validate()?;
        if spec.transport.scheme() == self.name() {
            Ok(())
        } else {
            Err(Error::invalid_spec(
                spec.to_string(),
                format!("not a {} transport string", self.name()),
            ))
        }
    }

    /// Why a scheme cannot be registered, if it cannot.
    fn refusal(&self) -> Option<String> {
        let Declared::Registered { name, options, .. } = self.declared else {
            return None;
        };
        let mut chars = name.chars();
        let well_formed = chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !well_formed {
            return Some(format!(
                "a scheme name is a lowercase letter then letters, digits or `-`, not `{name}`"
            ));
        }
        if Transport::ALL.iter().any(|t| t.scheme() == name) {
            return Some(format!("`{name}` is a built-in transport"));
        }
        options
            .iter()
            .find(|o| o.is_empty() || !o.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .map(|o| format!("scheme `{name}` declares option `{o}`: names are [a-z_]+"))
    }
}

impl fmt::Debug for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheme")
            .field("name", &self.name())
            .field("options", &self.options())
            .finish_non_exhaustive()
    }
}

impl PartialEq for Scheme {
    fn eq(&self, other: &Scheme) -> bool {
        self.name() == other.name()
    }
}

impl Eq for Scheme {}

impl Hash for Scheme {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name().hash(state);
    }
}

impl PartialOrd for Scheme {
    fn partial_cmp(&self, other: &Scheme) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheme {
    fn cmp(&self, other: &Scheme) -> std::cmp::Ordering {
        self.name().cmp(other.name())
    }
}

/// A set of schemes, at most one per name: what parses transport strings and opens them.
///
/// The facade's `ipc::registry()` is one holding the built-in transports of the build and
/// every [`register`]ed scheme.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Registry {
    schemes: Vec<&'static Scheme>,
}

impl Registry {
    /// An empty registry.
    pub const fn new() -> Registry {
        Registry {
            schemes: Vec::new(),
        }
    }

    /// Adds `scheme`. Registering the same scheme again does nothing; another scheme of the
    /// same name is [`Error::AlreadyExists`], and a malformed name or option name is
    /// [`Error::InvalidSpec`].
    pub fn register(&mut self, scheme: &'static Scheme) -> Result<()> {
        if let Some(why) = scheme.refusal() {
            return Err(Error::invalid_spec(scheme.name(), why));
        }
        match self.get(scheme.name()) {
            Some(known) if std::ptr::eq(known, scheme) => Ok(()),
            Some(_) => Err(Error::AlreadyExists {
                object: format!("transport scheme `{}`", scheme.name()),
            }),
            None => {
                self.schemes.push(scheme);
                Ok(())
            }
        }
    }

    /// This registry and `scheme` (see [`register`](Registry::register)).
    pub fn with(mut self, scheme: &'static Scheme) -> Result<Registry> {
        self.register(scheme)?;
        Ok(self)
    }

    /// The scheme named `name`.
    pub fn get(&self, name: &str) -> Option<&'static Scheme> {
        self.schemes.iter().copied().find(|s| s.name() == name)
    }

    /// The schemes, in the order they were registered.
    pub fn schemes(&self) -> impl Iterator<Item = &'static Scheme> + '_ {
        self.schemes.iter().copied()
    }

    /// Parses a transport string of a built-in transport or of a scheme of this registry.
    pub fn parse(&self, text: &str) -> Result<TransportSpec> {
        spec::parse(text, self)
    }

    /// Opens the sending end of the transport `text` names.
    pub fn open_sender(&self, text: &str) -> Result<Box<dyn Sender>> {
        self.open_sender_spec(&self.parse(text)?)
    }

    /// Opens the receiving end of the transport `text` names.
    pub fn open_receiver(&self, text: &str) -> Result<Box<dyn Receiver>> {
        self.open_receiver_spec(&self.parse(text)?)
    }

    /// Opens the sending end of a parsed transport string.
    pub fn open_sender_spec(&self, spec: &TransportSpec) -> Result<Box<dyn Sender>> {
        self.scheme_of(spec)?.open_sender(spec)
    }

    /// Opens the receiving end of a parsed transport string.
    pub fn open_receiver_spec(&self, spec: &TransportSpec) -> Result<Box<dyn Receiver>> {
        self.scheme_of(spec)?.open_receiver(spec)
    }

    /// The scheme that opens `spec`: this registry's of its name, or the scheme a registered
    /// transport carries (whoever built the spec holds the scheme).
    fn scheme_of(&self, spec: &TransportSpec) -> Result<&'static Scheme> {
        let name = spec.transport.scheme();
        if let Some(scheme) = self.get(name) {
            return Ok(scheme);
        }
        let reason = match spec.transport {
            Transport::Registered(scheme) => return Ok(scheme),
            t => match t.feature() {
                Some(feature) => format!(
                    "transport {name} is not built in: enable the cargo feature `{feature}` of \
                     the `ipc` crate (this build opens: {})",
                    self.names()
                ),
                None => format!(
                    "transport {name} is not registered (registered: {})",
                    self.names()
                ),
            },
        };
        Err(Error::invalid_spec(spec.to_string(), reason))
    }

    fn names(&self) -> String {
        name_list(self.schemes().map(Scheme::name))
    }
}

/// `names` for an error message: comma-separated, or "none".
pub(crate) fn name_list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<_> = names.collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// The process-wide registry: what `str::parse::<TransportSpec>` and the facade consult.
static REGISTERED: RwLock<Registry> = RwLock::new(Registry::new());

/// Registers `scheme` for the whole process (see [`Registry::register`] for the errors): from
/// now on its strings parse everywhere, and the facade opens them.
pub fn register(scheme: &'static Scheme) -> Result<()> {
    REGISTERED
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .register(scheme)
}

/// The schemes [`register`]ed so far, built-in ones included once the facade has registered
/// them.
pub fn registered() -> Registry {
    REGISTERED
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Address;

    fn refuse_sender(spec: &TransportSpec) -> Result<Box<dyn Sender>> {
        Err(Error::NotFound {
            object: spec.to_string(),
        })
    }

    fn refuse_receiver(spec: &TransportSpec) -> Result<Box<dyn Receiver>> {
        Err(Error::NotFound {
            object: spec.to_string(),
        })
    }

    static TEST: Scheme = Scheme::new("test-scheme", refuse_sender, refuse_receiver)
        .with_options(&["capacity", "message_size", "mode", "flavour"])
        .capacity_in_messages()
        .with_address(|a| {
            if a.starts_with('x') {
                Ok(())
            } else {
                Err(format!("`{a}` does not start with x"))
            }
        });

    static TWIN: Scheme = Scheme::new("test-scheme", refuse_sender, refuse_receiver);
    static BUILT_IN_NAME: Scheme = Scheme::new("fifo", refuse_sender, refuse_receiver);
    static BAD_NAME: Scheme = Scheme::new("Bad_Name", refuse_sender, refuse_receiver);
    static BAD_OPTION: Scheme =
        Scheme::new("bad-option", refuse_sender, refuse_receiver).with_options(&["a-b"]);

    fn registry() -> Registry {
        Registry::new().with(&TEST).unwrap()
    }

    #[test]
    fn a_registered_string_parses_and_round_trips() {
        let reg = registry();
        let spec = reg
            .parse("test-scheme:xyz?capacity=12&mode=0640&flavour=mint")
            .unwrap();
        assert_eq!(spec.transport, Transport::Registered(&TEST));
        assert_eq!(spec.address, Address::Registered("xyz".into()));
        assert_eq!(spec.options.capacity, Some(12));
        assert_eq!(spec.options.mode, Some(0o640));
        assert_eq!(spec.options.extra, [("flavour".into(), "mint".into())]);
        let text = spec.to_string();
        assert_eq!(text, "test-scheme:xyz?capacity=12&mode=0640&flavour=mint");
        assert_eq!(reg.parse(&text).unwrap(), spec);
    }

    #[test]
    fn a_registered_string_is_checked() {
        let reg = registry();
        let bad = |s: &str| reg.parse(s).unwrap_err().to_string();
        assert!(bad("test-scheme:abc").contains("does not start with x"));
        assert!(bad("test-scheme:x?wait=busy").contains("wait"));
        assert!(bad("test-scheme:x?colour=red").contains("flavour"));
        assert!(bad("test-scheme:x?flavour=a&flavour=b").contains("twice"));
        assert!(bad("test-scheme:x?capacity=4KiB").contains("counts messages"));
    }

    #[test]
    fn an_unknown_scheme_lists_the_registered_ones() {
        let err = registry().parse("nope:x").unwrap_err().to_string();
        assert!(err.contains("`nope`"), "{err}");
        assert!(err.contains("test-scheme"), "{err}");
        assert!(err.contains("fifo"), "{err}");
    }

    #[test]
    fn opening_dispatches_to_the_scheme() {
        let err = registry().open_sender("test-scheme:x1").err().unwrap();
        assert!(
            matches!(&err, Error::NotFound { object } if object == "test-scheme:x1"),
            "{err}"
        );
    }

    #[test]
    fn a_built_in_transport_missing_from_the_registry_names_its_feature() {
        let err = registry().open_receiver("fifo:/tmp/x").err().unwrap();
        assert!(err.to_string().contains("`fifo`"), "{err}");
        assert!(err.to_string().contains("test-scheme"), "{err}");
    }

    #[test]
    fn names_are_unique_and_well_formed() {
        let mut reg = registry();
        reg.register(&TEST).unwrap();
        assert!(matches!(
            reg.register(&TWIN),
            Err(Error::AlreadyExists { .. })
        ));
        for scheme in [&BUILT_IN_NAME, &BAD_NAME, &BAD_OPTION] {
            assert!(
                matches!(reg.register(scheme), Err(Error::InvalidSpec { .. })),
                "{scheme:?}"
            );
        }
        assert_eq!(reg.schemes().count(), 1);
    }

    #[test]
    fn the_process_registry_serves_from_str() {
        static GLOBAL: Scheme = Scheme::new("test-global", refuse_sender, refuse_receiver);
        assert!("test-global:a".parse::<TransportSpec>().is_err());
        register(&GLOBAL).unwrap();
        let spec: TransportSpec = "test-global:a?message_size=1KiB".parse().unwrap();
        assert_eq!(spec.transport, Transport::Registered(&GLOBAL));
        assert!(registered().get("test-global").is_some());
    }
}
