//! Tokenizer for the KQL and management-command text kusto-sim accepts.
//!
//! Every token keeps its byte span so the parser can join adjacent pieces
//! (`create-or-alter`, `exported-artifacts`) and slice raw text (`<| query`).

use uuid::Uuid;

use crate::error::SimError;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// A bare identifier or keyword.
    Ident(String),
    /// `['name']` / `["name"]`: never a keyword.
    Quoted(String),
    /// Any string literal form, already unescaped.
    Str(String),
    /// Integer or real number text.
    Number(String),
    /// A timespan literal such as `5m`, in ticks.
    Span(i64),
    /// A bare GUID, as in `.show operations 3b4c0ab2-...`.
    Guid(Uuid),
    /// A typed literal such as `datetime(2024-01-15 10:00)`: the type word and the raw text
    /// between the parentheses.
    Typed(String, String),
    /// Operators and punctuation.
    Punct(&'static str),
    /// Everything after `<|`: a query, a nested command or inline data, parsed (or not)
    /// by whoever consumes it.
    Raw(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

const PUNCTS: &[&str] = &[
    "<|", "==", "!=", "<>", "<=", ">=", "=~", "!~", "..", "|", "(", ")", "[", "]", "{", "}", ",",
    ":", "=", "<", ">", "+", "-", "*", "/", "%", ".", ";", "!", "~",
];

/// Words that, directly followed by `(`, start a literal whose body is raw text.
const TYPED_LITERALS: &[&str] = &[
    "datetime", "date", "time", "timespan", "guid", "dynamic", "decimal", "real", "double", "long",
    "int", "bool", "boolean",
];

pub fn tokenize(text: &str) -> Result<Vec<Token>, SimError> {
    let mut lx = Lexer {
        text,
        pos: 0,
        out: Vec::new(),
    };
    lx.run()?;
    Ok(lx.out)
}

/// `text` with every hidden string literal (`h'..'`, `h@'..'`, ...) replaced by `h'*****'`
/// (prefix and quote kept, so the text still parses), as Kusto keeps them out of its logs.
/// A hidden literal that doesn't end hides the rest of the text.
pub fn redact_hidden(text: &str) -> String {
    let mut lx = Lexer {
        text,
        pos: 0,
        out: Vec::new(),
    };
    let mut redacted = String::with_capacity(text.len());
    while let Some(c) = lx.rest().chars().next() {
        let start = lx.pos;
        let after_word = text[..start]
            .chars()
            .next_back()
            .is_some_and(|p| p.is_alphanumeric() || p == '_');
        let literal_start =
            matches!(c, '\'' | '"' | '@') || (matches!(c, 'h' | 'H') && !after_word);
        if lx.rest().starts_with("//") {
            lx.pos += lx.rest().find('\n').unwrap_or(lx.rest().len());
            redacted.push_str(&text[start..lx.pos]);
            continue;
        }
        if !literal_start {
            lx.pos += c.len_utf8();
            redacted.push(c);
            continue;
        }
        let hidden = matches!(c, 'h' | 'H');
        match lx.string_literal() {
            Ok(None) => {
                lx.pos += c.len_utf8();
                redacted.push(c);
            }
            Ok(Some(_)) if !hidden => redacted.push_str(&text[start..lx.pos]),
            Ok(Some(_)) => redacted.push_str(&hidden_placeholder(&text[start..])),
            Err(_) if hidden => {
                redacted.push_str(&hidden_placeholder(&text[start..]));
                return redacted;
            }
            Err(_) => {
                redacted.push_str(&text[start..]);
                return redacted;
            }
        }
    }
    redacted
}

/// `h'*****'` with the literal's own prefix letter, `@` and quote.
fn hidden_placeholder(literal: &str) -> String {
    let head: String = literal
        .chars()
        .take_while(|c| !matches!(c, '\'' | '"'))
        .collect();
    let quote = literal[head.len()..].chars().next().unwrap_or('\'');
    format!("{head}{quote}*****{quote}")
}

struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    out: Vec<Token>,
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        let text: &'a str = self.text;
        &text[self.pos..]
    }

    fn push(&mut self, tok: Tok, start: usize) {
        self.out.push(Token {
            tok,
            start,
            end: self.pos,
        });
    }

    fn run(&mut self) -> Result<(), SimError> {
        while let Some(c) = self.rest().chars().next() {
            let start = self.pos;
            if c.is_whitespace() {
                self.pos += c.len_utf8();
            } else if self.rest().starts_with("//") {
                self.pos += self.rest().find('\n').unwrap_or(self.rest().len());
            } else if let Some(tok) = self.string_literal()? {
                self.push(tok, start);
            } else if self.rest().starts_with("['") || self.rest().starts_with("[\"") {
                self.pos += 1;
                let name = self.quoted_body()?;
                if !self.rest().starts_with(']') {
                    return Err(syntax("expected ']' after a quoted name", start));
                }
                self.pos += 1;
                self.push(Tok::Quoted(name), start);
            } else if let Some(g) = self.guid() {
                self.push(Tok::Guid(g), start);
            } else if c.is_ascii_digit() {
                let tok = self.number()?;
                self.push(tok, start);
            } else if c.is_alphabetic() || c == '_' || c == '$' {
                let len = self
                    .rest()
                    .find(|ch: char| !(ch.is_alphanumeric() || ch == '_' || ch == '$'))
                    .unwrap_or(self.rest().len());
                let word = self.rest()[..len].to_string();
                self.pos += len;
                let tok = match self.typed_literal_body(&word)? {
                    Some(raw) => Tok::Typed(word.to_ascii_lowercase(), raw),
                    None => Tok::Ident(word),
                };
                self.push(tok, start);
            } else if let Some(p) = PUNCTS.iter().find(|p| self.rest().starts_with(**p)) {
                self.pos += p.len();
                self.push(Tok::Punct(p), start);
                if *p == "<|" {
                    self.raw_rest();
                    return Ok(());
                }
            } else {
                return Err(syntax(&format!("unexpected character '{c}'"), start));
            }
        }
        Ok(())
    }

    fn raw_rest(&mut self) {
        let rest = self.rest();
        let body = rest.trim_start();
        if body.is_empty() {
            return;
        }
        let start = self.pos + (rest.len() - body.len());
        self.pos = self.text.len();
        self.push(Tok::Raw(body.to_string()), start);
    }

    /// After a typed-literal word: if `(` follows, the raw text up to the matching `)`.
    fn typed_literal_body(&mut self, word: &str) -> Result<Option<String>, SimError> {
        if !TYPED_LITERALS.iter().any(|w| w.eq_ignore_ascii_case(word)) {
            return Ok(None);
        }
        let r = self.rest();
        let open = r.len() - r.trim_start().len();
        if !r[open..].starts_with('(') {
            return Ok(None);
        }
        let (mut depth, mut quote) = (0usize, None::<char>);
        for (i, c) in r[open..].char_indices() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '(') => depth += 1,
                (None, ')') => {
                    depth -= 1;
                    if depth == 0 {
                        let body = r[open + 1..open + i].trim().to_string();
                        self.pos += open + i + 1;
                        return Ok(Some(body));
                    }
                }
                _ => {}
            }
        }
        Err(syntax("unterminated literal", self.pos))
    }

    /// `'..'`, `".."`, with optional `h`/`H` (obfuscated) and `@` (verbatim) prefixes.
    fn string_literal(&mut self) -> Result<Option<Tok>, SimError> {
        let r = self.rest();
        let mut skip = 0;
        if r.starts_with(['h', 'H']) {
            skip = 1;
        }
        let verbatim = r[skip..].starts_with('@');
        if verbatim {
            skip += 1;
        }
        if !r[skip..].starts_with(['\'', '"']) {
            return Ok(None);
        }
        self.pos += skip;
        let s = if verbatim {
            self.verbatim_body()?
        } else {
            self.quoted_body()?
        };
        Ok(Some(Tok::Str(s)))
    }

    /// Body of a `'..'` or `".."` literal with backslash escapes; `pos` is on the quote.
    /// Scanned and decoded as Kusto.Language does (`TokenParser.ScanStringLiteralContent`,
    /// `KustoFacts.GetStringLiteralValue`): an escape it doesn't know, or a raw line break,
    /// ends the token, so both are syntax errors here.
    fn quoted_body(&mut self) -> Result<String, SimError> {
        let start = self.pos;
        let body = self.rest();
        let Some(quote) = body.chars().next() else {
            return Err(syntax("expected a quote", start));
        };
        let mut units: Vec<u16> = Vec::new();
        let mut i = quote.len_utf8();
        while let Some(c) = body[i..].chars().next() {
            if c == quote {
                self.pos += i + 1;
                return String::from_utf16(&units)
                    .map_err(|_| syntax("a \\u escape leaves a lone UTF-16 surrogate", start));
            }
            match c {
                '\r' | '\n' => return Err(syntax("a line break ends a string literal", start)),
                '\\' => {
                    let (len, decoded) = escape(&body[i..])
                        .ok_or_else(|| syntax("invalid escape sequence", start + i))?;
                    units.extend(decoded);
                    i += len;
                }
                c => {
                    let mut buf = [0u16; 2];
                    units.extend_from_slice(c.encode_utf16(&mut buf));
                    i += c.len_utf8();
                }
            }
        }
        Err(syntax("unterminated string literal", start))
    }

    /// Body of `@'..'`: no escapes, a doubled quote stands for one quote.
    fn verbatim_body(&mut self) -> Result<String, SimError> {
        let start = self.pos;
        let mut chars = self.rest().char_indices().peekable();
        let Some((_, quote)) = chars.next() else {
            return Err(syntax("expected a quote", start));
        };
        let mut out = String::new();
        while let Some((i, c)) = chars.next() {
            if c != quote {
                out.push(c);
            } else if chars.peek().map(|(_, n)| *n) == Some(quote) {
                chars.next();
                out.push(quote);
            } else {
                self.pos += i + 1;
                return Ok(out);
            }
        }
        Err(syntax("unterminated string literal", start))
    }

    fn guid(&mut self) -> Option<Uuid> {
        let r = self.rest();
        let candidate = r.get(..36)?;
        let shape_ok = candidate.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        });
        let boundary = r[36..].chars().next().is_none_or(|c| !c.is_alphanumeric());
        if !(shape_ok && boundary) {
            return None;
        }
        let g = Uuid::parse_str(candidate).ok()?;
        self.pos += 36;
        Some(g)
    }

    fn number(&mut self) -> Result<Tok, SimError> {
        let start = self.pos;
        let r = self.rest();
        let mut len = r.bytes().take_while(u8::is_ascii_digit).count();
        let b = r.as_bytes();
        // A '.' followed by a digit continues the number; '..' is the range operator.
        if b.get(len) == Some(&b'.') && b.get(len + 1).is_some_and(u8::is_ascii_digit) {
            len += 1 + r[len + 1..].bytes().take_while(u8::is_ascii_digit).count();
        }
        if matches!(b.get(len), Some(b'e' | b'E'))
            && b.get(len + 1)
                .is_some_and(|c| c.is_ascii_digit() || *c == b'-' || *c == b'+')
        {
            len += 2 + r[len + 2..].bytes().take_while(u8::is_ascii_digit).count();
        }
        let unit_len = r[len..]
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(r.len() - len);
        if unit_len == 0 {
            self.pos += len;
            return Ok(Tok::Number(r[..len].to_string()));
        }
        let literal = &r[..len + unit_len];
        let ticks = crate::value::temporal::parse_span_literal(literal)
            .ok_or_else(|| syntax(&format!("invalid literal '{literal}'"), start))?;
        self.pos += len + unit_len;
        Ok(Tok::Span(ticks))
    }
}

