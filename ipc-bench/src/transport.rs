//! What a transport provides to the bench, and the link to a peer process it sets up.

use std::any::Any;
use std::cell::Cell;
use std::fs::DirBuilder;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{SystemTime, UNIX_EPOCH};

use ipc::{Receiver, Sender, Wait};
use nix::poll::PollFlags;

use crate::interrupt::Named;
use crate::protocol::{Api, OPEN_TIMEOUT, PeerReport, Variant, recv_message};

/// One entry of the bench table ([`crate::transports::TRANSPORTS`]): how to connect this process to a peer
/// process over the transport (ours), and over a plain loop of its system calls (raw).
///
/// Both variants carry messages of exactly `size` bytes each way. Connecting and the peer's
/// opening must not deadlock whichever process gets there first; the peer opens its receiving
/// end before its sending end, then sends one message to say it is ready.
///
/// The end of a stream is the sender closing its end, or, on a link built with
/// [`Link::ended_by_empty_message`], one empty message (see [`recv_message`]).
pub trait BenchTransport: Sync {
    /// Name on the command line and in the report, e.g. `fifo`.
    fn name(&self) -> &'static str;

    /// Why `size`-byte messages cannot be measured on this machine, if they cannot (a kernel
    /// limit): the report says so instead of a row.
    fn unsupported(&self, _size: usize) -> Option<String> {
        None
    }

    /// Whether there is a raw baseline to compare with (reported as `null` otherwise).
    fn has_raw_baseline(&self) -> bool {
        true
    }

    /// The readiness paths `ipc bench --async` measures ours through on this transport,
    /// besides its blocking calls: both by default. A transport of several rows (the rings'
    /// waiting strategies) keeps them to the rows whose comparison means something.
    fn readiness_apis(&self) -> &'static [Api] {
        &[Api::Async, Api::WaitSet]
    }

    /// Creates the transport's objects, hands the peer its ends by appending `--rx SPEC` and
    /// `--tx SPEC` to `cmd` (the `ipc bench-peer` command line), starts it with
    /// [`Peer::spawn`] and returns this side's ends.
    fn connect(&self, setup: Setup<'_>) -> ipc::Result<Link>;

    /// In the peer, opens the raw baseline's ends named by `rx` and `tx` (as `connect` wrote
    /// them), receiving end first. Ours is opened by the `ipc` facade, the same for everyone.
    fn open_raw_peer(&self, size: usize, rx: &str, tx: &str) -> ipc::Result<Ends>;

    /// In the peer, opens ours's ends named by `rx` and `tx`, receiving end first: by the `ipc`
    /// facade, unless the transport must say something of its receiver to `connect` (a port
    /// the kernel picked, see [`announce`]).
    fn open_ours_peer(&self, rx: &str, tx: &str) -> ipc::Result<Ends> {
        let rx = ipc::open_receiver(rx)?;
        Ok((rx, ipc::open_sender(tx)?))
    }
}

/// In the peer, tells `connect` (waiting in [`Peer::read_line`]) where its receiver listens:
/// one line on its stdout, before the report.
pub fn announce(line: &str) -> ipc::Result<()> {
    use std::io::Write;
    writeln!(std::io::stdout().lock(), "{line}")
        .map_err(|e| ipc::Error::io("telling the bench where the peer listens", e))
}

/// A peer's two ends, receiving end first.
pub type Ends = (Box<dyn Receiver>, Box<dyn Sender>);

/// What [`BenchTransport::connect`] builds a link from.
pub struct Setup<'a> {
    /// Ours or the raw baseline.
    pub variant: Variant,
    /// The size of every message, each way.
    pub size: usize,
    /// Where FIFOs and other files of the run go.
    pub scratch: &'a Scratch,
    /// The peer's command line, to which `connect` adds its ends.
    pub cmd: Command,
}

/// This process's ends of a link to a running peer.
pub struct Link {
    tx: Option<Box<dyn Sender>>,
    rx: Box<dyn Receiver>,
    peer: Peer,
    /// Whether closing our sending end must first send an empty message.
    empty_message_ends: bool,
    /// Our sending end once it sent that empty message, kept open until the peer has exited
    /// (see [`Link::close_sender`]).
    ended: Option<Box<dyn Sender>>,
    /// What must live as long as the link and go with it, after the peer (e.g. a guard that
    /// removes the link's named objects). Dropped last: fields drop in declaration order.
    _keep: Option<Box<dyn Any>>,
}

impl Link {
    pub fn new(tx: Box<dyn Sender>, rx: Box<dyn Receiver>, peer: Peer) -> Link {
        Link {
            tx: Some(tx),
            rx,
            peer,
            empty_message_ends: false,
            ended: None,
            _keep: None,
        }
    }

