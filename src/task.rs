//! Messages on the task queue: a tagged, versioned enum, one variant per fan-out step. Each
//! carries what its step needs and is safe to receive twice. A new message shape gets a new
//! variant (`...V2`) so messages already queued by an older version still decode.
//!
//! This module is vocabulary only: it imports no capability, so any capability can send a
//! task. Running one, and what happens to a message whose task failed, is the `worker`'s job.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{BatchRef, ChunkId, Day, HarvestRef, JobId, TableRef};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Task {
    /// Bring one table's external table, continuous export, catalog and health up to date.
    ProtectTableV1(TableRef),
    /// Harvest one table's newly exported files into the catalog, nothing else: the plan saw
    /// its export move and nothing else change.
    HarvestTableV1(HarvestRef),
    /// Plan the backfill of one table's history (before its export's StartCursor) into
    /// batches, write the plan to job state, and start the first batches.
    BackfillTableV1(TableRef),
    /// Start the export of one backfill batch, if it is still waiting to start.
    BackfillBatchV1(BatchRef),
    /// Look at a running backfill export: the `poll`-th look of the batch's current attempt.
    /// Only the look the job state expects does anything, so duplicates die out.
    BackfillPollV1 {
        #[serde(flatten)]
        batch: BatchRef,
        poll: u32,
    },
    /// Verify one table: the source's row counts per day against the catalog, and with
    /// `files` the catalog against the files in storage.
    VerifyTableV1 {
        #[serde(flatten)]
        table: TableRef,
        #[serde(default)]
        files: bool,
    },
    /// Reconcile one closed day of a table on which verify found `drift`: re-export it and
    /// swap it in (`AdxBackup__Reconcile=apply`).
    ReconcileDayV1 {
        #[serde(flatten)]
        table: TableRef,
        day: Day,
        drift: Drift,
        #[serde(with = "time::serde::rfc3339")]
        verified_at: time::OffsetDateTime,
    },
    /// Prune one table to its retention policy as of `now` (the timer's, so a message
    /// delivered twice decides the same days).
    PruneTableV1 {
        #[serde(flatten)]
        table: TableRef,
        #[serde(with = "time::serde::rfc3339")]
        now: time::OffsetDateTime,
    },
    // Restore.
    /// One step of a restore job's driver; a message whose tick the job has passed is a
    /// duplicate and does nothing.
    RestoreJobV1 { job: JobId, tick: u64 },
    /// Sends a restore chunk's files to the target (its looks are the driver's); a message
    /// whose poll the chunk has passed does nothing.
    RestoreChunkV1 {
        job: JobId,
        chunk: ChunkId,
        poll: u64,
    },
}

/// The drift verify found on a day: what the backup held and what it should hold. Part of
/// the `ReconcileDayV1` message, so it lives with the vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    pub backup_rows: u64,
    pub source_rows: u64,
}

/// host.json `extensions.queues.maxDequeueCount`: the host moves a message to the poison queue
/// after this many failed deliveries. A test keeps the two equal.
pub const MAX_DEQUEUE_COUNT: u64 = 5;

/// A queue message that is not a task this version understands. No retry can make it one.
#[derive(Debug, thiserror::Error)]
#[error("queue message is not a task this version understands: {source}")]
pub struct NotATask {
    #[source]
    pub source: serde_json::Error,
}

impl Task {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The one way a delivered message becomes a task: from its JSON value, as the Functions
    /// host hands it over (already unwrapped from its string encoding).
    pub fn decode(value: &Value) -> Result<Task, NotATask> {
        Task::deserialize(value).map_err(|source| NotATask { source })
    }

