//! Serde messages with `ipc::typed` (feature `serde`): a struct with strings and vectors,
//! encoded with postcard, over a transport chosen by a transport string.
//!
//! `cargo run -p ipc --example typed_serde -- [SPEC]` (default: a pipe within this process;
//! e.g. `posix-mq:/typed-demo` or `fifo:/tmp/typed-demo.fifo`).

use ipc::typed::{SerdeReceiver, SerdeSender};
use ipc::{Receiver, Sender};
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u32,
    symbol: String,
    fills: Vec<f64>,
    note: Option<String>,
}

fn main() -> ipc::Result<()> {
    let (tx, rx): (Box<dyn Sender>, Box<dyn Receiver>) = match std::env::args().nth(1) {
        Some(spec) => {
            let rx = ipc::open_receiver(&spec)?; // created here, so opened first
            (ipc::open_sender(&spec)?, rx)
        }
        None => {
            let (tx, rx) = ipc::pipe::channel(&ipc::pipe::PipeConfig::default())?;
            (Box::new(tx), Box::new(rx))
        }
    };
    let mut tx = SerdeSender::<Order, _>::new(tx);
    let mut rx = SerdeReceiver::<Order, _>::new(rx);
    let order = Order {
        id: 1,
        symbol: "ACME".into(),
        fills: vec![10.0, 10.5],
        note: Some("first".into()),
    };
    tx.send(&order)?;
    let got = rx.recv()?;
    assert_eq!(got, order);
    println!("received {got:?}");
    Ok(())
}
