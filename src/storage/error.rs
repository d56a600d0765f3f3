//! Storage errors, classified once here so callers and the retry policy match on variants,
//! never on message text.
//!
//! Classification is by HTTP status and the service's `x-ms-error-code`:
//! - a lost condition (412 `ConditionNotMet`, 409 `BlobAlreadyExists`, 400 `PopReceiptMismatch`)
//!   is [`StorageError::Conflict`]: someone else won, re-read and decide again;
//! - 409 `BlobImmutableDueToPolicy` / `BlobImmutableDueToLegalHold` is
//!   [`StorageError::Immutable`]: an immutability policy (container- or version-level WORM) or
//!   a legal hold forbids deleting or overwriting the blob until it expires; not a conflict
//!   (re-reading changes nothing) and not transient (retrying within minutes changes nothing);
//! - 404 on the object itself is [`StorageError::NotFound`] (a missing container or queue is
//!   a setup fault, hence [`StorageError::Permanent`]);
//! - 408, 429, 5xx, `…BeingDeleted`, network failures and attempt timeouts are
//!   [`StorageError::Transient`], the only variant [`Retryable`] retries;
//! - everything else is [`StorageError::Permanent`], carrying a hint on what to fix.
//!
//! Invariant: no text in these errors contains a SAS or key. The SDK's transport errors embed
//! the request URL, and in emulator mode that URL carries an account SAS, so causes are kept as
//! [`Cause`]: the error chain's text with every URL query removed.

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use azure_core::error::ErrorKind;
use azure_core::http::RawResponse;

use crate::redact::redact_urls;
use crate::retry::Retryable;

/// Longest a single storage request may take before it counts as a transient failure. The SDK
/// sets no timeout, and a silently dropped connection would otherwise hang an invocation.
/// Generous because `read` may download a large blob in one attempt.
pub(crate) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(120);

const HINT_ROLES: &str = "grant the app's managed identity 'Storage Blob Data Contributor' on the \
    backup container and 'Storage Queue Data Contributor' on the queues (for Azurite, check the \
    account name and key in the BackupStorage connection string)";
const HINT_IDENTITY: &str = "check that the managed identity is attached to the app and that \
    BackupStorage__clientId is its client id (unset for a system-assigned identity)";
const HINT_SETUP: &str =
    "it is created at start-up (ensure_container / ensure_exists); restart the app or create it";
const HINT_REQUEST: &str = "the request was refused as sent; see the service's message";

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A conditional operation lost: an ETag no longer matches, a blob created with
    /// If-None-Match already exists, or a queue message was taken by another receiver.
    #[error("{target} was changed by someone else first; re-read it and redo the step")]
    Conflict {
        target: String,
        #[source]
        source: Cause,
    },

    #[error("{target} does not exist")]
    NotFound { target: String },

    /// An immutability policy or legal hold refuses to delete or overwrite the blob. Only its
    /// expiry changes that: a delete is deferred to a later pass; a document the app rewrites
    /// belongs in a container without such a policy (`AdxBackup__StateContainer`).
    #[error(
        "{op} on {target} refused: the blob is immutable ({code}); it cannot be deleted or \
         overwritten until its retention ends or the hold is cleared. Documents adx-backup \
         rewrites must live in a container without an immutability policy \
         (AdxBackup__StateContainer)"
    )]
    Immutable {
        op: &'static str,
        target: String,
        code: String,
        #[source]
        source: Cause,
    },

    /// Worth retrying: throttling, server errors, network failures, timeouts.
    #[error("{op} on {target} failed transiently ({reason}); retrying later may succeed")]
    Transient {
        op: &'static str,
        target: String,
        reason: String,
        retry_after: Option<Duration>,
        #[source]
        source: Cause,
    },

    /// Will fail again as sent; `hint` says what to fix, `source` has the service's message.
    #[error("{op} on {target} failed ({}): {hint}", answer(*.status, .code))]
    Permanent {
        op: &'static str,
        target: String,
        status: Option<u16>,
        code: Option<String>,
        hint: &'static str,
        #[source]
        source: Cause,
    },

    /// Content that could not be understood: a service answer or a stored document.
    #[error("{op} on {target}: undecodable content: {detail}")]
    Decode {
        op: &'static str,
        target: String,
        detail: String,
    },
}

