//! Running a query: resolve its source (a table snapshot, an external table read from
//! storage, `print`), evaluate the operators, apply result truncation.

use serde_json::Value as Json;

use crate::backend::Backend;
use crate::engine::{self, Ctx};
use crate::error::SimError;
use crate::parse::query::{Query, Source, parse_query};
use crate::protocol::QueryOutcome;
use crate::protocol::error::truncation_error;
use crate::state::Table;
use crate::table::{Column, ResultTable, RowMeta};
use crate::value::Value;

/// Kusto's default result limit (`truncationmaxrecords`).
const DEFAULT_MAX_RECORDS: usize = 500_000;

/// Result-size limits from the request's `properties.Options` and `set` statements.
#[derive(Debug, Clone, Default)]
pub struct Limits {
    pub max_records: Option<usize>,
    pub no_truncation: bool,
}

impl Limits {
    pub fn from_options(options: Option<&Json>) -> Self {
        let get = |k: &str| options.and_then(|o| o.get(k));
        let as_bool = |v: Option<&Json>| match v {
            Some(Json::Bool(b)) => *b,
            Some(Json::String(s)) => s.eq_ignore_ascii_case("true"),
            _ => false,
        };
        let max_records = get("truncationmaxrecords").and_then(|v| match v {
            Json::Number(n) => n.as_u64(),
            Json::String(s) => s.parse().ok(),
            _ => None,
        });
        Self {
            max_records: max_records.and_then(|m| usize::try_from(m).ok()),
            no_truncation: as_bool(get("notruncation")),
        }
    }
}

/// Rows of one table between two cursors: `(after, upto]`.
#[derive(Debug, Clone, Copy)]
pub struct CursorWindow {
    pub after: u64,
    pub upto: u64,
}

pub async fn run(
    sim: &Backend,
    db: &str,
    text: &str,
    limits: &Limits,
) -> Result<QueryOutcome, SimError> {
    let query = parse_query(text)?;
    let (mut primary, ctx) = evaluate(sim, db, &query, None).await?;
    let mut limits = limits.clone();
    for (name, _) in &query.options {
        if name.eq_ignore_ascii_case("notruncation") {
            limits.no_truncation = true;
        }
    }
    let max = limits.max_records.unwrap_or(DEFAULT_MAX_RECORDS);
    let partial_error = (!limits.no_truncation && primary.rows.len() > max).then(|| {
        primary.rows.truncate(max);
        truncation_error(max)
    });
    Ok(QueryOutcome {
        primary,
        cursor: ctx.cursor_used.then(|| ctx.cursor_text()),
        partial_error,
    })
}

/// Evaluates a parsed query; `window` restricts table sources to a cursor range
/// (continuous export runs).
pub async fn evaluate(
    sim: &Backend,
    db: &str,
    query: &Query,
    window: Option<CursorWindow>,
) -> Result<(ResultTable, Ctx), SimError> {
    let (source, mut ctx) = load_source(sim, db, &query.source, window).await?;
    let result = engine::run(source, &query.ops, &mut ctx)?;
    Ok((result, ctx))
}

