//! The catalog: for each table, the append-only list of valid backup artifacts.
//!
//! Restore reads the catalog, never a bare folder listing: continuous export guarantees
//! exactly-once only for the files it reports in `exported-artifacts`, and failed runs can
//! leave stray files beside them. Each harvest appends one segment (`seg-<n>.jsonl`, one
//! artifact per line) created with If-None-Match, so a segment is written once and two
//! harvesters cannot both append segment n. Each completed backfill batch is one segment
//! named by its job and batch (`bf-<job>-<batch>.jsonl`), so it is cataloged at most once; a
//! reconcile batch likewise (`rc-<job>-<batch>.jsonl`), live only once a supersede record
//! names it ([`super::supersede`]). Readers stream segments in order, a page of the
//! listing and one segment at a time, so millions of artifacts never sit in memory together.

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::blob::{BlobStore, ListPage};
use super::error::StorageError;
use super::layout::Layout;
use crate::ids::{BatchId, DatabaseName, Day, ExportName, JobId, TableName};

/// One parquet file of a table's backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// Blob path relative to the container.
    pub path: String,
    pub day: Day,
    pub rows: u64,
    pub bytes: Option<u64>,
    pub source: ArtifactSource,
    /// When Kusto reported the file written.
    #[serde(with = "time::serde::rfc3339")]
    pub produced_at: OffsetDateTime,
}

/// How an artifact was produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum ArtifactSource {
    ContinuousExport {
        export: ExportName,
    },
    /// A batch of a backfill job (history before the export's StartCursor, or a gap).
    Backfill {
        job: JobId,
        batch: BatchId,
    },
}

/// Reader and appender of the catalog of every table.
pub struct Catalog<'a> {
    blobs: &'a BlobStore,
    layout: &'a Layout,
}

impl<'a> Catalog<'a> {
    pub fn new(blobs: &'a BlobStore, layout: &'a Layout) -> Self {
        Self { blobs, layout }
    }

    /// Writes segment `seq`. `StorageError::Conflict` means the segment already exists:
    /// an earlier attempt or another worker wrote it; read it back with [`Self::read_segment`].
    pub async fn append(
        &self,
        db: &DatabaseName,
        table: &TableName,
        seq: u64,
        artifacts: &[Artifact],
    ) -> Result<(), StorageError> {
        let path = self.layout.catalog_segment(db, table, seq);
        self.create_segment(&path, artifacts).await
    }

    /// Writes the segment of backfill batch `batch`. `StorageError::Conflict` means it is
    /// already cataloged (an earlier delivery did it); read it with [`Self::read_batch`].
    pub async fn append_batch(
        &self,
        db: &DatabaseName,
        table: &TableName,
        job: &JobId,
        batch: &BatchId,
        artifacts: &[Artifact],
    ) -> Result<(), StorageError> {
        let path = self.layout.backfill_catalog_segment(db, table, job, batch);
        self.create_segment(&path, artifacts).await
    }

    /// The segment of backfill batch `batch`, if it is cataloged.
    pub async fn read_batch(
        &self,
        db: &DatabaseName,
        table: &TableName,
        job: &JobId,
        batch: &BatchId,
    ) -> Result<Option<Vec<Artifact>>, StorageError> {
        let path = self.layout.backfill_catalog_segment(db, table, job, batch);
        match self.blobs.read_opt(&path).await? {
            Some((body, _)) => parse_segment(&path, &body).map(Some),
            None => Ok(None),
        }
    }

    async fn create_segment(&self, path: &str, artifacts: &[Artifact]) -> Result<(), StorageError> {
        let mut body = Vec::new();
        for artifact in artifacts {
            serde_json::to_writer(&mut body, artifact)
                .map_err(|e| StorageError::decode(path, e))?;
            body.push(b'\n');
        }
        self.blobs
            .create_new(path, Bytes::from(body))
            .await
            .map(|_| ())
    }

    /// Segment `seq`, if it exists.
    pub async fn read_segment(
        &self,
        db: &DatabaseName,
        table: &TableName,
        seq: u64,
    ) -> Result<Option<Vec<Artifact>>, StorageError> {
        let path = self.layout.catalog_segment(db, table, seq);
        match self.blobs.read_opt(&path).await? {
            Some((body, _)) => parse_segment(&path, &body).map(Some),
            None => Ok(None),
        }
    }

