//! Data commands: ingestion, export, extents and operations.

use uuid::Uuid;

use super::{AppendMode, Command, with_props};
use crate::error::SimError;
use crate::lexer::Tok;
use crate::parse::Parser;

/// `tags has 'x'` / `tags !contains 'y'` in `.show table T extents where ...`.
#[derive(Debug, Clone, PartialEq)]
pub struct TagFilter {
    pub contains: bool,
    pub negated: bool,
    pub tag: String,
}

/// The extents a `.show/.drop/.move extents` command addresses.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtentSelector {
    pub table: String,
    /// Empty = every extent of the table.
    pub ids: Vec<Uuid>,
    pub tags: Vec<TagFilter>,
}

pub(super) fn parse(p: &mut Parser) -> Result<Option<Command>, SimError> {
    if p.eat_kw("ingest") {
        return ingest(p).map(Some);
    }
    if p.eat_kw("export") {
        let is_async = p.eat_kw("async");
        if !(p.eat_kw("to") && p.eat_kw("table")) {
            return Ok(None);
        }
        let external_table = p.name()?;
        let props = with_props(p)?;
        p.expect_punct("<|")?;
        let query = p.take_rest().to_string();
        return Ok(Some(Command::ExportToTable {
            is_async,
            external_table,
            props,
            query,
        }));
    }
    if p.eat_kw("drop") {
        p.expect_kw("extents")?;
        return drop_extents(p).map(Some);
    }
    if p.eat_kw("move") {
        let is_async = p.eat_kw("async");
        p.expect_kw("extents")?;
        return move_extents(p, is_async).map(Some);
    }
    set_or_append(p)
}

fn ingest(p: &mut Parser) -> Result<Command, SimError> {
    if p.eat_kw("inline") {
        p.expect_kw("into")?;
        p.expect_kw("table")?;
        let table = p.name()?;
        let props = with_props(p)?;
        p.expect_punct("<|")?;
        let data = p.take_rest().to_string();
        return Ok(Command::IngestInline { table, props, data });
    }
    let is_async = p.eat_kw("async");
    p.expect_kw("into")?;
    p.expect_kw("table")?;
    let table = p.name()?;
    let uris = if p.is_punct("(") {
        p.paren_list(Parser::string)?
    } else {
        vec![p.string()?]
    };
    let props = with_props(p)?;
    Ok(Command::Ingest {
        is_async,
        table,
        uris,
        props,
    })
}

fn set_or_append(p: &mut Parser) -> Result<Option<Command>, SimError> {
    let mode = if p.eat_kw("set-or-append") {
        AppendMode::SetOrAppend
    } else if p.eat_kw("append") {
        AppendMode::Append
    } else if p.eat_kw("set") {
        AppendMode::Set
    } else {
        return Ok(None);
    };
    let is_async = p.eat_kw("async");
    let table = p.name()?;
    let props = with_props(p)?;
    p.expect_punct("<|")?;
    let query = p.take_rest().to_string();
    Ok(Some(Command::SetOrAppend {
        mode,
        is_async,
        table,
        props,
        query,
    }))
}

/// `(ids) [from T]` or `<| .show table T extents ...`.
fn drop_extents(p: &mut Parser) -> Result<Command, SimError> {
    if p.eat_punct("<|") {
        return nested_show_extents(p).map(Command::DropExtents);
    }
    let ids = guid_list(p)?;
    p.expect_kw("from")?;
    let table = p.name()?;
    Ok(Command::DropExtents(ExtentSelector {
        table,
        ids,
        tags: Vec::new(),
    }))
}

/// `all from table S to table T [with (..)]`, `from table S to table T [with (..)] (ids)`,
/// or `to table T [with (..)] <| .show table S extents ...`.
fn move_extents(p: &mut Parser, is_async: bool) -> Result<Command, SimError> {
    if p.eat_kw("to") {
        p.expect_kw("table")?;
        let to_table = p.name()?;
        let props = with_props(p)?;
        p.expect_punct("<|")?;
        let from = nested_show_extents(p)?;
        return Ok(Command::MoveExtents {
            is_async,
            from,
            to_table,
            props,
        });
    }
    let all = p.eat_kw("all");
    p.expect_kw("from")?;
    p.expect_kw("table")?;
    let table = p.name()?;
    p.expect_kw("to")?;
    p.expect_kw("table")?;
    let to_table = p.name()?;
    // `with (...)` follows the tables in both forms (the docs give it for `all`, the
    // Kusto.Language grammar for the id list, which it puts last).
    let props = with_props(p)?;
    let ids = if all { Vec::new() } else { guid_list(p)? };
    let from = ExtentSelector {
        table,
        ids,
        tags: Vec::new(),
    };
    Ok(Command::MoveExtents {
        is_async,
        from,
        to_table,
        props,
    })
}

