//! The OneAPI error object Kusto returns for failed requests and partial failures.

use serde_json::{Value as Json, json};

use super::RequestIds;
use crate::error::SimError;
use crate::value::temporal::{format_datetime, now_ticks};

/// `{"error":{code, message, @type, @message, @context, @permanent}}`.
pub fn error_json(err: &SimError, ids: &RequestIds) -> Json {
    let message = match err {
        SimError::Throttled(_) => "The request was throttled.",
        SimError::Transient | SimError::Storage(_) => "Service is temporarily unavailable.",
        SimError::Unauthorized(_) => "Unauthorized: the request has no valid bearer token.",
        SimError::StorageDenied { .. } => "Request is invalid and cannot be processed.",
        _ => "Request is invalid and cannot be executed.",
    };
    json!({"error": {
        "code": err.code(),
        "message": message,
        "@type": err.exception_type(),
        "@message": err.to_string(),
        "@context": {
            "timestamp": format_datetime(now_ticks()),
            "serviceAlias": "KUSTO-SIM",
            "machineName": "KSEngine000000",
            "processName": "kusto-sim",
            "clientRequestId": ids.client_request_id,
            "activityId": ids.activity_id.to_string(),
            "activityType": "GW.Http.CallContext",
        },
        "@permanent": err.permanent(),
    }})
}

/// The partial-failure error for a truncated result (`E_QUERY_RESULT_SET_TOO_LARGE`).
pub fn truncation_error(limit: usize) -> SimError {
    SimError::Semantic(format!(
        "Query execution has exceeded the allowed limits (80DA0003): The results of this query exceed the set limit of {limit} records, so not all records were returned (E_QUERY_RESULT_SET_TOO_LARGE, 0x80DA0003). See https://aka.ms/kustoquerylimits for more information and possible solutions.."
    ))
}

/// Partial failures are `LimitsExceeded` and transient, unlike request errors.
pub fn partial_error_json(err: &SimError, ids: &RequestIds) -> Json {
    let mut j = error_json(err, ids);
    if let Some(e) = j.get_mut("error") {
        e["code"] = json!("LimitsExceeded");
        e["@type"] =
            json!("Kusto.Data.Exceptions.KustoServicePartialQueryFailureLimitsExceededException");
        e["@permanent"] = json!(false);
    }
    j
}
