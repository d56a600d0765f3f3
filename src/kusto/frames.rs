//! Kusto's two result formats, parsed into typed tables.
//!
//! - V1 (`/v1/rest/mgmt`): `{"Tables":[...]}`. With at most two tables the first is the result
//!   (the second, if any, `@ExtendedProperties`); with more, the last is a table of contents
//!   naming each table's kind, as the official SDKs read it.
//! - V2 (`/v2/rest/query`): an array of frames from `DataSetHeader` to `DataSetCompletion`,
//!   with whole `DataTable`s or progressive `TableHeader`/`TableFragment`/`TableCompletion`.
//!
//! Invariants: a response is always read to its last frame; HTTP 200 only means the request
//! *started*, so errors reported inside the body (V1 `Exceptions`, V2 `OneApiErrors`, object
//! rows) make the whole response a failure; a V2 response without `DataSetCompletion` is
//! incomplete and rejected; every row has exactly one value per column.
//!
//! Values stay JSON until read through [`Row`], by column name, with a typed error naming the
//! table and column when the value is missing or of the wrong type.

mod row;
mod v1;
mod v2;

pub use row::{FrameError, Row, RowProblem};
pub use v1::parse_v1;
pub use v2::parse_v2;

use serde_json::Value;

use crate::ids::Cursor;
use crate::kusto::service_error::ServiceError;
use crate::kusto::types::KustoType;

/// What a table in a response is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableKind {
    PrimaryResult,
    QueryProperties,
    QueryCompletionInformation,
    QueryTraceLog,
    QueryPerfLog,
    TableOfContents,
    QueryPlan,
    Other(String),
}

impl TableKind {
    fn parse(kind: &str) -> Self {
        match kind {
            "PrimaryResult" => Self::PrimaryResult,
            "QueryProperties" => Self::QueryProperties,
            "QueryCompletionInformation" => Self::QueryCompletionInformation,
            "QueryTraceLog" => Self::QueryTraceLog,
            "QueryPerfLog" => Self::QueryPerfLog,
            "TableOfContents" => Self::TableOfContents,
            "QueryPlan" => Self::QueryPlan,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// A column's declared type: one of Kusto's, or a name this crate does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnType {
    Known(KustoType),
    Other(String),
}

impl ColumnType {
    fn parse(name: &str) -> Self {
        KustoType::parse(name).map_or_else(|| Self::Other(name.to_owned()), Self::Known)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub ty: ColumnType,
}

/// One result table; rows hold exactly one JSON value per column.
#[derive(Debug, Clone, PartialEq)]
pub struct KustoTable {
    pub name: String,
    pub kind: TableKind,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
}

impl KustoTable {
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Typed access to each row.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = Row<'_>> {
        self.rows.iter().map(|values| Row::new(self, values))
    }

    pub fn row(&self, index: usize) -> Option<Row<'_>> {
        self.rows.get(index).map(|values| Row::new(self, values))
    }
}

/// The tables of a V2 query response.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub tables: Vec<KustoTable>,
}

impl QueryResult {
    /// The result tables (more than one only with `fork` or several statements).
    pub fn primary(&self) -> impl Iterator<Item = &KustoTable> {
        self.tables
            .iter()
            .filter(|t| t.kind == TableKind::PrimaryResult)
    }

    /// The first result table, or an error naming what is missing.
    pub fn primary_table(&self) -> Result<&KustoTable, FrameError> {
        self.primary()
            .next()
            .ok_or_else(FrameError::no_primary_result)
    }

    /// The database cursor Kusto reported in `@ExtendedProperties` (set by `cursor_*`
    /// functions and `cursor_current()`), if any.
    pub fn cursor(&self) -> Option<Cursor> {
        self.tables
            .iter()
            .filter(|t| t.kind == TableKind::QueryProperties || t.name == "@ExtendedProperties")
            .flat_map(KustoTable::rows)
            .find_map(|row| cursor_in(&row))
    }
}

/// V2 rows are `(TableId, Key, Value)` with `Key == "Cursor"`; V1 rows carry only `Value`,
/// JSON text such as `{"Cursor":"..."}`. `Value` may be the object or the bare cursor string.
fn cursor_in(row: &Row<'_>) -> Option<Cursor> {
    let keyed = match row.str("Key") {
        Ok("Cursor") => true,
        Ok(_) => return None,
        Err(_) => false,
    };
    match row.value("Value").ok()? {
        Value::Object(map) => cursor_field(map),
        // JSON text (V1, or a V2 dynamic sent as text), else the bare cursor itself. Not
        // `Row::dynamic`: a numeric-looking cursor must stay text.
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => cursor_field(&map),
            _ if keyed => Some(Cursor::new(text.clone())),
            _ => None,
        },
        _ => None,
    }
}

fn cursor_field(map: &serde_json::Map<String, Value>) -> Option<Cursor> {
    map.get("Cursor")?.as_str().map(Cursor::new)
}

/// Why a response body could not be turned into tables. Public with the parsers so the fuzz
/// targets (`fuzz/`) reach them; the client turns it into a [`super::KustoError`].
#[derive(Debug)]
pub enum DecodeError {
    /// Not the documented shape: a bug on one side or the other.
    Malformed {
        detail: String,
        source: Option<serde_json::Error>,
    },
    /// The service reported errors inside a successful response.
    Partial(Vec<ServiceError>),
}

