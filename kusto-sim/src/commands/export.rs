//! `.export [async] to table` and the operations it creates.

use uuid::Uuid;

use crate::backend::Backend;
use crate::error::SimError;
use crate::export_writer::{self, ExportedFile, FileOptions};
use crate::parse::command::Props;
use crate::parse::query::parse_query;
use crate::state::{ExternalTable, Operation, OperationState, operation};
use crate::table::ResultTable;
use crate::value::Value;

pub async fn export(
    sim: &Backend,
    db: &str,
    is_async: bool,
    ext_name: &str,
    props: &Props,
    query: &str,
) -> Result<ResultTable, SimError> {
    check_properties(ext_name, props)?;
    let parsed = parse_query(query)?;
    let ext = sim
        .cluster()
        .database(db)?
        .external_table(ext_name)?
        .clone();
    // The query runs now, at the current cursor, whatever happens to the data later.
    let (result, _) = crate::query_runner::evaluate(sim, db, &parsed, None).await?;
    let rows = export_writer::conform(&ext, result)?;
    let opts = FileOptions {
        size_limit: props
            .get("sizeLimit")
            .and_then(Value::as_i64)
            .and_then(|v| u64::try_from(v).ok()),
        memory_budget_rows: sim.faults().config.export_max_rows,
    };
    if !is_async {
        return export_writer::write(sim, &ext, rows, &opts)
            .await
            .map(|files| export_writer::details(&ext.name, &files))
            .map_err(|(e, _)| e);
    }
    let id = start_operation(sim, db)?;
    let owned = sim.handle()?;
    tokio::spawn(async move {
        tokio::time::sleep(owned.operation_latency()).await;
        let outcome = export_writer::write(&owned, &ext, rows, &opts).await;
        finish(&owned, id, &ext, outcome);
    });
    let mut out = ResultTable::with_schema("(OperationId: guid)");
    out.push(vec![Value::Guid(id)]);
    Ok(out)
}

/// The properties `.export to table` documents. `namePrefix` and `fileExtension` belong to
/// the external table (export-data-to-an-external-table: "no namePrefix"), so Kusto refuses
/// them here, and so does kusto-sim.
const EXPORT_TO_TABLE_PROPERTIES: &[&str] = &[
    "sizeLimit",
    "distributed",
    "distribution",
    "distributionKind",
    "concurrency",
    "spread",
    "parquetRowGroupSize",
];

fn check_properties(ext_name: &str, props: &Props) -> Result<(), SimError> {
    let unknown: Vec<&str> = props
        .0
        .keys()
        .filter(|k| {
            !EXPORT_TO_TABLE_PROPERTIES
                .iter()
                .any(|p| p.eq_ignore_ascii_case(k))
        })
        .map(String::as_str)
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(SimError::semantic(format!(
        ".export to table '{ext_name}': unknown propert{} '{}'; .export to table takes only {} (file names come from the external table's namePrefix and fileExtension)",
        if unknown.len() == 1 { "y" } else { "ies" },
        unknown.join("', '"),
        EXPORT_TO_TABLE_PROPERTIES.join(", ")
    )))
}

/// Registers a `TableExport` operation, or throttles when export capacity is used up.
fn start_operation(sim: &Backend, db: &str) -> Result<Uuid, SimError> {
    let now = sim.now();
    let total = sim.capacity().data_export;
    let mut cluster = sim.cluster();
    let running = cluster
        .operations
        .iter()
        .filter(|o| o.kind == "TableExport" && o.state == OperationState::InProgress)
        .count() as i64;
    if running >= total {
        return Err(SimError::Throttled("DataExportToExternalTable".into()));
    }
    let op = Operation::start("TableExport", db, now);
    let id = op.id;
    cluster.operations.push(op);
    Ok(id)
}

fn finish(
    sim: &Backend,
    id: Uuid,
    ext: &ExternalTable,
    outcome: Result<Vec<ExportedFile>, (SimError, Vec<ExportedFile>)>,
) {
    let now = sim.now();
    let mut cluster = sim.cluster();
    let Some(op) = cluster.operation_mut(id) else {
        return;
    };
    match outcome {
        Ok(files) => op.complete(export_writer::details(&ext.name, &files), now),
        Err((e, _partial)) => op.fail(e.to_string(), !e.permanent(), now),
    }
}

/// By id, operations updated in the last 6 hours; without ids (the history form), those of
/// the last two weeks. Older ones are gone, as on a real cluster.
pub fn show_operations(sim: &Backend, ids: &[Uuid]) -> ResultTable {
    let now = sim.now();
    let by_id = !ids.is_empty();
    let cluster = sim.cluster();
    let mut out = ResultTable::with_schema(operation::SHOW_SCHEMA);
    cluster
        .operations
        .iter()
        .filter(|o| !by_id || ids.contains(&o.id))
        .filter(|o| o.visible(now, by_id))
        .for_each(|o| o.push_row(&mut out));
    out
}

pub fn operation_details(sim: &Backend, id: Uuid) -> Result<ResultTable, SimError> {
    let cluster = sim.cluster();
    let op = cluster
        .operations
        .iter()
        .find(|o| o.id == id)
        .ok_or_else(|| SimError::NotFound {
            kind: "Operation",
            name: id.to_string(),
        })?;
    match (&op.state, &op.details) {
        (OperationState::Completed, Some(details)) => Ok(details.clone()),
        (state, _) => Err(SimError::semantic(format!(
            "Operation '{id}' is {}; details are available only after it completes",
            state.name()
        ))),
    }
}
