//! How `ipc send` reads messages from standard input and `ipc recv` prints them (`--format`).
//!
//! A message is any bytes, so each format says how it keeps them whole:
//!
//! * `lines` (the default): one message per line, without its `\n`. A message containing `\n`
//!   cannot be one line, so `ipc recv` refuses it (naming the formats that can show it) rather
//!   than print it as two messages; escaping it instead would make a `\` in any other message
//!   ambiguous, and `lines` is for text that a shell pipeline reads as it is.
//! * `raw`: the bytes exactly. `ipc send` sends all of standard input as one message; `ipc
//!   recv` writes one message's bytes with nothing added, and so takes `--count 1`: with
//!   several, nothing would mark where one ends (use `hex` or `json` for a stream).
//! * `hex`: one line of lowercase hex digits per message (an empty line is an empty message);
//!   `ipc send` reads the same (upper case accepted).
//! * `json` (`ipc recv` only): one object per line, `{"kind":"message","len":N,"hex":"…"}`,
//!   plus `"priority"` (posix-mq) or `"type"` (sysv-mq) when the transport has one, and
//!   `"from"` with `--label`.

use std::io::{self, Write};

/// A format of `ipc recv --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// One message per line; a message containing a newline is an error.
    Lines,
    /// One message's bytes exactly, nothing added (needs --count 1).
    Raw,
    /// One line of hex digits per message.
    Hex,
    /// One JSON object per message: {"kind":"message","len":N,"hex":"…"}, with "priority" or
    /// "type".
    Json,
}

/// A format of `ipc send --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Input {
    /// Each line of standard input is one message, without its newline.
    Lines,
    /// All of standard input is one message.
    Raw,
    /// Each line of standard input is one message in hex digits (as `ipc recv --format hex`
    /// prints).
    Hex,
}

/// What kind of tag a message carries besides its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    /// A posix-mq priority.
    Priority(u32),
    /// A sysv-mq `mtype`.
    Type(i64),
}

/// One received message, with what is known about it.
pub struct Message<'a> {
    /// The bytes.
    pub bytes: &'a [u8],
    /// Its priority or type, where the transport has one.
    pub tag: Option<Tag>,
    /// Printed before the message (`--show`: the tag; `--label`: the transport string).
    pub prefix: Vec<String>,
    /// `--label`: the transport string it came from (for `json`).
    pub from: Option<&'a str>,
}

/// Why a message could not be printed.
pub enum PrintError {
    /// Writing standard output failed.
    Io(io::Error),
    /// The message cannot be shown in this format (a newline in `lines`).
    Unprintable(String),
}

impl From<io::Error> for PrintError {
    fn from(e: io::Error) -> PrintError {
        PrintError::Io(e)
    }
}

/// Prints `msg` in `format` and flushes, so that a consumer sees each message as it arrives.
pub fn print(out: &mut impl Write, format: Output, msg: &Message<'_>) -> Result<(), PrintError> {
    match format {
        Output::Lines => {
            if msg.bytes.contains(&b'\n') {
                return Err(PrintError::Unprintable(
                    "it contains a newline, which --format lines would print as two messages; \
                     use --format hex, json or raw"
                        .into(),
                ));
            }
            write_prefix(out, &msg.prefix)?;
            out.write_all(msg.bytes)?;
            out.write_all(b"\n")?;
        }
        Output::Raw => out.write_all(msg.bytes)?,
        Output::Hex => {
            write_prefix(out, &msg.prefix)?;
            out.write_all(hex(msg.bytes).as_bytes())?;
            out.write_all(b"\n")?;
        }
        Output::Json => {
            let record = JsonMessage {
                kind: "message",
                len: msg.bytes.len(),
                hex: hex(msg.bytes),
                priority: match msg.tag {
                    Some(Tag::Priority(p)) => Some(p),
                    _ => None,
                },
                r#type: match msg.tag {
                    Some(Tag::Type(t)) => Some(t),
                    _ => None,
                },
                from: msg.from,
            };
            let mut line = crate::text::json_line(&record);
            line.push('\n');
            out.write_all(line.as_bytes())?;
        }
    }
    out.flush()?;
    Ok(())
}

fn write_prefix(out: &mut impl Write, prefix: &[String]) -> io::Result<()> {
    for part in prefix {
        out.write_all(part.as_bytes())?;
        out.write_all(b"\t")?;
    }
    Ok(())
}

/// Lowercase hex digits, two per byte.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        text.push(char::from(DIGITS[usize::from(b >> 4)]));
        text.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    text
}

/// The bytes of a line of hex digits (either case); `None` if it is not one.
pub fn unhex(text: &[u8]) -> Option<Vec<u8>> {
    fn digit(c: u8) -> Option<u8> {
        char::from(c).to_digit(16).map(|d| d as u8)
    }
    if text.len() % 2 != 0 {
        return None;
    }
    text.chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// One line of `ipc recv --format json`. Absent keys are left out, not `null`, as before.
#[derive(serde::Serialize)]
struct JsonMessage<'a> {
    kind: &'static str,
    len: usize,
    hex: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    r#type: Option<i64>,
    /// `--label`: the transport string, which may hold `"`, `\` or controls.
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(unhex(hex(&all).as_bytes()).unwrap(), all);
        assert_eq!(unhex(b"0A0b").unwrap(), vec![10, 11]);
        assert!(unhex(b"abc").is_none());
        assert!(unhex(b"zz").is_none());
        assert_eq!(unhex(b"").unwrap(), Vec::<u8>::new());
    }
}
