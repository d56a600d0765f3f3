//! `.export [async] to table` and the operations it creates.

use uuid::Uuid;

use super::extents::EXPORT_CAPACITY;
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
        name_prefix: props.get_str("namePrefix"),
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

/// Registers a `TableExport` operation, or throttles when export capacity is used up.
fn start_operation(sim: &Backend, db: &str) -> Result<Uuid, SimError> {
    let now = sim.now();
    let mut cluster = sim.cluster();
    let running = cluster
        .operations
        .iter()
        .filter(|o| o.kind == "TableExport" && o.state == OperationState::InProgress)
        .count() as i64;
    if running >= EXPORT_CAPACITY {
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
