//! verify: can the backup be trusted? Per table and day, the source's row counts against the
//! catalog's, and on demand the catalog against the files actually in storage.
//!
//! Only what the backup should already hold is compared. The continuous export has written
//! every row ingested at or before its `ExportedTo` (the latest ingestion time it exported,
//! as the table's state last recorded it); the backfill holds the history before the export's
//! StartCursor once its jobs finished. So, per day, with `source` every row of the day and
//! `comparable` those ingested at or before `ExportedTo` (one query,
//! [`QueryBuilder::verify_counts`]):
//!
//! - backup > source: the backup holds rows the source no longer has (a `.delete`, a purge,
//!   or retention in the source; the backup never loses or rewrites a file): **extra rows**;
//! - backup < comparable: rows the backup should hold are missing (**missing rows**, or a
//!   **missing day** when it holds none of them), but only once the history is backed up
//!   and the export has exported; before that the table is **behind**, which is not drift;
//! - otherwise the day agrees (rows ingested after `ExportedTo` are the export's next run).
//!
//! With `--files`, the table's data folder is listed beside the live catalog and every live
//! file's parquet footer is read: a cataloged file that is no longer in storage is a
//! **missing file**, one whose footer declares other rows than the catalog counted has
//! **wrong rows**, one that is not parquet is **unreadable**; each would break a restore. The result is stored per table
//! (`$state/verify/<db>/<table>.json`) for `status`; drift is logged at error level as
//! `adxbackup.verify_drift`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use futures::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::app::App;
use crate::backfill::BackfillJob;
use crate::ids::{DatabaseName, Day, TableName, TableRef};
use crate::kusto::command::QueryBuilder;
use crate::kusto::{Step, StepError};
use crate::protect::{Protection, TableState};
use crate::retry::Retryable;
use crate::storage::StorageError;
use crate::storage::catalog::{Artifact, Catalog};
use crate::storage::catalog_totals::{self, CatalogTotals, DayTotals};
use crate::storage::parquet_footer::{self, FooterError};
use crate::storage::supersede;
use crate::task::Task;

/// How many tables the CLI verifies at once.
const TABLES_AT_ONCE: usize = 4;
/// How many file findings a verification lists one by one (the rest are counted).
const FILES_LISTED: usize = 100;
/// How many parquet footers `--files` reads at once.
const FOOTERS_AT_ONCE: usize = 16;

/// The verification document of one table (`version` 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    pub version: u32,
    pub database: DatabaseName,
    pub table: TableName,
    #[serde(with = "time::serde::rfc3339")]
    pub verified_at: OffsetDateTime,
    pub outcome: Outcome,
    /// Rows ingested at or before this time were compared (the export's `ExportedTo`).
    #[serde(with = "time::serde::rfc3339::option")]
    pub comparable_until: Option<OffsetDateTime>,
    /// Why the backup is not expected to hold every comparable row yet.
    pub behind: Vec<String>,
    pub days_compared: u64,
    pub findings: Vec<Finding>,
    /// Set when the files in storage were checked (`--files`).
    pub files: Option<FilesChecked>,
}

/// The verdict on a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Every comparable day agrees.
    Ok,
    /// The backup is still catching up (history or export); nothing contradicts it.
    Behind,
    /// The backup and the source disagree (see the findings).
    Drift,
    /// The table is not protected, so there is nothing to compare.
    NotProtected,
    /// The verification itself failed (see `behind`, which then holds the error).
    Failed,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Ok => "ok",
            Outcome::Behind => "behind",
            Outcome::Drift => "drift",
            Outcome::NotProtected => "not protected",
            Outcome::Failed => "failed",
        })
    }
}

