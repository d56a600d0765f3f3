//! Queued ingestion as the SDKs' queued clients and LightIngest do it: `.get ingestion
//! resources` and `.get kusto identity token` on the target's ingest endpoint, then one
//! message per blob on an ingestion queue (base64 of the JSON the SDKs write, Python's
//! `IngestionBlobInfo`), and failure reports read back from the failed-ingestions queue.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use url::Url;

use crate::ids::{DatabaseName, TableName};
use crate::kusto::command::{get_ingestion_resources, get_kusto_identity_token};
use crate::kusto::{KustoClient, Step, StepError};
use crate::retry::RetryPolicy;
use crate::storage::layout::Layout;
use crate::storage::{BlobStore, StorageError, TaskQueue};

/// How long the ingest endpoint's resources and identity token are reused before they are
/// asked for again: the SDKs refresh them hourly (azure-kusto-java's `ResourceManager`,
/// `REFRESH_INGESTION_RESOURCES_PERIOD`), and the queue SAS URLs it hands out outlive that.
const RESOURCES_TTL: Duration = Duration::from_secs(3600);

/// Resources per ingest endpoint and database, shared by every chunk step of the process, so
/// a chunk does not cost the target two commands each time it sends or looks.
static CACHE: LazyLock<Mutex<HashMap<String, (Instant, Ingestion)>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// What the ingest endpoint handed out. Cheap to clone.
#[derive(Clone)]
pub struct Ingestion {
    queues: Vec<TaskQueue>,
    failures: TaskQueue,
    authorization_context: String,
}

/// One blob to ingest.
pub struct BlobMessage<'a> {
    pub id: uuid::Uuid,
    /// The blob's URL as the cluster reads it, with its auth suffix.
    pub url: &'a str,
    pub raw_size: Option<u64>,
    pub database: &'a DatabaseName,
    pub table: &'a TableName,
    pub creation_time: Option<OffsetDateTime>,
    pub tags: Vec<String>,
    pub ingest_if_not_exists: Vec<String>,
}

/// A failed ingestion as the status queue reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureReport {
    pub error_code: String,
    pub details: String,
}

impl FailureReport {
    /// Skipped because the `ingestIfNotExists` tag is already on an extent: the blob is in.
    pub fn is_already_ingested(&self) -> bool {
        self.error_code.starts_with("Skipped_IngestByTag")
    }
}

