//! `unix:` and `socketpair:` against a program we did not write: Python speaking the record
//! format of the crate documentation (each `SOCK_SEQPACKET` record is the message, then the
//! tag byte `M`) to `ipc recv` and `ipc send`. Without `python3` on `PATH` each test says so
//! and passes.

use std::process::{Command, Output, Stdio};

mod common;

use common::{Running, TempPath, ipc, python3_found, text};

/// Connects to the socket at `argv[1]` (retrying for up to 10 s while `ipc recv` is not
/// listening yet), sends each of `argv[2:]` (hex) as one record as it is (until the receiver
/// drops the connection), then waits for the receiver to close it (at most 10 s) before it
/// closes its own end.
const CLIENT: &str = "
import socket, sys, time
path, records = sys.argv[1], [bytes.fromhex(r) for r in sys.argv[2:]]
deadline = time.monotonic() + 10
while True:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        s.connect(path)
        break
    except (FileNotFoundError, ConnectionRefusedError):
        s.close()
        if time.monotonic() > deadline:
            raise
        time.sleep(0.01)
for r in records:
    try:
        s.send(r)
    except (BrokenPipeError, ConnectionResetError):
        break  # the receiver dropped us (a record it refused)
s.settimeout(10)
try:
    s.recv(1)
except (socket.timeout, ConnectionResetError):
    pass
";

/// `ipc recv` on a fresh `unix:` socket, `args` after the transport string, fed by the Python
/// client sending `records`; `None` (and a message) without `python3`.
fn receive_from_python(records: &[&[u8]], args: &[&str]) -> Option<Output> {
    if !python3_found() {
        return None;
    }
    // The receiver removes its own socket file; this covers a receiver killed first.
    let path = TempPath::new(".sock");
    let recv = Running::spawn(
        ipc()
            .arg("recv")
            .arg(format!("unix:{}", path.path().display()))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let hex: Vec<String> = records
        .iter()
        .map(|r| r.iter().map(|b| format!("{b:02x}")).collect())
        .collect();
    let client = Running::spawn(
        Command::new("python3")
            .args(["-c", CLIENT])
            .arg(path.path())
            .args(&hex)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let received = recv.output();
    let client = client.output();
    assert!(
        client.status.success(),
        "python client: {}",
        text(&client.stderr)
    );
    assert!(!path.path().exists(), "ipc recv left its socket file");
    Some(received)
}

#[test]
fn records_a_python_client_sends_are_the_messages_ipc_recv_prints() {
    let long = [b'x'; 3000];
    let records: [&[u8]; 3] = [b"hello M", b"M", &[&long[..], b"M"].concat()];
    let Some(out) = receive_from_python(&records, &["--count", "3"]) else {
        return;
    };
    assert!(out.status.success(), "ipc recv: {}", text(&out.stderr));
    let expected = format!("hello \n\n{}\n", "x".repeat(3000));
    assert_eq!(text(&out.stdout), expected);
}

/// A record of no bytes reads as 0, as the end of the connection does: from a peer still
/// connected it is not our format, and must not pass for the end (which would lose what the
/// peer sends next, or hide that it speaks something else).
#[test]
fn an_empty_record_from_a_python_client_is_corrupted_not_the_end() {
    let records: [&[u8]; 3] = [b"oneM", b"", b"twoM"];
    let Some(out) = receive_from_python(&records, &["--count", "2"]) else {
        return;
    };
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "ipc recv: {stderr}");
    assert_eq!(text(&out.stdout), "one\n");
    assert!(stderr.contains("empty record"), "{stderr}");
}

/// Makes a socket pair and hands one end to `ipc` (`argv[1]`) as `socketpair:fd=N`, twice:
/// `ipc recv` of two records it sends, then `ipc send` of one it reads. Prints what `ipc recv`
/// printed, then the payload of the record it read.
const PAIR_PARENT: &str = "
import socket, subprocess, sys
ipc = sys.argv[1]
def handed(args):
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    child = subprocess.Popen([ipc] + [a.replace('FD', str(theirs.fileno())) for a in args],
                             pass_fds=(theirs.fileno(),), stdout=subprocess.PIPE)
    theirs.close()
    ours.settimeout(10)
    return ours, child
ours, child = handed(['recv', 'socketpair:fd=FD', '--count', '2'])
ours.send(b'from pythonM')
ours.send(b'M')
out, _ = child.communicate(timeout=10)
assert child.returncode == 0, child.returncode
sys.stdout.write(out.decode())
ours, child = handed(['send', 'socketpair:fd=FD', 'to python'])
record = ours.recv(100)
assert record.endswith(b'M'), record
print(record[:-1].decode())
child.communicate(timeout=10)
assert child.returncode == 0, child.returncode
";

/// A socket pair made by a Python parent: `ipc recv` and `ipc send` on the end it hands down
/// read and write the records Python writes and reads.
#[test]
fn a_python_parent_talks_to_ipc_through_a_socket_pair_it_hands_down() {
    if !python3_found() {
        return;
    }
    let out =
        common::run(Command::new("python3").args(["-c", PAIR_PARENT, env!("CARGO_BIN_EXE_ipc")]));
    assert!(out.status.success(), "python parent: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "from python\n\nto python\n");
}