/// One disagreement between the source, the catalog and storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Finding {
    /// The source has rows of this day the backup should hold, and the backup has none.
    MissingDay {
        day: Day,
        backup_rows: u64,
        source_rows: u64,
    },
    /// The backup holds fewer of this day's rows than it should.
    MissingRows {
        day: Day,
        backup_rows: u64,
        source_rows: u64,
    },
    /// The backup holds more rows of this day than the source has: deleted, purged or
    /// aged out in the source.
    ExtraRows {
        day: Day,
        backup_rows: u64,
        source_rows: u64,
    },
    /// The backup is behind on this day (not drift: the history or export is not done).
    Behind {
        day: Day,
        backup_rows: u64,
        source_rows: u64,
    },
    /// A cataloged file is no longer in storage.
    MissingFile { path: String, day: Day, rows: u64 },
    /// A cataloged file's footer declares other rows than the catalog counted (replaced or
    /// rewritten in storage).
    FileRows {
        path: String,
        day: Day,
        cataloged_rows: u64,
        file_rows: u64,
    },
    /// A cataloged file is not readable parquet (truncated, overwritten, encrypted).
    UnreadableFile {
        path: String,
        day: Day,
        rows: u64,
        reason: String,
    },
}

impl Finding {
    pub fn is_drift(&self) -> bool {
        !matches!(self, Finding::Behind { .. })
    }

    fn is_about_a_file(&self) -> bool {
        matches!(
            self,
            Finding::MissingFile { .. } | Finding::FileRows { .. } | Finding::UnreadableFile { .. }
        )
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Finding::MissingDay {
                day, source_rows, ..
            } => {
                write!(
                    f,
                    "{day}: missing from the backup ({source_rows} source rows)"
                )
            }
            Finding::MissingRows {
                day,
                backup_rows,
                source_rows,
            } => write!(
                f,
                "{day}: backup holds {backup_rows} of {source_rows} rows it should hold"
            ),
            Finding::ExtraRows {
                day,
                backup_rows,
                source_rows,
            } => write!(
                f,
                "{day}: backup holds {backup_rows} rows, the source {source_rows} (deleted, purged or aged out in the source)"
            ),
            Finding::Behind {
                day,
                backup_rows,
                source_rows,
            } => {
                write!(
                    f,
                    "{day}: behind, {backup_rows} of {source_rows} rows backed up so far"
                )
            }
            Finding::MissingFile { path, rows, .. } => {
                write!(
                    f,
                    "cataloged file missing from storage: {path} ({rows} rows)"
                )
            }
            Finding::FileRows {
                path,
                cataloged_rows,
                file_rows,
                ..
            } => write!(
                f,
                "cataloged file {path} holds {file_rows} rows, the catalog counted {cataloged_rows} (the file was replaced in storage)"
            ),
            Finding::UnreadableFile {
                path, rows, reason, ..
            } => write!(
                f,
                "cataloged file {path} ({rows} rows) is not readable parquet: {reason}"
            ),
        }
    }
}

/// What the check of the files in storage found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilesChecked {
    /// Live cataloged files (superseded ones are not required).
    pub cataloged: u64,
    pub missing: u64,
    /// Rows the footers of the live cataloged files in storage declare.
    #[serde(default)]
    pub rows_in_files: u64,
    /// Files whose footer declares other rows than their catalog line.
    #[serde(default)]
    pub wrong_rows: u64,
    /// Files that are not readable parquet.
    #[serde(default)]
    pub unreadable: u64,
    /// Files in the data folder the catalog does not list (a failed export run's leftovers;
    /// restore ignores them).
    pub uncataloged: u64,
}

/// What can go wrong while verifying, with the table and step.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("verify {0}")]
    Kusto(#[from] StepError),
    #[error("verify {table}: could not {what}: {source}")]
    Storage {
        table: TableRef,
        what: &'static str,
        #[source]
        source: Box<StorageError>,
    },
    #[error("verify could not list the tables of database {database}: {source}")]
    List {
        database: DatabaseName,
        #[source]
        source: Box<StorageError>,
    },
    #[error("verify could not queue the verification of {table}: {source}")]
    Enqueue {
        table: TableRef,
        #[source]
        source: Box<StorageError>,
    },
}

