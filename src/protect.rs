//! protect: keep every table in scope continuously backed up, with a catalog of valid files.
//!
//! A run has two halves, so each invocation stays small however many tables there are:
//!
//! 1. [`plan`] (the timer): under a run lock, list each database's tables, keep those in scope
//!    and snapshot the database schema when it changed. The caller fans one task per table
//!    out over the task queue (or, for `adx-backup protect`, runs them inline).
//! 2. [`protect_table`] (one task): make sure the table's external table and continuous export
//!    exist and match the table ([`ensure`]), harvest newly exported files into the catalog
//!    ([`harvest`]) and record the export's health ([`health`]), all in the table's state
//!    document, written with an ETag condition.
//!
//! Both halves are idempotent: a second run right after the first only reads, and a task
//! delivered twice finds its work done. Only objects whose names carry the configured prefix
//! are ever altered; a table that leaves the scope keeps everything it had.

pub mod coverage;
mod ensure;
mod error;
mod harvest;
mod health;
mod lock;
mod schema;
pub mod scope;
mod state;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use ensure::current_external_table;
pub use error::ProtectError;
pub use state::{ExportHealth, HarvestState, Protection, TableState};

use crate::app::App;
use crate::ids::{DatabaseName, TableName, TableRef};
use crate::kusto::{Step, command};
use crate::storage::state::Versioned;

/// A database or table that could not be protected, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureReport {
    pub database: DatabaseName,
    pub table: Option<TableName>,
    pub error: String,
}

impl FailureReport {
    fn new(database: &DatabaseName, table: Option<&TableName>, err: &ProtectError) -> Self {
        Self {
            database: database.clone(),
            table: table.cloned(),
            error: err.to_string(),
        }
    }
}

/// What the timer half decided.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProtectPlan {
    pub tables: Vec<TableRef>,
    pub schema_snapshots_written: usize,
    /// Set when another run holds the lock and this one did nothing.
    pub skipped: Option<String>,
    /// Databases that could not be planned, with why.
    pub failures: Vec<FailureReport>,
}

impl fmt::Display for ProtectPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.skipped {
            Some(why) => write!(f, "protect skipped: {why}"),
            None => {
                write!(
                    f,
                    "protect planned {} table(s), wrote {} schema snapshot(s)",
                    self.tables.len(),
                    self.schema_snapshots_written
                )?;
                for failure in &self.failures {
                    write!(f, "\nFAILED: {}", failure.error)?;
                }
                Ok(())
            }
        }
    }
}

/// The timer half: discover the tables in scope and snapshot schemas, under the run lock.
pub async fn plan(app: &App) -> Result<ProtectPlan, ProtectError> {
    app.ensure_storage()
        .await
        .map_err(|e| ProtectError::storage("create the backup container and task queue", e))?;
    let Some(guard) = lock::RunLock::acquire(app).await? else {
        return Ok(ProtectPlan {
            skipped: Some("another protect run holds the lock".into()),
            ..ProtectPlan::default()
        });
    };
    let mut plan = ProtectPlan::default();
    // One database that fails (dropped, no permission) must not leave the others unprotected.
    for db in &app.settings.databases {
        match plan_database(app, db).await {
            Ok((tables, snapshot_written)) => {
                plan.tables.extend(tables);
                plan.schema_snapshots_written += usize::from(snapshot_written);
            }
            Err(err) => {
                tracing::error!(database = %db, error = %err, "database not planned; the others go on");
                plan.failures.push(FailureReport::new(db, None, &err));
            }
        }
    }
    guard.release(app).await?;
    tracing::info!(
        tables = plan.tables.len(),
        snapshots = plan.schema_snapshots_written,
        "protect planned"
    );
    Ok(plan)
}

async fn plan_database(
    app: &App,
    db: &DatabaseName,
) -> Result<(Vec<TableRef>, bool), ProtectError> {
    let tables = discover(app, db).await?;
    Ok((tables, schema::snapshot(app, db).await?))
}

async fn discover(app: &App, db: &DatabaseName) -> Result<Vec<TableRef>, ProtectError> {
    let step = Step::database(db, "list tables");
    let tables = step.mgmt(&app.kusto, &command::show_tables()).await?;
    let mut found = Vec::new();
    for row in tables.first().into_iter().flat_map(|t| t.rows()) {
        let name = row.str("TableName").map_err(|e| step.error(e))?;
        let table = TableName::new(name).map_err(|e| ProtectError::BadName {
            database: db.clone(),
            source: e,
        })?;
        if scope::in_scope(&app.settings.protect, db, &table) {
            found.push(TableRef {
                database: db.clone(),
                table,
            });
        } else {
            tracing::debug!(database = %db, table = %table, "out of scope");
        }
    }
    Ok(found)
}

/// What one table's step did, for the invocation log and `protect`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableOutcome {
    pub table: TableRef,
    pub changes: Vec<String>,
    pub harvested: usize,
    pub protection: Protection,
}

