//! The schema a restore applies: the tables and columns of the snapshot protect stored
//! (`.show database D schema as csl script`), taken apart here and rebuilt by the command
//! builder, so a renamed table gets its new name and nothing from the snapshot's text reaches
//! the target unchecked.
//!
//! Tables and their columns come first (with the IngestionTime policy, which restored rows
//! need to be seen by database cursors); [`plan_objects`] says what happens to the rest:
//! functions, mappings, retention and caching policies with the tables; update policies,
//! row-level security, restricted view access and (when asked) principals after the data;
//! materialized views and anything else reported (docs/design.md, Restore).

mod objects;
mod statements;

pub use objects::{ObjectPlan, Planned, PlannedView, Principals, plan as plan_objects};
pub use statements::{Statement, statements};

use futures::TryStreamExt;
use time::OffsetDateTime;

use crate::ids::{ColumnName, DatabaseName, TableName};
use crate::kusto::KustoType;
use crate::storage::layout::Layout;
use crate::storage::{BlobStore, StorageError};

/// One table of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    pub name: TableName,
    pub columns: Vec<(ColumnName, KustoType)>,
}

impl TableSchema {
    /// The first datetime column: the one protect partitions by unless told otherwise.
    pub fn first_datetime(&self) -> Option<&ColumnName> {
        self.columns
            .iter()
            .find(|(_, ty)| *ty == KustoType::DateTime)
            .map(|(c, _)| c)
    }
}

/// The snapshot to restore from: the newest one taken at or before `as_of` (any, without).
/// Returns its path, or None when there is none.
pub async fn pick_snapshot(
    blobs: &BlobStore,
    layout: &Layout,
    db: &DatabaseName,
    as_of: Option<OffsetDateTime>,
) -> Result<Option<String>, StorageError> {
    let items: Vec<_> = blobs.list(&layout.schema_dir(db)).try_collect().await?;
    let mut best: Option<(OffsetDateTime, String)> = None;
    for item in items {
        let Some(taken) = Layout::schema_snapshot_time(&item.path) else {
            continue;
        };
        if as_of.is_some_and(|t| taken > t) {
            continue;
        }
        if best.as_ref().is_none_or(|(b, _)| taken >= *b) {
            best = Some((taken, item.path));
        }
    }
    Ok(best.map(|(_, path)| path))
}

/// The tables a snapshot script creates. A table statement whose names or types this build
/// cannot read is an error naming the table, never half-applied.
pub fn tables_of(script: &str) -> Result<Vec<TableSchema>, String> {
    Ok(statements(script)?
        .into_iter()
        .filter_map(|s| match s {
            Statement::Table(t) => Some(t),
            _ => None,
        })
        .collect())
}

/// `Name (col:type, ...) with (...)` → the table; Ok(None) when it is not a column list.
fn parse_table(text: &str) -> Result<Option<TableSchema>, String> {
    let mut p = Parser { rest: text };
    let name = p.name()?;
    p.skip_spaces();
    if !p.rest.starts_with('(') {
        return Ok(None);
    }
    let table = TableName::new(name.clone()).map_err(|e| e.to_string())?;
    let columns = p.columns(&name)?;
    Ok(Some(TableSchema {
        name: table,
        columns,
    }))
}

struct Parser<'a> {
    rest: &'a str,
}

impl<'a> Parser<'a> {
    /// `(col:type, ...)`, the columns of table `owner`.
    fn columns(&mut self, owner: &str) -> Result<Vec<(ColumnName, KustoType)>, String> {
        self.expect_char('(')?;
        let mut columns = Vec::new();
        loop {
            self.skip_spaces();
            let column = self.name()?;
            self.skip_spaces();
            if !self.eat(':') {
                return Err(format!("table {owner}: no type after column {column}"));
            }
            let ty_name = self.word();
            let ty = KustoType::parse(&ty_name).ok_or_else(|| {
                format!("table {owner}: column {column} has unknown type {ty_name:?}")
            })?;
            let column = ColumnName::new(column).map_err(|e| format!("table {owner}: {e}"))?;
            columns.push((column, ty));
            self.skip_spaces();
            if self.eat(')') {
                return Ok(columns);
            }
            if !self.eat(',') {
                return Err(format!("table {owner}: column list is not closed"));
            }
        }
    }

