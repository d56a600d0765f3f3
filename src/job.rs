//! The mechanics multi-step jobs (backfill, restore) share. Each job keeps its own state
//! enum (planned → exporting → exported, …) in a small JSON document; this module holds only
//! what every such step does the same way:
//!
//! - [`StepDoc`]: read the document, change it, write it back with the ETag that was read.
//!   Two workers that run the same step (a task delivered twice) cannot both win: the loser
//!   learns [`StepOutcome::LostRace`] and drops its work; a step already taken is
//!   [`StepOutcome::AlreadyDone`].
//! - [`follow_up`]: send a task that becomes visible only after a delay, so a step that
//!   started a long Kusto operation polls it later instead of holding an invocation.
//! - [`record_failure`]: put a permanent failure into the document, where `status` shows it.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::storage::state::Versioned;
use crate::storage::{BlobStore, StorageError, TaskQueue};
use crate::task::Task;

/// What a step's change did to the state it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The state moved on and must be written.
    Made,
    /// The state is already past this step (an earlier delivery did it); nothing to write.
    AlreadyDone,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// This worker moved the state on and wrote it.
    Advanced,
    /// Someone had already done the step.
    AlreadyDone,
    /// Someone else wrote the document after it was read; this worker's change was not
    /// written. Its side effects must be safe to drop or to repeat.
    LostRace,
}

/// A job's state document as read, with the version its write must match.
#[derive(Debug)]
pub struct StepDoc<T> {
    path: String,
    doc: Versioned<T>,
}

impl<T: Serialize + DeserializeOwned> StepDoc<T> {
    /// Reads the document at `path`, or starts from `init` when there is none yet.
    pub async fn load(
        blobs: &BlobStore,
        path: &str,
        init: impl FnOnce() -> T,
    ) -> Result<Self, StorageError> {
        Ok(Self {
            path: path.to_owned(),
            doc: Versioned::load_or(blobs, path, init).await?,
        })
    }

    /// Reads the document at `path`; None when there is none.
    pub async fn load_existing(
        blobs: &BlobStore,
        path: &str,
    ) -> Result<Option<Self>, StorageError> {
        match blobs.read_opt(path).await? {
            Some((body, etag)) => Ok(Some(Self {
                path: path.to_owned(),
                doc: Versioned {
                    value: crate::storage::state::decode(path, &body)?,
                    etag: Some(etag),
                },
            })),
            None => Ok(None),
        }
    }

    pub fn state(&self) -> &T {
        &self.doc.value
    }

    /// Applies `change` to the state as read and, if it made one, writes it back on the
    /// condition that nobody wrote in between.
    pub async fn advance(
        mut self,
        blobs: &BlobStore,
        change: impl FnOnce(&mut T) -> Change,
    ) -> Result<StepOutcome, StorageError> {
        if change(&mut self.doc.value) == Change::AlreadyDone {
            return Ok(StepOutcome::AlreadyDone);
        }
        match self.doc.save(blobs, &self.path).await {
            Ok(()) => Ok(StepOutcome::Advanced),
            Err(e) if e.is_conflict() => Ok(StepOutcome::LostRace),
            Err(e) => Err(e),
        }
    }
}

/// Sends `task` to become visible after `delay` (whole seconds, at most 7 days): the next
/// look at a long operation.
pub async fn follow_up(
    queue: &TaskQueue,
    task: &Task,
    delay: Duration,
) -> Result<String, StorageError> {
    queue.send(&task.to_json(), Some(delay)).await
}

/// A failure kept in a state document for `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedFailure {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The step that failed, e.g. "export batch 000042".
    pub step: String,
    pub message: String,
}

/// How often [`record_failure`] re-reads after losing a race before it gives up.
const RECORD_ATTEMPTS: usize = 3;

/// Records `message` as the failure of `step` in the document at `path`, in the slot `slot`
/// picks. A lost race re-reads and records again: the failure must not be lost because a
/// concurrent step moved the document on. Returns what was recorded.
pub async fn record_failure<T: Serialize + DeserializeOwned>(
    blobs: &BlobStore,
    path: &str,
    init: impl Fn() -> T,
    slot: impl Fn(&mut T) -> &mut Option<RecordedFailure>,
    step: &str,
    message: &str,
) -> Result<RecordedFailure, StorageError> {
    let failure = RecordedFailure {
        at: OffsetDateTime::now_utc(),
        step: step.to_owned(),
        message: message.to_owned(),
    };
    let mut attempt = 1;
    loop {
        let mut doc = Versioned::load_or(blobs, path, &init).await?;
        *slot(&mut doc.value) = Some(failure.clone());
        match doc.save(blobs, path).await {
            Ok(()) => return Ok(failure),
            Err(e) if e.is_conflict() && attempt < RECORD_ATTEMPTS => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_failure_is_plain_json_for_status() {
        let failure = RecordedFailure {
            at: time::macros::datetime!(2026-11-25 10:00 UTC),
            step: "export batch 000042".into(),
            message: "Kusto ran low on memory".into(),
        };
        let json = serde_json::to_string(&failure).unwrap();
        assert_eq!(
            json,
            r#"{"at":"2026-11-25T10:00:00Z","step":"export batch 000042","message":"Kusto ran low on memory"}"#
        );
        assert_eq!(
            serde_json::from_str::<RecordedFailure>(&json).unwrap(),
            failure
        );
    }
}