impl Retryable for StorageError {
    fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl StorageError {
    /// Someone else won a conditional operation.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }

    /// An immutability policy or legal hold refused a delete or an overwrite.
    pub fn is_immutable(&self) -> bool {
        matches!(self, Self::Immutable { .. })
    }

    /// How the service refused the caller's rights (HTTP 401 or 403), e.g. `HTTP 403
    /// AuthorizationPermissionMismatch`; None for every other failure.
    pub fn refused_rights(&self) -> Option<String> {
        match self {
            Self::Permanent {
                status: Some(status @ (401 | 403)),
                code,
                ..
            } => Some(answer(Some(*status), code)),
            _ => None,
        }
    }

    /// Classifies an SDK error from operation `op` on `target` (e.g. `blob c/x.json`).
    pub(crate) fn from_sdk(op: &'static str, target: &str, err: &azure_core::Error) -> Self {
        let target = target.to_owned();
        match err.kind() {
            ErrorKind::HttpResponse {
                status,
                error_code,
                raw_response,
            } => {
                let reply = Reply {
                    status: u16::from(*status),
                    code: error_code.clone(),
                    message: raw_response.as_deref().and_then(service_message),
                    retry_after: raw_response.as_deref().and_then(retry_after),
                };
                reply.classify(op, target)
            }
            ErrorKind::Io | ErrorKind::Connection => Self::Transient {
                op,
                target,
                reason: "network error".to_owned(),
                retry_after: None,
                source: Cause::of(err),
            },
            ErrorKind::DataConversion => Self::Decode {
                op,
                target,
                detail: Cause::of(err).0,
            },
            ErrorKind::Credential => permanent(op, target, HINT_IDENTITY, err),
            _ => permanent(op, target, HINT_REQUEST, err),
        }
    }

    /// A stored document at `path` that does not parse (or a value that does not serialize).
    pub fn decode(path: &str, err: impl fmt::Display) -> Self {
        Self::Decode {
            op: "decode",
            target: format!("blob {path}"),
            detail: err.to_string(),
        }
    }

    /// An answer that parsed but lacks something the operation needs.
    pub(crate) fn bad_answer(op: &'static str, target: &str, detail: impl Into<String>) -> Self {
        Self::Decode {
            op,
            target: target.to_owned(),
            detail: detail.into(),
        }
    }

    /// A request refused before it was sent, e.g. a message over the size limit.
    pub(crate) fn refused(
        op: &'static str,
        target: &str,
        reason: String,
        hint: &'static str,
    ) -> Self {
        Self::Permanent {
            op,
            target: target.to_owned(),
            status: None,
            code: None,
            hint,
            source: Cause(reason),
        }
    }

    /// An attempt that got no answer within [`ATTEMPT_TIMEOUT`]: worth another try.
    pub(crate) fn timeout(op: &'static str, target: &str) -> Self {
        let reason = format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs());
        Self::Transient {
            op,
            target: target.to_owned(),
            reason: reason.clone(),
            retry_after: None,
            source: Cause(reason),
        }
    }
}

fn permanent(
    op: &'static str,
    target: String,
    hint: &'static str,
    err: &azure_core::Error,
) -> StorageError {
    StorageError::Permanent {
        op,
        target,
        status: None,
        code: None,
        hint,
        source: Cause::of(err),
    }
}

/// How a permanent failure was answered, for its message.
fn answer(status: Option<u16>, code: &Option<String>) -> String {
    match (status, code) {
        (Some(status), Some(code)) => format!("HTTP {status} {code}"),
        (Some(status), None) => format!("HTTP {status}"),
        (None, _) => "no HTTP answer".to_owned(),
    }
}

/// The parts of an HTTP error answer that classification needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reply {
    status: u16,
    code: Option<String>,
    message: Option<String>,
    retry_after: Option<Duration>,
}

