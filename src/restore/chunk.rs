//! One chunk: Planned → (one queued-ingestion message per file) → Ingesting → (its tags on
//! the target's extents, or failure reports) → Ingested / Verified / Failed.

use std::collections::BTreeSet;

use time::OffsetDateTime;

use super::queued::{BlobMessage, FailureReport, Ingestion, source_id};
use super::request::RestoreRequestV1;
use super::state::{BlobOutcome, ChunkState, RestoreChunk, RestoreJob};
use super::{Backup, RestoreError, backup, kusto_err, load_job, storage_err, target_client};
use crate::app::App;
use crate::ids::{ChunkId, Day, JobId};
use crate::job::{Change, StepDoc, StepOutcome, follow_up};
use crate::kusto::Step;
use crate::kusto::command::show_table_extents_tag_contains;
use crate::retry::RetryPolicy;
use crate::task::Task;

/// Batches of failure reports one poll reads from the shared failed-ingestions queue.
const FAILURE_ROUNDS: usize = 4;

/// One step of chunk `chunk` of job `job`, for the chunk message of poll `poll`.
pub async fn step_chunk(
    app: &App,
    job: &JobId,
    chunk: &ChunkId,
    poll: u64,
) -> Result<String, RestoreError> {
    let path = app.layout.restore_chunk(job, chunk);
    let placeholder = super::unknown_chunk(job, chunk)?;
    let doc = StepDoc::load(&app.blobs, &path, || placeholder)
        .await
        .map_err(storage_err(job, "read the chunk"))?;
    let current = doc.state().clone();
    if current.poll != poll || current.state.is_final() || current.blobs.is_empty() {
        return Ok(format!(
            "restore {job} chunk {chunk}: poll {poll} already taken ({:?})",
            current.state
        ));
    }
    let owner = load_job(app, job).await?;
    let Some(request) = owner.request.clone() else {
        return Ok(format!("restore {job}: no request"));
    };
    let mut next = current;
    match next.state {
        ChunkState::Planned => send(app, &owner, &request, &mut next).await?,
        _ => observe(app, &owner, &request, &mut next).await?,
    }
    next.poll += 1;
    let summary = format!("restore {job} chunk {chunk}: {:?}", next.state);
    let (state, new_poll) = (next.state, next.poll);
    let outcome = doc
        .advance(&app.blobs, |c| {
            *c = next;
            Change::Made
        })
        .await
        .map_err(storage_err(job, "save the chunk"))?;
    if outcome == StepOutcome::Advanced && !state.is_final() {
        let task = Task::RestoreChunkV1 {
            job: job.clone(),
            chunk: chunk.clone(),
            poll: new_poll,
        };
        follow_up(
            &app.tasks,
            &task,
            look_delay(app.settings.restore.poll, new_poll),
        )
        .await
        .map_err(storage_err(job, "send the chunk's next look"))?;
    }
    Ok(summary)
}

/// The longest wait between two looks at a chunk, in poll intervals: 5 minutes at the default
/// 30 s, Kusto's default batching time, the longest a queued blob waits before ingestion.
const MAX_LOOK_POLLS: u32 = 10;

/// The delay before look `n` at a chunk (look 1 follows the send): the poll interval,
/// doubled after every look that still found files pending, at most `MAX_LOOK_POLLS` poll
/// intervals. Each look costs one command on the target and one task message, so a chunk
/// whose files take minutes should be looked at a few times, not every 30 s. A blob with
/// `ingest-by:` tags is never held back to be batched with others (the batching policy
/// page), so most chunks are in by the first look.
fn look_delay(poll: std::time::Duration, n: u64) -> std::time::Duration {
    let doublings = n.clamp(1, 5) as u32 - 1;
    (poll * (1 << doublings)).min(poll * MAX_LOOK_POLLS)
}

/// The blob URL as the target cluster reads it, with the cluster's storage auth.
fn cluster_url(app: &App, container: &str, path: &str) -> String {
    let p = &app.settings.protect;
    let url = app.layout.blob_url(&p.cluster_storage_uri, container, path);
    format!("{url};{}", p.cluster_storage_auth)
}

/// The start of every blob URL of this backup as the cluster sees it.
fn backup_root(app: &App, container: &str) -> String {
    let p = &app.settings.protect;
    let mut url = app.layout.blob_url(&p.cluster_storage_uri, container, "");
    url.set_query(None);
    url.to_string()
}

/// Midnight of the file's day: retention and caching then age the rows as in the source.
/// Undated files get no creation time (the ingestion time).
fn creation_time(day: Day) -> Option<OffsetDateTime> {
    (day != Day::UNDATED).then(|| day.date().midnight().assume_utc())
}

/// The job's backup and the target's queued-ingestion resources, as one chunk step needs them.
async fn connect(
    app: &App,
    job: &JobId,
    request: &RestoreRequestV1,
) -> Result<(Backup, Ingestion), RestoreError> {
    let src = backup(app, job, request)?;
    let endpoint = request.target.ingest_uri();
    let ingest = target_client(app, job, &endpoint)?;
    let db = &request.target.database;
    let ingestion = Ingestion::cached(&ingest, &endpoint, db, RetryPolicy::default())
        .await
        .map_err(|e| RestoreError::Queued {
            job: job.clone(),
            source: Box::new(e),
        })?;
    Ok((src, ingestion))
}

