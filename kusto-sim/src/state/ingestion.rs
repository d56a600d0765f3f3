//! Queued ingestion as the data-management service keeps it: the queue and container
//! names it hands out, the identity token it checks, and the failures the engine records.

use uuid::Uuid;

use crate::table::ResultTable;
use crate::value::Value;
use crate::value::temporal::TICKS_PER_DAY;

pub const RESOURCES_SCHEMA: &str = "(ResourceTypeName: string, StorageRoot: string)";
pub const IDENTITY_TOKEN_SCHEMA: &str = "(AuthorizationContext: string)";
/// `.show ingestion failures` as the command's page documents it (the page gives `int`
/// for Principal, User and IngestionProperties, which are texts in its own sample).
pub const FAILURES_SCHEMA: &str = "(OperationId: string, Database: string, Table: string, FailedOn: datetime, IngestionSourcePath: string, Details: string, FailureKind: string, RootActivityId: string, OperationKind: string, OriginatesFromUpdatePolicy: bool, ErrorCode: string, Principal: string, User: string, IngestionProperties: string, NumberOfSources: int, ShouldRetry: bool)";
/// Ingestion failures are kept 14 days (`.show ingestion failures` page).
pub const FAILURE_RETENTION: i64 = 14 * TICKS_PER_DAY;
/// How many `SecuredReadyForAggregationQueue`s the service offers; more than one, so
/// clients exercise their rotation over queues.
pub const READY_QUEUES: usize = 2;

/// The storage names one simulated data-management service uses, unique per simulator so
/// simulators sharing an Azurite never read each other's queues.
#[derive(Debug, Clone)]
pub struct IngestionResources {
    pub ready_queues: Vec<String>,
    pub success_queue: String,
    pub failure_queue: String,
    pub temp_container: String,
    /// What `.get kusto identity token` answers and every message must carry.
    pub authorization_context: String,
}

impl IngestionResources {
    pub fn new() -> Self {
        let id = Uuid::new_v4().simple().to_string();
        let short = &id[..12];
        Self {
            ready_queues: (0..READY_QUEUES)
                .map(|i| format!("ks{short}-readyforaggregation-secured-{i}"))
                .collect(),
            success_queue: format!("ks{short}-successfulingestions"),
            failure_queue: format!("ks{short}-failedingestions"),
            temp_container: format!("ks{short}-tempstorage"),
            authorization_context: format!("kusto-sim-identity-token-{}", Uuid::new_v4()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureStatus {
    Permanent,
    Transient,
}

impl FailureStatus {
    pub fn name(self) -> &'static str {
        match self {
            Self::Permanent => "Permanent",
            Self::Transient => "Transient",
        }
    }
}

/// One failed source, as `.show ingestion failures` lists it.
#[derive(Debug, Clone)]
pub struct IngestionFailure {
    pub operation_id: Uuid,
    pub database: String,
    pub table: String,
    pub failed_on: i64,
    pub source_path: String,
    pub details: String,
    pub status: FailureStatus,
    pub root_activity_id: Uuid,
    pub error_code: &'static str,
}

impl IngestionFailure {
    pub fn push_row(&self, out: &mut ResultTable) {
        let transient = self.status == FailureStatus::Transient;
        out.push(vec![
            Value::String(self.operation_id.to_string()),
            Value::String(self.database.clone()),
            Value::String(self.table.clone()),
            Value::DateTime(self.failed_on),
            Value::String(self.source_path.clone()),
            Value::String(self.details.clone()),
            Value::String(self.status.name().to_string()),
            Value::String(self.root_activity_id.to_string()),
            Value::String("DataIngestPull".into()),
            Value::Bool(false),
            Value::String(self.error_code.to_string()),
            Value::String("aadapp=kusto-sim".into()),
            Value::String(String::new()),
            Value::String(String::new()),
            Value::Int(1),
            Value::Bool(transient),
        ]);
    }
}