impl Reply {
    fn classify(self, op: &'static str, target: String) -> StorageError {
        let code = self.code.as_deref().unwrap_or("");
        let cause = Cause(self.describe());
        match (self.status, code) {
            (412, _) | (409, "BlobAlreadyExists") | (400, "PopReceiptMismatch") => {
                StorageError::Conflict {
                    target,
                    source: cause,
                }
            }
            (409, "BlobImmutableDueToPolicy" | "BlobImmutableDueToLegalHold") => {
                StorageError::Immutable {
                    op,
                    target,
                    code: code.to_owned(),
                    source: cause,
                }
            }
            (404, "ContainerNotFound" | "QueueNotFound") => self.permanent(op, target, HINT_SETUP),
            (404, _) => StorageError::NotFound { target },
            (408 | 429 | 500..=599, _) => self.transient(op, target, cause),
            // A container or queue being deleted comes back soon with the same name.
            (409, c) if c.ends_with("BeingDeleted") => self.transient(op, target, cause),
            (401 | 403, _) => self.permanent(op, target, HINT_ROLES),
            _ => self.permanent(op, target, HINT_REQUEST),
        }
    }

    fn describe(&self) -> String {
        let code = self.code.as_deref().unwrap_or("no error code");
        match &self.message {
            Some(message) => format!("HTTP {} {code}: {message}", self.status),
            None => format!("HTTP {} {code}", self.status),
        }
    }

    fn transient(&self, op: &'static str, target: String, cause: Cause) -> StorageError {
        StorageError::Transient {
            op,
            target,
            reason: format!("HTTP {}", self.status),
            retry_after: self.retry_after,
            source: cause,
        }
    }

    /// The display already names status and code; the source carries the service's words.
    fn permanent(self, op: &'static str, target: String, hint: &'static str) -> StorageError {
        let message = self.message.unwrap_or_else(|| "no message".to_owned());
        StorageError::Permanent {
            op,
            target,
            status: Some(self.status),
            code: self.code,
            hint,
            source: Cause(message),
        }
    }
}

/// The service's error code of an SDK error, for the few calls where a code means success
/// (creating what already exists, deleting what is already gone).
pub(crate) fn error_code(err: &azure_core::Error) -> Option<&str> {
    match err.kind() {
        ErrorKind::HttpResponse { error_code, .. } => error_code.as_deref(),
        _ => None,
    }
}

/// The `<Message>` of a storage error body, first line only (the rest is request id and time).
fn service_message(response: &RawResponse) -> Option<String> {
    let body = std::str::from_utf8(response.body()).ok()?;
    let start = body.find("<Message>")? + "<Message>".len();
    let len = body[start..].find("</Message>")?;
    let message = body[start..start + len].lines().next()?.trim();
    Some(redact_urls(message))
}

