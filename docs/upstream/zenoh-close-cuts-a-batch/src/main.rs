//! A publisher that closes its session right after its last `put` over a congested TCP link:
//! the subscriber gets a torn message (Zenoh wire bytes inside a payload) and loses the rest.
//!
//! `zenoh-close-repro recv tcp/ADDR:PORT N` listens and checks N messages;
//! `zenoh-close-repro send tcp/ADDR:PORT N` connects, puts N messages, closes at once.
//! Each message is `seq (u64 LE) | filler | FNV-1a of the rest (u64 LE)`, 20 to 4096 bytes.
use std::time::{Duration, Instant};

use zenoh::qos::CongestionControl;
use zenoh::{Config, Wait};

const KEY: &str = "repro/close";
/// The subscriber's queue, and how long its reader spends on each message: a slow reader
/// keeps the publisher's socket full, so that `close` finds a batch half written.
const QUEUE: usize = 16;
const PAUSE: Duration = Duration::from_micros(100);

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn message(seq: u64) -> Vec<u8> {
    let len = 20 + (seq.wrapping_mul(2_654_435_761) % 4077) as usize;
    let mut m = vec![0u8; len];
    m[..8].copy_from_slice(&seq.to_le_bytes());
    for (i, b) in m[8..len - 8].iter_mut().enumerate() {
        *b = (seq as usize).wrapping_mul(31).wrapping_add(i) as u8;
    }
    let sum = fnv(&m[..len - 8]);
    m[len - 8..].copy_from_slice(&sum.to_le_bytes());
    m
}

fn config(listen: Option<&str>, connect: Option<&str>) -> Config {
    let list = |e: Option<&str>| e.map_or("[]".to_string(), |e| format!("[\"{e}\"]"));
    let mut c = Config::default();
    for (key, value) in [
        ("mode", "\"peer\"".to_string()),
        ("listen/endpoints", list(listen)),
        ("connect/endpoints", list(connect)),
        ("scouting/multicast/enabled", "false".into()),
        ("transport/unicast/qos/enabled", "false".into()),
        // The publisher may start before the subscriber listens: retry for up to 10 s.
        ("connect/timeout_ms", "10000".into()),
        (
            "connect/retry",
            "{period_init_ms: 20, period_max_ms: 200, period_increase_factor: 2}".into(),
        ),
    ] {
        c.insert_json5(key, &value).unwrap();
    }
    c
}

fn send(endpoint: &str, n: u64) {
    let session = zenoh::open(config(None, Some(endpoint))).wait().unwrap();
    let publisher = session
        .declare_publisher(KEY)
        .congestion_control(CongestionControl::Block)
        .wait()
        .unwrap();
    let start = Instant::now();
    while !publisher.matching_status().wait().unwrap().matching() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no subscriber came"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    for seq in 0..n {
        publisher.put(message(seq)).wait().unwrap();
    }
    drop(publisher);
    session.close().wait().unwrap();
    println!("sent {n}");
}

fn recv(endpoint: &str, n: u64) {
    let session = zenoh::open(config(Some(endpoint), None)).wait().unwrap();
    let (tx, rx) = flume::bounded(QUEUE);
    let _subscriber = session
        .declare_subscriber(KEY)
        .callback(move |sample| {
            let _ = tx.send(sample.payload().to_bytes().into_owned());
        })
        .wait()
        .unwrap();
    let (mut got, mut torn, mut out_of_order) = (0u64, 0u64, 0u64);
    let mut first_problem = None;
    let mut wait = Duration::from_secs(30);
    while let Ok(m) = rx.recv_timeout(wait) {
        wait = Duration::from_secs(3);
        let seq = u64::from_le_bytes(m[..8].try_into().unwrap());
        let len = m.len();
        if len < 16 || fnv(&m[..len - 8]).to_le_bytes() != m[len - 8..] {
            torn += 1;
            first_problem.get_or_insert(format!("message {got} ({len} B) torn"));
        } else if seq != got {
            out_of_order += 1;
            first_problem.get_or_insert(format!("message {got} has seq {seq}"));
        }
        got += 1;
        let t = Instant::now();
        while t.elapsed() < PAUSE {
            std::hint::spin_loop();
        }
        if got == n {
            break;
        }
    }
    let ok = got == n && torn == 0 && out_of_order == 0;
    println!(
        "{} got {got} of {n}, torn {torn}, out of order {out_of_order}{}",
        if ok { "OK" } else { "FAIL" },
        first_problem
            .map(|p| format!(": first {p}"))
            .unwrap_or_default()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n = args[3].parse().unwrap();
    match args[1].as_str() {
        "send" => send(&args[2], n),
        "recv" => recv(&args[2], n),
        other => panic!("role {other}: send or recv"),
    }
}