    /// A message as read from the queue: its text is parsed to JSON first, the way the host
    /// does before it invokes the function; text that is not JSON stays a string (and is not
    /// a task).
    pub fn decode_text(text: &str) -> Result<Task, NotATask> {
        let value = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()));
        Task::decode(&value)
    }

    /// The kind tag, for log fields.
    pub fn kind(&self) -> &'static str {
        match self {
            Task::ProtectTableV1(_) => "ProtectTableV1",
            Task::HarvestTableV1(_) => "HarvestTableV1",
            Task::BackfillTableV1(_) => "BackfillTableV1",
            Task::BackfillBatchV1(_) => "BackfillBatchV1",
            Task::BackfillPollV1 { .. } => "BackfillPollV1",
            Task::VerifyTableV1 { .. } => "VerifyTableV1",
            Task::ReconcileDayV1 { .. } => "ReconcileDayV1",
            Task::PruneTableV1 { .. } => "PruneTableV1",
            Task::RestoreJobV1 { .. } => "RestoreJobV1",
            Task::RestoreChunkV1 { .. } => "RestoreChunkV1",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{BatchId, DatabaseName, JobId, TableName};

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
        assert_eq!(Task::decode_text(&json).unwrap(), t);
        let harvest = r#"{"kind":"HarvestTableV1","database":"Sales","table":"Orders"}"#;
        let mut h = HarvestRef {
            database: DatabaseName::new("Sales").unwrap(),
            table: TableName::new("Orders").unwrap(),
            exported_to: None,
        };
        assert_eq!(
            Task::decode_text(harvest).unwrap(),
            Task::HarvestTableV1(h.clone())
        );
        h.exported_to = Some(time::macros::datetime!(2026-11-25 10:05 UTC));
        let json = Task::HarvestTableV1(h.clone()).to_json();
        assert_eq!(
            json,
            r#"{"kind":"HarvestTableV1","database":"Sales","table":"Orders","exported_to":"2026-11-25T10:05:00Z"}"#
        );
        assert_eq!(Task::decode_text(&json).unwrap(), Task::HarvestTableV1(h));
        let poll = Task::BackfillPollV1 {
            batch: BatchRef {
                database: DatabaseName::new("Sales").unwrap(),
                table: TableName::new("Orders").unwrap(),
                job: JobId::new("bf-1").unwrap(),
                batch: BatchId::new("b000002").unwrap(),
            },
            poll: 3,
        };
        let json = poll.to_json();
        assert_eq!(
            json,
            r#"{"kind":"BackfillPollV1","database":"Sales","table":"Orders","job":"bf-1","batch":"b000002","poll":3}"#
        );
        assert_eq!(Task::decode_text(&json).unwrap(), poll);
        let verify = r#"{"kind":"VerifyTableV1","database":"Sales","table":"Orders"}"#;
        let decoded = Task::decode_text(verify).unwrap();
        assert!(matches!(decoded, Task::VerifyTableV1 { files: false, .. }));
        assert_eq!(
            decoded.to_json(),
            r#"{"kind":"VerifyTableV1","database":"Sales","table":"Orders","files":false}"#
        );
        let prune = Task::PruneTableV1 {
            table: TableRef {
                database: DatabaseName::new("Sales").unwrap(),
                table: TableName::new("Orders").unwrap(),
            },
            now: time::macros::datetime!(2026-03-02 06:00 UTC),
        };
        assert_eq!(
            prune.to_json(),
            r#"{"kind":"PruneTableV1","database":"Sales","table":"Orders","now":"2026-03-02T06:00:00Z"}"#
        );
        assert_eq!(Task::decode_text(&prune.to_json()).unwrap(), prune);
        let r = Task::RestoreChunkV1 {
            job: JobId::new("r-1").unwrap(),
            chunk: ChunkId::new("c-000001").unwrap(),
            poll: 3,
        };
        assert_eq!(
            r.to_json(),
            r#"{"kind":"RestoreChunkV1","job":"r-1","chunk":"c-000001","poll":3}"#
        );
        assert_eq!(Task::decode_text(&r.to_json()).unwrap(), r);
        for bad in [
            r#"{"kind":"RestoreJobV1","job":"r/../x","tick":0}"#,
            r#"{"kind":"ProtectTableV9","database":"Sales","table":"Orders"}"#,
            r#"{"kind":"ProtectTableV1","database":"Sales","table":"x'); .drop table T"}"#,
            r#"{"database":"Sales","table":"Orders"}"#,
            "[]",
            r#"{"kind":"BackfillBatchV1","database":"Sales","table":"Orders","job":"bf/../x","batch":"b1"}"#,
            r#"{"kind":"BackfillPollV1","database":"Sales","table":"Orders","job":"bf-1","batch":"b1"}"#,
            "this is not a task",
            "",
        ] {
            assert!(serde_json::from_str::<Task>(bad).is_err(), "{bad}");
            assert!(Task::decode_text(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn damaged_messages_are_errors_not_panics_and_a_task_survives_its_resend() {
        let samples = [
            r#"{"kind":"HarvestTableV1","database":"Sales","table":"Orders","exported_to":"2026-11-25T10:05:00Z"}"#,
            r#"{"kind":"BackfillPollV1","database":"Sales","table":"Orders","job":"bf-1","batch":"b000002","poll":3}"#,
            r#"{"kind":"VerifyTableV1","database":"Sales","table":"Orders","files":true}"#,
            r#"{"kind":"ReconcileDayV1","database":"Sales","table":"Orders","day":"20260301","drift":{"backup_rows":10,"source_rows":12},"verified_at":"2026-03-05T03:30:00+01:00"}"#,
            r#"{"kind":"PruneTableV1","database":"Sales","table":"Orders","now":"2026-03-02T06:00:00Z"}"#,
            r#"{"kind":"RestoreChunkV1","job":"r-1","chunk":"c-000001","poll":3}"#,
        ];
        let samples: Vec<&[u8]> = samples.iter().map(|s| s.as_bytes()).collect();
        crate::mutate::check(0x7a5c, &samples, |bytes| {
            let task = Task::decode_text(&String::from_utf8_lossy(bytes))?;
            assert_eq!(Task::decode_text(&task.to_json()).ok(), Some(task));
            Ok::<_, NotATask>(())
        });
    }
}
