//! Continuous export runs. Each run exports the rows whose cursor is in
//! `(last cursor, cursor at now − forcedLatency]`, once, as parquet files in the external
//! table's partition folders, and records them as exported artifacts. The first run only
//! records its StartCursor: earlier rows are what a backfill is for.

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::backend::Backend;
use crate::error::SimError;
use crate::export_writer::{self, FileOptions};
use crate::parse::command::Props;
use crate::parse::query::{Source, parse_query};
use crate::query_runner::{CursorWindow, evaluate};
use crate::state::{Artifact, ContinuousExport, Database, ExportFailure, ExternalTable};
use crate::value::Value;
use crate::value::temporal::DOTNET_EPOCH_OFFSET;

/// What one run did.
#[derive(Debug, Clone, PartialEq)]
pub struct RunReport {
    pub database: String,
    pub name: String,
    /// Files written (empty for the first run or when nothing new arrived).
    pub artifacts: usize,
    pub records: u64,
    /// The failure text when the run failed.
    pub error: Option<String>,
}

/// Runs the enabled exports of every database: all of them when `force`, else those whose
/// interval has elapsed.
pub async fn run_all(sim: &Backend, force: bool) -> Vec<RunReport> {
    let due: Vec<(String, String)> = {
        let now = sim.now();
        let cluster = sim.cluster();
        cluster
            .databases
            .values()
            .flat_map(|db| {
                db.continuous_exports
                    .values()
                    .filter(|e| !e.is_disabled && !e.is_running)
                    .filter(|e| force || e.last_run_time.is_none_or(|t| now - t >= e.interval))
                    .map(|e| (db.name.clone(), e.name.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let mut reports = Vec::new();
    for (db, name) in due {
        reports.push(run_one(sim, &db, &name).await);
    }
    reports
}

/// Every `tick` until the simulator is dropped: runs due exports, then the cluster's
/// background extent maintenance (tag retention, merges).
pub fn spawn_scheduler(sim: &Arc<Backend>, tick: Duration) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(sim);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(tick).await;
            let Some(sim) = weak.upgrade() else { return };
            run_all(&sim, false).await;
            let now = sim.now();
            sim.cluster().maintain(now);
        }
    })
}

/// The state a run starts from, taken under the lock.
struct Start {
    export: ContinuousExport,
    ext: ExternalTable,
    window: CursorWindow,
    exported_to: i64,
}

pub(crate) async fn run_one(sim: &Backend, db: &str, name: &str) -> RunReport {
    let mut report = RunReport {
        database: db.to_string(),
        name: name.to_string(),
        artifacts: 0,
        records: 0,
        error: None,
    };
    let start = match begin(sim, db, name) {
        Ok(Some(start)) => start,
        Ok(None) => return report,
        Err(e) => {
            report.error = Some(e.to_string());
            return report;
        }
    };
    tokio::time::sleep(sim.operation_latency()).await;
    let outcome = export_window(sim, db, &start).await;
    let now = sim.now();
    let faults = sim.faults().config.clone();
    let lag = Duration::from_millis(faults.artifact_report_lag_ms);
    let mut cluster = sim.cluster();
    let Ok(export) = cluster
        .database_mut(db)
        .and_then(|d| d.continuous_export_mut(name))
    else {
        return report;
    };
    export.is_running = false;
    match outcome {
        Ok(files) => {
            let reported = now - i64::try_from(lag.as_nanos() / 100).unwrap_or(i64::MAX);
            report.artifacts = files.len();
            report.records = files.iter().map(|f| f.num_records).sum();
            export.artifacts.extend(files.into_iter().map(|f| Artifact {
                timestamp: reported,
                timestamp_missing: faults.artifact_timestamps_missing,
                external_table: start.ext.name.clone(),
                path: f.path,
                num_records: f.num_records,
                size: f.size,
            }));
            export.last_cursor = Some(start.window.upto);
            export.exported_to = Some(start.exported_to);
            export.last_run_result = Some("Completed");
            export.last_success = Some(now);
        }
        Err(e) => {
            report.error = Some(e.to_string());
            export.last_run_result = Some("Failed");
            export.failures.push(ExportFailure {
                timestamp: now,
                operation_id: Uuid::new_v4(),
                details: e.to_string(),
            });
        }
    }
    report
}

/// Marks the export running and picks its cursor window; `None` when there is nothing to
/// export (disabled, already running, or the first run, which only sets StartCursor).
fn begin(sim: &Backend, db: &str, name: &str) -> Result<Option<Start>, SimError> {
    let now = sim.now();
    let mut cluster = sim.cluster();
    let database = cluster.database_mut(db)?;
    let cursor = database.cursor;
    let export = database
        .continuous_exports
        .get(name)
        .cloned()
        .ok_or(SimError::NotFound {
            kind: "Continuous export",
            name: name.to_string(),
        })?;
    if export.is_disabled || export.is_running {
        return Ok(None);
    }
    let ext = database.external_table(&export.external_table)?.clone();
    let state = database.continuous_export_mut(name)?;
    state.last_run_time = Some(now);
    let Some(last) = state.last_cursor else {
        state.start_cursor = Some(cursor);
        state.last_cursor = Some(cursor);
        state.last_run_result = Some("Completed");
        state.last_success = Some(now);
        return Ok(None);
    };
    // Cursors are commit times in .NET ticks, so the cursor at `now − forcedLatency` is
    // that time itself, capped by the last commit.
    let horizon = now - export.forced_latency;
    let at_horizon = u64::try_from(horizon + DOTNET_EPOCH_OFFSET).unwrap_or(0);
    let upto = cursor.min(at_horizon).max(last);
    state.is_running = true;
    let window = CursorWindow { after: last, upto };
    Ok(Some(Start {
        export,
        ext,
        window,
        exported_to: horizon.min(now),
    }))
}

/// The tables continuous export cannot serve (kusto-sim refuses to create such an export,
/// and fails a run of one whose table got such a policy later; never kinder than Kusto),
/// <https://learn.microsoft.com/kusto/management/data-export/continuous-data-export#limitations>:
///
/// - "Continuous export can't be configured on a table with restricted view access policy."
/// - "Continuous export can't be enabled on a table with Row Level Security policy unless"
///   the external table uses impersonation authentication and the export is configured
///   with a managed identity (the `managedIdentity` property); see
///   <https://learn.microsoft.com/kusto/management/data-export/continuous-export-with-managed-identity>.
///
/// `tables` are the query's table and the `over` tables.
pub(crate) fn refuse_unexportable(
    database: &Database,
    export: &str,
    tables: &[&str],
    ext: &ExternalTable,
    props: &Props,
) -> Result<(), SimError> {
    for table in tables {
        let policies = &database.table(table)?.policies;
        if policies.restricted_view_access {
            return Err(SimError::semantic(format!(
                "Continuous export '{export}': table '{table}' has a restricted view access policy, which continuous export doesn't support"
            )));
        }
        let rls = policies
            .row_level_security
            .as_ref()
            .is_some_and(|(on, _)| *on);
        let impersonates = !ext.connection_strings.is_empty()
            && ext
                .connection_strings
                .iter()
                .all(|c| c.to_ascii_lowercase().ends_with(";impersonate"));
        if rls && !(impersonates && props.get("managedIdentity").is_some()) {
            return Err(SimError::semantic(format!(
                "Continuous export '{export}': table '{table}' has a row level security policy; continuous export of it needs an external table with impersonation authentication and a managedIdentity on the export"
            )));
        }
    }
    Ok(())
}

async fn export_window(
    sim: &Backend,
    db: &str,
    start: &Start,
) -> Result<Vec<export_writer::ExportedFile>, SimError> {
    if sim.faults().continuous_export_fails(&start.export.name) {
        return Err(SimError::Storage(format!(
            "Continuous export '{}' failed: injected failure (kusto-sim fault)",
            start.export.name
        )));
    }
    let query = parse_query(&start.export.query)?;
    {
        let cluster = sim.cluster();
        let database = cluster.database(db)?;
        let source = match &query.source {
            Source::Table(t) => Some(t.as_str()),
            _ => None,
        };
        let tables: Vec<&str> = source
            .into_iter()
            .chain(start.export.over.iter().map(String::as_str))
            .collect();
        refuse_unexportable(
            database,
            &start.export.name,
            &tables,
            &start.ext,
            &start.export.props,
        )?;
    }
    let (result, _) = evaluate(sim, db, &query, Some(start.window)).await?;
    let rows = export_writer::conform(&start.ext, result)?;
    let opts = FileOptions {
        size_limit: start
            .export
            .props
            .get("sizeLimit")
            .and_then(Value::as_i64)
            .and_then(|v| u64::try_from(v).ok()),
        memory_budget_rows: None,
    };
    // Files written before a failure stay in storage, unlisted, as Kusto's do.
    let files = export_writer::write(sim, &start.ext, rows, &opts)
        .await
        .map_err(|(e, _)| e)?;
    if sim
        .faults()
        .continuous_export_fails_after_write(&start.export.name)
    {
        return Err(SimError::Storage(format!(
            "Continuous export '{}' failed after writing {} file(s): injected failure (kusto-sim fault)",
            start.export.name,
            files.len()
        )));
    }
    Ok(files)
}
