//! Materialized views: `.create [async] [ifnotexists] materialized-view [with (...)] V on
//! table T { query }` and `.show materialized-views`; a query over a view runs the view's
//! query over the source records it holds ([`crate::state::MaterializedView`]).
//!
//! The rules kept, from the command's page
//! (<https://learn.microsoft.com/kusto/management/materialized-views/materialized-view-create>)
//! and the limitations page
//! (<https://learn.microsoft.com/kusto/management/materialized-views/materialized-views-limitations>):
//! - the name follows the identifier rules and can't be a table's, a function's or another
//!   view's; with `ifnotexists` an existing view makes the command a no-op ("no change is
//!   applied, even if the new definition doesn't match"), without it an error;
//! - the source table must exist, have the IngestionTime policy on, and no restricted view
//!   access policy;
//! - the query reads the source table and ends with one `summarize`; `sort` and `top` are
//!   not allowed;
//! - without `backfill` the view starts empty and takes only records ingested after its
//!   creation; `backfill=true` takes every record in the source and "the create command
//!   must be `async`": it returns an operation id, the operation runs (after the
//!   `operation_latency_ms` fault), and until it ends the view can't be queried nor listed;
//!   `effectiveDateTime` (backfill only) takes only records ingested after it.
//!
//! Properties that change what the view holds and that kusto-sim does not model (`lookback`,
//! `dimensionTables`, `autoUpdateSchema`, ...) are refused, never silently ignored. A second
//! create of a name whose backfill is still running is refused: the docs do not say what
//! Kusto does then, so nothing may rely on it.
//! Output columns: <https://learn.microsoft.com/kusto/management/materialized-views/materialized-view-show-commands>.

use uuid::Uuid;

use crate::backend::Backend;
use crate::error::{SimError, not_supported};
use crate::parse::command::{Command, Props};
use crate::parse::query::{Op, Source, parse_query};
use crate::state::{Database, MaterializedView, Operation, OperationState};
use crate::table::ResultTable;
use crate::value::Value;

const VIEWS: &str = "(Name: string, SourceTable: string, Query: string, MaterializedTo: datetime, LastRun: datetime, LastRunResult: string, IsHealthy: bool, IsEnabled: bool, Folder: string, DocString: string, AutoUpdateSchema: bool, EffectiveDateTime: datetime, Lookback: timespan)";

/// The properties kusto-sim models; the rest of the documented ones are refused.
const PROPERTIES: &[&str] = &[
    "folder",
    "docstring",
    "backfill",
    "effectivedatetime",
    "updateextentscreationtime",
];

/// The operation kind `.show operations` lists for a view's creation.
const OPERATION: &str = "MaterializedViewCreate";

/// A view to create, as the command defines it.
struct Definition {
    name: String,
    source: String,
    query: String,
    props: Props,
}

pub fn execute(sim: &Backend, db: &str, command: Command) -> Result<ResultTable, SimError> {
    match command {
        Command::CreateMaterializedView {
            name,
            source,
            query,
            props,
            is_async,
            if_not_exists,
        } => create(
            sim,
            db,
            Definition {
                name,
                source,
                query,
                props,
            },
            is_async,
            if_not_exists,
        ),
        Command::ShowMaterializedViews => {
            let now = sim.now();
            let cluster = sim.cluster();
            let mut out = ResultTable::with_schema(VIEWS);
            for view in cluster.database(db)?.materialized_views.values() {
                out.push(row(view, now));
            }
            Ok(out)
        }
        other => Err(not_supported(&format!("{other:?}"))),
    }
}

