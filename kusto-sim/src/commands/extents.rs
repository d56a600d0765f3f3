//! Extents (`.show/.drop/.move extents`), soft delete, and `.show capacity`.

use crate::backend::Backend;
use crate::engine::expr::{Row, eval, truthy, type_of};
use crate::engine::{Ctx, Scope};
use crate::error::{SimError, not_supported};
use crate::parse::command::{ExtentSelector, Props};
use crate::parse::query::{Op, Source, parse_query};
use crate::query_runner::reshape;
use crate::state::{Extent, Operation, OperationState};
use crate::table::ResultTable;
use crate::value::Value;

const EXTENTS: &str = "(ExtentId: guid, DatabaseName: string, TableName: string, MaxCreatedOn: datetime, OriginalSize: real, ExtentSize: real, CompressedSize: real, IndexSize: real, Blocks: long, Segments: long, ExtentContainerId: string, RowCount: long, MinCreatedOn: datetime, Tags: string, Kind: string, DeletedRowCount: long)";

fn selected(e: &Extent, sel: &ExtentSelector) -> bool {
    let id_ok = sel.ids.is_empty() || sel.ids.contains(&e.id);
    let tags_ok = sel.tags.iter().all(|f| {
        let hit = e.tags.iter().any(|t| {
            if f.contains {
                t.to_lowercase().contains(&f.tag.to_lowercase())
            } else {
                t.eq_ignore_ascii_case(&f.tag)
            }
        });
        hit != f.negated
    });
    id_ok && tags_ok
}

pub fn show(sim: &Backend, db: &str, sel: &ExtentSelector) -> Result<ResultTable, SimError> {
    let cluster = sim.cluster();
    let database = cluster.database(db)?;
    let table = database.table(&sel.table)?;
    let mut out = ResultTable::with_schema(EXTENTS);
    for e in table.extents.iter().filter(|e| selected(e, sel)) {
        let size = e.original_size as f64;
        out.push(vec![
            Value::Guid(e.id),
            Value::String(database.name.clone()),
            Value::String(table.name.clone()),
            Value::DateTime(e.max_created_on),
            Value::Real(size),
            Value::Real(size),
            Value::Real(size),
            Value::Real(0.0),
            Value::Long(1),
            Value::Long(1),
            Value::String(String::new()),
            Value::Long(e.rows.len() as i64),
            Value::DateTime(e.min_created_on),
            Value::String(e.tags.join("\r\n")),
            Value::String("StorageV3".into()),
            Value::Long((e.rows.len() - e.live_rows()) as i64),
        ]);
    }
    Ok(out)
}

/// `.show tables (T1, T2) extents ...`: each table's extents in turn, in one result; a
/// missing table fails the whole command.
pub fn show_tables(
    sim: &Backend,
    db: &str,
    sels: &[ExtentSelector],
) -> Result<ResultTable, SimError> {
    let mut out = ResultTable::with_schema(EXTENTS);
    for sel in sels {
        out.rows.extend(show(sim, db, sel)?.rows);
    }
    Ok(out)
}

pub fn drop(sim: &Backend, db: &str, sel: &ExtentSelector) -> Result<ResultTable, SimError> {
    let mut cluster = sim.cluster();
    let table = cluster.database_mut(db)?.table_mut(&sel.table)?;
    let (dropped, kept): (Vec<Extent>, Vec<Extent>) =
        table.extents.drain(..).partition(|e| selected(e, sel));
    table.extents = kept;
    let mut out =
        ResultTable::with_schema("(ExtentId: guid, TableName: string, CreatedOn: datetime)");
    for e in dropped {
        out.push(vec![
            Value::Guid(e.id),
            Value::String(sel.table.clone()),
            Value::DateTime(e.max_created_on),
        ]);
    }
    Ok(out)
}