/// One escape at the start of `s` (which starts with `\\`): the bytes it takes and the UTF-16
/// units it stands for; `None` when Kusto.Language's `ScanStringEscape` rejects it. Octal
/// follows the parser's split between scanning (1-3 octal digits, 3 only from `\\0`..`\\3`)
/// and decoding (up to 3 decimal digits, each shifting by 3 bits), so `'\\400'` is U+0100.
fn escape(s: &str) -> Option<(usize, Vec<u16>)> {
    let b = s.as_bytes();
    let simple = |u: u8| Some((2, vec![u16::from(u)]));
    match *b.get(1)? {
        c @ (b'\\' | b'\'' | b'"') => simple(c),
        b'a' => simple(0x07),
        b'b' => simple(0x08),
        b'f' => simple(0x0c),
        b'n' => simple(b'\n'),
        b'r' => simple(b'\r'),
        b't' => simple(b'\t'),
        b'v' => simple(0x0b),
        b'u' => Some((6, vec![u16::try_from(hex(s, 4)?).ok()?])),
        b'x' => Some((4, vec![u16::try_from(hex(s, 2)?).ok()?])),
        b'U' => {
            // Kusto.Language's .NET build decodes `\\U` with `char.ConvertFromUtf32`, which
            // refuses a value that isn't a Unicode scalar; so does this.
            let c = char::from_u32(hex(s, 8)?)?;
            let mut buf = [0u16; 2];
            Some((10, c.encode_utf16(&mut buf).to_vec()))
        }
        b'0'..=b'7' => {
            let digits = b[1..].iter().take(3).take_while(|d| d.is_ascii_digit());
            let (count, value) = digits.fold((0, 0u16), |(n, v), d| {
                (n + 1, (v << 3) + u16::from(d - b'0'))
            });
            Some((1 + count, vec![value]))
        }
        _ => None,
    }
}

