//! The queued-ingestion consumer: what a cluster's data-management service does with the
//! messages the SDKs' queued ingest clients (and LightIngest) post, one per blob.
//!
//! A pass receives every message on the ready queues, decodes it (base64 JSON, the fields
//! of the Python SDK's `ingestion_blob_info.py`), checks its authorization context, groups
//! the messages into batches per table as the ingestion batching policy does, ingests each
//! batch as one commit (one extent), deletes the messages and reports on the status queues
//! as each message's `ReportLevel`/`ReportMethod` asks. A message that cannot be ingested is
//! reported as a failure with the documented error code and never stops the pass.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};
use uuid::Uuid;

use crate::backend::Backend;
use crate::error::SimError;
use crate::parquet_io;
use crate::queue::QueueClient;
use crate::state::ingestion::FailureStatus;
use crate::state::{ExtentProps, IngestionFailure, IngestionResources, Operation, OperationState};
use crate::table::Column;
use crate::value::Value;
use crate::value::temporal::{format_datetime, parse_datetime};

/// The batching policy's sealing limits on count and raw size (its defaults); the time
/// limit is the end of a pass.
const MAX_BATCH_BLOBS: usize = 500;
const MAX_BATCH_BYTES: u64 = 1 << 30;

/// What one consumer pass did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IngestionReport {
    /// Messages taken off the ready queues.
    pub messages: usize,
    pub succeeded: usize,
    /// Skipped because an extent already carries one of their `ingestIfNotExists` tags.
    pub skipped: usize,
    pub failed: usize,
}

/// Runs one pass now. Does nothing until `.get ingestion resources` created the queues.
pub async fn run_once(sim: &Backend) -> IngestionReport {
    let _one_pass_at_a_time = sim.queued_ingestion.lock().await;
    let resources = sim.cluster().ingestion_resources.clone();
    let (Some(resources), Some(queues)) = (resources, sim.queues.as_ref()) else {
        return IngestionReport::default();
    };
    let mut received = Vec::new();
    for q in &resources.ready_queues {
        match queues.receive_all(q).await {
            Ok(messages) => received.extend(messages.into_iter().map(|m| (q.clone(), m))),
            Err(e) => tracing::warn!(queue = %q, error = %e, "cannot read an ingestion queue"),
        }
    }
    let mut pass = Pass {
        sim,
        queues,
        resources: &resources,
        report: IngestionReport {
            messages: received.len(),
            ..IngestionReport::default()
        },
    };
    let mut batches = Batches::default();
    for (_, message) in &received {
        match decode(&message.text, &resources.authorization_context) {
            Ok(m) => batches.add(m),
            Err(rejected) => pass.reject(rejected).await,
        }
    }
    let mut sealed = batches.seal_all();
    while !sealed.is_empty() {
        let window: Vec<_> = sealed.drain(..sealed.len().min(PARALLEL)).collect();
        let commits = window.into_iter().map(|batch| commit(sim, batch));
        for c in futures::future::join_all(commits).await {
            pass.settle(c).await;
        }
    }
    for window in received.chunks(PARALLEL) {
        let deletes = window
            .iter()
            .map(|(queue, message)| queues.delete(queue, message));
        let results = futures::future::join_all(deletes).await;
        for ((queue, _), deleted) in window.iter().zip(results) {
            if let Err(e) = deleted {
                tracing::warn!(queue = %queue, error = %e, "cannot delete an ingestion message");
            }
        }
    }
    pass.report
}

/// Runs a pass every `tick` (once the queues exist) until the simulator is dropped.
pub fn spawn_consumer(sim: &Arc<Backend>, tick: Duration) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(sim);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(tick).await;
            let Some(sim) = weak.upgrade() else { return };
            run_once(&sim).await;
        }
    })
}

/// The message fields the SDKs write (Python `IngestionBlobInfo`, Go `properties.go`);
/// the tracing fields and `FlushImmediately`/`IgnoreSizeLimit` change nothing here.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Message {
    id: String,
    blob_path: String,
    raw_data_size: Option<u64>,
    database_name: String,
    table_name: String,
    /// Absent means false: the service deletes the blob once it is ingested.
    #[serde(default)]
    retain_blob_on_success: bool,
    #[serde(default)]
    report_level: u8,
    #[serde(default)]
    report_method: u8,
    #[serde(default)]
    additional_properties: Map<String, Json>,
}