impl Retryable for VerifyError {
    fn is_transient(&self) -> bool {
        match self {
            Self::Kusto(e) => e.source.is_transient(),
            Self::Storage { source, .. }
            | Self::List { source, .. }
            | Self::Enqueue { source, .. } => source.is_transient() || source.is_conflict(),
        }
    }
}

fn storage<'a>(
    t: &'a TableRef,
    what: &'static str,
) -> impl FnOnce(StorageError) -> VerifyError + 'a {
    move |e| VerifyError::Storage {
        table: t.clone(),
        what,
        source: Box::new(e),
    }
}

/// Which tables to verify: every table with a state document in the configured databases,
/// narrowed to `database` and `table` when given.
pub async fn tables(
    app: &App,
    database: Option<&DatabaseName>,
    table: Option<&TableName>,
) -> Result<Vec<TableRef>, VerifyError> {
    crate::protect::selected_tables(app, database, table)
        .await
        .map_err(|e| VerifyError::List {
            database: e.database,
            source: Box::new(e.source),
        })
}

/// The verify timer: one `VerifyTableV1` task per table on the task queue.
pub async fn fan_out(app: &App) -> Result<usize, VerifyError> {
    let tables = tables(app, None, None).await?;
    for t in &tables {
        let task = Task::VerifyTableV1 {
            table: t.clone(),
            files: false,
        };
        app.tasks
            .send(&task.to_json(), None)
            .await
            .map_err(|e| VerifyError::Enqueue {
                table: t.clone(),
                source: Box::new(e),
            })?;
    }
    tracing::info!(tables = tables.len(), "verify queued one task per table");
    Ok(tables.len())
}

/// `adx-backup verify`: the selected tables, verified inline. A table whose verification
/// fails is recorded as failed; the others still run.
pub async fn run_inline(
    app: &App,
    database: Option<&DatabaseName>,
    table: Option<&TableName>,
    files: bool,
) -> Result<Vec<Verification>, VerifyError> {
    let tables = tables(app, database, table).await?;
    let results: Vec<Verification> = stream::iter(tables)
        .map(|t| async move {
            match verify_table(app, &t, files).await {
                Ok(v) => v,
                Err(err) => {
                    tracing::error!(event = "adxbackup.job_failed", database = %t.database, table = %t.table, error = %err, "verification failed");
                    if let Err(unrecorded) = record_failure(app, &t, &err).await {
                        tracing::warn!(database = %t.database, table = %t.table, error = %unrecorded,
                            "the failed verification could not be stored; status shows the one before");
                    }
                    failed(&t, &err)
                }
            }
        })
        .buffered(TABLES_AT_ONCE)
        .collect()
        .await;
    Ok(results)
}

/// Verifies one table and stores the result where `status` reads it.
pub async fn verify_table(
    app: &App,
    t: &TableRef,
    files: bool,
) -> Result<Verification, VerifyError> {
    let state = crate::protect::load_state(app, t)
        .await
        .map_err(storage(t, "read the table's state"))?;
    let verification = match &state.protection {
        Protection::Protected {
            partition_column, ..
        } => {
            let totals = catalog_totals::refresh(&app.blobs, &app.layout, &t.database, &t.table)
                .await
                .map_err(storage(t, "count the catalog"))?;
            let behind = behind(app, t, &state).await?;
            let mut v = compare(app, t, &state, partition_column.as_ref(), &totals, behind).await?;
            if files {
                check_files(app, t, &mut v).await?;
            }
            v.outcome = outcome(&v);
            v
        }
        _ => Verification {
            outcome: Outcome::NotProtected,
            behind: vec![state.protection.summary()],
            ..blank(t)
        },
    };
    save(app, t, &verification).await?;
    report(&verification);
    Ok(verification)
}

/// Records a verification that could not run, so `status` shows it.
pub async fn record_failure(app: &App, t: &TableRef, err: &VerifyError) -> Result<(), VerifyError> {
    save(app, t, &failed(t, err)).await
}

