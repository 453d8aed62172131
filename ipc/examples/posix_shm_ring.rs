//! `posix-shm:` — the shared-memory ring, zero-copy.
//!
//! `cargo run -p ipc --example posix_shm_ring`
//!
//! The sender writes straight into the segment (`loan` / `commit`) and the receiver reads the
//! record where it lies (`recv_in_place`); the copying `Sender` / `Receiver` traits work too.

use ipc::posix::ring::{ShmReceiver, ShmSender};
use ipc::{Receiver, Sender};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let spec = format!(
        "posix-shm:/ipc-example-{}?capacity=64KiB",
        std::process::id()
    )
    .parse()?;
    let mut rx = ShmReceiver::open(&spec)?; // creates the segment; removes it when dropped
    let mut tx = ShmSender::open(&spec)?;

    let mut loan = tx.loan(5)?;
    loan.copy_from_slice(b"loans");
    loan.commit();
    tx.send(b"copies")?;

    println!(
        "in place: {:?}",
        String::from_utf8_lossy(&rx.recv_in_place()?)
    );
    let mut buf = vec![0; rx.max_message_size()];
    let n = rx.recv(&mut buf)?;
    println!("copied:   {:?}", String::from_utf8_lossy(&buf[..n]));
    Ok(())
}
