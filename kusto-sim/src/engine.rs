//! Query evaluation: tabular operators over a [`ResultTable`]. The caller resolves the
//! query's source (a table snapshot, an external table read from storage, a command
//! result); the engine does no I/O.

mod aggregate;
mod arith;
pub mod expr;
pub mod functions;

use std::cmp::Ordering;
use std::collections::HashSet;

use expr::{Row, eval, truthy, type_of};

use crate::error::SimError;
use crate::parse::expr::{Expr, NamedExpr};
use crate::parse::query::{Op, SortKey};
use crate::table::{Column, ResultTable};
use crate::value::{ColumnType, Value, compare};

/// Per-query evaluation state.
#[derive(Debug, Clone, Default)]
pub struct Ctx {
    /// The database cursor the query runs at.
    pub db_cursor: u64,
    /// Set when a cursor predicate ran, so the cursor is reported in `@ExtendedProperties`.
    pub cursor_used: bool,
    /// `now()` for the whole query, in ticks.
    pub now: i64,
}

impl Ctx {
    pub fn new(db_cursor: u64) -> Self {
        Self {
            db_cursor,
            cursor_used: false,
            now: crate::value::temporal::now_ticks(),
        }
    }

    pub fn cursor_text(&self) -> String {
        self.db_cursor.to_string()
    }
}

/// The columns visible to an expression.
pub struct Scope {
    pub columns: Vec<Column>,
}

impl Scope {
    pub fn column(&self, name: &str) -> Result<(usize, ColumnType), SimError> {
        self.columns
            .iter()
            .position(|c| c.name == name)
            .map(|i| (i, self.columns[i].ty))
            .ok_or_else(|| {
                SimError::semantic(format!(
                    "Failed to resolve scalar expression named '{name}'"
                ))
            })
    }
}

pub fn run(mut table: ResultTable, ops: &[Op], ctx: &mut Ctx) -> Result<ResultTable, SimError> {
    for op in ops {
        table = apply(table, op, ctx)?;
    }
    Ok(table)
}

fn apply(t: ResultTable, op: &Op, ctx: &mut Ctx) -> Result<ResultTable, SimError> {
    match op {
        Op::Where(e) => filter(t, e, ctx),
        Op::Project(list) => project(t, list, false, ctx),
        Op::Extend(list) => project(t, list, true, ctx),
        Op::ProjectAway(names) => project_away(t, names),
        Op::Summarize { aggregates, by } => aggregate::summarize(t, aggregates, by, ctx),
        Op::Count => {
            let mut out = ResultTable::new(vec![Column::new("Count", ColumnType::Long)]);
            out.push(vec![Value::Long(t.rows.len() as i64)]);
            Ok(out)
        }
        Op::Take(n) => Ok(truncate(t, *n)),
        Op::Sort(keys) => sort(t, keys, ctx),
        Op::Top { count, key } => Ok(truncate(sort(t, std::slice::from_ref(key), ctx)?, *count)),
        Op::Distinct(list) => distinct(t, list, ctx),
    }
}

/// Evaluates `e` on every row.
fn eval_all(
    t: &ResultTable,
    e: &Expr,
    scope: &Scope,
    ctx: &mut Ctx,
) -> Result<Vec<Value>, SimError> {
    (0..t.rows.len())
        .map(|i| {
            let row = Row {
                values: &t.rows[i],
                meta: t.meta.as_ref().map(|m| m[i]),
            };
            eval(e, &row, scope, ctx)
        })
        .collect()
}

fn scope_of(t: &ResultTable) -> Scope {
    Scope {
        columns: t.columns.clone(),
    }
}

fn filter(t: ResultTable, e: &Expr, ctx: &mut Ctx) -> Result<ResultTable, SimError> {
    let scope = scope_of(&t);
    let ty = type_of(e, &scope)?;
    if ty != ColumnType::Bool {
        return Err(SimError::semantic(format!(
            "'where' operator: the predicate must be of type bool, not {}",
            ty.kusto_name()
        )));
    }
    let keep = eval_all(&t, e, &scope, ctx)?;
    let mut out = ResultTable::new(t.columns);
    let mut meta_out = t.meta.as_ref().map(|_| Vec::new());
    for (i, row) in t.rows.into_iter().enumerate() {
        if truthy(&keep[i]) {
            out.rows.push(row);
            if let (Some(m), Some(src)) = (meta_out.as_mut(), t.meta.as_ref()) {
                m.push(src[i]);
            }
        }
    }
    out.meta = meta_out;
    Ok(out)
}

