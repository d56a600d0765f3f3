//! status: is every table protected and current, can the backup be trusted, how far are the
//! jobs? Assembles a versioned [`StatusV1`] document from state documents only: each table's
//! protection state, its catalog totals (kept by protect and verify, so no catalog is read
//! here), its last verification, the backfill and restore job documents, the last `check`
//! report and the janitor's count of temporary objects per database. The JSON shape
//! is documented in docs/status.md and pinned by a test; [`render`] is the text a person
//! reads, and [`StatusV1::needs_attention`] is what `adx-backup status` exits non-zero on.
//!
//! Retention: per table the policy in force, what the next prune removes ([`prune::decide`]
//! over the catalog totals, the decision a prune makes), what the last prune left waiting, and
//! an alert when a day the policy keeps was pruned (docs/retention.md, "Status").

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use futures::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::app::App;
use crate::backfill::{BackfillJob, JanitorState};
use crate::check::{self, CheckReport};
use crate::ids::{DatabaseName, Day, JobId, TableName, TableRef};
use crate::protect::{self, Protection, TableState};
use crate::prune::{self, PruneRun};
use crate::restore::state::RestoreJob;
use crate::settings::Policy;
use crate::storage::catalog_totals::{self, CatalogTotals};
use crate::storage::prune::Prune;
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
    pub retention: RetentionStatus,
    pub last_error: Option<String>,
    pub attention: Vec<String>,
}

/// The table's retention: its policy, what the next prune removes, what the last one left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionStatus {
    /// `keep` (a number of days), `forever` (an override keeps the table whole) or `none`
    /// (no retention setting names it: nothing is ever pruned).
    pub policy: String,
    pub keep_days: Option<u32>,
    /// Month-firsts kept beyond `keep_days` (0: none).
    pub monthly_months: u32,
    /// The oldest day the policy keeps whole today.
    pub first_kept_day: Option<String>,
    /// What the next prune removes, decided from the catalog totals; None without `keep`.
    pub next_prune: Option<NextPrune>,
    /// What the backup keeps restorable (the catalog's bytes).
    pub bytes_kept: u64,
    /// Days pruned so far and the newest of them (as the totals last saw the prune records).
    pub pruned_days: u64,
    pub newest_pruned_day: Option<String>,
    /// What the last prune did and left; None before the first.
    pub last_prune: Option<LastPrune>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextPrune {
    pub days: u64,
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
    pub oldest_day: Option<String>,
    pub newest_day: Option<String>,
    /// Days past the policy beyond the per-pass bound, for the passes after.
    pub more_days: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastPrune {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub recorded_days: u64,
    pub finished_days: u64,
    pub blobs_deleted: u64,
    /// Recorded days (out of every restore) whose blobs are not all deleted yet.
    pub unfinished_days: u64,
    pub skipped: Option<String>,
    /// Why deletes wait (an immutability policy), and until when it can be known.
    pub deletes_deferred: Option<String>,
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
    collect_at(app, filter, OffsetDateTime::now_utc()).await
}

/// The status as of `now` (its rates, and the day retention counts from).
pub async fn collect_at(
    app: &App,
    filter: &Filter,
    now: OffsetDateTime,
) -> Result<StatusV1, StatusError> {
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
                async move { table_status(app, &t, &jobs, lag_alert, now.date()).await }
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
    today: Date,
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
    let last_run = prune::last_run(app, t)
        .await
        .map_err(read_err(format!("read the last prune of {t}")))?;
    let policy = app.settings.retention.policy(t);
    let breach = match breached_day(policy, totals.as_ref(), today) {
        Some(day) => {
            crate::storage::prune::read(&app.blobs, &app.layout, &t.database, &t.table, day)
                .await
                .map_err(read_err(format!("read the prune record of {t} {day}")))?
        }
        None => None,
    };
    let retention = RetentionFacts {
        policy,
        today,
        max_days_per_pass: app.settings.retention.max_days_per_pass,
        last_run: last_run.as_ref(),
        breach: breach.as_ref(),
    };
    Ok(assemble(
        &state,
        totals.as_ref(),
        verification.as_ref(),
        jobs,
        lag_alert,
        &retention,
    ))
}

/// What status knows of a table's retention besides its catalog totals.
struct RetentionFacts<'a> {
    policy: Policy,
    today: Date,
    max_days_per_pass: usize,
    last_run: Option<&'a PruneRun>,
    /// The record of the newest pruned day, when the policy keeps that day.
    breach: Option<&'a Prune>,
}

