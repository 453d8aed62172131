//! Every `--json` output of `ipc` is JSON lines: each line parses on its own and says what it
//! is in `"kind"`, so that a reader can tell rows from references without guessing from keys.
//! Each object this file makes has a name of its own and is removed by a guard.

mod common;

use common::{ShmName, ipc, run, text};

/// A POSIX queue, removed at the end whatever happened.
struct Queue(String);

impl Drop for Queue {
    fn drop(&mut self) {
        let _ = nix::mqueue::mq_unlink(self.0.as_str());
    }
}

/// Runs `ipc args`, checks it succeeded, and returns each stdout line parsed, after checking
/// that each has a string `kind`.
fn json_lines(args: &[&str]) -> Vec<serde_json::Value> {
    let out = run(ipc().args(args));
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(!stdout.is_empty(), "{args:?} printed nothing");
    stdout
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {line}"));
            assert!(v["kind"].is_string(), "{args:?}: no kind: {line}");
            v
        })
        .collect()
}

#[test]
fn every_json_output_is_lines_of_records_with_a_kind() {
    // An object of ours, so that `ls` has at least one line to print.
    let shm = ShmName(format!("/ipc-json-lines-{}", std::process::id()));
    let _rx = ipc::open_receiver(&shm.spec("?capacity=4KiB")).expect("create the ring");
    let ls = json_lines(&["ls", "--json"]);
    let ours = ls
        .iter()
        .find(|o| o["name"] == format!("posix-shm:{}", shm.0))
        .expect("our ring listed");
    assert_eq!(ours["kind"], "posix-shm");

    let doctor = json_lines(&["doctor", "--json"]);
    assert_eq!(doctor.len(), 1);
    assert_eq!(doctor[0]["kind"], "limits");
    for check in doctor[0]["checks"].as_array().expect("checks") {
        assert_eq!(check["kind"], "limit", "{check}");
    }

    let bench = json_lines(&[
        "bench",
        "--json",
        "--transports",
        "pipe",
        "--sizes",
        "64",
        "--budget-ms",
        "100",
    ]);
    assert!(bench.iter().any(|r| r["kind"] == "row"), "{bench:?}");
    for r in &bench {
        // A reference names itself; a row names its transport.
        match r["kind"].as_str() {
            Some("row") => assert_eq!(r["transport"], "pipe"),
            Some("reference") => assert!(r["reference"].is_string(), "{r}"),
            other => panic!("unexpected kind {other:?}: {r}"),
        }
    }

    let q = Queue(format!("/ipc-json-lines-{}", std::process::id()));
    let spec = format!("posix-mq:{}?create=if_missing", q.0);
    let sent = run(ipc().args(["send", &spec, "one \"quoted\"", "two\\"]));
    assert!(sent.status.success(), "{}", text(&sent.stderr));
    let recv = json_lines(&["recv", &spec, "--count", "2", "--format", "json", "--label"]);
    assert_eq!(recv.len(), 2);
    for (m, body) in recv.iter().zip(["one \"quoted\"", "two\\"]) {
        assert_eq!(m["kind"], "message");
        assert_eq!(m["len"], body.len());
        assert_eq!(m["from"], spec);
    }
}
