//! The worker: runs a delivered task and decides, in this one place, what happens to its
//! message. Both the Functions queue route and `run-local`'s poller hand a delivery here and
//! apply the [`Verdict`] it returns through [`Verdict::settle`].
//!
//! Failure policy: transient failures (throttling, 5xx, a lost ETag race) leave the message
//! for another delivery; permanent ones, and transient ones on the last delivery the host will
//! make ([`MAX_DEQUEUE_COUNT`]), are recorded where `status` shows them and the message is
//! acknowledged, not left to pile up in the poison queue. The poison queue keeps only messages
//! that are not tasks at all, and tasks whose failure could not even be recorded.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::Instrument;

use crate::app::App;
use crate::backfill::{self, BackfillError, BackfillReport};
use crate::ids::{ChunkId, JobId, TableRef};
use crate::protect::{self, FailureReport, ProtectError, ProtectPlan, TableOutcome};
use crate::prune::{self, PruneError};
use crate::reconcile;
use crate::restore::{self, RestoreError};
use crate::retry::Retryable;
use crate::storage::StorageError;
use crate::task::{MAX_DEQUEUE_COUNT, NotATask, Task};
use crate::verify::{self, VerifyError};

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Protect(#[from] ProtectError),
    #[error(transparent)]
    Backfill(#[from] BackfillError),
    #[error(transparent)]
    Restore(#[from] RestoreError),
    #[error(transparent)]
    Verify(#[from] VerifyError),
    #[error(transparent)]
    Prune(#[from] PruneError),
    #[error(
        "could not enqueue tasks on {queue}: {source}; the timer will plan again on its next run"
    )]
    Enqueue {
        queue: String,
        #[source]
        source: Box<StorageError>,
    },
    #[error("protect could not plan every database; the tables it could plan are queued:\n{plan}")]
    PlanIncomplete { plan: Box<ProtectPlan> },
}

/// What a task did when it succeeded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum TaskOutcome {
    ProtectTableV1(TableOutcome),
    HarvestTableV1(TableOutcome),
    Backfill(BackfillReport),
    /// A table's verification and its outcome.
    Verify {
        summary: String,
    },
    /// A restore step (request, job or chunk) and what it did.
    Restore {
        summary: String,
    },
    /// A table's prune and what it removed.
    Prune {
        summary: String,
    },
}

impl fmt::Display for TaskOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskOutcome::ProtectTableV1(outcome) | TaskOutcome::HarvestTableV1(outcome) => {
                outcome.fmt(f)
            }
            TaskOutcome::Backfill(report) => report.fmt(f),
            TaskOutcome::Restore { summary }
            | TaskOutcome::Verify { summary }
            | TaskOutcome::Prune { summary } => f.write_str(summary),
        }
    }
}

/// The worker's judgement on one delivery.
#[derive(Debug)]
pub enum Verdict {
    /// The work is done.
    Done(TaskOutcome),
    /// It failed for good (or for the last time); the failure is recorded where `status`
    /// shows it, and the next timer run tries the table again.
    Recorded(FailureReport),
    /// A job's step failed for good; the failure is recorded in the job's state.
    RecordedInJob { job: JobId, error: String },
    /// It failed transiently; another delivery may succeed.
    RetryLater(WorkerError),
    /// The message is not a task; no delivery can make it one.
    Poison(NotATask),
}

/// What happens to the message: what the Functions host does on its own after the
/// invocation's answer, and what `run-local`'s poller does in its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Delete it: the host does after a 2xx answer.
    Delete,
    /// Leave it to become visible again: the host does after a failed invocation.
    Redeliver,
    /// Move it to `<queue>-poison`. The host does this itself only after the last failed
    /// delivery; the poller does it at once for a message that is not a task.
    Poison,
}

