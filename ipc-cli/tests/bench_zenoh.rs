//! `ipc bench --transports zenoh`: ours through `zenoh:` strings beside raw Zenoh, as real
//! processes over loopback TCP, with the feature `zenoh` (a large build); without it, a usage
//! error that names the feature.

use std::process::{Command, Stdio};

#[cfg(not(feature = "zenoh"))]
#[test]
fn zenoh_without_its_feature_is_a_usage_error_naming_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_ipc"))
        .stdin(Stdio::null())
        .args(["bench", "--transports", "zenoh", "--sizes", "64"])
        .output()
        .expect("running ipc");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("feature `zenoh`"), "{stderr}");
}

#[cfg(feature = "zenoh")]
#[test]
fn zenoh_row_has_ours_and_the_raw_zenoh_baseline() {
    let out = Command::new(env!("CARGO_BIN_EXE_ipc"))
        .stdin(Stdio::null())
        .args(["bench", "--transports", "zenoh", "--sizes", "64", "--json"])
        .args(["--budget-ms", "400"])
        .output()
        .expect("running ipc");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let records: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .collect();
    assert!(records.iter().all(|r| r["kind"].is_string()), "{stdout}");
    let rows: Vec<_> = records.iter().filter(|r| r["kind"] == "row").collect();
    assert_eq!(rows.len(), 1, "{stdout}");
    let row = rows[0];
    assert_eq!(row["transport"], "zenoh", "{row}");
    assert_eq!(row["size"], 64, "{row}");
    // Both sides measured: round trips and a stream, ours at the top level, raw under `raw`.
    for m in [row, &row["raw"]] {
        let samples = m["rtt_samples"].as_u64().unwrap_or(0);
        assert!(samples > 0, "rtt_samples in {row}");
        let p50 = m["rtt_p50_ns"].as_u64().unwrap_or(0);
        assert!(
            p50 > 0 && p50 <= m["rtt_p99_ns"].as_u64().unwrap_or(0),
            "{row}"
        );
        let rate = m["msgs_per_s"].as_f64().unwrap_or(0.0);
        assert!(rate > 0.0, "msgs_per_s in {row}");
    }
}
