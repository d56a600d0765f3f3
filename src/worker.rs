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
use crate::protect::{self, FailureReport, ProtectError, ProtectPlan, TableOutcome};
use crate::retry::Retryable;
use crate::task::{MAX_DEQUEUE_COUNT, NotATask, Task};

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Protect(#[from] ProtectError),
    #[error("protect could not plan every database; the tables it could plan are queued:\n{plan}")]
    PlanIncomplete { plan: Box<ProtectPlan> },
}

/// What a task did when it succeeded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum TaskOutcome {
    ProtectTableV1(TableOutcome),
    HarvestTableV1(TableOutcome),
}

impl fmt::Display for TaskOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskOutcome::ProtectTableV1(outcome) | TaskOutcome::HarvestTableV1(outcome) => {
                outcome.fmt(f)
            }
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
            Verdict::Done(_) | Verdict::Recorded(_) => Settle::Delete,
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
        Task::ProtectTableV1(t) | Task::HarvestTableV1(t) => {
            tracing::info_span!("task", kind = task.kind(), database = %t.database, table = %t.table, dequeue_count)
        }
    };
    async {
        tracing::info!("task started");
        run_step(app, task, dequeue_count).await
    }
    .instrument(span)
    .await
}

async fn run_step(app: &App, task: Task, dequeue_count: u64) -> Verdict {
    let last_delivery = dequeue_count >= MAX_DEQUEUE_COUNT;
    let (t, done) = match task {
        Task::ProtectTableV1(t) => {
            let done = protect::protect_table(app, &t)
                .await
                .map(TaskOutcome::ProtectTableV1);
            (t, done)
        }
        Task::HarvestTableV1(t) => {
            let done = protect::harvest_table(app, &t)
                .await
                .map(TaskOutcome::HarvestTableV1);
            (t, done)
        }
    };
    match done {
        Ok(outcome) => Verdict::Done(outcome),
        Err(err) if err.is_transient() && !last_delivery => Verdict::RetryLater(err.into()),
        Err(err) => {
            tracing::error!(database = %t.database, table = %t.table, dequeue_count, error = %err,
                "protect failed for good; recorded in the table's state, message acknowledged (the next timer run retries the table)");
            match protect::record_failure(app, &t, &err).await {
                Ok(report) => Verdict::Recorded(report),
                Err(unrecorded) => Verdict::RetryLater(unrecorded.into()),
            }
        }
    }
}

/// The protect timer: plan, which queues one `ProtectTableV1` per table to check and one
/// `HarvestTableV1` per table to harvest on the task queue.
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