impl DecodeError {
    fn malformed(detail: impl Into<String>) -> Self {
        Self::Malformed {
            detail: detail.into(),
            source: None,
        }
    }
}

/// Turns a table's raw rows into value arrays of the right width, collecting errors that
/// arrive as object rows (`{"OneApiErrors":[...]}` in V2, `{"Exceptions":[...]}` in V1).
fn split_rows(
    table: &str,
    width: usize,
    raw: Vec<Value>,
    errors: &mut Vec<ServiceError>,
) -> Result<Vec<Vec<Value>>, DecodeError> {
    let mut rows = Vec::with_capacity(raw.len());
    for value in raw {
        match value {
            Value::Array(values) if values.len() == width => rows.push(values),
            Value::Array(values) => {
                return Err(DecodeError::malformed(format!(
                    "a row of table {table} has {} values for {width} columns",
                    values.len()
                )));
            }
            Value::Object(map) => errors.extend(object_row_errors(table, &map)?),
            other => {
                return Err(DecodeError::malformed(format!(
                    "a row of table {table} is {other}, not an array"
                )));
            }
        }
    }
    Ok(rows)
}

fn object_row_errors(
    table: &str,
    map: &serde_json::Map<String, Value>,
) -> Result<Vec<ServiceError>, DecodeError> {
    if let Some(list) = map.get("OneApiErrors") {
        return one_api_errors(list);
    }
    if let Some(Value::Array(list)) = map.get("Exceptions") {
        return Ok(list.iter().map(exception_error).collect());
    }
    Err(DecodeError::malformed(format!(
        "table {table} has an object row that is neither OneApiErrors nor Exceptions"
    )))
}

/// Parses a `OneApiErrors` list (`[{"error":{...}}, ...]`).
fn one_api_errors(list: &Value) -> Result<Vec<ServiceError>, DecodeError> {
    #[derive(serde::Deserialize)]
    struct Entry {
        error: ServiceError,
    }
    serde_json::from_value::<Vec<Entry>>(list.clone())
        .map(|entries| entries.into_iter().map(|e| e.error).collect())
        .map_err(|source| DecodeError::Malformed {
            detail: "OneApiErrors is not a list of {\"error\":{...}} objects".to_owned(),
            source: Some(source),
        })
}

/// A V1 exception: usually text, sometimes an object; kept as text either way.
fn exception_error(value: &Value) -> ServiceError {
    match value {
        Value::String(text) => ServiceError::from_text(text.clone()),
        other => ServiceError::from_text(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn props(rows: Vec<Value>, columns: &[&str]) -> QueryResult {
        QueryResult {
            tables: vec![KustoTable {
                name: "@ExtendedProperties".into(),
                kind: TableKind::QueryProperties,
                columns: columns
                    .iter()
                    .map(|c| Column {
                        name: (*c).into(),
                        ty: ColumnType::Known(KustoType::Dynamic),
                    })
                    .collect(),
                rows: rows
                    .into_iter()
                    .map(|r| r.as_array().unwrap().clone())
                    .collect(),
            }],
        }
    }

    #[test]
    fn cursor_in_every_documented_shape() {
        let v2_object = props(
            vec![
                json!([1, "Visualization", "{}"]),
                json!([1, "Cursor", {"Cursor": "638712399999999999"}]),
            ],
            &["TableId", "Key", "Value"],
        );
        assert_eq!(v2_object.cursor(), Some(Cursor::new("638712399999999999")));
        let v2_string = props(
            vec![json!([1, "Cursor", "638712399999999999"])],
            &["TableId", "Key", "Value"],
        );
        assert_eq!(v2_string.cursor(), Some(Cursor::new("638712399999999999")));
        let v1_text = props(
            vec![json!(["{\"Cursor\":\"637239957206013576\"}"])],
            &["Value"],
        );
        assert_eq!(v1_text.cursor(), Some(Cursor::new("637239957206013576")));
        let none = props(
            vec![json!([1, "ServerCache", {"Cursor": "x"}])],
            &["TableId", "Key", "Value"],
        );
        assert_eq!(none.cursor(), None);
        assert!(none.primary_table().is_err());
    }

    /// Reads every cell of `tables` with every typed accessor, and the cursor: what callers
    /// may do with any table that decoded, so none of it may panic.
    pub(super) fn read_every_cell(tables: &[KustoTable]) {
        for table in tables {
            for row in table.rows() {
                for column in &table.columns {
                    let c = column.name.as_str();
                    let _ = (
                        row.opt_str(c),
                        row.opt_i64(c),
                        row.opt_f64(c),
                        row.opt_bool(c),
                    );
                    let _ = (row.opt_datetime(c), row.opt_timespan(c), row.opt_dynamic(c));
                }
            }
        }
        let result = QueryResult {
            tables: tables.to_vec(),
        };
        let _ = (result.cursor(), result.primary_table().is_ok());
    }

    /// What a damaged body decodes to, for the property tests: tables are read through,
    /// in-band errors summarised, and a malformed body must say what is wrong.
    pub(super) fn read_through(
        decoded: Result<Vec<KustoTable>, DecodeError>,
    ) -> Result<(), String> {
        match decoded {
            Ok(tables) => {
                read_every_cell(&tables);
                Ok(())
            }
            Err(DecodeError::Partial(errors)) => {
                errors.iter().for_each(|e| drop(e.summary()));
                Ok(())
            }
            Err(DecodeError::Malformed { detail, .. }) => Err(detail),
        }
    }
}