async fn send(
    app: &App,
    owner: &RestoreJob,
    request: &RestoreRequestV1,
    chunk: &mut RestoreChunk,
) -> Result<(), RestoreError> {
    let job = &owner.job;
    let (src, ingestion) = connect(app, job, request).await?;
    for (i, blob) in chunk.blobs.iter().enumerate() {
        let key = chunk.blob_key(i);
        let url = cluster_url(app, &src.container, &blob.path);
        let message = BlobMessage {
            id: source_id(&[job.as_str(), &key]),
            url: &url,
            raw_size: blob.bytes,
            database: &request.target.database,
            table: &chunk.target_table,
            creation_time: creation_time(blob.day),
            tags: vec![format!("ingest-by:{key}"), owner.drop_by()],
            ingest_if_not_exists: vec![key],
        };
        if let Err(e) = ingestion.send(&message).await {
            Ingestion::forget(&request.target.ingest_uri(), &request.target.database);
            return Err(storage_err(job, "post an ingestion message")(e));
        }
    }
    chunk.state = ChunkState::Ingesting;
    chunk.sent_at = Some(OffsetDateTime::now_utc());
    Ok(())
}

/// Looks at the target: a file is in once an extent carries its `ingest-by:` tag, failed
/// once the failed-ingestions queue reported it (or it stayed unseen past the timeout). The
/// queue is read only while some file is still unaccounted for.
async fn observe(
    app: &App,
    owner: &RestoreJob,
    request: &RestoreRequestV1,
    chunk: &mut RestoreChunk,
) -> Result<(), RestoreError> {
    let job = &owner.job;
    let seen = chunk_extents(app, job, request, chunk).await?;
    for i in 0..chunk.blobs.len() {
        if chunk.blobs[i].outcome == BlobOutcome::Pending
            && seen
                .tags
                .contains(&format!("ingest-by:{}", chunk.blob_key(i)))
        {
            chunk.blobs[i].outcome = BlobOutcome::Ingested;
        }
    }
    if chunk
        .blobs
        .iter()
        .any(|b| b.outcome == BlobOutcome::Pending)
    {
        account_for_pending(app, owner, request, chunk).await?;
    }
    settle(chunk, seen.rows, seen.merged_with_others);
    Ok(())
}

/// What the target's extents say about a chunk.
struct Seen {
    /// Every `ingest-by:` tag on an extent that carries one of the chunk's.
    tags: BTreeSet<String>,
    rows: i64,
    merged_with_others: bool,
}

async fn chunk_extents(
    app: &App,
    job: &JobId,
    request: &RestoreRequestV1,
    chunk: &RestoreChunk,
) -> Result<Seen, RestoreError> {
    let target = target_client(app, job, &request.target.cluster_uri)?;
    let prefix = RestoreChunk::tag_prefix(job, &chunk.chunk);
    let step = Step::database(&request.target.database, "read the chunk's extents");
    let tables = step
        .mgmt(
            &target,
            &show_table_extents_tag_contains(&chunk.target_table, &prefix),
        )
        .await
        .map_err(kusto_err(job))?;
    let mut seen = Seen {
        tags: BTreeSet::new(),
        rows: 0,
        merged_with_others: false,
    };
    for row in tables.first().into_iter().flat_map(|t| t.rows()) {
        let tags = row.str("Tags").map_err(|e| kusto_err(job)(step.error(e)))?;
        let ingest_by: Vec<&str> = tags
            .split_whitespace()
            .filter(|t| t.starts_with("ingest-by:"))
            .collect();
        seen.merged_with_others |= ingest_by.iter().any(|t| !t.starts_with(&prefix));
        seen.tags.extend(ingest_by.into_iter().map(str::to_owned));
        seen.rows += row
            .i64("RowCount")
            .map_err(|e| kusto_err(job)(step.error(e)))?;
    }
    Ok(seen)
}

