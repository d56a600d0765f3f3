//! protect: keep every table in scope continuously backed up, with a catalog of valid files.
//!
//! A run has two halves, so each invocation stays small however many tables there are:
//!
//! 1. [`plan`] (the timer): under a run lock, read each database once (its tables and
//!    schemas, continuous exports and external tables), snapshot the database schema when it
//!    changed, and pick the tables that need work ([`plan`](self::plan) module): new or
//!    changed ones, broken or failing exports, exports that moved. It queues one task per
//!    picked table on the task queue (or, for `adx-backup protect`, the caller runs them
//!    inline). Unchanged tables cost nothing; a full pass (daily, or `protect --full`)
//!    checks them all.
//! 2. [`protect_table`] (one task): make sure the table's external table and continuous export
//!    exist and match the table ([`ensure`]), harvest newly exported files into the catalog
//!    ([`harvest`]) and record the export's health ([`health`]), all in the table's state
//!    document, written with an ETag condition. [`harvest_table`] is the harvest alone, for a
//!    table whose export moved and nothing else.
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
mod plan;
mod schema;
pub mod scope;
pub mod servable;
mod state;

use std::fmt;

use futures::{StreamExt, stream};

use serde::{Deserialize, Serialize};

pub use ensure::current_external_table;
pub(crate) use ensure::ingestion_time_enabled;
pub use error::ProtectError;
pub use health::lag_over;
pub use plan::Delivery;
use plan::Picked;
pub use state::{ExportHealth, HarvestState, Protection, TableState};

use crate::app::App;
use crate::ids::{DatabaseName, HarvestRef, TableName, TableRef};
use crate::storage::catalog_totals;
use crate::storage::state::Versioned;

/// How many tables `protect` works on at once, as the queue's tasks would run side by side.
const TABLES_AT_ONCE: usize = 8;

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
    /// Tables to check fully (`ProtectTableV1`).
    pub tables: Vec<TableRef>,
    /// Tables whose export moved and nothing else: harvest only (`HarvestTableV1`).
    pub harvests: Vec<HarvestRef>,
    /// In scope, nothing to do.
    pub unchanged: usize,
    /// Queued by an earlier pass and not finished yet, so not queued again.
    pub in_flight: usize,
    /// Every table was checked, changed or not.
    pub full_pass: bool,
    pub schema_snapshots_written: usize,
    /// The janitor's passes over the databases: temporary objects left, orphans, drops.
    #[serde(default)]
    pub janitor: crate::backfill::Sweep,
    /// What the check before the pass found (`$state/check.json` has each with its fix).
    #[serde(default)]
    pub check_findings: usize,
    /// Prune tasks queued (one per table with a retention policy).
    #[serde(default)]
    pub prunes_queued: usize,
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
                    "protect planned {} table(s), wrote {} schema snapshot(s); {} harvest(s), {} unchanged, {} still queued{}",
                    self.tables.len(),
                    self.schema_snapshots_written,
                    self.harvests.len(),
                    self.unchanged,
                    self.in_flight,
                    if self.full_pass { " (full pass)" } else { "" }
                )?;
                if self.check_findings > 0 {
                    write!(
                        f,
                        "; check found {} thing(s) to fix (see $state/check.json or run adx-backup check)",
                        self.check_findings
                    )?;
                }
                let j = &self.janitor;
                if j.temporary + j.dropped > 0 {
                    write!(
                        f,
                        "; {} temporary object(s) ({} orphaned), {} leftover(s) dropped",
                        j.temporary, j.orphans, j.dropped
                    )?;
                }
                for failure in &self.failures {
                    write!(f, "\nFAILED: {}", failure.error)?;
                }
                Ok(())
            }
        }
    }
}

/// The timer half: find the tables that need work, deliver it, and snapshot schemas, under
/// the run lock. `full` checks every table in scope, changed or not.
pub async fn plan(app: &App, full: bool, delivery: Delivery) -> Result<ProtectPlan, ProtectError> {
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
    preflight(app, &mut plan).await;
    // One database that fails (dropped, no permission) must not leave the others unprotected.
    for db in &app.settings.databases {
        match plan_database(app, db, full, delivery).await {
            Ok((planned, snapshot_written)) => {
                sweep(app, db, &planned.external_docs, &mut plan).await;
                plan.add(planned);
                plan.schema_snapshots_written += usize::from(snapshot_written);
            }
            Err(err) => {
                tracing::error!(database = %db, error = %err, "database not planned; the others go on");
                plan.failures.push(FailureReport::new(db, None, &err));
            }
        }
    }
    if delivery == Delivery::Queue && plan.full_pass {
        queue_prunes(app, &mut plan).await;
    }
    guard.release(app).await?;
    tracing::info!(
        checks = plan.tables.len(),
        harvests = plan.harvests.len(),
        unchanged = plan.unchanged,
        in_flight = plan.in_flight,
        full_pass = plan.full_pass,
        snapshots = plan.schema_snapshots_written,
        "protect planned"
    );
    Ok(plan)
}