impl Verdict {
    pub fn settle(&self, dequeue_count: u64) -> Settle {
        match self {
            Verdict::Done(_) | Verdict::Recorded(_) | Verdict::RecordedInJob { .. } => {
                Settle::Delete
            }
            Verdict::RetryLater(_) if dequeue_count < MAX_DEQUEUE_COUNT => Settle::Redeliver,
            Verdict::RetryLater(_) | Verdict::Poison(_) => Settle::Poison,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Done(outcome) => outcome.fmt(f),
            Verdict::Recorded(r) => match &r.table {
                Some(table) => write!(
                    f,
                    "{}.{table}: failed and recorded: {}",
                    r.database, r.error
                ),
                None => write!(f, "{}: failed and recorded: {}", r.database, r.error),
            },
            Verdict::RecordedInJob { job, error } => {
                write!(f, "job {job}: failed and recorded: {error}")
            }
            Verdict::RetryLater(err) => err.fmt(f),
            Verdict::Poison(err) => err.fmt(f),
        }
    }
}

/// A message as the Functions host hands it over: its JSON value.
pub async fn deliver(app: &App, message: &Value, dequeue_count: Option<u64>) -> Verdict {
    match Task::decode(message) {
        Ok(task) => run(app, task, dequeue_count).await,
        Err(err) => Verdict::Poison(err),
    }
}

/// A message as read from the queue: its text.
pub async fn deliver_text(app: &App, text: &str, dequeue_count: Option<u64>) -> Verdict {
    match Task::decode_text(text) {
        Ok(task) => run(app, task, dequeue_count).await,
        Err(err) => Verdict::Poison(err),
    }
}

/// Runs `task` on its `dequeue_count`-th delivery; a delivery that does not say which is
/// taken as the first, so a failure is retried rather than recorded too early.
pub async fn run(app: &App, task: Task, dequeue_count: Option<u64>) -> Verdict {
    let dequeue_count = dequeue_count.unwrap_or(1);
    let span = match &task {
        Task::HarvestTableV1(h) => {
            tracing::info_span!("task", kind = task.kind(), database = %h.database, table = %h.table, dequeue_count)
        }
        Task::ProtectTableV1(t)
        | Task::BackfillTableV1(t)
        | Task::VerifyTableV1 { table: t, .. }
        | Task::ReconcileDayV1 { table: t, .. }
        | Task::PruneTableV1 { table: t, .. } => {
            tracing::info_span!("task", kind = task.kind(), database = %t.database, table = %t.table, dequeue_count)
        }
        Task::BackfillBatchV1(b) | Task::BackfillPollV1 { batch: b, .. } => {
            tracing::info_span!("task", kind = task.kind(), database = %b.database, table = %b.table, job = %b.job, batch = %b.batch, dequeue_count)
        }
        Task::RestoreJobV1 { job, .. } | Task::RestoreChunkV1 { job, .. } => {
            tracing::info_span!("task", kind = task.kind(), job = %job, dequeue_count)
        }
    };
    async {
        tracing::info!("task started");
        run_step(app, task, dequeue_count).await
    }
    .instrument(span)
    .await
}