    /// For a transport whose ends cannot see each other close (a message queue): closing our
    /// sending end sends an empty message first, which the peer takes as the end of the stream
    /// ([`recv_message`]). Messages from the peer must end the same way when it exits.
    pub fn ended_by_empty_message(mut self) -> Link {
        self.empty_message_ends = true;
        self
    }

    /// Drives both ends through `api` ([`crate::readiness::wrap`]); through the blocking
    /// calls, leaves them as they are.
    pub fn through(self, api: Api) -> ipc::Result<Link> {
        let Link {
            tx,
            rx,
            peer,
            empty_message_ends,
            ended,
            _keep,
        } = self;
        let tx = tx.expect("a link is wrapped as it is made, before its sender is closed");
        match crate::readiness::wrap(api, tx, rx) {
            Ok((tx, rx)) => Ok(Link {
                tx: Some(tx),
                rx,
                peer,
                empty_message_ends,
                ended,
                _keep,
            }),
            Err(e) => {
                // As a dropped link goes: the peer is gone before its objects are removed.
                drop(peer);
                drop(_keep);
                Err(e)
            }
        }
    }

    /// Keeps `guard` until the link is dropped, after the peer has exited and been waited for.
    pub fn keeping(mut self, guard: impl Any) -> Link {
        self._keep = Some(Box::new(guard));
        self
    }

    /// The end towards the peer; `Disconnected` once [`Link::close_sender`] was called.
    pub fn tx(&mut self) -> ipc::Result<&mut dyn Sender> {
        match &mut self.tx {
            Some(tx) => Ok(&mut **tx),
            None => Err(ipc::Error::Disconnected),
        }
    }

    /// The end from the peer.
    pub fn rx(&mut self) -> &mut dyn Receiver {
        &mut *self.rx
    }

    /// Both ends at once, for loops that alternate between them.
    pub fn ends(&mut self) -> ipc::Result<(&mut dyn Sender, &mut dyn Receiver)> {
        match &mut self.tx {
            Some(tx) => Ok((&mut **tx, &mut *self.rx)),
            None => Err(ipc::Error::Disconnected),
        }
    }

    /// Closes the end towards the peer, which the peer sees as the end of the messages (after
    /// an empty message, on a link [ended by one](Link::ended_by_empty_message)).
    pub fn close_sender(&mut self) -> ipc::Result<()> {
        match self.tx.take() {
            Some(mut tx) if self.empty_message_ends => {
                let sent = tx.send(&[]);
                // Not closed yet: closing a Zenoh 1.10 session cuts the batch it is still
                // writing into a full socket (docs/upstream/zenoh-close-cuts-a-batch), and a
                // raw Zenoh sender closed right after a stream lost its end that way, leaving
                // the peer waiting for it (2 of 7 runs of `ipc bench --transports zenoh
                // --sizes 64 --repeat 5`). The peer's exit says it got everything.
                self.ended = Some(tx);
                sent
            }
            _ => Ok(()),
        }
    }

    /// Waits for the peer's first message, which it sends once both its ends are open.
    ///
    /// Without a deadline: a peer that fails exits, and its ends closing (or, on a link without
    /// connections, the empty message sent for it once it exited) ends this wait; the
    /// FIFO `connect`s have already waited, with a deadline, for the peer to open. (Also, a
    /// receive with a deadline on an `ipc` FIFO fails on Linux 6.18: `RWF_NOWAIT` is refused
    /// on FIFOs.)
    pub fn await_ready(&mut self) -> ipc::Result<()> {
        let mut buf = vec![0; self.rx.max_message_size()];
        recv_message(&mut *self.rx, &mut buf).map(drop)
    }

    /// The peer process, not reaped before [`Link::finish`].
    pub fn peer_process(&self) -> &std::process::Child {
        &self.peer.child
    }

    /// Closes both ends, then waits for the peer. After a successful run it exits on its own
    /// (its receiver sees the end of the stream); after a failed one it may be blocked, so it is
    /// killed first and only an exit status of its own is reported.
    ///
    /// Returns what the peer reported of its measured interval on its stdout.
    pub fn finish(mut self, succeeded: bool) -> Result<PeerReport, String> {
        // The end of the stream is what lets the peer exit on its own; failing to send it (on
        // a link that needs one) is a failure like any other, and the peer is killed.
        let ended = if succeeded {
            self.close_sender()
                .map_err(|e| format!("ending the stream to the peer: {e}"))
        } else {
            Ok(())
        };
        let succeeded = succeeded && ended.is_ok();
        self.tx = None;
        drop(self.rx);
        if !succeeded {
            let _ = self.peer.child.kill();
        }
        let (status, stdout) = self
            .peer
            .wait()
            .map_err(|e| format!("waiting for the peer: {e}"))?;
        let report = || {
            PeerReport::parse(&stdout)
                .ok_or_else(|| format!("the peer reported no CPU time (its stdout: {stdout:?})"))
        };
        match status.code() {
            Some(0) => ended.and_then(|()| report()),
            Some(code) => Err(format!("the peer process failed (exit status {code})")),
            None if succeeded => Err(format!("the peer process died ({status})")),
            None => ended.and_then(|()| report()),
        }
    }
}

