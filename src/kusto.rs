//! Kusto: the REST client, its wire formats and the one command builder.
//!
//! - [`command`] is the only code that writes KQL: every identifier quoted, every literal
//!   escaped, built from the validated names in [`crate::ids`].
//! - [`client`] sends a [`Command`] to `/v1/rest/mgmt` or `/v2/rest/query` with a token from
//!   [`auth`], and retries what [`error`] classifies as transient through the one
//!   [`crate::retry::RetryPolicy`].
//! - [`frames`] parses V1 and V2 responses into [`KustoTable`]s read by column name; [`rows`]
//!   and [`operations`] read the results capabilities rely on into typed rows.
//! - [`step`] runs a management command as a named step of a capability, so its errors name
//!   the database, table and step.
//!
//! Callers see typed tables and a [`KustoError`] that says what failed, where, and what to do.

pub mod auth;
pub mod client;
pub mod command;
pub mod error;
pub mod frames;
pub mod operations;
pub mod rows;
mod service_error;
pub mod step;
pub mod types;

pub use client::KustoClient;
pub use command::{Command, CommandKind, Query, QueryBuilder};
pub use error::{ErrorClass, KustoError};
pub use frames::{FrameError, KustoTable, QueryResult, Row};
pub use operations::{OperationFailure, OperationRow, OperationState};
pub use rows::{CapacityRow, ContinuousExportRow, ExportFailureRow, ExportedArtifactRow};
pub use step::{Step, StepError};
pub use types::KustoType;