/// Each capability's future is boxed: a match's future is as large as its largest arm, and
/// unboxed they nested into frames of hundreds of kilobytes in a debug build, enough to
/// overflow a 2 MiB thread stack (the e2e test under a WORM policy did, in CI).
async fn run_step(app: &App, task: Task, dequeue_count: u64) -> Verdict {
    let last_delivery = dequeue_count >= MAX_DEQUEUE_COUNT;
    match task {
        Task::ProtectTableV1(t) => {
            let done = Box::pin(protect::protect_table(app, &t))
                .await
                .map(TaskOutcome::ProtectTableV1);
            protect_verdict(app, &t, done, dequeue_count, last_delivery).await
        }
        Task::HarvestTableV1(h) => {
            let done = Box::pin(protect::harvest_table(app, &h))
                .await
                .map(TaskOutcome::HarvestTableV1);
            protect_verdict(app, &h.table_ref(), done, dequeue_count, last_delivery).await
        }
        Task::BackfillTableV1(ref t) => {
            let result = Box::pin(backfill::start(app, t, false)).await;
            let last = last_delivery.then_some(&task);
            backfill_verdict(app, t, None, "plan the backfill", result, last).await
        }
        Task::BackfillBatchV1(ref b) => {
            let result = Box::pin(backfill::start_batch(app, b, dequeue_count > 1)).await;
            let step = format!("start batch {}", b.batch);
            let last = last_delivery.then_some(&task);
            backfill_verdict(app, &b.table_ref(), Some(&b.job), &step, result, last).await
        }
        Task::BackfillPollV1 { batch: ref b, poll } => {
            let result = Box::pin(backfill::poll_batch(app, b, poll, dequeue_count > 1)).await;
            let step = format!("poll batch {}", b.batch);
            let last = last_delivery.then_some(&task);
            backfill_verdict(app, &b.table_ref(), Some(&b.job), &step, result, last).await
        }
        Task::VerifyTableV1 { table, files } => {
            let done = match Box::pin(verify::verify_table(app, &table, files)).await {
                Ok(v) => Box::pin(reconcile::after_verify(app, &table, &v))
                    .await
                    .map(|_| v)
                    .map_err(|e| VerifyError::Enqueue {
                        table: table.clone(),
                        source: Box::new(e),
                    }),
                Err(e) => Err(e),
            };
            verify_verdict(app, &table, done, last_delivery).await
        }
        Task::ReconcileDayV1 {
            ref table,
            day,
            drift,
            verified_at,
        } => {
            let result = Box::pin(reconcile::start(app, table, day, drift, verified_at)).await;
            let step = format!("reconcile day {day}");
            let last = last_delivery.then_some(&task);
            backfill_verdict(app, table, None, &step, result, last).await
        }
        Task::PruneTableV1 { table, now } => {
            let done = Box::pin(prune::prune_table(app, &table, now, false)).await;
            prune_verdict(app, &table, done, last_delivery).await
        }
        Task::RestoreJobV1 { job, tick } => {
            let done = Box::pin(restore::drive(app, &job, tick, dequeue_count > 1)).await;
            restore_verdict(app, &job, None, done, last_delivery).await
        }
        Task::RestoreChunkV1 { job, chunk, poll } => {
            let done = Box::pin(restore::step_chunk(app, &job, &chunk, poll)).await;
            restore_verdict(app, &job, Some(&chunk), done, last_delivery).await
        }
    }
}

/// The one failure policy, for protect and harvest: transient failures are retried by
/// another delivery; permanent ones, and any on the last delivery, are recorded in the
/// table's state and the message acknowledged (the next timer run retries the table).
async fn protect_verdict(
    app: &App,
    t: &TableRef,
    done: Result<TaskOutcome, ProtectError>,
    dequeue_count: u64,
    last_delivery: bool,
) -> Verdict {
    match done {
        Ok(outcome) => Verdict::Done(outcome),
        Err(err) if err.is_transient() && !last_delivery => Verdict::RetryLater(err.into()),
        Err(err) => {
            tracing::error!(database = %t.database, table = %t.table, dequeue_count, error = %err,
                "protect failed for good; recorded in the table's state, message acknowledged (the next timer run retries the table)");
            match protect::record_failure(app, t, &err).await {
                Ok(report) => Verdict::Recorded(report),
                Err(unrecorded) => Verdict::RetryLater(unrecorded.into()),
            }
        }
    }
}

