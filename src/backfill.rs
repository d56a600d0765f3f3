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

mod error;
pub mod plan;
mod state;

use std::fmt;

use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

pub use error::BackfillError;
pub use state::{BackfillJob, Batch, BatchState, Progress, Uncovered};

use crate::app::App;
use crate::ids::{BatchId, BatchRef, Cursor, JobId, OperationId, TableName, TableRef};
use crate::job::{self, Change, StepDoc, StepOutcome};
use crate::kusto::command::{self, ExportToTableOptions, ExternalTableSpec};
use crate::kusto::{
    ErrorClass, KustoTable, OperationRow, OperationState, Query, QueryBuilder, Step,
};
use crate::protect::{self, TableState};
use crate::retry::Retryable;
use crate::storage::catalog::{Artifact, ArtifactSource, Catalog};
use crate::storage::layout::Layout;
use crate::task::Task;
use plan::{Bin, Range};

/// Why a job made by [`start`] exists.
const HISTORY: &str = "history before the continuous export's StartCursor";

/// Export attempts of one batch before a transient failure counts as permanent.
const MAX_ATTEMPTS: u32 = 5;

/// Re-reads of the job document after losing a write race, before giving the task back.
const STATE_ATTEMPTS: usize = 8;

/// The Kusto resource `.show capacity` reports exports under.
const EXPORT_RESOURCE: &str = "DataExport";

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
    let mut hash = Sha256::new();
    for part in [t.database.as_str(), t.table.as_str(), cursor.as_str()] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let hex: String = hash.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    JobId::new(format!("bf-{hex}")).map_err(|e| BackfillError::name(t, e))
}

