//! Typed rows of the management commands whose results the capabilities read: a continuous
//! export as `.show continuous-export(s)` lists it, its failures, its exported artifacts, and
//! one resource of `.show capacity`.
//! Each reads its columns by name through [`Row`], so a missing or mistyped column is a
//! [`FrameError`] naming the table and column.

use std::time::Duration;

use time::OffsetDateTime;

use super::frames::{FrameError, KustoTable, Row};
use crate::ids::ExportName;

/// The rows of the primary (first) table of a management command's result.
fn primary_rows(tables: &[KustoTable]) -> impl Iterator<Item = Row<'_>> {
    tables.first().into_iter().flat_map(|t| t.rows())
}

/// One row of `.show continuous-export(s)`.
#[derive(Debug, Clone, PartialEq)]
pub struct ContinuousExportRow {
    pub name: ExportName,
    pub external_table: String,
    pub query: String,
    pub interval: Option<Duration>,
    pub disabled: bool,
    pub last_run_result: Option<String>,
    pub last_run_time: Option<OffsetDateTime>,
    pub exported_to: Option<OffsetDateTime>,
    pub start_cursor: Option<String>,
}

impl ContinuousExportRow {
    /// The row of export `name`, if the result lists it.
    pub fn find(tables: &[KustoTable], name: &ExportName) -> Result<Option<Self>, FrameError> {
        for row in primary_rows(tables) {
            if row.str("Name")? == name.as_str() {
                return Self::read(name, &row).map(Some);
            }
        }
        Ok(None)
    }

    /// Every row the result lists, e.g. all of `.show continuous-exports`. A row whose name
    /// is not a valid export name is skipped: it cannot be one adx-backup created.
    pub fn all(tables: &[KustoTable]) -> Result<Vec<Self>, FrameError> {
        let mut out = Vec::new();
        for row in primary_rows(tables) {
            if let Ok(name) = ExportName::new(row.str("Name")?) {
                out.push(Self::read(&name, &row)?);
            }
        }
        Ok(out)
    }

    fn read(name: &ExportName, row: &Row<'_>) -> Result<Self, FrameError> {
        Ok(Self {
            name: name.clone(),
            external_table: row.str("ExternalTableName")?.to_owned(),
            query: row.str("Query")?.to_owned(),
            interval: row.opt_timespan("IntervalBetweenRuns")?,
            disabled: row.opt_bool("IsDisabled")?.unwrap_or(false),
            last_run_result: row
                .opt_str("LastRunResult")?
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            last_run_time: row.opt_datetime("LastRunTime")?,
            exported_to: row.opt_datetime("ExportedTo")?,
            start_cursor: row.opt_str("StartCursor")?.map(str::to_owned),
        })
    }
}

/// One row of `.show continuous-export E failures`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportFailureRow {
    /// None when Kusto left the Timestamp empty.
    pub at: Option<OffsetDateTime>,
    pub kind: String,
    pub details: String,
}

impl ExportFailureRow {
    pub fn all(tables: &[KustoTable]) -> Result<Vec<Self>, FrameError> {
        primary_rows(tables)
            .map(|row| {
                Ok(Self {
                    at: row.opt_datetime("Timestamp")?,
                    kind: row.opt_str("FailureKind")?.unwrap_or_default().to_owned(),
                    details: row.opt_str("Details")?.unwrap_or_default().to_owned(),
                })
            })
            .collect()
    }
}

/// One row of `.show continuous-export E exported-artifacts`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedArtifactRow {
    /// The file's full URL, as the external table's connection string names it.
    pub path: String,
    pub num_records: i64,
    /// Optional: older clusters do not report it, and a bad value is not worth failing for.
    pub size_in_bytes: Option<i64>,
    pub timestamp: Option<OffsetDateTime>,
}

impl ExportedArtifactRow {
    pub fn all(tables: &[KustoTable]) -> Result<Vec<Self>, FrameError> {
        primary_rows(tables)
            .map(|row| {
                Ok(Self {
                    path: row.str("Path")?.to_owned(),
                    num_records: row.i64("NumRecords")?,
                    size_in_bytes: row.opt_i64("SizeInBytes").ok().flatten(),
                    timestamp: row.opt_datetime("Timestamp")?,
                })
            })
            .collect()
    }
}

/// One resource of `.show capacity`: how many operations of a kind the cluster runs at once
/// (<https://learn.microsoft.com/kusto/management/show-capacity-command>).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CapacityRow {
    pub resource: String,
    pub total: i64,
    pub consumed: i64,
    pub remaining: i64,
}

impl CapacityRow {
    /// Exports, continuous ones included.
    pub const DATA_EXPORT: &'static str = "DataExport";
    /// Ingestion operations.
    pub const INGESTIONS: &'static str = "Ingestions";

