//! Kusto failures, classified once, here, from what the service actually sends: the HTTP
//! status and the error JSON (`error.code`, `@type`, `@permanent`, `innererror.code`, and the
//! documented error-code constants such as `E_LOW_MEMORY_CONDITION` inside `@message`).
//!
//! The retry policy ([`crate::retry`]) only asks [`Retryable::is_transient`]: throttling and
//! transient failures are retried; everything else is returned at once. Low memory and runaway
//! queries are their own variants and are *not* retried by the client, because the same
//! command would fail the same way: the backfill splits the batch instead.
//!
//! Every variant names the command (its first line), the database and the request id, and says
//! what to do. Tokens never appear in an error.

use std::fmt;
use std::time::Duration;

use crate::kusto::frames::FrameError;
use crate::retry::Retryable;

pub(crate) use super::service_error::ErrorEnvelope;
pub use super::service_error::ServiceError;

/// A boxed cause, for sources of different types (HTTP, JSON).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Which request failed: enough to find it in Kusto's logs (`.show commands-and-queries`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    pub database: String,
    /// The command's first line, cut at 200 characters.
    pub command: String,
    /// The `x-ms-client-request-id` of the failing attempt.
    pub request_id: String,
}

impl fmt::Display for RequestContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` on database {} (client request id {})",
            self.command, self.database, self.request_id
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KustoError {
    #[error(
        "Kusto throttled {ctx}: {message}. Retried with backoff; if this persists, run fewer exports or ingestions at once or raise the cluster's capacity (see `.show capacity`)"
    )]
    Throttled {
        ctx: RequestContext,
        message: String,
        retry_after: Option<Duration>,
    },

    #[error(
        "transient Kusto failure for {ctx}{}: {message}. Retried with backoff; if it persists, check the cluster's health and the network path to it",
        status.map(|s| format!(" (HTTP {s})")).unwrap_or_default()
    )]
    Transient {
        ctx: RequestContext,
        status: Option<u16>,
        message: String,
        #[source]
        source: Option<BoxError>,
    },

    #[error(
        "Kusto ran low on memory for {ctx}: {message}. Split the work into smaller batches (E_LOW_MEMORY_CONDITION)"
    )]
    LowMemory {
        ctx: RequestContext,
        message: String,
    },

    #[error(
        "Kusto stopped a runaway query for {ctx}: {message}. Split the work into smaller batches (E_RUNAWAY_QUERY)"
    )]
    RunawayQuery {
        ctx: RequestContext,
        message: String,
    },

    #[error(
        "Kusto reported a partial failure for {ctx}{}: {message}. The results are incomplete and were not used",
        code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default()
    )]
    PartialFailure {
        ctx: RequestContext,
        code: Option<String>,
        message: String,
    },

    #[error(
        "Kusto rejected {ctx} (HTTP {status}, {code}): {message}. Retrying will not help: fix the command or the object it names"
    )]
    Permanent {
        ctx: RequestContext,
        status: u16,
        code: String,
        message: String,
    },

    #[error(
        "Kusto did not accept the credentials for {ctx} (HTTP 401): {message}. Check that the token scope (AdxBackup__TokenScope) matches the cluster, and grant the app's identity a role on the database, e.g. `.add database ['{db}'] admins ('aadapp=<client id>;<tenant id>')`",
        db = ctx.database
    )]
    Unauthorized {
        ctx: RequestContext,
        message: String,
    },

    #[error(
        "the app's identity may not run {ctx} (HTTP 403): {message}. Grant it the role the command needs on the database (Database Admin on each source database for protect and backfill, Database Ingestor or Admin on a restore target; docs/deploy.md lists each command's role), e.g. `.add database ['{db}'] admins ('aadapp=<client id>;<tenant id>')`",
        db = ctx.database
    )]
    Forbidden {
        ctx: RequestContext,
        message: String,
    },

    /// The cluster's own identity was refused by storage: the command was fine and the app's
    /// role too, but Kusto could not read or write the blobs it names.
    #[error(
        "storage refused the cluster's identity for {ctx}: {message}. Grant the cluster's identity (AdxBackup__ClusterStorageAuth) Storage Blob Data Contributor on the backup container (infra/adx-setup.kql, step 4)"
    )]
    StorageDenied {
        ctx: RequestContext,
        message: String,
    },

    #[error(
        "Kusto's answer to {ctx} could not be read: {detail}. This is a bug in adx-backup or in kusto-sim; report it with the request id"
    )]
    Protocol {
        ctx: RequestContext,
        detail: String,
        #[source]
        source: Option<BoxError>,
    },

    #[error("could not get a token for scope {scope} from {credential}: {hint}")]
    Auth {
        scope: String,
        credential: &'static str,
        hint: &'static str,
        #[source]
        source: Box<azure_core::Error>,
    },

    #[error("could not set up the Kusto client: {what}")]
    Setup {
        what: String,
        #[source]
        source: Option<BoxError>,
    },

    #[error(
        "a Kusto result does not have the expected shape: {0}. The command's result schema changed, or kusto-sim differs from Kusto"
    )]
    UnexpectedShape(#[from] FrameError),
}

impl KustoError {
    /// True when the work should be split into smaller pieces rather than retried as is.
    pub fn needs_smaller_batch(&self) -> bool {
        matches!(self, Self::LowMemory { .. } | Self::RunawayQuery { .. })
    }
}

impl Retryable for KustoError {
    fn is_transient(&self) -> bool {
        matches!(self, Self::Throttled { .. } | Self::Transient { .. })
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Throttled { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Documented names of the low-memory condition: the error constant, its HRESULT, the subcode.
const LOW_MEMORY: &[&str] = &["E_LOW_MEMORY_CONDITION", "0x80DA0007", "LowMemoryCondition"];
/// Documented names of a runaway query.
const RUNAWAY: &[&str] = &["E_RUNAWAY_QUERY", "0x80DA0001", "RunawayQuery"];

/// What a failure means for the caller; the client turns it into a [`KustoError`] variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Throttled,
    Transient,
    LowMemory,
    RunawayQuery,
    Unauthorized,
    Forbidden,
    StorageDenied,
    Permanent,
}

/// Classifies a failure from its HTTP status (None inside a 200 response) and error JSON.
/// Memory conditions win over everything: retrying them as they are cannot succeed.
pub(crate) fn classify(status: Option<u16>, error: Option<&ServiceError>) -> ErrorClass {
    if let Some(e) = error {
        if e.mentions(LOW_MEMORY) {
            return ErrorClass::LowMemory;
        }
        if e.mentions(RUNAWAY) {
            return ErrorClass::RunawayQuery;
        }
        if e.is_throttling() {
            return ErrorClass::Throttled;
        }
        if e.is_storage_refusal() {
            return ErrorClass::StorageDenied;
        }
    }
    match status {
        Some(429) => return ErrorClass::Throttled,
        Some(401) => return ErrorClass::Unauthorized,
        Some(403) => return ErrorClass::Forbidden,
        _ => {}
    }
    match error.and_then(|e| e.permanent) {
        Some(true) => ErrorClass::Permanent,
        Some(false) => ErrorClass::Transient,
        None => match status {
            Some(408) | Some(500..=599) => ErrorClass::Transient,
            _ => ErrorClass::Permanent,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: serde_json::Value) -> ServiceError {
        serde_json::from_value::<ErrorEnvelope>(body).unwrap().error
    }

    fn ctx() -> RequestContext {
        RequestContext {
            database: "Sales".into(),
            command: ".show tables".into(),
            request_id: "adxbackup.mgmt;1".into(),
        }
    }

    /// The classification table: status + error JSON → class.
    #[test]
    fn classification_table() {
        let syntax = json!({"error":{"code":"General_BadRequest","message":"Request is invalid and cannot be executed.",
            "@type":"Kusto.Data.Exceptions.KustoBadRequestException","@message":"Syntax error: SYN0002: A recognition error occurred.",
            "@permanent":true,"innererror":{"code":"SYN0002","message":"A recognition error occurred.","@permanent":true}}});
        let semantic = json!({"error":{"code":"General_BadRequest","message":"Request is invalid and cannot be executed.",
            "@type":"Kusto.Data.Exceptions.SemanticException","@message":"Semantic error: 'T' could not be resolved",
            "@permanent":true,"innererror":{"code":"SEM0100","message":"'T' could not be resolved"}}});
        let low_memory = json!({"error":{"code":"LowMemoryCondition","message":"Query execution lacks memory resources to complete (80DA0007): Partial query failure: Low memory condition (E_LOW_MEMORY_CONDITION).",
            "@type":"Kusto.DataNode.Exceptions.KustoServicePartialQueryFailureLowMemoryConditionException",
            "@message":"Query execution lacks memory resources to complete (80DA0007): Partial query failure: Low memory condition (E_LOW_MEMORY_CONDITION).",
            "@permanent":false}});
        let low_memory_hresult = json!({"error":{"code":"General_BadRequest","message":"failed","@message":"HRESULT: 0x80DA0007","@permanent":false}});
        let runaway = json!({"error":{"code":"LimitsExceeded","message":"Request is invalid and cannot be executed.",
            "@message":"Partial query failure: The operator 'summarize' has exceeded the memory budget during evaluation (E_RUNAWAY_QUERY).","@permanent":false}});
        let throttled = json!({"error":{"code":"TooManyRequests","message":"The management command was aborted due to throttling.",
            "@type":"Kusto.DataNode.Exceptions.ControlCommandThrottledException","@permanent":false}});
        let too_large = json!({"error":{"code":"LimitsExceeded","message":"Query result set has exceeded the internal record count limit",
            "@type":"Kusto.Data.Exceptions.KustoServicePartialQueryFailureLimitsExceededException","@message":"E_QUERY_RESULT_SET_TOO_LARGE","@permanent":false}});
        let service =
            json!({"error":{"code":"Internal service error","message":"boom","@permanent":true}});
        let not_found = json!({"error":{"code":"BadRequest_EntityNotFound","message":"Entity not found","@permanent":true}});
        let no_flag = json!({"error":{"code":"Conflict","message":"already exists"}});
        // Storage's 403 to the cluster, inside Kusto's 400 (azure-kusto-python#556).
        let storage_denied = json!({"error":{"code":"General_BadRequest","message":"Request is invalid and cannot be processed.",
            "@type":"Kusto.Data.Exceptions.KustoBadRequestException",
            "@message":"Service request failed.\nStatus: 403 (This request is not authorized to perform this operation using this permission.)\nErrorCode: AuthorizationPermissionMismatch",
            "@permanent":true}});
        let caller_forbidden = json!({"error":{"code":"Forbidden","message":"Caller is not authorized to perform this action",
            "@type":"Kusto.DataNode.Exceptions.UnauthorizedDatabaseAccessException",
            "@message":"Principal 'aadapp=x' is not authorized to read database 'D'.","@permanent":true}});

        use ErrorClass::*;
        let table: Vec<(Option<u16>, Option<serde_json::Value>, ErrorClass)> = vec![
            (Some(400), Some(syntax), Permanent),
            (Some(400), Some(semantic), Permanent),
            (Some(400), Some(low_memory.clone()), LowMemory),
            (Some(500), Some(low_memory.clone()), LowMemory),
            (None, Some(low_memory), LowMemory),
            (Some(400), Some(low_memory_hresult), LowMemory),
            (None, Some(runaway), RunawayQuery),
            (Some(429), Some(throttled.clone()), Throttled),
            (Some(429), None, Throttled),
            (None, Some(throttled), Throttled),
            (Some(400), Some(too_large), Transient),
            (Some(500), Some(service), Permanent),
            (Some(404), Some(not_found), Permanent),
            (Some(409), Some(no_flag.clone()), Permanent),
            (Some(503), Some(no_flag), Transient),
            (Some(500), None, Transient),
            (Some(502), None, Transient),
            (Some(503), None, Transient),
            (Some(504), None, Transient),
            (Some(520), None, Transient),
            (Some(408), None, Transient),
            (Some(401), None, Unauthorized),
            (Some(403), None, Forbidden),
            (Some(403), Some(caller_forbidden), Forbidden),
            (Some(400), Some(storage_denied.clone()), StorageDenied),
            (None, Some(storage_denied), StorageDenied),
            (Some(404), None, Permanent),
            (Some(413), None, Permanent),
            (None, None, Permanent),
        ];
        for (status, body, expected) in table {
            let error = body.clone().map(parse);
            assert_eq!(
                classify(status, error.as_ref()),
                expected,
                "{status:?} {body:?}"
            );
        }
    }

    #[test]
    fn only_throttling_and_transient_are_retried() {
        let transient = KustoError::Transient {
            ctx: ctx(),
            status: Some(503),
            message: "unavailable".into(),
            source: None,
        };
        let throttled = KustoError::Throttled {
            ctx: ctx(),
            message: "slow down".into(),
            retry_after: Some(Duration::from_secs(2)),
        };
        let low = KustoError::LowMemory {
            ctx: ctx(),
            message: "E_LOW_MEMORY_CONDITION".into(),
        };
        assert!(transient.is_transient() && throttled.is_transient());
        assert_eq!(throttled.retry_after(), Some(Duration::from_secs(2)));
        assert!(!low.is_transient() && low.needs_smaller_batch());
        assert!(!transient.needs_smaller_batch());
    }

    #[test]
    fn messages_name_command_database_and_remedy() {
        let forbidden = KustoError::Forbidden {
            ctx: ctx(),
            message: "Principal is not authorized".into(),
        }
        .to_string();
        assert!(
            forbidden.contains(".show tables") && forbidden.contains("Sales"),
            "{forbidden}"
        );
        assert!(
            forbidden.contains(".add database ['Sales'] admins"),
            "{forbidden}"
        );
        assert!(forbidden.contains("adxbackup.mgmt;1"), "{forbidden}");
        let partial = KustoError::PartialFailure {
            ctx: ctx(),
            code: Some("LimitsExceeded".into()),
            message: "too big".into(),
        }
        .to_string();
        assert!(
            partial.contains("(LimitsExceeded)") && partial.contains("too big"),
            "{partial}"
        );
    }
}
