//! `ipc doctor`: the kernel limits of every transport, as text and as JSON.

use std::process::Command;

fn doctor(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ipc"))
        .arg("doctor")
        .args(args)
        .output()
        .expect("running ipc doctor");
    assert!(
        out.status.success(),
        "ipc doctor {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

const NAMES: [&str; 18] = [
    "fs.mqueue.msg_max",
    "fs.mqueue.msgsize_max",
    "fs.mqueue.queues_max",
    "RLIMIT_MSGQUEUE",
    "/dev/mqueue",
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.shmmax",
    "kernel.shmall",
    "kernel.shmmni",
    "kernel.sem",
    "/dev/shm",
    "RLIMIT_MEMLOCK",
    "fs.pipe-max-size",
    "pipe default capacity",
    "net.core.wmem_max",
    "loopback",
];

fn proc_u64(path: &str) -> u64 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn text_names_every_limit_with_meaning_and_fix() {
    let text = doctor(&[]);
    for name in NAMES {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    let msgsize = proc_u64("/proc/sys/fs/mqueue/msgsize_max");
    assert!(
        text.contains(&format!("largest posix-mq message: {msgsize} bytes")),
        "{text}"
    );
    assert!(text.contains("sysctl -w fs.mqueue.msg_max="), "{text}");
    assert!(text.contains("ulimit -q"), "{text}");
    assert!(text.contains("mount -o remount,size="), "{text}");
}

#[test]
fn json_parses_and_matches_proc() {
    let json: serde_json::Value = serde_json::from_str(&doctor(&["--json"])).expect("valid JSON");
    assert_eq!(json["kind"], "limits");
    let limits = &json["limits"];
    for name in NAMES {
        assert!(limits.get(name).is_some(), "{name} missing from {limits}");
    }
    assert_eq!(
        limits["kernel.msgmax"].as_u64(),
        Some(proc_u64("/proc/sys/kernel/msgmax"))
    );
    assert_eq!(
        limits["fs.mqueue.msg_max"].as_u64(),
        Some(proc_u64("/proc/sys/fs/mqueue/msg_max"))
    );
    let sem: Vec<u64> = std::fs::read_to_string("/proc/sys/kernel/sem")
        .unwrap()
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect();
    assert_eq!(limits["kernel.sem"]["semmni"].as_u64(), Some(sem[3]));
    let checks = json["checks"].as_array().expect("checks array");
    assert_eq!(checks.len(), NAMES.len());
    for check in checks {
        for field in ["transport", "name", "meaning", "fix", "status"] {
            assert!(check[field].is_string(), "{field} in {check}");
        }
        assert_eq!(check["kind"], "limit", "{check}");
        let status = check["status"].as_str().unwrap();
        assert!(["ok", "tight", "unusable"].contains(&status), "{check}");
    }
}

/// In a network namespace of its own the loopback starts down, and tcp to 127.0.0.1 cannot
/// work: doctor says so (skipped where namespaces cannot be made).
#[test]
fn loopback_down_in_a_fresh_network_namespace_is_flagged() {
    let ns = format!("ipc-test-doctor-{}", std::process::id());
    let made = Command::new("ip").args(["netns", "add", &ns]).output();
    if !made.is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: cannot make network namespaces here");
        return;
    }
    let out = Command::new("ip")
        .args(["netns", "exec", &ns, env!("CARGO_BIN_EXE_ipc"), "doctor"])
        .output();
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    let out = out.expect("running ipc doctor in the namespace");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("loopback is down"), "{text}");
}
