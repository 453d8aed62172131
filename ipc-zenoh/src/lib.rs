//! Message channels beyond one host, on the [Zenoh](https://zenoh.io) engine.
//!
//! A `zenoh:KEY` string names a key expression; a [`ZenohSender`] is a Zenoh publisher on it
//! and a [`ZenohReceiver`] a subscriber, each with its own Zenoh session. Zenoh rather than a
//! protocol of our own: it already runs fleets of machines (routing, reconnection,
//! fragmentation, many transports), and this crate only maps its publish/subscribe onto the
//! workspace's [`Sender`](ipc_core::Sender) / [`Receiver`](ipc_core::Receiver).
//!
//! ```
//! use ipc_core::{Receiver, Sender, TransportSpec};
//! use ipc_zenoh::{ZenohReceiver, ZenohSender};
//!
//! # fn main() -> Result<(), ipc_core::Error> {
//! # let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
//! // The receiver listens on loopback; the sender connects to it (two sessions, here in one
//! // process; usually two processes or two hosts).
//! let rx_spec: TransportSpec = format!("zenoh:demo/ticks?listen=tcp/127.0.0.1:{port}").parse()?;
//! let mut rx = ZenohReceiver::open(&rx_spec)?;
//! let tx_spec: TransportSpec = format!("zenoh:demo/ticks?connect=tcp/127.0.0.1:{port}").parse()?;
//! let mut tx = ZenohSender::open(&tx_spec)?; // waits for the subscriber to match
//! tx.send(b"hello")?;
//! let mut buf = vec![0; 64];
//! let n = rx.recv(&mut buf)?;
//! assert_eq!(&buf[..n], b"hello");
//! drop(tx);
//! assert!(matches!(rx.recv(&mut buf), Err(ipc_core::Error::Disconnected)));
//! # Ok(())
//! # }
//! ```
//!
//! # Transport strings
//!
//! `zenoh:KEY?mode=peer|client&connect=EP,EP&listen=EP,EP&scouting=off|multicast`, where an
//! endpoint `EP` is Zenoh's `tcp/HOST:PORT` (only TCP is built in). Nothing is implicit: a
//! session listens only on `listen`, connects only to `connect`, and scouts (UDP multicast on
//! the LAN) only with `scouting=multicast`. `mode=peer` (the default) talks to peers directly;
//! `mode=client` goes through a Zenoh router named by `connect`. `capacity` is the receiver's
//! queue in messages (default [`DEFAULT_CAPACITY`]), `message_size` the largest message
//! (default [`DEFAULT_MESSAGE_SIZE`]), `open_timeout` how long a sender waits for a receiver
//! (default [`DEFAULT_OPEN_TIMEOUT`]), `wait` how a receiver that finds its queue empty waits
//! (`park`, the default, sleeps at once; `spin` polls for 20 µs first, which saves the wake-up
//! per message of a stream: 64 B throughput here went from 1.2× to 0.9× Zenoh's own
//! subscriber loop, but a round trip took 1.3× as long, the spinning thread holding a core
//! that Zenoh's own threads wanted on this 2-core machine; `busy` never sleeps).
//!
//! # What it promises
//!
//! - **Whole, once, in order**, from one sender to each receiver: the publisher is reliable
//!   and blocks when congested (`CongestionControl::Block`) rather than dropping; Zenoh
//!   fragments large messages and reassembles them whole. Several senders on one key
//!   interleave whole messages, each in its own order. Unlike the local queues, every
//!   receiver on the key gets every message (publish/subscribe, not a shared queue).
//! - **Nothing published into the void**: Zenoh drops what is published while no subscriber
//!   matches, so [`ZenohSender::open`] waits (up to `open_timeout`) until one does, and a send
//!   with none matching is [`Error::Disconnected`] rather than a
//!   silent loss. A receiver that comes back (or another one) makes sends work again, as a
//!   FIFO's new reader does; what was refused meanwhile was never accepted. `Ok` means Zenoh
//!   took the message: if the receiver then dies, what is in flight is lost, as the trait says.
//! - **Disconnection**: each sender holds a liveliness token. The receiver returns
//!   `Disconnected` once every sender it saw has gone (dropped: its token is removed after its
//!   last message, see below; killed or unreachable: when Zenoh closes the link, at once for a
//!   closed TCP connection, after a lease of 60 s for a silent one) and everything received
//!   is drained. A dropped sender first waits (up to 10 s) until every receiver has read
//!   its messages off the link: each receiver answers a query the sender sends behind its
//!   last message. Zenoh 1.10's own close may cut a batch it is writing into a full socket,
//!   then write the next ones after it, which tears a message and loses the rest (see
//!   `sender.rs`); after the answers, nothing of ours is left to write. A sender killed with
//!   SIGKILL loses what Zenoh had queued but not yet written to the socket, which a pipe
//!   (where a write is in the kernel) does not. Before any sender came it is merely empty. A
//!   new sender makes it receive again. The sender sees `Disconnected` as soon as no
//!   subscriber matches.
//! - **Back-pressure**: the receiver's queue holds `capacity` messages; when it is full, the
//!   subscriber's callback waits, which stops Zenoh reading the link, and TCP's window then
//!   blocks the sender's `put`.
//!
//! # Where it differs from the local transports
//!
//! Zenoh's `put` has no deadline and no "would block": a sender never returns
//! [`Error::Full`] and `try_send` / `send_timeout` may block as long as
//! the link is congested (Zenoh would close the link after its block timeout, which this crate
//! raises to a day so that a slow reader does not cost messages). So the conformance tests of
//! a full transport do not apply; a sender's readiness is always "try now". A message larger
//! than `message_size` is refused by the sender (`MessageTooLarge`); one larger than the
//! receiver's `message_size`, from a sender configured larger, is still delivered to a buffer
//! that holds it (`BufferTooSmall` otherwise). There is no object to create, own or remove:
//! `create`, `mode` (as permissions), `owner` and `group` do not apply, and anyone who can
//! reach the endpoints can publish or subscribe (Zenoh's TLS and access control are not built
//! in: trusted networks only).
//!
//! # Event loops and async
//!
//! Zenoh has no descriptor to wait on: its callbacks signal an eventfd per endpoint, which is
//! the [`Readiness`](ipc_core::Readiness) descriptor, so `ipc::WaitSet` and `ipc::tokio` work
//! as for the other transports. Zenoh runs its own tokio runtimes; the calls that enter them
//! (opening, closing) run on a thread of ours, so an endpoint works from inside any tokio
//! runtime, current-thread ones included.
#![deny(unsafe_code)]

