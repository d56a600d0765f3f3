//! What can go wrong in a backfill, with the table, job or batch it happened in.

use crate::ids::{BatchRef, Day, JobId, TableRef};
use crate::kusto::StepError;
use crate::protect::ProtectError;
use crate::retry::Retryable;
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum BackfillError {
    #[error("backfill {0}")]
    Kusto(#[from] StepError),
    #[error("backfill could not read what protect knows of the table: {0}")]
    Protect(#[from] ProtectError),
    #[error("backfill could not {what}: {source}")]
    Storage {
        what: String,
        #[source]
        source: Box<StorageError>,
    },
    #[error(
        "{table} has no continuous export StartCursor yet, so its history has no upper bound; run protect first and let the export run once"
    )]
    NotProtected { table: TableRef },
    #[error("{batch} is not in its job's state; the job document was removed or replaced")]
    UnknownBatch { batch: BatchRef },
    #[error("{table}: cannot name a backfill object: {message}")]
    BadName { table: TableRef, message: String },
    #[error("{table}: {message}")]
    Unexpected { table: TableRef, message: String },
    #[error(
        "{table} day {day} cannot be reconciled: {reason}. Nothing was changed; the backup of the day stays as it is"
    )]
    NotReconcilable {
        table: TableRef,
        day: Day,
        reason: String,
    },
    #[error(
        "{table} day {day}: reconcile job {job} exported {exported} row(s) but the source holds {source_rows} for the same bound; the swap was NOT made and the old set stays live. Run verify again; a new verification starts a new reconcile job"
    )]
    CountMismatch {
        table: TableRef,
        day: Day,
        job: JobId,
        exported: u64,
        source_rows: u64,
    },
    #[error("backfill job {path} is being changed by many workers at once; trying again later")]
    Contended { path: String },
}

impl BackfillError {
    pub(crate) fn storage(what: impl Into<String>, source: StorageError) -> Self {
        Self::Storage {
            what: what.into(),
            source: Box::new(source),
        }
    }

    /// Kusto ran out of memory or time for the work: it must be split, not retried as is.
    pub fn needs_smaller_batch(&self) -> bool {
        match self {
            Self::Kusto(e) | Self::Protect(ProtectError::Kusto(e)) => {
                e.source.needs_smaller_batch()
            }
            _ => false,
        }
    }

    pub(crate) fn name(table: &TableRef, e: impl std::fmt::Display) -> Self {
        Self::BadName {
            table: table.clone(),
            message: e.to_string(),
        }
    }
}

impl Retryable for BackfillError {
    /// Worth another delivery: throttling, 5xx, network, a lost ETag race.
    fn is_transient(&self) -> bool {
        match self {
            Self::Kusto(e) => e.source.is_transient(),
            Self::Protect(e) => e.is_transient(),
            Self::Storage { source, .. } => source.is_transient() || source.is_conflict(),
            Self::Contended { .. } => true,
            Self::NotProtected { .. }
            | Self::UnknownBatch { .. }
            | Self::BadName { .. }
            | Self::Unexpected { .. }
            | Self::NotReconcilable { .. }
            | Self::CountMismatch { .. } => false,
        }
    }
}