    /// Whether a `with (...)` clause comes next.
    fn at_with(&mut self) -> bool {
        self.skip_spaces();
        self.rest.starts_with("with")
            && !self.rest[4..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
    }

    /// A command word such as `.create-or-alter` or `materialized-view`.
    fn word_with_dashes(&mut self) -> String {
        let end = self
            .rest
            .find(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '-')))
            .unwrap_or(self.rest.len());
        let (w, r) = self.rest.split_at(end);
        self.rest = r;
        w.to_owned()
    }

    fn expect_word(&mut self, word: &str) -> Result<(), String> {
        self.skip_spaces();
        let w = self.word();
        if w.eq_ignore_ascii_case(word) {
            Ok(())
        } else {
            Err(format!("expected `{word}` at {:?}", head(self.rest)))
        }
    }

    fn expect_char(&mut self, c: char) -> Result<(), String> {
        self.skip_spaces();
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected `{c}` at {:?}", head(self.rest)))
        }
    }

    /// Nothing but spaces is left.
    fn end(&mut self) -> Result<(), String> {
        self.skip_spaces();
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(format!("unexpected text {:?}", head(self.rest)))
        }
    }

    /// The rest of the text, trimmed; nothing is left after.
    fn rest_text(&mut self) -> String {
        let text = self.rest.trim().to_owned();
        self.rest = "";
        text
    }

    /// Whether a string literal comes next (`'..'`, `".."`, `@'..'`, `h'..'`, `h@'..'`).
    fn at_string(&mut self) -> bool {
        self.skip_spaces();
        let r = self.rest.strip_prefix(['h', 'H']).unwrap_or(self.rest);
        let r = r.strip_prefix('@').unwrap_or(r);
        r.starts_with(['\'', '"'])
    }

    /// A string literal in any of Kusto's forms, decoded.
    fn string(&mut self) -> Result<String, String> {
        if !self.at_string() {
            return Err(format!("expected a string at {:?}", head(self.rest)));
        }
        let r = self.rest.strip_prefix(['h', 'H']).unwrap_or(self.rest);
        let (verbatim, r) = match r.strip_prefix('@') {
            Some(r) => (true, r),
            None => (false, r),
        };
        let mut chars = r.char_indices();
        let Some((_, quote)) = chars.next() else {
            return Err("expected a string".into());
        };
        let mut out = String::new();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' if !verbatim => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, 'r')) => out.push('\r'),
                    Some((_, e)) => out.push(e),
                    None => break,
                },
                q if q == quote => {
                    let after = &r[i + q.len_utf8()..];
                    // A verbatim string writes its quote twice.
                    if verbatim && after.starts_with(quote) {
                        out.push(quote);
                        chars.next();
                        continue;
                    }
                    self.rest = after;
                    return Ok(out);
                }
                c => out.push(c),
            }
        }
        Err(format!("unclosed string at {:?}", head(self.rest)))
    }

    /// The text between `open` (next, after spaces) and its matching `close`, skipping
    /// brackets inside strings and `//` comments.
    fn balanced(&mut self, open: char, close: char) -> Result<String, String> {
        self.skip_spaces();
        let Some(inner) = self.rest.strip_prefix(open) else {
            return Err(format!("expected `{open}` at {:?}", head(self.rest)));
        };
        let chars: Vec<(usize, char)> = inner.char_indices().collect();
        let plain: Vec<char> = chars.iter().map(|(_, c)| *c).collect();
        let mut depth = 1;
        let mut k = 0;
        while k < chars.len() {
            let c = plain[k];
            match c {
                '/' if plain.get(k + 1) == Some(&'/') => {
                    while k < chars.len() && plain[k] != '\n' {
                        k += 1;
                    }
                }
                '\'' | '"' => {
                    let verbatim = k > 0 && plain[k - 1] == '@';
                    k = statements::skip_string(&plain, k, verbatim);
                }
                c if c == open => {
                    depth += 1;
                    k += 1;
                }
                c if c == close => {
                    depth -= 1;
                    if depth == 0 {
                        let at = chars[k].0;
                        let text = inner[..at].trim().to_owned();
                        self.rest = &inner[at + c.len_utf8()..];
                        return Ok(text);
                    }
                    k += 1;
                }
                _ => k += 1,
            }
        }
        Err(format!("`{open}` is never closed"))
    }

    /// `(key = value, ...)` with string or word values.
    fn properties(&mut self) -> Result<Vec<(String, String)>, String> {
        Ok(self
            .literal_properties()?
            .into_iter()
            .map(|(key, value, _)| (key, value))
            .collect())
    }

    /// `(key = value, ...)`: each value a string (decoded; true), a word, or a typed literal
    /// such as `datetime(2026-01-01)` or `dynamic(["a"])` (as written; false).
    fn literal_properties(&mut self) -> Result<Vec<(String, String, bool)>, String> {
        self.expect_char('(')?;
        let mut out = Vec::new();
        loop {
            self.skip_spaces();
            if self.eat(')') {
                return Ok(out);
            }
            let key = self.word();
            self.expect_char('=')?;
            let (value, quoted) = if self.at_string() {
                (self.string()?, true)
            } else {
                self.skip_spaces();
                let word = self.word();
                if self.rest.starts_with('(') {
                    let inner = self.balanced('(', ')')?;
                    (format!("{word}({inner})"), false)
                } else {
                    (word, false)
                }
            };
            out.push((key, value, quoted));
            self.skip_spaces();
            if !self.eat(',') && !self.rest.starts_with(')') {
                return Err(format!("expected `,` or `)` at {:?}", head(self.rest)));
            }
        }
    }

    fn skip_spaces(&mut self) {
        self.rest = self.rest.trim_start();
    }

    fn eat(&mut self, c: char) -> bool {
        match self.rest.strip_prefix(c) {
            Some(r) => {
                self.rest = r;
                true
            }
            None => false,
        }
    }

    fn word(&mut self) -> String {
        let end = self
            .rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(self.rest.len());
        let (w, r) = self.rest.split_at(end);
        self.rest = r;
        w.to_owned()
    }

    /// A bare name, or `['..']` / `[".."]` with `\` escapes.
    fn name(&mut self) -> Result<String, String> {
        self.skip_spaces();
        let Some(quoted) = self.rest.strip_prefix('[') else {
            let w = self.word();
            return if w.is_empty() {
                Err(format!("expected a name at {:?}", head(self.rest)))
            } else {
                Ok(w)
            };
        };
        let mut chars = quoted.char_indices();
        let quote = match chars.next() {
            Some((_, q @ ('\'' | '"'))) => q,
            _ => return Err(format!("expected a quoted name at {:?}", head(self.rest))),
        };
        let mut out = String::new();
        let mut escaped = false;
        for (i, c) in chars {
            if escaped {
                out.push(c);
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == quote {
                let after = &quoted[i + c.len_utf8()..];
                return match after.strip_prefix(']') {
                    Some(r) => {
                        self.rest = r;
                        Ok(out)
                    }
                    None => Err(format!("unclosed name at {:?}", head(self.rest))),
                };
            } else {
                out.push(c);
            }
        }
        Err(format!("unclosed name at {:?}", head(self.rest)))
    }
}