/// Why the ingest endpoint's resources could not be used.
#[derive(Debug, thiserror::Error)]
pub enum QueuedError {
    #[error(transparent)]
    Kusto(#[from] StepError),
    #[error("the ingest endpoint answered `.get ingestion resources` without {0}")]
    Missing(&'static str),
    #[error("the ingest endpoint handed out a queue URL that does not parse: {0}")]
    BadUrl(String),
    #[error("could not use the target's ingestion queue: {0}")]
    Storage(#[from] StorageError),
}

/// A source id derived from what it identifies, so a resent message carries the same id.
pub fn source_id(parts: &[&str]) -> uuid::Uuid {
    let mut hash = Sha256::new();
    for p in parts {
        hash.update(p.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

impl Ingestion {
    /// The resources of `endpoint` (the client `ingest` talks to) for `db`: from this
    /// process's cache while younger than an hour, else asked for and cached.
    pub async fn cached(
        ingest: &KustoClient,
        endpoint: &Url,
        db: &DatabaseName,
        retry: RetryPolicy,
    ) -> Result<Self, QueuedError> {
        let key = cache_key(endpoint, db);
        let hit = lock_cache()
            .get(&key)
            .filter(|(at, _)| at.elapsed() < RESOURCES_TTL)
            .map(|(_, ingestion)| ingestion.clone());
        if let Some(hit) = hit {
            return Ok(hit);
        }
        let fresh = Self::connect(ingest, db, retry).await?;
        lock_cache().insert(key, (Instant::now(), fresh.clone()));
        Ok(fresh)
    }

    /// Drops the cached resources of `endpoint` for `db` (a queue refused us: its SAS may
    /// have been revoked), so the next step asks again.
    pub fn forget(endpoint: &Url, db: &DatabaseName) {
        lock_cache().remove(&cache_key(endpoint, db));
    }

    /// Asks the ingest endpoint for its queues and the identity token.
    pub async fn connect(
        ingest: &KustoClient,
        db: &DatabaseName,
        retry: RetryPolicy,
    ) -> Result<Self, QueuedError> {
        let step = Step::database(db, "get the target's ingestion resources");
        let tables = step.mgmt(ingest, &get_ingestion_resources()).await?;
        let mut queues = Vec::new();
        let mut failures = None;
        for row in tables.first().into_iter().flat_map(|t| t.rows()) {
            let kind = row.str("ResourceTypeName").map_err(|e| step.error(e))?;
            let root = row.str("StorageRoot").map_err(|e| step.error(e))?;
            let url = || {
                Url::parse(root).map_err(|_| {
                    let mut shown = root.split('?').next().unwrap_or_default().to_owned();
                    shown.truncate(200);
                    QueuedError::BadUrl(shown)
                })
            };
            match kind {
                "SecuredReadyForAggregationQueue" => {
                    queues.push(TaskQueue::from_sas_url(&url()?, retry)?)
                }
                "FailedIngestionsQueue" => {
                    failures = Some(TaskQueue::from_sas_url(&url()?, retry)?)
                }
                _ => {}
            }
        }
        if queues.is_empty() {
            return Err(QueuedError::Missing("a SecuredReadyForAggregationQueue"));
        }
        let failures = failures.ok_or(QueuedError::Missing("a FailedIngestionsQueue"))?;
        let step = Step::database(db, "get the target's kusto identity token");
        let tables = step.mgmt(ingest, &get_kusto_identity_token()).await?;
        let authorization_context = tables
            .first()
            .and_then(|t| t.row(0))
            .map(|row| row.str("AuthorizationContext").map(str::to_owned))
            .transpose()
            .map_err(|e| step.error(e))?
            .ok_or(QueuedError::Missing("an AuthorizationContext"))?;
        Ok(Self {
            queues,
            failures,
            authorization_context,
        })
    }

    /// Posts one blob's message, on the queue its id picks (the SDKs pick at random; a
    /// stable pick keeps a resent message beside its first copy).
    pub async fn send(&self, blob: &BlobMessage<'_>) -> Result<(), StorageError> {
        let text = message_json(blob, &self.authorization_context).to_string();
        let index = (blob.id.as_u128() % self.queues.len() as u128) as usize;
        self.queues[index].send(&text, None).await.map(|_| ())
    }

    /// Files every failure report about a blob under `ours` (our backup's URL as the cluster
    /// sees it) at its source id, and deletes it from the shared queue; reports about other
    /// clients' blobs are put back at once. Reads at most `rounds` batches.
    pub async fn file_failures(
        &self,
        blobs: &BlobStore,
        layout: &Layout,
        ours: &str,
        rounds: usize,
    ) -> Result<(), StorageError> {
        for _ in 0..rounds {
            let batch = self.failures.receive(32, Duration::from_secs(30)).await?;
            if batch.is_empty() {
                return Ok(());
            }
            for msg in batch {
                let report = msg
                    .text
                    .as_ref()
                    .ok()
                    .and_then(|t| serde_json::from_str::<Value>(t).ok());
                let mine = report.as_ref().and_then(|r| {
                    let path = r.get("IngestionSourcePath")?.as_str()?;
                    let id = r.get("IngestionSourceId")?.as_str()?;
                    path.starts_with(ours).then(|| {
                        let text = |k: &str| {
                            r.get(k)
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned()
                        };
                        (
                            id.to_owned(),
                            FailureReport {
                                error_code: text("ErrorCode"),
                                details: text("Details"),
                            },
                        )
                    })
                });
                match mine {
                    Some((id, failure)) => {
                        if let Ok(id) = uuid::Uuid::parse_str(&id) {
                            let body = serde_json::to_vec(&failure)
                                .map_err(|e| StorageError::decode("failure report", e))?;
                            blobs
                                .write(&layout.ingest_failure(&id), Bytes::from(body))
                                .await?;
                        }
                        self.failures.delete(&msg.id, &msg.pop_receipt).await?;
                    }
                    None => {
                        self.failures
                            .update_visibility(&msg.id, &msg.pop_receipt, Duration::ZERO)
                            .await?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn cache_key(endpoint: &Url, db: &DatabaseName) -> String {
    format!("{} {db}", endpoint.as_str())
}

/// The cache, even if a thread panicked while holding it (its entries are whole either way).
fn lock_cache() -> std::sync::MutexGuard<'static, HashMap<String, (Instant, Ingestion)>> {
    CACHE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The message the SDKs write (`IngestionBlobInfo`): tags and `ingestIfNotExists` are JSON
/// arrays inside strings, as in `.ingest ... with (tags='[...]')`.
fn message_json(blob: &BlobMessage<'_>, authorization_context: &str) -> Value {
    let mut props = json!({
        "authorizationContext": authorization_context,
        "format": "parquet",
    });
    if let Some(at) = blob.creation_time
        && let Ok(text) = at.format(&time::format_description::well_known::Rfc3339)
    {
        props["creationTime"] = json!(text);
    }
    if !blob.tags.is_empty() {
        props["tags"] = json!(json!(blob.tags).to_string());
    }
    if !blob.ingest_if_not_exists.is_empty() {
        props["ingestIfNotExists"] = json!(json!(blob.ingest_if_not_exists).to_string());
    }
    let now = OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    json!({
        "Id": blob.id.to_string(),
        "BlobPath": blob.url,
        "RawDataSize": blob.raw_size.unwrap_or(0),
        "DatabaseName": blob.database.as_str(),
        "TableName": blob.table.as_str(),
        "RetainBlobOnSuccess": true,
        "FlushImmediately": false,
        "IgnoreSizeLimit": false,
        // FailuresOnly to the queue: success is seen on the target's extents.
        "ReportLevel": 0,
        "ReportMethod": 0,
        "SourceMessageCreationTime": now,
        "AdditionalProperties": props,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_has_the_sdk_shape() {
        let db = DatabaseName::new("Sales").unwrap();
        let t = TableName::new("Orders").unwrap();
        let blob = BlobMessage {
            id: source_id(&["r-1", "a.parquet"]),
            url: "https://acct.blob.core.windows.net/c/a.parquet;managed_identity=system",
            raw_size: Some(42),
            database: &db,
            table: &t,
            creation_time: Some(time::macros::datetime!(2026-03-01 00:00 UTC)),
            tags: vec!["ingest-by:r-1.c-000001.0".into(), "drop-by:r-1".into()],
            ingest_if_not_exists: vec!["r-1.c-000001.0".into()],
        };
        let m = message_json(&blob, "token");
        assert_eq!(m["DatabaseName"], "Sales");
        assert_eq!(m["TableName"], "Orders");
        assert_eq!(m["RawDataSize"], 42);
        assert_eq!(m["RetainBlobOnSuccess"], true);
        let props = &m["AdditionalProperties"];
        assert_eq!(props["authorizationContext"], "token");
        assert_eq!(props["format"], "parquet");
        assert_eq!(props["creationTime"], "2026-03-01T00:00:00Z");
        assert_eq!(
            props["tags"],
            r#"["ingest-by:r-1.c-000001.0","drop-by:r-1"]"#
        );
        assert_eq!(props["ingestIfNotExists"], r#"["r-1.c-000001.0"]"#);
        assert_eq!(
            m["Id"].as_str().unwrap(),
            source_id(&["r-1", "a.parquet"]).to_string()
        );
        assert_ne!(source_id(&["r-1", "a"]), source_id(&["r-1a", ""]));
    }
}
