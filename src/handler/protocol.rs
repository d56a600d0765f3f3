//! The Functions custom-handler envelopes: what the host POSTs, what it expects back.
//!
//! The host serialises every non-object binding value with `JsonConvert.SerializeObject` and
//! stores the result as a string, so a queue message arrives JSON-encoded inside a string and
//! numbers arrive as strings; the docs show a "plain" shape with neither. Both are accepted:
//! data values are unwrapped through at most two layers of JSON string, metadata strings lose
//! one layer of quoting, and numbers may be numbers or strings
//! (docs/functions-host.md §invocation-request).

use serde::Serialize;
use serde_json::{Map, Value};

/// Why an invocation body could not be read. The host logs our response body, so the text
/// says what was wrong with the envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("invocation body is not JSON: {0}")]
    NotJson(String),
    #[error("invocation body must be a JSON object with a \"Data\" object")]
    NoData,
    #[error("invocation has no binding named {binding:?} in Data (found: {found})")]
    MissingBinding { binding: String, found: String },
}

/// One decoded invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    data: Map<String, Value>,
    metadata: Map<String, Value>,
}

impl Invocation {
    pub fn parse(body: &[u8]) -> Result<Self, ProtocolError> {
        let root: Value =
            serde_json::from_slice(body).map_err(|e| ProtocolError::NotJson(e.to_string()))?;
        let Value::Object(mut root) = root else {
            return Err(ProtocolError::NoData);
        };
        let Some(Value::Object(data)) = root.remove("Data") else {
            return Err(ProtocolError::NoData);
        };
        let metadata = match root.remove("Metadata") {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        Ok(Self {
            data: data
                .into_iter()
                .map(|(k, v)| (k, unwrap_json_string(v, 2)))
                .collect(),
            metadata,
        })
    }

    /// The value bound to `binding`, with the host's string encoding removed.
    pub fn binding(&self, binding: &str) -> Result<&Value, ProtocolError> {
        self.data
            .get(binding)
            .ok_or_else(|| ProtocolError::MissingBinding {
                binding: binding.to_owned(),
                found: self.data.keys().cloned().collect::<Vec<_>>().join(", "),
            })
    }

    /// A metadata string (`Id`, `PopReceipt`, ...) without its JSON quoting.
    pub fn metadata_str(&self, key: &str) -> Option<String> {
        match self.metadata.get(key)? {
            Value::String(s) => Some(match serde_json::from_str::<Value>(s) {
                Ok(Value::String(inner)) => inner,
                _ => s.clone(),
            }),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// A metadata number that may arrive as a number or as a string.
    pub fn metadata_u64(&self, key: &str) -> Option<u64> {
        match self.metadata.get(key)? {
            Value::Number(n) => n.as_u64(),
            Value::String(_) => self.metadata_str(key)?.trim().parse().ok(),
            _ => None,
        }
    }

    /// How many times the queue has delivered this message (1 on the first attempt).
    pub fn dequeue_count(&self) -> Option<u64> {
        self.metadata_u64("DequeueCount")
    }

    /// The host's invocation-independent message id, for logs.
    pub fn message_id(&self) -> Option<String> {
        self.metadata_str("Id")
    }
}

/// Replaces a string that holds JSON by the parsed value, up to `depth` times. A string that
/// is not JSON (a bare word) stays a string.
fn unwrap_json_string(value: Value, depth: u8) -> Value {
    match value {
        Value::String(s) if depth > 0 => match serde_json::from_str::<Value>(&s) {
            Ok(inner) => unwrap_json_string(inner, depth - 1),
            Err(_) => Value::String(s),
        },
        other => other,
    }
}

/// The response envelope. `Outputs` values must be JSON objects or arrays of objects: the host
/// base64-decodes any single string output that happens to be valid base64.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct InvocationResponse {
    pub outputs: Map<String, Value>,
    pub logs: Vec<String>,
    pub return_value: Option<Value>,
}

impl InvocationResponse {
    pub fn with_log(message: impl Into<String>) -> Self {
        Self {
            logs: vec![message.into()],
            ..Self::default()
        }
    }

    /// An HTTP trigger's answer: the `res` output binding with a JSON body
    /// (docs/functions-host.md §http-trigger).
    pub fn http_json(status: u16, body: String) -> Self {
        let mut outputs = Map::new();
        outputs.insert(
            "res".to_owned(),
            serde_json::json!({
                "statusCode": status,
                "headers": {"Content-Type": "application/json; charset=utf-8"},
                "body": body,
            }),
        );
        Self {
            outputs,
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The real capture from Core Tools 4.0.6610 (docs/functions-host.md §invocation-request).
    const HOST_CAPTURE: &str = r#"{ "Data": { "queue": "\"hello!!\"" },
      "Metadata": {
        "DequeueCount": "1",
        "ExpirationTime": "2025-02-25T03:06:19+00:00",
        "Id": "\"52d53c5f-e212-487e-998b-abbe3b9d51e4\"",
        "InsertionTime": "2025-02-18T03:06:19+00:00",
        "NextVisibleTime": "2025-02-18T03:16:20+00:00",
        "PopReceipt": "\"MThGZWIyMDI1MDM6MDY6MjA3NjM1\"",
        "sys": { "MethodName": "queue", "UtcNow": "2025-02-18T03:06:20.7562691Z",
                 "RandGuid": "e59556b5-892a-4465-a19d-4396f0978dab" } } }"#;

    #[test]
    fn reads_the_real_host_capture() {
        let inv = Invocation::parse(HOST_CAPTURE.as_bytes()).unwrap();
        assert_eq!(inv.binding("queue").unwrap(), &json!("hello!!"));
        assert_eq!(inv.dequeue_count(), Some(1));
        assert_eq!(
            inv.message_id().as_deref(),
            Some("52d53c5f-e212-487e-998b-abbe3b9d51e4")
        );
    }

    #[test]
    fn json_message_double_and_single_encoded_and_plain() {
        let msg = json!({"v": 1, "kind": "x"});
        let once = Value::String(msg.to_string());
        let twice = Value::String(once.to_string());
        for data in [msg.clone(), once, twice] {
            let body = json!({"Data": {"msg": data}, "Metadata": {"DequeueCount": 3}});
            let inv = Invocation::parse(body.to_string().as_bytes()).unwrap();
            assert_eq!(inv.binding("msg").unwrap(), &msg);
            assert_eq!(inv.dequeue_count(), Some(3));
        }
    }

    #[test]
    fn docs_shape_with_relaxed_json_stays_a_string() {
        let body = r#"{"Data":{"myQueueItem":"{ message: \"Message sent\" }"},"Metadata":{"DequeueCount":1,"Id":"abc"}}"#;
        let inv = Invocation::parse(body.as_bytes()).unwrap();
        assert!(inv.binding("myQueueItem").unwrap().is_string());
        assert_eq!(inv.message_id().as_deref(), Some("abc"));
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        for body in [
            "",
            "not json",
            "[]",
            "{}",
            r#"{"Data":"x"}"#,
            "{\"Data\":{}",
        ] {
            assert!(Invocation::parse(body.as_bytes()).is_err(), "{body:?}");
        }
        let inv = Invocation::parse(br#"{"Data":{"a":1}}"#).unwrap();
        let err = inv.binding("timer").unwrap_err().to_string();
        assert!(err.contains("timer") && err.contains('a'), "{err}");
    }

    #[test]
    fn response_uses_host_field_names() {
        let r = InvocationResponse::with_log("done");
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"Outputs": {}, "Logs": ["done"], "ReturnValue": null})
        );
    }

    #[test]
    fn damaged_envelopes_are_errors_not_panics() {
        let task = json!({"Data": {"task": json!({"kind": "RestoreJobV1", "job": "r-1", "tick": 4}).to_string()},
            "Metadata": {"DequeueCount": "2", "Id": "\"m-1\""}})
        .to_string();
        let samples: [&[u8]; 2] = [HOST_CAPTURE.as_bytes(), task.as_bytes()];
        crate::mutate::check(0x1a2b, &samples, |body| {
            let inv = Invocation::parse(body)?;
            for key in ["queue", "task", "Id", "PopReceipt", "DequeueCount"] {
                let _ = (
                    inv.binding(key),
                    inv.metadata_str(key),
                    inv.metadata_u64(key),
                );
            }
            Ok::<_, ProtocolError>(())
        });
    }
}