    /// The row of `resource`, if listed. Compared without case: the docs' sample prints
    /// `ingestions`, clusters answer `Ingestions` (docs/kusto.md, Capacity).
    pub fn find(tables: &[KustoTable], resource: &str) -> Result<Option<Self>, FrameError> {
        for row in primary_rows(tables) {
            let name = row.str("Resource")?;
            if name.eq_ignore_ascii_case(resource) {
                return Ok(Some(Self {
                    resource: name.to_owned(),
                    total: row.i64("Total")?,
                    consumed: row.i64("Consumed")?,
                    remaining: row.i64("Remaining")?,
                }));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kusto::frames::parse_v1;
    use serde_json::json;
    use time::macros::datetime;

    fn tables(columns: &[(&str, &str)], rows: serde_json::Value) -> Vec<KustoTable> {
        let columns: Vec<_> = columns
            .iter()
            .map(|(name, ty)| json!({"ColumnName": name, "ColumnType": ty}))
            .collect();
        let body = json!({"Tables":[{"TableName":"Table_0","Columns":columns,"Rows":rows}]});
        parse_v1(body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn continuous_export_row_by_name() {
        let t = tables(
            &[
                ("Name", "string"),
                ("ExternalTableName", "string"),
                ("Query", "string"),
                ("IntervalBetweenRuns", "timespan"),
                ("IsDisabled", "bool"),
                ("LastRunResult", "string"),
                ("LastRunTime", "datetime"),
                ("ExportedTo", "datetime"),
                ("StartCursor", "string"),
            ],
            json!([
                ["other", "x", "x", null, false, "", null, null, null],
                [
                    "ce_T",
                    "bk_T",
                    "['T']",
                    "00:05:00",
                    true,
                    "Failed",
                    "2026-11-25T10:00:00Z",
                    null,
                    "638"
                ],
            ]),
        );
        let name = ExportName::new("ce_T").unwrap();
        let row = ContinuousExportRow::find(&t, &name).unwrap().unwrap();
        assert_eq!(row.external_table, "bk_T");
        assert_eq!(row.interval, Some(Duration::from_secs(300)));
        assert!(row.disabled);
        assert_eq!(row.last_run_result.as_deref(), Some("Failed"));
        assert_eq!(row.last_run_time, Some(datetime!(2026-11-25 10:00 UTC)));
        assert_eq!(row.exported_to, None);
        assert_eq!(row.start_cursor.as_deref(), Some("638"));
        let missing = ExportName::new("ce_U").unwrap();
        assert_eq!(ContinuousExportRow::find(&t, &missing).unwrap(), None);
        let all = ContinuousExportRow::all(&t).unwrap();
        assert_eq!(
            all.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["other", "ce_T"]
        );
        assert_eq!(all[1], row);
    }

    #[test]
    fn a_missing_column_names_itself() {
        let t = tables(&[("Name", "string")], json!([["ce_T"]]));
        let err = ContinuousExportRow::find(&t, &ExportName::new("ce_T").unwrap()).unwrap_err();
        assert_eq!(err.column, "ExternalTableName");
    }

    #[test]
    fn capacity_rows_by_resource_whatever_the_case() {
        let t = tables(
            &[
                ("Resource", "string"),
                ("Total", "long"),
                ("Consumed", "long"),
                ("Remaining", "long"),
            ],
            json!([["ingestions", 576, 1, 575], ["DataExport", 8, 8, 0]]),
        );
        let export = CapacityRow::find(&t, CapacityRow::DATA_EXPORT).unwrap();
        assert_eq!(
            export,
            Some(CapacityRow {
                resource: "DataExport".into(),
                total: 8,
                consumed: 8,
                remaining: 0
            })
        );
        let ingest = CapacityRow::find(&t, CapacityRow::INGESTIONS)
            .unwrap()
            .unwrap();
        assert_eq!((ingest.total, ingest.remaining), (576, 575));
        assert_eq!(CapacityRow::find(&t, "ExtentsMerge").unwrap(), None);
    }

    #[test]
    fn failures_and_artifacts() {
        let f = tables(
            &[
                ("Timestamp", "datetime"),
                ("FailureKind", "string"),
                ("Details", "string"),
            ],
            json!([
                ["2026-11-25T10:00:00Z", "Permanent", "boom"],
                [null, null, null]
            ]),
        );
        let rows = ExportFailureRow::all(&f).unwrap();
        assert_eq!(rows[0].at, Some(datetime!(2026-11-25 10:00 UTC)));
        assert_eq!(
            (rows[0].kind.as_str(), rows[0].details.as_str()),
            ("Permanent", "boom")
        );
        assert_eq!(
            rows[1],
            ExportFailureRow {
                at: None,
                kind: String::new(),
                details: String::new()
            }
        );

        let a = tables(
            &[
                ("Timestamp", "datetime"),
                ("Path", "string"),
                ("NumRecords", "long"),
                ("SizeInBytes", "long"),
            ],
            json!([[
                "2026-11-25T10:00:00Z",
                "https://a/c/x.parquet",
                10,
                "not a number"
            ]]),
        );
        let rows = ExportedArtifactRow::all(&a).unwrap();
        assert_eq!(rows[0].path, "https://a/c/x.parquet");
        assert_eq!((rows[0].num_records, rows[0].size_in_bytes), (10, None));
        let bad = tables(
            &[("Path", "string"), ("NumRecords", "long")],
            json!([["p", "ten"]]),
        );
        assert_eq!(
            ExportedArtifactRow::all(&bad).unwrap_err().column,
            "NumRecords"
        );
    }
}