/// The one policy, for backfill steps: transient failures are retried by another delivery;
/// permanent ones, and any on the last delivery (`last` is then the task), are recorded in
/// the job's state. A step that failed transiently on its last delivery is also sent again,
/// as a new message after the poll interval: every backfill step is safe to repeat, and a
/// batch must not be left waiting for a poll that never comes because Kusto was away for
/// a while.
async fn backfill_verdict(
    app: &App,
    t: &TableRef,
    job: Option<&JobId>,
    step: &str,
    result: Result<BackfillReport, BackfillError>,
    last: Option<&Task>,
) -> Verdict {
    match result {
        Ok(report) => Verdict::Done(TaskOutcome::Backfill(report)),
        Err(err) if err.is_transient() && last.is_none() => Verdict::RetryLater(err.into()),
        Err(err) => {
            if let Some(task) = last.filter(|_| err.is_transient()) {
                let delay = app.settings.backfill.poll_interval;
                if let Err(unsent) = crate::job::follow_up(&app.tasks, task, delay).await {
                    return Verdict::RetryLater(WorkerError::Enqueue {
                        queue: app.settings.storage.task_queue.clone(),
                        source: Box::new(unsent),
                    });
                }
            }
            tracing::error!(event = "adxbackup.job_failed", database = %t.database, table = %t.table, step, error = %err,
                "backfill step failed for good; recorded in the job's state, message acknowledged");
            let recorded = match job {
                Some(job) => backfill::record_failure(app, t, job, step, &err)
                    .await
                    .map_err(WorkerError::from),
                // No job yet (planning failed): the table's state shows it.
                None => {
                    let err = ProtectError::Unexpected {
                        database: t.database.clone(),
                        table: t.table.clone(),
                        message: format!("could not {step}: {err}"),
                    };
                    protect::record_failure(app, t, &err)
                        .await
                        .map(|_| ())
                        .map_err(WorkerError::from)
                }
            };
            match recorded {
                Ok(()) => Verdict::Recorded(FailureReport {
                    database: t.database.clone(),
                    table: Some(t.table.clone()),
                    error: err.to_string(),
                }),
                Err(unrecorded) => Verdict::RetryLater(unrecorded),
            }
        }
    }
}

/// The failure policy for a verification: transient failures are retried; permanent ones,
/// and any on the last delivery, are stored as the table's verification (failed), where
/// `status` shows them, and the message acknowledged.
async fn verify_verdict(
    app: &App,
    t: &TableRef,
    done: Result<verify::Verification, VerifyError>,
    last_delivery: bool,
) -> Verdict {
    match done {
        Ok(v) => Verdict::Done(TaskOutcome::Verify {
            summary: format!(
                "{t}: verified, {} ({} finding(s))",
                v.outcome,
                v.findings.len()
            ),
        }),
        Err(err) if err.is_transient() && !last_delivery => Verdict::RetryLater(err.into()),
        Err(err) => {
            tracing::error!(event = "adxbackup.job_failed", database = %t.database, table = %t.table, error = %err,
                "verification failed for good; recorded as the table's verification, message acknowledged");
            match verify::record_failure(app, t, &err).await {
                Ok(()) => Verdict::Recorded(FailureReport {
                    database: t.database.clone(),
                    table: Some(t.table.clone()),
                    error: err.to_string(),
                }),
                Err(unrecorded) => Verdict::RetryLater(unrecorded.into()),
            }
        }
    }
}

/// The policy for prune: transient failures are retried by another delivery; the rest are
/// recorded in the table's state (status shows it as the table's last error) and the message
/// acknowledged. Nothing is lost by giving up: the records written so far stand, and the
/// next protect pass queues the table again and finishes them.
async fn prune_verdict(
    app: &App,
    t: &TableRef,
    done: Result<prune::PruneReport, PruneError>,
    last_delivery: bool,
) -> Verdict {
    match done {
        Ok(report) => Verdict::Done(TaskOutcome::Prune {
            summary: report.to_string(),
        }),
        Err(err) if err.is_transient() && !last_delivery => Verdict::RetryLater(err.into()),
        Err(err) => {
            tracing::error!(event = "adxbackup.job_failed", database = %t.database, table = %t.table, error = %err,
                "prune failed for good; recorded in the table's state, message acknowledged (the next protect pass tries again)");
            let recorded = ProtectError::Unexpected {
                database: t.database.clone(),
                table: t.table.clone(),
                message: err.to_string(),
            };
            match protect::record_failure(app, t, &recorded).await {
                Ok(report) => Verdict::Recorded(report),
                Err(unrecorded) => Verdict::RetryLater(unrecorded.into()),
            }
        }
    }
}

