//! The restore capability: a request on the restore queue brings a backed-up database back
//! into a cluster, each file exactly once, and proves it by counting.
//!
//! - [`accept`] (the `restore` function) reads the request, creates the job document, and
//!   starts the job's driver; a request that cannot be run is recorded as `Rejected`.
//! - [`drive`] (task `RestoreJobV1`) is one step of the job: apply the schema, plan one page
//!   of the catalog into chunks, keep a bounded number of chunks in flight, and finally count
//!   what arrived. Each step bumps the job's tick and sends the next step with a delay, so no
//!   invocation runs long, and a duplicated message (its tick is old) does nothing.
//! - [`step_chunk`] (task `RestoreChunkV1`) sends one queued-ingestion message per file of a
//!   chunk, then polls the target's extents and failure reports until every file is in or has
//!   failed for good.
//! - [`undo`] drops every extent the job tagged `drop-by:<job>`.
//!
//! Exactly once (docs/design.md, Restore): every file gets its own `ingest-by:` tag and is
//! sent with `ingestIfNotExists` on that tag, so a file sent twice lands once; every extent
//! also carries `drop-by:<job>`, which Kusto never merges across, so undo is exact.

pub mod page;
pub mod plan;
pub mod queued;
pub mod request;
pub mod schema;
pub mod state;

mod chunk;
mod driver;
mod look;
mod views;

use serde_json::Value;
use url::Url;

use crate::app::App;
use crate::ids::{ChunkId, DatabaseName, JobId, TableName};
use crate::job::{Change, RecordedFailure, StepDoc, StepOutcome};
use crate::kusto::command::drop_extents_tagged;
use crate::kusto::{KustoClient, KustoError, Step, StepError};
use crate::retry::{RetryPolicy, Retryable};
use crate::storage::layout::Layout;
use crate::storage::{BlobStore, StorageError};
use crate::task::Task;

pub use chunk::step_chunk;
pub use driver::drive;
use queued::QueuedError;
use request::RestoreRequestV1;
use state::{JobStatus, RestoreJob};

/// What can go wrong in a restore step, with the job it happened in.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("restore job {job}: could not {what}: {source}")]
    Storage {
        job: JobId,
        what: String,
        #[source]
        source: Box<StorageError>,
    },
    #[error("restore job {job}: {source}")]
    Kusto {
        job: JobId,
        #[source]
        source: Box<StepError>,
    },
    #[error("restore job {job}: cannot build a client for {uri}: {source}")]
    Client {
        job: JobId,
        uri: String,
        #[source]
        source: Box<KustoError>,
    },
    #[error("restore job {job}: {source}")]
    Queued {
        job: JobId,
        #[source]
        source: Box<QueuedError>,
    },
    #[error("restore: {0}")]
    Id(#[from] crate::ids::IdError),
    #[error("restore: {0}")]
    Name(#[from] crate::ids::NameError),
    #[error("restore job {job} does not exist (no {path})")]
    NoSuchJob { job: JobId, path: String },
    #[error("restore job {job}: {reason}")]
    Refused { job: JobId, reason: String },
    #[error("restore job {job} is {status:?}; {what}")]
    WrongStatus {
        job: JobId,
        status: JobStatus,
        what: &'static str,
    },
}

impl Retryable for RestoreError {
    /// Worth another delivery: throttling, 5xx, network, a lost ETag race.
    fn is_transient(&self) -> bool {
        match self {
            Self::Storage { source, .. } => source.is_transient() || source.is_conflict(),
            Self::Kusto { source, .. } => source.source.is_transient(),
            Self::Queued { source, .. } => match source.as_ref() {
                QueuedError::Kusto(e) => e.source.is_transient(),
                QueuedError::Storage(e) => e.is_transient(),
                QueuedError::Missing(_) | QueuedError::BadUrl(_) => false,
            },
            Self::Client { .. }
            | Self::Id(_)
            | Self::Name(_)
            | Self::NoSuchJob { .. }
            | Self::Refused { .. }
            | Self::WrongStatus { .. } => false,
        }
    }
}

fn storage_err(job: &JobId, what: impl Into<String>) -> impl FnOnce(StorageError) -> RestoreError {
    let job = job.clone();
    let what = what.into();
    move |source| RestoreError::Storage {
        job,
        what,
        source: Box::new(source),
    }
}

/// Sends the driver message of step `tick` of `job`, visible after `delay` (or at once): how
/// every step, the views' included, moves its job on.
async fn send_step(
    app: &App,
    job: &JobId,
    tick: u64,
    delay: Option<std::time::Duration>,
) -> Result<(), RestoreError> {
    let task = Task::RestoreJobV1 {
        job: job.clone(),
        tick,
    };
    match delay {
        Some(d) => crate::job::follow_up(&app.tasks, &task, d).await,
        None => app.tasks.send(&task.to_json(), None).await,
    }
    .map(drop)
    .map_err(storage_err(job, "send the job's next step"))
}

fn kusto_err(job: &JobId) -> impl FnOnce(StepError) -> RestoreError {
    let job = job.clone();
    move |source| RestoreError::Kusto {
        job,
        source: Box::new(source),
    }
}

/// What [`accept`] did with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub job: JobId,
    /// Why the request was refused (recorded in the job), or None when it runs.
    pub rejected: Option<String>,
}

