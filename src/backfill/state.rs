//! A backfill job's state document (`$state/backfill/<db>/<table>/<job>.json`): the plan,
//! every batch with its own state, and the progress `status` shows. Written before anything
//! fans out, and only ever with an ETag condition.
//!
//! A batch moves, on the model of kusto-copy's block states:
//!
//! ```text
//! Planned ─▶ Queued ─▶ Launching ─▶ Exporting ─▶ Cataloged
//!   (waits in     (a start task   (attempt n's   (files in the catalog, once)
//!    job state)    was sent)       external       ├▶ Split: too big for the cluster; two
//!                                  table and         new Planned halves replace it
//!                                  export)        └▶ Failed: Kusto's message
//! ```
//!
//! A transient failure of an export sends the batch back to Queued for another attempt.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::plan::Range;
use crate::ids::{BatchId, Cursor, DatabaseName, IdError, JobId, OperationId, TableName};
use crate::job::RecordedFailure;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackfillJob {
    pub job: JobId,
    pub database: DatabaseName,
    pub table: TableName,
    /// Every batch exports only rows at or before this cursor: the continuous export's
    /// StartCursor, after which the export itself covers the table.
    pub start_cursor: Cursor,
    /// For a gap: only rows committed after this cursor (the old export's StartCursor)...
    #[serde(default)]
    pub after_cursor: Option<Cursor>,
    /// ...and ingested after this time (how far the old export got).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub ingested_after: Option<OffsetDateTime>,
    /// For a reconcile job: the one day it re-exports, and its bound.
    #[serde(default)]
    pub day: Option<crate::backfill::DayScope>,
    /// Why this backfill exists, e.g. "history before the continuous export's StartCursor".
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Rows at or before the cursor, counted when the plan was made.
    pub planned_rows: u64,
    /// Rows no batch can cover, and why; None when every row is covered.
    pub uncovered: Option<Uncovered>,
    /// The number the next batch id is made from.
    pub next_batch: u64,
    pub batches: BTreeMap<BatchId, Batch>,
    pub progress: Progress,
    /// The last step that failed for good, for `status`.
    pub failure: Option<RecordedFailure>,
}

/// Rows the backfill cannot export, counted exactly, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uncovered {
    pub rows: u64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    /// Rows counted in the range when it was planned.
    pub rows: u64,
    /// Export attempts started so far; each writes under its own name prefix.
    pub attempts: u32,
    /// The batch this one is a half of.
    pub parent: Option<BatchId>,
    pub state: BatchState,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state")]
pub enum BatchState {
    /// Waiting in job state for a free slot.
    Planned,
    /// A start task was sent.
    Queued,
    /// Attempt `attempt` is being started: its external table and export.
    Launching {
        attempt: u32,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// Attempt `attempt` runs as `operation`; `poll` is the look the state expects next.
    Exporting {
        attempt: u32,
        operation: OperationId,
        poll: u32,
    },
    /// Its files are in the catalog.
    Cataloged {
        files: u64,
        rows: u64,
    },
    /// Too big for the cluster: replaced by two halves.
    Split {
        into: Vec<BatchId>,
        message: String,
    },
    Failed {
        message: String,
    },
}

impl BatchState {
    /// Holds (or is about to hold) an export slot.
    pub fn is_running(&self) -> bool {
        matches!(
            self,
            Self::Queued | Self::Launching { .. } | Self::Exporting { .. }
        )
    }

    /// Attempt `attempt` is being started.
    pub fn is_launching(&self, attempt: u32) -> bool {
        matches!(self, Self::Launching { attempt: a, .. } if *a == attempt)
    }

    /// Attempt `attempt` is exporting.
    pub fn is_exporting(&self, attempt: u32) -> bool {
        matches!(self, Self::Exporting { attempt: a, .. } if *a == attempt)
    }

    /// Attempt `attempt` is exporting and expects look `poll` next.
    pub fn is_polling(&self, attempt: u32, poll: u32) -> bool {
        matches!(self, Self::Exporting { attempt: a, poll: p, .. } if *a == attempt && *p == poll)
    }

    /// Attempt `attempt` is being started or exporting: it is the batch's current attempt.
    pub fn is_attempt(&self, attempt: u32) -> bool {
        self.is_launching(attempt) || self.is_exporting(attempt)
    }

    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Cataloged { .. } | Self::Split { .. } | Self::Failed { .. }
        )
    }
}

/// Batches and rows by state, kept in the document for `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub batches_planned: u64,
    pub batches_waiting: u64,
    pub batches_running: u64,
    pub batches_done: u64,
    pub batches_failed: u64,
    pub batches_split: u64,
    pub rows_planned: u64,
    pub rows_exported: u64,
    /// Rows of the batches that failed for good.
    pub rows_failed: u64,
    /// No batch is waiting or running.
    pub finished: bool,
}

