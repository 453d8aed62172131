//! Factories for transports whose ends are both opened from one transport string: [`Fresh`],
//! one such transport made for a test, and [`SpecFactory`], the whole [`Factory`] of a
//! transport from a few facts and a function that makes a [`Fresh`]. A crate outside the
//! workspace that registers its scheme with the facade runs the suite with a `SpecFactory`.

use std::process::Command;

use ipc::{Receiver, Result, Sender};

use crate::Cleanup;
use crate::factory::{Cfg, Factory, Pair, spawn};
use crate::process::{Peer, SPEC_ENV};

/// A transport made for one test, named by a string that its ends open with
/// `ipc::open_sender` / `ipc::open_receiver` (a FIFO, a unix socket, a registered scheme), and
/// the guard that removes whatever it leaves, even when the test fails or a peer is killed. The
/// guard goes with the [`Pair`], or with the peer that outlives the others.
///
/// Made by [`Fresh::new`], the transport must let its ends open in either order: the receiver
/// makes the transport, a sender opened first waits for it (an `open_timeout` in the string,
/// well inside [`WATCHDOG`](crate::process::WATCHDOG)). When a peer receives, it opens first
/// and this process's sender waits for it; otherwise this process opens the receiver first.
pub struct Fresh {
    /// The string of the end opened first, which makes the transport.
    create: String,
    /// The string of the ends that join it.
    join: String,
    guard: Cleanup,
}

/// Which process makes the transport of a [`Fresh`] when a child receives.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Creator {
    /// This process, through its sender (queues: nobody waits for anybody).
    Here,
    /// The child, as a receiver does (rings, FIFOs, sockets: our sender waits for it).
    Peer,
}

impl Fresh {
    /// The transport `spec`, whose leftovers `guard` removes when dropped (a
    /// [`PathGuard`](crate::PathGuard), say, or `()` if the transport leaves nothing).
    pub fn new(spec: impl Into<String>, guard: impl Send + 'static) -> Fresh {
        let spec = spec.into();
        Fresh {
            create: spec.clone(),
            join: spec,
            guard: Cleanup::with(guard),
        }
    }

    /// An object named by `spec` (a queue, a ring segment; `spec` has a `?query` and no
    /// `create`): the end opened first creates it (`create=always`, so a leftover of the same
    /// name fails the test instead of being reused); the other ends join it (`create=never`).
    pub(crate) fn named(spec: &str, guard: impl Send + 'static) -> Fresh {
        Fresh {
            create: format!("{spec}&create=always"),
            join: format!("{spec}&create=never"),
            guard: Cleanup::with(guard),
        }
    }

    pub(crate) fn pair(self) -> Result<Pair> {
        let rx = ipc::open_receiver(&self.create)?;
        let tx = ipc::open_sender(&self.join)?;
        Ok(Pair {
            tx,
            rx,
            cleanup: self.guard,
        })
    }

    pub(crate) fn spawn_receiver(
        self,
        mut cmd: Command,
        creator: Creator,
    ) -> Result<(Box<dyn Sender>, Peer)> {
        let (tx, mut peer) = match creator {
            Creator::Here => {
                let tx = ipc::open_sender(&self.create)?;
                cmd.env(SPEC_ENV, &self.join);
                (tx, spawn(cmd)?)
            }
            Creator::Peer => {
                // Our sender waits for the child's receiver. We still guard what it makes: a
                // killed child cannot remove it.
                cmd.env(SPEC_ENV, &self.create);
                let peer = spawn(cmd)?;
                (ipc::open_sender(&self.join)?, peer)
            }
        };
        peer.hold(self.guard);
        Ok((tx, peer))
    }

    pub(crate) fn spawn_sender(self, mut cmd: Command) -> Result<(Box<dyn Receiver>, Peer)> {
        let rx = ipc::open_receiver(&self.create)?;
        cmd.env(SPEC_ENV, &self.join);
        let mut peer = spawn(cmd)?;
        peer.hold(self.guard);
        Ok((rx, peer))
    }

    pub(crate) fn spawn_senders(
        self,
        cmds: Vec<Command>,
    ) -> Result<(Box<dyn Receiver>, Vec<Peer>)> {
        let rx = ipc::open_receiver(&self.create)?;
        let mut peers = Vec::new();
        for mut cmd in cmds {
            cmd.env(SPEC_ENV, &self.join);
            peers.push(spawn(cmd)?);
        }
        // Peers drop front to back: the last one keeps the object guarded until all are gone.
        if let Some(last) = peers.last_mut() {
            last.hold(self.guard);
        }
        Ok((rx, peers))
    }
}