/// Reads a delivered request, creates its job, and sends the job's first step. A request
/// delivered twice finds its job and only makes sure the first step was sent. `message_id`
/// (the queue message's id) names the job when the request does not.
pub async fn accept(
    app: &App,
    message: &Value,
    message_id: Option<&str>,
) -> Result<Accepted, RestoreError> {
    let parsed = RestoreRequestV1::from_message(message);
    let job = match &parsed {
        Ok(r) => r.job_id.clone(),
        // A refused request is still filed under the id it asked for, if that id is usable,
        // so whoever posted it finds the reason where they look.
        Err(_) => request::job_id_in(message),
    }
    .map_or_else(|| job_id_for(message, message_id), Ok)?;
    let path = app.layout.restore_job(&job);
    let doc = StepDoc::load(&app.blobs, &path, || {
        RestoreJob::new(job.clone(), parsed.as_ref().ok().cloned())
    })
    .await
    .map_err(storage_err(&job, "read the job"))?;
    let existing = doc.state().clone();
    let rejected = parsed.as_ref().err().map(ToString::to_string);
    let outcome = doc
        .advance(&app.blobs, |s| {
            if s.tick > 0 || s.status != JobStatus::Accepted || s.error.is_some() {
                return Change::AlreadyDone;
            }
            if let Some(reason) = &rejected {
                reject(s, "read the request", reason);
            }
            Change::Made
        })
        .await
        .map_err(storage_err(&job, "create the job"))?;
    let job_now = match outcome {
        StepOutcome::Advanced => {
            let mut s = existing;
            if let Some(reason) = &rejected {
                reject(&mut s, "read the request", reason);
            }
            s
        }
        StepOutcome::AlreadyDone | StepOutcome::LostRace => load_job(app, &job).await?,
    };
    match job_now.status {
        JobStatus::Rejected => {
            let reason = job_now.error.map(|e| e.message).unwrap_or_default();
            tracing::error!(job = %job, error = %reason, "restore request rejected; recorded in the job");
            Ok(Accepted {
                job,
                rejected: Some(reason),
            })
        }
        _ => {
            if job_now.tick == 0 && job_now.status == JobStatus::Accepted {
                let first = Task::RestoreJobV1 {
                    job: job.clone(),
                    tick: 0,
                };
                app.tasks
                    .send(&first.to_json(), None)
                    .await
                    .map_err(storage_err(&job, "send the job's first step"))?;
            }
            tracing::info!(job = %job, "restore request accepted");
            Ok(Accepted {
                job,
                rejected: None,
            })
        }
    }
}

/// `r-<message id>` (or a hash of the message, when there is no id): a redelivered message
/// names the same job.
fn job_id_for(message: &Value, message_id: Option<&str>) -> Result<JobId, crate::ids::IdError> {
    let from_id = message_id
        .map(|id| {
            id.chars()
                .filter(char::is_ascii_alphanumeric)
                .take(40)
                .collect::<String>()
        })
        .filter(|id| !id.is_empty());
    let token = from_id.unwrap_or_else(|| {
        queued::source_id(&[&message.to_string()])
            .simple()
            .to_string()
    });
    JobId::new(format!("r-{token}"))
}

