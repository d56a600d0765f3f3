//! backfill: the rows a table held before its continuous export started, exported into the
//! backup in batches small enough for any cluster, each row exactly once.
//!
//! One job per table and StartCursor (`bf-<hash>`), in one state document:
//!
//! 1. [`start`] (the `BackfillTableV1` task, or `adx-backup backfill`): count the history at
//!    or before the export's StartCursor per ingestion-time bin, group the bins into batches
//!    of at most `AdxBackup__BackfillBatchMaxRows` rows, count the rows no batch can cover
//!    (no ingestion time), and write the plan before anything fans out.
//! 2. [`dispatch`]: start as many waiting batches as the setting and the cluster's free
//!    export capacity allow; the rest wait in job state, not on the queue. Every batch that
//!    ends starts the next.
//! 3. [`start_batch`] (`BackfillBatchV1`): point a per-batch external table (the table's own
//!    location, partitioning and path format, `namePrefix` = the batch attempt) at the day
//!    folders, start `.export async` of exactly the batch's range, return at once and send a
//!    delayed poll.
//! 4. [`poll_batch`] (`BackfillPollV1`): a completed export's files go into the catalog as
//!    the batch's own segment (once, however often it is seen); a batch too big for the
//!    cluster has its attempt's files removed and is split in two; a transient failure runs
//!    again; a permanent one fails the batch with Kusto's message.
//! 5. [`sweep`] (protect's timer, per database): the janitor drops batch external tables a
//!    crashed or abandoned job left behind.

mod batch;
mod dispatch;
mod error;
mod janitor;
pub mod plan;
mod state;

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

pub use batch::{poll_batch, start_batch};
pub use dispatch::dispatch;
pub use error::BackfillError;
pub use janitor::{JanitorState, Orphan, Sweep, sweep};
pub use state::{BackfillJob, Batch, BatchState, Progress, Uncovered};

use crate::app::App;
use crate::ids::{BatchRef, ColumnName, Cursor, Day, JobId, TableName, TableRef};
use crate::job::{self, Change, StepDoc, StepOutcome};
use crate::kusto::{KustoTable, Query, QueryBuilder, Step};
use crate::protect::TableState;
use plan::{Bin, Range};

/// Why a job made by [`start`] exists.
const HISTORY: &str = "history before the continuous export's StartCursor";

/// Re-reads of the job document after losing a write race, before giving the task back.
const STATE_ATTEMPTS: usize = 8;

/// What a backfill step did, for the invocation log and the CLI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackfillReport {
    pub table: TableRef,
    pub job: JobId,
    pub did: String,
    pub progress: Progress,
    pub uncovered: Option<Uncovered>,
}

impl fmt::Display for BackfillReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.progress;
        write!(
            f,
            "{} backfill {}: {}; batches: {} planned, {} waiting, {} running, {} done, {} split, {} failed; rows {} of {} exported",
            self.table,
            self.job,
            self.did,
            p.batches_planned,
            p.batches_waiting,
            p.batches_running,
            p.batches_done,
            p.batches_split,
            p.batches_failed,
            p.rows_exported,
            p.rows_planned
        )?;
        if let Some(u) = &self.uncovered {
            write!(f, "; {} row(s) NOT COVERED: {}", u.rows, u.reason)?;
        }
        Ok(())
    }
}

fn report(job: &BackfillJob, did: impl Into<String>) -> BackfillReport {
    BackfillReport {
        table: TableRef {
            database: job.database.clone(),
            table: job.table.clone(),
        },
        job: job.job.clone(),
        did: did.into(),
        progress: job.progress.clone(),
        uncovered: job.uncovered.clone(),
    }
}

/// The job that backfills `t` up to `cursor`: the same id for the same table and cursor,
/// so starting twice finds the first job.
pub fn job_id(t: &TableRef, cursor: &Cursor) -> Result<JobId, BackfillError> {
    stable_id(t, "bf", &[cursor.as_str()])
}

