//! An application that reads its transport from configuration, so that switching from a FIFO
//! to another transport is a change of one line, not of code.
//!
//! ```text
//! cargo run -p ipc --example config_transport                      # default: a FIFO in /tmp
//! IPC_TRANSPORT='fifo:/tmp/other.fifo?message_size=1KiB' cargo run -p ipc --example config_transport
//! ```
//!
//! The process plays both parts (it re-executes itself as the sender) so that the example runs
//! on its own.

use std::process::Command;

use ipc::{Receiver, Sender};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let default = format!("fifo:/tmp/ipc-example-{}.fifo", std::process::id());
    let transport = std::env::var("IPC_TRANSPORT").unwrap_or(default);

    if std::env::var_os("IPC_EXAMPLE_SENDER").is_some() {
        let mut tx = ipc::open_sender(&transport)?;
        for line in ["one", "two", "three"] {
            tx.send(line.as_bytes())?;
        }
        return Ok(()); // dropping the sender tells the receiver we are done
    }

    let mut rx = ipc::open_receiver(&transport)?;
    let mut sender = Command::new(std::env::current_exe()?)
        .env("IPC_EXAMPLE_SENDER", "1")
        .env("IPC_TRANSPORT", &transport)
        .spawn()?;
    let mut buf = vec![0; rx.max_message_size()];
    loop {
        match rx.recv(&mut buf) {
            Ok(n) => println!("received {:?}", String::from_utf8_lossy(&buf[..n])),
            Err(ipc::Error::Disconnected) => break,
            Err(e) => return Err(e.into()),
        }
    }
    sender.wait()?;
    Ok(())
}
