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
//! A transport whose feature is off is an [`Error::InvalidSpec`] that names the feature.
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

/// Opens the sending end of the transport `spec` names (e.g. `fifo:/tmp/app.fifo`).
pub fn open_sender(spec: &str) -> Result<Box<dyn Sender>> {
    open_sender_spec(&spec.parse()?)
}

/// Opens the receiving end of the transport `spec` names (e.g. `fifo:/tmp/app.fifo`).
pub fn open_receiver(spec: &str) -> Result<Box<dyn Receiver>> {
    open_receiver_spec(&spec.parse()?)
}

/// Opens the sending end of a parsed transport string.
pub fn open_sender_spec(spec: &TransportSpec) -> Result<Box<dyn Sender>> {
    spec.validate()?;
    match spec.transport {
        #[cfg(feature = "pipe")]
        Transport::Pipe => Ok(Box::new(pipe::open_sender(spec)?)),
        #[cfg(feature = "fifo")]
        Transport::Fifo => Ok(Box::new(fifo::FifoSender::open(spec)?)),
        #[cfg(feature = "posix")]
        Transport::PosixMq => Ok(Box::new(posix::mq::MqSender::open(spec)?)),
        #[cfg(feature = "posix")]
        Transport::PosixShm => Ok(Box::new(posix::ring::ShmSender::open(spec)?)),
        #[cfg(feature = "sysv")]
        Transport::SysvMq => Ok(Box::new(sysv::msg::MsgSender::open(spec)?)),
        #[cfg(feature = "sysv")]
        Transport::SysvShm => Ok(Box::new(sysv::ring::SysvShmSender::open(spec)?)),
        #[cfg(feature = "posix")]
        Transport::FileShm => Ok(Box::new(posix::ring::FileShmSender::open(spec)?)),
        #[cfg(feature = "socket")]
        Transport::Unix => Ok(Box::new(socket::UnixSender::open(spec)?)),
        #[cfg(feature = "socket")]
        Transport::Tcp => Ok(Box::new(socket::TcpSender::open(spec)?)),
        #[cfg(feature = "socket")]
        Transport::SocketPair => Ok(Box::new(socket::pair::open(spec)?)),
        #[cfg(feature = "zenoh")]
        Transport::Zenoh => Ok(Box::new(zenoh::ZenohSender::open(spec)?)),
        other => Err(unavailable(spec, other)),
    }
}

/// Opens the receiving end of a parsed transport string.
pub fn open_receiver_spec(spec: &TransportSpec) -> Result<Box<dyn Receiver>> {
    spec.validate()?;
    match spec.transport {
        #[cfg(feature = "pipe")]
        Transport::Pipe => Ok(Box::new(pipe::open_receiver(spec)?)),
        #[cfg(feature = "fifo")]
        Transport::Fifo => Ok(Box::new(fifo::FifoReceiver::open(spec)?)),
        #[cfg(feature = "posix")]
        Transport::PosixMq => Ok(Box::new(posix::mq::MqReceiver::open(spec)?)),
        #[cfg(feature = "posix")]
        Transport::PosixShm => Ok(Box::new(posix::ring::ShmReceiver::open(spec)?)),
        #[cfg(feature = "sysv")]
        Transport::SysvMq => Ok(Box::new(sysv::msg::MsgReceiver::open(spec)?)),
        #[cfg(feature = "sysv")]
        Transport::SysvShm => Ok(Box::new(sysv::ring::SysvShmReceiver::open(spec)?)),
        #[cfg(feature = "posix")]
        Transport::FileShm => Ok(Box::new(posix::ring::FileShmReceiver::open(spec)?)),
        #[cfg(feature = "socket")]
        Transport::Unix => Ok(Box::new(socket::UnixReceiver::open(spec)?)),
        #[cfg(feature = "socket")]
        Transport::Tcp => Ok(Box::new(socket::TcpReceiver::open(spec)?)),
        #[cfg(feature = "socket")]
        Transport::SocketPair => Ok(Box::new(socket::pair::open(spec)?)),
        #[cfg(feature = "zenoh")]
        Transport::Zenoh => Ok(Box::new(zenoh::ZenohReceiver::open(spec)?)),
        other => Err(unavailable(spec, other)),
    }
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

/// The transports this build of the facade can open.
pub fn available_transports() -> Vec<Transport> {
    Transport::ALL
        .into_iter()
        .filter(|t| {
            (*t == Transport::Pipe && cfg!(feature = "pipe"))
                || (*t == Transport::Fifo && cfg!(feature = "fifo"))
                || (matches!(t, Transport::PosixMq | Transport::PosixShm)
                    && cfg!(feature = "posix"))
                || (*t == Transport::SysvMq && cfg!(feature = "sysv"))
                || (*t == Transport::SysvShm && cfg!(feature = "sysv"))
                || (*t == Transport::FileShm && cfg!(feature = "posix"))
                || (matches!(t, Transport::Unix | Transport::Tcp | Transport::SocketPair)
                    && cfg!(feature = "socket"))
                || (*t == Transport::Zenoh && cfg!(feature = "zenoh"))
        })
        .collect()
}

fn unavailable(spec: &TransportSpec, transport: Transport) -> Error {
    let built_here = matches!(
        transport,
        Transport::Pipe
            | Transport::Fifo
            | Transport::PosixMq
            | Transport::PosixShm
            | Transport::SysvMq
            | Transport::SysvShm
            | Transport::FileShm
            | Transport::Unix
            | Transport::Tcp
            | Transport::SocketPair
            | Transport::Zenoh
    );
    let reason = if built_here {
        format!(
            "transport {transport} is not built in: enable the cargo feature `{}` of the `ipc` crate",
            transport.feature()
        )
    } else {
        format!(
            "transport {transport} is not implemented yet (it will come with the cargo feature `{}`)",
            transport.feature()
        )
    };
    Error::invalid_spec(spec.to_string(), reason)
}

#[cfg(test)]
mod tests {
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
