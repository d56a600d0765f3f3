//! A restore job's documents: the job (request, status, planning position, counters, report),
//! one plan page per planning step (the chunks it cut, written once), and one document per
//! started chunk, each with its own states on the model of kusto-copy's blocks. Job and
//! chunks are written only through `job::StepDoc`, with the ETag that was read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::request::RestoreRequestV1;
use crate::ids::{
    ChunkId, ColumnName, DatabaseName, Day, IdError, JobId, OperationId, TableName, ViewName,
};
use crate::job::RecordedFailure;

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobStatus {
    /// Accepted; the schema step is next.
    Accepted,
    /// Cutting the catalog into chunks (and ingesting the first ones).
    Planning,
    /// Every chunk is planned; waiting for the last ones.
    Ingesting,
    /// The data is in and counted: creating the materialized views, one at a time
    /// (`RestoreJob::views`); the report is written, the job ends `Succeeded` after them.
    CreatingViews,
    Succeeded,
    PartiallySucceeded,
    Failed,
    /// The request was refused; nothing in the target was changed.
    Rejected,
    /// A dry run: the plan is in the report, the target was not touched.
    Planned,
    /// `restore --undo` dropped every row the job wrote.
    Undone,
}

impl JobStatus {
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            Self::Accepted | Self::Planning | Self::Ingesting | Self::CreatingViews
        )
    }
}

/// One table of the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobTable {
    pub source: TableName,
    pub target: TableName,
    /// The datetime column whose day names the backup's folders; None: every row undated.
    pub partition_column: Option<ColumnName>,
    /// The target table held no rows when the job started (so per-day counts are exact).
    pub target_was_empty: bool,
    /// Rows the catalog promises, per day.
    pub expected: BTreeMap<Day, u64>,
}

/// How far planning got: the table, the listing page of its catalog segments, and the last
/// segment of that page already planned (listings are sorted by name).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanPosition {
    pub table: usize,
    pub marker: Option<String>,
    pub after: Option<String>,
    pub done: bool,
    /// Plan pages written so far (0 in jobs planned before pages: their planner wrote
    /// every chunk document itself).
    #[serde(default)]
    pub pages: u64,
}

/// The plan page holding the next chunk to start: the driver walks the pages in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageCursor {
    pub page: u64,
    /// The number of the page's first chunk.
    pub first_chunk: u64,
}

/// What the job counted as it went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub artifacts: u64,
    pub rows: u64,
    pub bytes: u64,
    pub chunks: u64,
    pub ingested_artifacts: u64,
    pub failed_artifacts: u64,
}

/// A file that did not come back, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedArtifact {
    pub table: TableName,
    pub path: String,
    /// None when the file was planned from a listing.
    pub rows: Option<u64>,
    pub reason: String,
}

/// How many failed files the job document lists one by one (the rest are counted).
pub const FAILED_LISTED: usize = 100;

/// Rows expected and found for one table and day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayCount {
    pub day: Day,
    pub expected: u64,
    pub found: u64,
}

/// The final comparison for one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableReport {
    pub source: TableName,
    pub target: TableName,
    /// What the catalog promised; None when the job was planned from a listing.
    pub expected_rows: Option<u64>,
    /// Rows in the extents carrying the job's `drop-by:` tag.
    pub found_rows: u64,
    /// Days whose counts differ (only when the target table was empty before the job).
    pub mismatched_days: Vec<DayCount>,
}

/// What the schema step did with the snapshot besides its tables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaReport {
    /// Functions, mappings and policies set in the target, in words.
    pub applied: Vec<String>,
    /// Statements of the snapshot left out, each with why and what to do.
    pub not_applied: Vec<String>,
}

