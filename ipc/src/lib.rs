//! Every classic Linux IPC mechanism behind one pair of traits.
//!
//! Pick a transport with a cargo feature and a transport string, and keep the rest of the code:
//!
//! ```
//! use ipc::{Receiver, Sender};
//!
//! # fn main() -> Result<(), ipc::Error> {
//! # let path = format!("/tmp/ipc-doc-{}.fifo", std::process::id());
//! // The string would come from a config file: `transport = "fifo:/tmp/app.fifo"`.
//! let spec = format!("fifo:{path}?message_size=4KiB");
//! let mut rx = ipc::open_receiver(&spec)?;      // creates the FIFO (mode 0600)
//! let mut tx = ipc::open_sender(&spec)?;        // waits for the reader, here at once
//! tx.send(b"hello")?;
//! let mut buf = vec![0; rx.max_message_size()];
//! let n = rx.recv(&mut buf)?;
//! assert_eq!(&buf[..n], b"hello");
//! # Ok(())
//! # }
//! ```
//!
//! | transport string          | feature | crate      |
//! |---------------------------|---------|------------|
//! | `pipe:fd=N`               | `pipe`  | [`pipe`]   |
//! | `fifo:/path`              | `fifo`  | [`fifo`]   |
//! | `posix-mq:/name`          | `posix` | [`posix`]  |
//! | `posix-shm:/name`         | `posix` | [`posix`] ([`posix::ring`]) over [`sync`] |
//! | `sysv-mq:key=N`           | `sysv`  | [`sysv`] ([`sysv::msg`]) |
//! | `sysv-shm:key=N`, `sysv-shm:ftok=/path:0x66` | `sysv` | [`sysv`] ([`sysv::ring`]) over [`sync`] |
//! | `file-shm:/path`          | `posix` | [`posix`] ([`posix::ring`], in a [`posix::file`]) over [`sync`] |
//! | `unix:/path`, `unix:@name` | `socket` | [`socket`] |
//! | `tcp:HOST:PORT` (trusted networks only) | `socket` | [`socket`] |
//! | `socketpair:fd=N`         | `socket` | [`socket`] ([`socket::pair`]) |
//! | `zenoh:key/expr?connect=tcp/HOST:PORT` | `zenoh` (off by default) | `zenoh` (`ipc-zenoh`) |
//!
//! | `SCHEME:...` of your own  | —       | your crate, [`register`]ed at start-up (see [`registry`](mod@registry)) |
//!
//! A transport whose feature is off is an [`Error::InvalidSpec`] that names the feature; a
//! scheme nobody registered is one that lists the built-in and registered schemes. Every
//! transport, built in or not, is opened through the same [`registry()`]: each backend crate
//! exports its [`Scheme`]s, and the facade registers those its features build.
//! The traits, errors and transport strings are those of `ipc-core`, re-exported here.
//!
//! [`sync`] (`ipc-sync`) is there whatever the features: the robust mutex, condvar and ring
//! work in any [`Segment`], an application's own included, and every shared-memory transport
//! is built on them. The zero-copy API of a ring (`loan`, `recv_in_place`) is on the concrete
//! endpoint types, e.g. [`posix::ring::ShmSender`], rather than on the boxed trait objects.
//!
//! [`typed`] sends values rather than bytes, over any of the above: plain-old-data structs as
//! their bytes (feature `pod`, with in-place reads and loans on the rings) and serde types
//! encoded with postcard (feature `serde`). Both features are on by default.
//!
//! `ipc::tokio` (feature `tokio`, off by default) awaits any endpoint on tokio: `AsyncSender`
//! and `AsyncReceiver` sleep in the reactor on the endpoint's readiness descriptor, and
//! `open_async_sender` / `open_async_receiver` open one from a transport string.
#![deny(unsafe_code)]

pub use ipc_core::registry::{Registry, Scheme};
pub use ipc_core::*;
/// Robust process-shared mutex and condvar, and the shared-memory ring channel (`ipc-sync`).
pub use ipc_sync as sync;

#[cfg(feature = "fifo")]
pub use ipc_fifo as fifo;
#[cfg(feature = "pipe")]
pub use ipc_pipe as pipe;
#[cfg(feature = "posix")]
pub use ipc_posix as posix;
#[cfg(feature = "socket")]
pub use ipc_socket as socket;
#[cfg(feature = "sysv")]
pub use ipc_sysv as sysv;
#[cfg(feature = "zenoh")]
pub use ipc_zenoh as zenoh;

pub mod typed;
pub mod wait_set;