/// Who a status report goes to and what it names.
#[derive(Debug, Clone, Default)]
struct Source {
    id: String,
    path: String,
    database: String,
    table: String,
    report_level: u8,
    report_method: u8,
}

impl Source {
    /// ReportLevel 0 FailuresOnly (the default), 1 None, 2 FailuresAndSuccesses;
    /// ReportMethod 0 Queue, 1 Table, 2 QueueAndTable.
    fn wants(&self, success: bool) -> bool {
        let level = match self.report_level {
            1 => false,
            2 => true,
            _ => !success,
        };
        level && self.report_method != 1
    }
}

/// A message ready to ingest.
#[derive(Debug)]
struct Decoded {
    source: Source,
    raw_size: Option<u64>,
    retain_blob: bool,
    extent: ExtentProps,
    if_not_exists: Vec<String>,
}

impl Decoded {
    /// Blobs that dedupe by tag or whose size is unknown are ingested alone (batching
    /// policy page).
    fn alone(&self) -> bool {
        !self.if_not_exists.is_empty()
            || self.extent.tags.iter().any(|t| t.starts_with("ingest-by:"))
            || self.raw_size.unwrap_or(0) == 0
    }
}

/// Why a source was not ingested, with the ingestion error code it is reported under
/// (the "Ingestion error codes" page).
#[derive(Debug, Clone)]
struct Failure {
    code: &'static str,
    details: String,
    status: FailureStatus,
}

impl Failure {
    fn permanent(code: &'static str, details: impl Into<String>) -> Self {
        Self {
            code,
            details: details.into(),
            status: FailureStatus::Permanent,
        }
    }
}

#[derive(Debug)]
enum Outcome {
    Succeeded,
    Skipped,
    Failed(Failure),
}

/// A message rejected before ingestion, with whatever of its source could be read.
#[derive(Debug)]
struct Rejected {
    source: Source,
    failure: Failure,
}

fn decode(text: &str, authorization_context: &str) -> Result<Decoded, Box<Rejected>> {
    let corrupted = |details: String| {
        Box::new(Rejected {
            source: Source::default(),
            failure: Failure::permanent("BadRequest_CorruptedMessage", details),
        })
    };
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|e| corrupted(format!("the queue message is not base64: {e}")))?;
    let message: Message = serde_json::from_slice(&bytes).map_err(|e| {
        corrupted(format!(
            "the queue message is not an ingestion message (base64 of JSON with Id, BlobPath, DatabaseName, TableName, ...): {e}"
        ))
    })?;
    let source = Source {
        id: message.id.clone(),
        path: message.blob_path.clone(),
        database: message.database_name.clone(),
        table: message.table_name.clone(),
        report_level: message.report_level,
        report_method: message.report_method,
    };
    validate(&message, source.clone(), authorization_context)
        .map_err(|failure| Box::new(Rejected { source, failure }))
}

fn validate(
    message: &Message,
    source: Source,
    authorization_context: &str,
) -> Result<Decoded, Failure> {
    let props = &message.additional_properties;
    let text = |name: &str| props.get(name).and_then(Json::as_str);
    if text("authorizationContext") != Some(authorization_context) {
        return Err(Failure::permanent(
            "BadRequest_InvalidKustoIdentityToken",
            "AdditionalProperties.authorizationContext is missing or is not the token `.get kusto identity token` returned",
        ));
    }
    if message.database_name.is_empty() {
        return Err(Failure::permanent(
            "BadRequest_EmptyDatabaseName",
            "DatabaseName is empty",
        ));
    }
    if message.table_name.is_empty() {
        return Err(Failure::permanent(
            "BadRequest_InvalidOrEmptyTableName",
            "TableName is empty",
        ));
    }
    if message.blob_path.is_empty() {
        return Err(Failure::permanent(
            "BadRequest_EmptyBlobUri",
            "BlobPath is empty",
        ));
    }
    // Kusto's default format is csv; kusto-sim reads parquet only.
    let format = text("format").unwrap_or("csv");
    if !format.eq_ignore_ascii_case("parquet") {
        return Err(Failure::permanent(
            "BadRequest_FormatNotSupported",
            format!("format '{format}': kusto-sim ingests parquet only"),
        ));
    }
    if props.contains_key("ingestionMapping") || props.contains_key("ingestionMappingReference") {
        return Err(Failure::permanent(
            "BadRequest_NotSupported",
            "ingestion mappings are not supported by kusto-sim (parquet maps columns by name)",
        ));
    }
    let creation_time = match text("creationTime") {
        Some(s) => Some(parse_datetime(s).ok_or_else(|| {
            Failure::permanent(
                "BadRequest_MalformedIngestionProperty",
                format!("creationTime '{s}' is not a datetime"),
            )
        })?),
        None => None,
    };
    Ok(Decoded {
        source,
        raw_size: message.raw_data_size,
        retain_blob: message.retain_blob_on_success,
        extent: ExtentProps {
            creation_time,
            tags: json_list(props, "tags")?,
        },
        if_not_exists: json_list(props, "ingestIfNotExists")?,
    })
}

