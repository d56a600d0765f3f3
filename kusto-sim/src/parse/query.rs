//! Queries: `[set opt;]* source | op | op ...`, and the operator pipeline that may also
//! follow a `.show` command.

use super::Parser;
use super::expr::{Expr, NamedExpr, expr, named_list};
use crate::error::{SimError, not_supported};
use crate::lexer::Tok;

#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    Table(String),
    ExternalTable(String),
    Print(Vec<NamedExpr>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub expr: Expr,
    pub descending: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Where(Expr),
    Project(Vec<NamedExpr>),
    ProjectAway(Vec<String>),
    Extend(Vec<NamedExpr>),
    Summarize {
        aggregates: Vec<NamedExpr>,
        by: Vec<NamedExpr>,
    },
    Count,
    Take(usize),
    Sort(Vec<SortKey>),
    Top {
        count: usize,
        key: SortKey,
    },
    Distinct(Vec<NamedExpr>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// `set name[=value];` statements in front of the query.
    pub options: Vec<(String, Option<Expr>)>,
    pub source: Source,
    pub ops: Vec<Op>,
}

pub fn parse_query(text: &str) -> Result<Query, SimError> {
    let mut p = Parser::new(text)?;
    let options = set_statements(&mut p)?;
    let source = source(&mut p)?;
    let ops = pipeline(&mut p)?;
    if p.eat_punct(";") && p.at_end() {
        return Ok(Query {
            options,
            source,
            ops,
        });
    }
    if !p.at_end() {
        return Err(not_supported(text));
    }
    Ok(Query {
        options,
        source,
        ops,
    })
}

fn set_statements(p: &mut Parser) -> Result<Vec<(String, Option<Expr>)>, SimError> {
    let mut out = Vec::new();
    while p.eat_kw("set") {
        let name = p.name()?;
        let value = if p.eat_punct("=") {
            Some(expr(p)?)
        } else {
            None
        };
        p.expect_punct(";")?;
        out.push((name, value));
    }
    Ok(out)
}

fn source(p: &mut Parser) -> Result<Source, SimError> {
    if p.is_kw("print") {
        p.advance();
        return Ok(Source::Print(named_list(p)?));
    }
    if p.is_kw("external_table") && p.peek_at(1) == Some(&Tok::Punct("(")) {
        p.advance();
        let args = p.paren_list(Parser::string)?;
        return match args.as_slice() {
            [name] => Ok(Source::ExternalTable(name.clone())),
            _ => Err(not_supported(
                "external_table() with more than one argument",
            )),
        };
    }
    match p.peek() {
        Some(Tok::Ident(_) | Tok::Quoted(_)) if p.peek_at(1) != Some(&Tok::Punct("(")) => {
            Ok(Source::Table(p.name()?))
        }
        _ => Err(not_supported(p.text)),
    }
}

/// `| op ...` repeated until the text (or a `;`) ends.
pub fn pipeline(p: &mut Parser) -> Result<Vec<Op>, SimError> {
    let mut ops = Vec::new();
    while p.eat_punct("|") {
        ops.push(operator(p)?);
    }
    Ok(ops)
}

fn operator(p: &mut Parser) -> Result<Op, SimError> {
    let op = if p.eat_kw("where") || p.eat_kw("filter") {
        Op::Where(expr(p)?)
    } else if p.eat_kw("project-away") {
        let mut names = vec![p.name()?];
        while p.eat_punct(",") {
            names.push(p.name()?);
        }
        Op::ProjectAway(names)
    } else if p.eat_kw("project") {
        Op::Project(named_list(p)?)
    } else if p.eat_kw("extend") {
        Op::Extend(named_list(p)?)
    } else if p.eat_kw("summarize") {
        summarize(p)?
    } else if p.eat_kw("count") {
        Op::Count
    } else if p.eat_kw("take") || p.eat_kw("limit") {
        Op::Take(count_literal(p)?)
    } else if p.eat_kw("sort") || p.eat_kw("order") {
        p.expect_kw("by")?;
        let mut keys = vec![sort_key(p)?];
        while p.eat_punct(",") {
            keys.push(sort_key(p)?);
        }
        Op::Sort(keys)
    } else if p.eat_kw("top") {
        let count = count_literal(p)?;
        p.expect_kw("by")?;
        Op::Top {
            count,
            key: sort_key(p)?,
        }
    } else if p.eat_kw("distinct") {
        Op::Distinct(named_list(p)?)
    } else {
        let rest = p.take_rest();
        return Err(not_supported(&format!("| {rest}")));
    };
    Ok(op)
}

fn summarize(p: &mut Parser) -> Result<Op, SimError> {
    let aggregates = if p.is_kw("by") {
        Vec::new()
    } else {
        named_list(p)?
    };
    let by = if p.eat_kw("by") {
        named_list(p)?
    } else {
        Vec::new()
    };
    Ok(Op::Summarize { aggregates, by })
}

fn sort_key(p: &mut Parser) -> Result<SortKey, SimError> {
    let e = expr(p)?;
    // Kusto sorts descending unless told otherwise.
    let descending = !p.eat_kw("asc");
    if descending {
        p.eat_kw("desc");
    }
    if p.eat_kw("nulls") && !(p.eat_kw("first") || p.eat_kw("last")) {
        return Err(p.unexpected("'first' or 'last'"));
    }
    Ok(SortKey {
        expr: e,
        descending,
    })
}

fn count_literal(p: &mut Parser) -> Result<usize, SimError> {
    match p.advance() {
        Some(Tok::Number(n)) => n
            .parse()
            .map_err(|_| SimError::Syntax(format!("expected a row count, found '{n}'"))),
        _ => Err(SimError::Syntax("expected a row count".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_queries_parse() {
        let q = parse_query(
            "['T'] | where cursor_before_or_at('123') | where ingestion_time() >= datetime(2024-01-01) and ingestion_time() < datetime(2024-01-02) | summarize Rows=count(), dcount(['id']) by Day=startofday(['ts']) | sort by Day asc | take 10",
        )
        .unwrap();
        assert_eq!(q.source, Source::Table("T".into()));
        assert_eq!(q.ops.len(), 5);
        let q = parse_query("external_table('bk_T') | count").unwrap();
        assert_eq!(q.source, Source::ExternalTable("bk_T".into()));
        let q = parse_query("set notruncation; print c=cursor_current()").unwrap();
        assert_eq!(q.options.len(), 1);
    }

    #[test]
    fn unsupported_operators_are_named() {
        let err = parse_query("T | join (U) on x").unwrap_err();
        assert_eq!(err, SimError::NotSupported("| join (U) on".into()));
        assert!(matches!(
            parse_query("range x from 1 to 2 step 1"),
            Err(SimError::NotSupported(_))
        ));
    }
}