/// The job that closes a gap: the same id for the same table and window.
pub fn gap_job_id(t: &TableRef, bounds: &Bounds) -> Result<JobId, BackfillError> {
    let mut hash = Sha256::new();
    let after = bounds.after.as_ref().map_or("", Cursor::as_str);
    for part in [
        t.database.as_str(),
        t.table.as_str(),
        after,
        bounds.until.as_str(),
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let hex: String = hash.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    JobId::new(format!("gap-{hex}")).map_err(|e| BackfillError::name(t, e))
}

/// Which rows a job backs up: those committed at or before `until` (the export's
/// StartCursor); for a gap, also committed after `after` (the old export's StartCursor) and
/// ingested after `ingested_after` (how far the old export got).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounds {
    pub until: Cursor,
    pub after: Option<Cursor>,
    pub ingested_after: Option<OffsetDateTime>,
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
    };
    let mut history = start_job(app, t, job_id(t, &cursor)?, bounds, HISTORY, dry_run).await?;
    for gap in state.iter().flat_map(|s| &s.gaps) {
        let bounds = Bounds {
            until: gap.until_cursor.clone(),
            after: Some(gap.after_cursor.clone()),
            ingested_after: gap.ingested_after,
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
async fn start_job(
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

async fn table_state(app: &App, t: &TableRef) -> Result<Option<TableState>, BackfillError> {
    let path = app.layout.table_state(&t.database, &t.table);
    let read = |e| BackfillError::storage(format!("read the protection state of {t}"), e);
    match app.blobs.read_opt(&path).await.map_err(read)? {
        Some((body, _)) => serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| read(crate::storage::StorageError::decode(&path, e))),
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
    let no_time = if bounds.after.is_none() {
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

/// Starts waiting batches while fewer than `AdxBackup__BackfillMaxConcurrentBatches` run and
/// the cluster has free export capacity, and (re)sends the start task of every batch still
/// queued: a start task lost in a crash is sent again, a duplicate finds its batch started.
/// Returns how many batches are queued.
pub async fn dispatch(app: &App, t: &TableRef, job: &JobId) -> Result<usize, BackfillError> {
    let path = app.layout.backfill_job(&t.database, &t.table, job);
    let max = u64::from(app.settings.backfill.max_concurrent_batches);
    let mut free = None;
    for _ in 0..STATE_ATTEMPTS {
        let Some(doc) = load_job(app, &path).await? else {
            return Ok(0);
        };
        let j = doc.state();
        let running = j.batches.values().filter(|b| b.state.is_running()).count() as u64;
        let waiting: Vec<BatchId> = j
            .batches
            .iter()
            .filter(|(_, b)| b.state == BatchState::Planned)
            .map(|(id, _)| id.clone())
            .collect();
        let mut slots = max.saturating_sub(running).min(waiting.len() as u64);
        if slots > 0 {
            let cap = match free {
                Some(cap) => cap,
                None => free_export_capacity(app, t).await?,
            };
            free = Some(cap);
            slots = slots.min(cap);
        }
        let start: Vec<BatchId> = waiting.into_iter().take(slots as usize).collect();
        let mut queued = Vec::new();
        let outcome = doc
            .advance(&app.blobs, |j| {
                for id in &start {
                    if let Some(b) = j.batches.get_mut(id) {
                        b.state = BatchState::Queued;
                    }
                }
                j.recount();
                queued = j
                    .batches
                    .iter()
                    .filter(|(_, b)| b.state == BatchState::Queued)
                    .map(|(id, _)| id.clone())
                    .collect();
                if start.is_empty() {
                    Change::AlreadyDone
                } else {
                    Change::Made
                }
            })
            .await
            .map_err(|e| BackfillError::storage(format!("write backfill job {path}"), e))?;
        if outcome == StepOutcome::LostRace {
            continue;
        }
        for batch in &queued {
            let task = Task::BackfillBatchV1(batch_ref(t, job, batch));
            app.tasks
                .send(&task.to_json(), None)
                .await
                .map_err(|e| BackfillError::storage(format!("queue {task:?}"), e))?;
        }
        return Ok(queued.len());
    }
    Err(BackfillError::Contended { path })
}

fn batch_ref(t: &TableRef, job: &JobId, batch: &BatchId) -> BatchRef {
    BatchRef {
        database: t.database.clone(),
        table: t.table.clone(),
        job: job.clone(),
        batch: batch.clone(),
    }
}

/// `.show capacity`'s remaining export slots; all of them when Kusto does not list exports.
async fn free_export_capacity(app: &App, t: &TableRef) -> Result<u64, BackfillError> {
    let step = Step::table(t, "read the cluster's export capacity");
    let tables = step.mgmt(&app.kusto, &command::show_capacity()).await?;
    for row in tables.first().into_iter().flat_map(|tb| tb.rows()) {
        if row
            .str("Resource")
            .map_err(|e| step.error(e))?
            .eq_ignore_ascii_case(EXPORT_RESOURCE)
        {
            return Ok(
                u64::try_from(row.i64("Remaining").map_err(|e| step.error(e))?).unwrap_or(0),
            );
        }
    }
    Ok(u64::MAX)
}

/// How long a batch may sit in Launching before another delivery takes it for crashed: two
/// Kusto request timeouts, longer than the worker needs to start an export.
fn launch_lease(app: &App) -> time::Duration {
    time::Duration::try_from(app.settings.kusto.request_timeout * 2)
        .unwrap_or(time::Duration::MINUTE)
}

/// The per-batch external table: the table's own location, partitioning and path format,
/// with the batch attempt's `namePrefix`, so its files sit beside the continuous export's in
/// the same day folders and can be told apart.
async fn batch_table(
    app: &App,
    b: &BatchRef,
    attempt: u32,
) -> Result<ExternalTableSpec, BackfillError> {
    let t = b.table_ref();
    let base = protect::current_external_table(app, &t).await?;
    let name = TableName::new(format!(
        "{}{}_{}",
        app.settings.protect.object_prefix, b.job, b.batch
    ))
    .map_err(|e| BackfillError::name(&t, e))?;
    Ok(ExternalTableSpec {
        name,
        doc_string: format!("adx-backup:backfill {} {}", b.job, b.batch),
        name_prefix: Some(Layout::backfill_name_prefix(&b.job, &b.batch, attempt)),
        ..base
    })
}

/// What the start of an attempt found in the job state.
enum Launch {
    /// Start attempt `attempt`; `stale` is an earlier attempt that crashed while starting.
    Go {
        attempt: u32,
        stale: Option<u32>,
        range: Range,
        bounds: Bounds,
    },
    Busy(u32),
    Nothing,
}

/// Starts the export of batch `b` if it is queued (or its start crashed), and sends the
/// first poll. A duplicate delivery finds the batch started and does nothing.
pub async fn start_batch(app: &App, b: &BatchRef) -> Result<BackfillReport, BackfillError> {
    let path = app.layout.backfill_job(&b.database, &b.table, &b.job);
    let now = OffsetDateTime::now_utc();
    let lease = launch_lease(app);
    let mut launch = Launch::Nothing;
    let written = update(app, &path, |j| {
        let bounds = j.bounds();
        let Some(batch) = j.batches.get_mut(&b.batch) else {
            launch = Launch::Nothing;
            return Change::AlreadyDone;
        };
        let stale = match batch.state {
            BatchState::Queued => None,
            BatchState::Launching { attempt, at } if now - at > lease => Some(attempt),
            BatchState::Launching { attempt, .. } => {
                launch = Launch::Busy(attempt);
                return Change::AlreadyDone;
            }
            _ => {
                launch = Launch::Nothing;
                return Change::AlreadyDone;
            }
        };
        batch.attempts += 1;
        batch.state = BatchState::Launching {
            attempt: batch.attempts,
            at: now,
        };
        launch = Launch::Go {
            attempt: batch.attempts,
            stale,
            range: batch.range(),
            bounds,
        };
        Change::Made
    })
    .await?;
    let (attempt, stale, range, bounds) = match (launch, written) {
        (
            Launch::Go {
                attempt,
                stale,
                range,
                bounds,
            },
            Some(_),
        ) => (attempt, stale, range, bounds),
        (Launch::Busy(attempt), _) => {
            return Err(BackfillError::Busy {
                batch: b.clone(),
                attempt,
            });
        }
        _ => return job_report(app, b, "batch already started").await,
    };
    if let Some(stale) = stale {
        tracing::warn!(batch = %b, stale, "an earlier attempt crashed while starting; its files are removed");
        remove_attempt_files(app, b, stale).await?;
    }
    if attempt > MAX_ATTEMPTS {
        let message = format!("gave up after {MAX_ATTEMPTS} export attempts");
        return end_attempt(app, b, attempt, Ending::Fail(message)).await;
    }
    match launch_export(app, b, attempt, &bounds, &range).await {
        Ok(operation) => {
            let op = operation.clone();
            update(app, &path, |j| match j.batches.get_mut(&b.batch) {
                Some(batch) if batch.state.is_launching(attempt) => {
                    batch.state = BatchState::Exporting {
                        attempt,
                        operation: op.clone(),
                        poll: 0,
                    };
                    Change::Made
                }
                _ => Change::AlreadyDone,
            })
            .await?;
            let poll = Task::BackfillPollV1 {
                batch: b.clone(),
                poll: 0,
            };
            job::follow_up(&app.tasks, &poll, app.settings.backfill.poll_interval)
                .await
                .map_err(|e| BackfillError::storage(format!("queue the first poll of {b}"), e))?;
            tracing::info!(batch = %b, attempt, operation = %operation, rows = range.rows, "backfill export started");
            job_report(
                app,
                b,
                format!("batch {} started as operation {operation}", b.batch),
            )
            .await
        }
        Err(err) if err.needs_smaller_batch() => {
            end_attempt(app, b, attempt, Ending::Split(err.to_string())).await
        }
        Err(err) if err.is_transient() => {
            // Back to Queued, so the retried delivery starts a fresh attempt at once.
            update(app, &path, |j| match j.batches.get_mut(&b.batch) {
                Some(batch) if batch.state.is_launching(attempt) => {
                    batch.state = BatchState::Queued;
                    Change::Made
                }
                _ => Change::AlreadyDone,
            })
            .await?;
            Err(err)
        }
        Err(err) => end_attempt(app, b, attempt, Ending::Fail(err.to_string())).await,
    }
}

/// Creates the attempt's external table and starts its export; returns the operation.
async fn launch_export(
    app: &App,
    b: &BatchRef,
    attempt: u32,
    bounds: &Bounds,
    range: &Range,
) -> Result<OperationId, BackfillError> {
    let t = b.table_ref();
    let spec = batch_table(app, b, attempt).await?;
    Step::table(&t, "create the batch's external table")
        .mgmt(&app.kusto, &command::create_or_alter_external_table(&spec))
        .await?;
    let step = Step::table(&t, "start the batch's export");
    let tables = step
        .mgmt(
            &app.kusto,
            &command::export_async_to_table(
                &spec.name,
                &batch_query(&b.table, bounds, range),
                ExportToTableOptions::default(),
            ),
        )
        .await?;
    let row = tables
        .first()
        .and_then(|tb| tb.rows().next())
        .ok_or_else(|| BackfillError::Unexpected {
            table: t.clone(),
            message: "`.export async` answered without an OperationId".to_owned(),
        })?;
    Ok(OperationId::new(
        row.str("OperationId").map_err(|e| step.error(e))?,
    ))
}

/// Looks at batch `b`'s export: the `poll`-th look of its current attempt. Any other look
/// (a duplicate, or one from an attempt that is over) does nothing.
pub async fn poll_batch(
    app: &App,
    b: &BatchRef,
    poll: u32,
) -> Result<BackfillReport, BackfillError> {
    let t = b.table_ref();
    let path = app.layout.backfill_job(&b.database, &b.table, &b.job);
    let Some(doc) = load_job(app, &path).await? else {
        return Err(BackfillError::UnknownBatch { batch: b.clone() });
    };
    let batch = doc
        .state()
        .batches
        .get(&b.batch)
        .ok_or_else(|| BackfillError::UnknownBatch { batch: b.clone() })?;
    let BatchState::Exporting {
        attempt,
        ref operation,
        poll: expected,
    } = batch.state
    else {
        return job_report(app, b, "nothing to poll").await;
    };
    if expected != poll {
        return job_report(app, b, "a stale poll").await;
    }
    let operation = operation.clone();
    // A completion seen before a crash is cataloged already; Kusto may have forgotten it.
    let catalog = Catalog::new(&app.blobs, &app.layout);
    if catalog
        .read_batch(&b.database, &b.table, &b.job, &b.batch)
        .await
        .map_err(|e| BackfillError::storage(format!("read the catalog of {b}"), e))?
        .is_some()
    {
        return complete(app, b, attempt, &operation).await;
    }
    let step = Step::table(&t, "look at the batch's export");
    let tables = step
        .mgmt(&app.kusto, &command::show_operation(&operation))
        .await?;
    let rows = OperationRow::all(&tables).map_err(|e| step.error(e))?;
    let Some(op) = rows.into_iter().next() else {
        let message = format!(
            "Kusto no longer lists operation {operation} (it keeps operations for 6 hours); the attempt's files are removed and the batch runs again"
        );
        return end_attempt(app, b, attempt, Ending::Retry(message)).await;
    };
    if !op.state.is_final() {
        let next = poll + 1;
        let advanced = update(app, &path, |j| match j.batches.get_mut(&b.batch) {
            Some(batch) if batch.state.is_polling(attempt, poll) => {
                batch.state = BatchState::Exporting {
                    attempt,
                    operation: operation.clone(),
                    poll: next,
                };
                Change::Made
            }
            _ => Change::AlreadyDone,
        })
        .await?;
        if advanced.is_some() {
            let task = Task::BackfillPollV1 {
                batch: b.clone(),
                poll: next,
            };
            job::follow_up(&app.tasks, &task, app.settings.backfill.poll_interval)
                .await
                .map_err(|e| BackfillError::storage(format!("queue the next poll of {b}"), e))?;
        }
        return job_report(app, b, format!("operation {operation} is {}", op.state)).await;
    }
    if op.state == OperationState::Completed {
        return complete(app, b, attempt, &operation).await;
    }
    let ending = match op.failure() {
        Some(f) if matches!(f.class, ErrorClass::LowMemory | ErrorClass::RunawayQuery) => {
            Ending::Split(f.message)
        }
        Some(f) if is_timeout(&f.message) => Ending::Split(f.message),
        Some(f) if matches!(f.class, ErrorClass::Throttled | ErrorClass::Transient) => {
            Ending::Retry(f.message)
        }
        Some(f) => Ending::Fail(f.message),
        None => Ending::Fail(format!(
            "operation {operation} ended {}: {}",
            op.state, op.status
        )),
    };
    end_attempt(app, b, attempt, ending).await
}

/// A timed-out export is too big for the time it has: split it like a low-memory one.
fn is_timeout(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("timed out") || m.contains("timeout")
}

/// Catalogs a completed attempt's files (once), drops its external table, marks the batch
/// done and starts the next.
async fn complete(
    app: &App,
    b: &BatchRef,
    attempt: u32,
    operation: &OperationId,
) -> Result<BackfillReport, BackfillError> {
    let t = b.table_ref();
    let catalog = Catalog::new(&app.blobs, &app.layout);
    let read = |e| BackfillError::storage(format!("read the catalog of {b}"), e);
    let artifacts = match catalog
        .read_batch(&b.database, &b.table, &b.job, &b.batch)
        .await
        .map_err(read)?
    {
        Some(done) => done,
        None => {
            let files = exported_files(app, b, operation).await?;
            match catalog
                .append_batch(&b.database, &b.table, &b.job, &b.batch, &files)
                .await
            {
                Ok(()) => files,
                Err(e) if e.is_conflict() => catalog
                    .read_batch(&b.database, &b.table, &b.job, &b.batch)
                    .await
                    .map_err(read)?
                    .unwrap_or_default(),
                Err(e) => return Err(BackfillError::storage(format!("catalog {b}"), e)),
            }
        }
    };
    drop_batch_table(app, b).await?;
    let files = artifacts.len() as u64;
    let rows: u64 = artifacts.iter().map(|a| a.rows).sum();
    let path = app.layout.backfill_job(&b.database, &b.table, &b.job);
    update(app, &path, |j| match j.batches.get_mut(&b.batch) {
        Some(batch) if batch.state.is_exporting(attempt) => {
            batch.state = BatchState::Cataloged { files, rows };
            Change::Made
        }
        _ => Change::AlreadyDone,
    })
    .await?;
    // Files of earlier attempts that crashed while starting may have landed since.
    for earlier in 1..attempt {
        remove_attempt_files(app, b, earlier).await?;
    }
    dispatch(app, &t, &b.job).await?;
    tracing::info!(batch = %b, files, rows, "backfill batch cataloged");
    job_report(
        app,
        b,
        format!("batch {} cataloged {files} file(s), {rows} row(s)", b.batch),
    )
    .await
}

/// The files a completed export reports, as catalog artifacts.
async fn exported_files(
    app: &App,
    b: &BatchRef,
    operation: &OperationId,
) -> Result<Vec<Artifact>, BackfillError> {
    let t = b.table_ref();
    let step = Step::table(&t, "read the files the batch's export wrote");
    let tables = step
        .mgmt(&app.kusto, &command::show_operation_details(operation))
        .await?;
    let now = OffsetDateTime::now_utc();
    let mut out = Vec::new();
    for row in tables.first().into_iter().flat_map(|tb| tb.rows()) {
        let url = row.str("Path").map_err(|e| step.error(e))?;
        let rows = count(&row, "NumRecords").map_err(|e| step.error(e))?;
        let located = app
            .layout
            .artifact_from_url(url, &app.settings.storage.container, &b.database, &b.table)
            .ok_or_else(|| BackfillError::Unexpected {
                table: t.clone(),
                message: format!(
                    "export {operation} wrote {url}, outside the table's backup folder; check the external table's connection string"
                ),
            })?;
        out.push(Artifact {
            path: located.path,
            day: located.day,
            rows,
            bytes: None,
            source: ArtifactSource::Backfill {
                job: b.job.clone(),
                batch: b.batch.clone(),
            },
            produced_at: now,
        });
    }
    Ok(out)
}

/// How a failed or vanished attempt ends.
enum Ending {
    /// Too big for the cluster: split in two, or fail at the floor.
    Split(String),
    /// Worth another attempt.
    Retry(String),
    Fail(String),
}

/// Ends attempt `attempt` of batch `b`: its files are removed (they are never cataloged),
/// its external table dropped, and the batch split, queued again or failed; then the next
/// batch starts.
async fn end_attempt(
    app: &App,
    b: &BatchRef,
    attempt: u32,
    ending: Ending,
) -> Result<BackfillReport, BackfillError> {
    let t = b.table_ref();
    remove_attempt_files(app, b, attempt).await?;
    drop_batch_table(app, b).await?;
    let path = app.layout.backfill_job(&b.database, &b.table, &b.job);
    let did = match ending {
        Ending::Split(message) => split(app, b, attempt, &path, message).await?,
        Ending::Retry(message) => {
            let retry = update(app, &path, |j| match j.batches.get_mut(&b.batch) {
                Some(batch) if batch.state.is_attempt(attempt) => {
                    batch.state = if batch.attempts >= MAX_ATTEMPTS {
                        BatchState::Failed {
                            message: format!("{message} (gave up after {MAX_ATTEMPTS} attempts)"),
                        }
                    } else {
                        BatchState::Queued
                    };
                    Change::Made
                }
                _ => Change::AlreadyDone,
            })
            .await?;
            tracing::warn!(batch = %b, attempt, message, "backfill attempt failed; the batch runs again");
            format!(
                "attempt {attempt} failed ({message}); {}",
                if retry.is_some() {
                    "queued again"
                } else {
                    "already handled"
                }
            )
        }
        Ending::Fail(message) => {
            fail(app, &path, b, attempt, &message).await?;
            format!("batch {} FAILED: {message}", b.batch)
        }
    };
    dispatch(app, &t, &b.job).await?;
    job_report(app, b, did).await
}

async fn fail(
    app: &App,
    path: &str,
    b: &BatchRef,
    attempt: u32,
    message: &str,
) -> Result<(), BackfillError> {
    tracing::error!(batch = %b, attempt, message, "backfill batch failed");
    update(app, path, |j| match j.batches.get_mut(&b.batch) {
        Some(batch) if batch.state.is_attempt(attempt) => {
            batch.state = BatchState::Failed {
                message: message.to_owned(),
            };
            Change::Made
        }
        _ => Change::AlreadyDone,
    })
    .await
    .map(|_| ())
}

/// Replaces batch `b` by its two halves (rows counted exactly), or fails it at the floor.
async fn split(
    app: &App,
    b: &BatchRef,
    attempt: u32,
    path: &str,
    message: String,
) -> Result<String, BackfillError> {
    let t = b.table_ref();
    let Some(doc) = load_job(app, path).await? else {
        return Err(BackfillError::UnknownBatch { batch: b.clone() });
    };
    let job = doc.state();
    let Some(batch) = job.batches.get(&b.batch) else {
        return Err(BackfillError::UnknownBatch { batch: b.clone() });
    };
    let range = batch.range();
    let mid = match plan::split_point(&range, app.settings.backfill.split_floor_rows) {
        Ok(mid) => mid,
        Err(no) => {
            let message = format!("{message} ({no})");
            fail(app, path, b, attempt, &message).await?;
            return Ok(format!("batch {} FAILED: {message}", b.batch));
        }
    };
    let bounds = job.bounds();
    let mut halves = Vec::new();
    for (from, to) in [(range.from, mid), (mid, range.to)] {
        let half = Range { from, to, rows: 0 };
        let step = Step::table(&t, "count the rows of a half batch");
        let q = bounds
            .rows(&b.table)
            .ingestion_time_between(from, to)
            .count();
        let table = query(app, &step, &q).await?;
        let rows = match table.rows().next() {
            Some(row) => count(&row, "Count").map_err(|e| step.error(e))?,
            None => 0,
        };
        halves.push(Range { rows, ..half });
    }
    let written = update(app, path, |j| {
        match j.batches.get(&b.batch) {
            Some(batch) if batch.state.is_attempt(attempt) => {}
            _ => return Change::AlreadyDone,
        }
        let mut into = Vec::new();
        for half in halves.iter().filter(|h| h.rows > 0) {
            let Ok(id) = j.new_batch_id() else {
                return Change::AlreadyDone;
            };
            j.batches
                .insert(id.clone(), Batch::planned(*half, Some(b.batch.clone())));
            into.push(id);
        }
        if let Some(batch) = j.batches.get_mut(&b.batch) {
            batch.state = BatchState::Split {
                into,
                message: message.clone(),
            };
        }
        Change::Made
    })
    .await?;
    tracing::warn!(batch = %b, attempt, rows = range.rows, message, "backfill batch too big for the cluster; split in two");
    Ok(match written {
        Some(_) => format!(
            "batch {} split in two ({} and {} rows): {message}",
            b.batch, halves[0].rows, halves[1].rows
        ),
        None => "split already recorded".to_owned(),
    })
}

/// Deletes every file attempt `attempt` of batch `b` wrote, in whichever day folder.
async fn remove_attempt_files(
    app: &App,
    b: &BatchRef,
    attempt: u32,
) -> Result<usize, BackfillError> {
    let prefix = Layout::backfill_name_prefix(&b.job, &b.batch, attempt);
    let root = format!("{}/", app.layout.table_data_root(&b.database, &b.table));
    let list = |e| BackfillError::storage(format!("list the files of {b}"), e);
    let mut files = std::pin::pin!(app.blobs.list(&root));
    let mut removed = 0;
    while let Some(item) = files.try_next().await.map_err(list)? {
        if app
            .layout
            .is_attempt_file(&item.path, &b.database, &b.table, &prefix)
        {
            app.blobs
                .delete(&item.path)
                .await
                .map_err(|e| BackfillError::storage(format!("remove {}", item.path), e))?;
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(batch = %b, attempt, removed, "removed the files of a failed attempt");
    }
    Ok(removed)
}

async fn drop_batch_table(app: &App, b: &BatchRef) -> Result<(), BackfillError> {
    let t = b.table_ref();
    let name = TableName::new(format!(
        "{}{}_{}",
        app.settings.protect.object_prefix, b.job, b.batch
    ))
    .map_err(|e| BackfillError::name(&t, e))?;
    Step::table(&t, "drop the batch's external table")
        .mgmt(&app.kusto, &command::drop_external_table(&name))
        .await?;
    Ok(())
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

    #[test]
    fn timeouts_split() {
        assert!(is_timeout(
            "Query execution has exceeded the allowed limits (80DA0001): The request has timed out"
        ));
        assert!(!is_timeout("Storage account unreachable"));
    }
}
