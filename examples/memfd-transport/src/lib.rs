//! `memfd:/run/app.sock`: a transport written outside the workspace's backends, the way your
//! own would be. It is the workspace's shared-memory ring, in an anonymous `memfd` instead of a
//! named segment: the creator (the receiver, by default) serves the descriptor on a unix socket
//! at the string's path, and whoever opens the string connects there and receives it with
//! `SCM_RIGHTS`. Nothing of it is ever in `/dev/shm`: the memory goes away with the last process
//! that maps it, however they end.
//!
//! ```
//! use ipc::{Receiver, Sender};
//!
//! # fn main() -> ipc::Result<()> {
//! memfd_transport::register()?; // once, at start-up
//! let spec = format!("memfd:/tmp/ipc-doc-memfd-{}.sock?capacity=64KiB", std::process::id());
//! let mut rx = ipc::open_receiver(&spec)?; // makes the memfd and serves it at the path
//! let mut tx = ipc::open_sender(&spec)?; // fetches the descriptor and maps it
//! tx.send(b"hello")?;
//! let mut buf = [0; 64];
//! let n = rx.recv(&mut buf)?;
//! assert_eq!(&buf[..n], b"hello");
//! drop(rx); // removes the socket; the sender sees Disconnected
//! assert!(matches!(tx.send(b"late"), Err(ipc::Error::Disconnected)));
//! # Ok(())
//! # }
//! ```
//!
//! How it plugs in, in three parts (see the README's "Writing your own transport"):
//!
//! - [`Memfd`] tells the generic ring transport (`ipc::sync::ring::transport`) how this kind of
//!   segment is created, found, mapped and removed; [`MemfdSender`] and [`MemfdReceiver`] are
//!   the ring's endpoints over it, with everything the other rings have (zero-copy loans,
//!   readiness, peers watched, hostile memory refused).
//! - [`SCHEME`] declares the strings (`memfd:` + an absolute socket path, and which options)
//!   and how each end is opened; [`register`] adds it to the process's registry, after which
//!   `ipc::open_sender`, the `ipc` CLI (built with its `memfd` feature) and tokio open it.
//! - The conformance suite runs against it across real processes (`tests/conformance.rs`,
//!   with the two-line peer `src/bin/memfd-peer.rs`).
//!
//! The socket's file mode (`mode=`, default `0600`) says who may fetch the memory, as a
//! segment's mode does; an opener checks that whoever serves the path is one it accepts
//! (ours, or as `owner=`/`group=` widen it), and that the memory is sealed against shrinking,
//! so that no peer can make our accesses fault. A socket left by a dead creator is replaced;
//! one that is live is [`Error::AlreadyExists`], and any other file at the path is
//! [`Error::Incompatible`].
#![deny(unsafe_code)]

mod handover;

use std::os::fd::AsFd;
use std::sync::Arc;

use ipc::posix::shm::map_fd;
use ipc::sync::ring::transport::{SegmentKind, ShmRingReceiver, ShmRingSender};
use ipc::{
    Address, Adoption, Error, ObjectId, Owner, Result, Scheme, Segment, Transport, TransportSpec,
};

pub use handover::MemfdSegment;

/// `memfd:/absolute/socket/path`, taking the options of the other rings
/// ([`RING_OPTIONS`](ipc::spec::RING_OPTIONS)).
pub static SCHEME: Scheme = Scheme::new(
    "memfd",
    |spec| Ok(Box::new(MemfdSender::open(spec)?)),
    |spec| Ok(Box::new(MemfdReceiver::open(spec)?)),
)
.with_options(ipc::spec::RING_OPTIONS)
.with_address(check_address);

/// Registers [`SCHEME`] for the whole process (see [`ipc::register`]): call it once at
/// start-up, before parsing or opening `memfd:` strings.
pub fn register() -> Result<()> {
    ipc::register(&SCHEME)
}

/// The sending end of a `memfd:` ring: see [`ShmRingSender`] for its methods.
pub type MemfdSender = ShmRingSender<Memfd>;

/// The receiving end of a `memfd:` ring: see [`ShmRingReceiver`] for its methods.
pub type MemfdReceiver = ShmRingReceiver<Memfd>;

/// Memfds served on a unix socket, as the segments of a ring. A marker: no value of it exists,
/// it only names the kind.
pub enum Memfd {}

impl SegmentKind for Memfd {
    /// The socket's path, as the transport string writes it.
    type Name = String;
    type Handle = MemfdSegment;