/// Retention's share of the timer, on full passes only (daily by default: a policy counts
/// whole days, so more often would only re-read the same state): one prune task per table
/// with a policy, each bounded, the rest on the next full pass. A failure is logged and does
/// not stop protection.
async fn queue_prunes(app: &App, plan: &mut ProtectPlan) {
    match crate::prune::fan_out(app, time::OffsetDateTime::now_utc()).await {
        Ok(n) => plan.prunes_queued = n,
        Err(err) => {
            tracing::warn!(error = %err, "prune tasks not queued; the next pass tries again");
        }
    }
}

/// The cheap part of `adx-backup check` (the app's roles, the cluster identity's usages)
/// before the pass changes anything: each finding is logged with its fix and kept in
/// `$state/check.json` for `status`. It does not stop the pass: a database the app may not
/// change fails on its own with Kusto's 403, and the others go on.
async fn preflight(app: &App, plan: &mut ProtectPlan) {
    match crate::check::access(app).await {
        Ok(report) => {
            for f in &report.findings {
                tracing::warn!(database = ?f.database, problem = %f.problem, fix = %f.fix, "check found something to fix");
            }
            plan.check_findings = report.findings.len();
        }
        Err(err) => {
            tracing::warn!(error = %err, "the check before the pass failed; the pass goes on");
        }
    }
}

/// The janitor's pass over `db` (see [`crate::backfill::sweep`]); a failure is reported
/// with the plan's and does not stop protection.
async fn sweep(
    app: &App,
    db: &DatabaseName,
    external_docs: &std::collections::HashMap<String, String>,
    plan: &mut ProtectPlan,
) {
    match crate::backfill::sweep(app, db, external_docs).await {
        Ok(s) => {
            plan.janitor.temporary += s.temporary;
            plan.janitor.orphans += s.orphans;
            plan.janitor.dropped += s.dropped;
        }
        Err(err) => {
            tracing::error!(database = %db, error = %err, "the janitor's pass failed; the next pass tries again");
            plan.failures.push(FailureReport {
                database: db.clone(),
                table: None,
                error: format!("janitor: {err}"),
            });
        }
    }
}

impl ProtectPlan {
    fn add(&mut self, db: plan::DatabasePlan) {
        for picked in db.work {
            match picked {
                Picked::Check(t) => self.tables.push(t),
                Picked::Harvest(h) => self.harvests.push(h),
            }
        }
        self.unchanged += db.unchanged;
        self.in_flight += db.in_flight;
        self.full_pass |= db.full_pass;
    }
}

async fn plan_database(
    app: &App,
    db: &DatabaseName,
    full: bool,
    delivery: Delivery,
) -> Result<(plan::DatabasePlan, bool), ProtectError> {
    let planned = plan::plan_database(app, db, full, delivery).await?;
    Ok((planned, schema::snapshot(app, db).await?))
}

