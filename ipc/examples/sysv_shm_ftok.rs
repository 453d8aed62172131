//! `sysv-shm:` — the ring in a System V segment named by `ftok`, as C programs name theirs.
//!
//! `cargo run -p ipc --example sysv_shm_ftok`

use ipc::{Receiver, Sender};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // ftok needs an existing path; each run uses its own file, so its own key.
    let path = std::env::temp_dir().join(format!("ipc-example-{}.key", std::process::id()));
    std::fs::write(&path, b"")?;
    let spec = format!("sysv-shm:ftok={}:0x66?capacity=64KiB", path.display());
    {
        let mut rx = ipc::open_receiver(&spec)?; // creates the segment, removes it when dropped
        let mut tx = ipc::open_sender(&spec)?;
        tx.send(b"hello from System V")?;
        let mut buf = vec![0; rx.max_message_size()];
        let n = rx.recv(&mut buf)?;
        println!("received {:?}", String::from_utf8_lossy(&buf[..n]));
    }
    std::fs::remove_file(&path)?;
    Ok(())
}