/// The job that closes a gap: the same id for the same table and window.
pub fn gap_job_id(t: &TableRef, bounds: &Bounds) -> Result<JobId, BackfillError> {
    let after = bounds.after.as_ref().map_or("", Cursor::as_str);
    stable_id(t, "gap", &[after, bounds.until.as_str()])
}

/// `<kind>-<16 hex digits>` from a hash of the table and `parts`, so the same inputs always
/// name the same job.
pub(crate) fn stable_id(t: &TableRef, kind: &str, parts: &[&str]) -> Result<JobId, BackfillError> {
    let mut hash = Sha256::new();
    for part in [t.database.as_str(), t.table.as_str()].iter().chain(parts) {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let hex: String = hash.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    JobId::new(format!("{kind}-{hex}")).map_err(|e| BackfillError::name(t, e))
}

/// Which rows a job backs up: those committed at or before `until` (the export's
/// StartCursor); for a gap, also committed after `after` (the old export's StartCursor) and
/// ingested after `ingested_after` (how far the old export got).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounds {
    pub until: Cursor,
    pub after: Option<Cursor>,
    pub ingested_after: Option<OffsetDateTime>,
    /// For a reconcile: only one day's rows, ingested at or before a bound.
    pub day: Option<DayScope>,
}

/// The rows a reconcile re-exports: those of one backup day, ingested at or before the
/// continuous export's `ExportedTo` as the table's state recorded it, so the re-export covers
/// what the old set was meant to cover and no row the export harvests later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayScope {
    pub column: ColumnName,
    pub day: Day,
    #[serde(with = "time::serde::rfc3339")]
    pub ingested_until: OffsetDateTime,
    /// Continuous-export segments numbered below this were cataloged when the bound was
    /// read: the swap supersedes their artifacts of the day (see `storage::supersede`).
    pub export_segments_before: u64,
}

impl Bounds {
    /// The table's rows within the bounds.
    pub fn rows(&self, table: &TableName) -> QueryBuilder {
        let mut q = QueryBuilder::table(table);
        if let Some(after) = &self.after {
            q = q.cursor_after(after);
        }
        q = q.cursor_before_or_at(&self.until);
        if let Some(at) = self.ingested_after {
            q = q.ingestion_time_after(at);
        }
        if let Some(d) = &self.day {
            q = q
                .on_day(&d.column, d.day)
                .ingestion_time_at_or_before(d.ingested_until);
        }
        q
    }
}

/// The export query of one batch: the rows of `range` within the job's bounds. The cursor
/// bounds matter: rows after the StartCursor belong to the continuous export; and adjacent
/// ranges are half-open so no row is in two batches.
pub fn batch_query(table: &TableName, bounds: &Bounds, range: &Range) -> Query {
    bounds
        .rows(table)
        .ingestion_time_between(range.from, range.to)
        .build()
}

/// Plans the backfill of `t` and, unless `dry_run`, writes the plan and starts batches. A
/// job already planned for the same StartCursor is resumed, not planned again.
pub async fn start(
    app: &App,
    t: &TableRef,
    dry_run: bool,
) -> Result<BackfillReport, BackfillError> {
    app.ensure_storage()
        .await
        .map_err(|e| BackfillError::storage("create the backup container and task queue", e))?;
    let state = table_state(app, t).await?;
    let cursor = state
        .as_ref()
        .and_then(|s| s.start_cursor.clone())
        .ok_or_else(|| BackfillError::NotProtected { table: t.clone() })?;
    let bounds = Bounds {
        until: cursor.clone(),
        after: None,
        ingested_after: None,
        day: None,
    };
    let mut history = start_job(app, t, job_id(t, &cursor)?, bounds, HISTORY, dry_run).await?;
    for gap in state.iter().flat_map(|s| &s.gaps) {
        let bounds = Bounds {
            until: gap.until_cursor.clone(),
            after: Some(gap.after_cursor.clone()),
            ingested_after: gap.ingested_after,
            day: None,
        };
        let job = gap_job_id(t, &bounds)?;
        let closed = start_job(app, t, job, bounds, &gap.reason, dry_run).await?;
        history
            .did
            .push_str(&format!("\ngap {}: {closed}", gap.reason));
    }
    Ok(history)
}