fn failed(t: &TableRef, err: &VerifyError) -> Verification {
    Verification {
        outcome: Outcome::Failed,
        behind: vec![err.to_string()],
        ..blank(t)
    }
}

fn blank(t: &TableRef) -> Verification {
    Verification {
        version: 1,
        database: t.database.clone(),
        table: t.table.clone(),
        verified_at: OffsetDateTime::now_utc(),
        outcome: Outcome::Ok,
        comparable_until: None,
        behind: Vec::new(),
        days_compared: 0,
        findings: Vec::new(),
        files: None,
    }
}

async fn save(app: &App, t: &TableRef, v: &Verification) -> Result<(), VerifyError> {
    let body = serde_json::to_vec_pretty(v).unwrap_or_default();
    app.blobs
        .write(&app.layout.verification(&t.database, &t.table), body.into())
        .await
        .map(|_| ())
        .map_err(storage(t, "save the verification"))
}

/// The last verification of a table, if any.
pub async fn load(app: &App, t: &TableRef) -> Result<Option<Verification>, StorageError> {
    let path = app.layout.verification(&t.database, &t.table);
    match app.blobs.read_opt(&path).await? {
        Some((body, _)) => crate::storage::state::decode(&path, &body).map(Some),
        None => Ok(None),
    }
}

/// Why the backup is not expected to hold every row ingested up to `ExportedTo` yet.
async fn behind(app: &App, t: &TableRef, state: &TableState) -> Result<Vec<String>, VerifyError> {
    let mut why = Vec::new();
    if state.export_exported_to.is_none() {
        why.push("the continuous export has not exported anything yet".to_owned());
    }
    let Some(cursor) = &state.start_cursor else {
        why.push(
            "the continuous export has no StartCursor yet, so the history is not backed up"
                .to_owned(),
        );
        return Ok(why);
    };
    if !app.settings.backfill.enabled {
        why.push("AdxBackup__Backfill is off: the history before the export's StartCursor is not backed up".to_owned());
        return Ok(why);
    }
    if state.backfill_requested.as_ref() != Some(cursor) || state.gaps_requested < state.gaps.len()
    {
        why.push("the backfill of the history (or of a gap) has not been asked for yet".to_owned());
    }
    let jobs = backfill_jobs(app, t).await?;
    if jobs.is_empty() {
        why.push("the backfill of the history has not been planned yet".to_owned());
    }
    for job in &jobs {
        let p = &job.progress;
        if !p.finished {
            why.push(format!(
                "backfill {} is running: {} of {} batches done",
                job.job,
                p.batches_done,
                p.batches_done + p.batches_waiting + p.batches_running
            ));
        } else if p.batches_failed > 0 || job.failure.is_some() {
            why.push(format!(
                "backfill {} failed: {} batch(es), {} rows not backed up",
                job.job, p.batches_failed, p.rows_failed
            ));
        }
    }
    Ok(why)
}

/// Every backfill job document of a table (a handful: the history and each gap).
pub async fn backfill_jobs(app: &App, t: &TableRef) -> Result<Vec<BackfillJob>, VerifyError> {
    let paths: Vec<String> = app
        .blobs
        .list(&app.layout.backfill_jobs_of(&t.database, &t.table))
        .map_ok(|item| item.path)
        .try_collect()
        .await
        .map_err(storage(t, "list the backfill jobs"))?;
    let mut jobs = Vec::with_capacity(paths.len());
    for path in paths {
        let (body, _) = app
            .blobs
            .read(&path)
            .await
            .map_err(storage(t, "read a backfill job"))?;
        let job = crate::storage::state::decode(&path, &body)
            .map_err(storage(t, "read a backfill job"))?;
        jobs.push(job);
    }
    Ok(jobs)
}