/// `tags` and `ingestIfNotExists` travel as JSON-encoded strings (`"[\"a\"]"`).
fn json_list(props: &Map<String, Json>, name: &str) -> Result<Vec<String>, Failure> {
    let Some(value) = props.get(name) else {
        return Ok(Vec::new());
    };
    value
        .as_str()
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| {
            Failure::permanent(
                "BadRequest_MalformedIngestionProperty",
                format!("{name} must be a JSON-encoded array of strings, got {value}"),
            )
        })
}

/// Database, table, tags and creation time: what blobs of one batch share.
type BatchKey = (String, String, Vec<String>, Option<i64>);

/// Messages grouped as the batching policy groups them: per table and ingestion
/// properties, at most 500 blobs or 1 GB, some blobs alone.
#[derive(Default)]
struct Batches {
    /// Each open batch with its raw size so far.
    open: BTreeMap<BatchKey, (Vec<Decoded>, u64)>,
    sealed: Vec<Vec<Decoded>>,
}

impl Batches {
    fn add(&mut self, m: Decoded) {
        if m.alone() {
            self.sealed.push(vec![m]);
            return;
        }
        let key = (
            m.source.database.clone(),
            m.source.table.clone(),
            m.extent.tags.clone(),
            m.extent.creation_time,
        );
        let size = m.raw_size.unwrap_or(0);
        let (batch, bytes) = self.open.entry(key).or_default();
        batch.push(m);
        *bytes += size;
        if batch.len() >= MAX_BATCH_BLOBS || *bytes >= MAX_BATCH_BYTES {
            let full = std::mem::take(batch);
            *bytes = 0;
            self.sealed.push(full);
        }
    }

    /// Every batch, the open ones sealed: a pass ends the batching time window.
    fn seal_all(mut self) -> Vec<Vec<Decoded>> {
        let open = std::mem::take(&mut self.open);
        self.sealed
            .extend(open.into_values().map(|(b, _)| b).filter(|b| !b.is_empty()));
        self.sealed
    }
}

struct Pass<'a> {
    sim: &'a Backend,
    queues: &'a QueueClient,
    resources: &'a IngestionResources,
    report: IngestionReport,
}

