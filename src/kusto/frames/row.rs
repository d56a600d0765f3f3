//! Typed access to one row, by column name.
//!
//! Kusto sends datetimes, timespans, guids and decimals as strings, `bool` as `true/false` or
//! `0/1`, and `dynamic` as a JSON value (V2) or JSON text (V1). Each accessor accepts exactly
//! those forms; `opt_*` accessors turn JSON null into None, the others make it an error.

use std::fmt;
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::KustoTable;

/// A value that is not what the caller expected, naming the table and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {column:?} of table {table:?}: {problem}")]
pub struct FrameError {
    pub table: String,
    pub column: String,
    pub problem: RowProblem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowProblem {
    /// The table has no such column.
    Missing,
    /// The value is null where one is required.
    Null,
    /// The value is not of the expected type.
    Mistyped {
        expected: &'static str,
        found: String,
    },
    /// The response has no primary result table at all.
    NoPrimaryResult,
}

impl fmt::Display for RowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("no such column"),
            Self::Null => f.write_str("value is null"),
            Self::Mistyped { expected, found } => write!(f, "expected {expected}, found {found}"),
            Self::NoPrimaryResult => f.write_str("the response has no primary result table"),
        }
    }
}

impl FrameError {
    pub(crate) fn no_primary_result() -> Self {
        Self {
            table: String::new(),
            column: String::new(),
            problem: RowProblem::NoPrimaryResult,
        }
    }
}

/// One row of a [`KustoTable`].
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    table: &'a KustoTable,
    values: &'a [Value],
}

/// How much of a mistyped value an error shows.
const FOUND_MAX: usize = 80;

impl<'a> Row<'a> {
    pub(super) fn new(table: &'a KustoTable, values: &'a [Value]) -> Self {
        Self { table, values }
    }

    /// The raw JSON value of a column.
    pub fn value(&self, column: &str) -> Result<&'a Value, FrameError> {
        self.table
            .column_index(column)
            .and_then(|i| self.values.get(i))
            .ok_or_else(|| self.error(column, RowProblem::Missing))
    }

    pub fn str(&self, column: &str) -> Result<&'a str, FrameError> {
        self.required(column, self.opt_str(column))
    }

    pub fn opt_str(&self, column: &str) -> Result<Option<&'a str>, FrameError> {
        self.typed(column, "a string", Value::as_str)
    }

    pub fn i64(&self, column: &str) -> Result<i64, FrameError> {
        self.required(column, self.opt_i64(column))
    }

    pub fn opt_i64(&self, column: &str) -> Result<Option<i64>, FrameError> {
        self.typed(column, "an integer", Value::as_i64)
    }

    pub fn f64(&self, column: &str) -> Result<f64, FrameError> {
        self.required(column, self.opt_f64(column))
    }

    /// Numbers, and the strings Kusto uses for non-finite reals (`NaN`, `Infinity`).
    pub fn opt_f64(&self, column: &str) -> Result<Option<f64>, FrameError> {
        self.typed(column, "a number", |v| match v {
            Value::String(s) => s.parse().ok(),
            other => other.as_f64(),
        })
    }

    pub fn bool(&self, column: &str) -> Result<bool, FrameError> {
        self.required(column, self.opt_bool(column))
    }

    /// `true`/`false`, or `0`/`1` as V1 sometimes sends them.
    pub fn opt_bool(&self, column: &str) -> Result<Option<bool>, FrameError> {
        self.typed(column, "a bool", |v| match v {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => match n.as_i64() {
                Some(0) => Some(false),
                Some(1) => Some(true),
                _ => None,
            },
            _ => None,
        })
    }

    pub fn datetime(&self, column: &str) -> Result<OffsetDateTime, FrameError> {
        self.required(column, self.opt_datetime(column))
    }

    /// ISO 8601 text such as `2026-01-01T10:04:59.1234567Z`.
    pub fn opt_datetime(&self, column: &str) -> Result<Option<OffsetDateTime>, FrameError> {
        self.typed(column, "a datetime", |v| {
            OffsetDateTime::parse(v.as_str()?, &Rfc3339).ok()
        })
    }

    pub fn timespan(&self, column: &str) -> Result<Duration, FrameError> {
        self.required(column, self.opt_timespan(column))
    }

    /// Kusto's `[d.]hh:mm:ss[.fffffff]` text. The spans the product reads (intervals,
    /// latencies, durations) are never negative, so a negative one is a type error.
    pub fn opt_timespan(&self, column: &str) -> Result<Option<Duration>, FrameError> {
        self.typed(column, "a non-negative timespan", |v| {
            parse_timespan(v.as_str()?)
        })
    }

    pub fn dynamic(&self, column: &str) -> Result<Value, FrameError> {
        self.required(column, self.opt_dynamic(column))
    }

    /// A JSON value; text that holds JSON (V1) is parsed, other text is returned as a string.
    pub fn opt_dynamic(&self, column: &str) -> Result<Option<Value>, FrameError> {
        self.typed(column, "a dynamic value", |v| match v {
            Value::String(text) => Some(serde_json::from_str(text).unwrap_or_else(|_| v.clone())),
            other => Some(other.clone()),
        })
    }

    fn typed<T>(
        &self,
        column: &str,
        expected: &'static str,
        convert: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Result<Option<T>, FrameError> {
        let value = self.value(column)?;
        if value.is_null() {
            return Ok(None);
        }
        convert(value).map(Some).ok_or_else(|| {
            let found = crate::kusto::service_error::truncate(value.to_string(), FOUND_MAX);
            self.error(column, RowProblem::Mistyped { expected, found })
        })
    }

    fn required<T>(
        &self,
        column: &str,
        value: Result<Option<T>, FrameError>,
    ) -> Result<T, FrameError> {
        value?.ok_or_else(|| self.error(column, RowProblem::Null))
    }

    fn error(&self, column: &str, problem: RowProblem) -> FrameError {
        FrameError {
            table: self.table.name.clone(),
            column: column.to_owned(),
            problem,
        }
    }
}