/// Source counts per day (one query) against the catalog's totals.
async fn compare(
    app: &App,
    t: &TableRef,
    state: &TableState,
    column: Option<&crate::ids::ColumnName>,
    totals: &CatalogTotals,
    behind: Vec<String>,
) -> Result<Verification, VerifyError> {
    let mut v = Verification {
        comparable_until: state.export_exported_to,
        behind,
        ..blank(t)
    };
    // Before the export's first run nothing is comparable: every source row is "later".
    let until = state
        .export_exported_to
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let mut source = source_counts(app, t, column, until).await?;
    // Days retention pruned left the backup on purpose: their source rows are no drift.
    let pruned = crate::storage::prune::load(&app.blobs, &app.layout, &t.database, &t.table)
        .await
        .map_err(storage(t, "list the prune records"))?;
    source.retain(|day, _| !pruned.contains(*day));
    let (days, findings) = judge(&source, &totals.days, v.behind.is_empty());
    v.days_compared = days;
    v.findings = findings;
    Ok(v)
}

/// Compares, per day, the source's `(every row, comparable rows)` with the catalog's rows
/// (see the module comment); `complete` is false while the backup is behind. Returns how
/// many days were compared and what disagrees.
fn judge(
    source: &BTreeMap<Day, (u64, u64)>,
    backup: &BTreeMap<Day, DayTotals>,
    complete: bool,
) -> (u64, Vec<Finding>) {
    let days: BTreeSet<Day> = source.keys().chain(backup.keys()).copied().collect();
    let findings = days
        .iter()
        .filter_map(|&day| {
            let (all, comparable) = source.get(&day).copied().unwrap_or((0, 0));
            let backup_rows = backup.get(&day).map_or(0, |d| d.rows);
            if backup_rows > all {
                Some(Finding::ExtraRows {
                    day,
                    backup_rows,
                    source_rows: all,
                })
            } else if backup_rows >= comparable {
                None
            } else if !complete {
                Some(Finding::Behind {
                    day,
                    backup_rows,
                    source_rows: comparable,
                })
            } else if backup_rows == 0 {
                Some(Finding::MissingDay {
                    day,
                    backup_rows,
                    source_rows: comparable,
                })
            } else {
                Some(Finding::MissingRows {
                    day,
                    backup_rows,
                    source_rows: comparable,
                })
            }
        })
        .collect();
    (days.len() as u64, findings)
}

/// Per day: every row, and the rows ingested at or before `until`.
async fn source_counts(
    app: &App,
    t: &TableRef,
    column: Option<&crate::ids::ColumnName>,
    until: OffsetDateTime,
) -> Result<BTreeMap<Day, (u64, u64)>, VerifyError> {
    let step = Step::table(t, "count the source's rows per day");
    let q = QueryBuilder::table(&t.table).verify_counts(column, until);
    let result = app
        .kusto
        .query(&t.database, &q.command())
        .await
        .map_err(|e| step.error(e))?;
    let table = result.primary_table().map_err(|e| step.error(e))?;
    let mut out = BTreeMap::new();
    for row in table.rows() {
        let day = match column {
            Some(_) => row
                .opt_datetime("Day")
                .map_err(|e| step.error(e))?
                .map_or(Day::UNDATED, |d| Day::new(d.date())),
            None => Day::UNDATED,
        };
        let rows = row.i64("Rows").map_err(|e| step.error(e))?.max(0) as u64;
        let comparable = row.i64("Comparable").map_err(|e| step.error(e))?.max(0) as u64;
        let entry: &mut (u64, u64) = out.entry(day).or_default();
        entry.0 += rows;
        entry.1 += comparable;
    }
    Ok(out)
}