/// The value of exactly `n` hex digits after a two-byte escape prefix (`\\u`, `\\x`, `\\U`).
fn hex(s: &str, n: usize) -> Option<u32> {
    let digits = s.get(2..2 + n)?;
    if !digits.bytes().all(|d| d.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

fn syntax(msg: &str, at: usize) -> SimError {
    SimError::Syntax(format!("{msg} at position {at}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn literals_and_names() {
        assert_eq!(
            toks(r#"['a\'b'] h@'x''y' "q\"z" @"c:\d" 5m 1.5 .."#),
            vec![
                Tok::Quoted("a'b".into()),
                Tok::Str("x'y".into()),
                Tok::Str("q\"z".into()),
                Tok::Str("c:\\d".into()),
                Tok::Span(3_000_000_000),
                Tok::Number("1.5".into()),
                Tok::Punct(".."),
            ]
        );
        assert_eq!(
            toks("datetime(2024-01-15 10:00) x:datetime"),
            vec![
                Tok::Typed("datetime".into(), "2024-01-15 10:00".into()),
                Tok::Ident("x".into()),
                Tok::Punct(":"),
                Tok::Ident("datetime".into()),
            ]
        );
    }

    /// Each case's expected value is what Microsoft's parser (@kusto/language-service-next,
    /// `SyntaxToken.ValueText` of `print <literal>`) gives, as UTF-16 code units; except
    /// `\U`, which that JavaScript build leaves undecoded (`#if !BRIDGE` in
    /// `KustoFacts.DecodeEscapes`) and the .NET build decodes as a code point.
    #[test]
    fn escapes_decode_as_kusto_language_does() {
        let cases: &[(&str, &[u16])] = &[
            (r"'a\\b'", &[97, 92, 98]),
            (r"'\''", &[39]),
            (r#"'\"'"#, &[34]),
            (r#""q\"z""#, &[113, 34, 122]),
            (r#""a\'b""#, &[97, 39, 98]),
            (r"'\a\b\f\n\r\t\v'", &[7, 8, 12, 10, 13, 9, 11]),
            (r"'\u0041\u00e9'", &[65, 233]),
            (r"'\uD83D\uDE00'", &[55357, 56832]),
            (r"'\U0001F600'", &[55357, 56832]),
            (r"'\x41\x7a'", &[65, 122]),
            (r"'\101\0\7'", &[65, 0, 7]),
            (r"'\400'", &[256]),
            (r"'\18'", &[16]),
            (r"'\377\378'", &[255, 256]),
            (r"'\0101'", &[8, 49]),
            (r"'\7777'", &[511, 55]),
            (r"'\\\''", &[92, 39]),
            (r"@'c:\d''e'", &[99, 58, 92, 100, 39, 101]),
            (r#"@"a""b""#, &[97, 34, 98]),
            (r"h's\n'", &[115, 10]),
            (r"H'k'", &[107]),
            (r"h@'x''y'", &[120, 39, 121]),
            (r#"H@"p""q""#, &[112, 34, 113]),
        ];
        for (literal, units) in cases {
            let expected = String::from_utf16(units).unwrap();
            assert_eq!(toks(literal), vec![Tok::Str(expected)], "{literal}");
        }
    }

    /// Texts Microsoft's parser reports "Missing: '" or "Unexpected: \\" for.
    #[test]
    fn unknown_escapes_and_line_breaks_are_syntax_errors() {
        for bad in [
            r"'\q'",
            r"'\8'",
            r"'\u12'",
            r"'\x4'",
            r"'\xZZ'",
            "'x\ny'",
            "'ab\\\r\n'",
            r"'a\'",
        ] {
            assert!(
                matches!(tokenize(bad), Err(SimError::Syntax(_))),
                "{bad:?} must be a syntax error"
            );
        }
    }

    #[test]
    fn hidden_literals_are_redacted_and_the_text_still_parses() {
        let text = ".create external table E (a:long) kind=storage dataformat=parquet (h@'http://a/c;key', H\"s\\n\", 'h', hx'x') with (docString=h'')";
        let redacted = redact_hidden(text);
        assert_eq!(
            redacted,
            ".create external table E (a:long) kind=storage dataformat=parquet (h@'*****', H\"*****\", 'h', hx'x') with (docString=h'*****')"
        );
        assert!(tokenize(&redacted).is_ok());
        assert_eq!(redact_hidden("print h'open"), "print h'*****'");
        assert_eq!(redact_hidden("// h'x'\nprint 1"), "// h'x'\nprint 1");
    }

    #[test]
    fn commands_and_guids() {
        let t = toks(".show operations 3b4c0ab2-180e-46d8-b97e-593e6aea1e7a | where x<|y");
        assert_eq!(t[0], Tok::Punct("."));
        assert!(matches!(t[3], Tok::Guid(_)));
        assert!(t.contains(&Tok::Punct("<|")));
    }

    #[test]
    fn errors_are_reported_not_panics() {
        assert!(tokenize("'open").is_err());
        assert!(tokenize("['x'").is_err());
        assert!(tokenize("5parsecs").is_err());
        assert!(tokenize("a ` b").is_err());
        assert!(tokenize("h").is_ok());
    }
}