/// The newest pruned day, when the policy in force keeps it today: evidence that rows the
/// policy promises left the backup. A day leaves the restorable set only through a prune
/// record (docs/retention.md, "Status"), so dates alone (the oldest restorable day newer
/// than the policy's first day) are no evidence: the source may have had no rows then, the
/// table may be protected for less than the policy's days, a backfill may still be running.
fn breached_day(policy: Policy, totals: Option<&CatalogTotals>, today: Date) -> Option<Day> {
    let keep = policy.keep()?;
    totals?
        .newest_pruned
        .filter(|d| d.date() >= prune::first_kept(keep, today))
}

/// One table's status from its documents (pure, so the rules are unit-tested).
fn assemble(
    state: &TableState,
    totals: Option<&CatalogTotals>,
    verification: Option<&Verification>,
    jobs: &[BackfillJob],
    lag_alert: std::time::Duration,
    retention: &RetentionFacts,
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
    attention.extend(retention_alert(totals, retention));
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
        retention: retention_status(totals, retention),
        last_error,
        attention,
    }
}

fn retention_status(totals: Option<&CatalogTotals>, f: &RetentionFacts) -> RetentionStatus {
    let keep = f.policy.keep();
    let no_days = BTreeMap::new();
    let days = totals.map_or(&no_days, |t| &t.days);
    let next_prune = keep.map(|k| {
        let unfinished = f.last_run.map_or(0, |r| r.unfinished.len());
        // The totals already leave pruned days out.
        let d = prune::decide(
            days,
            &BTreeSet::new(),
            unfinished,
            k,
            f.today,
            f.max_days_per_pass,
        );
        NextPrune {
            days: d.days.len() as u64,
            files: d.days.iter().map(|x| x.files).sum(),
            rows: d.days.iter().map(|x| x.rows).sum(),
            bytes: d.days.iter().map(|x| x.bytes).sum(),
            oldest_day: d.days.first().map(|x| x.day.folder()),
            newest_day: d.days.last().map(|x| x.day.folder()),
            more_days: d.more as u64,
        }
    });
    RetentionStatus {
        policy: match f.policy {
            Policy::Keep(_) => "keep",
            Policy::Forever => "forever",
            Policy::None => "none",
        }
        .to_owned(),
        keep_days: keep.map(|k| k.days),
        monthly_months: keep.map_or(0, |k| k.monthly_months),
        first_kept_day: keep.map(|k| Day::new(prune::first_kept(k, f.today)).folder()),
        next_prune,
        bytes_kept: totals.map_or(0, |t| t.total().bytes),
        pruned_days: totals.map_or(0, |t| t.pruned_days),
        newest_pruned_day: totals.and_then(|t| t.newest_pruned).map(|d| d.folder()),
        last_prune: f.last_run.map(|r| LastPrune {
            at: r.at,
            recorded_days: r.recorded.len() as u64,
            finished_days: r.finished.len() as u64,
            blobs_deleted: r.blobs_deleted,
            unfinished_days: r.unfinished.len() as u64,
            skipped: r.skipped.clone(),
            deletes_deferred: r.deletes_deferred.as_ref().map(ToString::to_string),
        }),
    }
}

