//! The driver's look at the target: every open chunk of the job in one command, from the
//! driver's one message per round, instead of a command and a task message per chunk and
//! look. A file is in once an extent carries its `ingest-by:` tag, failed once the
//! failed-ingestions queue reported it (or it stayed unseen past the timeout). Each chunk's
//! document is still the only record of its files, written with its ETag; a look repeated
//! (a redelivered driver message, a lost race) finds the same extents and writes nothing new.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt, stream};
use time::OffsetDateTime;

use super::chunk::{backup_root, connect};
use super::queued::{FailureReport, source_id};
use super::request::RestoreRequestV1;
use super::state::{BlobOutcome, ChunkState, RestoreChunk, RestoreJob};
use super::{RestoreError, kusto_err, storage_err, target_client};
use crate::app::App;
use crate::ids::{JobId, TableName};
use crate::job::{Change, StepDoc, StepOutcome};
use crate::kusto::Step;
use crate::kusto::command::show_tables_extents_tagged;

/// Batches of failure reports one look reads from the shared failed-ingestions queue.
const FAILURE_ROUNDS: usize = 4;

/// Chunk documents and failure reports read at once.
const READS_AT_ONCE: usize = 16;

/// The longest wait between two looks, in poll intervals: 5 minutes at the default 30 s,
/// Kusto's default batching time, the longest a queued blob waits before ingestion.
const MAX_LOOK_POLLS: u32 = 10;

/// The wait before the next look after `idle` looks in a row that found nothing new: the
/// poll interval, doubled after each such look, at most `MAX_LOOK_POLLS` intervals. A blob
/// with `ingest-by:` tags is never held back to be batched with others (the batching policy
/// page), so most files are in by the first look; a slow target is looked at a few times
/// while it batches, not every poll.
pub fn look_delay(poll: Duration, idle: u32) -> Duration {
    (poll * (1 << idle.min(4))).min(poll * MAX_LOOK_POLLS)
}

/// Looks at every open chunk (`first_open..next_to_start`) that is ingesting and saves each
/// one the look moved on. None when no chunk was ingesting (nothing was asked of the
/// target); else whether any chunk moved on.
pub async fn look(
    app: &App,
    job: &RestoreJob,
    request: &RestoreRequestV1,
) -> Result<Option<bool>, RestoreError> {
    let id = &job.job;
    let open = ingesting_chunks(app, job).await?;
    if open.is_empty() {
        return Ok(None);
    }
    let chunks: Vec<&RestoreChunk> = open.iter().map(StepDoc::state).collect();
    let seen = extents(app, id, request, &chunks).await?;
    let mut next: Vec<RestoreChunk> = chunks.iter().map(|c| (*c).clone()).collect();
    for chunk in &mut next {
        mark_ingested(chunk, seen.get(&chunk.chunk));
    }
    if next.iter().any(has_pending) {
        account_for_pending(app, job, request, &mut next).await?;
    }
    let mut moved = false;
    for (doc, mut chunk) in open.into_iter().zip(next) {
        let own = seen.get(&chunk.chunk);
        settle(
            &mut chunk,
            own.map_or(0, |s| s.rows),
            own.is_some_and(|s| s.merged_with_others),
        );
        if chunk == *doc.state() {
            continue;
        }
        // A lost race (another delivery of this driver step saved the same look) is
        // harmless: the next look finds the same extents.
        let outcome = doc
            .advance(&app.blobs, |c| {
                *c = chunk;
                Change::Made
            })
            .await
            .map_err(storage_err(id, "save a chunk's look"))?;
        moved |= outcome == StepOutcome::Advanced;
    }
    Ok(Some(moved))
}

/// The open chunks whose files are on the target's queue, as read (with their ETags).
async fn ingesting_chunks(
    app: &App,
    job: &RestoreJob,
) -> Result<Vec<StepDoc<RestoreChunk>>, RestoreError> {
    let id = &job.job;
    let paths = (job.first_open..job.next_to_start)
        .map(|n| Ok(app.layout.restore_chunk(id, &RestoreChunk::id(n)?)))
        .collect::<Result<Vec<_>, RestoreError>>()?;
    let docs: Vec<Option<StepDoc<RestoreChunk>>> = stream::iter(paths)
        .map(|path| async move { StepDoc::load_existing(&app.blobs, &path).await })
        .buffered(READS_AT_ONCE)
        .try_collect()
        .await
        .map_err(storage_err(id, "read the open chunks"))?;
    Ok(docs
        .into_iter()
        .flatten()
        .filter(|d| d.state().state == ChunkState::Ingesting)
        .collect())
}

/// What the target's extents say about one chunk.
#[derive(Debug, Default, PartialEq)]
struct Seen {
    /// Every `ingest-by:` tag on an extent that carries one of the chunk's.
    tags: BTreeSet<String>,
    rows: i64,
    merged_with_others: bool,
}

