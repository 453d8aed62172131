//! `WaitSet`: one thread receiving from four transports at once.
//!
//! `cargo run -p ipc --example wait_set`
//!
//! The parent opens a posix-shm ring, a FIFO, a POSIX queue and a System V queue, puts the four
//! receivers in one `WaitSet`, and starts one child process per transport (this program again,
//! with `feed SPEC COUNT`), each sending numbered messages. The parent receives from whichever
//! is ready, checks that every message came once and in order, and exits 0.

use std::collections::HashMap;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use ipc::{Key, Sender, Wait, WaitSet};

const COUNT: u64 = 1000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("feed") {
        return feed(&args[2], args[3].parse()?);
    }
    let pid = std::process::id();
    let specs = [
        format!("posix-shm:/ipc-wait-set-{pid}?capacity=16KiB"),
        format!("fifo:/tmp/ipc-wait-set-{pid}.fifo?message_size=256"),
        format!("posix-mq:/ipc-wait-set-{pid}?capacity=8&message_size=256"),
        format!(
            "sysv-mq:key={:#x}?capacity=8&message_size=256",
            0x5753_0000 | (pid & 0xffff)
        ),
    ];
    let mut set = WaitSet::new();
    let mut names: HashMap<Key, &str> = HashMap::new();
    for spec in &specs {
        // The receivers create the objects (and remove them when dropped).
        let key = set.add_receiver(ipc::open_receiver(spec)?)?;
        names.insert(key, spec.split(':').next().unwrap_or(spec));
    }
    let mut children: Vec<Child> = specs
        .iter()
        .map(|spec| {
            Command::new(std::env::current_exe()?)
                .args(["feed", spec, &COUNT.to_string()])
                .spawn()
        })
        .collect::<Result<_, _>>()?;

    let deadline = Instant::now() + Duration::from_secs(20);
    let mut next: HashMap<Key, u64> = names.keys().map(|&k| (k, 0)).collect();
    let mut buf = vec![0; 64 * 1024];
    while next.values().any(|&n| n < COUNT) {
        let (key, got) = set.recv(&mut buf, Wait::Until(deadline))?;
        match got {
            Ok(len) => {
                let seq: u64 = std::str::from_utf8(&buf[..len])?.parse()?;
                let expected = next.get_mut(&key).expect("every key is counted");
                if seq != *expected {
                    return Err(format!("{}: got {seq}, expected {expected}", names[&key]).into());
                }
                *expected += 1;
            }
            // A pipe or ring whose sender finished: nothing more will come from it.
            Err(ipc::Error::Disconnected) => {
                set.remove(key);
            }
            Err(e) => return Err(e.into()),
        }
    }
    for child in &mut children {
        let status = child.wait()?;
        if !status.success() {
            return Err(format!("a feeder failed: {status}").into());
        }
    }
    for (key, name) in &names {
        println!("{name:>9}: {} messages, in order", next[key]);
    }
    Ok(())
}

/// A child: sends `count` numbered messages on `spec`.
fn feed(spec: &str, count: u64) -> Result<(), Box<dyn std::error::Error>> {
    let mut tx = ipc::open_sender(spec)?;
    for seq in 0..count {
        tx.send_timeout(seq.to_string().as_bytes(), Duration::from_secs(10))?;
    }
    Ok(())
}
