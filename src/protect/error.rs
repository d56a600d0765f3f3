//! What can go wrong while protecting, with the database, table and step it happened in.

use crate::ids::{DatabaseName, NameError, TableName};
use crate::kusto::StepError;
use crate::retry::Retryable;
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum ProtectError {
    #[error("protect {0}")]
    Kusto(#[from] StepError),
    #[error("protect could not {what}: {source}")]
    Storage {
        what: String,
        #[source]
        source: Box<StorageError>,
    },
    #[error("database {database} lists a table whose name adx-backup cannot use: {source}")]
    BadName {
        database: DatabaseName,
        #[source]
        source: NameError,
    },
    #[error("database {database}: {message}; check that adx-backup may read its schema")]
    DatabaseSchema {
        database: DatabaseName,
        message: String,
    },
    #[error("database {database}, table {table}: {message}")]
    Unexpected {
        database: DatabaseName,
        table: TableName,
        message: String,
    },
    #[error(
        "{failed} database(s) or table(s) could not be protected (tables record it in their state):\n{report}"
    )]
    TablesFailed { failed: usize, report: String },
}

impl ProtectError {
    pub(crate) fn storage(what: impl Into<String>, source: StorageError) -> Self {
        Self::Storage {
            what: what.into(),
            source: Box::new(source),
        }
    }

    /// Another worker changed a document first (an ETag race): redoing the step from a fresh
    /// read settles it.
    pub(crate) fn is_lost_race(&self) -> bool {
        matches!(self, Self::Storage { source, .. } if source.is_conflict())
    }
}

impl Retryable for ProtectError {
    /// Worth another delivery of the task: throttling, 5xx, network, and a lost ETag race
    /// (the retry starts from a fresh read).
    fn is_transient(&self) -> bool {
        match self {
            Self::Kusto(e) => e.source.is_transient(),
            Self::Storage { source, .. } => source.is_transient() || source.is_conflict(),
            Self::BadName { .. }
            | Self::DatabaseSchema { .. }
            | Self::Unexpected { .. }
            | Self::TablesFailed { .. } => false,
        }
    }
}