/// The column name Kusto gives an unnamed expression: its column if it is (a bin of) one.
pub(crate) fn default_name(e: &Expr, fallback: String) -> String {
    match e {
        Expr::Col(n) => n.clone(),
        Expr::Call(f, args)
            if matches!(
                f.as_str(),
                "bin" | "floor" | "startofday" | "startofweek" | "startofmonth" | "startofyear"
            ) =>
        {
            match args.first() {
                Some(Expr::Col(n)) => n.clone(),
                _ => fallback,
            }
        }
        _ => fallback,
    }
}

fn project(
    t: ResultTable,
    list: &[NamedExpr],
    extend: bool,
    ctx: &mut Ctx,
) -> Result<ResultTable, SimError> {
    let scope = scope_of(&t);
    let mut columns = if extend {
        t.columns.clone()
    } else {
        Vec::new()
    };
    let mut values: Vec<(usize, Vec<Value>)> = Vec::new();
    for (n, item) in list.iter().enumerate() {
        let ty = type_of(&item.expr, &scope)?;
        let name = item
            .name
            .clone()
            .unwrap_or_else(|| default_name(&item.expr, format!("Column{}", n + 1)));
        let col = eval_all(&t, &item.expr, &scope, ctx)?;
        let slot = match columns.iter().position(|c| c.name == name) {
            Some(i) if extend => {
                columns[i] = Column::new(name, ty);
                i
            }
            Some(_) => {
                return Err(SimError::semantic(format!(
                    "project: duplicate column name '{name}'"
                )));
            }
            None => {
                columns.push(Column::new(name, ty));
                columns.len() - 1
            }
        };
        values.push((slot, col));
    }
    let width = columns.len();
    let mut out = ResultTable::new(columns);
    for (i, row) in t.rows.into_iter().enumerate() {
        let mut new_row = if extend { row } else { Vec::new() };
        new_row.resize(width, Value::Null);
        for (slot, col) in &values {
            new_row[*slot] = col[i].clone();
        }
        out.rows.push(new_row);
    }
    out.meta = t.meta;
    Ok(out)
}

fn project_away(t: ResultTable, names: &[String]) -> Result<ResultTable, SimError> {
    let scope = scope_of(&t);
    let mut drop = HashSet::new();
    for n in names {
        drop.insert(scope.column(n)?.0);
    }
    let keep: Vec<usize> = (0..t.columns.len()).filter(|i| !drop.contains(i)).collect();
    let mut out = ResultTable::new(keep.iter().map(|i| t.columns[*i].clone()).collect());
    out.rows = t
        .rows
        .into_iter()
        .map(|r| keep.iter().map(|i| r[*i].clone()).collect())
        .collect();
    out.meta = t.meta;
    Ok(out)
}

fn truncate(mut t: ResultTable, n: usize) -> ResultTable {
    t.rows.truncate(n);
    if let Some(m) = t.meta.as_mut() {
        m.truncate(n);
    }
    t
}

fn sort(t: ResultTable, keys: &[SortKey], ctx: &mut Ctx) -> Result<ResultTable, SimError> {
    let scope = scope_of(&t);
    let mut key_values = Vec::new();
    for k in keys {
        type_of(&k.expr, &scope)?;
        key_values.push(eval_all(&t, &k.expr, &scope, ctx)?);
    }
    let mut order: Vec<usize> = (0..t.rows.len()).collect();
    order.sort_by(|a, b| {
        for (k, vals) in keys.iter().zip(&key_values) {
            // Nulls sort first ascending and last descending, as in Kusto.
            let ord = match (vals[*a].is_null(), vals[*b].is_null()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Less,
                (false, true) => Ordering::Greater,
                _ => compare(&vals[*a], &vals[*b]).unwrap_or(Ordering::Equal),
            };
            let ord = if k.descending { ord.reverse() } else { ord };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    });
    let mut out = ResultTable::new(t.columns.clone());
    out.rows = order.iter().map(|i| t.rows[*i].clone()).collect();
    out.meta = t
        .meta
        .as_ref()
        .map(|m| order.iter().map(|i| m[*i]).collect());
    Ok(out)
}

fn distinct(t: ResultTable, list: &[NamedExpr], ctx: &mut Ctx) -> Result<ResultTable, SimError> {
    let projected = project(t, list, false, ctx)?;
    let mut seen = HashSet::new();
    let mut out = ResultTable::new(projected.columns);
    for row in projected.rows {
        let key: Vec<String> = row.iter().map(Value::group_key).collect();
        if seen.insert(key) {
            out.rows.push(row);
        }
    }
    Ok(out)
}
