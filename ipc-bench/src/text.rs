//! Text the command shows: what it echoes to a terminal, and JSON lines.
//!
//! Names, paths and transport strings come from the command line or from the system
//! (`/dev/shm`, `/dev/mqueue`, `/etc/passwd`), so they may hold control characters; written raw,
//! an ESC or a CSI (U+009B) would drive the terminal (recolour it, move the cursor, retitle
//! the window). Everything the command prints for people goes through [`escape`]; message
//! payloads that `ipc recv` prints are data, not echo, and go out as they came.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write as _};

/// Whether `c` is a control character a terminal might act on: C0 (U+0000..U+001F), DEL
/// (U+007F) or C1 (U+0080..U+009F).
pub fn is_control(c: char) -> bool {
    matches!(c, '\0'..='\x1f' | '\x7f'..='\u{9f}')
}

/// `s` with every control character ([`is_control`]) written as Rust writes it in a string
/// literal: `\t`, `\n`, `\r`, else `\u{1b}`.
///
/// A backslash is left as it is, so that a name without control characters prints exactly
/// (as `ipc clean` takes it), and escaping escaped text changes nothing: an error message
/// can be escaped as a whole even when parts of it were escaped already. The price is that a
/// name holding the six characters `\u{1b}` prints like one holding an ESC; `--json` output
/// tells them apart.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if is_control(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `value` as one line of JSON, through serde_json so that every `--json` output is JSON by
/// construction rather than by hand-assembled `format!` strings. Besides what JSON requires
/// (`"`, `\` and C0 escaped), DEL and C1 in strings are written as `\u00XX` too: JSON lines
/// end up on terminals as well, and a CSI (U+009B) would drive one.
pub fn json_line<T: serde::Serialize + ?Sized>(value: &T) -> String {
    let mut out = Vec::with_capacity(128);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, TerminalSafe);
    // Our records are plain structs, maps with string keys and finite numbers (`json_f64`):
    // serde_json cannot fail on them.
    value.serialize(&mut ser).expect("a JSON record serializes");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// serde_json's compact output, with DEL and C1 escaped as well as what JSON requires.
struct TerminalSafe;

impl serde_json::ser::Formatter for TerminalSafe {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        // serde_json has already escaped `"`, `\` and C0; only DEL and C1 can remain.
        let mut rest = fragment;
        while let Some(i) = rest.find(is_control) {
            let c = rest[i..].chars().next().unwrap_or_default();
            writer.write_all(&rest.as_bytes()[..i])?;
            write!(writer, "\\u{:04x}", u32::from(c))?;
            rest = &rest[i + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }
}

/// `x` as a JSON number with `decimals` decimals kept, or `None` (JSON `null`): JSON has no
/// NaN or infinity, and more digits than were measured would only be noise.
pub fn json_f64(x: f64, decimals: i32) -> Option<f64> {
    let scale = 10f64.powi(decimals);
    x.is_finite().then(|| (x * scale).round() / scale)
}

/// Writes `line`, escaped, as one line on stderr. A stderr that cannot be written to is
/// ignored: `eprintln!` would panic, and there is nowhere left to say so.
pub fn note(line: &str) {
    let _ = writeln!(io::stderr().lock(), "{}", escape(line));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_nothing_else() {
        assert_eq!(escape("posix-shm:/plain é ✓"), "posix-shm:/plain é ✓");
        assert!(matches!(escape("no controls"), Cow::Borrowed(_)));
        assert_eq!(escape("/x\x1b[31m"), "/x\\u{1b}[31m");
        assert_eq!(escape("a\tb\nc\rd"), "a\\tb\\nc\\rd");
        assert_eq!(escape("\0\x01\x1f\x7f"), "\\u{0}\\u{1}\\u{1f}\\u{7f}");
        // C1: CSI (U+009B) starts a sequence on terminals that take 8-bit controls.
        assert_eq!(
            escape("\u{80}\u{9b}\u{9f}\u{a0}"),
            "\\u{80}\\u{9b}\\u{9f}\u{a0}"
        );
        // Backslashes stay, so escaping twice is escaping once.
        assert_eq!(escape("C:\\dir"), "C:\\dir");
        let once = escape("\x1b]0;title\x07");
        assert_eq!(escape(&once), once);
    }

    #[test]
    fn no_control_character_survives_escaping() {
        let all: String = (0..=0x10ffff)
            .filter_map(char::from_u32)
            .take(0x200)
            .collect();
        let escaped = escape(&all);
        assert!(!escaped.chars().any(is_control), "{escaped:?}");
    }

    #[test]
    fn json_strings_are_escaped_for_terminals_too() {
        assert_eq!(json_line("a\"b\\\n"), r#""a\"b\\\n""#);
        assert_eq!(json_line("d\u{1}"), r#""d\u0001""#);
        assert_eq!(
            json_line("\x1b[31m\x7f\u{9b}é"),
            "\"\\u001b[31m\\u007f\\u009bé\""
        );
        let all: String = (0..0x200).filter_map(char::from_u32).collect();
        let quoted = json_line(&all);
        assert!(!quoted.chars().any(is_control), "{quoted:?}");
        let back: String = serde_json::from_str(&quoted).unwrap();
        assert_eq!(back, all);
    }

    #[test]
    fn json_numbers_keep_their_decimals_and_never_nan() {
        assert_eq!(json_f64(1.23456, 1), Some(1.2));
        assert_eq!(json_f64(1.5, 3), Some(1.5));
        assert_eq!(json_f64(f64::NAN, 1), None);
        assert_eq!(json_f64(f64::INFINITY, 1), None);
    }
}
