//! Self-checking messages: each one says who sent it and its sequence number, and ends with a
//! seal, so a receiver in any process can tell a lost, duplicated, reordered, truncated or
//! interleaved message from a good one without being told what to expect.
//!
//! Layout: `writer: u32 LE`, `seq: u64 LE`, body, `seal: u64 LE`. The body is a pseudo-random
//! function of `(writer, seq)` and the seal one of `(writer, seq, length)`, so the receiver
//! regenerates both and compares every byte: a damaged header, body or seal, a message cut short
//! or run on, and a well-formed message delivered to the wrong place all show.
//!
//! No checksum runs over the bytes: the suite is built unoptimised, where a byte-at-a-time hash
//! of the megabyte messages was most of what the slowest tests spent. The comparison is one
//! `memcmp`.

use crate::process::Progress;

/// Bytes of a message that are not body: writer, sequence number and seal.
pub const OVERHEAD: usize = 4 + 8 + 8;

/// The seed of a randomised test: the environment variable `var` if set, else one from the
/// clock and pid. Printed (`--nocapture` shows it) so that a failure can be replayed.
pub fn seed(test: &str, var: &str) -> u64 {
    let seed = std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock after 1970");
            now.as_nanos() as u64 ^ u64::from(std::process::id()) << 32
        });
    eprintln!("{test}: {var}={seed}");
    seed
}

/// One step of SplitMix64: a cheap, well-mixed generator for sizes and bodies.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Fills `out` with the bytes of stream `seed`: a block of 1 KiB of pseudo-random bytes, then
/// copies of it, each with its first 8 bytes replaced by a pseudo-random function of the seed and
/// the copy's place. So every byte depends on the seed, and a block moved, lost or repeated shows.
/// Copying blocks rather than drawing every word keeps megabyte messages cheap unoptimised.
pub fn fill(seed: u64, out: &mut [u8]) {
    let (block, copies) = out.split_at_mut(out.len().min(BLOCK));
    let mut state = seed;
    let mut words = block.chunks_exact_mut(8);
    for word in &mut words {
        word.copy_from_slice(&splitmix64(&mut state).to_le_bytes());
    }
    let tail = words.into_remainder();
    tail.copy_from_slice(&splitmix64(&mut state).to_le_bytes()[..tail.len()]);
    for copy in copies.chunks_mut(BLOCK) {
        copy.copy_from_slice(&block[..copy.len()]);
        let mark = splitmix64(&mut state).to_le_bytes();
        let n = copy.len().min(8);
        copy[..n].copy_from_slice(&mark[..n]);
    }
}

/// The length of the pseudo-random block that [`fill`] repeats.
const BLOCK: usize = 1024;

fn body_seed(writer: u32, seq: u64) -> u64 {
    (u64::from(writer) << 48) ^ seq.wrapping_mul(0xA24B_AED4_963E_E407)
}

/// The last 8 bytes of message `seq` of `writer`, `len` bytes long.
fn seal(writer: u32, seq: u64, len: usize) -> u64 {
    let mut state = body_seed(writer, seq) ^ (len as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93);
    splitmix64(&mut state)
}

/// The length of message `seq` of `writer` for a transport carrying at most `max` bytes
/// (`max >= OVERHEAD`): mostly small, so that many messages share a system call; one in
/// sixteen anywhere up to `max`, so that large frames cross buffer boundaries; and some
/// exactly `max`.
pub fn size_for(writer: u32, seq: u64, max: usize) -> usize {
    assert!(
        max >= OVERHEAD,
        "message_size {max} below the {OVERHEAD} bytes of a test message"
    );
    let mut state = body_seed(writer, seq) ^ 0x5EED;
    let roll = splitmix64(&mut state);
    let span = (max - OVERHEAD) as u64 + 1;
    let extra = if seq % 97 == 1 {
        span - 1
    } else if roll % 16 == 0 {
        splitmix64(&mut state) % span
    } else {
        splitmix64(&mut state) % span.min(241)
    };
    OVERHEAD + extra as usize
}

/// Writes message `seq` of `writer`, `len` bytes long (`len >= OVERHEAD`), into `out`.
pub fn encode(writer: u32, seq: u64, len: usize, out: &mut Vec<u8>) {
    assert!(len >= OVERHEAD);
    // A fresh zeroed buffer, not `resize`: unoptimised, `resize` stores the zeros one by one.
    *out = vec![0; len];
    out[..4].copy_from_slice(&writer.to_le_bytes());
    out[4..12].copy_from_slice(&seq.to_le_bytes());
    fill(body_seed(writer, seq), &mut out[12..len - 8]);
    out[len - 8..].copy_from_slice(&seal(writer, seq, len).to_le_bytes());
}

/// Checks a received message and returns its `(writer, seq)`.
pub fn decode(msg: &[u8]) -> Result<(u32, u64), String> {
    let len = msg.len();
    if len < OVERHEAD {
        return Err(format!("message of {len} bytes is shorter than a header"));
    }
    let writer = u32::from_le_bytes(msg[..4].try_into().expect("4 bytes"));
    let seq = u64::from_le_bytes(msg[4..12].try_into().expect("8 bytes"));
    let found = u64::from_le_bytes(msg[len - 8..].try_into().expect("8 bytes"));
    if found != seal(writer, seq, len) {
        return Err(format!(
            "bad seal in a message of {len} bytes: header, length or end damaged (starts {:02x?})",
            &msg[..len.min(16)]
        ));
    }
    let mut expected = vec![0; len - OVERHEAD];
    fill(body_seed(writer, seq), &mut expected);
    if expected != msg[12..len - 8] {
        return Err(format!("writer {writer} seq {seq}: body differs"));
    }
    Ok((writer, seq))
}