/// Plans job `job` over the rows within `bounds` and, unless `dry_run`, writes the plan and
/// starts batches. A job already planned is resumed, not planned again.
pub(crate) async fn start_job(
    app: &App,
    t: &TableRef,
    job: JobId,
    bounds: Bounds,
    reason: &str,
    dry_run: bool,
) -> Result<BackfillReport, BackfillError> {
    let path = app.layout.backfill_job(&t.database, &t.table, &job);
    if let Some(existing) = load_job(app, &path).await? {
        let existing = existing.state().clone();
        if !dry_run {
            dispatch(app, t, &job).await?;
        }
        return Ok(report(&existing, "already planned"));
    }
    let mut planned = make_plan(app, t, job.clone(), bounds, reason).await?;
    planned.recount();
    if dry_run {
        return Ok(report(&planned, "dry run, nothing started"));
    }
    let doc = StepDoc::load(&app.blobs, &path, || planned.clone())
        .await
        .map_err(|e| BackfillError::storage(format!("read the backfill job of {t}"), e))?;
    // A new document is created with If-None-Match: of two planners, one writes the plan.
    doc.advance(&app.blobs, |_| Change::Made)
        .await
        .map_err(|e| BackfillError::storage(format!("write the backfill plan of {t}"), e))?;
    let started = dispatch(app, t, &job).await?;
    tracing::info!(database = %t.database, table = %t.table, job = %job, batches = planned.batches.len(), rows = planned.planned_rows, started, "backfill planned");
    let now = load_job(app, &path).await?;
    Ok(report(
        now.as_ref().map_or(&planned, |doc| doc.state()),
        format!(
            "planned {} batch(es), started {started}",
            planned.batches.len()
        ),
    ))
}

/// Dispatches the waiting batches of job `job`, planned before.
pub(crate) async fn resume_job(
    app: &App,
    t: &TableRef,
    job: JobId,
) -> Result<BackfillReport, BackfillError> {
    dispatch(app, t, &job).await?;
    let path = app.layout.backfill_job(&t.database, &t.table, &job);
    let doc = load_job(app, &path)
        .await?
        .ok_or_else(|| BackfillError::Unexpected {
            table: t.clone(),
            message: format!("job {job} has no state document"),
        })?;
    Ok(report(doc.state(), "already planned"))
}

async fn table_state(app: &App, t: &TableRef) -> Result<Option<TableState>, BackfillError> {
    let path = app.layout.table_state(&t.database, &t.table);
    let read = |e| BackfillError::storage(format!("read the protection state of {t}"), e);
    match app.blobs.read_opt(&path).await.map_err(read)? {
        Some((body, _)) => crate::storage::state::decode(&path, &body)
            .map(Some)
            .map_err(read),
        None => Ok(None),
    }
}

async fn load_job(app: &App, path: &str) -> Result<Option<StepDoc<BackfillJob>>, BackfillError> {
    StepDoc::load_existing(&app.blobs, path)
        .await
        .map_err(|e| BackfillError::storage(format!("read backfill job {path}"), e))
}