/// The retention alert: a day the policy keeps today was pruned ([`breached_day`]), what the
/// record of that day says happened, and what to do.
fn retention_alert(totals: Option<&CatalogTotals>, f: &RetentionFacts) -> Option<String> {
    let keep = f.policy.keep()?;
    let day = breached_day(f.policy, totals, f.today)?;
    let first = prune::first_kept(keep, f.today);
    let oldest = totals
        .and_then(CatalogTotals::day_range)
        .map_or_else(|| "none".to_owned(), |(d, _)| d.folder());
    let mut line = format!(
        "RETENTION BROKEN: the policy keeps {} day(s), from {}, but day {} was pruned (the oldest \
         restorable day is {oldest}): rows the policy promises are no longer in the backup",
        keep.days,
        Day::new(first).folder(),
        day.folder()
    );
    let rfc = |t: OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    match f.breach {
        Some(r) if day.date() < prune::first_kept(prune_keep(r), r.now.date()) => {
            let clears = day.date() + time::Duration::days(i64::from(keep.days) + 1);
            line.push_str(&format!(
                ". It was pruned {} by a policy of {} day(s) as of {}; a longer policy does not \
                 bring pruned days back. While blob soft delete still holds its files they can be \
                 undeleted and restored with --from-listing; this clears on {}",
                rfc(r.at),
                r.keep_days,
                rfc(r.now),
                Day::new(clears).folder()
            ));
        }
        Some(r) => line.push_str(&format!(
            ". Its record (written {}; {} row(s) in {} file(s)) says it was pruned keeping {} \
             day(s) as of {}, a policy that kept it: no policy explains it (another app writing \
             into the backup container, or a bug). Find what wrote it; the day's rows can come \
             back only from the source, or, while its files still exist (no .done marker beside \
             the record, or undeleted from soft delete), with restore --from-listing",
            rfc(r.at),
            r.rows,
            r.artifacts,
            r.keep_days,
            rfc(r.now)
        )),
        None => line.push_str(". Its prune record is gone too; check the $prune folder"),
    }
    Some(line)
}

