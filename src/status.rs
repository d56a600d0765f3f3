//! status: is every table protected and current, can the backup be trusted, how far are the
//! jobs? Assembles a versioned [`StatusV1`] document from state documents only: each table's
//! protection state, its catalog totals (kept by protect and verify, so no catalog is read
//! here), its last verification, the backfill and restore job documents, the last `check`
//! report and the janitor's count of temporary objects per database. The JSON shape
//! is documented in docs/status.md and pinned by a test; [`render`] is the text a person
//! reads, and [`StatusV1::needs_attention`] is what `adx-backup status` exits non-zero on.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use futures::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::app::App;
use crate::backfill::{BackfillJob, JanitorState};
use crate::check::{self, CheckReport};
use crate::ids::{DatabaseName, JobId, TableName, TableRef};
use crate::protect::{self, Protection, TableState};
use crate::restore::state::RestoreJob;
use crate::storage::catalog_totals::{self, CatalogTotals};
use crate::storage::{BlobItem, StorageError};
use crate::verify::{self, Outcome, Verification};

/// How many tables' documents are read at once.
const READS_AT_ONCE: usize = 16;

/// The status document, version 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusV1 {
    pub version: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    /// `AdxBackup__LagAlertSeconds`: a lag over it needs attention.
    pub lag_alert_seconds: u64,
    pub needs_attention: bool,
    /// Everything that needs attention, one line each, `Database.Table: what`.
    pub attention: Vec<String>,
    pub databases: Vec<DatabaseStatus>,
    pub backfills: Vec<BackfillStatus>,
    pub restores: Vec<RestoreStatus>,
    /// The last `check` (protect runs its cheap part every pass); None before the first.
    pub check: Option<CheckStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseStatus {
    pub database: DatabaseName,
    pub tables: Vec<TableStatus>,
    /// adx-backup's temporary Kusto objects in the database as the janitor last saw them;
    /// None before its first pass.
    pub temporary_objects: Option<TemporaryObjects>,
}

/// The per-batch external tables of backfills (the product's only temporary objects).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemporaryObjects {
    /// In the database after the janitor's last pass, in use or not.
    pub count: usize,
    /// Left by crashed or abandoned jobs, dropped once their grace time passes.
    pub orphans_waiting: usize,
    /// Orphans dropped so far.
    pub dropped: u64,
}

