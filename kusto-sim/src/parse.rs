//! Parsers for management commands and queries, sharing one token cursor.

pub mod command;
pub mod expr;
pub mod query;

use crate::error::SimError;
use crate::lexer::{Tok, Token, tokenize};

/// Why kusto-sim's parser refuses `text` (a management command when it starts with `.`, else a
/// query): a syntax error, or valid Kusto that kusto-sim does not implement. `None` when it
/// parses; errors found later, while running, are not refusals of the text.
pub fn refusal(text: &str) -> Option<String> {
    let parsed = if text.trim_start().starts_with('.') {
        command::parse_command(text).map(drop)
    } else {
        query::parse_query(text).map(drop)
    };
    match parsed {
        Err(e @ (SimError::Syntax(_) | SimError::NotSupported(_))) => Some(e.to_string()),
        _ => None,
    }
}

/// A cursor over the tokens of one request text.
pub struct Parser<'a> {
    pub text: &'a str,
    toks: Vec<Token>,
    pos: usize,
}

impl<'a> Parser<'a> {
    pub fn new(text: &'a str) -> Result<Self, SimError> {
        Ok(Self {
            text,
            toks: tokenize(text)?,
            pos: 0,
        })
    }

    pub fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    pub fn peek_at(&self, ahead: usize) -> Option<&Tok> {
        self.toks.get(self.pos + ahead).map(|t| &t.tok)
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.toks.len()
    }

    pub fn advance(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|t| t.tok.clone());
        self.pos += 1;
        t
    }

    /// Byte offset of the next token (end of text when none).
    pub fn offset(&self) -> usize {
        self.toks.get(self.pos).map_or(self.text.len(), |t| t.start)
    }

    /// The unparsed rest of the text, consuming every remaining token.
    pub fn take_rest(&mut self) -> &'a str {
        let from = self.offset();
        self.pos = self.toks.len();
        &self.text[from..]
    }

    pub fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Some(Tok::Punct(x)) if *x == p)
    }

    pub fn eat_punct(&mut self, p: &str) -> bool {
        let hit = self.is_punct(p);
        if hit {
            self.pos += 1;
        }
        hit
    }

    pub fn expect_punct(&mut self, p: &str) -> Result<(), SimError> {
        if self.eat_punct(p) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("'{p}'")))
        }
    }

    /// True if the next token is the bare keyword `kw` (case-insensitive); for dashed
    /// keywords like `create-or-alter` the pieces must be adjacent.
    pub fn is_kw(&self, kw: &str) -> bool {
        self.kw_len(kw).is_some()
    }

    fn kw_len(&self, kw: &str) -> Option<usize> {
        let mut n = 0;
        let mut end: Option<usize> = None;
        for (i, piece) in kw.split('-').enumerate() {
            if i > 0 {
                let dash = self.toks.get(self.pos + n)?;
                if dash.tok != Tok::Punct("-") || Some(dash.start) != end {
                    return None;
                }
                end = Some(dash.end);
                n += 1;
            }
            let t = self.toks.get(self.pos + n)?;
            match &t.tok {
                Tok::Ident(w) if w.eq_ignore_ascii_case(piece) => {}
                _ => return None,
            }
            if i > 0 && Some(t.start) != end {
                return None;
            }
            end = Some(t.end);
            n += 1;
        }
        Some(n)
    }

    pub fn eat_kw(&mut self, kw: &str) -> bool {
        match self.kw_len(kw) {
            Some(n) => {
                self.pos += n;
                true
            }
            None => false,
        }
    }

    pub fn expect_kw(&mut self, kw: &str) -> Result<(), SimError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.unexpected(&format!("'{kw}'")))
        }
    }

    /// An entity name: bare identifier or `['quoted']`.
    pub fn name(&mut self) -> Result<String, SimError> {
        match self.peek() {
            Some(Tok::Ident(n) | Tok::Quoted(n)) => {
                let n = n.clone();
                self.pos += 1;
                Ok(n)
            }
            _ => Err(self.unexpected("a name")),
        }
    }

    /// A string literal of any form.
    pub fn string(&mut self) -> Result<String, SimError> {
        match self.peek() {
            Some(Tok::Str(s)) => {
                let s = s.clone();
                self.pos += 1;
                Ok(s)
            }
            _ => Err(self.unexpected("a string literal")),
        }
    }

    /// `( a, b, ... )` where each item is parsed by `item`.
    pub fn paren_list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, SimError>,
    ) -> Result<Vec<T>, SimError> {
        self.expect_punct("(")?;
        let mut out = Vec::new();
        if self.eat_punct(")") {
            return Ok(out);
        }
        loop {
            out.push(item(self)?);
            if self.eat_punct(")") {
                return Ok(out);
            }
            self.expect_punct(",")?;
        }
    }

    pub fn expect_end(&self) -> Result<(), SimError> {
        if self.at_end() {
            Ok(())
        } else {
            Err(self.unexpected("end of text"))
        }
    }

    pub fn unexpected(&self, wanted: &str) -> SimError {
        let found = match self.toks.get(self.pos) {
            Some(t) => format!("'{}'", &self.text[t.start..t.end]),
            None => "end of text".to_string(),
        };
        SimError::Syntax(format!(
            "expected {wanted}, found {found} at position {}",
            self.offset()
        ))
    }
}