/// A `Retry-After` in seconds; storage sends it rarely, but when it does it knows best.
fn retry_after(response: &RawResponse) -> Option<Duration> {
    let name = azure_core::http::headers::HeaderName::from_static("retry-after");
    let secs = response
        .headers()
        .get_optional_str(&name)?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

/// The text of an underlying error chain, with URL queries (where a SAS lives) removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause(String);

impl Cause {
    fn of(err: &(dyn StdError + 'static)) -> Self {
        let mut text = err.to_string();
        let mut next = err.source();
        while let Some(inner) = next {
            text.push_str(": ");
            text.push_str(&inner.to_string());
            next = inner.source();
        }
        Self(redact_urls(&text))
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Cause {}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, code: &str) -> StorageError {
        Reply {
            status,
            code: (!code.is_empty()).then(|| code.to_owned()),
            message: None,
            retry_after: None,
        }
        .classify("op", "blob c/x".to_owned())
    }

    #[derive(Debug, PartialEq)]
    enum Kind {
        Conflict,
        NotFound,
        Transient,
        Permanent,
        Decode,
        Immutable,
    }

    fn kind(err: &StorageError) -> Kind {
        match err {
            StorageError::Conflict { .. } => Kind::Conflict,
            StorageError::NotFound { .. } => Kind::NotFound,
            StorageError::Transient { .. } => Kind::Transient,
            StorageError::Permanent { .. } => Kind::Permanent,
            StorageError::Decode { .. } => Kind::Decode,
            StorageError::Immutable { .. } => Kind::Immutable,
        }
    }

    #[test]
    fn classification_table() {
        let cases = [
            (412, "ConditionNotMet", Kind::Conflict),
            (409, "BlobAlreadyExists", Kind::Conflict),
            (400, "PopReceiptMismatch", Kind::Conflict),
            (404, "BlobNotFound", Kind::NotFound),
            (404, "MessageNotFound", Kind::NotFound),
            (404, "ContainerNotFound", Kind::Permanent),
            (404, "QueueNotFound", Kind::Permanent),
            (503, "ServerBusy", Kind::Transient),
            (500, "InternalError", Kind::Transient),
            (429, "", Kind::Transient),
            (408, "", Kind::Transient),
            (409, "ContainerBeingDeleted", Kind::Transient),
            (409, "LeaseIdMissing", Kind::Permanent),
            (409, "BlobImmutableDueToPolicy", Kind::Immutable),
            (409, "BlobImmutableDueToLegalHold", Kind::Immutable),
            (403, "AuthorizationPermissionMismatch", Kind::Permanent),
            (400, "InvalidHeaderValue", Kind::Permanent),
        ];
        for (status, code, expected) in cases {
            let err = reply(status, code);
            assert_eq!(kind(&err), expected, "{status} {code}: {err:?}");
            assert_eq!(err.is_transient(), expected == Kind::Transient);
        }
    }

    #[test]
    fn an_immutable_blob_is_neither_a_conflict_nor_worth_a_quick_retry() {
        let err = reply(409, "BlobImmutableDueToPolicy");
        assert!(err.is_immutable() && !err.is_conflict() && !err.is_transient());
        let text = err.to_string();
        assert!(
            text.contains("BlobImmutableDueToPolicy") && text.contains("AdxBackup__StateContainer"),
            "{text}"
        );
    }

    #[test]
    fn only_rights_refusals_are_named_as_such() {
        assert_eq!(
            reply(403, "AuthorizationPermissionMismatch")
                .refused_rights()
                .as_deref(),
            Some("HTTP 403 AuthorizationPermissionMismatch")
        );
        assert_eq!(reply(401, "").refused_rights().as_deref(), Some("HTTP 401"));
        for (status, code) in [
            (404, "QueueNotFound"),
            (400, "InvalidHeaderValue"),
            (503, ""),
        ] {
            assert_eq!(reply(status, code).refused_rights(), None, "{status}");
        }
    }

    #[test]
    fn forbidden_says_which_role_to_grant() {
        let text = reply(403, "AuthorizationPermissionMismatch").to_string();
        assert!(text.contains("Storage Blob Data Contributor"), "{text}");
        assert!(text.contains("blob c/x"), "{text}");
    }

    #[test]
    fn retry_after_is_passed_to_the_policy() {
        let err = Reply {
            status: 503,
            code: Some("ServerBusy".into()),
            message: None,
            retry_after: Some(Duration::from_secs(7)),
        }
        .classify("op", "queue q".into());
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    }

    #[test]
    fn sdk_failures_without_an_answer() {
        let inner = std::io::Error::other("connect to http://h/c?sig=secret refused");
        let err = azure_core::Error::with_error(ErrorKind::Connection, inner, "failed");
        let classified = StorageError::from_sdk("blob.read", "blob c/x", &err);
        assert_eq!(kind(&classified), Kind::Transient);
        let bad_xml = azure_core::Error::with_message(ErrorKind::DataConversion, "bad xml");
        let classified = StorageError::from_sdk("blob.list", "container c", &bad_xml);
        assert_eq!(kind(&classified), Kind::Decode);
        let chain = format!("{classified} / {:?}", classified);
        assert!(!chain.contains("secret"), "{chain}");
    }
}