/// The one log line of a table (or materialized view) left unprotected, with its reason and
/// what to do; the stable `event` is what the `table-failed` alert matches.
pub(crate) fn log_unprotected(db: &DatabaseName, table: &TableName, reason: &str) {
    tracing::error!(event = "adxbackup.table_unprotected", database = %db, table = %table, reason, "table is not protected");
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

/// The table's state document (a fresh one for a table seen the first time), once the backup
/// container and task queue exist: the first invocation after deployment may be any task.
async fn load_table_state(
    app: &App,
    t: &TableRef,
) -> Result<(String, Versioned<TableState>), ProtectError> {
    app.ensure_storage()
        .await
        .map_err(|e| ProtectError::storage("create the backup container and task queue", e))?;
    let path = app.layout.table_state(&t.database, &t.table);
    let state = Versioned::load_or(&app.blobs, &path, || TableState::new(t))
        .await
        .map_err(|e| ProtectError::storage(format!("read the state of {t}"), e))?;
    Ok((path, state))
}

/// The table's state as last saved (a fresh one for a table never seen), for readers such as
/// `status` and `verify`.
pub async fn load_state(
    app: &App,
    t: &TableRef,
) -> Result<TableState, crate::storage::StorageError> {
    let path = app.layout.table_state(&t.database, &t.table);
    Versioned::load_or(&app.blobs, &path, || TableState::new(t))
        .await
        .map(|v| v.value)
}

/// A database's table states could not be listed.
#[derive(Debug, thiserror::Error)]
#[error("could not list the tables of database {database}: {source}")]
pub struct ListTablesError {
    pub database: DatabaseName,
    #[source]
    pub source: crate::storage::StorageError,
}

/// Every table with a state document in the configured databases, narrowed to `database`
/// and `table` when given (what verify and prune work through).
pub async fn selected_tables(
    app: &App,
    database: Option<&DatabaseName>,
    table: Option<&TableName>,
) -> Result<Vec<TableRef>, ListTablesError> {
    let mut out = Vec::new();
    for db in app
        .settings
        .databases
        .iter()
        .filter(|d| database.is_none_or(|x| x == *d))
    {
        let found = stored_tables(app, db, table)
            .await
            .map_err(|source| ListTablesError {
                database: db.clone(),
                source,
            })?;
        out.extend(found);
    }
    Ok(out)
}

/// Every table of `db` protect has a state document for, narrowed to `only` when given.
pub async fn stored_tables(
    app: &App,
    db: &DatabaseName,
    only: Option<&TableName>,
) -> Result<Vec<TableRef>, crate::storage::StorageError> {
    use futures::TryStreamExt;
    let paths: Vec<String> = app
        .blobs
        .list(&app.layout.table_states_of(db))
        .map_ok(|item| item.path)
        .try_collect()
        .await?;
    Ok(paths
        .iter()
        .filter_map(|p| app.layout.table_of_state(db, p))
        .filter(|t| only.is_none_or(|x| x == t))
        .map(|table| TableRef {
            database: db.clone(),
            table,
        })
        .collect())
}

/// How often a table's step is redone from a fresh read after losing a race on one of its
/// documents before the delivery fails. Twin deliveries, a harvest beside a check, and a
/// backfill recording a gap all write the table's state; every part of a step is safe to
/// repeat, and failing the delivery instead spent the message's dequeue count on races
/// (the chaos runner saw a task reach its last delivery that way).
const RACE_ATTEMPTS: usize = 4;

/// Runs `step` again while it loses an ETag race, up to [`RACE_ATTEMPTS`] times.
async fn redo_lost_races<F, Fut>(t: &TableRef, mut step: F) -> Result<TableOutcome, ProtectError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<TableOutcome, ProtectError>>,
{
    let mut attempt = 1;
    loop {
        match step().await {
            Err(e) if e.is_lost_race() && attempt < RACE_ATTEMPTS => {
                tracing::info!(database = %t.database, table = %t.table, attempt, error = %e, "lost a race on the table's documents; redoing the step from a fresh read");
                attempt += 1;
            }
            done => return done,
        }
    }
}

/// The task half: bring one table's backup objects, catalog and health up to date.
pub async fn protect_table(app: &App, t: &TableRef) -> Result<TableOutcome, ProtectError> {
    redo_lost_races(t, || Box::pin(protect_table_once(app, t))).await
}

async fn protect_table_once(app: &App, t: &TableRef) -> Result<TableOutcome, ProtectError> {
    let (path, mut state) = load_table_state(app, t).await?;
    let was_exported_by = match &state.value.protection {
        Protection::Protected { export, .. } => Some(export.clone()),
        Protection::New | Protection::Unprotected { .. } => None,
    };
    let ensured = ensure::ensure(app, t, &mut state.value).await?;
    let mut harvested = 0;
    let mut found = Vec::new();
    if let Some(export) = &ensured.export {
        let now = time::OffsetDateTime::now_utc();
        found.extend(coverage::observe(&mut state.value, export, now));
        health::check(app, t, export, &mut state.value).await?;
        harvested = harvest::harvest(app, t, &export.name, &mut state.value.harvest).await?;
    } else if let Some(export) = was_exported_by {
        harvested = last_harvest(app, t, &export, &mut state.value.harvest).await;
    }
    let backfill = request_backfill(app, t, &mut state.value).await?;
    save_done(app, t, &path, &mut state).await?;
    catalog_totals::refresh_after_append(&app.blobs, &app.layout, &t.database, &t.table).await;
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

/// A table protected until now and not any more (a policy continuous export cannot serve
/// came, or the IngestionTime policy went off): what its export already wrote is cataloged
/// once more, so no row exported before the change is lost from the backup. Best effort: the
/// export may be gone already (dropped by whoever fixes the table), and the table's reason
/// is what `status` must show, so a failure here is logged, not raised.
async fn last_harvest(
    app: &App,
    t: &TableRef,
    export: &crate::ids::ExportName,
    h: &mut HarvestState,
) -> usize {
    match harvest::harvest(app, t, export, h).await {
        Ok(n) => n,
        Err(err) => {
            tracing::warn!(database = %t.database, table = %t.table, export = %export, error = %err,
                "the last harvest of an export whose table is no longer protected failed; its files exported since the previous harvest are not cataloged");
            0
        }
    }
}

/// The harvest alone, for a table whose export moved while nothing else changed (the plan
/// decided so from the database-wide reads). A table that is not protected gets the full
/// check instead: only that can tell what it needs.
pub async fn harvest_table(app: &App, h: &HarvestRef) -> Result<TableOutcome, ProtectError> {
    let t = &h.table_ref();
    redo_lost_races(t, || Box::pin(harvest_table_once(app, h))).await
}

async fn harvest_table_once(app: &App, h: &HarvestRef) -> Result<TableOutcome, ProtectError> {
    let t = &h.table_ref();
    let (path, mut state) = load_table_state(app, t).await?;
    let Protection::Protected { export, .. } = &state.value.protection else {
        return protect_table_once(app, t).await;
    };
    let export = export.clone();
    let harvested = harvest::harvest(app, t, &export, &mut state.value.harvest).await?;
    // How far the export reached, as the plan saw it: a gap found later starts there, so it
    // must not lag behind what this harvest cataloged.
    if h.exported_to.is_some() && state.value.export_start_cursor.is_some() {
        state.value.export_exported_to = h.exported_to;
    }
    save_done(app, t, &path, &mut state).await?;
    catalog_totals::refresh_after_append(&app.blobs, &app.layout, &t.database, &t.table).await;
    tracing::info!(database = %t.database, table = %t.table, harvested, "table harvested");
    Ok(TableOutcome {
        table: t.clone(),
        changes: Vec::new(),
        harvested,
        protection: state.value.protection.clone(),
    })
}

/// Saves a table's state after a task succeeded: `updated_at` is what the plan reads to know
/// the task finished.
async fn save_done(
    app: &App,
    t: &TableRef,
    path: &str,
    state: &mut Versioned<TableState>,
) -> Result<(), ProtectError> {
    state.value.last_error = None;
    state.value.updated_at = Some(time::OffsetDateTime::now_utc());
    state
        .save(&app.blobs, path)
        .await
        .map_err(|e| ProtectError::storage(format!("save the state of {t}"), e))
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

/// `protect`: plan, then each table that needs work inline, without the queue. Tables that
/// fail are reported and recorded; the others still run.
pub async fn run_once(app: &App) -> Result<String, ProtectError> {
    run_pass(app, false).await
}

/// `protect --full`: as [`run_once`], checking every table in scope, changed or not.
pub async fn run_full_pass(app: &App) -> Result<String, ProtectError> {
    run_pass(app, true).await
}

async fn run_pass(app: &App, full: bool) -> Result<String, ProtectError> {
    let plan = plan(app, full, Delivery::Inline).await?;
    let mut lines = vec![plan.to_string()];
    let mut failed = plan.failures.len();
    let checks = plan.tables.iter().map(|t| (t.clone(), None));
    let harvests = plan.harvests.iter().map(|h| (h.table_ref(), Some(h)));
    let results: Vec<_> = stream::iter(checks.chain(harvests))
        .map(|(t, harvest)| async move {
            let done = match harvest {
                None => protect_table(app, &t).await,
                Some(h) => harvest_table(app, h).await,
            };
            (t, done)
        })
        .buffered(TABLES_AT_ONCE)
        .collect()
        .await;
    for (t, done) in results {
        match done {
            Ok(outcome) => lines.push(outcome.to_string()),
            Err(err) => {
                failed += 1;
                tracing::error!(database = %t.database, table = %t.table, error = %err, "table not protected");
                record_failure(app, &t, &err).await?;
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