impl Batch {
    pub fn planned(range: Range, parent: Option<BatchId>) -> Self {
        Self {
            from: range.from,
            to: range.to,
            rows: range.rows,
            attempts: 0,
            parent,
            state: BatchState::Planned,
        }
    }

    pub fn range(&self) -> Range {
        Range {
            from: self.from,
            to: self.to,
            rows: self.rows,
        }
    }
}

impl BackfillJob {
    /// An empty job; only a stand-in where a document is required but known to exist.
    pub fn placeholder(t: &crate::ids::TableRef, job: &JobId) -> Self {
        Self {
            job: job.clone(),
            database: t.database.clone(),
            table: t.table.clone(),
            start_cursor: Cursor::new(""),
            after_cursor: None,
            ingested_after: None,
            day: None,
            reason: String::new(),
            created_at: OffsetDateTime::UNIX_EPOCH,
            planned_rows: 0,
            uncovered: None,
            next_batch: 0,
            batches: BTreeMap::new(),
            progress: Progress::default(),
            failure: None,
        }
    }

    /// A new batch id: `b000001`, `b000002`, ... in planning order.
    pub fn new_batch_id(&mut self) -> Result<BatchId, IdError> {
        self.next_batch += 1;
        BatchId::new(format!("b{:06}", self.next_batch))
    }

    /// Which rows the job backs up.
    pub fn bounds(&self) -> crate::backfill::Bounds {
        crate::backfill::Bounds {
            until: self.start_cursor.clone(),
            after: self.after_cursor.clone(),
            ingested_after: self.ingested_after,
            day: self.day.clone(),
        }
    }

    /// Recounts [`Progress`] from the batches; called before every write.
    pub fn recount(&mut self) {
        let mut p = Progress {
            rows_planned: self.planned_rows,
            ..Progress::default()
        };
        for batch in self.batches.values() {
            match &batch.state {
                BatchState::Planned => p.batches_waiting += 1,
                s if s.is_running() => p.batches_running += 1,
                BatchState::Cataloged { rows, .. } => {
                    p.batches_done += 1;
                    p.rows_exported += rows;
                }
                BatchState::Split { .. } => p.batches_split += 1,
                BatchState::Failed { .. } => {
                    p.batches_failed += 1;
                    p.rows_failed += batch.rows;
                }
                _ => {}
            }
            if batch.parent.is_none() {
                p.batches_planned += 1;
            }
        }
        p.finished = p.batches_waiting == 0 && p.batches_running == 0;
        self.progress = p;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TableRef;
    use crate::storage::StorageError;
    use crate::storage::state::decode;
    use time::macros::datetime;

    fn job() -> BackfillJob {
        let t = TableRef {
            database: DatabaseName::new("Sales").unwrap(),
            table: TableName::new("Orders").unwrap(),
        };
        let mut job = BackfillJob::placeholder(&t, &JobId::new("bf-1").unwrap());
        job.start_cursor = Cursor::new("638712399999999999");
        job.ingested_after = Some(datetime!(2026-01-01 00:00 +01:00));
        job.planned_rows = 30;
        job.uncovered = Some(Uncovered {
            rows: 2,
            reason: "no ingestion time".into(),
        });
        let range = |rows| Range {
            from: datetime!(2026-01-01 00:00 UTC),
            to: datetime!(2026-01-02 00:00:00.1234567 UTC),
            rows,
        };
        let states = [
            BatchState::Cataloged { files: 2, rows: 10 },
            BatchState::Exporting {
                attempt: 2,
                operation: OperationId::new("8b1a2c3d-0000-4000-8000-000000000001"),
                poll: 3,
            },
            BatchState::Split {
                into: vec![BatchId::new("b000004").unwrap()],
                message: "E_LOW_MEMORY_CONDITION".into(),
            },
            BatchState::Failed {
                message: "too small to split".into(),
            },
        ];
        for state in states {
            let id = job.new_batch_id().unwrap();
            let mut batch = Batch::planned(range(10), None);
            batch.state = state;
            job.batches.insert(id, batch);
        }
        job.recount();
        job
    }

    #[test]
    fn damaged_job_documents_are_errors_not_panics_and_survive_a_recount_and_save() {
        let sample = serde_json::to_vec(&job()).unwrap();
        crate::mutate::check(0xbf1, &[&sample], |body| {
            let mut job: BackfillJob = decode("job", body)?;
            job.recount();
            let saved = serde_json::to_vec_pretty(&job).unwrap();
            assert_eq!(decode::<BackfillJob>("job", &saved).unwrap(), job);
            Ok::<_, StorageError>(())
        });
    }
}