/// Moves whole extents; rows are mapped onto the target's columns by name. Ingestion times
/// and cursors are kept, so a continuous export may never see the rows, unless
/// `setNewIngestionTime=true` gives them a new commit (new cursor, new ingestion time).
pub fn move_to(
    sim: &Backend,
    db: &str,
    from: &ExtentSelector,
    to_table: &str,
    props: &Props,
) -> Result<ResultTable, SimError> {
    for name in props.0.keys() {
        if !name.eq_ignore_ascii_case("setNewIngestionTime") {
            return Err(not_supported(&format!(".move extents with {name}")));
        }
    }
    let now = sim.now();
    let mut cluster = sim.cluster();
    let database = cluster.database_mut(db)?;
    let target_columns = database.table(to_table)?.columns.clone();
    if from.ids.iter().any(|id| {
        database
            .table(&from.table)
            .is_ok_and(|t| !t.extents.iter().any(|e| e.id == *id))
    }) {
        return Err(SimError::semantic(format!(
            "Extents to move must all be in table '{}'; some of ({}) are not",
            from.table,
            from.ids
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let new_meta = if props.get_bool("setNewIngestionTime") == Some(true) {
        Some(database.commit_meta(to_table, now)?)
    } else {
        None
    };
    let source = database.table_mut(&from.table)?;
    let source_columns = source.columns.clone();
    let (moved, kept): (Vec<Extent>, Vec<Extent>) =
        source.extents.drain(..).partition(|e| selected(e, from));
    source.extents = kept;
    let mut out = ResultTable::with_schema(
        "(OriginalExtentId: string, ResultExtentId: string, Details: string)",
    );
    let target = database.table_mut(to_table)?;
    for mut e in moved {
        e.rows = reshape(&source_columns, e.rows, &target_columns);
        if let Some(meta) = new_meta {
            e.metas.iter_mut().for_each(|m| *m = meta);
        }
        out.push(vec![
            Value::String(e.id.to_string()),
            Value::String(e.id.to_string()),
            Value::String(String::new()),
        ]);
        target.extents.push(e);
    }
    Ok(out)
}

/// `.move async extents`: answers an `OperationId` at once and moves in the background
/// (after the `operation_latency_ms` fault, if any); the operation's details are the move's
/// result. Both tables must exist when the command is sent.
pub fn move_async(
    sim: &Backend,
    db: &str,
    from: ExtentSelector,
    to_table: String,
    props: Props,
) -> Result<ResultTable, SimError> {
    let now = sim.now();
    let op = Operation::start("ExtentsMove", db, now);
    let id = op.id;
    {
        let mut cluster = sim.cluster();
        let database = cluster.database(db)?;
        database.table(&from.table)?;
        database.table(&to_table)?;
        cluster.operations.push(op);
    }
    let owned = sim.handle()?;
    let db = db.to_string();
    tokio::spawn(async move {
        tokio::time::sleep(owned.operation_latency()).await;
        let outcome = move_to(&owned, &db, &from, &to_table, &props);
        let now = owned.now();
        let mut cluster = owned.cluster();
        if let Some(op) = cluster.operation_mut(id) {
            match outcome {
                Ok(details) => op.complete(details, now),
                Err(e) => op.fail(e.to_string(), !e.permanent(), now),
            }
        }
    });
    let mut out = ResultTable::with_schema("(OperationId: guid)");
    out.push(vec![Value::Guid(id)]);
    Ok(out)
}

/// `.drop table T extent tags ('a', ...)`: removes those tags from every extent of `T`.
pub fn drop_tags(
    sim: &Backend,
    db: &str,
    table: &str,
    tags: &[String],
) -> Result<ResultTable, SimError> {
    let mut cluster = sim.cluster();
    let t = cluster.database_mut(db)?.table_mut(table)?;
    let mut out = ResultTable::with_schema(
        "(OriginalExtentId: string, ResultExtentId: string, ResultExtentTags: string)",
    );
    for e in &mut t.extents {
        let before = e.tags.len();
        e.tags.retain(|t| !tags.contains(t));
        if e.tags.len() != before {
            out.push(vec![
                Value::String(e.id.to_string()),
                Value::String(e.id.to_string()),
                Value::String(e.tags.join("\r\n")),
            ]);
        }
    }
    Ok(out)
}

/// `.delete table T records <| T | where ...`: only `where` predicates over T itself.
pub fn delete_records(
    sim: &Backend,
    db: &str,
    table_name: &str,
    query: &str,
) -> Result<ResultTable, SimError> {
    let parsed = parse_query(query)?;
    if parsed.source != Source::Table(table_name.to_string()) {
        return Err(SimError::semantic(
            "The delete predicate must query the table being deleted from",
        ));
    }
    let predicates: Vec<_> = parsed
        .ops
        .iter()
        .map(|op| match op {
            Op::Where(e) => Ok(e.clone()),
            _ => Err(not_supported(&format!(".delete records with {op:?}"))),
        })
        .collect::<Result<_, _>>()?;
    let mut cluster = sim.cluster();
    let database = cluster.database_mut(db)?;
    let mut ctx = Ctx::new(database.cursor);
    let table = database.table_mut(table_name)?;
    let scope = Scope {
        columns: table.columns.clone(),
    };
    for p in &predicates {
        type_of(p, &scope)?;
    }
    let mut out = ResultTable::with_schema(
        "(TableName: string, DatabaseName: string, ExtentId: guid, RecordsMatchPredicate: long)",
    );
    for extent in &mut table.extents {
        let mut matched = 0;
        let rows = extent.rows.iter().zip(&extent.metas);
        for ((row, meta), deleted) in rows.zip(extent.deleted.iter_mut()) {
            if *deleted {
                continue;
            }
            let r = Row {
                values: row,
                meta: Some(*meta),
            };
            let mut all = true;
            for p in &predicates {
                all &= truthy(&eval(p, &r, &scope, &mut ctx)?);
            }
            if all {
                *deleted = true;
                matched += 1;
            }
        }
        if matched > 0 {
            out.push(vec![
                Value::String(table_name.to_string()),
                Value::String(db.to_string()),
                Value::Guid(extent.id),
                Value::Long(matched),
            ]);
        }
    }
    Ok(out)
}

/// `.show capacity [resource]`: the configured totals ([`crate::Capacity`]); `Consumed`
/// counts running operations.
pub fn capacity(sim: &Backend, resource: Option<&str>) -> ResultTable {
    let totals = sim.capacity();
    let cluster = sim.cluster();
    let running = |kind: &str| {
        cluster
            .operations
            .iter()
            .filter(|o| o.kind == kind && o.state == OperationState::InProgress)
            .count() as i64
    };
    let rows = [
        (
            "ingestions",
            "Ingestions",
            totals.ingestions,
            running("DataIngestPull"),
        ),
        ("extents-merge", "ExtentsMerge", 2, 0),
        ("extents-partition", "ExtentsPartition", 2, 0),
        (
            "data-export",
            "DataExport",
            totals.data_export,
            running("TableExport"),
        ),
        ("table-purge", "TablePurge", 1, 0),
        ("materialized-view", "MaterializedView", 1, 0),
        ("stored-query-results", "StoredQueryResults", 10, 0),
        ("queries", "Queries", 20, 0),
    ];
    let mut out = ResultTable::with_schema(
        "(Resource: string, Total: long, Consumed: long, Remaining: long)",
    );
    for (key, name, total, used) in rows {
        if resource.is_none_or(|r| r == key) {
            out.push(vec![
                Value::String(name.into()),
                Value::Long(total),
                Value::Long(used),
                Value::Long((total - used).max(0)),
            ]);
        }
    }
    out
}
