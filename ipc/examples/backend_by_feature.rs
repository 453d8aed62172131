//! The backend chosen at build time by cargo features: the code is the same whichever
//! transport the build includes.
//!
//! ```text
//! cargo run -p ipc --example backend_by_feature                                    # posix-shm
//! cargo run -p ipc --example backend_by_feature --no-default-features --features fifo
//! ```

use ipc::{Receiver, Sender};

/// The fastest transport this build has.
fn transport() -> String {
    let id = std::process::id();
    if cfg!(feature = "posix") {
        format!("posix-shm:/ipc-example-{id}")
    } else if cfg!(feature = "sysv") {
        format!("sysv-mq:key={:#x}", 0x1e00_0000 | (id & 0xffff))
    } else {
        format!("fifo:/tmp/ipc-example-{id}.fifo")
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let spec = transport();
    println!(
        "transports in this build: {:?}",
        ipc::available_transports()
    );
    println!("using {spec}");
    let mut rx = ipc::open_receiver(&spec)?;
    let sender = std::thread::spawn({
        let spec = spec.clone();
        move || -> ipc::Result<()> {
            let mut tx = ipc::open_sender(&spec)?;
            tx.send(b"same code, any backend")
        }
    });
    let mut buf = vec![0; rx.max_message_size()];
    let n = rx.recv(&mut buf)?;
    println!("received {:?}", String::from_utf8_lossy(&buf[..n]));
    sender.join().expect("sender thread")?;
    Ok(())
}