mod notify;
mod receiver;
mod sender;
mod session;

use std::time::Duration;

use ipc_core::registry::Scheme;
use ipc_core::{Address, Error, Result, Transport, TransportSpec};
use zenoh::key_expr::KeyExpr;

pub use receiver::ZenohReceiver;
pub use sender::ZenohSender;

/// The transport of this crate, `zenoh:`, for a [`Registry`](ipc_core::registry::Registry).
pub static SCHEMES: &[&Scheme] = &[&Scheme::built_in(
    Transport::Zenoh,
    |spec| Ok(Box::new(ZenohSender::open(spec)?)),
    |spec| Ok(Box::new(ZenohReceiver::open(spec)?)),
)];

/// Largest message when the string gives no `message_size`: 64 MiB (Zenoh fragments it on
/// the link; its receiving side reassembles up to 1 GiB).
pub const DEFAULT_MESSAGE_SIZE: usize = 64 << 20;

/// Messages a receiver queues when the string gives no `capacity`.
pub const DEFAULT_CAPACITY: usize = 256;

/// How long a sender waits for a receiver when the string gives no `open_timeout`.
pub const DEFAULT_OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// The Zenoh session configuration that the endpoints of `spec` open their sessions with
/// (peer or client mode, endpoints, scouting, QoS, lease, congestion; see the crate's
/// transport strings). For a program that uses Zenoh directly beside this crate and wants
/// the very same sessions: `ipc bench` measures its raw Zenoh baseline on them, so that the
/// comparison is of the layer, not of two configurations.
///
/// Errors: [`Error::InvalidSpec`] when Zenoh refuses an option of the string.
pub fn session_config(spec: &TransportSpec) -> Result<zenoh::Config> {
    session::config(spec)
}

/// The key expression of a `zenoh:` string, as Zenoh checks it.
fn key_expr(spec: &TransportSpec) -> Result<KeyExpr<'static>> {
    let text = match (&spec.address, spec.transport) {
        (Address::KeyExpr(k), Transport::Zenoh) => k.clone(),
        _ => {
            return Err(Error::invalid_spec(
                spec.to_string(),
                "not a zenoh transport string",
            ));
        }
    };
    KeyExpr::try_from(text.clone())
        .map_err(|e| Error::invalid_spec(text, format!("not a Zenoh key expression: {e}")))
}

fn max_message_size(spec: &TransportSpec) -> usize {
    spec.options.message_size.map_or(DEFAULT_MESSAGE_SIZE, |m| {
        usize::try_from(m).unwrap_or(usize::MAX)
    })
}

/// The liveliness token of one sender (its session's id under the channel's key): liveliness
/// has its own key space, so it cannot collide with the messages.
fn sender_token(key: &KeyExpr<'_>, zid: &zenoh::session::ZenohId) -> String {
    format!("{key}/ipc-sender/{zid}")
}

/// Every sender token of a channel's key.
fn sender_tokens(key: &KeyExpr<'_>) -> String {
    format!("{key}/ipc-sender/*")
}

/// Where a receiver answers a closing sender's flush query (see `sender::flush`). A verbatim
/// chunk (`@`), which no wildcard of a user's queryable matches.
fn flush_key(key: &KeyExpr<'_>) -> String {
    format!("{key}/@ipc-flush")
}

/// How long a closing sender waits for its receivers to answer its flush query.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);
