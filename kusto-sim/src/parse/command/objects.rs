//! Database objects besides tables: stored functions and ingestion mappings.
//!
//! - `.create function [ifnotexists] [with (..)] Name(params) { body }` and
//!   `.create-or-alter function [with (..)] Name(params) { body }`
//!   (<https://learn.microsoft.com/en-us/kusto/management/create-function>,
//!   <https://learn.microsoft.com/en-us/kusto/management/create-alter-function>)
//! - `.create|.create-or-alter table T ingestion <kind> mapping "name" '<json>'`
//!   (<https://learn.microsoft.com/en-us/kusto/management/create-or-alter-ingestion-mapping-command>)
//! - `.show functions`, `.show function F`, `.show table T ingestion [<kind>] mappings`.

use super::{Command, with_props};
use crate::error::SimError;
use crate::lexer::Tok;
use crate::parse::Parser;

/// The mapping kinds Kusto knows (`ingestion <kind> mapping`).
const MAPPING_KINDS: &[&str] = &[
    "csv",
    "json",
    "avro",
    "apacheavro",
    "parquet",
    "orc",
    "w3clogfile",
    "sstream",
];

/// After `.create` / `.create-or-alter`: `function ...`; `or_alter` for the second form.
pub(super) fn function(p: &mut Parser, or_alter: bool) -> Result<Command, SimError> {
    // `ifnotexists` comes right after `function` (create only).
    let if_not_exists = !or_alter && p.eat_kw("ifnotexists");
    let props = with_props(p)?;
    let name = p.name()?;
    let params = balanced(p, "(", ")")?;
    let body = balanced(p, "{", "}")?;
    if body.trim().is_empty() {
        return Err(SimError::Syntax(format!(
            "function {name} has an empty body"
        )));
    }
    // The body must be a query even with skipvalidation (which skips only the check against
    // the schema); refusing it here marks the text refused in the command log, so the parser
    // check never takes a text kusto-sim refused for one it accepted.
    crate::parse::query::parse_query(&body)?;
    Ok(Command::CreateFunction {
        name,
        params,
        body,
        props,
        or_alter,
        if_not_exists,
    })
}

/// After `.create [async] [ifnotexists] materialized-view`: `[with (..)] V on table T {
/// query }` (<https://learn.microsoft.com/kusto/management/materialized-views/materialized-view-create>).
pub(super) fn materialized_view(
    p: &mut Parser,
    is_async: bool,
    if_not_exists: bool,
) -> Result<Command, SimError> {
    let props = with_props(p)?;
    let name = p.name()?;
    p.expect_kw("on")?;
    p.expect_kw("table")?;
    let source = p.name()?;
    let query = balanced(p, "{", "}")?;
    crate::parse::query::parse_query(&query)?;
    Ok(Command::CreateMaterializedView {
        name,
        source,
        query,
        props,
        is_async,
        if_not_exists,
    })
}

/// The raw text between `open` and its matching `close` (tokens, so brackets inside string
/// literals do not count).
fn balanced(p: &mut Parser, open: &'static str, close: &'static str) -> Result<String, SimError> {
    p.expect_punct(open)?;
    let start = p.offset();
    let mut depth = 1;
    loop {
        let end = p.offset();
        match p.advance() {
            Some(Tok::Punct(t)) if t == open => depth += 1,
            Some(Tok::Punct(t)) if t == close => {
                depth -= 1;
                if depth == 0 {
                    return Ok(p.text[start..end].trim().to_string());
                }
            }
            Some(_) => {}
            None => return Err(SimError::Syntax(format!("'{open}' is never closed"))),
        }
    }
}

/// After `.create[-or-alter] table T`: `ingestion <kind> mapping "name" '<json>'`.
pub(super) fn mapping(p: &mut Parser, table: String, or_alter: bool) -> Result<Command, SimError> {
    let kind = mapping_kind(p)?;
    p.expect_kw("mapping")?;
    let name = p.string()?;
    let mapping = p.string()?;
    Ok(Command::CreateIngestionMapping {
        table,
        kind,
        name,
        mapping,
        or_alter,
    })
}

fn mapping_kind(p: &mut Parser) -> Result<String, SimError> {
    let word = p.name()?.to_ascii_lowercase();
    if MAPPING_KINDS.contains(&word.as_str()) {
        Ok(word)
    } else {
        Err(SimError::Syntax(format!(
            "unknown ingestion mapping kind '{word}'"
        )))
    }
}

/// After `.show table T ingestion`: `[<kind>] mappings`.
pub(super) fn show_mappings(p: &mut Parser, table: String) -> Result<Command, SimError> {
    let kind = if p.is_kw("mappings") {
        None
    } else {
        Some(mapping_kind(p)?)
    };
    p.expect_kw("mappings")?;
    Ok(Command::ShowIngestionMappings { table, kind })
}
