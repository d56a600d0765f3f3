//! One batch's steps: start its export ([`start_batch`]), look at it ([`poll_batch`]), and
//! end each attempt: cataloged once, split in two, run again, or failed.

use futures::TryStreamExt;
use time::OffsetDateTime;

use super::plan::{self, Range};
use super::{
    BackfillError, BackfillReport, Batch, BatchState, Bounds, batch_query, count, dispatch,
    job_report, load_job, query, update,
};
use crate::app::App;
use crate::ids::{BatchId, BatchRef, JobId, NameError, OperationId, TableName};
use crate::job::{self, Change};
use crate::kusto::command::{self, ExportToTableOptions, ExternalTableSpec};
use crate::kusto::{ErrorClass, OperationRow, OperationState, Step};
use crate::protect;
use crate::retry::Retryable;
use crate::storage::catalog::{Artifact, ArtifactSource, Catalog};
use crate::storage::catalog_totals;
use crate::storage::layout::Layout;
use crate::task::Task;

/// Export attempts of one batch before a transient failure counts as permanent.
const MAX_ATTEMPTS: u32 = 5;

/// How long a batch may sit in Launching before another delivery takes it for crashed: two
/// Kusto request timeouts, longer than the worker needs to start an export.
fn launch_lease(app: &App) -> time::Duration {
    time::Duration::try_from(app.settings.kusto.request_timeout * 2)
        .unwrap_or(time::Duration::MINUTE)
}

/// The DocString of every per-batch external table starts with this, then names its job
/// and batch: how the janitor tells a batch table from any other object.
const BATCH_TABLE_DOC: &str = "adx-backup:backfill ";

/// The name of batch `job`/`batch`'s external table: the object prefix, the job, the batch.
pub(super) fn batch_table_name(
    prefix: &str,
    job: &JobId,
    batch: &BatchId,
) -> Result<TableName, NameError> {
    TableName::new(format!("{prefix}{job}_{batch}"))
}