    fn name_of(spec: &TransportSpec) -> Result<String> {
        match (spec.transport, &spec.address) {
            (Transport::Registered(scheme), Address::Registered(path)) if *scheme == SCHEME => {
                Ok(path.clone())
            }
            _ => Err(Error::invalid_spec(
                spec.to_string(),
                "not a memfd transport string (`memfd:/path/to/socket`)",
            )),
        }
    }

    fn describe(path: &String) -> String {
        format!("memfd:{path}")
    }

    fn removal_hint(path: &String) -> String {
        format!("rm {path} (the memory itself goes with the last process that maps it)")
    }

    fn create(path: &String, size: usize, mode: u32) -> Result<Owner<MemfdSegment>> {
        MemfdSegment::create(path, size, mode)
    }

    fn open_existing(path: &String, adoption: &Adoption) -> Result<Option<MemfdSegment>> {
        MemfdSegment::fetch(path, adoption).map(Some)
    }

    fn map(segment: &MemfdSegment) -> Result<Arc<dyn Segment>> {
        let id = ObjectId {
            family: "memfd",
            name: segment.path().to_owned(),
        };
        Ok(Arc::new(map_fd(
            segment.memfd().as_fd(),
            segment.size(),
            id,
        )?))
    }
}

/// An absolute path that fits a socket address (`sun_path`).
fn check_address(path: &str) -> std::result::Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!(
            "a memfd address is the absolute path of its socket, not `{path}`"
        ));
    }
    if path.contains('\0') {
        return Err("the path holds a NUL byte".into());
    }
    if path.len() >= ipc::spec::SUN_PATH_LEN {
        return Err(format!(
            "a socket path is at most {} bytes, this one has {}",
            ipc::spec::SUN_PATH_LEN - 1,
            path.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipc::{Receiver, Sender};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A `memfd:` string, parsed once the scheme is registered (tests run in any order).
    fn spec(text: &str) -> TransportSpec {
        register().unwrap();
        text.parse().unwrap()
    }

    fn unique_path() -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        format!("/tmp/ipc-memfd-unit-{}-{n}.sock", std::process::id())
    }

    #[test]
    fn strings_parse_once_registered() {
        register().unwrap();
        register().unwrap();
        let spec: TransportSpec = "memfd:/run/app.sock?capacity=1MiB&wait=busy"
            .parse()
            .unwrap();
        assert_eq!(spec.transport.scheme(), "memfd");
        assert_eq!(
            spec.to_string(),
            "memfd:/run/app.sock?capacity=1MiB&wait=busy"
        );
        for bad in ["memfd:relative.sock", "memfd:/x?framing=lines"] {
            assert!(bad.parse::<TransportSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_message_crosses_and_the_socket_goes_with_its_creator() {
        register().unwrap();
        let path = unique_path();
        let spec = format!("memfd:{path}?capacity=4KiB");
        let mut rx = ipc::open_receiver(&spec).unwrap();
        assert!(std::path::Path::new(&path).exists());
        let mut tx = ipc::open_sender(&spec).unwrap();
        tx.send(b"over a memfd").unwrap();
        let mut buf = [0; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"over a memfd");
        drop(rx);
        assert!(!std::path::Path::new(&path).exists());
        assert!(matches!(tx.send(b"x"), Err(Error::Disconnected)));
    }

    #[test]
    fn a_live_socket_is_taken_and_a_stale_one_replaced() {
        let path = unique_path();
        let spec = spec(&format!("memfd:{path}?create=always"));
        let first = MemfdReceiver::open(&spec).unwrap();
        assert!(matches!(
            MemfdReceiver::open(&spec),
            Err(Error::AlreadyExists { .. })
        ));
        drop(first);
        // A socket nobody serves any more, as a killed creator leaves it.
        let stale = std::os::unix::net::UnixListener::bind(&path).unwrap();
        drop(stale);
        let again = MemfdReceiver::open(&spec).unwrap();
        drop(again);
        assert!(!std::path::Path::new(&path).exists());
    }

    #[test]
    fn another_file_at_the_path_is_incompatible_and_left_alone() {
        let path = unique_path();
        std::fs::write(&path, b"not a socket").unwrap();
        let spec = spec(&format!("memfd:{path}"));
        let err = MemfdReceiver::open(&spec).err().unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(err, Error::Incompatible { .. }), "{err}");
    }

    #[test]
    fn a_sender_with_nobody_serving_waits_out_its_open_timeout() {
        let path = unique_path();
        let spec = spec(&format!("memfd:{path}?open_timeout=50ms"));
        let err = MemfdSender::open(&spec).err().unwrap();
        assert!(matches!(err, Error::NotFound { .. }), "{err}");
    }
}