/// One command for every chunk: the extents of their tables that carry the job's tags,
/// narrowed to those of these chunks.
async fn extents(
    app: &App,
    job: &JobId,
    request: &RestoreRequestV1,
    chunks: &[&RestoreChunk],
) -> Result<BTreeMap<crate::ids::ChunkId, Seen>, RestoreError> {
    let target = target_client(app, job, &request.target.cluster_uri)?;
    let tables: BTreeSet<&TableName> = chunks.iter().map(|c| &c.target_table).collect();
    let tables: Vec<TableName> = tables.into_iter().cloned().collect();
    let prefixes: Vec<(crate::ids::ChunkId, String)> = chunks
        .iter()
        .map(|c| (c.chunk.clone(), RestoreChunk::tag_prefix(job, &c.chunk)))
        .collect();
    let any: Vec<String> = prefixes.iter().map(|(_, p)| p.clone()).collect();
    let step = Step::database(&request.target.database, "read the open chunks' extents");
    let result = step
        .mgmt(
            &target,
            &show_tables_extents_tagged(&tables, &format!("ingest-by:{job}."), &any),
        )
        .await
        .map_err(kusto_err(job))?;
    let mut extents = Vec::new();
    for row in result.first().into_iter().flat_map(|t| t.rows()) {
        let tags = row.str("Tags").map_err(|e| kusto_err(job)(step.error(e)))?;
        let rows = row
            .i64("RowCount")
            .map_err(|e| kusto_err(job)(step.error(e)))?;
        extents.push((tags.to_owned(), rows));
    }
    Ok(per_chunk(&prefixes, &extents))
}

/// Attributes each extent (its tags, its rows) to every chunk one of its `ingest-by:` tags
/// names. An extent that also carries another chunk's tag was merged with it: its rows are
/// not the chunk's alone.
fn per_chunk(
    prefixes: &[(crate::ids::ChunkId, String)],
    extents: &[(String, i64)],
) -> BTreeMap<crate::ids::ChunkId, Seen> {
    let mut out: BTreeMap<crate::ids::ChunkId, Seen> = BTreeMap::new();
    for (tags, rows) in extents {
        let ingest_by: Vec<&str> = tags
            .split_whitespace()
            .filter(|t| t.starts_with("ingest-by:"))
            .collect();
        for (chunk, prefix) in prefixes {
            if !ingest_by.iter().any(|t| t.starts_with(prefix.as_str())) {
                continue;
            }
            let seen = out.entry(chunk.clone()).or_default();
            seen.merged_with_others |= ingest_by.iter().any(|t| !t.starts_with(prefix.as_str()));
            seen.tags.extend(ingest_by.iter().map(|t| (*t).to_owned()));
            seen.rows += rows;
        }
    }
    out
}

fn has_pending(chunk: &RestoreChunk) -> bool {
    chunk
        .blobs
        .iter()
        .any(|b| b.outcome == BlobOutcome::Pending)
}

/// Marks in every pending file whose tag the target's extents carry.
fn mark_ingested(chunk: &mut RestoreChunk, seen: Option<&Seen>) {
    let Some(seen) = seen else {
        return;
    };
    for i in 0..chunk.blobs.len() {
        if chunk.blobs[i].outcome == BlobOutcome::Pending
            && seen
                .tags
                .contains(&format!("ingest-by:{}", chunk.blob_key(i)))
        {
            chunk.blobs[i].outcome = BlobOutcome::Ingested;
        }
    }
}

