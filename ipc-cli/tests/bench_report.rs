//! `ipc bench`'s report: HDR percentiles, CPU time per message for both processes, and the
//! `--plot` SVG, run as real processes.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The `ipc` binary, with nothing on stdin.
fn ipc() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ipc"));
    cmd.stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("running ipc")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A file path no other test (or test run) uses, removed at the end whatever happened.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> TempFile {
        TempFile(std::env::temp_dir().join(format!(
            "ipc-bench-report-test-{}-{name}",
            std::process::id()
        )))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn json_has_hdr_percentiles_and_cpu_time_of_both_sides() {
    let out = run(ipc().args([
        "bench",
        "--transports",
        "pipe,posix-shm-busy",
        "--sizes",
        "64",
        "--json",
        "--budget-ms",
        "400",
    ]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let rows: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .filter(|row: &serde_json::Value| row["transport"].is_string())
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    for row in &rows {
        for m in [row, &row["raw"]] {
            let ns = |key: &str| m[key].as_u64().unwrap_or_else(|| panic!("{key} in {row}"));
            assert!(ns("rtt_p50_ns") > 0, "{row}");
            assert!(ns("rtt_p50_ns") <= ns("rtt_p99_ns"), "{row}");
            assert!(ns("rtt_p99_ns") <= ns("rtt_p999_ns"), "{row}");
            assert!(ns("rtt_samples") >= 200, "{row}");
            for (key, sides) in [
                ("rtt_cpu_ns", ["initiator", "echo"]),
                ("msg_cpu_ns", ["sender", "receiver"]),
            ] {
                for side in sides {
                    let cpu = m[key][side]
                        .as_f64()
                        .unwrap_or_else(|| panic!("{key}.{side} in {row}"));
                    // Something, and not more than a whole second per message.
                    assert!(cpu > 0.0 && cpu < 1e9, "{key}.{side} in {row}");
                }
            }
        }
    }
    // Busy-polling is not free: the busy ring's echo burns a CPU for the whole round trip,
    // about as long as the round trip itself.
    let busy = &rows[1];
    assert_eq!(busy["transport"], "posix-shm-busy");
    let echo = busy["rtt_cpu_ns"]["echo"].as_f64().unwrap();
    let p50 = busy["rtt_p50_ns"].as_f64().unwrap();
    assert!(echo > p50 / 4.0, "{busy}");
    assert!(text(&out.stderr).contains("total wall time"));
}

#[test]
fn table_has_p999_and_cpu_columns_and_a_1_mib_row() {
    let out = run(ipc().args([
        "bench",
        "--transports",
        "pipe,posix-mq",
        "--sizes",
        "64,1MiB",
        "--budget-ms",
        "400",
    ]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<_> = stdout.lines().collect();
    for column in ["p99.9", "cpu/msg", "raw cpu/msg", "ratio"] {
        assert!(lines[0].contains(column), "{column}: {stdout}");
    }
    assert!(
        lines[1].starts_with("pipe") && lines[1].contains("µs"),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with("pipe") && lines[2].contains("1048576"),
        "{stdout}"
    );
    // Queues cannot take 1 MiB messages (the default limits): the row says why.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("posix-mq") && l.contains("1048576") && l.contains("n/a (")),
        "{stdout}"
    );
    // No progress bar when stderr is not a terminal.
    assert!(
        !text(&out.stderr).contains("cells"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn plot_writes_well_formed_svg() {
    let svg = TempFile::new("plot.svg");
    let out = run(ipc()
        .args([
            "bench",
            "--transports",
            "pipe",
            "--sizes",
            "64,4096",
            "--budget-ms",
            "400",
            "--plot",
        ])
        .arg(&svg.0));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let content = std::fs::read_to_string(&svg.0).expect("the plot file");
    assert!(content.starts_with("<svg"), "{content:.200}");
    let doc = roxmltree::Document::parse(&content).expect("the SVG is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let texts: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(str::trim))
        .collect();
    for wanted in [
        "Round trip p50 by message size",
        "One-way throughput by message size",
        "pipe",
    ] {
        assert!(texts.contains(&wanted), "{wanted}: {texts:?}");
    }
    // The table still goes to stdout, ending with the wall time.
    assert!(
        text(&out.stdout)
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("total wall time")),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn plot_into_a_missing_directory_fails_with_the_path() {
    let out = run(ipc().args([
        "bench",
        "--transports",
        "pipe",
        "--sizes",
        "64",
        "--budget-ms",
        "100",
        "--plot",
        "/nonexistent-ipc-bench-dir/x.svg",
    ]));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("/nonexistent-ipc-bench-dir/x.svg"),
        "{}",
        text(&out.stderr)
    );
}