fn create(
    sim: &Backend,
    db: &str,
    def: Definition,
    is_async: bool,
    if_not_exists: bool,
) -> Result<ResultTable, SimError> {
    let backfill = def.props.get_bool("backfill").unwrap_or(false);
    let effective = effective_date_time(&def.props, backfill)?;
    if let Some(key) = def
        .props
        .0
        .keys()
        .find(|k| !PROPERTIES.contains(&k.as_str()))
    {
        return Err(not_supported(&format!("materialized-view property {key}")));
    }
    if backfill && !is_async {
        return Err(SimError::semantic(format!(
            "Materialized view '{}': a view created with backfill must be created with '.create async materialized-view'",
            def.name
        )));
    }
    check_name(&def.name)?;
    let now = sim.now();
    let mut cluster = sim.cluster();
    let database = cluster.database_mut(db)?;
    if let Some(existing) = database.materialized_views.get(&def.name) {
        if !if_not_exists {
            return Err(SimError::AlreadyExists {
                kind: "Materialized view",
                name: def.name,
            });
        }
        // "The command is ignored. No change is applied."
        let out = single(existing, now);
        return if is_async {
            let mut op = Operation::start(OPERATION, db, now);
            op.complete(out, now);
            let id = op.id;
            cluster.operations.push(op);
            Ok(operation_id(id))
        } else {
            Ok(out)
        };
    }
    if let Some(op) = database.creating_views.get(&def.name) {
        return Err(SimError::semantic(format!(
            "Materialized view '{}' is being created by operation {op}; wait until that operation ends",
            def.name
        )));
    }
    check_free(database, &def.name)?;
    check_source(database, &def)?;
    let view = MaterializedView {
        name: def.name.clone(),
        source_table: def.source.clone(),
        query: def.query.clone(),
        folder: def.props.get_str("folder").unwrap_or_default(),
        docstring: def.props.get_str("docstring").unwrap_or_default(),
        effective_date_time: effective,
        records: ResultTable::new(database.table(&def.source)?.columns.clone()),
        materialized_to: database.cursor,
    };
    if !backfill {
        // "Created empty. It includes only records ingested after view creation."
        let out = single(&view, now);
        database.materialized_views.insert(def.name, view);
        if !is_async {
            return Ok(out);
        }
        let mut op = Operation::start(OPERATION, db, now);
        op.complete(out, now);
        let id = op.id;
        cluster.operations.push(op);
        return Ok(operation_id(id));
    }
    let op = Operation::start(OPERATION, db, now);
    let id = op.id;
    database.creating_views.insert(def.name.clone(), id);
    cluster.operations.push(op);
    drop(cluster);
    let owned = sim.handle()?;
    let db = db.to_owned();
    tokio::spawn(async move {
        tokio::time::sleep(owned.operation_latency()).await;
        finish_backfill(&owned, &db, view, id);
    });
    Ok(operation_id(id))
}

/// The backfill: every live source record (ingested after `effectiveDateTime`, if set) is
/// the view's, and records committed from now on are taken in as they arrive.
fn finish_backfill(sim: &Backend, db: &str, mut view: MaterializedView, id: Uuid) {
    let now = sim.now();
    let mut cluster = sim.cluster();
    let outcome = match cluster.database_mut(db) {
        Ok(database) => {
            database.creating_views.remove(&view.name);
            match database.table(&view.source_table) {
                Ok(source) => {
                    let mut records = crate::query_runner::snapshot(source, None);
                    if let Some(from) = view.effective_date_time {
                        records = ingested_after(records, from);
                    }
                    view.records = records;
                    view.materialized_to = database.cursor;
                    let out = single(&view, now);
                    database.materialized_views.insert(view.name.clone(), view);
                    Ok(out)
                }
                Err(e) => Err(e.to_string()),
            }
        }
        Err(e) => Err(e.to_string()),
    };
    if let Some(op) = cluster.operation_mut(id) {
        match outcome {
            Ok(out) => op.complete(out, now),
            Err(message) => op.end(OperationState::Failed, message, now),
        }
    }
}

fn ingested_after(records: ResultTable, from: i64) -> ResultTable {
    let meta = records.meta.clone().unwrap_or_default();
    let mut out = ResultTable::new(records.columns.clone());
    let mut kept = Vec::new();
    for (row, m) in records.rows.into_iter().zip(meta) {
        if m.ingestion_time.is_some_and(|t| t > from) {
            out.rows.push(row);
            kept.push(m);
        }
    }
    out.meta = Some(kept);
    out
}

