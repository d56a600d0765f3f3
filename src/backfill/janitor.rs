//! The janitor: drops the per-batch external tables no batch will use again.
//!
//! A batch's external table is the product's only temporary Kusto object that outlives a
//! request (restore ingests with queued ingestion and extent tags, no staging table;
//! `check`'s probe table is dropped within the same check). It is named
//! `<ObjectPrefix><job>_<batch>`, carries the DocString `adx-backup:backfill <job> <batch>`,
//! is created only after its batch records the attempt as `Launching` in job state, and is
//! dropped when the attempt ends. One can still be left behind: a job whose state document
//! was removed, a worker that stalled past its lease and created its table after another
//! delivery had ended the batch, a crash between the create and the state write of a batch
//! that then ended another way.
//!
//! [`sweep`] runs in protect's timer pass, once per database, from the external tables that
//! pass lists anyway (no extra command while there is nothing to clean). A batch table is an
//! orphan when its job has no state, its batch is not in the job, or its batch has ended
//! (Cataloged, Split, Failed: final states, so nothing creates its table again). An orphan
//! is dropped once the janitor has seen it orphaned for `AdxBackup__JanitorGraceSeconds`,
//! at most [`MAX_DROPS_PER_PASS`] per pass; the rest wait for the next pass. What it found
//! is kept in `$state/janitor/<db>.json` for `status`.

use std::collections::{BTreeMap, HashMap};

use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::batch::{batch_of_doc, batch_table_name};
use super::{BackfillError, BackfillJob, load_job};
use crate::app::App;
use crate::ids::{BatchId, DatabaseName, JobId, TableName};
use crate::kusto::{Step, command};
use crate::storage::state::Versioned;

/// Drops per pass, so one pass stays short however much a crash left behind; at the
/// protect timer's pace this still clears thousands a day, far below Kusto's table limits.
const MAX_DROPS_PER_PASS: usize = 50;

/// What the janitor knows of one database between passes (`$state/janitor/<db>.json`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JanitorState {
    /// Temporary objects in the database after the last pass, in use or not.
    pub temporary: usize,
    /// Orphans not dropped yet, with when each was first seen orphaned.
    pub orphans: Vec<Orphan>,
    /// Orphans dropped, over every pass.
    pub dropped: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Orphan {
    pub name: TableName,
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    pub why: String,
}

/// What one pass found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sweep {
    /// Temporary objects left in the database after the pass.
    pub temporary: usize,
    /// Of those, orphans waiting for their grace period (or the next pass).
    pub orphans: usize,
    pub dropped: usize,
}

/// One pass over `db`, given the DocString of every external table carrying the object
/// prefix (name to DocString, as protect's plan read them).
pub async fn sweep(
    app: &App,
    db: &DatabaseName,
    external_docs: &HashMap<String, String>,
) -> Result<Sweep, BackfillError> {
    let prefix = &app.settings.protect.object_prefix;
    let batch_tables: Vec<(TableName, JobId, BatchId)> = external_docs
        .iter()
        .filter_map(|(name, doc)| {
            let (job, batch) = batch_of_doc(doc)?;
            let expected = batch_table_name(prefix, &job, &batch).ok()?;
            (expected.as_str() == name).then_some((expected, job, batch))
        })
        .collect();
    let orphaned = orphans(app, db, &batch_tables).await?;
    let path = app.layout.janitor_state(db);
    let mut state = Versioned::load_or(&app.blobs, &path, JanitorState::default)
        .await
        .map_err(|e| BackfillError::storage(format!("read the janitor's state of {db}"), e))?;
    let before = state.value.clone();
    let now = OffsetDateTime::now_utc();
    let grace = time::Duration::try_from(app.settings.backfill.janitor_grace)
        .unwrap_or(time::Duration::HOUR);
    let mut since: HashMap<TableName, OffsetDateTime> = state
        .value
        .orphans
        .iter()
        .map(|o| (o.name.clone(), o.since))
        .collect();
    let mut waiting = Vec::new();
    let mut dropped = 0;
    let mut failed = None;
    for (name, why) in orphaned {
        let first = since.remove(&name).unwrap_or(now);
        if failed.is_none() && dropped < MAX_DROPS_PER_PASS && now - first >= grace {
            let step = Step::database(db, "drop a leftover backfill batch external table");
            match step
                .mgmt(&app.kusto, &command::drop_external_table(&name))
                .await
            {
                Ok(_) => {
                    tracing::warn!(database = %db, table = %name, why, "dropped a leftover backfill batch table");
                    dropped += 1;
                    continue;
                }
                Err(e) => failed = Some(e),
            }
        }
        waiting.push(Orphan {
            name,
            since: first,
            why,
        });
    }
    state.value = JanitorState {
        temporary: batch_tables.len() - dropped,
        orphans: waiting,
        dropped: before.dropped + dropped as u64,
    };
    // Written once even when empty, so status can tell "none" from "never looked".
    if state.etag.is_none() || state.value != before {
        state
            .save(&app.blobs, &path)
            .await
            .map_err(|e| BackfillError::storage(format!("save the janitor's state of {db}"), e))?;
    }
    if let Some(e) = failed {
        return Err(e.into());
    }
    Ok(Sweep {
        temporary: state.value.temporary,
        orphans: state.value.orphans.len(),
        dropped,
    })
}