/// What the last check found missing, each with its fix.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckStatus {
    /// `Database[.Table]: problem; fix: command`.
    pub findings: Vec<String>,
    /// What the check could not read, and why.
    pub unverified: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableStatus {
    pub table: TableName,
    pub protected: bool,
    /// In words: how it is protected, or why not.
    pub protection: String,
    pub export: Option<ExportStatus>,
    pub backfill: BackfillSummary,
    pub catalog: Option<CatalogStatus>,
    pub verification: Option<VerificationStatus>,
    pub last_error: Option<String>,
    pub attention: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportStatus {
    pub name: String,
    /// now − ExportedTo when last checked; None before the first run.
    pub lag_seconds: Option<i64>,
    pub last_run_result: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_run_time: Option<OffsetDateTime>,
    pub disabled: bool,
    pub recent_failures: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub checked_at: OffsetDateTime,
}

/// The table's backfills (its history and each gap) taken together.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillSummary {
    pub jobs: u64,
    /// Every job finished with no failed batch.
    pub complete: bool,
    pub batches_done: u64,
    pub batches_total: u64,
    pub batches_failed: u64,
    pub rows_exported: u64,
    pub rows_planned: u64,
    pub gaps: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogStatus {
    pub artifacts: u64,
    pub rows: u64,
    pub bytes: u64,
    /// Days with at least one file (the undated folder counts as one).
    pub days: u64,
    pub oldest_day: Option<String>,
    pub newest_day: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerificationStatus {
    #[serde(with = "time::serde::rfc3339")]
    pub verified_at: OffsetDateTime,
    pub outcome: Outcome,
    pub days_compared: u64,
    pub findings: Vec<String>,
    pub behind: Vec<String>,
    pub missing_files: Option<u64>,
    /// Cataloged files in storage whose footer disagrees with the catalog or is unreadable.
    pub bad_files: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackfillStatus {
    pub job: JobId,
    pub database: DatabaseName,
    pub table: TableName,
    pub reason: String,
    /// `running`, `finished` or `failed`.
    pub state: String,
    pub batches_done: u64,
    pub batches_total: u64,
    pub rows_exported: u64,
    pub rows_planned: u64,
    pub rows_per_second: Option<f64>,
    pub eta_seconds: Option<u64>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub errors: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestoreStatus {
    pub job: JobId,
    /// The job's status as the restore records it (`Ingesting`, `Succeeded`, ...).
    pub state: String,
    pub source_database: Option<DatabaseName>,
    pub target_database: Option<DatabaseName>,
    pub chunks_done: u64,
    pub chunks_total: u64,
    pub files_done: u64,
    pub files_total: u64,
    pub files_failed: u64,
    pub rows_total: u64,
    pub files_per_second: Option<f64>,
    pub eta_seconds: Option<u64>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    pub errors: Vec<String>,
}

/// What to show: everything, or one database, table or job.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub database: Option<DatabaseName>,
    pub table: Option<TableName>,
    pub job: Option<JobId>,
}

/// A state document could not be read.
#[derive(Debug, thiserror::Error)]
#[error("status could not {what}: {source}")]
pub struct StatusError {
    what: String,
    #[source]
    source: Box<StorageError>,
}

fn read_err(what: impl Into<String>) -> impl FnOnce(StorageError) -> StatusError {
    let what = what.into();
    move |e| StatusError {
        what,
        source: Box::new(e),
    }
}

impl StatusV1 {
    /// Fills `needs_attention` and `attention` from the tables and jobs.
    fn judge(mut self) -> Self {
        let mut lines = Vec::new();
        for db in &self.databases {
            for t in &db.tables {
                lines.extend(
                    t.attention
                        .iter()
                        .map(|a| format!("{}.{}: {a}", db.database, t.table)),
                );
            }
        }
        lines.extend(
            self.check
                .iter()
                .flat_map(|c| c.findings.iter().map(|f| format!("check: {f}"))),
        );
        for b in self.backfills.iter().filter(|b| b.state == "failed") {
            lines.push(format!(
                "{}.{}: backfill {} failed: {}",
                b.database,
                b.table,
                b.job,
                b.errors.join("; ")
            ));
        }
        for r in &self.restores {
            if matches!(
                r.state.as_str(),
                "Failed" | "PartiallySucceeded" | "Rejected"
            ) {
                lines.push(format!(
                    "restore {}: {} {}",
                    r.job,
                    r.state,
                    r.errors.join("; ")
                ));
            }
        }
        self.needs_attention = !lines.is_empty();
        self.attention = lines;
        self
    }
}

/// Reads every state document the filter selects and assembles the status.
pub async fn collect(app: &App, filter: &Filter) -> Result<StatusV1, StatusError> {
    let now = OffsetDateTime::now_utc();
    let lag_alert = app.settings.protect.lag_alert;
    let mut databases = Vec::new();
    let mut backfills = Vec::new();
    for db in app
        .settings
        .databases
        .iter()
        .filter(|d| filter.database.as_ref().is_none_or(|x| x == *d))
    {
        let jobs = backfill_jobs(app, db).await?;
        let mut by_table: BTreeMap<TableName, Vec<&(BackfillJob, OffsetDateTime)>> =
            BTreeMap::new();
        for job in &jobs {
            by_table.entry(job.0.table.clone()).or_default().push(job);
        }
        backfills.extend(
            jobs.iter()
                .filter(|(j, _)| filter.table.as_ref().is_none_or(|t| *t == j.table))
                .filter(|(j, _)| filter.job.as_ref().is_none_or(|id| *id == j.job))
                .map(|(j, updated)| backfill_status(j, *updated, now)),
        );
        if filter.job.is_some() {
            continue;
        }
        let tables = protect::stored_tables(app, db, filter.table.as_ref())
            .await
            .map_err(read_err(format!("list the tables of {db}")))?;
        let statuses: Vec<TableStatus> = stream::iter(tables)
            .map(|t| {
                let jobs: Vec<BackfillJob> = by_table
                    .get(&t.table)
                    .map(|js| js.iter().map(|(j, _)| j.clone()).collect())
                    .unwrap_or_default();
                async move { table_status(app, &t, &jobs, lag_alert).await }
            })
            .buffered(READS_AT_ONCE)
            .try_collect()
            .await?;
        databases.push(DatabaseStatus {
            database: db.clone(),
            tables: statuses,
            temporary_objects: temporary_objects(app, db).await?,
        });
    }
    let check = check_status(app, filter).await?;
    let restores = if filter.table.is_some() {
        Vec::new()
    } else {
        restore_jobs(app, filter, now).await?
    };
    Ok(StatusV1 {
        version: 1,
        generated_at: now,
        lag_alert_seconds: lag_alert.as_secs(),
        needs_attention: false,
        attention: Vec::new(),
        databases,
        backfills,
        restores,
        check,
    }
    .judge())
}

async fn temporary_objects(
    app: &App,
    db: &DatabaseName,
) -> Result<Option<TemporaryObjects>, StatusError> {
    let janitor: Option<JanitorState> = read_opt_doc(app, &app.layout.janitor_state(db)).await?;
    Ok(janitor.map(|j| TemporaryObjects {
        count: j.temporary,
        orphans_waiting: j.orphans.len(),
        dropped: j.dropped,
    }))
}

/// The last check's findings that the filter selects.
async fn check_status(app: &App, filter: &Filter) -> Result<Option<CheckStatus>, StatusError> {
    let report: Option<CheckReport> = read_opt_doc(app, &app.layout.check_report()).await?;
    Ok(report.map(|r| {
        let selected = |f: &&check::Finding| {
            filter
                .database
                .as_ref()
                .is_none_or(|d| f.database.as_ref().is_none_or(|x| x == d))
                && filter
                    .table
                    .as_ref()
                    .is_none_or(|t| f.table.as_ref().is_none_or(|x| x == t))
        };
        CheckStatus {
            findings: r
                .findings
                .iter()
                .filter(selected)
                .map(|f| {
                    let place = match (&f.database, &f.table) {
                        (Some(d), Some(t)) => format!("{d}.{t}"),
                        (Some(d), None) => d.to_string(),
                        _ => "cluster".to_owned(),
                    };
                    format!("{place}: {}; fix: {}", f.problem, f.fix)
                })
                .collect(),
            unverified: r.unverified,
        }
    }))
}

async fn table_status(
    app: &App,
    t: &TableRef,
    jobs: &[BackfillJob],
    lag_alert: std::time::Duration,
) -> Result<TableStatus, StatusError> {
    let state = protect::load_state(app, t)
        .await
        .map_err(read_err(format!("read the state of {t}")))?;
    let totals = catalog_totals::load(&app.blobs, &app.layout, &t.database, &t.table)
        .await
        .map_err(read_err(format!("read the catalog totals of {t}")))?;
    let verification = verify::load(app, t)
        .await
        .map_err(read_err(format!("read the verification of {t}")))?;
    Ok(assemble(
        &state,
        totals.as_ref(),
        verification.as_ref(),
        jobs,
        lag_alert,
    ))
}

/// One table's status from its documents (pure, so the rules are unit-tested).
fn assemble(
    state: &TableState,
    totals: Option<&CatalogTotals>,
    verification: Option<&Verification>,
    jobs: &[BackfillJob],
    lag_alert: std::time::Duration,
) -> TableStatus {
    let mut attention = Vec::new();
    let protected = matches!(state.protection, Protection::Protected { .. });
    if !protected {
        attention.push(format!("not protected: {}", state.protection.summary()));
    }
    let export = match (&state.protection, &state.health) {
        (Protection::Protected { export, .. }, Some(h)) => Some(ExportStatus {
            name: export.to_string(),
            lag_seconds: h.lag_seconds,
            last_run_result: h.last_run_result.clone(),
            last_run_time: h.last_run_time,
            disabled: h.disabled,
            recent_failures: h.recent_failures.len() as u64,
            checked_at: h.checked_at,
        }),
        _ => None,
    };
    if let Some(e) = &export {
        if e.disabled {
            attention.push(format!("continuous export {} is DISABLED", e.name));
        }
        if e.last_run_result.as_deref() == Some("Failed") || e.recent_failures > 0 {
            attention.push(format!(
                "continuous export {} is failing ({} recent failure(s))",
                e.name, e.recent_failures
            ));
        }
        if let Some(lag) = e.lag_seconds.filter(|l| protect::lag_over(*l, lag_alert)) {
            attention.push(format!(
                "export lag {lag}s is over {}s",
                lag_alert.as_secs()
            ));
        }
    }
    let backfill = summarize(jobs, state.gaps.len() as u64);
    let catalog = totals.map(|t| {
        let all = t.total();
        let range = t.day_range();
        CatalogStatus {
            artifacts: all.artifacts,
            rows: all.rows,
            bytes: all.bytes,
            days: t.days.len() as u64,
            oldest_day: range.map(|r| r.0.folder()),
            newest_day: range.map(|r| r.1.folder()),
            updated_at: t.updated_at,
        }
    });
    let verification = verification.map(|v| VerificationStatus {
        verified_at: v.verified_at,
        outcome: v.outcome,
        days_compared: v.days_compared,
        findings: v.findings.iter().map(ToString::to_string).collect(),
        behind: v.behind.clone(),
        missing_files: v.files.map(|f| f.missing),
        bad_files: v.files.map(|f| f.wrong_rows + f.unreadable),
    });
    match verification.as_ref().map(|v| v.outcome) {
        Some(Outcome::Drift) => attention.push(format!(
            "verification found drift: {}",
            verification
                .as_ref()
                .map(|v| v.findings.join("; "))
                .unwrap_or_default()
        )),
        Some(Outcome::Failed) => attention.push(format!(
            "verification failed: {}",
            verification
                .as_ref()
                .map(|v| v.behind.join("; "))
                .unwrap_or_default()
        )),
        _ => {}
    }
    let last_error = state.last_error.as_ref().map(|e| e.message.clone());
    if let Some(e) = &last_error {
        attention.push(format!("last task failed: {e}"));
    }
    TableStatus {
        table: state.table.clone(),
        protected,
        protection: state.protection.summary(),
        export,
        backfill,
        catalog,
        verification,
        last_error,
        attention,
    }
}

fn summarize(jobs: &[BackfillJob], gaps: u64) -> BackfillSummary {
    let mut s = BackfillSummary {
        jobs: jobs.len() as u64,
        complete: !jobs.is_empty(),
        gaps,
        ..BackfillSummary::default()
    };
    for j in jobs {
        let p = &j.progress;
        s.batches_done += p.batches_done;
        s.batches_total += total_batches(j);
        s.batches_failed += p.batches_failed;
        s.rows_exported += p.rows_exported;
        s.rows_planned += p.rows_planned;
        s.complete &= p.finished && p.batches_failed == 0 && j.failure.is_none();
    }
    s
}

/// Batches that count towards the job's end: every one not replaced by its halves.
fn total_batches(j: &BackfillJob) -> u64 {
    let p = &j.progress;
    p.batches_done + p.batches_waiting + p.batches_running + p.batches_failed
}

fn backfill_status(
    j: &BackfillJob,
    updated: OffsetDateTime,
    now: OffsetDateTime,
) -> BackfillStatus {
    let p = &j.progress;
    let failed = p.batches_failed > 0 || j.failure.is_some();
    let state = if !p.finished {
        "running"
    } else if failed {
        "failed"
    } else {
        "finished"
    };
    let end = if p.finished { updated } else { now };
    let rate = rate(p.rows_exported, j.created_at, end);
    let remaining = p
        .rows_planned
        .saturating_sub(p.rows_exported + p.rows_failed);
    let mut errors: Vec<String> = j
        .failure
        .iter()
        .map(|f| format!("{}: {}", f.step, f.message))
        .collect();
    errors.extend(j.batches.iter().filter_map(|(id, b)| match &b.state {
        crate::backfill::BatchState::Failed { message } => Some(format!("batch {id}: {message}")),
        _ => None,
    }));
    BackfillStatus {
        job: j.job.clone(),
        database: j.database.clone(),
        table: j.table.clone(),
        reason: j.reason.clone(),
        state: state.to_owned(),
        batches_done: p.batches_done,
        batches_total: total_batches(j),
        rows_exported: p.rows_exported,
        rows_planned: p.rows_planned,
        rows_per_second: rate,
        eta_seconds: eta(!p.finished, remaining, rate),
        started_at: j.created_at,
        updated_at: updated,
        errors,
    }
}

fn restore_status(j: &RestoreJob, now: OffsetDateTime) -> RestoreStatus {
    let t = &j.totals;
    let done = t.ingested_artifacts + t.failed_artifacts;
    let rate = rate(done, j.created_at, j.finished_at.unwrap_or(now));
    let mut errors: Vec<String> = j
        .error
        .iter()
        .map(|e| format!("{}: {}", e.step, e.message))
        .collect();
    errors.extend(j.report.iter().flat_map(|r| r.missing.iter().cloned()));
    RestoreStatus {
        job: j.job.clone(),
        state: format!("{:?}", j.status),
        source_database: j.source_database.clone(),
        target_database: j.request.as_ref().map(|r| r.target.database.clone()),
        chunks_done: j.first_open,
        chunks_total: t.chunks,
        files_done: done,
        files_total: t.artifacts,
        files_failed: t.failed_artifacts,
        rows_total: t.rows,
        files_per_second: rate,
        eta_seconds: eta(
            !j.status.is_final() && j.plan.done,
            t.artifacts.saturating_sub(done),
            rate,
        ),
        started_at: j.created_at,
        finished_at: j.finished_at,
        errors,
    }
}

/// Units per second between two moments; None before anything was done.
fn rate(done: u64, from: OffsetDateTime, to: OffsetDateTime) -> Option<f64> {
    let secs = (to - from).as_seconds_f64();
    (done > 0 && secs > 0.0).then(|| (done as f64 / secs * 10.0).round() / 10.0)
}

fn eta(running: bool, remaining: u64, rate: Option<f64>) -> Option<u64> {
    let rate = rate.filter(|r| *r > 0.0 && running)?;
    Some((remaining as f64 / rate).ceil() as u64)
}

/// Every backfill job of a database, with when its document was last written.
async fn backfill_jobs(
    app: &App,
    db: &DatabaseName,
) -> Result<Vec<(BackfillJob, OffsetDateTime)>, StatusError> {
    let items: Vec<BlobItem> = app
        .blobs
        .list(&app.layout.backfill_jobs_dir(db))
        .try_collect()
        .await
        .map_err(read_err(format!("list the backfill jobs of {db}")))?;
    stream::iter(items)
        .map(|item| async move {
            let job: BackfillJob = read_doc(app, &item.path).await?;
            Ok((job, item.last_modified))
        })
        .buffered(READS_AT_ONCE)
        .try_collect()
        .await
}

/// Every restore job the filter selects (job documents only, not their chunks).
async fn restore_jobs(
    app: &App,
    filter: &Filter,
    now: OffsetDateTime,
) -> Result<Vec<RestoreStatus>, StatusError> {
    let items: Vec<BlobItem> = app
        .blobs
        .list(&app.layout.restore_jobs_dir())
        .try_filter(|item| std::future::ready(app.layout.is_restore_job(&item.path)))
        .try_collect()
        .await
        .map_err(read_err("list the restore jobs"))?;
    let jobs: Vec<RestoreJob> = stream::iter(items)
        .map(|item| async move { read_doc(app, &item.path).await })
        .buffered(READS_AT_ONCE)
        .try_collect()
        .await?;
    Ok(jobs
        .iter()
        .filter(|j| filter.job.as_ref().is_none_or(|id| *id == j.job))
        .filter(|j| {
            filter.database.is_none() || j.source_database.as_ref() == filter.database.as_ref()
        })
        .map(|j| restore_status(j, now))
        .collect())
}

async fn read_opt_doc<T: serde::de::DeserializeOwned>(
    app: &App,
    path: &str,
) -> Result<Option<T>, StatusError> {
    let Some((body, _)) = app
        .blobs
        .read_opt(path)
        .await
        .map_err(read_err(format!("read {path}")))?
    else {
        return Ok(None);
    };
    crate::storage::state::decode(path, &body)
        .map(Some)
        .map_err(read_err(format!("read {path}")))
}

async fn read_doc<T: serde::de::DeserializeOwned>(app: &App, path: &str) -> Result<T, StatusError> {
    let (body, _) = app
        .blobs
        .read(path)
        .await
        .map_err(read_err(format!("read {path}")))?;
    crate::storage::state::decode(path, &body).map_err(read_err(format!("read {path}")))
}

/// Whether the terminal gets colours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    On,
    Off,
}

impl Colour {
    fn paint(self, code: &str, text: &str) -> String {
        match self {
            Colour::On => format!("\x1b[{code}m{text}\x1b[0m"),
            Colour::Off => text.to_owned(),
        }
    }
}

/// The status as a person reads it: one line per table, one per job, then what needs
/// attention. Stable column order; cells never contain a tab.
pub fn render(s: &StatusV1, colour: Colour) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "adx-backup status at {} (lag alert over {}s)",
        s.generated_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        s.lag_alert_seconds
    );
    let mut rows = vec![
        [
            "TABLE",
            "PROTECTED",
            "LAG",
            "LAST RUN",
            "BACKFILL",
            "FILES",
            "ROWS",
            "BYTES",
            "DAYS",
            "VERIFIED",
        ]
        .map(str::to_owned),
    ];
    let mut bad_rows = Vec::new();
    for db in &s.databases {
        for t in &db.tables {
            if !t.attention.is_empty() {
                bad_rows.push(rows.len());
            }
            rows.push(table_cells(&db.database, t));
        }
    }
    if rows.len() > 1 {
        out.push('\n');
        out.push_str(&columns(&rows, &bad_rows, colour));
    }
    for db in &s.databases {
        if let Some(t) = db.temporary_objects {
            let _ = writeln!(
                out,
                "{}: {} temporary object(s) (backfill batch tables), {} orphan(s) waiting to be dropped, {} dropped so far",
                db.database, t.count, t.orphans_waiting, t.dropped
            );
        }
    }
    if let Some(c) = &s.check {
        for u in &c.unverified {
            let _ = writeln!(out, "check could not verify: {u}");
        }
    }
    if !s.backfills.is_empty() || !s.restores.is_empty() {
        let mut jobs = vec![
            [
                "JOB", "KIND", "WHAT", "STATE", "PROGRESS", "ROWS", "RATE", "ETA",
            ]
            .map(str::to_owned),
        ];
        let mut bad = Vec::new();
        for b in &s.backfills {
            if b.state == "failed" {
                bad.push(jobs.len());
            }
            jobs.push([
                b.job.to_string(),
                "backfill".into(),
                format!("{}.{}", b.database, b.table),
                b.state.clone(),
                format!("{}/{} batches", b.batches_done, b.batches_total),
                format!("{}/{}", b.rows_exported, b.rows_planned),
                b.rows_per_second
                    .map_or("-".into(), |r| format!("{r} rows/s")),
                b.eta_seconds.map_or("-".into(), |e| format!("{e}s")),
            ]);
        }
        for r in &s.restores {
            if matches!(
                r.state.as_str(),
                "Failed" | "PartiallySucceeded" | "Rejected"
            ) {
                bad.push(jobs.len());
            }
            jobs.push([
                r.job.to_string(),
                "restore".into(),
                format!(
                    "{} -> {}",
                    r.source_database
                        .as_ref()
                        .map_or("?".into(), ToString::to_string),
                    r.target_database
                        .as_ref()
                        .map_or("?".into(), ToString::to_string)
                ),
                r.state.clone(),
                format!(
                    "{}/{} chunks, {}/{} files",
                    r.chunks_done, r.chunks_total, r.files_done, r.files_total
                ),
                r.rows_total.to_string(),
                r.files_per_second
                    .map_or("-".into(), |f| format!("{f} files/s")),
                r.eta_seconds.map_or("-".into(), |e| format!("{e}s")),
            ]);
        }
        out.push('\n');
        out.push_str(&columns(&jobs, &bad, colour));
    }
    out.push('\n');
    if s.attention.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            colour.paint("32", "OK: nothing needs attention.")
        );
    } else {
        let _ = writeln!(
            out,
            "{}",
            colour.paint("31;1", &format!("NEEDS ATTENTION ({}):", s.attention.len()))
        );
        for line in &s.attention {
            let _ = writeln!(out, "  - {}", line.replace(['\t', '\n'], " "));
        }
    }
    out
}