/// What the job ends with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub tables: Vec<TableReport>,
    pub totals: Totals,
    pub failed: Vec<FailedArtifact>,
    /// What is missing, in words; empty when nothing is.
    pub missing: Vec<String>,
    /// What the figures cannot prove, in words (a job planned from a listing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caveats: Vec<String>,
    pub duration_seconds: i64,
    #[serde(default)]
    pub schema: SchemaReport,
}

/// The driver's schedule of looks at the open chunks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Looks {
    /// No look before this time (None: look at the next step).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub next_at: Option<OffsetDateTime>,
    /// Looks in a row that found nothing new: the back-off between looks.
    #[serde(default)]
    pub idle: u32,
}

/// A materialized view the job creates once the data is in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewStep {
    pub name: ViewName,
    pub state: ViewState,
}

/// Where a view's creation is. Only the step whose write of `Sending` won sends the create,
/// so a driver message delivered twice sends it once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum ViewState {
    /// Nothing sent yet.
    Pending,
    /// Claimed at `at`; the step that claimed it is sending the create. A later step finding
    /// it still here waits until the send must have ended (a Kusto request's timeout), then
    /// looks for the view, and claims it again if it is not there.
    Sending {
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// Created; Kusto is backfilling it from the restored rows in `operation`.
    Backfilling {
        operation: OperationId,
    },
    Created,
    /// The target had a view of that name before: left as it is.
    Existed,
    /// Not created; why (Kusto's reason), as the report says it.
    Failed {
        reason: String,
    },
}

impl ViewState {
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Created | Self::Existed | Self::Failed { .. })
    }
}

/// The job document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreJob {
    pub job: JobId,
    /// None when the message could not be read as a request at all.
    pub request: Option<RestoreRequestV1>,
    pub status: JobStatus,
    pub error: Option<RecordedFailure>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    /// The source database, resolved from the request and the settings.
    pub source_database: Option<DatabaseName>,
    /// The schema snapshot applied (container-relative path).
    pub schema_snapshot: Option<String>,
    pub tables: Vec<JobTable>,
    /// The schema step's objects so far (update policies join them at the end).
    #[serde(default)]
    pub schema: SchemaReport,
    pub plan: PlanPosition,
    /// Chunks `first_open..next_to_start` are in flight; below `first_open` all are finished.
    pub first_open: u64,
    pub next_to_start: u64,
    /// The plan page of chunk `next_to_start`.
    #[serde(default)]
    pub start_page: PageCursor,
    pub totals: Totals,
    pub failed: Vec<FailedArtifact>,
    /// When the driver looks at the open chunks next (absent in jobs written before the
    /// driver looked for them: such a job looks at once).
    #[serde(default)]
    pub looks: Looks,
    /// The materialized views to create once the data is in (`CreatingViews`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub views: Vec<ViewStep>,
    /// Bumped by every driver step; a driver message for an older tick is a duplicate.
    pub tick: u64,
    pub report: Option<Report>,
}

impl RestoreJob {
    pub fn new(job: JobId, request: Option<RestoreRequestV1>) -> Self {
        Self {
            job,
            request,
            status: JobStatus::Accepted,
            error: None,
            created_at: OffsetDateTime::now_utc(),
            finished_at: None,
            source_database: None,
            schema_snapshot: None,
            tables: Vec::new(),
            schema: SchemaReport::default(),
            plan: PlanPosition::default(),
            first_open: 0,
            next_to_start: 0,
            start_page: PageCursor::default(),
            totals: Totals::default(),
            failed: Vec::new(),
            looks: Looks::default(),
            views: Vec::new(),
            tick: 0,
            report: None,
        }
    }

    /// The tag every extent of this job carries: what `--undo` drops.
    pub fn drop_by(&self) -> String {
        format!("drop-by:{}", self.job)
    }
}