/// Files the target's failure reports and marks each pending file failed that one names (or
/// that stayed unseen past the timeout).
async fn account_for_pending(
    app: &App,
    owner: &RestoreJob,
    request: &RestoreRequestV1,
    chunk: &mut RestoreChunk,
) -> Result<(), RestoreError> {
    let job = &owner.job;
    let (src, ingestion) = connect(app, job, request).await?;
    ingestion
        .file_failures(
            &app.blobs,
            &app.layout,
            &backup_root(app, &src.container),
            FAILURE_ROUNDS,
        )
        .await
        .map_err(storage_err(job, "read the failed-ingestions queue"))?;
    let timed_out = chunk
        .sent_at
        .is_some_and(|at| OffsetDateTime::now_utc() - at > app.settings.restore.ingest_timeout);
    for i in 0..chunk.blobs.len() {
        if chunk.blobs[i].outcome != BlobOutcome::Pending {
            continue;
        }
        let id = source_id(&[job.as_str(), &chunk.blob_key(i)]);
        let report = app
            .blobs
            .read_opt(&app.layout.ingest_failure(&id))
            .await
            .map_err(storage_err(job, "read a failure report"))?
            .and_then(|(body, _)| serde_json::from_slice::<FailureReport>(&body).ok());
        match report {
            Some(r) if !r.is_already_ingested() => {
                chunk.blobs[i].outcome = BlobOutcome::Failed {
                    reason: format!("{}: {}", r.error_code, r.details),
                };
            }
            _ if timed_out => {
                chunk.blobs[i].outcome = BlobOutcome::Failed {
                    reason: format!(
                        "neither ingested nor reported failed {} s after it was sent",
                        app.settings.restore.ingest_timeout.as_secs()
                    ),
                };
            }
            _ => {}
        }
    }
    Ok(())
}

/// Decides the chunk's state once no file is pending.
fn settle(chunk: &mut RestoreChunk, own_rows: i64, merged_with_others: bool) {
    let outcomes = || chunk.blobs.iter().map(|b| &b.outcome);
    if outcomes().any(|o| *o == BlobOutcome::Pending) {
        return;
    }
    if outcomes().any(|o| matches!(o, BlobOutcome::Failed { .. })) {
        chunk.state = ChunkState::Failed;
        return;
    }
    // Files planned from a listing have no known row count: such a chunk is in, unverified.
    let expected: Option<u64> = chunk.blobs.iter().map(|b| b.rows).sum();
    chunk.state = match expected {
        _ if merged_with_others => ChunkState::Ingested,
        None => ChunkState::Ingested,
        Some(expected) if own_rows.max(0) as u64 == expected => ChunkState::Verified,
        Some(expected) => {
            chunk.error = Some(format!(
                "the chunk's extents hold {own_rows} rows; its files hold {expected}"
            ));
            ChunkState::Ingested
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TableName;
    use crate::restore::state::ChunkBlob;

    fn chunk(outcomes: Vec<BlobOutcome>) -> RestoreChunk {
        RestoreChunk {
            job: JobId::new("r-1").unwrap(),
            chunk: RestoreChunk::id(1).unwrap(),
            target_table: TableName::new("T").unwrap(),
            state: ChunkState::Ingesting,
            blobs: outcomes
                .into_iter()
                .map(|outcome| ChunkBlob {
                    path: "p".into(),
                    day: Day::UNDATED,
                    rows: Some(10),
                    bytes: None,
                    outcome,
                })
                .collect(),
            sent_at: None,
            poll: 1,
            error: None,
        }
    }

    #[test]
    fn a_chunk_settles_only_when_no_file_is_pending() {
        let mut c = chunk(vec![BlobOutcome::Ingested, BlobOutcome::Pending]);
        settle(&mut c, 10, false);
        assert_eq!(c.state, ChunkState::Ingesting);
        let mut c = chunk(vec![BlobOutcome::Ingested, BlobOutcome::Ingested]);
        settle(&mut c, 20, false);
        assert_eq!(c.state, ChunkState::Verified);
        let mut c = chunk(vec![BlobOutcome::Ingested, BlobOutcome::Ingested]);
        settle(&mut c, 40, true);
        assert_eq!(c.state, ChunkState::Ingested);
        let mut c = chunk(vec![BlobOutcome::Ingested, BlobOutcome::Ingested]);
        settle(&mut c, 19, false);
        assert_eq!(c.state, ChunkState::Ingested);
        assert!(c.error.unwrap().contains("19 rows"));
        let mut c = chunk(vec![
            BlobOutcome::Ingested,
            BlobOutcome::Failed { reason: "x".into() },
        ]);
        settle(&mut c, 10, false);
        assert_eq!(c.state, ChunkState::Failed);
        let mut c = chunk(vec![BlobOutcome::Ingested, BlobOutcome::Ingested]);
        c.blobs[1].rows = None;
        settle(&mut c, 20, false);
        assert_eq!(c.state, ChunkState::Ingested, "rows unknown: not verified");
        assert_eq!(c.error, None);
    }

    #[test]
    fn looks_back_off_to_the_batching_time() {
        let poll = std::time::Duration::from_secs(30);
        let delays: Vec<u64> = (1..=6).map(|n| look_delay(poll, n).as_secs()).collect();
        assert_eq!(delays, [30, 60, 120, 240, 300, 300]);
    }

    #[test]
    fn tags_of_chunk_1_are_not_tags_of_chunk_10() {
        let job = JobId::new("r-1").unwrap();
        let one = RestoreChunk::tag_prefix(&job, &RestoreChunk::id(1).unwrap());
        let ten = RestoreChunk::tag_prefix(&job, &RestoreChunk::id(10).unwrap());
        assert!(!ten.starts_with(&one) && !one.starts_with(&ten));
        assert_eq!(one, "ingest-by:r-1.c-000001.");
    }
}