/// Files the target's failure reports (once for the whole look) and marks each pending
/// file failed that one names, or that stayed unseen past the timeout.
async fn account_for_pending(
    app: &App,
    owner: &RestoreJob,
    request: &RestoreRequestV1,
    chunks: &mut [RestoreChunk],
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
    let pending: Vec<(usize, usize)> = chunks
        .iter()
        .enumerate()
        .flat_map(|(c, chunk)| {
            chunk
                .blobs
                .iter()
                .enumerate()
                .filter(|(_, b)| b.outcome == BlobOutcome::Pending)
                .map(move |(i, _)| (c, i))
        })
        .collect();
    let chunks_ref = &*chunks;
    let reports: Vec<Option<FailureReport>> = stream::iter(pending.iter().copied())
        .map(|(c, i)| async move {
            let sid = source_id(&[job.as_str(), &chunks_ref[c].blob_key(i)]);
            let read = app.blobs.read_opt(&app.layout.ingest_failure(&sid)).await?;
            Ok::<_, crate::storage::StorageError>(
                read.and_then(|(body, _)| serde_json::from_slice::<FailureReport>(&body).ok()),
            )
        })
        .buffered(READS_AT_ONCE)
        .try_collect()
        .await
        .map_err(storage_err(job, "read a failure report"))?;
    let now = OffsetDateTime::now_utc();
    let timeout = app.settings.restore.ingest_timeout;
    for ((c, i), report) in pending.into_iter().zip(reports) {
        let chunk = &mut chunks[c];
        let timed_out = chunk.sent_at.is_some_and(|at| now - at > timeout);
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
                        timeout.as_secs()
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
    use crate::ids::{ChunkId, Day};
    use crate::restore::state::ChunkBlob;

    fn chunk(n: u64, outcomes: Vec<BlobOutcome>) -> RestoreChunk {
        RestoreChunk {
            job: JobId::new("r-1").unwrap(),
            chunk: RestoreChunk::id(n).unwrap(),
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
        let mut c = chunk(1, vec![BlobOutcome::Ingested, BlobOutcome::Pending]);
        settle(&mut c, 10, false);
        assert_eq!(c.state, ChunkState::Ingesting);
        let mut c = chunk(1, vec![BlobOutcome::Ingested, BlobOutcome::Ingested]);
        settle(&mut c, 20, false);
        assert_eq!(c.state, ChunkState::Verified);
        let mut c = chunk(1, vec![BlobOutcome::Ingested, BlobOutcome::Ingested]);
        settle(&mut c, 40, true);
        assert_eq!(c.state, ChunkState::Ingested);
        let mut c = chunk(1, vec![BlobOutcome::Ingested, BlobOutcome::Ingested]);
        settle(&mut c, 19, false);
        assert_eq!(c.state, ChunkState::Ingested);
        assert!(c.error.unwrap().contains("19 rows"));
        let mut c = chunk(
            1,
            vec![
                BlobOutcome::Ingested,
                BlobOutcome::Failed { reason: "x".into() },
            ],
        );
        settle(&mut c, 10, false);
        assert_eq!(c.state, ChunkState::Failed);
        let mut c = chunk(1, vec![BlobOutcome::Ingested, BlobOutcome::Ingested]);
        c.blobs[1].rows = None;
        settle(&mut c, 20, false);
        assert_eq!(c.state, ChunkState::Ingested, "rows unknown: not verified");
        assert_eq!(c.error, None);
    }

    #[test]
    fn looks_back_off_to_the_batching_time() {
        let poll = Duration::from_secs(30);
        let delays: Vec<u64> = (0..6).map(|n| look_delay(poll, n).as_secs()).collect();
        assert_eq!(delays, [30, 60, 120, 240, 300, 300]);
        assert_eq!(look_delay(poll, u32::MAX).as_secs(), 300);
    }

    #[test]
    fn tags_of_chunk_1_are_not_tags_of_chunk_10() {
        let job = JobId::new("r-1").unwrap();
        let one = RestoreChunk::tag_prefix(&job, &RestoreChunk::id(1).unwrap());
        let ten = RestoreChunk::tag_prefix(&job, &RestoreChunk::id(10).unwrap());
        assert!(!ten.starts_with(&one) && !one.starts_with(&ten));
        assert_eq!(one, "ingest-by:r-1.c-000001.");
    }

    /// One answer for three chunks: each chunk gets the extents that carry its tags, its
    /// own rows, and whether one of them was merged with another chunk's.
    #[test]
    fn one_answer_is_split_per_chunk() {
        let job = JobId::new("r-1").unwrap();
        let ids: Vec<ChunkId> = (1..=3).map(|n| RestoreChunk::id(n).unwrap()).collect();
        let prefixes: Vec<(ChunkId, String)> = ids
            .iter()
            .map(|c| (c.clone(), RestoreChunk::tag_prefix(&job, c)))
            .collect();
        let extents = vec![
            (
                "ingest-by:r-1.c-000001.0\r\ningest-by:r-1.c-000001.1\r\ndrop-by:r-1".to_owned(),
                20,
            ),
            ("ingest-by:r-1.c-000002.0\r\ndrop-by:r-1".to_owned(), 10),
            (
                "ingest-by:r-1.c-000002.1\r\ningest-by:r-1.c-000003.0\r\ndrop-by:r-1".to_owned(),
                7,
            ),
        ];
        let seen = per_chunk(&prefixes, &extents);
        let one = &seen[&ids[0]];
        assert_eq!((one.rows, one.merged_with_others), (20, false));
        assert_eq!(
            one.tags.iter().cloned().collect::<Vec<_>>(),
            ["ingest-by:r-1.c-000001.0", "ingest-by:r-1.c-000001.1"]
        );
        let two = &seen[&ids[1]];
        assert_eq!((two.rows, two.merged_with_others), (17, true));
        assert!(two.tags.contains("ingest-by:r-1.c-000002.1"));
        let three = &seen[&ids[2]];
        assert_eq!((three.rows, three.merged_with_others), (7, true));
        assert!(per_chunk(&prefixes[..1], &extents[1..]).is_empty());

        let mut c = chunk(2, vec![BlobOutcome::Pending, BlobOutcome::Pending]);
        mark_ingested(&mut c, seen.get(&ids[1]));
        assert_eq!(c.blobs[0].outcome, BlobOutcome::Ingested);
        assert_eq!(c.blobs[1].outcome, BlobOutcome::Ingested);
        let mut c = chunk(1, vec![BlobOutcome::Pending; 3]);
        mark_ingested(&mut c, seen.get(&ids[0]));
        assert!(has_pending(&c), "file 2 of chunk 1 carries no tag yet");
        assert_eq!(c.blobs[2].outcome, BlobOutcome::Pending);
    }
}