/// Counts the history per ingestion-time bin and groups it into batches.
async fn make_plan(
    app: &App,
    t: &TableRef,
    job: JobId,
    bounds: Bounds,
    reason: &str,
) -> Result<BackfillJob, BackfillError> {
    let settings = &app.settings.backfill;
    let history = || bounds.rows(&t.table);
    let step = Step::table(t, "count the history to back up");
    let summary = query(app, &step, &history().ingestion_time_summary()).await?;
    let row = summary.rows().next();
    let (rows, min, max) = match row {
        Some(row) => (
            count(&row, "RowCount").map_err(|e| step.error(e))?,
            row.opt_datetime("MinIngestionTime")
                .map_err(|e| step.error(e))?,
            row.opt_datetime("MaxIngestionTime")
                .map_err(|e| step.error(e))?,
        ),
        None => (0, None, None),
    };
    let mut bins = Vec::new();
    if let (Some(min), Some(max), true) = (min, max, rows > 0) {
        let width = plan::bin_width(min, max, rows, settings.batch_max_rows);
        let step = Step::table(t, "count the history per ingestion-time bin");
        let table = query(app, &step, &history().ingestion_time_bins(width)).await?;
        for row in table.rows() {
            bins.push(Bin {
                min: row
                    .datetime("MinIngestionTime")
                    .map_err(|e| step.error(e))?,
                max: row
                    .datetime("MaxIngestionTime")
                    .map_err(|e| step.error(e))?,
                rows: count(&row, "RowCount").map_err(|e| step.error(e))?,
            });
        }
    }
    // Only history has rows without an ingestion time: a gap is a cursor window, and such
    // rows are in no cursor window.
    let no_time = if bounds.after.is_none() && bounds.day.is_none() {
        let step = Step::table(t, "count the rows without an ingestion time");
        let q = QueryBuilder::table(&t.table)
            .ingestion_time_is_null()
            .count();
        let table = query(app, &step, &q).await?;
        match table.rows().next() {
            Some(row) => count(&row, "Count").map_err(|e| step.error(e))?,
            None => 0,
        }
    } else {
        0
    };
    let mut doc = BackfillJob {
        job,
        database: t.database.clone(),
        table: t.table.clone(),
        start_cursor: bounds.until.clone(),
        after_cursor: bounds.after.clone(),
        ingested_after: bounds.ingested_after,
        day: bounds.day.clone(),
        reason: reason.to_owned(),
        created_at: OffsetDateTime::now_utc(),
        planned_rows: rows,
        uncovered: (no_time > 0).then(|| Uncovered {
            rows: no_time,
            reason: "these rows were ingested while the table's IngestionTime policy was off: they have no ingestion_time(), match no cursor predicate, and so are in neither the continuous export nor any backfill batch. Export them once by hand with `.export to table <external table> <| T | where isnull(ingestion_time())`".to_owned(),
        }),
        next_batch: 0,
        batches: Default::default(),
        progress: Progress::default(),
        failure: None,
    };
    for range in plan::batches(bins, settings.batch_max_rows) {
        let id = doc.new_batch_id().map_err(|e| BackfillError::name(t, e))?;
        doc.batches.insert(id, Batch::planned(range, None));
    }
    Ok(doc)
}

async fn query(app: &App, step: &Step<'_>, q: &Query) -> Result<KustoTable, BackfillError> {
    let result = app
        .kusto
        .query(step.database, &q.command())
        .await
        .map_err(|e| step.error(e))?;
    Ok(result.primary_table().map_err(|e| step.error(e))?.clone())
}

fn count(row: &crate::kusto::Row<'_>, column: &str) -> Result<u64, crate::kusto::FrameError> {
    Ok(u64::try_from(row.i64(column)?).unwrap_or(0))
}

/// Applies `change` to the job document, re-reading after a lost race, until it is written
/// (returns the job as written) or found already done (None).
async fn update(
    app: &App,
    path: &str,
    mut change: impl FnMut(&mut BackfillJob) -> Change,
) -> Result<Option<BackfillJob>, BackfillError> {
    for _ in 0..STATE_ATTEMPTS {
        let Some(doc) = load_job(app, path).await? else {
            return Ok(None);
        };
        let mut written = None;
        let outcome = doc
            .advance(&app.blobs, |j| {
                let made = change(j);
                if made == Change::Made {
                    j.recount();
                    written = Some(j.clone());
                }
                made
            })
            .await
            .map_err(|e| BackfillError::storage(format!("write backfill job {path}"), e))?;
        match outcome {
            StepOutcome::Advanced => return Ok(written),
            StepOutcome::AlreadyDone => return Ok(None),
            StepOutcome::LostRace => continue,
        }
    }
    Err(BackfillError::Contended {
        path: path.to_owned(),
    })
}