/// The peer process; killed if dropped while still running.
pub struct Peer {
    child: Child,
    waited: bool,
}

impl Peer {
    /// Starts `cmd`. The caller drops whatever it had handed the child (inherited descriptors)
    /// right after this, so that only the child holds them.
    pub fn spawn(mut cmd: Command) -> ipc::Result<Peer> {
        let child = cmd
            .spawn()
            .map_err(|e| ipc::Error::io("starting the bench peer process", e))?;
        Ok(Peer {
            child,
            waited: false,
        })
    }

    /// Starts `cmd` with the specs of the peer's ends, `--rx` then `--tx`, appended.
    pub fn spawn_with(
        mut cmd: Command,
        rx: impl std::fmt::Display,
        tx: impl std::fmt::Display,
    ) -> ipc::Result<Peer> {
        cmd.arg("--rx").arg(rx.to_string());
        cmd.arg("--tx").arg(tx.to_string());
        Peer::spawn(cmd)
    }

    /// The peer's process id; the process stays ours (not reaped) until the link finishes.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The next line the peer [announces](announce), without its newline. A peer that fails
    /// exits, which ends the wait; one alive but stuck is `Timeout` after [`OPEN_TIMEOUT`]
    /// (this wait comes before the run's deadline is armed).
    pub fn read_line(&mut self) -> ipc::Result<String> {
        let out = self
            .child
            .stdout
            .as_mut()
            .ok_or_else(|| ipc::Error::corrupted("the peer's stdout is not ours to read"))?;
        let announced = Wait::timeout(OPEN_TIMEOUT);
        // A byte at a time: what follows the line is the report, read by `wait`.
        let mut line = Vec::new();
        let mut byte = [0];
        loop {
            if !ipc::poll_fd(out.as_fd(), PollFlags::POLLIN, announced)? {
                return Err(ipc::Error::Timeout);
            }
            match out.read(&mut byte) {
                Ok(0) => return Err(ipc::Error::Disconnected),
                Ok(_) if byte[0] == b'\n' => break,
                Ok(_) => line.push(byte[0]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ipc::Error::io("reading the peer's stdout", e)),
            }
        }
        String::from_utf8(line).map_err(|_| ipc::Error::corrupted("the peer announced no text"))
    }

    /// Reads the peer's stdout to its end, then waits for it.
    fn wait(&mut self) -> io::Result<(ExitStatus, String)> {
        let mut stdout = String::new();
        if let Some(mut out) = self.child.stdout.take() {
            out.read_to_string(&mut stdout)?;
        }
        let status = self.child.wait()?;
        self.waited = true;
        Ok((status, stdout))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if !self.waited {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A private directory (mode 0700) for the FIFOs of one bench run, removed with everything in
/// it when dropped. Private so that no other user can open or replace our FIFOs.
pub struct Scratch {
    dir: PathBuf,
    next: Cell<u32>,
}

impl Scratch {
    pub fn new() -> io::Result<Scratch> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!("ipc-bench-{}-{nanos}", std::process::id()));
        DirBuilder::new().mode(0o700).create(&dir)?;
        crate::interrupt::track(Named::Dir(dir.clone()));
        Ok(Scratch {
            dir,
            next: Cell::new(0),
        })
    }

    /// A path in the directory that no other call returns, as UTF-8 (transport specs are
    /// text).
    pub fn unique_path(&self, stem: &str) -> ipc::Result<String> {
        let n = self.next.get();
        self.next.set(n + 1);
        let path = self.dir.join(format!("{stem}-{n}"));
        utf8(&path)
    }
}

fn utf8(path: &Path) -> ipc::Result<String> {
    path.to_str().map(str::to_owned).ok_or_else(|| {
        ipc::Error::invalid_spec(
            path.display().to_string(),
            "the temporary directory's path is not UTF-8 (set TMPDIR)",
        )
    })
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        crate::interrupt::untrack(&Named::Dir(self.dir.clone()));
    }
}
