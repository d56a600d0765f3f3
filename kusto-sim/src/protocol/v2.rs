//! V2 responses: a JSON array of frames, non-progressive (`DataTable` frames).

use serde_json::{Value as Json, json};

use super::error::partial_error_json;
use super::{QueryOutcome, RequestIds};
use crate::table::ResultTable;
use crate::value::temporal::{format_datetime, now_ticks};

pub fn frames(outcome: &QueryOutcome, ids: &RequestIds) -> Json {
    let errors: Vec<Json> = outcome
        .partial_error
        .iter()
        .map(|e| partial_error_json(e, ids))
        .collect();
    let mut out = vec![
        json!({"FrameType": "DataSetHeader", "IsProgressive": false, "Version": "v2.0",
               "IsFragmented": false, "ErrorReportingPlacement": "EndOfDataSet"}),
        query_properties(outcome),
        data_table(1, "PrimaryResult", "PrimaryResult", &outcome.primary),
        completion_information(outcome, ids),
    ];
    let mut completion = json!({"FrameType": "DataSetCompletion", "HasErrors": !errors.is_empty(), "Cancelled": false});
    if !errors.is_empty() {
        completion["OneApiErrors"] = Json::Array(errors);
    }
    out.push(completion);
    Json::Array(out)
}

fn data_table(id: i64, kind: &str, name: &str, t: &ResultTable) -> Json {
    let columns: Vec<Json> = t
        .columns
        .iter()
        .map(|c| json!({"ColumnName": c.name, "ColumnType": c.ty.kusto_name()}))
        .collect();
    let rows: Vec<Json> = t
        .rows
        .iter()
        .map(|r| Json::Array(r.iter().map(|v| v.to_json()).collect()))
        .collect();
    json!({"FrameType": "DataTable", "TableId": id, "TableKind": kind, "TableName": name,
           "Columns": columns, "Rows": rows})
}

/// `@ExtendedProperties`: the cursor, when a cursor predicate ran. Values are JSON text,
/// as Kusto sends its `Visualization` property.
fn query_properties(outcome: &QueryOutcome) -> Json {
    let rows: Vec<Json> = outcome
        .cursor
        .iter()
        .map(|c| json!([1, "Cursor", json!({"Cursor": c}).to_string()]))
        .collect();
    json!({"FrameType": "DataTable", "TableId": 0, "TableKind": "QueryProperties",
           "TableName": "@ExtendedProperties",
           "Columns": [{"ColumnName": "TableId", "ColumnType": "int"},
                       {"ColumnName": "Key", "ColumnType": "string"},
                       {"ColumnName": "Value", "ColumnType": "dynamic"}],
           "Rows": rows})
}

fn completion_information(outcome: &QueryOutcome, ids: &RequestIds) -> Json {
    let (level, level_name, code, code_name, payload) = match &outcome.partial_error {
        Some(e) => (
            2,
            "Error",
            -2_133_196_797_i64,
            "LimitsExceeded",
            e.to_string(),
        ),
        None => (
            4,
            "Info",
            0,
            "S_OK (0)",
            "Query completed successfully".to_string(),
        ),
    };
    let id = ids.activity_id.to_string();
    let payload = json!({"Count": 1, "Text": payload}).to_string();
    json!({"FrameType": "DataTable", "TableId": 2, "TableKind": "QueryCompletionInformation",
           "TableName": "QueryCompletionInformation",
           "Columns": [
               {"ColumnName": "Timestamp", "ColumnType": "datetime"},
               {"ColumnName": "ClientRequestId", "ColumnType": "string"},
               {"ColumnName": "ActivityId", "ColumnType": "guid"},
               {"ColumnName": "SubActivityId", "ColumnType": "guid"},
               {"ColumnName": "ParentActivityId", "ColumnType": "guid"},
               {"ColumnName": "Level", "ColumnType": "int"},
               {"ColumnName": "LevelName", "ColumnType": "string"},
               {"ColumnName": "StatusCode", "ColumnType": "int"},
               {"ColumnName": "StatusCodeName", "ColumnType": "string"},
               {"ColumnName": "EventType", "ColumnType": "int"},
               {"ColumnName": "EventTypeName", "ColumnType": "string"},
               {"ColumnName": "Payload", "ColumnType": "string"}],
           "Rows": [[format_datetime(now_ticks()), ids.client_request_id, id, id, id,
                     level, level_name, code, code_name, 4, "QueryInfo", payload]]})
}