fn table_cells(db: &DatabaseName, t: &TableStatus) -> [String; 10] {
    let dash = || "-".to_owned();
    let catalog = t.catalog.as_ref();
    [
        format!("{db}.{}", t.table),
        if t.protected {
            "yes".into()
        } else {
            "NO".into()
        },
        t.export
            .as_ref()
            .and_then(|e| e.lag_seconds)
            .map_or_else(dash, |l| format!("{l}s")),
        t.export.as_ref().map_or_else(dash, |e| {
            if e.disabled {
                "DISABLED".into()
            } else {
                e.last_run_result.clone().unwrap_or_else(dash)
            }
        }),
        match (t.backfill.jobs, t.backfill.complete) {
            (0, _) => dash(),
            (_, true) => format!(
                "done {}/{}",
                t.backfill.batches_done, t.backfill.batches_total
            ),
            (_, false) => format!(
                "{}/{} batches",
                t.backfill.batches_done, t.backfill.batches_total
            ),
        },
        catalog.map_or_else(dash, |c| c.artifacts.to_string()),
        catalog.map_or_else(dash, |c| c.rows.to_string()),
        catalog.map_or_else(dash, |c| c.bytes.to_string()),
        catalog.map_or_else(dash, |c| match (&c.oldest_day, &c.newest_day) {
            (Some(a), Some(b)) => format!("{} ({a}..{b})", c.days),
            _ => c.days.to_string(),
        }),
        t.verification
            .as_ref()
            .map_or("never".into(), |v| v.outcome.to_string()),
    ]
}

