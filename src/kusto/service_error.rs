//! The error object Kusto puts in a failed response, as it is on the wire. It sits below both
//! the response parsers ([`super::frames`], which find it inside a 200 response) and the
//! classification ([`super::error`]), so neither imports the other for it.

use serde::Deserialize;

/// Longest service message kept in an error; Kusto messages can embed whole queries.
pub(crate) const MESSAGE_MAX: usize = 2000;

/// One error object as Kusto sends it: the body of a failed response (`{"error":{...}}`), an
/// entry of `OneApiErrors` in a V2 response, or (with only `message`) a V1 `Exceptions` text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ServiceError {
    pub code: Option<String>,
    pub message: Option<String>,
    #[serde(rename = "@type")]
    pub type_name: Option<String>,
    /// The detailed text; carries documented constants such as `E_LOW_MEMORY_CONDITION`.
    #[serde(rename = "@message")]
    pub detail: Option<String>,
    #[serde(rename = "@permanent")]
    pub permanent: Option<bool>,
    pub innererror: Option<Box<ServiceError>>,
}

/// The `{"error": {...}}` wrapper around a [`ServiceError`].
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorEnvelope {
    pub error: ServiceError,
}

impl ServiceError {
    /// An error known only by its text (V1 `Exceptions`, a non-JSON error body).
    pub(crate) fn from_text(text: impl Into<String>) -> Self {
        Self {
            message: Some(text.into()),
            ..Self::default()
        }
    }

    /// The most specific code: the inner error's if there is one (`SEM0100`), else the outer.
    pub fn best_code(&self) -> Option<&str> {
        self.innererror
            .as_deref()
            .and_then(ServiceError::best_code)
            .or(self.code.as_deref())
    }

    /// The detailed message, with the inner error's when it adds something; bounded in size.
    pub fn summary(&self) -> String {
        let main = self
            .detail
            .as_deref()
            .or(self.message.as_deref())
            .unwrap_or("no message");
        let inner = self
            .innererror
            .as_deref()
            .and_then(|i| i.detail.as_deref().or(i.message.as_deref()))
            .filter(|text| !main.contains(text));
        let text = match inner {
            Some(inner) => format!("{main} ({inner})"),
            None => main.to_owned(),
        };
        truncate(text, MESSAGE_MAX)
    }

    /// Every text field, this level and below, for the documented-token checks.
    fn texts(&self) -> Vec<&str> {
        let mut out: Vec<&str> = [&self.code, &self.type_name, &self.detail, &self.message]
            .into_iter()
            .filter_map(|f| f.as_deref())
            .collect();
        if let Some(inner) = &self.innererror {
            out.extend(inner.texts());
        }
        out
    }

    pub(crate) fn mentions(&self, tokens: &[&str]) -> bool {
        self.texts().iter().any(|text| {
            let text = text.to_ascii_lowercase();
            tokens
                .iter()
                .any(|t| text.contains(&t.to_ascii_lowercase()))
        })
    }

    /// Storage refused the cluster: Kusto passes the storage client's failure on, whose
    /// text is the .NET storage SDK's `Service request failed. Status: 403 (...)` (quoted in
    /// azure-kusto-python#556; the same SDK's text in Azure/kusto-copy#79). Both the SDK's
    /// opening and the status must be there, so a Kusto message merely quoting a number
    /// does not match.
    pub(crate) fn is_storage_refusal(&self) -> bool {
        self.texts().iter().any(|text| {
            let text = text.to_ascii_lowercase();
            text.contains("service request failed")
                && (text.contains("status: 403") || text.contains("status: 401"))
        })
    }

    pub(crate) fn is_throttling(&self) -> bool {
        self.code.as_deref() == Some("TooManyRequests")
            || self.best_code() == Some("TooManyRequests")
            || self.type_name.as_deref().is_some_and(|t| {
                t.ends_with("ThrottledException") || t.ends_with("QuotaExceededException")
            })
    }
}

pub(crate) fn truncate(mut text: String, max: usize) -> String {
    if let Some((cut, _)) = text.char_indices().nth(max) {
        text.truncate(cut);
        text.push('…');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: serde_json::Value) -> ServiceError {
        serde_json::from_value::<ErrorEnvelope>(body).unwrap().error
    }

    #[test]
    fn summary_prefers_detail_and_adds_inner() {
        let e = parse(
            json!({"error":{"code":"General_BadRequest","message":"Request is invalid",
            "@message":"Semantic error","innererror":{"code":"SEM0100","message":"'T' could not be resolved"}}}),
        );
        assert_eq!(e.summary(), "Semantic error ('T' could not be resolved)");
        assert_eq!(e.best_code(), Some("SEM0100"));
        let long = ServiceError::from_text("x".repeat(5000)).summary();
        assert_eq!(long.chars().count(), MESSAGE_MAX + 1);
    }
}
