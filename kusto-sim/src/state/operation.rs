//! Async operations (`.export async`, `.ingest async`, ...) as `.show operations` sees them.

use uuid::Uuid;

use crate::table::ResultTable;
use crate::value::Value;
use crate::value::temporal::{TICKS_PER_DAY, TICKS_PER_SECOND};

pub const SHOW_SCHEMA: &str = "(OperationId: guid, Operation: string, NodeId: string, StartedOn: datetime, LastUpdatedOn: datetime, Duration: timespan, State: string, Status: string, RootActivityId: guid, ShouldRetry: bool, Database: string, Principal: string, User: string, AdminEpochStartTime: datetime, VirtualCluster: string)";

/// An operation lives in `.show operations (id)` for 6 hours after its last update...
pub const BY_ID_WINDOW: i64 = 6 * 3600 * TICKS_PER_SECOND;
/// ...and in the history form, `.show operations`, for two weeks (`.show operations` page).
pub const HISTORY_WINDOW: i64 = 14 * TICKS_PER_DAY;

/// The states the `.show operations` page lists (its "State table"). Pollers must handle
/// each; [`crate::Sim::set_operation_state`] puts an operation in any of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationState {
    InProgress,
    Completed,
    Failed,
    PartiallySucceeded,
    Abandoned,
    BadInput,
    Scheduled,
    Throttled,
    Canceled,
    Skipped,
}

impl OperationState {
    pub fn name(self) -> &'static str {
        match self {
            Self::InProgress => "InProgress",
            Self::Completed => "Completed",
            Self::Failed => "Failed",
            Self::PartiallySucceeded => "PartiallySucceeded",
            Self::Abandoned => "Abandoned",
            Self::BadInput => "BadInput",
            Self::Scheduled => "Scheduled",
            Self::Throttled => "Throttled",
            Self::Canceled => "Canceled",
            Self::Skipped => "Skipped",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Operation {
    pub id: Uuid,
    /// Kusto's operation kind, e.g. `TableExport`, `DataIngestPull`.
    pub kind: &'static str,
    pub database: String,
    pub started_on: i64,
    pub last_updated_on: i64,
    pub state: OperationState,
    pub status: String,
    pub should_retry: bool,
    /// The command's synchronous result, shown by `.show operation <id> details` once the
    /// operation has completed.
    pub details: Option<ResultTable>,
}

impl Operation {
    pub fn start(kind: &'static str, database: &str, now: i64) -> Self {
        Self {
            id: Uuid::new_v4(),
            kind,
            database: database.to_string(),
            started_on: now,
            last_updated_on: now,
            state: OperationState::InProgress,
            status: String::new(),
            should_retry: false,
            details: None,
        }
    }

    pub fn complete(&mut self, details: ResultTable, now: i64) {
        self.state = OperationState::Completed;
        self.details = Some(details);
        self.last_updated_on = now;
    }

    pub fn fail(&mut self, status: String, should_retry: bool, now: i64) {
        self.state = OperationState::Failed;
        self.status = status;
        self.should_retry = should_retry;
        self.last_updated_on = now;
    }

    /// Ends the operation in `state` with `status` as its Status text.
    pub fn end(&mut self, state: OperationState, status: String, now: i64) {
        self.state = state;
        self.status = status;
        self.last_updated_on = now;
    }

    /// Whether `.show operations` still lists it at `now` (by id, or in the history form).
    pub fn visible(&self, now: i64, by_id: bool) -> bool {
        let window = if by_id { BY_ID_WINDOW } else { HISTORY_WINDOW };
        now - self.last_updated_on < window
    }

    pub fn push_row(&self, out: &mut ResultTable) {
        out.push(vec![
            Value::Guid(self.id),
            Value::String(self.kind.to_string()),
            Value::String("KSEngine000000".into()),
            Value::DateTime(self.started_on),
            Value::DateTime(self.last_updated_on),
            Value::TimeSpan(self.last_updated_on - self.started_on),
            Value::String(self.state.name().to_string()),
            Value::String(self.status.clone()),
            Value::Guid(self.id),
            Value::Bool(self.should_retry),
            Value::String(self.database.clone()),
            Value::String("aadapp=kusto-sim".into()),
            Value::String(String::new()),
            Value::DateTime(0),
            Value::String(String::new()),
        ]);
    }
}