/// Left-aligned columns two spaces apart; rows in `bad` painted red.
fn columns<const N: usize>(rows: &[[String; N]], bad: &[usize], colour: Colour) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let line = line.join("  ").trim_end().to_owned();
        let painted = if i == 0 {
            colour.paint("1", &line)
        } else if bad.contains(&i) {
            colour.paint("31", &line)
        } else {
            line
        };
        let _ = writeln!(out, "{painted}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protect::ExportHealth;

    fn protected_state() -> TableState {
        let t = TableRef {
            database: DatabaseName::new("Sales").unwrap(),
            table: TableName::new("Orders").unwrap(),
        };
        let mut s = TableState::new(&t);
        s.protection = Protection::Protected {
            external_table: TableName::new("adxbk_Orders").unwrap(),
            export: crate::ids::ExportName::new("adxbk_Orders").unwrap(),
            partition_column: None,
            fingerprint: "f".into(),
        };
        s.health = Some(ExportHealth {
            checked_at: OffsetDateTime::UNIX_EPOCH,
            lag_seconds: Some(10),
            last_run_result: Some("Completed".into()),
            last_run_time: None,
            disabled: false,
            recent_failures: Vec::new(),
        });
        s
    }

    #[test]
    fn attention_rules() {
        let lag = std::time::Duration::from_secs(60);
        let ok = assemble(&protected_state(), None, None, &[], lag);
        assert!(ok.attention.is_empty(), "{:?}", ok.attention);

        let mut lagging = protected_state();
        lagging.health.as_mut().unwrap().lag_seconds = Some(61);
        let a = assemble(&lagging, None, None, &[], lag).attention;
        assert_eq!(a, ["export lag 61s is over 60s"]);

        let mut disabled = protected_state();
        disabled.health.as_mut().unwrap().disabled = true;
        assert!(assemble(&disabled, None, None, &[], lag).attention[0].contains("DISABLED"));

        let mut failing = protected_state();
        failing.health.as_mut().unwrap().last_run_result = Some("Failed".into());
        assert!(assemble(&failing, None, None, &[], lag).attention[0].contains("failing"));

        let mut unprotected = protected_state();
        unprotected.protection = Protection::Unprotected {
            reason: "no ingestion time".into(),
        };
        let a = assemble(&unprotected, None, None, &[], lag).attention;
        assert_eq!(a, ["not protected: UNPROTECTED: no ingestion time"]);
    }

    #[test]
    fn rates_and_etas() {
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let t1 = t0 + time::Duration::seconds(4);
        assert_eq!(rate(10, t0, t1), Some(2.5));
        assert_eq!(rate(0, t0, t1), None);
        assert_eq!(eta(true, 5, Some(2.5)), Some(2));
        assert_eq!(eta(false, 5, Some(2.5)), None);
    }

    #[test]
    fn colours_only_when_asked() {
        let s = StatusV1 {
            version: 1,
            generated_at: OffsetDateTime::UNIX_EPOCH,
            lag_alert_seconds: 60,
            needs_attention: false,
            attention: Vec::new(),
            databases: Vec::new(),
            backfills: Vec::new(),
            restores: Vec::new(),
            check: None,
        };
        let plain = render(&s, Colour::Off);
        assert!(!plain.contains('\x1b'), "{plain}");
        assert!(plain.contains("OK: nothing needs attention."));
        assert!(render(&s, Colour::On).contains("\x1b[32m"));

        let checked = StatusV1 {
            check: Some(CheckStatus {
                findings: vec!["Sales: no role; fix: .add".to_owned()],
                unverified: vec!["the policy".to_owned()],
            }),
            ..s
        }
        .judge();
        assert!(checked.needs_attention);
        assert_eq!(checked.attention, ["check: Sales: no role; fix: .add"]);
        let text = render(&checked, Colour::Off);
        assert!(
            text.contains("check could not verify: the policy"),
            "{text}"
        );
    }
}
