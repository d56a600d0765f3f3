//! The REST wire formats: V1 tables, V2 frames, and the OneAPI error object.

pub mod error;
pub mod v1;
pub mod v2;

use crate::error::SimError;
use crate::table::ResultTable;

/// What a query produced, ready to be encoded as V1 or V2.
#[derive(Debug, Clone)]
pub struct QueryOutcome {
    pub primary: ResultTable,
    /// The database cursor to report in `@ExtendedProperties` (set when a cursor
    /// predicate ran).
    pub cursor: Option<String>,
    /// A partial failure (e.g. result truncation): the rows are still returned.
    pub partial_error: Option<SimError>,
}

/// Identifiers echoed in error contexts and completion tables.
#[derive(Debug, Clone)]
pub struct RequestIds {
    pub client_request_id: String,
    pub activity_id: uuid::Uuid,
}
