//! The typed result of `.show operations`: the state of an asynchronous command (`.export
//! async`, `.ingest async`) that a poller waits on.
//!
//! Kusto reports these states: InProgress, Scheduled, Completed, Failed, PartiallySucceeded,
//! Skipped, Throttled, Abandoned, BadInput and Canceled (also spelled Cancelled). A state this
//! version does not know is kept as [`OperationState::Other`], never a panic; a poller treats
//! it as still running and logs it.

use std::fmt;

use time::OffsetDateTime;

use super::error::{ErrorClass, classify};
use super::frames::{FrameError, KustoTable};
use super::service_error::ServiceError;
use crate::ids::OperationId;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationState {
    InProgress,
    Scheduled,
    Completed,
    Failed,
    PartiallySucceeded,
    Skipped,
    Throttled,
    Abandoned,
    BadInput,
    Cancelled,
    Other(String),
}

impl OperationState {
    pub fn parse(state: &str) -> Self {
        match state {
            "InProgress" => Self::InProgress,
            "Scheduled" => Self::Scheduled,
            "Completed" => Self::Completed,
            "Failed" => Self::Failed,
            "PartiallySucceeded" => Self::PartiallySucceeded,
            "Skipped" => Self::Skipped,
            "Throttled" => Self::Throttled,
            "Abandoned" => Self::Abandoned,
            "BadInput" => Self::BadInput,
            "Canceled" | "Cancelled" => Self::Cancelled,
            other => Self::Other(other.to_owned()),
        }
    }

    /// True when the operation will not change any more.
    pub fn is_final(&self) -> bool {
        !matches!(
            self,
            Self::InProgress | Self::Scheduled | Self::Throttled | Self::Other(_)
        )
    }

    /// True when the operation failed, wholly or in part.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            Self::Failed
                | Self::PartiallySucceeded
                | Self::Abandoned
                | Self::BadInput
                | Self::Cancelled
        )
    }
}

impl fmt::Display for OperationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Other(state) => f.write_str(state),
            known => write!(f, "{known:?}"),
        }
    }
}

/// One row of `.show operations`.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationRow {
    pub id: OperationId,
    /// The command kind, e.g. `ExportToExternalTable`, `DataIngestPull`.
    pub operation: String,
    pub state: OperationState,
    /// Kusto's text for the state; the error message when it failed.
    pub status: String,
    /// Kusto's own judgement whether running the command again may succeed.
    pub should_retry: bool,
    pub last_updated: Option<OffsetDateTime>,
}

/// Why an operation failed, classified like a failed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationFailure {
    pub class: ErrorClass,
    pub message: String,
}

impl OperationRow {
    /// Every row of the result. `.show operations <ids>` gives one row per id.
    pub fn all(tables: &[KustoTable]) -> Result<Vec<Self>, FrameError> {
        let rows = tables.first().into_iter().flat_map(|t| t.rows());
        rows.map(|row| {
            Ok(Self {
                id: OperationId::new(row.str("OperationId")?),
                operation: row.opt_str("Operation")?.unwrap_or_default().to_owned(),
                state: OperationState::parse(row.str("State")?),
                status: row.opt_str("Status")?.unwrap_or_default().to_owned(),
                should_retry: row.opt_bool("ShouldRetry")?.unwrap_or(false),
                last_updated: row.opt_datetime("LastUpdatedOn")?,
            })
        })
        .collect()
    }

    /// The classified failure of a failed (or throttled) operation; None otherwise. The status
    /// text is classified like an error message (a low-memory condition says to split the
    /// work), and ShouldRetry decides between transient and permanent.
    pub fn failure(&self) -> Option<OperationFailure> {
        let class = match self.state {
            OperationState::Throttled => ErrorClass::Throttled,
            ref s if s.is_failure() => {
                let error = ServiceError {
                    permanent: Some(!self.should_retry),
                    ..ServiceError::from_text(self.status.clone())
                };
                classify(None, Some(&error))
            }
            _ => return None,
        };
        Some(OperationFailure {
            class,
            message: self.status.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kusto::frames::parse_v1;
    use serde_json::json;

    fn rows(data: serde_json::Value) -> Vec<OperationRow> {
        let columns: Vec<_> = [
            ("OperationId", "guid"),
            ("Operation", "string"),
            ("State", "string"),
            ("Status", "string"),
            ("ShouldRetry", "bool"),
            ("LastUpdatedOn", "datetime"),
        ]
        .iter()
        .map(|(n, t)| json!({"ColumnName": n, "ColumnType": t}))
        .collect();
        let body = json!({"Tables":[{"TableName":"Table_0","Columns":columns,"Rows":data}]});
        OperationRow::all(&parse_v1(body.to_string().as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn every_documented_state_parses_and_unknown_ones_are_kept() {
        let cases = [
            ("InProgress", OperationState::InProgress, false),
            ("Scheduled", OperationState::Scheduled, false),
            ("Completed", OperationState::Completed, true),
            ("Failed", OperationState::Failed, true),
            (
                "PartiallySucceeded",
                OperationState::PartiallySucceeded,
                true,
            ),
            ("Skipped", OperationState::Skipped, true),
            ("Throttled", OperationState::Throttled, false),
            ("Abandoned", OperationState::Abandoned, true),
            ("BadInput", OperationState::BadInput, true),
            ("Canceled", OperationState::Cancelled, true),
            ("Cancelled", OperationState::Cancelled, true),
            (
                "Pondering",
                OperationState::Other("Pondering".into()),
                false,
            ),
            ("", OperationState::Other(String::new()), false),
        ];
        for (text, state, final_) in cases {
            let parsed = OperationState::parse(text);
            assert_eq!(parsed, state, "{text}");
            assert_eq!(parsed.is_final(), final_, "{text}");
        }
        assert_eq!(OperationState::parse("Pondering").to_string(), "Pondering");
        assert_eq!(OperationState::Completed.to_string(), "Completed");
    }

    #[test]
    fn failures_are_classified_from_status_and_should_retry() {
        let id = "8b1a2c3d-0000-4000-8000-000000000001";
        let ops = rows(json!([
            [
                id,
                "ExportToExternalTable",
                "Completed",
                "",
                false,
                "2026-11-25T10:00:00Z"
            ],
            [
                id,
                "ExportToExternalTable",
                "Failed",
                "Query execution lacks memory resources to complete (80DA0007): Partial query failure: Low memory condition (E_LOW_MEMORY_CONDITION).",
                false,
                null
            ],
            [
                id,
                "ExportToExternalTable",
                "Failed",
                "Storage account unreachable",
                true,
                null
            ],
            [
                id,
                "DataIngestPull",
                "Failed",
                "Blob not found",
                false,
                null
            ],
            [
                id,
                "DataIngestPull",
                "Throttled",
                "Too many operations",
                true,
                null
            ],
            [id, "DataIngestPull", "Mystery", "", false, null],
        ]));
        assert_eq!(ops[0].id.as_str(), id);
        assert_eq!(ops[0].failure(), None);
        let classes: Vec<_> = ops.iter().map(|o| o.failure().map(|f| f.class)).collect();
        assert_eq!(
            classes,
            vec![
                None,
                Some(ErrorClass::LowMemory),
                Some(ErrorClass::Transient),
                Some(ErrorClass::Permanent),
                Some(ErrorClass::Throttled),
                None,
            ]
        );
        assert_eq!(ops[3].failure().unwrap().message, "Blob not found");
        assert_eq!(ops[5].state, OperationState::Other("Mystery".into()));
    }
}