async fn job_report(
    app: &App,
    b: &BatchRef,
    did: impl Into<String>,
) -> Result<BackfillReport, BackfillError> {
    let path = app.layout.backfill_job(&b.database, &b.table, &b.job);
    match load_job(app, &path).await? {
        Some(doc) => Ok(report(doc.state(), did)),
        None => Err(BackfillError::UnknownBatch { batch: b.clone() }),
    }
}

/// Records a permanent failure of a backfill step in the job document, for `status`.
pub async fn record_failure(
    app: &App,
    t: &TableRef,
    job: &JobId,
    step: &str,
    err: &BackfillError,
) -> Result<(), BackfillError> {
    let path = app.layout.backfill_job(&t.database, &t.table, job);
    if load_job(app, &path).await?.is_none() {
        return Err(BackfillError::Unexpected {
            table: t.clone(),
            message: format!("backfill job {job} has no state to record a failure in: {err}"),
        });
    }
    let placeholder = || BackfillJob::placeholder(t, job);
    job::record_failure(
        &app.blobs,
        &path,
        placeholder,
        |j| &mut j.failure,
        step,
        &err.to_string(),
    )
    .await
    .map_err(|e| BackfillError::storage(format!("record a failure in {path}"), e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{DatabaseName, TableName};
    use time::macros::datetime;

    fn t() -> TableRef {
        TableRef {
            database: DatabaseName::new("Sales").unwrap(),
            table: TableName::new("Orders").unwrap(),
        }
    }

    #[test]
    fn every_batch_query_is_bounded_by_the_start_cursor_and_its_half_open_range() {
        let range = Range {
            from: datetime!(2024-01-15 00:00 UTC),
            to: datetime!(2024-01-15 00:00:01.5 UTC),
            rows: 10,
        };
        let history = Bounds {
            until: Cursor::new("638712345678901234"),
            after: None,
            ingested_after: None,
            day: None,
        };
        let q = batch_query(&t().table, &history, &range);
        assert_eq!(
            q.as_str(),
            "['Orders'] | where cursor_before_or_at('638712345678901234') \
             | where ingestion_time() >= datetime(2024-01-15T00:00:00.0000000Z) \
             and ingestion_time() < datetime(2024-01-15T00:00:01.5000000Z)"
        );
        let gap = Bounds {
            after: Some(Cursor::new("638712345600000000")),
            ingested_after: Some(datetime!(2024-01-14 23:00 UTC)),
            ..history
        };
        assert_eq!(
            batch_query(&t().table, &gap, &range).as_str(),
            "['Orders'] | where cursor_after('638712345600000000') \
             | where cursor_before_or_at('638712345678901234') \
             | where ingestion_time() > datetime(2024-01-14T23:00:00.0000000Z) \
             | where ingestion_time() >= datetime(2024-01-15T00:00:00.0000000Z) \
             and ingestion_time() < datetime(2024-01-15T00:00:01.5000000Z)"
        );
    }

    #[test]
    fn job_ids_are_stable_per_table_and_cursor() {
        let a = job_id(&t(), &Cursor::new("1")).unwrap();
        assert_eq!(a, job_id(&t(), &Cursor::new("1")).unwrap());
        assert_ne!(a, job_id(&t(), &Cursor::new("2")).unwrap());
        assert!(
            a.as_str().starts_with("bf-") && a.as_str().len() == 19,
            "{a}"
        );
        // A cursor that is not digits cannot leak into the id.
        let odd = job_id(&t(), &Cursor::new("x/../'y")).unwrap();
        assert!(odd.as_str()[3..].chars().all(|c| c.is_ascii_hexdigit()));
    }
}