/// Lists the table's data folder and streams the live part of its catalog: every live
/// cataloged file must exist and its parquet footer must declare the rows the catalog
/// counted. Superseded files are not required (a retention may have removed them).
async fn check_files(app: &App, t: &TableRef, v: &mut Verification) -> Result<(), VerifyError> {
    let root = format!("{}/", app.layout.table_data_root(&t.database, &t.table));
    let mut stored: HashMap<String, u64> = app
        .blobs
        .list(&root)
        .map_ok(|item| (item.path, item.size))
        .try_collect()
        .await
        .map_err(storage(t, "list the table's data folder"))?;
    let live = supersede::load(&app.blobs, &app.layout, &t.database, &t.table, None)
        .await
        .map_err(storage(t, "read the supersede records"))?;
    let mut checked = FilesChecked::default();
    let catalog = Catalog::new(&app.blobs, &app.layout);
    let mut segments = catalog.segments(&t.database, &t.table);
    while let Some((segment, artifacts)) = segments
        .try_next()
        .await
        .map_err(storage(t, "read the catalog"))?
    {
        let mut present = Vec::new();
        for artifact in artifacts {
            let size = stored.remove(&artifact.path);
            if !live.is_live(&segment, &artifact) {
                continue;
            }
            checked.cataloged += 1;
            match size {
                Some(size) => present.push((artifact, size)),
                None => {
                    checked.missing += 1;
                    v.findings.push(Finding::MissingFile {
                        path: artifact.path,
                        day: artifact.day,
                        rows: artifact.rows,
                    });
                }
            }
        }
        let footers: Vec<(Artifact, Result<u64, FooterError>)> = stream::iter(present)
            .map(|(artifact, size)| async move {
                let rows = parquet_footer::row_count(&app.blobs, &artifact.path, size).await;
                (artifact, rows)
            })
            .buffered(FOOTERS_AT_ONCE)
            .collect()
            .await;
        for (artifact, rows) in footers {
            if let Some(finding) = judge_file(&mut checked, artifact, rows)
                .map_err(storage(t, "read a parquet footer"))?
            {
                v.findings.push(finding);
            }
        }
    }
    checked.uncataloged = stored.len() as u64;
    cap_file_findings(&mut v.findings);
    v.files = Some(checked);
    Ok(())
}

/// The file's footer against its catalog line; a storage failure stops the check (it says
/// nothing about the file), anything else about the file is a finding.
fn judge_file(
    checked: &mut FilesChecked,
    artifact: Artifact,
    rows: Result<u64, FooterError>,
) -> Result<Option<Finding>, StorageError> {
    match rows {
        Ok(rows) => {
            checked.rows_in_files += rows;
            if rows == artifact.rows {
                return Ok(None);
            }
            checked.wrong_rows += 1;
            Ok(Some(Finding::FileRows {
                path: artifact.path,
                day: artifact.day,
                cataloged_rows: artifact.rows,
                file_rows: rows,
            }))
        }
        Err(FooterError::NotParquet { reason, .. }) => {
            checked.unreadable += 1;
            Ok(Some(Finding::UnreadableFile {
                path: artifact.path,
                day: artifact.day,
                rows: artifact.rows,
                reason,
            }))
        }
        // A file deleted between the listing and the read is missing, like the others.
        Err(FooterError::Storage(StorageError::NotFound { .. })) => {
            checked.missing += 1;
            Ok(Some(Finding::MissingFile {
                path: artifact.path,
                day: artifact.day,
                rows: artifact.rows,
            }))
        }
        Err(FooterError::Storage(e)) => Err(e),
    }
}

/// Keeps the first [`FILES_LISTED`] file findings one by one; `files` counts them all.
fn cap_file_findings(findings: &mut Vec<Finding>) {
    let mut kept = 0;
    findings.retain(|f| {
        if !f.is_about_a_file() {
            return true;
        }
        kept += 1;
        kept <= FILES_LISTED
    });
}

fn outcome(v: &Verification) -> Outcome {
    if v.findings.iter().any(Finding::is_drift) {
        Outcome::Drift
    } else if !v.behind.is_empty() || !v.findings.is_empty() {
        Outcome::Behind
    } else {
        Outcome::Ok
    }
}

