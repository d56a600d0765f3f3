//! Planning: the catalog, read one segment at a time, cut into chunks of at most N files or
//! B bytes, one table per chunk. A step plans one page (a bounded number of files) and
//! records where it stopped, so a catalog of any size is planned in bounded steps with
//! bounded memory, and a step that is repeated cuts the same chunks again.

use time::OffsetDateTime;

use super::request::RestoreRequestV1;
use super::state::{BlobOutcome, ChunkBlob, ChunkState, PlanPosition, RestoreChunk, RestoreJob};
use crate::ids::{DatabaseName, IdError};
use crate::settings::RestoreSettings;
use crate::storage::StorageError;
use crate::storage::catalog::{Artifact, Catalog};

/// Chunks' worth of files one planning step reads at most.
pub const PAGE_CHUNKS: usize = 10;

/// What one planning step produced.
#[derive(Debug, Default)]
pub struct Page {
    pub chunks: Vec<RestoreChunk>,
    pub position: PlanPosition,
}

/// Why a page could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Id(#[from] IdError),
}

/// Whether the request wants this file.
pub fn wanted(request: &RestoreRequestV1, artifact: &Artifact) -> bool {
    artifact.rows > 0
        && request.window.is_none_or(|w| w.contains(artifact.day))
        && request
            .as_of
            .is_none_or(|t: OffsetDateTime| artifact.produced_at <= t)
}

/// Plans the next page of `job` from `catalog` (the backup's catalog of `database`), adding
/// what it planned to the job's expected counts and totals.
pub async fn plan_page(
    catalog: &Catalog<'_>,
    database: &DatabaseName,
    job: &mut RestoreJob,
    request: &RestoreRequestV1,
    settings: &RestoreSettings,
) -> Result<Page, PlanError> {
    let budget = settings.chunk_max_blobs * PAGE_CHUNKS;
    let mut pos = job.plan.clone();
    let mut chunks: Vec<RestoreChunk> = Vec::new();
    let mut open: Option<RestoreChunk> = None;
    let mut read = 0usize;
    while read < budget {
        let Some(table) = job.tables.get(pos.table).cloned() else {
            pos.done = true;
            break;
        };
        let Some(artifacts) = catalog
            .read_segment(database, &table.source, pos.segment)
            .await?
        else {
            chunks.extend(open.take());
            pos.table += 1;
            pos.segment = 0;
            continue;
        };
        pos.segment += 1;
        for a in artifacts.into_iter().filter(|a| wanted(request, a)) {
            read += 1;
            let full = open.as_ref().is_some_and(|c| {
                c.blobs.len() >= settings.chunk_max_blobs
                    || bytes(c) + a.bytes.unwrap_or(0) > settings.chunk_max_bytes
                        && !c.blobs.is_empty()
            });
            if full {
                chunks.extend(open.take());
            }
            let chunk = match open.as_mut() {
                Some(c) => c,
                None => {
                    let n = job.totals.chunks + chunks.len() as u64;
                    open.insert(RestoreChunk {
                        job: job.job.clone(),
                        chunk: RestoreChunk::id(n)?,
                        target_table: table.target.clone(),
                        state: ChunkState::Planned,
                        blobs: Vec::new(),
                        sent_at: None,
                        poll: 0,
                        error: None,
                    })
                }
            };
            if let Some(t) = job.tables.get_mut(pos.table) {
                *t.expected.entry(a.day).or_default() += a.rows;
            }
            job.totals.artifacts += 1;
            job.totals.rows += a.rows;
            job.totals.bytes += a.bytes.unwrap_or(0);
            chunk.blobs.push(ChunkBlob {
                path: a.path,
                day: a.day,
                rows: a.rows,
                bytes: a.bytes,
                outcome: BlobOutcome::Pending,
            });
        }
    }
    chunks.extend(open.take());
    if job.tables.get(pos.table).is_none() {
        pos.done = true;
    }
    job.totals.chunks += chunks.len() as u64;
    Ok(Page {
        chunks,
        position: pos,
    })
}

fn bytes(c: &RestoreChunk) -> u64 {
    c.blobs.iter().map(|b| b.bytes.unwrap_or(0)).sum()
}
