//! V1 responses: `{"Tables":[{TableName, Columns[{ColumnName, DataType, ColumnType}], Rows}]}`.

use serde_json::{Value as Json, json};
use uuid::Uuid;

use super::error::partial_error_json;
use super::{QueryOutcome, RequestIds};
use crate::table::ResultTable;
use crate::value::temporal::{format_datetime, now_ticks};

fn table_json(name: &str, t: &ResultTable) -> Json {
    let columns: Vec<Json> = t
        .columns
        .iter()
        .map(|c| json!({"ColumnName": c.name, "DataType": c.ty.dotnet_name(), "ColumnType": c.ty.kusto_name()}))
        .collect();
    let rows: Vec<Json> = t
        .rows
        .iter()
        .map(|r| Json::Array(r.iter().map(|v| v.to_json()).collect()))
        .collect();
    json!({"TableName": name, "Columns": columns, "Rows": rows})
}

/// A management command's result: one table, `Table_0`.
pub fn mgmt(t: &ResultTable) -> Json {
    json!({"Tables": [table_json("Table_0", t)]})
}

/// A query (or a command piped into operators): the result, `@ExtendedProperties`,
/// `QueryStatus` and the table of contents, which SDKs use to find the result.
pub fn query(outcome: &QueryOutcome, ids: &RequestIds) -> Json {
    let mut primary = table_json("Table_0", &outcome.primary);
    let mut exceptions = Vec::new();
    if let Some(err) = &outcome.partial_error {
        let text = partial_error_json(err, ids)["error"]["@message"].clone();
        exceptions.push(text.clone());
        if let Some(rows) = primary["Rows"].as_array_mut() {
            rows.push(json!({"Exceptions": [text]}));
        }
    }
    let props_rows: Vec<Json> = outcome
        .cursor
        .iter()
        .map(|c| json!([json!({"Cursor": c}).to_string()]))
        .collect();
    let props = json!({"TableName": "Table_1",
        "Columns": [{"ColumnName": "Value", "DataType": "String", "ColumnType": "string"}],
        "Rows": props_rows});
    let status = query_status(outcome, ids);
    let toc = table_of_contents();
    let mut body = json!({"Tables": [primary, props, status, toc]});
    if !exceptions.is_empty() {
        body["Exceptions"] = Json::Array(exceptions);
    }
    body
}

fn query_status(outcome: &QueryOutcome, ids: &RequestIds) -> Json {
    let (severity, name, text) = match &outcome.partial_error {
        Some(e) => (2, "Error", e.to_string()),
        None => (4, "Info", "Query completed successfully".to_string()),
    };
    let id = ids.activity_id.to_string();
    json!({"TableName": "Table_2",
        "Columns": [
            {"ColumnName": "Timestamp", "DataType": "DateTime", "ColumnType": "datetime"},
            {"ColumnName": "Severity", "DataType": "Int32", "ColumnType": "int"},
            {"ColumnName": "SeverityName", "DataType": "String", "ColumnType": "string"},
            {"ColumnName": "StatusCode", "DataType": "Int32", "ColumnType": "int"},
            {"ColumnName": "StatusDescription", "DataType": "String", "ColumnType": "string"},
            {"ColumnName": "Count", "DataType": "Int32", "ColumnType": "int"},
            {"ColumnName": "RequestId", "DataType": "Guid", "ColumnType": "guid"},
            {"ColumnName": "ActivityId", "DataType": "Guid", "ColumnType": "guid"},
            {"ColumnName": "SubActivityId", "DataType": "Guid", "ColumnType": "guid"},
            {"ColumnName": "ClientActivityId", "DataType": "String", "ColumnType": "string"}],
        "Rows": [[format_datetime(now_ticks()), severity, name, 0, text, 1, id, id, id, ids.client_request_id]]})
}

fn table_of_contents() -> Json {
    let row = |ordinal: i64, kind: &str, name: &str, id: Uuid| {
        json!([ordinal, kind, name, id.to_string(), ""])
    };
    json!({"TableName": "Table_3",
        "Columns": [
            {"ColumnName": "Ordinal", "DataType": "Int64", "ColumnType": "long"},
            {"ColumnName": "Kind", "DataType": "String", "ColumnType": "string"},
            {"ColumnName": "Name", "DataType": "String", "ColumnType": "string"},
            {"ColumnName": "Id", "DataType": "String", "ColumnType": "string"},
            {"ColumnName": "PrettyName", "DataType": "String", "ColumnType": "string"}],
        "Rows": [
            row(0, "QueryResult", "PrimaryResult", Uuid::new_v4()),
            row(1, "QueryProperties", "@ExtendedProperties", Uuid::new_v4()),
            row(2, "QueryStatus", "QueryStatus", Uuid::nil())]})
}