pub use wait_set::{Key, Member, WaitSet};

#[cfg(feature = "tokio")]
pub mod tokio;
#[cfg(feature = "tokio")]
pub use self::tokio::{AsyncReceiver, AsyncSender};

/// Opens the sending end of the transport `spec` names (e.g. `fifo:/tmp/app.fifo`): a built-in
/// one, or one of a scheme [`register`]ed in this process.
pub fn open_sender(spec: &str) -> Result<Box<dyn Sender>> {
    registry().open_sender(spec)
}

/// Opens the receiving end of the transport `spec` names (e.g. `fifo:/tmp/app.fifo`): a
/// built-in one, or one of a scheme [`register`]ed in this process.
pub fn open_receiver(spec: &str) -> Result<Box<dyn Receiver>> {
    registry().open_receiver(spec)
}

/// Opens the sending end of a parsed transport string.
pub fn open_sender_spec(spec: &TransportSpec) -> Result<Box<dyn Sender>> {
    registry().open_sender_spec(spec)
}

/// Opens the receiving end of a parsed transport string.
pub fn open_receiver_spec(spec: &TransportSpec) -> Result<Box<dyn Receiver>> {
    registry().open_receiver_spec(spec)
}

/// Opens the sending end of the transport `spec` names, for tokio (feature `tokio`).
///
/// The opening runs on tokio's blocking pool, because it may wait for the peer: a FIFO sender
/// waits for a reader to open the FIFO, and a ring with `open_timeout` for its segment, each
/// up to the string's `open_timeout`. The reactor goes on meanwhile.
///
/// # Panics
///
/// Outside a tokio runtime with I/O enabled (see [`AsyncSender::new`]).
#[cfg(feature = "tokio")]
pub async fn open_async_sender(spec: &str) -> Result<AsyncSender> {
    open_async_sender_spec(&spec.parse()?).await
}

/// Opens the receiving end of the transport `spec` names, for tokio (feature `tokio`). The
/// opening runs on tokio's blocking pool, as in [`open_async_sender`].
///
/// # Panics
///
/// Outside a tokio runtime with I/O enabled (see [`AsyncReceiver::new`]).
#[cfg(feature = "tokio")]
pub async fn open_async_receiver(spec: &str) -> Result<AsyncReceiver> {
    open_async_receiver_spec(&spec.parse()?).await
}

/// [`open_async_sender`] for a parsed transport string.
#[cfg(feature = "tokio")]
pub async fn open_async_sender_spec(spec: &TransportSpec) -> Result<AsyncSender> {
    AsyncSender::new(self::tokio::open_blocking(spec, open_sender_spec).await?)
}

/// [`open_async_receiver`] for a parsed transport string.
#[cfg(feature = "tokio")]
pub async fn open_async_receiver_spec(spec: &TransportSpec) -> Result<AsyncReceiver> {
    AsyncReceiver::new(self::tokio::open_blocking(spec, open_receiver_spec).await?)
}

/// The transports this build of the facade can open: the built-in ones its features build, in
/// the order of [`Transport::ALL`], then the [`register`]ed ones by name.
pub fn available_transports() -> Vec<Transport> {
    let mut transports: Vec<_> = registry().schemes().map(Scheme::transport).collect();
    transports.sort();
    transports
}

/// Registers a transport of your own for the whole process (see [`registry`](mod@registry)):
/// from now on its strings parse, and [`open_sender`], [`open_receiver`], their tokio forms,
/// and whatever is built on them (the `ipc` CLI, the conformance suite's peers) open it.
///
/// Registering the same scheme twice does nothing; another scheme of a name already taken
/// (a built-in transport's included) is [`Error::AlreadyExists`].
pub fn register(scheme: &'static Scheme) -> Result<()> {
    register_built_in();
    registry::register(scheme)
}

/// What the facade opens with: the built-in transports of this build and the [`register`]ed
/// schemes. A program that keeps its schemes to itself builds on it instead, with
/// [`Registry::with`], and opens through that value.
pub fn registry() -> Registry {
    register_built_in();
    registry::registered()
}

/// The schemes of the backends this build has, by cargo feature.
const BUILT_IN: &[&[&Scheme]] = &[
    #[cfg(feature = "pipe")]
    pipe::SCHEMES,
    #[cfg(feature = "fifo")]
    fifo::SCHEMES,
    #[cfg(feature = "posix")]
    posix::SCHEMES,
    #[cfg(feature = "sysv")]
    sysv::SCHEMES,
    #[cfg(feature = "socket")]
    socket::SCHEMES,
    #[cfg(feature = "zenoh")]
    zenoh::SCHEMES,
];

