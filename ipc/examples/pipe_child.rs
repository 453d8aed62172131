//! `pipe:` — an anonymous pipe handed to a child process.
//!
//! `cargo run -p ipc --example pipe_child`
//!
//! The parent makes the pipe, gives the child its sending end (the child finds it through the
//! transport string it is given, `pipe:fd=N`), and receives until the child exits.

use std::process::Command;

use ipc::pipe::{PipeConfig, channel};
use ipc::{Receiver, Sender};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Some(spec) = std::env::args().nth(1) {
        // The child: `spec` is `pipe:fd=N`, the inherited end.
        let mut tx = ipc::open_sender(&spec)?;
        for word in ["from", "the", "child"] {
            tx.send(word.as_bytes())?;
        }
        return Ok(());
    }
    let (tx, mut rx) = channel(&PipeConfig::default())?;
    let mut cmd = Command::new(std::env::current_exe()?);
    let inherited = tx.inherit(&mut cmd)?;
    cmd.arg(inherited.spec().to_string());
    let mut child = cmd.spawn()?;
    // Only the child may hold the sending end, or we would never see it close.
    drop(inherited);
    let mut buf = vec![0; rx.max_message_size()];
    loop {
        match rx.recv(&mut buf) {
            Ok(n) => println!("received {:?}", String::from_utf8_lossy(&buf[..n])),
            Err(ipc::Error::Disconnected) => break,
            Err(e) => return Err(e.into()),
        }
    }
    child.wait()?;
    Ok(())
}
