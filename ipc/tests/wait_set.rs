//! `WaitSet` with several members: turns, departures, and senders waiting for room.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ipc::{Error, Receiver, Sender, Wait, WaitSet};

/// A posix-shm ring name no other test (or run) uses; the receiver that creates it removes it.
fn ring_spec(query: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!(
        "posix-shm:/ipc-waitset-test-{}-{n}{query}",
        std::process::id()
    )
}

fn deadline() -> Wait {
    Wait::timeout(Duration::from_secs(10))
}

#[test]
fn a_busy_member_does_not_starve_the_others_and_a_departed_one_says_so() {
    let (a, b) = (ring_spec(""), ring_spec(""));
    let mut set = WaitSet::new();
    let key_a = set.add_receiver(ipc::open_receiver(&a).unwrap()).unwrap();
    let key_b = set.add_receiver(ipc::open_receiver(&b).unwrap()).unwrap();
    let mut tx_a = ipc::open_sender(&a).unwrap();
    let mut tx_b = ipc::open_sender(&b).unwrap();
    for i in 0..100u8 {
        tx_a.send(&[i]).unwrap();
    }
    tx_b.send(b"b").unwrap();
    let mut buf = [0u8; 64];
    // Turns: b's one message comes within the first two, however many a holds.
    let first_two: Vec<_> = (0..2)
        .map(|_| set.recv(&mut buf, deadline()).unwrap().0)
        .collect();
    assert!(first_two.contains(&key_b), "{first_two:?}");
    // a's messages still come whole and in order.
    drop(tx_a);
    let mut next = 1u8;
    loop {
        match set.recv(&mut buf, deadline()).unwrap() {
            (key, Ok(n)) if key == key_a => {
                assert_eq!(&buf[..n], &[next]);
                next += 1;
            }
            (key, Err(Error::Disconnected)) if key == key_a => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(next, 100);
    assert!(set.remove(key_a).is_some());
    // Only b is left, quiet: a short wait times out, and a message ends it.
    assert!(matches!(
        set.recv(&mut buf, Wait::timeout(Duration::from_millis(30))),
        Err(Error::Timeout)
    ));
    tx_b.send(b"again").unwrap();
    let (key, got) = set.recv(&mut buf, deadline()).unwrap();
    assert_eq!((key, &buf[..got.unwrap()]), (key_b, &b"again"[..]));
    assert!(matches!(set.recv(&mut buf, Wait::Never), Err(Error::Empty)));
}

#[test]
fn a_sender_member_is_ready_when_room_frees() {
    let spec = ring_spec("?capacity=1KiB");
    let mut rx = ipc::open_receiver(&spec).unwrap();
    let mut set = WaitSet::new();
    let key = set.add_sender(ipc::open_sender(&spec).unwrap()).unwrap();
    let tx = set.sender(key).unwrap();
    while tx.try_send(&[1; 100]).is_ok() {}
    // Readiness may be reported spuriously (the first look of a fresh doorbell), never for
    // long: the set soon sleeps until its deadline.
    let mut slept = false;
    for _ in 0..4 {
        match set.wait(Wait::timeout(Duration::from_millis(30))) {
            Err(Error::Timeout) => {
                slept = true;
                break;
            }
            Ok(_) => assert!(matches!(
                set.sender(key).unwrap().try_send(&[1; 100]),
                Err(Error::Full)
            )),
            Err(e) => panic!("{e}"),
        }
    }
    assert!(slept, "the set never slept on a full ring");
    let mut buf = [0u8; 256];
    while rx.try_recv(&mut buf).is_ok() {}
    assert_eq!(set.wait(deadline()).unwrap(), &[key]);
    set.sender(key).unwrap().try_send(&[1; 100]).unwrap();
    // recv leaves senders alone: with no receiver in the set there is nothing to wait for.
    assert!(matches!(set.recv(&mut buf, deadline()), Err(Error::Empty)));
}