impl Pass<'_> {
    /// A message rejected before reaching the engine: reported on the status queue only
    /// (the engine never saw it, so `.show ingestion failures` does not list it).
    async fn reject(&mut self, rejected: Box<Rejected>) {
        self.report.failed += 1;
        let outcome = Outcome::Failed(rejected.failure);
        self.send_status(&rejected.source, &outcome, Uuid::new_v4(), Uuid::new_v4())
            .await;
    }

    /// Counts and reports what [`commit`] did with one batch.
    async fn settle(&mut self, c: Committed) {
        for (m, outcome) in c.batch.iter().zip(&c.outcomes) {
            match outcome {
                Outcome::Succeeded => {
                    self.report.succeeded += 1;
                    if !m.retain_blob {
                        self.delete_source(&m.source.path).await;
                    }
                }
                Outcome::Skipped => self.report.skipped += 1,
                Outcome::Failed(f) => {
                    self.report.failed += 1;
                    self.record_failure(&m.source, f, c.operation_id, c.root_activity);
                }
            }
            self.send_status(&m.source, outcome, c.operation_id, c.root_activity)
                .await;
        }
    }

    /// `RetainBlobOnSuccess: false` (the default) hands the blob to the service, which
    /// deletes it once ingested; a failed delete loses nothing, so it is only logged.
    async fn delete_source(&self, path: &str) {
        let deleted = match self.sim.blob.locate(path) {
            Ok(loc) => self.sim.blob.delete(&loc).await,
            Err(e) => Err(e),
        };
        if let Err(e) = deleted {
            tracing::warn!(error = %e, "cannot delete an ingested source blob");
        }
    }

    fn record_failure(&self, source: &Source, f: &Failure, operation_id: Uuid, root: Uuid) {
        let failure = IngestionFailure {
            operation_id,
            database: source.database.clone(),
            table: source.table.clone(),
            failed_on: self.sim.now(),
            source_path: source.path.clone(),
            details: f.details.clone(),
            status: f.status,
            root_activity_id: root,
            error_code: f.code,
        };
        self.sim.cluster().ingestion_failures.push(failure);
    }

    /// Posts the status message the source asked for. A skipped source is reported as a
    /// failure with `Skipped_IngestByTagAlreadyExists`, the code the error-code page lists.
    async fn send_status(
        &self,
        source: &Source,
        outcome: &Outcome,
        operation_id: Uuid,
        root: Uuid,
    ) {
        let skipped = Failure::permanent(
            "Skipped_IngestByTagAlreadyExists",
            "Skipped: an extent with one of the ingestIfNotExists tags already exists",
        );
        let failure = match outcome {
            Outcome::Succeeded => None,
            Outcome::Skipped => Some(&skipped),
            Outcome::Failed(f) => Some(f),
        };
        if !source.wants(failure.is_none()) {
            return;
        }
        let now = format_datetime(self.sim.now());
        let mut body = json!({
            "OperationId": operation_id.to_string(),
            "Database": source.database,
            "Table": source.table,
            "IngestionSourceId": source.id,
            "IngestionSourcePath": source.path,
            "RootActivityId": root.to_string(),
        });
        let queue = match failure {
            None => {
                body["SucceededOn"] = json!(now);
                &self.resources.success_queue
            }
            Some(f) => {
                body["FailedOn"] = json!(now);
                body["Details"] = json!(f.details);
                body["ErrorCode"] = json!(f.code);
                body["FailureStatus"] = json!(f.status.name());
                body["OriginatesFromUpdatePolicy"] = json!(false);
                body["ShouldRetry"] = json!(f.status == FailureStatus::Transient);
                &self.resources.failure_queue
            }
        };
        let text = STANDARD.encode(body.to_string());
        if let Err(e) = self.queues.put(queue, &text).await {
            tracing::warn!(queue = %queue, error = %e, "cannot post an ingestion status");
        }
    }
}

/// Batches read and committed at once, and messages deleted at once, as the service's
/// nodes work in parallel: storage latency then bounds a pass of thousands of blobs, not
/// one blob after another. A tag checked again under the commit lock keeps
/// `ingestIfNotExists` exact between concurrent batches.
const PARALLEL: usize = 8;

/// One batch as the engine ended it: one operation, one outcome per message.
struct Committed {
    batch: Vec<Decoded>,
    operation_id: Uuid,
    root_activity: Uuid,
    outcomes: Vec<Outcome>,
}

/// Ingests one batch as one operation (one extent).
async fn commit(sim: &Backend, batch: Vec<Decoded>) -> Committed {
    let (db, table) = batch
        .first()
        .map(|m| (m.source.database.clone(), m.source.table.clone()))
        .unwrap_or_default();
    let op = Operation::start("DataIngestPull", &db, sim.now());
    let (operation_id, root_activity) = (op.id, Uuid::new_v4());
    sim.cluster().operations.push(op);
    let outcomes = ingest_batch(sim, &db, &table, &batch).await;
    finish_operation(sim, operation_id, &outcomes);
    Committed {
        batch,
        operation_id,
        root_activity,
        outcomes,
    }
}

/// Completed, Skipped or Failed when every source ended so, else PartiallySucceeded.
fn finish_operation(sim: &Backend, id: Uuid, outcomes: &[Outcome]) {
    let count = |f: fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    let succeeded = count(|o| matches!(o, Outcome::Succeeded));
    let skipped = count(|o| matches!(o, Outcome::Skipped));
    let first_failure = outcomes.iter().find_map(|o| match o {
        Outcome::Failed(f) => Some(f.details.clone()),
        _ => None,
    });
    let state = match (succeeded, skipped, &first_failure) {
        (_, _, None) if skipped == outcomes.len() => OperationState::Skipped,
        (_, _, None) => OperationState::Completed,
        (0, 0, Some(_)) => OperationState::Failed,
        _ => OperationState::PartiallySucceeded,
    };
    let now = sim.now();
    if let Some(op) = sim.cluster().operation_mut(id) {
        op.end(state, first_failure.unwrap_or_default(), now);
    }
}

