//! Table policies: `.show|.alter|.alter-merge|.delete table T policy <kind> ...`.
//!
//! Caching: `.alter table T policy caching hot = 7d`
//! (<https://learn.microsoft.com/en-us/kusto/management/alter-table-cache-policy-command>).
//! Update: `.alter table T policy update '<json array>'`
//! (<https://learn.microsoft.com/en-us/kusto/management/alter-table-update-policy-command>).
//! Row-level security: `.alter table T policy row_level_security enable|disable "<query>"`
//! (<https://learn.microsoft.com/en-us/kusto/management/alter-table-row-level-security-policy-command>).

use crate::error::SimError;
use crate::lexer::Tok;
use crate::parse::Parser;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    Merge,
    Retention,
    ExtentTagsRetention,
    Partitioning,
    RestrictedViewAccess,
    Caching,
    Update,
    RowLevelSecurity,
}

/// What an `.alter[-merge] table T policy ...` sets.
#[derive(Debug, Clone, PartialEq)]
pub enum PolicyChange {
    /// A JSON policy text; `merge` for `.alter-merge` (properties set over the current ones).
    Json {
        kind: PolicyKind,
        merge: bool,
        policy: String,
    },
    /// `.alter-merge table T policy retention softdelete = 10d [recoverability = ..]`.
    Retention {
        soft_delete: Option<i64>,
        recoverability: Option<String>,
    },
    RestrictedViewAccess(bool),
    /// `.alter table T policy caching hot = <timespan>`, in ticks.
    Caching {
        hot: i64,
    },
    RowLevelSecurity {
        enabled: bool,
        query: String,
    },
}

pub(super) fn kind(p: &mut Parser) -> Option<PolicyKind> {
    [
        ("merge", PolicyKind::Merge),
        ("retention", PolicyKind::Retention),
        ("extent_tags_retention", PolicyKind::ExtentTagsRetention),
        ("partitioning", PolicyKind::Partitioning),
        ("restricted_view_access", PolicyKind::RestrictedViewAccess),
        ("caching", PolicyKind::Caching),
        ("update", PolicyKind::Update),
        ("row_level_security", PolicyKind::RowLevelSecurity),
    ]
    .into_iter()
    .find_map(|(word, kind)| p.eat_kw(word).then_some(kind))
}

/// The part after `.alter[-merge] table T policy`.
pub(super) fn change(p: &mut Parser, merge: bool) -> Result<Option<PolicyChange>, SimError> {
    let Some(kind) = kind(p) else {
        return Ok(None);
    };
    if kind == PolicyKind::RestrictedViewAccess && !merge {
        let enabled = match p.advance() {
            Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("true") => true,
            Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("false") => false,
            _ => return Err(p.unexpected("true or false")),
        };
        return Ok(Some(PolicyChange::RestrictedViewAccess(enabled)));
    }
    if kind == PolicyKind::RowLevelSecurity {
        if merge {
            return Ok(None);
        }
        let enabled = if p.eat_kw("enable") {
            true
        } else if p.eat_kw("disable") {
            false
        } else {
            return Err(p.unexpected("enable or disable"));
        };
        let query = p.string()?;
        return Ok(Some(PolicyChange::RowLevelSecurity { enabled, query }));
    }
    if kind == PolicyKind::Caching {
        if merge {
            return Ok(None);
        }
        p.expect_kw("hot")?;
        p.expect_punct("=")?;
        return match p.advance() {
            Some(Tok::Span(hot)) if hot >= 0 => Ok(Some(PolicyChange::Caching { hot })),
            _ => Err(p.unexpected("a timespan")),
        };
    }
    if kind == PolicyKind::Retention && merge && !matches!(p.peek(), Some(Tok::Str(_))) {
        return retention_words(p).map(Some);
    }
    if kind == PolicyKind::RestrictedViewAccess {
        return Ok(None);
    }
    let policy = p.string()?;
    Ok(Some(PolicyChange::Json {
        kind,
        merge,
        policy,
    }))
}

/// `softdelete = 10d [recoverability = disabled|enabled]` or `recoverability = ..`.
fn retention_words(p: &mut Parser) -> Result<PolicyChange, SimError> {
    let mut soft_delete = None;
    if p.eat_kw("softdelete") {
        p.expect_punct("=")?;
        match p.advance() {
            Some(Tok::Span(t)) => soft_delete = Some(t),
            _ => return Err(p.unexpected("a timespan")),
        }
    }
    let mut recoverability = None;
    if p.eat_kw("recoverability") {
        p.expect_punct("=")?;
        recoverability = Some(p.name()?);
    }
    if soft_delete.is_none() && recoverability.is_none() {
        return Err(p.unexpected("'softdelete' or 'recoverability'"));
    }
    Ok(PolicyChange::Retention {
        soft_delete,
        recoverability,
    })
}