impl fmt::Display for TableOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}; harvested {} artifact(s)",
            self.table,
            self.protection.summary(),
            self.harvested
        )?;
        if !self.changes.is_empty() {
            write!(f, "; changed: {}", self.changes.join(", "))?;
        }
        Ok(())
    }
}

/// The task half: bring one table's backup objects, catalog and health up to date.
pub async fn protect_table(app: &App, t: &TableRef) -> Result<TableOutcome, ProtectError> {
    app.ensure_storage()
        .await
        .map_err(|e| ProtectError::storage("create the backup container and task queue", e))?;
    let path = app.layout.table_state(&t.database, &t.table);
    let mut state = Versioned::load_or(&app.blobs, &path, || TableState::new(t))
        .await
        .map_err(|e| ProtectError::storage(format!("read the state of {t}"), e))?;
    let ensured = ensure::ensure(app, t, &mut state.value).await?;
    let mut harvested = 0;
    let mut found = Vec::new();
    if let Some(export) = &ensured.export {
        let now = time::OffsetDateTime::now_utc();
        found.extend(coverage::observe(&mut state.value, export, now));
        health::check(app, t, export, &mut state.value).await?;
        harvested = harvest::harvest(app, t, &export.name, &mut state.value.harvest).await?;
    }
    let backfill = request_backfill(app, t, &mut state.value).await?;
    state.value.last_error = None;
    state.value.updated_at = Some(time::OffsetDateTime::now_utc());
    state
        .save(&app.blobs, &path)
        .await
        .map_err(|e| ProtectError::storage(format!("save the state of {t}"), e))?;
    let mut changes = ensured.changes;
    changes.extend(found);
    changes.extend(backfill);
    let outcome = TableOutcome {
        table: t.clone(),
        changes,
        harvested,
        protection: state.value.protection.clone(),
    };
    tracing::info!(database = %t.database, table = %t.table, harvested, status = %outcome.protection.summary(), "table protected");
    Ok(outcome)
}

/// Asks for a backfill of the table's history once its export has a StartCursor, and of
/// every gap found since, when `AdxBackup__Backfill` is on and none was asked for yet. The task is sent before
/// the state that remembers it is saved: a crash in between sends it again, and the backfill
/// finds its job already planned.
async fn request_backfill(
    app: &App,
    t: &TableRef,
    state: &mut TableState,
) -> Result<Option<String>, ProtectError> {
    let Some(cursor) = state.start_cursor.clone() else {
        return Ok(None);
    };
    let history = state.backfill_requested.as_ref() != Some(&cursor);
    let gaps = state.gaps.len() > state.gaps_requested;
    if !app.settings.backfill.enabled || !(history || gaps) {
        return Ok(None);
    }
    app.tasks
        .send(
            &crate::task::Task::BackfillTableV1(t.clone()).to_json(),
            None,
        )
        .await
        .map_err(|e| ProtectError::storage(format!("queue the backfill of {t}"), e))?;
    state.backfill_requested = Some(cursor);
    state.gaps_requested = state.gaps.len();
    Ok(Some(if gaps {
        "asked for a backfill of the gaps in its coverage".to_owned()
    } else {
        "asked for a backfill of its history".to_owned()
    }))
}

/// Records a permanent failure in the table's state, where `status` shows it.
pub async fn record_failure(
    app: &App,
    t: &TableRef,
    err: &ProtectError,
) -> Result<FailureReport, ProtectError> {
    let path = app.layout.table_state(&t.database, &t.table);
    let mut state = Versioned::load_or(&app.blobs, &path, || TableState::new(t))
        .await
        .map_err(|e| ProtectError::storage(format!("read the state of {t}"), e))?;
    state.value.last_error = Some(state::RecordedError {
        at: time::OffsetDateTime::now_utc(),
        message: err.to_string(),
    });
    state
        .save(&app.blobs, &path)
        .await
        .map_err(|e| ProtectError::storage(format!("save the state of {t}"), e))?;
    Ok(FailureReport::new(&t.database, Some(&t.table), err))
}

/// `protect`: plan, then every table inline, without the queue. Tables that fail are
/// reported and recorded; the others still run.
pub async fn run_once(app: &App) -> Result<String, ProtectError> {
    let plan = plan(app).await?;
    let mut lines = vec![plan.to_string()];
    let mut failed = plan.failures.len();
    for t in &plan.tables {
        match protect_table(app, t).await {
            Ok(outcome) => lines.push(outcome.to_string()),
            Err(err) => {
                failed += 1;
                tracing::error!(database = %t.database, table = %t.table, error = %err, "table not protected");
                record_failure(app, t, &err).await?;
                lines.push(format!("{t}: FAILED: {err}"));
            }
        }
    }
    if failed > 0 {
        return Err(ProtectError::TablesFailed {
            failed,
            report: lines.join("\n"),
        });
    }
    Ok(lines.join("\n"))
}