/// Where a chunk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChunkState {
    /// Written by the planner; nothing sent yet.
    Planned,
    /// One ingestion message per file is on the target's queue.
    Ingesting,
    /// Every file is in the target (its `ingest-by:` tag is on an extent); its extents were
    /// merged with another chunk's, so the row check is the job's, per table and day.
    Ingested,
    /// Every file is in the target and the chunk's extents hold exactly its rows.
    Verified,
    /// Some files failed for good (each says why); the rest are in.
    Failed,
    /// Nothing to ingest (every file was empty).
    Skipped,
}

impl ChunkState {
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Planned | Self::Ingesting)
    }
}

/// What became of one file of a chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum BlobOutcome {
    Pending,
    Ingested,
    Failed { reason: String },
}

/// One file of a chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkBlob {
    /// Container-relative path.
    pub path: String,
    pub day: Day,
    /// None when the file was planned from a listing: its rows are not known.
    pub rows: Option<u64>,
    pub bytes: Option<u64>,
    pub outcome: BlobOutcome,
}

/// One planning step's chunks, in order, written once by the step that cut them: the
/// chunks' documents are made from it as the driver starts them, so planning writes one
/// document per step, not one per chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanPage {
    pub job: JobId,
    /// The number of the page's first chunk.
    pub first_chunk: u64,
    pub chunks: Vec<PlannedChunk>,
}

/// A chunk as planned: its target table and its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedChunk {
    pub target_table: TableName,
    pub files: PlannedFiles,
}

/// Where a planned chunk's files are written down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum PlannedFiles {
    /// Lines of catalog segments, which are written once and never changed (and a running
    /// restore holds its tables against prune): the page names them instead of copying
    /// every artifact, so a plan costs a fraction of the catalog it reads.
    Cataloged { segments: Vec<SegmentLines> },
    /// Files from a listing, which cannot be read again the same way: written out.
    Listed { blobs: Vec<ChunkBlob> },
}

/// Which lines (0-based, in order) of one catalog segment a chunk takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentLines {
    /// The segment's container-relative path, as its listing names it.
    pub segment: String,
    pub lines: Vec<u64>,
}

/// The chunk document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreChunk {
    pub job: JobId,
    pub chunk: ChunkId,
    pub target_table: TableName,
    pub state: ChunkState,
    pub blobs: Vec<ChunkBlob>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub sent_at: Option<OffsetDateTime>,
    /// Bumped by every poll; a chunk message for an older poll is a duplicate.
    pub poll: u64,
    pub error: Option<String>,
}

impl RestoreChunk {
    /// The chunk's number in `c-000042`.
    pub fn id(n: u64) -> Result<ChunkId, IdError> {
        // Zero-padded, and every tag ends the chunk id with a '.', so the tag prefix of
        // chunk 1 (`c-000001.`) is never a prefix of chunk 10's.
        ChunkId::new(format!("c-{n:06}"))
    }

    /// The prefix every `ingest-by:` tag of this chunk starts with.
    pub fn tag_prefix(job: &JobId, chunk: &ChunkId) -> String {
        format!("ingest-by:{job}.{chunk}.")
    }