/// The batch tables no batch will use again, with why, by name.
async fn orphans(
    app: &App,
    db: &DatabaseName,
    batch_tables: &[(TableName, JobId, BatchId)],
) -> Result<BTreeMap<TableName, String>, BackfillError> {
    let mut out = BTreeMap::new();
    if batch_tables.is_empty() {
        return Ok(out);
    }
    let paths = job_paths(app, db).await?;
    let mut jobs: HashMap<JobId, Option<BackfillJob>> = HashMap::new();
    for (name, job, batch) in batch_tables {
        if !jobs.contains_key(job) {
            let state = match paths.get(job) {
                Some(path) => load_job(app, path).await?.map(|d| d.state().clone()),
                None => None,
            };
            jobs.insert(job.clone(), state);
        }
        if let Some(why) = orphan_reason(jobs[job].as_ref(), batch) {
            out.insert(name.clone(), why);
        }
    }
    Ok(out)
}

/// The state document of every backfill job of `db`, by job.
async fn job_paths(app: &App, db: &DatabaseName) -> Result<HashMap<JobId, String>, BackfillError> {
    let dir = app.layout.backfill_jobs_dir(db);
    let items: Vec<_> = app
        .blobs
        .list(&dir)
        .try_collect()
        .await
        .map_err(|e| BackfillError::storage(format!("list the backfill jobs of {db}"), e))?;
    Ok(items
        .into_iter()
        .filter_map(|item| Some((app.layout.backfill_job_of(&item.path, db)?, item.path)))
        .collect())
}

/// Why batch `batch`'s table is an orphan, or None while its batch may still use it
/// (waiting, queued, starting or exporting: each attempt drops and creates it itself).
fn orphan_reason(job: Option<&BackfillJob>, batch: &BatchId) -> Option<String> {
    let Some(job) = job else {
        return Some("its backfill job has no state".to_owned());
    };
    let Some(b) = job.batches.get(batch) else {
        return Some(format!("job {} has no batch {batch}", job.job));
    };
    b.state
        .is_final()
        .then(|| format!("batch {batch} of job {} has ended", job.job))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backfill::{Batch, BatchState};
    use crate::ids::{OperationId, TableRef};

    fn job_with(state: BatchState) -> (BackfillJob, BatchId) {
        let t = TableRef {
            database: DatabaseName::new("Sales").unwrap(),
            table: TableName::new("T").unwrap(),
        };
        let mut job = BackfillJob::placeholder(&t, &JobId::new("bf-1").unwrap());
        let id = BatchId::new("b000001").unwrap();
        let at = OffsetDateTime::UNIX_EPOCH;
        let mut batch = Batch::planned(
            super::super::plan::Range {
                from: at,
                to: at,
                rows: 1,
            },
            None,
        );
        batch.state = state;
        job.batches.insert(id.clone(), batch);
        (job, id)
    }

    #[test]
    fn only_a_batch_that_may_still_run_keeps_its_table() {
        let at = OffsetDateTime::UNIX_EPOCH;
        for running in [
            BatchState::Planned,
            BatchState::Queued,
            BatchState::Launching { attempt: 1, at },
            BatchState::Exporting {
                attempt: 1,
                operation: OperationId::new("op"),
                poll: 0,
            },
        ] {
            let (job, id) = job_with(running.clone());
            assert_eq!(orphan_reason(Some(&job), &id), None, "{running:?}");
        }
        for ended in [
            BatchState::Cataloged { files: 1, rows: 1 },
            BatchState::Split {
                into: vec![],
                message: "m".into(),
            },
            BatchState::Failed {
                message: "m".into(),
            },
        ] {
            let (job, id) = job_with(ended.clone());
            let why = orphan_reason(Some(&job), &id).expect("an ended batch's table is an orphan");
            assert!(why.contains("has ended"), "{ended:?}: {why}");
        }
        let (job, _) = job_with(BatchState::Queued);
        let other = BatchId::new("b000002").unwrap();
        assert!(orphan_reason(Some(&job), &other).is_some(), "unknown batch");
        assert!(orphan_reason(None, &other).is_some(), "unknown job");
    }
}
