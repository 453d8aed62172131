//! `posix-mq:` — a POSIX message queue, with priorities.
//!
//! `cargo run -p ipc --example posix_mq_priorities`
//!
//! Messages of higher priority overtake queued ones of lower priority. The receiver created the
//! queue, so it removes it when dropped.

use ipc::Wait;
use ipc::posix::mq::{MqReceiver, MqSender};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let spec = format!("posix-mq:/ipc-example-{}?capacity=8", std::process::id()).parse()?;
    let mut rx = MqReceiver::open(&spec)?;
    let mut tx = MqSender::open(&spec)?;
    tx.send_priority(b"routine", 1, Wait::Forever)?;
    tx.send_priority(b"urgent", 9, Wait::Forever)?;
    let mut buf = vec![0; 8192];
    for _ in 0..2 {
        let (n, prio) = rx.recv_priority(&mut buf, Wait::Forever)?;
        println!("priority {prio}: {:?}", String::from_utf8_lossy(&buf[..n]));
    }
    Ok(())
}