    /// File `i`'s `ingestIfNotExists` value; its extent tag is `ingest-by:` + this.
    pub fn blob_key(&self, i: usize) -> String {
        format!("{}.{}.{i}", self.job, self.chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ColumnName;
    use crate::storage::StorageError;
    use crate::storage::state::decode;

    fn day(folder: &str) -> Day {
        Day::parse_folder(folder).unwrap()
    }

    fn job() -> RestoreJob {
        let request = RestoreRequestV1::parse(
            r#"{"version":1,"jobId":"r-1","target":{"clusterUri":"https://dr.kusto.windows.net","database":"Sales"},
                "window":{"from":"2026-03-01","to":"2026-03-02"},"asOf":"2026-03-03T00:00:00+01:00"}"#,
        )
        .unwrap();
        let orders = TableName::new("Orders").unwrap();
        let mut job = RestoreJob::new(JobId::new("r-1").unwrap(), Some(request));
        job.status = JobStatus::PartiallySucceeded;
        job.finished_at = Some(time::macros::datetime!(2026-03-04 10:00 UTC));
        job.source_database = Some(DatabaseName::new("Sales").unwrap());
        job.tables.push(JobTable {
            source: orders.clone(),
            target: TableName::new("Orders2").unwrap(),
            partition_column: Some(ColumnName::new("At").unwrap()),
            target_was_empty: true,
            expected: [(day("20260301"), 12), (Day::UNDATED, 3)].into(),
        });
        job.failed.push(FailedArtifact {
            table: orders.clone(),
            path: "backup/Sales/Orders/20260301/a.parquet".into(),
            rows: Some(5),
            reason: "Stream_NoDataToIngest".into(),
        });
        job.report = Some(Report {
            tables: vec![TableReport {
                source: orders.clone(),
                target: orders,
                expected_rows: Some(15),
                found_rows: 10,
                mismatched_days: vec![DayCount {
                    day: day("20260301"),
                    expected: 12,
                    found: 7,
                }],
            }],
            totals: Totals {
                artifacts: 2,
                rows: 15,
                ..Totals::default()
            },
            failed: job.failed.clone(),
            missing: vec!["5 rows of Orders".into()],
            caveats: Vec::new(),
            duration_seconds: 42,
            schema: SchemaReport::default(),
        });
        job
    }

    fn chunk() -> RestoreChunk {
        RestoreChunk {
            job: JobId::new("r-1").unwrap(),
            chunk: RestoreChunk::id(1).unwrap(),
            target_table: TableName::new("Orders").unwrap(),
            state: ChunkState::Ingesting,
            blobs: vec![
                ChunkBlob {
                    path: "backup/Sales/Orders/20260301/a.parquet".into(),
                    day: day("20260301"),
                    rows: Some(5),
                    bytes: Some(4096),
                    outcome: BlobOutcome::Failed {
                        reason: "Stream_NoDataToIngest".into(),
                    },
                },
                ChunkBlob {
                    path: "backup/Sales/Orders/00010101/b.parquet".into(),
                    day: Day::UNDATED,
                    rows: None,
                    bytes: None,
                    outcome: BlobOutcome::Pending,
                },
            ],
            sent_at: Some(time::macros::datetime!(2026-03-04 09:00 UTC)),
            poll: 3,
            error: None,
        }
    }

    /// Damaged documents of type `T` (from `sample`) are errors, and what decodes survives
    /// the save that follows every step.
    fn check<T>(seed: u64, sample: &T)
    where
        T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let sample = serde_json::to_vec(sample).unwrap();
        crate::mutate::check(seed, &[&sample], |body| {
            let doc: T = decode("doc", body)?;
            let saved = serde_json::to_vec_pretty(&doc).unwrap();
            assert_eq!(decode::<T>("doc", &saved).unwrap(), doc);
            Ok::<_, StorageError>(())
        });
    }

    #[test]
    fn damaged_job_documents_are_errors_not_panics() {
        check(0x10b, &job());
    }

    #[test]
    fn damaged_chunk_documents_are_errors_not_panics() {
        check(0xc4a, &chunk());
    }

    #[test]
    fn damaged_plan_pages_are_errors_not_panics() {
        let page = PlanPage {
            job: JobId::new("r-1").unwrap(),
            first_chunk: 7,
            chunks: vec![
                PlannedChunk {
                    target_table: TableName::new("Orders").unwrap(),
                    files: PlannedFiles::Cataloged {
                        segments: vec![SegmentLines {
                            segment: "backup/$catalog/Sales/Orders/seg-000003.jsonl".into(),
                            lines: vec![0, 1, 5],
                        }],
                    },
                },
                PlannedChunk {
                    target_table: TableName::new("Orders").unwrap(),
                    files: PlannedFiles::Listed {
                        blobs: chunk().blobs,
                    },
                },
            ],
        };
        check(0x9a6e, &page);
    }
}