fn head(text: &str) -> String {
    text.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tables_and_columns_and_skips_the_rest() {
        let script = "\
.create-merge table ['Kinds'] (['Timestamp']:datetime, ['B']:bool, ['My Col']:decimal) with (folder = '', docstring = '')
.alter table ['Kinds'] policy ingestiontime true
.create-merge table Plain (a:long, b:string)
.create table Plain ingestion csv mapping 'm' '[]'
.create-or-alter function f() { Plain | take 1 }";
        let tables = tables_of(script).unwrap();
        assert_eq!(tables.len(), 2);
        assert_eq!(tables[0].name.as_str(), "Kinds");
        assert_eq!(
            tables[0]
                .columns
                .iter()
                .map(|(c, t)| format!("{c}:{t}"))
                .collect::<Vec<_>>(),
            ["Timestamp:datetime", "B:bool", "My Col:decimal"]
        );
        assert_eq!(tables[0].first_datetime().unwrap().as_str(), "Timestamp");
        assert_eq!(tables[1].name.as_str(), "Plain");
        assert_eq!(tables[1].first_datetime(), None);
    }

    #[test]
    fn a_table_line_it_cannot_read_is_an_error() {
        for bad in [
            ".create-merge table T (a:varchar)",
            ".create-merge table T (a long)",
            ".create-merge table ['T (a:long)",
            ".create-merge table T (a:long",
        ] {
            assert!(tables_of(bad).is_err(), "{bad}");
        }
    }
}