fn nested_show_extents(outer: &mut Parser) -> Result<ExtentSelector, SimError> {
    let mut p = Parser::new(outer.take_rest())?;
    let p = &mut p;
    p.expect_punct(".")?;
    p.expect_kw("show")?;
    p.expect_kw("table")?;
    let table = p.name()?;
    match show_extents_of(p, table)? {
        Command::ShowExtents(sel) if p.at_end() => Ok(sel),
        _ => Err(p.unexpected("'.show table T extents'")),
    }
}

/// The part after `.show table T`: `extents [(ids)] [hot] [where tags ...]`.
pub(super) fn show_extents_of(p: &mut Parser, table: String) -> Result<Command, SimError> {
    p.expect_kw("extents")?;
    let ids = if p.is_punct("(") {
        guid_list(p)?
    } else {
        Vec::new()
    };
    p.eat_kw("hot");
    let mut tags = Vec::new();
    if p.eat_kw("where") {
        loop {
            tags.push(tag_filter(p)?);
            if !p.eat_kw("and") {
                break;
            }
        }
    }
    Ok(Command::ShowExtents(ExtentSelector { table, ids, tags }))
}

/// The part after `.show tables`: `(T1, T2, ...) extents [(ids)] [hot] [where tags ...]`,
/// the table scope's second form in
/// https://learn.microsoft.com/azure/data-explorer/kusto/management/show-extents (the
/// database is the command's; every table must exist, as in `.show table T extents`).
pub(super) fn show_tables_extents(p: &mut Parser) -> Result<Command, SimError> {
    let tables = p.paren_list(|p| p.name())?;
    let Some((first, _)) = tables.split_first() else {
        return Err(p.unexpected("a table name"));
    };
    let Command::ShowExtents(filter) = show_extents_of(p, first.clone())? else {
        return Err(p.unexpected("'extents'"));
    };
    Ok(Command::ShowTablesExtents(
        tables
            .into_iter()
            .map(|table| ExtentSelector {
                table,
                ..filter.clone()
            })
            .collect(),
    ))
}

fn tag_filter(p: &mut Parser) -> Result<TagFilter, SimError> {
    p.expect_kw("tags")?;
    let negated = p.eat_punct("!");
    let contains = if p.eat_kw("has") {
        false
    } else if p.eat_kw("contains") {
        true
    } else {
        return Err(p.unexpected("'has' or 'contains'"));
    };
    let tag = p.string()?;
    Ok(TagFilter {
        contains,
        negated,
        tag,
    })
}

pub(super) fn show_operations(p: &mut Parser) -> Result<Option<Command>, SimError> {
    if p.eat_kw("operations") {
        let ids = if p.is_punct("(") {
            guid_list(p)?
        } else if matches!(p.peek(), Some(Tok::Guid(_) | Tok::Str(_))) {
            vec![guid(p)?]
        } else {
            Vec::new()
        };
        return Ok(Some(Command::ShowOperations { ids }));
    }
    if p.eat_kw("operation") {
        let id = guid(p)?;
        p.expect_kw("details")?;
        return Ok(Some(Command::ShowOperationDetails { id }));
    }
    Ok(None)
}

/// The data-management commands queued-ingestion clients start with:
/// `.get ingestion resources` and `.get kusto identity token`.
pub(super) fn get(p: &mut Parser) -> Option<Command> {
    if p.eat_kw("ingestion") && p.eat_kw("resources") {
        return Some(Command::GetIngestionResources);
    }
    (p.eat_kw("kusto") && p.eat_kw("identity") && p.eat_kw("token"))
        .then_some(Command::GetKustoIdentityToken)
}

/// `failures [with (OperationId = <guid>)]` after `.show ingestion`.
pub(super) fn show_ingestion_failures(p: &mut Parser) -> Result<Command, SimError> {
    p.expect_kw("failures")?;
    if !p.eat_kw("with") {
        return Ok(Command::ShowIngestionFailures { operation_id: None });
    }
    p.expect_punct("(")?;
    if !p.name()?.eq_ignore_ascii_case("OperationId") {
        return Err(p.unexpected("OperationId"));
    }
    p.expect_punct("=")?;
    let id = guid(p)?;
    p.expect_punct(")")?;
    Ok(Command::ShowIngestionFailures {
        operation_id: Some(id),
    })
}

fn guid_list(p: &mut Parser) -> Result<Vec<Uuid>, SimError> {
    p.paren_list(guid)
}

/// A GUID, bare or as a string literal.
fn guid(p: &mut Parser) -> Result<Uuid, SimError> {
    match p.advance() {
        Some(Tok::Guid(g)) => Ok(g),
        Some(Tok::Str(s)) => {
            Uuid::parse_str(&s).map_err(|_| SimError::Syntax(format!("invalid guid '{s}'")))
        }
        _ => Err(SimError::Syntax("expected a guid".into())),
    }
}