fn reject(job: &mut RestoreJob, step: &str, reason: &str) {
    let now = time::OffsetDateTime::now_utc();
    job.status = JobStatus::Rejected;
    job.finished_at = Some(now);
    job.error = Some(RecordedFailure {
        at: now,
        step: step.to_owned(),
        message: reason.to_owned(),
    });
}

/// The job document, for `restore --wait` and tests.
pub async fn load_job(app: &App, job: &JobId) -> Result<RestoreJob, RestoreError> {
    let path = app.layout.restore_job(job);
    let (body, _) = app
        .blobs
        .read_opt(&path)
        .await
        .map_err(storage_err(job, "read the job"))?
        .ok_or_else(|| RestoreError::NoSuchJob {
            job: job.clone(),
            path: path.clone(),
        })?;
    crate::storage::state::decode(&path, &body).map_err(storage_err(job, "read the job"))
}

/// Records a step's permanent failure: in the chunk (the driver then counts its files as
/// failed) or in the job, which then ends Failed.
pub async fn record_failure(
    app: &App,
    job: &JobId,
    chunk: Option<&ChunkId>,
    err: &RestoreError,
) -> Result<(), RestoreError> {
    let message = err.to_string();
    match chunk {
        Some(chunk) => {
            let path = app.layout.restore_chunk(job, chunk);
            if !app
                .blobs
                .exists(&path)
                .await
                .map_err(storage_err(job, "read the chunk"))?
            {
                return Ok(());
            }
            let placeholder = unknown_chunk(job, chunk)?;
            let doc = StepDoc::<state::RestoreChunk>::load(&app.blobs, &path, || placeholder)
                .await
                .map_err(storage_err(job, "read the chunk"))?;
            doc.advance(&app.blobs, |c| {
                if c.state.is_final() {
                    return Change::AlreadyDone;
                }
                c.state = state::ChunkState::Failed;
                for b in &mut c.blobs {
                    if b.outcome == state::BlobOutcome::Pending {
                        b.outcome = state::BlobOutcome::Failed {
                            reason: message.clone(),
                        };
                    }
                }
                c.error = Some(message.clone());
                Change::Made
            })
            .await
            .map_err(storage_err(job, "record the chunk's failure"))?;
        }
        None => {
            let path = app.layout.restore_job(job);
            crate::job::record_failure(
                &app.blobs,
                &path,
                || RestoreJob::new(job.clone(), None),
                |j| {
                    j.status = JobStatus::Failed;
                    j.finished_at = Some(time::OffsetDateTime::now_utc());
                    &mut j.error
                },
                "restore step",
                &message,
            )
            .await
            .map_err(storage_err(job, "record the job's failure"))?;
        }
    }
    Ok(())
}

/// Stands in for a chunk document that does not exist; it has no files, so no step acts on it.
fn unknown_chunk(job: &JobId, chunk: &ChunkId) -> Result<state::RestoreChunk, RestoreError> {
    Ok(state::RestoreChunk {
        job: job.clone(),
        chunk: chunk.clone(),
        target_table: TableName::new("unknown")?,
        state: state::ChunkState::Planned,
        blobs: Vec::new(),
        sent_at: None,
        poll: 0,
        error: None,
    })
}

/// What `restore --undo` removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undone {
    pub job: JobId,
    pub tables: Vec<TableName>,
}

