//! Throughput and round-trip latency of small messages over `tcp:127.0.0.1`, to see what the
//! transport's flow control costs: `cargo run --release -p ipc-socket --example tcp_small
//! [-- MESSAGES ROUND_TRIPS [SIZE [CAPACITY]]]` (SIZE: bytes a message, default 64; CAPACITY:
//! the senders' `capacity` option, default none). Prints one line:
//! messages per second one way, and the median round trip in microseconds (a ping over one
//! connection, the pong over another).

use std::thread;
use std::time::{Duration, Instant};

use ipc_core::{Error, Receiver, Sender};
use ipc_socket::{TcpReceiver, TcpSender};

fn pair(capacity: Option<usize>) -> Result<(TcpSender, TcpReceiver), Error> {
    let rx = TcpReceiver::open(&"tcp:127.0.0.1:0".parse()?)?;
    let mut spec = rx.spec().clone();
    spec.options.capacity = capacity.map(|c| c as u64);
    let tx = TcpSender::open(&spec)?;
    Ok((tx, rx))
}

/// Messages per second from one sender to one receiver, each in its own thread.
fn throughput(messages: usize, len: usize, capacity: Option<usize>) -> Result<f64, Error> {
    let (mut tx, mut rx) = pair(capacity)?;
    let start = Instant::now();
    let receiver = thread::spawn(move || -> Result<usize, Error> {
        let mut buf = vec![0; len];
        let mut got = 0;
        loop {
            match rx.recv_timeout(&mut buf, Duration::from_secs(10)) {
                Ok(_) => got += 1,
                Err(Error::Disconnected) => return Ok(got),
                Err(e) => return Err(e),
            }
        }
    });
    let msg = vec![7; len];
    for _ in 0..messages {
        tx.send_timeout(&msg, Duration::from_secs(10))?;
    }
    drop(tx);
    let got = receiver.join().expect("receiver thread")?;
    assert_eq!(got, messages, "messages lost");
    Ok(messages as f64 / start.elapsed().as_secs_f64())
}

/// Median round trip in microseconds.
fn latency(round_trips: usize, len: usize, capacity: Option<usize>) -> Result<f64, Error> {
    let (mut ping_tx, mut ping_rx) = pair(capacity)?;
    let (mut pong_tx, mut pong_rx) = pair(capacity)?;
    let echo = thread::spawn(move || -> Result<(), Error> {
        let mut buf = vec![0; len];
        loop {
            match ping_rx.recv_timeout(&mut buf, Duration::from_secs(10)) {
                Ok(n) => pong_tx.send_timeout(&buf[..n], Duration::from_secs(10))?,
                Err(Error::Disconnected) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    });
    let msg = vec![7; len];
    let mut buf = vec![0; len];
    let mut times = Vec::with_capacity(round_trips);
    for _ in 0..round_trips {
        let start = Instant::now();
        ping_tx.send_timeout(&msg, Duration::from_secs(10))?;
        pong_rx.recv_timeout(&mut buf, Duration::from_secs(10))?;
        times.push(start.elapsed());
    }
    drop(ping_tx);
    echo.join().expect("echo thread")?;
    times.sort();
    Ok(times[times.len() / 2].as_secs_f64() * 1e6)
}

fn main() -> Result<(), Error> {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("a count"));
    let messages = args.next().unwrap_or(1_000_000);
    let round_trips = args.next().unwrap_or(20_000);
    let len = args.next().unwrap_or(64);
    let capacity = args.next();
    let rate = throughput(messages, len, capacity)?;
    let rtt = latency(round_trips, len, capacity)?;
    println!("{len} B: {rate:.0} msg/s one way, median round trip {rtt:.1} us");
    Ok(())
}
