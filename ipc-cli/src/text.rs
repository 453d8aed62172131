//! Text the command shows: what it echoes to a terminal, and JSON strings.
//!
//! Names, paths and transport strings come from the command line or from the system
//! (`/dev/shm`, `/dev/mqueue`, `/etc/passwd`), so they may hold control characters; written raw,
//! an ESC or a CSI (U+009B) would drive the terminal (recolour it, move the cursor, retitle
//! the window). Everything the command prints for people goes through [`escape`]; message
//! payloads that `ipc recv` prints are data, not echo, and go out as they came.

use std::borrow::Cow;
use std::fmt::Write as _;

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

/// `s` as a JSON string, quotes included. Besides what JSON requires (`"`, `\` and C0), DEL
/// and C1 are written as `\u00XX` too: JSON lines end up on terminals as well.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_control(c) => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
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
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\\n"), r#""a\"b\\\n""#);
        assert_eq!(json_string("d\u{1}"), r#""d\u0001""#);
        assert_eq!(
            json_string("\x1b[31m\x7f\u{9b}é"),
            "\"\\u001b[31m\\u007f\\u009bé\""
        );
        let all: String = (0..0x200).filter_map(char::from_u32).collect();
        let quoted = json_string(&all);
        assert!(!quoted.chars().any(is_control), "{quoted:?}");
    }
}