/// The one message of the signal tests: writer 9, seq 0, 1000 bytes.
pub fn probe() -> Vec<u8> {
    let mut msg = Vec::new();
    encode(9, 0, 1000, &mut msg);
    msg
}

/// Follows the messages of several writers through one receiver: every message must be
/// intact, and each writer's must arrive exactly once each, in order, starting at 0.
#[derive(Debug)]
pub struct StreamCheck {
    next: Vec<u64>,
    last_writer: Option<u32>,
    switches: u64,
    progress: Progress,
}

impl StreamCheck {
    /// A check for `writers` writers (ids `0..writers`).
    pub fn new(writers: usize) -> StreamCheck {
        StreamCheck {
            next: vec![0; writers],
            last_writer: None,
            switches: 0,
            progress: Progress::new(),
        }
    }

    /// The count of messages accepted, stepped as they are, for a watchdog on a thread that
    /// does not own the check ([`bounded_progress`](crate::process::bounded_progress)).
    pub fn progress(&self) -> Progress {
        self.progress.clone()
    }

    /// Accepts the next received message.
    pub fn accept(&mut self, msg: &[u8]) -> Result<(), String> {
        let (writer, seq) = decode(msg)?;
        let next = self
            .next
            .get_mut(writer as usize)
            .ok_or_else(|| format!("message from unknown writer {writer}"))?;
        if seq != *next {
            return Err(format!(
                "writer {writer}: got seq {seq}, expected {next} (lost, duplicated or reordered)"
            ));
        }
        *next += 1;
        if self.last_writer.is_some_and(|w| w != writer) {
            self.switches += 1;
        }
        self.last_writer = Some(writer);
        self.progress.step();
        Ok(())
    }

    /// Messages of `writer` accepted so far.
    pub fn count(&self, writer: u32) -> u64 {
        self.next.get(writer as usize).copied().unwrap_or(0)
    }

    /// How many times consecutive messages came from different writers: evidence that the
    /// writers were really concurrent.
    pub fn switches(&self) -> u64 {
        self.switches
    }

    /// Total messages accepted so far.
    pub fn total(&self) -> u64 {
        self.next.iter().sum()
    }

    /// Checks that every writer's `per_writer` messages all arrived.
    pub fn finish(&self, per_writer: u64) -> Result<(), String> {
        for (writer, &got) in self.next.iter().enumerate() {
            if got != per_writer {
                return Err(format!(
                    "writer {writer}: {got} messages arrived, {per_writer} were sent"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_and_detect_damage() {
        let mut buf = Vec::new();
        for seq in 0..200 {
            let len = size_for(3, seq, 5000);
            assert!((OVERHEAD..=5000).contains(&len));
            encode(3, seq, len, &mut buf);
            assert_eq!(decode(&buf), Ok((3, seq)));
        }
        // A flipped bit in the writer, the sequence number, the body or the seal.
        for at in [0, 5, 50, 95] {
            encode(1, 7, 100, &mut buf);
            buf[at] ^= 1;
            assert!(decode(&buf).is_err(), "damage at byte {at} passed");
        }
        encode(1, 7, 100, &mut buf);
        assert!(decode(&buf[..99]).is_err(), "a message cut short passed");
        buf.push(0);
        assert!(decode(&buf).is_err(), "a message run on passed");
        // Message 8's body is not message 7's, even under message 7's header and seal.
        encode(1, 8, 100, &mut buf);
        buf[4..12].copy_from_slice(&7u64.to_le_bytes());
        buf[92..].copy_from_slice(&seal(1, 7, 100).to_le_bytes());
        assert!(
            decode(&buf).is_err(),
            "a message under another's header passed"
        );
    }

    #[test]
    fn a_block_of_the_body_out_of_place_is_caught() {
        let mut buf = Vec::new();
        let len = OVERHEAD + 4 * BLOCK;
        let block = |k: usize| 12 + k * BLOCK..12 + (k + 1) * BLOCK;
        // Two copies of the repeated block swapped, then one in place of another.
        encode(2, 3, len, &mut buf);
        let (first, second) = (buf[block(1)].to_vec(), buf[block(2)].to_vec());
        buf[block(1)].copy_from_slice(&second);
        buf[block(2)].copy_from_slice(&first);
        assert!(decode(&buf).is_err(), "swapped blocks passed");
        encode(2, 3, len, &mut buf);
        let third = buf[block(3)].to_vec();
        buf[block(2)].copy_from_slice(&third);
        assert!(decode(&buf).is_err(), "a repeated block passed");
    }

    #[test]
    fn stream_check_catches_loss_and_duplicates() {
        let mut buf = Vec::new();
        let mut check = StreamCheck::new(2);
        encode(0, 0, 30, &mut buf);
        check.accept(&buf).unwrap();
        assert!(check.accept(&buf).is_err(), "duplicate accepted");
        encode(1, 1, 30, &mut buf);
        assert!(check.accept(&buf).is_err(), "gap accepted");
        assert!(check.finish(1).is_err());
    }
}