fn prune_keep(r: &Prune) -> crate::settings::Keep {
    crate::settings::Keep {
        days: r.keep_days,
        monthly_months: 0,
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
    out.push_str(&retention_block(s, colour));
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

/// One line per table with a retention policy (or prunes behind it): the policy, what the
/// next prune removes, what is kept, what the last prune did; then why deletes wait, if any.
fn retention_block(s: &StatusV1, colour: Colour) -> String {
    let tables: Vec<(&DatabaseName, &TableStatus)> = s
        .databases
        .iter()
        .flat_map(|db| db.tables.iter().map(move |t| (&db.database, t)))
        .filter(|(_, t)| {
            let r = &t.retention;
            r.policy != "none" || r.pruned_days > 0 || r.last_prune.is_some()
        })
        .collect();
    if tables.is_empty() {
        return String::new();
    }
    let mut rows =
        vec![["TABLE", "RETENTION", "NEXT PRUNE", "KEPT", "LAST PRUNE"].map(str::to_owned)];
    let mut waiting = String::new();
    for (db, t) in tables {
        rows.push(retention_cells(db, t));
        if let Some(why) = t
            .retention
            .last_prune
            .as_ref()
            .and_then(|l| l.deletes_deferred.as_ref())
        {
            let _ = writeln!(waiting, "{db}.{}: prune {why}", t.table);
        }
    }
    format!("\n{}{waiting}", columns(&rows, &[], colour))
}

fn retention_cells(db: &DatabaseName, t: &TableStatus) -> [String; 5] {
    let r = &t.retention;
    let policy = match (r.policy.as_str(), r.keep_days) {
        ("keep", Some(days)) if r.monthly_months > 0 => {
            format!("{days} days + {} month-firsts", r.monthly_months)
        }
        ("keep", Some(days)) => format!("{days} days"),
        (other, _) => other.to_owned(),
    };
    let next = match &r.next_prune {
        None => "-".to_owned(),
        Some(n) if n.days == 0 => "nothing".to_owned(),
        Some(n) => {
            let mut cell = format!(
                "{} day(s) {}..{}, {} file(s), {} B",
                n.days,
                n.oldest_day.as_deref().unwrap_or("?"),
                n.newest_day.as_deref().unwrap_or("?"),
                n.files,
                n.bytes
            );
            if n.more_days > 0 {
                cell.push_str(&format!(", +{} day(s) later", n.more_days));
            }
            cell
        }
    };
    let kept = format!(
        "{} day(s), {} B",
        t.catalog.as_ref().map_or(0, |c| c.days),
        r.bytes_kept
    );
    let last = match &r.last_prune {
        None => "never".to_owned(),
        Some(l) if l.deletes_deferred.is_some() => format!(
            "deletes deferred: {} day(s) still in storage",
            l.unfinished_days
        ),
        Some(l) if l.skipped.is_some() => "skipped (in use)".to_owned(),
        Some(l) => format!(
            "{} day(s) recorded, {} finished",
            l.recorded_days, l.finished_days
        ),
    };
    [format!("{db}.{}", t.table), policy, next, kept, last]
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

    fn no_retention() -> RetentionFacts<'static> {
        RetentionFacts {
            policy: Policy::None,
            today: time::macros::date!(2026 - 03 - 02),
            max_days_per_pass: 31,
            last_run: None,
            breach: None,
        }
    }

    fn keep(days: u32) -> Policy {
        Policy::Keep(crate::settings::Keep {
            days,
            monthly_months: 0,
        })
    }

    /// Totals holding `days` (folder names), one file of 10 rows and 100 bytes each, and
    /// the pruned days the refresh saw.
    fn totals(days: &[&str], pruned: &[&str]) -> CatalogTotals {
        let mut t = CatalogTotals::default();
        for d in days {
            t.days.insert(
                Day::parse_folder(d).unwrap(),
                catalog_totals::DayTotals {
                    artifacts: 1,
                    rows: 10,
                    bytes: 100,
                },
            );
        }
        t.pruned_days = pruned.len() as u64;
        t.newest_pruned = pruned.iter().map(|d| Day::parse_folder(d).unwrap()).max();
        t
    }

    /// `n` consecutive day folders from `first`.
    fn run(first: Date, n: i64) -> Vec<String> {
        (0..n)
            .map(|i| Day::new(first + time::Duration::days(i)).folder())
            .collect()
    }

    fn refs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }

    fn prune_record(day: &str, keep_days: u32, now: OffsetDateTime) -> Prune {
        Prune {
            day: Day::parse_folder(day).unwrap(),
            at: now,
            now,
            keep_days,
            artifacts: 2,
            rows: 7,
            bytes: 300,
        }
    }

    #[test]
    fn the_next_prune_is_the_decision_a_prune_makes_and_counts_the_unfinished() {
        let lag = std::time::Duration::from_secs(60);
        let days = run(time::macros::date!(2026 - 01 - 01), 60);
        let t = totals(&refs(&days), &[]);
        let facts = RetentionFacts {
            policy: keep(30),
            ..no_retention()
        };
        let r = assemble(&protected_state(), Some(&t), None, &[], lag, &facts).retention;
        let next = r.next_prune.unwrap();
        assert_eq!(
            (next.days, next.files, next.rows, next.bytes, next.more_days),
            (30, 30, 300, 3000, 0)
        );
        assert_eq!(
            (next.oldest_day.as_deref(), next.newest_day.as_deref()),
            (Some("20260101"), Some("20260130"))
        );
        assert_eq!(r.first_kept_day.as_deref(), Some("20260131"));
        assert_eq!(r.bytes_kept, 6000);
        // A pass finishes 25 unfinished days first: it records 6 new ones, 24 wait.
        let last = PruneRun {
            at: OffsetDateTime::UNIX_EPOCH,
            now: OffsetDateTime::UNIX_EPOCH,
            recorded: Vec::new(),
            finished: Vec::new(),
            blobs_deleted: 0,
            unfinished: (0..25).map(|_| Day::UNDATED).collect(),
            skipped: None,
            deletes_deferred: None,
        };
        let facts = RetentionFacts {
            last_run: Some(&last),
            ..facts
        };
        let next = assemble(&protected_state(), Some(&t), None, &[], lag, &facts)
            .retention
            .next_prune
            .unwrap();
        assert_eq!((next.days, next.more_days), (6, 24));
        // Forever and none decide nothing.
        for policy in [Policy::Forever, Policy::None] {
            let facts = RetentionFacts {
                policy,
                ..no_retention()
            };
            let r = assemble(&protected_state(), Some(&t), None, &[], lag, &facts).retention;
            assert!(r.next_prune.is_none() && r.keep_days.is_none(), "{r:?}");
        }
    }

    #[test]
    fn the_retention_alert_needs_a_pruned_day_the_policy_keeps() {
        let lag = std::time::Duration::from_secs(60);
        let today = time::macros::date!(2026 - 03 - 02);
        let at = time::macros::datetime!(2026-03-02 06:00 UTC);
        let alert = |t: &CatalogTotals, policy: Policy, breach: Option<&Prune>| {
            let facts = RetentionFacts {
                policy,
                today,
                max_days_per_pass: 31,
                last_run: None,
                breach,
            };
            assemble(&protected_state(), Some(t), None, &[], lag, &facts)
                .attention
                .into_iter()
                .find(|a| a.contains("RETENTION"))
        };
        // Protected 3 days ago: nothing older, nothing pruned.
        let young = totals(&refs(&run(time::macros::date!(2026 - 02 - 28), 3)), &[]);
        assert_eq!(alert(&young, keep(30), None), None);
        // Pruned normally (up to 20260130), and then the source had no rows until 20260220:
        // the oldest restorable day is newer than the policy's first day, but nothing it
        // keeps was pruned. The same while a backfill still fills the window.
        let pruned = run(time::macros::date!(2026 - 01 - 01), 30);
        let sparse = totals(
            &refs(&run(time::macros::date!(2026 - 02 - 20), 11)),
            &refs(&pruned),
        );
        assert_eq!(alert(&sparse, keep(30), None), None);
        // A record for a day the policy keeps, which its own policy kept too: foreign.
        let mut foreign = sparse.clone();
        foreign.newest_pruned = Some(Day::parse_folder("20260215").unwrap());
        let record = prune_record("20260215", 30, at);
        let line = alert(&foreign, keep(30), Some(&record)).expect("the alert fires");
        assert!(
            line.contains("from 20260131, but day 20260215 was pruned")
                && line.contains("the oldest restorable day is 20260220")
                && line.contains("no policy explains it")
                && line.contains("7 row(s) in 2 file(s)"),
            "{line}"
        );
        // The policy lengthened to 60 days after a 30-day prune: the days it pruned are
        // promised now, and it says when that stops.
        let lengthened = prune_record("20260130", 30, at);
        let line = alert(&sparse, keep(60), Some(&lengthened)).expect("the alert fires");
        assert!(
            line.contains("by a policy of 30 day(s)") && line.contains("clears on 20260401"),
            "{line}"
        );
        // Without a policy that keeps days there is nothing to break.
        assert_eq!(alert(&foreign, Policy::Forever, Some(&record)), None);
        assert_eq!(alert(&foreign, Policy::None, Some(&record)), None);
    }

    #[test]
    fn attention_rules() {
        let lag = std::time::Duration::from_secs(60);
        let ok = assemble(&protected_state(), None, None, &[], lag, &no_retention());
        assert!(ok.attention.is_empty(), "{:?}", ok.attention);

        let mut lagging = protected_state();
        lagging.health.as_mut().unwrap().lag_seconds = Some(61);
        let a = assemble(&lagging, None, None, &[], lag, &no_retention()).attention;
        assert_eq!(a, ["export lag 61s is over 60s"]);

        let mut disabled = protected_state();
        disabled.health.as_mut().unwrap().disabled = true;
        assert!(
            assemble(&disabled, None, None, &[], lag, &no_retention()).attention[0]
                .contains("DISABLED")
        );

        let mut failing = protected_state();
        failing.health.as_mut().unwrap().last_run_result = Some("Failed".into());
        assert!(
            assemble(&failing, None, None, &[], lag, &no_retention()).attention[0]
                .contains("failing")
        );

        let mut unprotected = protected_state();
        unprotected.protection = Protection::Unprotected {
            reason: "no ingestion time".into(),
        };
        let a = assemble(&unprotected, None, None, &[], lag, &no_retention()).attention;
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
