//! The low-level pieces every command is made of: quoted identifiers and escaped literals.
//!
//! Invariant: whatever the input text, each function returns exactly one KQL token (or one
//! bracketed identifier) whose decoded value is the input. Escaping follows the rules of
//! Kusto's own `KustoFacts.GetSingleQuotedStringLiteral` (quote, backslash, `\n`, `\r`, `\t`,
//! `\a`, `\b`, `\f`) and writes any other control character as `\uXXXX`, which the parser
//! decodes, so no raw line break or control byte ever reaches the command text.

use std::fmt::Write as _;
use std::time::Duration;

use time::{OffsetDateTime, UtcOffset};

/// `['name']`: an identifier that may contain anything, quoted the one way Kusto always accepts.
pub fn ident(name: &str) -> String {
    format!("[{}]", string_literal(name))
}

/// `'text'` with every character that could end or bend the literal escaped.
pub fn string_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        push_escaped(&mut out, c);
    }
    out.push('\'');
    out
}

/// `h'text'`: a string literal Kusto hides from its logs and command history; used for
/// storage connection strings, which can carry keys or SAS tokens.
pub fn obfuscated_string_literal(text: &str) -> String {
    format!("h{}", string_literal(text))
}

/// `datetime(2024-01-15T10:00:00.1234567Z)`, in UTC with Kusto's 100 ns precision.
pub fn datetime_literal(at: OffsetDateTime) -> String {
    format!("datetime({})", iso_datetime(at))
}

/// `time(1.02:03:04.5000000)`: days, hours, minutes, seconds and 100 ns ticks. Kusto has no
/// finer unit, so anything below 100 ns is dropped.
pub fn timespan_literal(span: Duration) -> String {
    format!("time({})", timespan_text(span))
}

/// `1.02:03:04.5000000`: a timespan as Kusto writes it inside JSON policies.
pub fn timespan_text(span: Duration) -> String {
    let secs = span.as_secs();
    let ticks = span.subsec_nanos() / 100;
    format!(
        "{}.{:02}:{:02}:{:02}.{ticks:07}",
        secs / 86_400,
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    )
}

/// `true` or `false`.
pub fn bool_literal(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}

/// `2024-01-15T10:00:00.1234567Z`: the ISO form Kusto writes and reads, for use inside
/// string-valued properties such as `creationTime`.
pub fn iso_datetime(at: OffsetDateTime) -> String {
    let t = at.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond() / 100
    )
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\'' => out.push_str("\\'"),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        // Line and paragraph separators are not control characters, but some tools treat
        // them as line breaks; keep the command visibly one line.
        c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
            // Every control character is in the BMP, so four hex digits always suffice.
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        }
        c => out.push(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn hostile_identifiers_stay_one_identifier() {
        for (name, quoted) in [
            ("T", "['T']"),
            ("'); .drop table X", r"['\'); .drop table X']"),
            ("a']b", r"['a\']b']"),
            ("\"", "['\"']"),
            ("\\", r"['\\']"),
            ("x\\'", r"['x\\\'']"),
            ("line\nbreak\r\n", r"['line\nbreak\r\n']"),
            ("tab\tbell\u{7}nul\u{0}", r"['tab\tbell\anul\u0000']"),
            ("del\u{7f}sep\u{2028}", r"['del\u007fsep\u2028']"),
            ("Täbelle 表", "['Täbelle 表']"),
            ("emoji 😀", "['emoji 😀']"),
            ("]", "[']']"),
            ("", "['']"),
        ] {
            assert_eq!(ident(name), quoted, "{name:?}");
        }
    }

    #[test]
    fn escaped_text_has_no_raw_quote_or_line_break() {
        let nasty = "a'b\\'c\n.drop table X\r\u{0}\u{1b}[31m'";
        let lit = string_literal(nasty);
        let inner = &lit[1..lit.len() - 1];
        assert!(!inner.contains('\n') && !inner.contains('\r') && !inner.contains('\u{1b}'));
        // Every quote inside is preceded by an odd number of backslashes.
        let bytes = inner.as_bytes();
        for (i, b) in bytes.iter().enumerate() {
            if *b == b'\'' {
                let slashes = bytes[..i].iter().rev().take_while(|c| **c == b'\\').count();
                assert_eq!(slashes % 2, 1, "unescaped quote at {i} in {lit}");
            }
        }
    }

    #[test]
    fn obfuscated_literal() {
        assert_eq!(
            obfuscated_string_literal("https://a.blob.core.windows.net/c;managed_identity=system"),
            "h'https://a.blob.core.windows.net/c;managed_identity=system'"
        );
        assert_eq!(obfuscated_string_literal("k'ey"), r"h'k\'ey'");
    }

    #[test]
    fn datetimes_are_utc_with_seven_digits() {
        assert_eq!(
            datetime_literal(datetime!(2024-01-15 10:00:00.123456789 UTC)),
            "datetime(2024-01-15T10:00:00.1234567Z)"
        );
        assert_eq!(
            datetime_literal(datetime!(2024-01-15 12:00:00 +02:00)),
            "datetime(2024-01-15T10:00:00.0000000Z)"
        );
        assert_eq!(
            iso_datetime(datetime!(0001-01-01 00:00:00 UTC)),
            "0001-01-01T00:00:00.0000000Z"
        );
    }

    #[test]
    fn timespans() {
        assert_eq!(
            timespan_literal(Duration::from_secs(300)),
            "time(0.00:05:00.0000000)"
        );
        assert_eq!(
            timespan_literal(Duration::new(93_784, 500_000_099)),
            "time(1.02:03:04.5000000)"
        );
        assert_eq!(timespan_literal(Duration::ZERO), "time(0.00:00:00.0000000)");
    }
}