impl std::fmt::Debug for Fresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fresh")
            .field("create", &self.create)
            .field("join", &self.join)
            .finish()
    }
}

/// The four transport-making methods of [`Factory`] for transports made as a [`Fresh`] by
/// `$fresh(self, cfg, writers)`, `writers` being how many senders will open it (more than one
/// only in [`Factory::spawn_senders`]).
macro_rules! fresh_methods {
    ($fresh:path) => {
        fn pair(&self, cfg: &Cfg) -> Result<Pair> {
            $fresh(self, cfg, 1).pair()
        }

        fn spawn_receiver(&self, cfg: &Cfg, cmd: Command) -> Result<(Box<dyn Sender>, Peer)> {
            $fresh(self, cfg, 1).spawn_receiver(cmd, $crate::factory_spec::Creator::Peer)
        }

        fn spawn_sender(&self, cfg: &Cfg, cmd: Command) -> Result<(Box<dyn Receiver>, Peer)> {
            $fresh(self, cfg, 1).spawn_sender(cmd)
        }

        fn spawn_senders(
            &self,
            cfg: &Cfg,
            cmds: Vec<Command>,
        ) -> Result<(Box<dyn Receiver>, Vec<Peer>)> {
            $fresh(self, cfg, cmds.len()).spawn_senders(cmds)
        }
    };
}
pub(crate) use fresh_methods;

/// The [`Factory`] of a transport whose ends are both opened from a transport string, as a
/// [`Fresh`] says: what the suite must know of the transport, and the function that makes a
/// fresh one for each test. A `const` value, so that it can be the `$factory` of
/// [`conformance_tests!`](crate::conformance_tests):
///
/// ```
/// use ipc_tests::{Cfg, Fresh, PathGuard, SpecFactory};
///
/// /// A FIFO at a fresh path in `/tmp`, which the guard removes.
/// fn fifo(cfg: &Cfg, _writers: usize) -> Fresh {
///     let path = PathGuard::unique("fifo");
///     let spec = format!("fifo:{}{}&open_timeout=10s", path.as_str(), cfg.query());
///     Fresh::new(spec, path)
/// }
///
/// const FIFO: SpecFactory = SpecFactory {
///     name: "fifo",
///     sees_peer_death: true,
///     max_message_size: 64 * 1024,
///     multi_writer_max: ipc::pipe::ATOMIC_MESSAGE_MAX,
///     fresh: fifo,
/// };
/// // ipc_tests::conformance_tests!(FIFO, connected, peer = env!("CARGO_BIN_EXE_my-peer"));
/// # let _ = FIFO;
/// ```
#[derive(Clone, Copy, Debug)]
pub struct SpecFactory {
    /// The transport's name, for messages ([`Factory::name`]).
    pub name: &'static str,
    /// Whether an end sees its peer go ([`Factory::sees_peer_death`]): `true` for a transport
    /// stamped with the `connected` group of tests, `false` for `connectionless`.
    pub sees_peer_death: bool,
    /// Largest `message_size` the transport takes ([`Factory::max_message_size`]); the suite
    /// asks for no more.
    pub max_message_size: usize,
    /// Largest message size at which several senders, in as many processes, may write to one
    /// receiver concurrently without their messages interleaving
    /// ([`Factory::multi_writer_max`]).
    pub multi_writer_max: usize,
    /// Makes a transport no other test uses, for `cfg` (`cfg.query()` is the
    /// `?message_size=..` part of its string, to which options may be added with `&`), to be
    /// opened by one receiver and by the given number of senders.
    pub fresh: fn(cfg: &Cfg, writers: usize) -> Fresh,
}

impl SpecFactory {
    fn make(&self, cfg: &Cfg, writers: usize) -> Fresh {
        (self.fresh)(cfg, writers)
    }
}

impl Factory for SpecFactory {
    fn name(&self) -> &'static str {
        self.name
    }

    fn sees_peer_death(&self) -> bool {
        self.sees_peer_death
    }

    fn max_message_size(&self) -> usize {
        self.max_message_size
    }

    fresh_methods!(Self::make);

    fn multi_writer_max(&self) -> usize {
        self.multi_writer_max
    }
}
