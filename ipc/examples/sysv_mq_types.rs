//! `sysv-mq:` — a System V message queue, selecting messages by type.
//!
//! `cargo run -p ipc --example sysv_mq_types`
//!
//! The queue is made with a private key, so nothing else can collide with it; the receiver
//! created it and removes it when dropped.

use ipc::Wait;
use ipc::sysv::msg::{MsgReceiver, MsgSender, Selector};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rx = MsgReceiver::open(&"sysv-mq:private".parse()?)?;
    let mut tx = MsgSender::open_id(rx.msqid(), 0o600)?;
    tx.send_type(b"log line", 2, Wait::Forever)?;
    tx.send_type(b"order", 1, Wait::Forever)?;
    let mut buf = vec![0; 8192];
    // Orders first, whatever was queued before them.
    let (n, mtype) = rx.recv_type(&mut buf, Selector::Exactly(1), Wait::Forever)?;
    println!("type {mtype}: {:?}", String::from_utf8_lossy(&buf[..n]));
    let (n, mtype) = rx.recv_type(&mut buf, Selector::Any, Wait::Forever)?;
    println!("type {mtype}: {:?}", String::from_utf8_lossy(&buf[..n]));
    Ok(())
}