/// Drops every extent of the target that carries the job's `drop-by:` tag, table by table.
/// Extents with different `drop-by:` tags are never merged, so this removes exactly the
/// job's rows and nothing else. Safe to run twice.
pub async fn undo(app: &App, job: &JobId) -> Result<Undone, RestoreError> {
    let doc = load_job(app, job).await?;
    let Some(request) = &doc.request else {
        return Err(RestoreError::WrongStatus {
            job: job.clone(),
            status: doc.status,
            what: "it never ran, so there is nothing to undo",
        });
    };
    if !doc.status.is_final() {
        return Err(RestoreError::WrongStatus {
            job: job.clone(),
            status: doc.status,
            what: "wait until it ends, then undo it",
        });
    }
    let target = target_client(app, job, &request.target.cluster_uri)?;
    let db = &request.target.database;
    let mut tables = Vec::new();
    for t in &doc.tables {
        let step = Step::database(db, "drop the job's extents");
        step.mgmt(&target, &drop_extents_tagged(&t.target, &doc.drop_by()))
            .await
            .map_err(kusto_err(job))?;
        tables.push(t.target.clone());
    }
    let path = app.layout.restore_job(job);
    let doc = StepDoc::<RestoreJob>::load(&app.blobs, &path, || RestoreJob::new(job.clone(), None))
        .await
        .map_err(storage_err(job, "read the job"))?;
    doc.advance(&app.blobs, |j| {
        if j.status == JobStatus::Undone {
            return Change::AlreadyDone;
        }
        j.status = JobStatus::Undone;
        Change::Made
    })
    .await
    .map_err(storage_err(job, "mark the job undone"))?;
    tracing::info!(job = %job, tables = tables.len(), "restore undone");
    Ok(Undone {
        job: job.clone(),
        tables,
    })
}

/// Where a restore may send the app's token: the source cluster, the clusters in
/// `AdxBackup__RestoreTargets`, and their ingest endpoints.
fn allowed_endpoints(app: &App) -> Vec<Url> {
    let mut clusters = vec![app.settings.kusto.cluster_uri.clone()];
    clusters.extend(app.settings.restore.extra_targets.iter().cloned());
    request::allowed_endpoints(&clusters)
}

/// A client for another cluster (the target's engine or ingest endpoint), with the app's
/// own credentials; refused for an endpoint outside [`allowed_endpoints`], which the job's
/// start has already checked: this is the last gate before a token leaves.
fn target_client(app: &App, job: &JobId, uri: &Url) -> Result<KustoClient, RestoreError> {
    if !allowed_endpoints(app)
        .iter()
        .any(|e| request::same_origin(e, uri))
    {
        return Err(RestoreError::Refused {
            job: job.clone(),
            reason: format!(
                "{} is not a restore target this app allows (AdxBackup__RestoreTargets)",
                crate::redact::redact_urls(uri.as_str())
            ),
        });
    }
    let mut settings = app.settings.kusto.clone();
    settings.cluster_uri = uri.clone();
    settings.token_scope = format!("{}/.default", uri.as_str().trim_end_matches('/'));
    KustoClient::new(&settings).map_err(|e| RestoreError::Client {
        job: job.clone(),
        uri: crate::redact::redact_urls(uri.as_str()),
        source: Box::new(e),
    })
}

/// Where a job's backup lives: the app's container and prefix unless the request names others.
struct Backup {
    blobs: BlobStore,
    layout: Layout,
    container: String,
    database: DatabaseName,
}

fn backup(app: &App, job: &JobId, request: &RestoreRequestV1) -> Result<Backup, RestoreError> {
    let storage = &app.settings.storage;
    let container = request
        .source
        .container
        .clone()
        .unwrap_or_else(|| storage.container.clone());
    // The app's own backup is read through the app's store, which finds its state in the
    // state container; another container holds its backup's state beside its data.
    let blobs = if container == storage.container {
        app.blobs.clone()
    } else {
        BlobStore::for_container(storage, &container, RetryPolicy::default())
            .map_err(storage_err(job, "open the backup container"))?
    };
    let layout = match &request.source.prefix {
        Some(p) => Layout::new(p),
        None => app.layout.clone(),
    };
    let database = match (&request.source.database, app.settings.databases.as_slice()) {
        (Some(db), _) => db.clone(),
        (None, [only]) => only.clone(),
        (None, _) => {
            return Err(RestoreError::Refused {
                job: job.clone(),
                reason: "the request must name source.database: this app backs up several"
                    .to_owned(),
            });
        }
    };
    Ok(Backup {
        blobs,
        layout,
        container,
        database,
    })
}
