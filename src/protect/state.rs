//! The per-table protection state document (`$state/tables/<db>/<table>.json`): what protect
//! created, the catalog harvest's progress, the export's health, the start cursor the
//! backfill starts from, and the last permanent failure. `status` reads it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::TableRef;
use crate::ids::{ColumnName, Cursor, DatabaseName, ExportName, TableName};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableState {
    pub database: DatabaseName,
    pub table: TableName,
    pub protection: Protection,
    /// The export's StartCursor: rows at or before it are history for the backfill; rows
    /// after it are exported continuously.
    pub start_cursor: Option<Cursor>,
    /// The StartCursor a backfill of the history was asked for (the task sent).
    #[serde(default)]
    pub backfill_requested: Option<Cursor>,
    /// The StartCursor of the continuous export as last seen (it moves when the export is
    /// re-created), and how far that export had exported (`ExportedTo`).
    #[serde(default)]
    pub export_start_cursor: Option<Cursor>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub export_exported_to: Option<OffsetDateTime>,
    /// Windows the continuous export did not cover, each closed by its own backfill.
    #[serde(default)]
    pub gaps: Vec<Gap>,
    /// How many of `gaps` a backfill was asked for.
    #[serde(default)]
    pub gaps_requested: usize,
    pub harvest: HarvestState,
    pub health: Option<ExportHealth>,
    pub last_error: Option<RecordedError>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
}

/// Whether the table is backed up, and with what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Protection {
    /// Not looked at yet.
    New,
    Protected {
        external_table: TableName,
        export: ExportName,
        /// The datetime column whose day names the folder; None writes to `00010101`.
        partition_column: Option<ColumnName>,
        /// Fingerprint of the external table definition, also kept in its DocString.
        fingerprint: String,
    },
    /// In scope but not backed up, and why (shown by `status`).
    Unprotected { reason: String },
}

impl Protection {
    pub fn summary(&self) -> String {
        match self {
            Protection::New => "not checked yet".into(),
            Protection::Protected {
                partition_column: Some(c),
                ..
            } => format!("protected, partitioned by day of {c}"),
            Protection::Protected {
                partition_column: None,
                ..
            } => "protected, no datetime column (files under 00010101)".into(),
            Protection::Unprotected { reason } => format!("UNPROTECTED: {reason}"),
        }
    }
}

/// Progress of copying `exported-artifacts` into the catalog.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HarvestState {
    /// The newest artifact Timestamp harvested.
    #[serde(with = "time::serde::rfc3339::option")]
    pub watermark: Option<OffsetDateTime>,
    /// Paths harvested within the overlap window before the watermark, so re-reading that
    /// window (an export run can report late) never appends a file twice.
    pub recent: BTreeMap<String, i64>,
    /// The catalog segment the next harvest writes.
    pub next_segment: u64,
    pub artifacts: u64,
    pub rows: u64,
}

/// The continuous export as last seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportHealth {
    #[serde(with = "time::serde::rfc3339")]
    pub checked_at: OffsetDateTime,
    /// now − ExportedTo, in seconds; None before the first successful run.
    pub lag_seconds: Option<i64>,
    pub last_run_result: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_run_time: Option<OffsetDateTime>,
    pub disabled: bool,
    /// Failures reported since the previous check (the newest few).
    pub recent_failures: Vec<ExportFailure>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportFailure {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub kind: String,
    pub details: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedError {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub message: String,
}

impl TableState {
    pub fn new(t: &TableRef) -> Self {
        Self {
            database: t.database.clone(),
            table: t.table.clone(),
            protection: Protection::New,
            start_cursor: None,
            backfill_requested: None,
            export_start_cursor: None,
            export_exported_to: None,
            gaps: Vec::new(),
            gaps_requested: 0,
            harvest: HarvestState::default(),
            health: None,
            last_error: None,
            updated_at: None,
        }
    }
}

/// A window the continuous export did not cover, to be backfilled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    #[serde(with = "time::serde::rfc3339")]
    pub found_at: OffsetDateTime,
    pub reason: String,
    /// Rows committed after this cursor (the old export's StartCursor)...
    pub after_cursor: Cursor,
    /// ...and ingested after this time (the old export's last `ExportedTo`; None when it
    /// never exported anything)...
    #[serde(with = "time::serde::rfc3339::option")]
    pub ingested_after: Option<OffsetDateTime>,
    /// ...up to and including this cursor (the new export's StartCursor).
    pub until_cursor: Cursor,
}