fn register_built_in() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        for scheme in BUILT_IN.iter().copied().flatten() {
            // A scheme of the same name registered through ipc-core before the facade was
            // first used is kept: that program chose it.
            let _ = registry::register(scheme);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::{Receiver, Result, Scheme, Sender, TransportSpec};

    /// `test-fifo:/path`: a FIFO under another name, opened through the facade's registry.
    #[cfg(feature = "fifo")]
    fn as_fifo(spec: &TransportSpec) -> String {
        format!("fifo:{}", spec.address)
    }

    #[cfg(feature = "fifo")]
    static TEST_FIFO: Scheme = Scheme::new(
        "test-fifo",
        |spec| -> Result<Box<dyn Sender>> { super::open_sender(&as_fifo(spec)) },
        |spec| -> Result<Box<dyn Receiver>> { super::open_receiver(&as_fifo(spec)) },
    )
    .with_options(&[]);

    #[test]
    #[cfg(feature = "fifo")]
    fn a_registered_scheme_opens_through_the_facade() {
        let before = super::open_sender("test-fifo:/tmp/x").err().unwrap();
        assert!(before.to_string().contains("unknown transport"), "{before}");
        super::register(&TEST_FIFO).unwrap();
        let path = format!("/tmp/ipc-facade-test-{}.fifo", std::process::id());
        let spec = format!("test-fifo:{path}");
        let mut rx = super::open_receiver(&spec).unwrap();
        let mut tx = super::open_sender(&spec).unwrap();
        tx.send(b"registered").unwrap();
        let mut buf = [0; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"registered");
        drop(rx);
        assert!(!std::path::Path::new(&path).exists());
        assert!(
            super::available_transports()
                .iter()
                .any(|t| t.scheme() == "test-fifo")
        );
        let unknown = super::open_receiver("test-fif:/tmp/x").err().unwrap();
        assert!(unknown.to_string().contains("test-fifo"), "{unknown}");
    }

    #[test]
    fn a_name_taken_by_a_built_in_transport_cannot_be_registered() {
        static PIPE_AGAIN: Scheme = Scheme::new("pipe", |_| unreachable!(), |_| unreachable!());
        assert!(super::register(&PIPE_AGAIN).is_err());
    }

    #[test]
    fn unknown_option_names_itself() {
        let err = super::open_sender("fifo:/tmp/x.fifo?bogus=1")
            .err()
            .unwrap();
        assert!(err.to_string().contains("bogus"), "{err}");
    }

    #[test]
    fn posix_shm_is_available_with_the_posix_feature() {
        assert_eq!(
            super::available_transports().contains(&super::Transport::PosixShm),
            cfg!(feature = "posix")
        );
    }

    #[test]
    fn file_shm_is_available_with_the_posix_feature() {
        assert_eq!(
            super::available_transports().contains(&super::Transport::FileShm),
            cfg!(feature = "posix")
        );
    }

    #[test]
    fn sysv_shm_is_available_with_the_sysv_feature() {
        assert_eq!(
            super::available_transports().contains(&super::Transport::SysvShm),
            cfg!(feature = "sysv")
        );
    }

    #[test]
    fn sysv_mq_is_available_with_the_sysv_feature() {
        assert_eq!(
            super::available_transports().contains(&super::Transport::SysvMq),
            cfg!(feature = "sysv")
        );
    }

    #[test]
    fn sockets_are_available_with_the_socket_feature() {
        use super::Transport::{SocketPair, Tcp, Unix};
        let available = super::available_transports();
        for t in [Unix, Tcp, SocketPair] {
            assert_eq!(available.contains(&t), cfg!(feature = "socket"), "{t}");
        }
    }

    #[test]
    fn zenoh_is_available_with_the_zenoh_feature() {
        assert_eq!(
            super::available_transports().contains(&super::Transport::Zenoh),
            cfg!(feature = "zenoh")
        );
    }

    #[test]
    #[cfg(not(feature = "zenoh"))]
    fn zenoh_without_its_feature_names_the_feature() {
        let err = super::open_receiver("zenoh:a/b").err().unwrap();
        assert!(err.to_string().contains("`zenoh`"), "{err}");
    }

    #[test]
    #[cfg(not(feature = "sysv"))]
    fn unimplemented_transport_names_its_feature() {
        let err = super::open_sender("sysv-mq:key=0x1234").err().unwrap();
        assert!(err.to_string().contains("`sysv`"), "{err}");
    }
}