/// Parses `[d.]hh:mm:ss[.fffffff]`.
fn parse_timespan(text: &str) -> Option<Duration> {
    let mut parts = text.split(':');
    let (head, minutes, seconds) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let (days, hours) = match head.split_once('.') {
        Some((d, h)) => (number(d)?, number(h)?),
        None => (0, number(head)?),
    };
    let (whole, fraction) = seconds.split_once('.').unwrap_or((seconds, ""));
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: u32 = format!("{fraction:0<9}").parse().ok()?;
    let secs = days
        .checked_mul(24)?
        .checked_add(hours)?
        .checked_mul(60)?
        .checked_add(number(minutes)?)?
        .checked_mul(60)?
        .checked_add(number(whole)?)?;
    Some(Duration::new(secs, nanos))
}

fn number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kusto::frames::{Column, ColumnType, TableKind};
    use serde_json::json;
    use time::macros::datetime;

    fn table() -> KustoTable {
        let names = ["S", "L", "R", "B", "D", "T", "Dyn", "N"];
        KustoTable {
            name: "Table_0".into(),
            kind: TableKind::PrimaryResult,
            columns: names
                .iter()
                .map(|n| Column {
                    name: (*n).into(),
                    ty: ColumnType::Other("any".into()),
                })
                .collect(),
            rows: vec![
                vec![
                    json!("a"),
                    json!(42),
                    json!(1.5),
                    json!(true),
                    json!("2026-01-01T10:04:59.1234567Z"),
                    json!("1.02:03:04.5000000"),
                    json!({"k": [1]}),
                    json!(null),
                ],
                vec![
                    json!(""),
                    json!(-7),
                    json!("NaN"),
                    json!(0),
                    json!("2026-01-01T10:04:59Z"),
                    json!("00:05:00"),
                    json!("{\"Cursor\":\"1\"}"),
                    json!(null),
                ],
            ],
        }
    }

    #[test]
    fn typed_values() {
        let t = table();
        let r = t.row(0).unwrap();
        assert_eq!(r.str("S").unwrap(), "a");
        assert_eq!(r.i64("L").unwrap(), 42);
        assert_eq!(r.f64("R").unwrap(), 1.5);
        assert!(r.bool("B").unwrap());
        assert_eq!(
            r.datetime("D").unwrap(),
            datetime!(2026-01-01 10:04:59.1234567 UTC)
        );
        assert_eq!(r.timespan("T").unwrap(), Duration::new(93_784, 500_000_000));
        assert_eq!(r.dynamic("Dyn").unwrap(), json!({"k": [1]}));
        assert_eq!(r.opt_str("N").unwrap(), None);
        assert_eq!(r.opt_datetime("N").unwrap(), None);

        let r = t.row(1).unwrap();
        assert_eq!(r.str("S").unwrap(), "");
        assert!(r.f64("R").unwrap().is_nan());
        assert!(!r.bool("B").unwrap());
        assert_eq!(r.datetime("D").unwrap(), datetime!(2026-01-01 10:04:59 UTC));
        assert_eq!(r.timespan("T").unwrap(), Duration::from_secs(300));
        assert_eq!(r.dynamic("Dyn").unwrap(), json!({"Cursor": "1"}));
        assert_eq!(t.rows().len(), 2);
    }

    #[test]
    fn errors_name_table_and_column() {
        let t = table();
        let r = t.row(0).unwrap();
        let missing = r.str("Nope").unwrap_err();
        assert_eq!(missing.problem, RowProblem::Missing);
        assert_eq!(
            missing.to_string(),
            "column \"Nope\" of table \"Table_0\": no such column"
        );
        let mistyped = r.i64("S").unwrap_err();
        assert_eq!(
            mistyped.problem,
            RowProblem::Mistyped {
                expected: "an integer",
                found: "\"a\"".into()
            }
        );
        assert_eq!(r.str("N").unwrap_err().problem, RowProblem::Null);
        assert!(r.datetime("S").is_err() && r.timespan("S").is_err() && r.bool("L").is_err());
    }

    #[test]
    fn timespan_forms() {
        for (text, secs, nanos) in [
            ("00:00:00", 0, 0),
            ("00:05:00", 300, 0),
            ("1.00:00:00", 86_400, 0),
            ("10675199.02:48:05.4775807", 922_337_203_685, 477_580_700),
            ("00:00:00.1", 0, 100_000_000),
        ] {
            assert_eq!(
                parse_timespan(text),
                Some(Duration::new(secs, nanos)),
                "{text}"
            );
        }
        for bad in [
            "",
            "5m",
            "1:2",
            "00:00:00.x",
            "a.00:00:00",
            "00:00:00:00",
            "-00:05:00",
        ] {
            assert_eq!(parse_timespan(bad), None, "{bad}");
        }
    }
}
