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
        // Without --async every row is the blocking calls'.
        assert_eq!(row["api"], "blocking", "{row}");
        assert!(row["blocking"].is_null(), "{row}");
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
    // The readiness column only comes with --async.
    assert!(!lines[0].contains("vs blocking"), "{stdout}");
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
fn plot_into_a_missing_directory_fails_with_the_path_before_measuring() {
    // A budget of 20 s: failing within a few seconds can only mean failing before the run.
    let started = std::time::Instant::now();
    let out = run(ipc().args([
        "bench",
        "--transports",
        "pipe",
        "--sizes",
        "64",
        "--budget-ms",
        "20000",
        "--plot",
        "/nonexistent-ipc-bench-dir/x.svg",
    ]));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(!out.status.success());
    assert!(text(&out.stdout).is_empty(), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("/nonexistent-ipc-bench-dir/x.svg"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_size_no_buffer_could_hold_is_refused_before_measuring() {
    let out = run(ipc().args(["bench", "--transports", "pipe", "--sizes", "64,10GiB"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("10GiB") && stderr.contains("64 MiB"),
        "{stderr}"
    );
    assert!(text(&out.stdout).is_empty());
    // 64 MiB itself is accepted: what fails here is the unknown transport, not the size.
    let out = run(ipc().args(["bench", "--sizes", "64MiB", "--transports", "nosuch"]));
    assert!(
        !text(&out.stderr).contains("limit"),
        "{}",
        text(&out.stderr)
    );
}

/// Each row's transport and api.
fn names(rows: &[serde_json::Value]) -> Vec<(&str, &str)> {
    rows.iter()
        .map(|r| (r["transport"].as_str().unwrap(), r["api"].as_str().unwrap()))
        .collect()
}

/// The rows of `ipc bench --json` output that are measurements (not references).
fn measured_rows(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is JSON"))
        .filter(|row: &serde_json::Value| row["transport"].is_string())
        .collect()
}

#[test]
fn async_rows_sit_under_their_blocking_rows_with_the_ratios_to_them() {
    let out = run(ipc().args([
        "bench",
        "--transports",
        "pipe,posix-shm-park",
        "--sizes",
        "64",
        "--async",
        "--json",
        "--budget-ms",
        "200",
    ]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let rows = measured_rows(&stdout);
    let names = names(&rows);
    assert_eq!(
        names,
        [
            ("pipe", "blocking"),
            ("pipe", "async"),
            ("pipe", "wait-set"),
            ("posix-shm-park", "blocking"),
            ("posix-shm-park", "async"),
            ("posix-shm-park", "wait-set"),
        ],
        "{stdout}"
    );
    for group in rows.chunks(3) {
        let blocking = &group[0];
        assert!(blocking["blocking"].is_null(), "{blocking}");
        for row in &group[1..] {
            assert_eq!(row["size"], 64, "{row}");
            let f = |m: &serde_json::Value, key: &str| {
                m[key].as_f64().unwrap_or_else(|| panic!("{key} in {row}"))
            };
            assert!(
                f(row, "rtt_p50_ns") > 0.0 && f(row, "msgs_per_s") > 0.0,
                "{row}"
            );
            assert!(row["rtt_samples"].as_u64() >= Some(200), "{row}");
            for (key, side) in [("rtt_cpu_ns", "echo"), ("msg_cpu_ns", "receiver")] {
                assert!(row[key][side].as_f64().is_some_and(|v| v > 0.0), "{row}");
            }
            // The baseline is the blocking row above, and the ratios are against it (higher =
            // slower, both).
            let base = &row["blocking"];
            assert_eq!(base["rtt_p50_ns"], blocking["rtt_p50_ns"], "{row}");
            assert_eq!(base["msgs_per_s"], blocking["msgs_per_s"], "{row}");
            let close = |got: f64, want: f64| (got - want).abs() <= want * 1e-2 + 1e-3;
            let rtt = f(row, "rtt_p50_ns") / f(blocking, "rtt_p50_ns");
            assert!(close(f(base, "rtt_p50_ratio"), rtt), "{row}");
            let rate = f(blocking, "msgs_per_s") / f(row, "msgs_per_s");
            assert!(close(f(base, "throughput_ratio"), rate), "{row}");
            // The same raw baseline: measured once per cell.
            assert_eq!(row["raw"], blocking["raw"], "{row}");
        }
    }
    // The floors come from the blocking row's raw baseline, once.
    let floors: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .filter(|l: &serde_json::Value| l["reference"] == "floors")
        .collect();
    assert_eq!(floors.len(), 1, "{stdout}");
    assert_eq!(floors[0]["futex_rtt_p50_ns"], rows[3]["raw"]["rtt_p50_ns"]);
}

#[test]
fn async_table_has_a_vs_blocking_column_and_the_plot_a_line_per_row() {
    let svg = TempFile::new("async-plot.svg");
    let out = run(ipc()
        .args([
            "bench",
            "--transports",
            "posix-mq",
            "--sizes",
            "64",
            "--async",
            "--budget-ms",
            "200",
            "--plot",
        ])
        .arg(&svg.0));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<_> = stdout.lines().collect();
    assert!(lines[0].ends_with("vs blocking"), "{stdout}");
    let labels: Vec<_> = lines[1..4]
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(
        labels,
        ["posix-mq", "posix-mq+async", "posix-mq+wait-set"],
        "{stdout}"
    );
    // The blocking row has no ratio to itself; the others have rtt/throughput.
    assert!(lines[1].ends_with(" -"), "{stdout}");
    for line in &lines[2..4] {
        let last = line.split_whitespace().last().unwrap();
        let ratios: Vec<_> = last.split('/').collect();
        assert_eq!(ratios.len(), 2, "{line}");
        for ratio in ratios {
            let x: f64 = ratio.strip_suffix('x').unwrap().parse().unwrap();
            assert!(x > 0.0, "{line}");
        }
    }
    // Every row lines up with the header: the size column ends where "size" does.
    let size_end = lines[0].find("size").unwrap() + 4;
    for line in &lines[1..4] {
        assert_eq!(line.find(" 64 ").map(|i| i + 3), Some(size_end), "{stdout}");
    }
    assert!(lines.iter().any(|l| l.starts_with("+async: ")), "{stdout}");
    let content = std::fs::read_to_string(&svg.0).expect("the plot file");
    let doc = roxmltree::Document::parse(&content).expect("the SVG is well-formed XML");
    let texts: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(str::trim))
        .collect();
    for wanted in ["posix-mq", "posix-mq+async", "posix-mq+wait-set"] {
        assert!(texts.contains(&wanted), "{wanted}: {texts:?}");
    }
}

/// The stdout of `ipc bench ARGS --budget-ms 200`, which must succeed.
fn bench(args: &[&str]) -> String {
    let out = run(ipc().arg("bench").args(args).args(["--budget-ms", "200"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// The measured rows of `ipc bench ARGS --json --budget-ms 200`.
fn bench_json(args: &[&str]) -> Vec<serde_json::Value> {
    measured_rows(&bench(&[args, &["--json"]].concat()))
}

/// A positive figure of `m`, or a panic naming it.
fn positive(m: &serde_json::Value, key: &str) -> f64 {
    let value = m[key].as_f64().unwrap_or_else(|| panic!("{key} in {m}"));
    assert!(value > 0.0, "{key} in {m}");
    value
}

#[test]
fn socket_rows_stand_beside_their_raw_loops() {
    let rows = bench_json(&["--transports", "unix,tcp,socketpair", "--sizes", "64,4096"]);
    let cells: Vec<(&str, u64)> = rows
        .iter()
        .map(|r| {
            (
                r["transport"].as_str().unwrap(),
                r["size"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        cells,
        [
            ("unix", 64),
            ("unix", 4096),
            ("tcp", 64),
            ("tcp", 4096),
            ("socketpair", 64),
            ("socketpair", 4096),
        ]
    );
    for row in &rows {
        for m in [row, &row["raw"]] {
            positive(m, "rtt_p50_ns");
            positive(m, "msgs_per_s");
        }
    }
}

#[test]
fn batch_rows_are_one_way_with_their_ratio_to_the_raw_loop() {
    let rows = bench_json(&["--transports", "pipe,tcp", "--sizes", "64", "--batch"]);
    let names = names(&rows);
    assert_eq!(
        names,
        [
            ("pipe", "blocking"),
            ("pipe", "batch"),
            ("tcp", "blocking"),
            ("tcp", "batch")
        ]
    );
    for pair in rows.chunks(2) {
        let (blocking, batch) = (&pair[0], &pair[1]);
        assert_eq!(batch["kind"], "row");
        assert!(blocking.get("batch").is_none(), "{blocking}");
        // One way only: no round trips of its own; the raw loop is the blocking row's.
        assert!(batch["rtt_p50_ns"].is_null(), "{batch}");
        assert_eq!(batch["raw"], blocking["raw"]);
        let rate = positive(batch, "msgs_per_s");
        let raw = positive(&batch["raw"], "msgs_per_s");
        assert_eq!(batch["batch"]["per_call"], 32, "{batch}");
        let ratio = positive(&batch["batch"], "throughput_ratio");
        assert!((ratio - raw / rate).abs() <= 0.01 * ratio, "{batch}");
    }
}

#[test]
fn with_repeat_a_skipped_cell_keeps_its_place_in_the_table() {
    let stdout = bench(&[
        "--transports",
        "pipe-packets",
        "--sizes",
        "64,65536",
        "--repeat",
        "2",
    ]);
    let lines: Vec<_> = stdout.lines().collect();
    assert!(
        lines[1].starts_with("pipe-packets ") && lines[1].contains(" 64 "),
        "{stdout}"
    );
    assert!(
        lines[2].trim_start().starts_with("min–max of 2"),
        "{stdout}"
    );
    assert!(
        lines[3].starts_with("pipe-packets ") && lines[3].contains("65536  n/a ("),
        "{stdout}"
    );
    assert_eq!(
        lines.iter().filter(|l| l.contains("n/a")).count(),
        1,
        "{stdout}"
    );
}

#[test]
fn repeat_gives_medians_of_interleaved_rounds_with_their_ranges() {
    let rows = bench_json(&[
        "--transports",
        "pipe,posix-shm-busy",
        "--sizes",
        "64",
        "--repeat",
        "3",
    ]);
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        let rounds = row["rounds"]["ours"]
            .as_array()
            .expect("each round's figures");
        let raw = row["rounds"]["raw"]
            .as_array()
            .expect("each round's raw figures");
        assert_eq!((rounds.len(), raw.len()), (3, 3), "{row}");
        let mut p50s: Vec<u64> = rounds
            .iter()
            .map(|m| m["rtt_p50_ns"].as_u64().unwrap())
            .collect();
        p50s.sort();
        assert_eq!(row["rtt_p50_ns"].as_u64(), Some(p50s[1]), "{row}");
    }
    // The table: a line of min–max under each row, and the floor of every round.
    let stdout = bench(&[
        "--transports",
        "posix-shm-busy",
        "--sizes",
        "64",
        "--repeat",
        "2",
    ]);
    let lines: Vec<_> = stdout.lines().collect();
    assert!(lines[1].starts_with("posix-shm-busy "), "{stdout}");
    assert!(
        lines[2].trim_start().starts_with("min–max of 2"),
        "{stdout}"
    );
    assert!(
        lines[2].contains("µs–") || lines[2].contains('–'),
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("spin floor") && l.contains("medians of 2 rounds")),
        "{stdout}"
    );
}