/// The job and batch a batch table's DocString names; None for any other DocString.
pub(super) fn batch_of_doc(doc: &str) -> Option<(JobId, BatchId)> {
    let (job, batch) = doc.strip_prefix(BATCH_TABLE_DOC)?.split_once(' ')?;
    Some((JobId::new(job).ok()?, BatchId::new(batch).ok()?))
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
    let name = batch_table_name(&app.settings.protect.object_prefix, &b.job, &b.batch)
        .map_err(|e| BackfillError::name(&t, e))?;
    Ok(ExternalTableSpec {
        name,
        doc_string: format!("{BATCH_TABLE_DOC}{} {}", b.job, b.batch),
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
    /// Attempt `attempt` is being started by another delivery; its lease ends in `left`.
    Busy {
        attempt: u32,
        left: time::Duration,
    },
    /// The batch is exporting; `poll` is the look its state waits for.
    Exporting {
        poll: u32,
    },
    Nothing,
}

/// Starts the export of batch `b` if it is queued (or its start crashed), and sends the
/// first poll. A duplicate delivery finds the batch started and does nothing; a redelivery
/// (`redelivered`) sends the look the batch waits for again, in case the delivery that
/// started it died before sending it.
pub async fn start_batch(
    app: &App,
    b: &BatchRef,
    redelivered: bool,
) -> Result<BackfillReport, BackfillError> {
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
            BatchState::Launching { attempt, at } => {
                launch = Launch::Busy {
                    attempt,
                    left: lease - (now - at),
                };
                return Change::AlreadyDone;
            }
            BatchState::Exporting { poll, .. } => {
                launch = Launch::Exporting { poll };
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
        (Launch::Busy { attempt, left }, _) => {
            return look_after_lease(app, b, attempt, left).await;
        }
        (Launch::Exporting { poll }, _) if redelivered => {
            send_poll(app, b, poll).await?;
            let did = format!("batch already started; poll {poll} sent again in case it was lost");
            return job_report(app, b, did).await;
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
            send_poll(app, b, 0).await?;
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

/// Another delivery is starting attempt `attempt`, or died doing it. Failing this delivery
/// would spend the message's dequeue count on waiting (and a crash on its last delivery
/// would lose the batch's only message); instead the start is sent again for when the
/// lease ends, and this delivery is done. Then the batch is exporting (the look does
/// nothing) or its starter died (the look starts a fresh attempt).
async fn look_after_lease(
    app: &App,
    b: &BatchRef,
    attempt: u32,
    left: time::Duration,
) -> Result<BackfillReport, BackfillError> {
    let delay = std::time::Duration::try_from(left)
        .unwrap_or_default()
        .saturating_add(std::time::Duration::from_secs(1));
    let again = Task::BackfillBatchV1(b.clone());
    job::follow_up(&app.tasks, &again, delay)
        .await
        .map_err(|e| BackfillError::storage(format!("queue the next look at {b}"), e))?;
    job_report(
        app,
        b,
        format!(
            "attempt {attempt} of batch {} is being started elsewhere; looking again in {} s",
            b.batch,
            delay.as_secs()
        ),
    )
    .await
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
    // A redelivered launch may find the attempt's table made by the delivery that crashed;
    // `.create-or-alter` would need AllDatabasesAdmin (docs/deploy.md), so drop, then create.
    Step::table(&t, "drop a crashed launch's batch external table")
        .mgmt(&app.kusto, &command::drop_external_table(&spec.name))
        .await?;
    Step::table(&t, "create the batch's external table")
        .mgmt(&app.kusto, &command::create_external_table(&spec))
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
///
/// A redelivered look (`redelivered`) may come from a worker that saved the next step and
/// died before sending its message: it sends that message again (the next look, or the
/// dispatch of waiting batches). A first delivery never does, so the copies end.
pub async fn poll_batch(
    app: &App,
    b: &BatchRef,
    poll: u32,
    redelivered: bool,
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
        // A worker that died between cataloging a reconcile job's last batch and its swap
        // left this poll on the queue: the redelivery makes the swap.
        crate::reconcile::finish(app, &t, &b.job).await?;
        if redelivered {
            dispatch(app, &t, &b.job).await?;
        }
        return job_report(app, b, "nothing to poll").await;
    };
    if redelivered && expected == poll + 1 {
        send_poll(app, b, expected).await?;
        let did = format!("poll {expected} sent again in case it was lost");
        return job_report(app, b, did).await;
    }
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
            send_poll(app, b, next).await?;
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

/// Sends look `poll` at batch `b`, after the poll interval.
async fn send_poll(app: &App, b: &BatchRef, poll: u32) -> Result<(), BackfillError> {
    let task = Task::BackfillPollV1 {
        batch: b.clone(),
        poll,
    };
    job::follow_up(&app.tasks, &task, app.settings.backfill.poll_interval)
        .await
        .map(drop)
        .map_err(|e| BackfillError::storage(format!("queue poll {poll} of {b}"), e))
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
    catalog_totals::refresh_after_append(&app.blobs, &app.layout, &b.database, &b.table).await;
    // Files of earlier attempts that crashed while starting may have landed since.
    for earlier in 1..attempt {
        remove_attempt_files(app, b, earlier).await?;
    }
    dispatch(app, &t, &b.job).await?;
    // A reconcile job swaps its day in after its last batch.
    crate::reconcile::finish(app, &t, &b.job).await?;
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
                        tracing::error!(event = "adxbackup.job_failed", batch = %b, attempt, message,
                            "backfill batch failed for good after its last attempt");
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
    tracing::error!(event = "adxbackup.job_failed", batch = %b, attempt, message, "backfill batch failed");
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
    let (mut removed, mut kept) = (0, 0);
    while let Some(item) = files.try_next().await.map_err(list)? {
        if app
            .layout
            .is_attempt_file(&item.path, &b.database, &b.table, &prefix)
        {
            match app.blobs.delete(&item.path).await {
                Ok(()) => removed += 1,
                // The files of a failed attempt are cataloged nowhere, so a restore from the
                // catalog never reads them: under an immutability policy they stay (a listing
                // restore may include them; its caveats say so) and prune's day deletes take
                // them once the policy allows.
                Err(e) if e.is_immutable() => kept += 1,
                Err(e) => return Err(BackfillError::storage(format!("remove {}", item.path), e)),
            }
        }
    }
    if removed > 0 {
        tracing::info!(batch = %b, attempt, removed, "removed the files of a failed attempt");
    }
    if kept > 0 {
        tracing::warn!(batch = %b, attempt, kept,
            "files of a failed attempt left in place: an immutability policy refuses their delete; they are not cataloged");
    }
    Ok(removed)
}

async fn drop_batch_table(app: &App, b: &BatchRef) -> Result<(), BackfillError> {
    let t = b.table_ref();
    let name = batch_table_name(&app.settings.protect.object_prefix, &b.job, &b.batch)
        .map_err(|e| BackfillError::name(&t, e))?;
    Step::table(&t, "drop the batch's external table")
        .mgmt(&app.kusto, &command::drop_external_table(&name))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_tables_doc_names_its_job_and_batch() {
        let job = JobId::new("bf-0123456789abcdef").unwrap();
        let batch = BatchId::new("b000007").unwrap();
        let doc = format!("{BATCH_TABLE_DOC}{job} {batch}");
        assert_eq!(batch_of_doc(&doc), Some((job.clone(), batch.clone())));
        assert_eq!(
            batch_of_doc("adx-backup:abc"),
            None,
            "a table's own external table"
        );
        assert_eq!(batch_of_doc("made by hand"), None);
        assert_eq!(batch_of_doc("adx-backup:backfill a/b c"), None);
        assert_eq!(
            batch_table_name("adxbk_", &job, &batch).unwrap().as_str(),
            "adxbk_bf-0123456789abcdef_b000007"
        );
    }

    #[test]
    fn timeouts_split() {
        assert!(is_timeout(
            "Query execution has exceeded the allowed limits (80DA0001): The request has timed out"
        ));
        assert!(!is_timeout("Storage account unreachable"));
    }
}
