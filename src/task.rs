//! Messages on the task queue: a tagged, versioned enum, one variant per fan-out step. Each
//! carries what its step needs and is safe to receive twice. A new message shape gets a new
//! variant (`...V2`) so messages already queued by an older version still decode.
//!
//! Failure policy: transient failures (throttling, 5xx, a lost ETag race) fail the invocation
//! so the queue delivers the message again; permanent ones, and transient ones on the last
//! delivery the host will make ([`MAX_DEQUEUE_COUNT`]), are recorded where `status` shows them
//! and the message is acknowledged, not left to pile up in the poison queue. The poison queue
//! keeps only messages that are not tasks at all.

use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::app::App;
use crate::protect::{self, ProtectError, TableRef};
use crate::retry::Retryable;
use crate::storage::StorageError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Task {
    /// Bring one table's external table, continuous export, catalog and health up to date.
    ProtectTableV1(TableRef),
}

#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error(transparent)]
    Protect(#[from] ProtectError),
    #[error(
        "could not enqueue tasks on {queue}: {source}; the timer will plan again on its next run"
    )]
    Enqueue {
        queue: String,
        #[source]
        source: Box<StorageError>,
    },
    #[error(
        "protect could not plan every database; the tables it could plan are queued:\n{report}"
    )]
    PlanIncomplete { report: String },
}

/// host.json `extensions.queues.maxDequeueCount`: the host moves a message to the poison queue
/// after this many failed deliveries. A test keeps the two equal.
pub const MAX_DEQUEUE_COUNT: u64 = 5;

impl Task {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Runs the step on its `dequeue_count`-th delivery. `Ok` means the message can be
    /// deleted: the work is done, or it failed for good and the failure is recorded.
    pub async fn run(self, app: &App, dequeue_count: u64) -> Result<String, TaskError> {
        let span = match &self {
            Task::ProtectTableV1(t) => {
                tracing::info_span!("task", kind = "ProtectTableV1", database = %t.database, table = %t.table, dequeue_count)
            }
        };
        async {
            tracing::info!("task started");
            self.run_step(app, dequeue_count).await
        }
        .instrument(span)
        .await
    }

    async fn run_step(self, app: &App, dequeue_count: u64) -> Result<String, TaskError> {
        let last_delivery = dequeue_count >= MAX_DEQUEUE_COUNT;
        match self {
            Task::ProtectTableV1(t) => match protect::protect_table(app, &t).await {
                Ok(outcome) => Ok(outcome.to_string()),
                Err(err) if err.is_transient() && !last_delivery => Err(err.into()),
                Err(err) => {
                    tracing::error!(database = %t.database, table = %t.table, dequeue_count, error = %err,
                        "protect failed for good; recorded in the table's state, message acknowledged (the next timer run retries the table)");
                    protect::record_failure(app, &t, &err).await?;
                    Ok(format!("{t}: failed and recorded: {err}"))
                }
            },
        }
    }
}

/// The protect timer: plan, then one `ProtectTableV1` per table on the task queue.
pub async fn fan_out_protect(app: &App) -> Result<String, TaskError> {
    let plan = protect::plan(app).await?;
    if plan.skipped.is_none() {
        let enqueue_err = |source| TaskError::Enqueue {
            queue: app.settings.storage.task_queue.clone(),
            source: Box::new(source),
        };
        for t in &plan.tables {
            app.tasks
                .send(&Task::ProtectTableV1(t.clone()).to_json(), None)
                .await
                .map_err(enqueue_err)?;
        }
    }
    if plan.failures.is_empty() {
        Ok(plan.to_string())
    } else {
        Err(TaskError::PlanIncomplete {
            report: plan.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{DatabaseName, TableName};

    #[test]
    fn wire_shape_is_tagged_and_validated() {
        let t = Task::ProtectTableV1(TableRef {
            database: DatabaseName::new("Sales").unwrap(),
            table: TableName::new("Orders").unwrap(),
        });
        let json = t.to_json();
        assert_eq!(
            json,
            r#"{"kind":"ProtectTableV1","database":"Sales","table":"Orders"}"#
        );
        assert_eq!(serde_json::from_str::<Task>(&json).unwrap(), t);
        for bad in [
            r#"{"kind":"ProtectTableV9","database":"Sales","table":"Orders"}"#,
            r#"{"kind":"ProtectTableV1","database":"Sales","table":"x'); .drop table T"}"#,
            r#"{"database":"Sales","table":"Orders"}"#,
            "[]",
        ] {
            assert!(serde_json::from_str::<Task>(bad).is_err(), "{bad}");
        }
    }
}