    /// One listing page of a table's catalog segments (continuous-export and backfill ones
    /// alike), from `marker`: for a reader that stops between steps and resumes later.
    pub async fn segment_page(
        &self,
        db: &DatabaseName,
        table: &TableName,
        marker: Option<&str>,
        page_size: u32,
    ) -> Result<ListPage, StorageError> {
        self.blobs
            .list_page(&self.layout.catalog_dir(db, table), marker, page_size)
            .await
    }

    /// The artifacts of the segment at `path`, as a listing names it.
    pub async fn read_path(&self, path: &str) -> Result<Vec<Artifact>, StorageError> {
        let (body, _) = self.blobs.read(path).await?;
        parse_segment(path, &body)
    }

    /// Every artifact of a table, in append order.
    pub fn stream(
        &self,
        db: &DatabaseName,
        table: &TableName,
    ) -> impl Stream<Item = Result<Artifact, StorageError>> + 'a {
        self.segments(db, table)
            .map_ok(|(_, artifacts)| stream::iter(artifacts.into_iter().map(Ok)))
            .try_flatten()
            .boxed()
    }

    /// Every segment of a table with its blob path, in append order, one at a time. The path
    /// says whether its artifacts are live ([`super::supersede::LiveSet::is_live`]).
    pub fn segments(
        &self,
        db: &DatabaseName,
        table: &TableName,
    ) -> impl Stream<Item = Result<(String, Vec<Artifact>), StorageError>> + 'a {
        let blobs = self.blobs;
        blobs
            .list(&self.layout.catalog_dir(db, table))
            .and_then(move |item| async move {
                let (body, _) = blobs.read(&item.path).await?;
                let artifacts = parse_segment(&item.path, &body)?;
                Ok((item.path, artifacts))
            })
            .boxed()
    }
}

/// The artifacts of a segment's body as read from `path`, one JSON line each. A line that is
/// not an artifact (a damaged blob) is `StorageError::Decode` naming the segment.
pub fn parse_segment(path: &str, body: &[u8]) -> Result<Vec<Artifact>, StorageError> {
    body.split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| serde_json::from_slice(line).map_err(|e| StorageError::decode(path, e)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_lines_still_decode_and_backfill_lines_round_trip() {
        // A line written before backfill existed.
        let old = r#"{"path":"backup/Sales/T/20240115/a.parquet","day":"20240115","rows":3,"bytes":10,"source":{"kind":"ContinuousExport","export":"adxbk_T"},"produced_at":"2024-01-15T10:00:00Z"}"#;
        let artifacts = parse_segment("seg", old.as_bytes()).unwrap();
        assert_eq!(artifacts[0].rows, 3);
        let backfill = Artifact {
            source: ArtifactSource::Backfill {
                job: JobId::new("bf-1").unwrap(),
                batch: BatchId::new("b000001").unwrap(),
            },
            ..artifacts[0].clone()
        };
        let line = serde_json::to_string(&backfill).unwrap();
        assert!(
            line.contains(r#""source":{"kind":"Backfill","job":"bf-1","batch":"b000001"}"#),
            "{line}"
        );
        assert_eq!(
            parse_segment("seg", line.as_bytes()).unwrap(),
            vec![backfill]
        );
    }

    #[test]
    fn damaged_segments_are_errors_not_panics_and_artifacts_survive_a_rewrite() {
        let segment = concat!(
            r#"{"path":"backup/Sales/T/20240115/a.parquet","day":"20240115","rows":3,"bytes":10,"source":{"kind":"ContinuousExport","export":"adxbk_T"},"produced_at":"2024-01-15T10:00:00Z"}"#,
            "\n",
            r#"{"path":"backup/Sales/T/00010101/b.parquet","day":"00010101","rows":18446744073709551615,"bytes":null,"source":{"kind":"Backfill","job":"bf-1","batch":"b000001"},"produced_at":"2024-01-15T10:00:00.123456789+05:30"}"#,
            "\n",
        );
        crate::mutate::check(0xca7a, &[segment.as_bytes()], |body| {
            let artifacts = parse_segment("seg", body)?;
            let mut again = Vec::new();
            for a in &artifacts {
                serde_json::to_writer(&mut again, a).unwrap();
                again.push(b'\n');
            }
            assert_eq!(parse_segment("seg", &again).unwrap(), artifacts);
            Ok::<_, StorageError>(())
        });
    }
}
