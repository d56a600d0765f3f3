//! Errors a request can end with, each mapped to Kusto's HTTP status and error code.

use thiserror::Error;

/// The text Kusto reports when an export runs out of memory.
pub const LOW_MEMORY_TEXT: &str = "Query execution lacks memory resources to complete (80DA0007): Partial query failure: Low memory condition (E_LOW_MEMORY_CONDITION). (message: 'bad allocation', details: '')";

#[derive(Debug, Error, Clone, PartialEq)]
pub enum SimError {
    /// Valid Kusto that kusto-sim doesn't implement; the text is the command's first words.
    #[error("not supported by kusto-sim: {0}")]
    NotSupported(String),
    #[error("Syntax error: {0}")]
    Syntax(String),
    /// A semantic error (unknown column, type mismatch, bad property value).
    #[error("{0}")]
    Semantic(String),
    #[error("{kind} '{name}' was not found")]
    NotFound { kind: &'static str, name: String },
    #[error("{kind} '{name}' already exists")]
    AlreadyExists { kind: &'static str, name: String },
    #[error("{0}")]
    Unauthorized(String),
    /// The caller lacks the role the command needs: Kusto answers 403 with
    /// `UnauthorizedDatabaseAccessException` and "Principal '<fqn>' is not authorized to ..."
    /// (as quoted in <https://github.com/microsoft/delta-kusto/issues/155> and
    /// <https://github.com/MicrosoftDocs/azure-docs/issues/51704>).
    #[error(
        "Principal '{principal}' is not authorized to perform operation '{operation}' on database '{database}'."
    )]
    Forbidden {
        principal: String,
        operation: String,
        database: String,
    },
    /// Fault injection: capacity throttling (HTTP 429).
    #[error(
        "The management command was aborted due to throttling. Retrying after some backoff might succeed. CommandType: '{0}', Capacity: 1, Origin: 'CapacityPolicy/Ingestion'"
    )]
    Throttled(String),
    /// Fault injection: a transient service failure (HTTP 503).
    #[error("Service is temporarily unavailable (injected fault)")]
    Transient,
    #[error("storage: {0}")]
    Storage(String),
    /// Storage answered 403 to the cluster's identity (or the `deny_storage` fault said it
    /// would): no retry helps until someone grants access. Kusto passes the storage client's
    /// failure on inside a 400 "Request is invalid and cannot be processed" whose text is the
    /// .NET storage SDK's `Service request failed. Status: 403 (...)`, as quoted in
    /// <https://github.com/Azure/azure-kusto-python/issues/556>; the status line and
    /// `ErrorCode` are that SDK's message for storage's `AuthorizationPermissionMismatch` (as
    /// quoted in <https://github.com/Azure/kusto-copy/issues/79>). Like Kusto's text, it
    /// does not name the blob.
    #[error(
        "Service request failed.\nStatus: 403 (This request is not authorized to perform this operation using this permission.)\nErrorCode: {code}"
    )]
    StorageDenied { code: String },
    #[error(
        "Ingestion into table '{table}' refused: creationTime {creation_time} is earlier than the table's soft-delete period ({soft_delete_period}) (BadRequest_CreationTimeEarlierThanSoftDeletePeriod)"
    )]
    CreationTimeEarlierThanSoftDeletePeriod {
        table: String,
        creation_time: String,
        soft_delete_period: String,
    },
    /// An export ran out of (simulated) memory.
    #[error("{}", LOW_MEMORY_TEXT)]
    LowMemory,
}

impl SimError {
    pub fn semantic(msg: impl Into<String>) -> Self {
        Self::Semantic(msg.into())
    }

    pub fn http_status(&self) -> u16 {
        match self {
            Self::Unauthorized(_) => 401,
            Self::Throttled(_) => 429,
            Self::Transient => 503,
            Self::Storage(_) => 520,
            Self::Forbidden { .. } => 403,
            _ => 400,
        }
    }

    /// The OneAPI `code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "BadRequest_EntityNotFound",
            Self::AlreadyExists { .. } => "BadRequest_EntityAlreadyExists",
            Self::Syntax(_) => "BadRequest_SyntaxError",
            Self::Unauthorized(_) => "Unauthorized",
            Self::Throttled(_) => "TooManyRequests",
            Self::Transient => "ServiceUnavailable",
            Self::Storage(_) => "ServiceError",
            Self::Forbidden { .. } => "Forbidden",
            Self::CreationTimeEarlierThanSoftDeletePeriod { .. } => {
                "BadRequest_CreationTimeEarlierThanSoftDeletePeriod"
            }
            Self::LowMemory => "LowMemoryCondition",
            Self::NotSupported(_) | Self::Semantic(_) | Self::StorageDenied { .. } => {
                "General_BadRequest"
            }
        }
    }

    /// The .NET exception type Kusto names in `@type`.
    pub fn exception_type(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "Kusto.Data.Exceptions.EntityNotFoundException",
            Self::AlreadyExists { .. } => "Kusto.Data.Exceptions.EntityAlreadyExistsException",
            Self::Syntax(_) => "Kusto.Data.Exceptions.SyntaxException",
            Self::Semantic(_) => "Kusto.Data.Exceptions.SemanticException",
            Self::Unauthorized(_) => "Kusto.Data.Exceptions.KustoClientUnauthorizedException",
            Self::Throttled(_) => "Kusto.DataNode.Exceptions.ControlCommandThrottledException",
            Self::Transient => "Kusto.Data.Exceptions.KustoServiceException",
            Self::Storage(_) => "Kusto.Data.Exceptions.KustoServiceException",
            Self::StorageDenied { .. } => "Kusto.Data.Exceptions.KustoBadRequestException",
            Self::Forbidden { .. } => {
                "Kusto.DataNode.Exceptions.UnauthorizedDatabaseAccessException"
            }
            Self::CreationTimeEarlierThanSoftDeletePeriod { .. } => {
                "Kusto.Data.Exceptions.KustoBadRequestException"
            }
            Self::LowMemory => {
                "Kusto.Data.Exceptions.KustoServicePartialQueryFailureLowMemoryConditionException"
            }
            Self::NotSupported(_) => "Kusto.Data.Exceptions.KustoBadRequestException",
        }
    }

    pub fn permanent(&self) -> bool {
        !matches!(
            self,
            Self::Throttled(_) | Self::Transient | Self::Storage(_) | Self::LowMemory
        )
    }
}

/// "not supported by kusto-sim: <first words>" for a command or query text.
pub fn not_supported(text: &str) -> SimError {
    let words: Vec<&str> = text.split_whitespace().take(4).collect();
    SimError::NotSupported(words.join(" "))
}