/// Reads every blob of the batch and commits the readable ones as one extent.
async fn ingest_batch(sim: &Backend, db: &str, table: &str, batch: &[Decoded]) -> Vec<Outcome> {
    let columns = match target_columns(sim, db, table) {
        Ok(c) => c,
        Err(f) => return batch.iter().map(|_| Outcome::Failed(f.clone())).collect(),
    };
    let if_not_exists: Vec<&String> = batch.iter().flat_map(|m| &m.if_not_exists).collect();
    if already_ingested(sim, db, table, &if_not_exists) {
        return batch.iter().map(|_| Outcome::Skipped).collect();
    }
    let mut outcomes = Vec::new();
    let mut rows = Vec::new();
    for m in batch {
        match read_source(sim, &m.source.path, &columns).await {
            Ok(r) => {
                rows.extend(r);
                outcomes.push(Outcome::Succeeded);
            }
            Err(f) => outcomes.push(Outcome::Failed(f)),
        }
    }
    let Some(first) = batch.first() else {
        return outcomes;
    };
    if rows.is_empty() {
        return outcomes;
    }
    let now = sim.now();
    let mut cluster = sim.cluster();
    // Checked again under the lock: a concurrent ingestion may have landed meanwhile.
    if already_ingested_in(&cluster, db, table, &if_not_exists) {
        return batch.iter().map(|_| Outcome::Skipped).collect();
    }
    let committed = cluster
        .database_mut(db)
        .and_then(|d| d.ingest(table, vec![(rows, first.extent.clone())], now));
    // Only a table dropped while its blobs were read fails the commit.
    if let Err(e) = committed {
        let f = Failure::permanent(
            "BadRequest_EntityNotFound",
            format!("the table went away during the ingestion: {e}"),
        );
        return batch.iter().map(|_| Outcome::Failed(f.clone())).collect();
    }
    outcomes
}

fn target_columns(sim: &Backend, db: &str, table: &str) -> Result<Vec<Column>, Failure> {
    let cluster = sim.cluster();
    let database = cluster.database(db).map_err(|_| {
        Failure::permanent(
            "BadRequest_DatabaseNotExist",
            format!("database '{db}' does not exist"),
        )
    })?;
    let t = database.table(table).map_err(|_| {
        Failure::permanent(
            "BadRequest_TableNotExist",
            format!("table '{table}' does not exist in database '{db}'"),
        )
    })?;
    Ok(t.columns.clone())
}

fn already_ingested(sim: &Backend, db: &str, table: &str, tags: &[&String]) -> bool {
    already_ingested_in(&sim.cluster(), db, table, tags)
}

fn already_ingested_in(
    cluster: &crate::state::Cluster,
    db: &str,
    table: &str,
    tags: &[&String],
) -> bool {
    let Ok(t) = cluster.database(db).and_then(|d| d.table(table)) else {
        return false;
    };
    tags.iter().any(|x| {
        let tag = format!("ingest-by:{x}");
        t.extents.iter().any(|e| e.tags.contains(&tag))
    })
}

/// The blob's rows, or the download/format failure it is reported under.
async fn read_source(
    sim: &Backend,
    url: &str,
    columns: &[Column],
) -> Result<Vec<Vec<Value>>, Failure> {
    let loc = sim
        .blob
        .locate(url)
        .map_err(|e| Failure::permanent("Download_BadRequest", e.to_string()))?;
    let data = sim.blob.get(&loc).await.map_err(download_failure)?;
    parquet_io::read(data, columns).map_err(|e| {
        Failure::permanent(
            "BadRequest_InvalidBlob",
            format!(
                "{} is not a parquet file kusto-sim can read: {e}",
                loc.public_url()
            ),
        )
    })
}