/// `effectiveDateTime`, a datetime, and only with `backfill` ("`backfill` must also be set
/// to `true`").
fn effective_date_time(props: &Props, backfill: bool) -> Result<Option<i64>, SimError> {
    match props.get("effectiveDateTime") {
        None => Ok(None),
        Some(_) if !backfill => Err(SimError::semantic(
            "effectiveDateTime is relevant only with backfill: set backfill=true too",
        )),
        Some(Value::DateTime(t)) => Ok(Some(*t)),
        Some(other) => Err(SimError::semantic(format!(
            "effectiveDateTime must be a datetime literal, got {other:?}"
        ))),
    }
}

/// Identifier naming rules: 1 to 1024 letters, digits, `_`, spaces, dots and dashes
/// (<https://learn.microsoft.com/kusto/query/schema-entities/entity-names#identifier-naming-rules>).
fn check_name(name: &str) -> Result<(), SimError> {
    let chars = name.chars().count();
    let allowed = name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | ' ' | '.' | '-'));
    if (1..=1024).contains(&chars) && allowed {
        Ok(())
    } else {
        Err(SimError::semantic(format!(
            "'{name}' is not a valid materialized view name: names are 1 to 1024 letters, digits, '_', ' ', '.' or '-'"
        )))
    }
}

/// "The view name can't conflict with table or function names in the same database."
fn check_free(database: &Database, name: &str) -> Result<(), SimError> {
    let taken = database.tables.contains_key(name)
        || database.functions.contains_key(name)
        || database.external_tables.contains_key(name);
    if taken {
        return Err(SimError::semantic(format!(
            "An entity named '{name}' already exists in database '{}'",
            database.name
        )));
    }
    Ok(())
}

/// The source table and the query, as the create page and the limitations page require.
fn check_source(database: &Database, def: &Definition) -> Result<(), SimError> {
    let source = database.table(&def.source)?;
    if !source.ingestion_time_policy {
        return Err(SimError::semantic(format!(
            "The source table '{}' of a materialized view must have the IngestionTime policy enabled",
            def.source
        )));
    }
    if source.policies.restricted_view_access {
        return Err(SimError::semantic(format!(
            "Table '{}' has a restricted view access policy and can't be the source of a materialized view",
            def.source
        )));
    }
    let query = parse_query(&def.query)?;
    if query.source != Source::Table(def.source.clone()) {
        return Err(SimError::semantic(format!(
            "The query of materialized view '{}' must read its source table '{}'",
            def.name, def.source
        )));
    }
    if query
        .ops
        .iter()
        .any(|op| matches!(op, Op::Sort(_) | Op::Top { .. }))
    {
        return Err(SimError::semantic(format!(
            "The query of materialized view '{}' can't use sort or top: they are not supported in materialized views",
            def.name
        )));
    }
    if !matches!(query.ops.last(), Some(Op::Summarize { .. })) {
        return Err(SimError::semantic(format!(
            "The query of materialized view '{}' must end with a single summarize",
            def.name
        )));
    }
    // The query must run over the source's columns (a missing column fails here, as the
    // create would in Kusto).
    let empty = ResultTable::new(source.columns.clone());
    crate::engine::run(
        empty,
        &query.ops,
        &mut crate::engine::Ctx::new(database.cursor),
    )?;
    Ok(())
}

fn operation_id(id: Uuid) -> ResultTable {
    let mut out = ResultTable::with_schema("(OperationId: guid)");
    out.push(vec![Value::Guid(id)]);
    out
}

fn single(view: &MaterializedView, now: i64) -> ResultTable {
    let mut out = ResultTable::with_schema(VIEWS);
    out.push(row(view, now));
    out
}

fn row(view: &MaterializedView, now: i64) -> Vec<Value> {
    vec![
        Value::String(view.name.clone()),
        Value::String(view.source_table.clone()),
        Value::String(view.query.clone()),
        Value::DateTime(now),
        Value::DateTime(now),
        Value::String("Completed".into()),
        Value::Bool(true),
        Value::Bool(true),
        Value::String(view.folder.clone()),
        Value::String(view.docstring.clone()),
        Value::Bool(false),
        view.effective_date_time
            .map_or(Value::Null, Value::DateTime),
        Value::Null,
    ]
}