/// The one failure policy, for restore steps: transient failures are retried, the rest are
/// recorded in the job (or its chunk) and the message acknowledged.
async fn restore_verdict(
    app: &App,
    job: &JobId,
    chunk: Option<&ChunkId>,
    done: Result<String, RestoreError>,
    last_delivery: bool,
) -> Verdict {
    match done {
        Ok(summary) => Verdict::Done(TaskOutcome::Restore { summary }),
        Err(err) if err.is_transient() && !last_delivery => Verdict::RetryLater(err.into()),
        Err(err) => {
            tracing::error!(event = "adxbackup.job_failed", job = %job, chunk = ?chunk.map(ChunkId::as_str), error = %err,
                "restore step failed for good; recorded in the job, message acknowledged");
            match restore::record_failure(app, job, chunk, &err).await {
                Ok(()) => Verdict::RecordedInJob {
                    job: job.clone(),
                    error: err.to_string(),
                },
                Err(unrecorded) => Verdict::RetryLater(unrecorded.into()),
            }
        }
    }
}

/// A message on the restore-request queue. A request that cannot run is recorded in its job
/// as Rejected and acknowledged; only a failure to reach storage is retried.
pub async fn deliver_restore_request(
    app: &App,
    message: &Value,
    message_id: Option<&str>,
    dequeue_count: Option<u64>,
) -> Verdict {
    let last_delivery = dequeue_count.unwrap_or(1) >= MAX_DEQUEUE_COUNT;
    match restore::accept(app, message, message_id).await {
        Ok(accepted) => Verdict::Done(TaskOutcome::Restore {
            summary: match accepted.rejected {
                Some(reason) => format!("restore {}: rejected: {reason}", accepted.job),
                None => format!("restore {}: accepted", accepted.job),
            },
        }),
        Err(err) if err.is_transient() && !last_delivery => Verdict::RetryLater(err.into()),
        Err(err) => {
            tracing::error!(error = %err, "restore request could not be recorded");
            Verdict::RetryLater(err.into())
        }
    }
}

/// The protect timer: plan, which queues one `ProtectTableV1` per table to check and one
/// `HarvestTableV1` per table to harvest on the task queue, and one `PruneTableV1` per table
/// with a retention policy.
pub async fn fan_out_protect(app: &App) -> Result<ProtectPlan, WorkerError> {
    let plan = protect::plan(app, false, protect::Delivery::Queue).await?;
    if plan.failures.is_empty() {
        Ok(plan)
    } else {
        Err(WorkerError::PlanIncomplete {
            plan: Box::new(plan),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{DatabaseName, TableName};

    fn not_a_task() -> NotATask {
        Task::decode_text("this is not a task").unwrap_err()
    }

    fn report() -> FailureReport {
        FailureReport {
            database: DatabaseName::new("Sales").unwrap(),
            table: Some(TableName::new("Orders").unwrap()),
            error: "boom".into(),
        }
    }

    #[test]
    fn settle_rules() {
        let retry = || {
            Verdict::RetryLater(WorkerError::PlanIncomplete {
                plan: Box::default(),
            })
        };
        for count in [
            1,
            MAX_DEQUEUE_COUNT - 1,
            MAX_DEQUEUE_COUNT,
            MAX_DEQUEUE_COUNT + 3,
        ] {
            assert_eq!(Verdict::Recorded(report()).settle(count), Settle::Delete);
            assert_eq!(Verdict::Poison(not_a_task()).settle(count), Settle::Poison);
        }
        assert_eq!(retry().settle(1), Settle::Redeliver);
        assert_eq!(retry().settle(MAX_DEQUEUE_COUNT - 1), Settle::Redeliver);
        assert_eq!(retry().settle(MAX_DEQUEUE_COUNT), Settle::Poison);
    }

    #[test]
    fn a_recorded_failure_reads_as_before() {
        assert_eq!(
            Verdict::Recorded(report()).to_string(),
            "Sales.Orders: failed and recorded: boom"
        );
    }
}