fn download_failure(e: SimError) -> Failure {
    let text = e.to_string();
    let (code, status) = if text.contains(" 404 ") {
        ("Download_SourceNotFound", FailureStatus::Permanent)
    } else if text.contains(" 403 ") {
        ("Download_Forbidden", FailureStatus::Permanent)
    } else {
        ("Download_UnknownError", FailureStatus::Transient)
    };
    Failure {
        code,
        details: text,
        status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(body: Json) -> String {
        STANDARD.encode(body.to_string())
    }

    fn message(extra: Json) -> Json {
        let mut m = json!({
            "Id": "2c6f9d1e-0000-4000-8000-000000000001",
            "BlobPath": "http://127.0.0.1:10000/devstoreaccount1/c/f.parquet",
            "RawDataSize": 10,
            "DatabaseName": "db",
            "TableName": "T",
            "RetainBlobOnSuccess": true,
            "FlushImmediately": false,
            "IgnoreSizeLimit": false,
            "ReportLevel": 2,
            "ReportMethod": 0,
            "SourceMessageCreationTime": "2024-01-01T00:00:00",
            "AdditionalProperties": {"authorizationContext": "tok", "format": "parquet"}
        });
        if let (Some(props), Some(extra)) =
            (m["AdditionalProperties"].as_object_mut(), extra.as_object())
        {
            props.extend(extra.clone());
        }
        m
    }

    fn rejected_code(text: &str) -> &'static str {
        match decode(text, "tok") {
            Err(r) => r.failure.code,
            Ok(d) => panic!("decoded {d:?}"),
        }
    }

    #[test]
    fn sdk_messages_decode_with_json_encoded_lists() {
        let text = encoded(message(json!({
            "tags": "[\"drop-by:a\",\"ingest-by:t1\"]",
            "ingestIfNotExists": "[\"t1\"]",
            "creationTime": "2024-02-03T04:05:06Z"
        })));
        let d = decode(&text, "tok").unwrap();
        assert_eq!(d.extent.tags, vec!["drop-by:a", "ingest-by:t1"]);
        assert_eq!(d.if_not_exists, vec!["t1"]);
        assert_eq!(
            d.extent.creation_time,
            parse_datetime("2024-02-03T04:05:06Z")
        );
        assert_eq!((d.source.report_level, d.source.table.as_str()), (2, "T"));
        assert!(d.alone());
    }

    #[test]
    fn bad_messages_are_rejected_with_the_documented_codes() {
        assert_eq!(
            rejected_code("%%% not base64"),
            "BadRequest_CorruptedMessage"
        );
        assert_eq!(
            rejected_code(&STANDARD.encode("not json")),
            "BadRequest_CorruptedMessage"
        );
        let mut wrong_token = message(json!({}));
        wrong_token["AdditionalProperties"]["authorizationContext"] = json!("other");
        assert_eq!(
            rejected_code(&encoded(wrong_token)),
            "BadRequest_InvalidKustoIdentityToken"
        );
        assert_eq!(
            rejected_code(&encoded(message(json!({"format": "csv"})))),
            "BadRequest_FormatNotSupported"
        );
        assert_eq!(
            rejected_code(&encoded(message(json!({"tags": ["not", "encoded"]})))),
            "BadRequest_MalformedIngestionProperty"
        );
    }

    #[test]
    fn report_level_and_method_choose_what_is_reported() {
        let source = |level, method| Source {
            report_level: level,
            report_method: method,
            ..Source::default()
        };
        assert!(source(0, 0).wants(false) && !source(0, 0).wants(true));
        assert!(!source(1, 0).wants(false));
        assert!(source(2, 2).wants(true) && source(2, 2).wants(false));
        assert!(
            !source(2, 1).wants(false),
            "table-only reporting posts nothing"
        );
    }

    #[test]
    fn batches_group_per_table_and_keep_dedup_blobs_alone() {
        let text = |table: &str, extra: Json| {
            let mut m = message(extra);
            m["TableName"] = json!(table);
            encoded(m)
        };
        let mut batches = Batches::default();
        for t in [
            text("A", json!({})),
            text("A", json!({})),
            text("B", json!({})),
            text("A", json!({"ingestIfNotExists": "[\"x\"]"})),
        ] {
            batches.add(decode(&t, "tok").unwrap());
        }
        let open: Vec<usize> = batches.open.values().map(|(b, _)| b.len()).collect();
        assert_eq!(open, vec![2, 1]);
        assert_eq!(
            batches.sealed.len(),
            1,
            "the ingestIfNotExists message is alone"
        );
    }
}
