//! Bounded load: which waiting batches start now. At most
//! `AdxBackup__BackfillMaxConcurrentBatches` batches are queued or running, and never more
//! than the cluster's free export capacity; the rest wait as `Planned` in job state.

use super::{BackfillError, BatchState, STATE_ATTEMPTS, load_job};
use crate::app::App;
use crate::ids::{BatchId, BatchRef, JobId, TableRef};
use crate::job::{Change, StepOutcome};
use crate::kusto::{CapacityRow, Step, command};
use crate::task::Task;

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
    let export = CapacityRow::find(&tables, CapacityRow::DATA_EXPORT).map_err(|e| step.error(e))?;
    Ok(export.map_or(u64::MAX, |row| u64::try_from(row.remaining).unwrap_or(0)))
}