/// Drift is an alert (`adxbackup.verify_drift`); being behind is only worth a warning.
fn report(v: &Verification) {
    let drift: Vec<String> = v
        .findings
        .iter()
        .filter(|f| f.is_drift())
        .map(ToString::to_string)
        .collect();
    match v.outcome {
        Outcome::Drift => {
            tracing::error!(event = "adxbackup.verify_drift", database = %v.database, table = %v.table,
            findings = drift.len(), details = %drift.join("; "),
            "verification found drift between the source and the backup")
        }
        Outcome::Behind => {
            tracing::warn!(event = "adxbackup.verify_behind", database = %v.database, table = %v.table,
            why = %v.behind.join("; "), "verification: the backup is behind")
        }
        _ => {
            tracing::info!(database = %v.database, table = %v.table, outcome = %v.outcome, days = v.days_compared, "table verified")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> Day {
        Day::parse_folder(s).unwrap()
    }

    #[test]
    fn each_day_is_judged_against_what_the_backup_should_hold() {
        let rows = |r: u64| DayTotals {
            artifacts: 1,
            rows: r,
            bytes: 0,
        };
        // (every row, rows ingested by ExportedTo) per day, as the source counted them.
        let source = BTreeMap::from([
            (day("20240101"), (10, 10)), // agrees
            (day("20240102"), (9, 9)),   // one row deleted in the source
            (day("20240103"), (10, 8)),  // 2 rows newer than ExportedTo: not expected yet
            (day("20240104"), (5, 5)),   // nothing in the backup
            (day("20240105"), (5, 5)),   // part of it in the backup
        ]);
        let backup = BTreeMap::from([
            (day("20240101"), rows(10)),
            (day("20240102"), rows(10)),
            (day("20240103"), rows(8)),
            (day("20240105"), rows(3)),
            (day("20240106"), rows(4)), // the whole day is gone from the source
        ]);
        let (days, findings) = judge(&source, &backup, true);
        assert_eq!(days, 6);
        assert_eq!(
            findings,
            [
                Finding::ExtraRows {
                    day: day("20240102"),
                    backup_rows: 10,
                    source_rows: 9
                },
                Finding::MissingDay {
                    day: day("20240104"),
                    backup_rows: 0,
                    source_rows: 5
                },
                Finding::MissingRows {
                    day: day("20240105"),
                    backup_rows: 3,
                    source_rows: 5
                },
                Finding::ExtraRows {
                    day: day("20240106"),
                    backup_rows: 4,
                    source_rows: 0
                },
            ]
        );
        // While the backup is behind, shortfalls are not drift; extra rows still are.
        let (_, findings) = judge(&source, &backup, false);
        assert_eq!(
            findings,
            [
                Finding::ExtraRows {
                    day: day("20240102"),
                    backup_rows: 10,
                    source_rows: 9
                },
                Finding::Behind {
                    day: day("20240104"),
                    backup_rows: 0,
                    source_rows: 5
                },
                Finding::Behind {
                    day: day("20240105"),
                    backup_rows: 3,
                    source_rows: 5
                },
                Finding::ExtraRows {
                    day: day("20240106"),
                    backup_rows: 4,
                    source_rows: 0
                },
            ]
        );
    }

    #[test]
    fn findings_read_as_a_person_would_and_serialise_tagged() {
        let f = Finding::ExtraRows {
            day: day("20240115"),
            backup_rows: 10,
            source_rows: 7,
        };
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"{"kind":"extra_rows","day":"20240115","backup_rows":10,"source_rows":7}"#
        );
        assert!(
            f.to_string()
                .starts_with("20240115: backup holds 10 rows, the source 7")
        );
        let behind = Finding::Behind {
            day: day("20240115"),
            backup_rows: 1,
            source_rows: 2,
        };
        assert!(!behind.is_drift());
        let t = TableRef {
            database: DatabaseName::new("D").unwrap(),
            table: TableName::new("T").unwrap(),
        };
        let mut v = blank(&t);
        assert_eq!(outcome(&v), Outcome::Ok);
        v.findings.push(behind);
        assert_eq!(outcome(&v), Outcome::Behind);
        v.findings.push(f);
        assert_eq!(outcome(&v), Outcome::Drift);
    }
}