async fn load_source(
    sim: &Backend,
    db: &str,
    source: &Source,
    window: Option<CursorWindow>,
) -> Result<(ResultTable, Ctx), SimError> {
    match source {
        Source::Table(name) => {
            let mut cluster = sim.cluster();
            let database = cluster.database_mut(db)?;
            let mut ctx = Ctx::new(database.cursor);
            ctx.now = sim.now();
            if database.materialized_views.contains_key(name) && !database.tables.contains_key(name)
            {
                return view_rows(database, name, ctx);
            }
            if database.creating_views.contains_key(name) {
                // "The view isn't available for queries until backfill is complete."
                return Err(SimError::semantic(format!(
                    "Materialized view '{name}' is being created (backfill) and can't be queried until the backfill completes"
                )));
            }
            Ok((snapshot(database.table(name)?, window), ctx))
        }
        Source::ExternalTable(name) => {
            let (ext, cursor) = {
                let cluster = sim.cluster();
                let database = cluster.database(db)?;
                (database.external_table(name)?.clone(), database.cursor)
            };
            let rows = crate::storage_reader::read_external_table(sim, &ext).await?;
            let mut table = ResultTable::new(ext.columns.clone());
            table.rows = rows;
            let mut ctx = Ctx::new(cursor);
            ctx.now = sim.now();
            Ok((table, ctx))
        }
        Source::Print(list) => {
            let mut one_row = ResultTable::new(Vec::new());
            one_row.push(Vec::new());
            let cursor = sim.cluster().database(db)?.cursor;
            let mut ctx = Ctx::new(cursor);
            ctx.now = sim.now();
            let named = list
                .iter()
                .enumerate()
                .map(|(i, n)| crate::parse::expr::NamedExpr {
                    name: Some(n.name.clone().unwrap_or_else(|| format!("print_{i}"))),
                    expr: n.expr.clone(),
                })
                .collect();
            let table = engine::run(
                one_row,
                &[crate::parse::query::Op::Project(named)],
                &mut ctx,
            )?;
            Ok((table, ctx))
        }
    }
}

/// A materialized view's rows: its query over the records it holds, once the source's
/// records committed since its last materialization are materialized too.
fn view_rows(
    database: &mut crate::state::Database,
    name: &str,
    mut ctx: Ctx,
) -> Result<(ResultTable, Ctx), SimError> {
    let cursor = database.cursor;
    let delta = database
        .materialized_views
        .get(name)
        .and_then(|v| Some((v, database.tables.get(&v.source_table)?)))
        .map(|(v, source)| {
            let window = CursorWindow {
                after: v.materialized_to,
                upto: cursor,
            };
            (snapshot(source, Some(window)), source.columns.clone())
        });
    let Some(view) = database.materialized_views.get_mut(name) else {
        return Err(SimError::NotFound {
            kind: "Table",
            name: name.to_string(),
        });
    };
    if let Some((delta, columns)) = delta {
        let held = std::mem::take(&mut view.records);
        let mut records = ResultTable::new(columns.clone());
        records.rows = reshape(&held.columns, held.rows, &columns);
        records.rows.extend(delta.rows);
        let mut meta = held.meta.unwrap_or_default();
        meta.extend(delta.meta.unwrap_or_default());
        records.meta = Some(meta);
        view.records = records;
        view.materialized_to = cursor;
    }
    let query = parse_query(&view.query)?;
    let mut rows = engine::run(view.records.clone(), &query.ops, &mut ctx)?;
    rows.meta = None;
    Ok((rows, ctx))
}

/// The live (not soft-deleted) rows of a table, with their ingestion metadata.
pub fn snapshot(table: &Table, window: Option<CursorWindow>) -> ResultTable {
    let mut out = ResultTable::new(table.columns.clone());
    let mut meta = Vec::new();
    let in_window = |m: &RowMeta| window.is_none_or(|w| m.cursor > w.after && m.cursor <= w.upto);
    for extent in &table.extents {
        let rows = extent.rows.iter().zip(&extent.deleted).zip(&extent.metas);
        for ((row, deleted), m) in rows {
            if !deleted && in_window(m) {
                out.rows.push(row.clone());
                meta.push(*m);
            }
        }
    }
    out.meta = Some(meta);
    out
}

/// Maps `rows` shaped like `from` onto the columns `to`, by name; missing columns are null.
pub fn reshape(from: &[Column], rows: Vec<Vec<Value>>, to: &[Column]) -> Vec<Vec<Value>> {
    let index: Vec<Option<usize>> = to
        .iter()
        .map(|c| from.iter().position(|f| f.name == c.name))
        .collect();
    rows.into_iter()
        .map(|row| {
            index
                .iter()
                .zip(to)
                .map(|(i, c)| {
                    i.and_then(|i| row.get(i).cloned())
                        .and_then(|v| crate::value::coerce(v, c.ty))
                        .unwrap_or(Value::Null)
                })
                .collect()
        })
        .collect()
}
