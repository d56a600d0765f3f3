//! One chunk: Planned → (one queued-ingestion message per file) → Ingesting; from there the
//! driver's looks (`look`) take it to Ingested / Verified / Failed.

use time::OffsetDateTime;

use super::queued::{BlobMessage, Ingestion, source_id};
use super::request::RestoreRequestV1;
use super::state::{ChunkState, RestoreChunk, RestoreJob};
use super::{Backup, RestoreError, backup, load_job, storage_err, target_client};
use crate::app::App;
use crate::ids::{ChunkId, Day, JobId};
use crate::job::{Change, StepDoc};
use crate::retry::RetryPolicy;

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
    if current.poll != poll || current.state != ChunkState::Planned || current.blobs.is_empty() {
        // Looks at a chunk that is ingesting are the driver's (one command for every open
        // chunk per round); a look message queued before that change has nothing to do.
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
    send(app, &owner, &request, &mut next).await?;
    next.poll += 1;
    let summary = format!("restore {job} chunk {chunk}: {:?}", next.state);
    doc.advance(&app.blobs, |c| {
        *c = next;
        Change::Made
    })
    .await
    .map_err(storage_err(job, "save the chunk"))?;
    Ok(summary)
}

/// The blob URL as the target cluster reads it, with the cluster's storage auth.
fn cluster_url(app: &App, container: &str, path: &str) -> String {
    let p = &app.settings.protect;
    let url = app.layout.blob_url(&p.cluster_storage_uri, container, path);
    format!("{url};{}", p.cluster_storage_auth)
}

/// The start of every blob URL of this backup as the cluster sees it.
pub(super) fn backup_root(app: &App, container: &str) -> String {
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
pub(super) async fn connect(
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
