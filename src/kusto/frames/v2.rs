//! V2: a JSON array of frames, `DataSetHeader` first and `DataSetCompletion` last.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;

use super::{
    Column, ColumnType, DecodeError, KustoTable, QueryResult, TableKind, one_api_errors, split_rows,
};
use crate::kusto::service_error::ServiceError;

#[derive(Deserialize)]
#[serde(tag = "FrameType", rename_all_fields = "PascalCase")]
enum Frame {
    DataTable {
        table_id: i64,
        table_kind: String,
        table_name: String,
        columns: Vec<RawColumn>,
        rows: Vec<Value>,
    },
    TableHeader {
        table_id: i64,
        table_kind: String,
        table_name: String,
        columns: Vec<RawColumn>,
    },
    TableFragment {
        table_id: i64,
        table_fragment_type: Option<String>,
        rows: Vec<Value>,
    },
    TableCompletion {
        #[serde(default)]
        one_api_errors: Option<Value>,
    },
    DataSetCompletion {
        #[serde(default)]
        has_errors: bool,
        #[serde(default)]
        cancelled: bool,
        #[serde(default)]
        one_api_errors: Option<Value>,
    },
    /// `DataSetHeader`, `TableProgress` and anything newer: nothing to keep.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawColumn {
    column_name: String,
    column_type: String,
}

/// Accumulates tables and in-band errors while walking the frames.
#[derive(Default)]
struct DataSet {
    tables: Vec<KustoTable>,
    /// TableId → index in `tables`, for progressive fragments.
    open: HashMap<i64, usize>,
    errors: Vec<ServiceError>,
    completed: bool,
}

/// Parses a V2 body; every frame is read, errors anywhere make the result a failure.
pub fn parse_v2(body: &[u8]) -> Result<QueryResult, DecodeError> {
    let frames: Vec<Frame> =
        serde_json::from_slice(body).map_err(|source| DecodeError::Malformed {
            detail: "not a V2 frame array".to_owned(),
            source: Some(source),
        })?;
    let mut set = DataSet::default();
    for frame in frames {
        set.apply(frame)?;
    }
    set.finish()
}

impl DataSet {
    fn apply(&mut self, frame: Frame) -> Result<(), DecodeError> {
        match frame {
            Frame::DataTable {
                table_id,
                table_kind,
                table_name,
                columns,
                rows,
            } => {
                let mut table = new_table(table_kind, table_name, columns);
                table.rows = split_rows(&table.name, table.columns.len(), rows, &mut self.errors)?;
                self.open.insert(table_id, self.tables.len());
                self.tables.push(table);
            }
            Frame::TableHeader {
                table_id,
                table_kind,
                table_name,
                columns,
            } => {
                self.open.insert(table_id, self.tables.len());
                self.tables.push(new_table(table_kind, table_name, columns));
            }
            Frame::TableFragment {
                table_id,
                table_fragment_type,
                rows,
            } => {
                self.fragment(table_id, table_fragment_type.as_deref(), rows)?;
            }
            Frame::TableCompletion {
                one_api_errors: errors,
            } => self.collect(errors.as_ref())?,
            Frame::DataSetCompletion {
                has_errors,
                cancelled,
                one_api_errors: errors,
            } => {
                self.completed = true;
                self.collect(errors.as_ref())?;
                if (has_errors || cancelled) && self.errors.is_empty() {
                    let what = if cancelled {
                        "the query was cancelled"
                    } else {
                        "errors without details"
                    };
                    self.errors
                        .push(ServiceError::from_text(format!("Kusto reported {what}")));
                }
            }
            Frame::Other => {}
        }
        Ok(())
    }

    fn fragment(
        &mut self,
        table_id: i64,
        kind: Option<&str>,
        rows: Vec<Value>,
    ) -> Result<(), DecodeError> {
        let index = *self.open.get(&table_id).ok_or_else(|| {
            DecodeError::malformed(format!(
                "TableFragment for table {table_id} before its TableHeader"
            ))
        })?;
        let table = &mut self.tables[index];
        let rows = split_rows(&table.name, table.columns.len(), rows, &mut self.errors)?;
        if kind == Some("DataReplace") {
            table.rows = rows;
        } else {
            table.rows.extend(rows);
        }
        Ok(())
    }

    fn collect(&mut self, errors: Option<&Value>) -> Result<(), DecodeError> {
        if let Some(list) = errors {
            self.errors.extend(one_api_errors(list)?);
        }
        Ok(())
    }

    fn finish(self) -> Result<QueryResult, DecodeError> {
        if !self.errors.is_empty() {
            return Err(DecodeError::Partial(self.errors));
        }
        if !self.completed {
            return Err(DecodeError::malformed(
                "the response ended without DataSetCompletion; it is incomplete",
            ));
        }
        Ok(QueryResult {
            tables: self.tables,
        })
    }
}

fn new_table(kind: String, name: String, columns: Vec<RawColumn>) -> KustoTable {
    KustoTable {
        name,
        kind: TableKind::parse(&kind),
        columns: columns
            .into_iter()
            .map(|c| Column {
                ty: ColumnType::parse(&c.column_type),
                name: c.column_name,
            })
            .collect(),
        rows: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: Value) -> Result<QueryResult, DecodeError> {
        parse_v2(body.to_string().as_bytes())
    }

    fn header() -> Value {
        json!({"FrameType":"DataSetHeader","IsProgressive":false,"Version":"v2.0"})
    }

    fn done(has_errors: bool) -> Value {
        json!({"FrameType":"DataSetCompletion","HasErrors":has_errors,"Cancelled":false})
    }

    #[test]
    fn reference_example() {
        let result = parse(json!([header(),
            {"FrameType":"DataTable","TableId":0,"TableKind":"QueryProperties","TableName":"@ExtendedProperties",
             "Columns":[{"ColumnName":"TableId","ColumnType":"int"},{"ColumnName":"Key","ColumnType":"string"},{"ColumnName":"Value","ColumnType":"dynamic"}],
             "Rows":[[1,"Cursor",{"Cursor":"638712399999999999"}]]},
            {"FrameType":"DataTable","TableId":1,"TableKind":"PrimaryResult","TableName":"PrimaryResult",
             "Columns":[{"ColumnName":"Count","ColumnType":"long"}],"Rows":[[1234567]]},
            {"FrameType":"DataTable","TableId":2,"TableKind":"QueryCompletionInformation","TableName":"QueryCompletionInformation",
             "Columns":[{"ColumnName":"Level","ColumnType":"int"}],"Rows":[[4]]},
            done(false)]))
        .unwrap();
        assert_eq!(
            result
                .primary_table()
                .unwrap()
                .row(0)
                .unwrap()
                .i64("Count")
                .unwrap(),
            1_234_567
        );
        assert_eq!(result.cursor().unwrap().as_str(), "638712399999999999");
        assert_eq!(result.tables.len(), 3);
    }

    #[test]
    fn progressive_fragments() {
        let result = parse(json!([header(),
            {"FrameType":"TableHeader","TableId":1,"TableKind":"PrimaryResult","TableName":"PrimaryResult",
             "Columns":[{"ColumnName":"x","ColumnType":"long"}]},
            {"FrameType":"TableFragment","TableId":1,"TableFragmentType":"DataAppend","Rows":[[1],[2]]},
            {"FrameType":"TableProgress","TableId":1,"TableProgress":50.0},
            {"FrameType":"TableFragment","TableId":1,"TableFragmentType":"DataAppend","Rows":[[3]]},
            {"FrameType":"TableCompletion","TableId":1,"RowCount":3},
            done(false)]))
        .unwrap();
        let t = result.primary_table().unwrap();
        assert_eq!(
            t.rows().map(|r| r.i64("x").unwrap()).collect::<Vec<_>>(),
            [1, 2, 3]
        );

        let replaced = parse(json!([header(),
            {"FrameType":"TableHeader","TableId":1,"TableKind":"PrimaryResult","TableName":"P","Columns":[{"ColumnName":"x","ColumnType":"long"}]},
            {"FrameType":"TableFragment","TableId":1,"TableFragmentType":"DataAppend","Rows":[[1]]},
            {"FrameType":"TableFragment","TableId":1,"TableFragmentType":"DataReplace","Rows":[[9]]},
            done(false)]))
        .unwrap();
        assert_eq!(replaced.primary_table().unwrap().rows, vec![vec![json!(9)]]);
    }

    #[test]
    fn errors_in_every_placement() {
        let err = json!({"error":{"code":"LimitsExceeded","message":"Request is invalid and cannot be executed.",
            "@message":"Query result set has exceeded the internal record count limit (E_QUERY_RESULT_SET_TOO_LARGE).","@permanent":false}});
        let table = |rows: Value| {
            json!({"FrameType":"DataTable","TableId":1,"TableKind":"PrimaryResult",
            "TableName":"PrimaryResult","Columns":[{"ColumnName":"x","ColumnType":"long"}],"Rows":rows})
        };
        let bodies = [
            json!([
                header(),
                table(json!([[1], {"OneApiErrors":[err.clone()]}])),
                done(true)
            ]),
            json!([header(), table(json!([[1]])),
                   {"FrameType":"DataSetCompletion","HasErrors":true,"Cancelled":false,"OneApiErrors":[err.clone()]}]),
            json!([header(), {"FrameType":"TableHeader","TableId":1,"TableKind":"PrimaryResult","TableName":"P","Columns":[]},
                   {"FrameType":"TableCompletion","TableId":1,"RowCount":0,"OneApiErrors":[err.clone()]}, done(true)]),
        ];
        for body in bodies {
            match parse(body.clone()) {
                Err(DecodeError::Partial(errors)) => {
                    assert_eq!(errors.len(), 1, "{body}");
                    assert!(errors[0].summary().contains("E_QUERY_RESULT_SET_TOO_LARGE"));
                }
                other => panic!("{body}: {other:?}"),
            }
        }
        match parse(json!([header(), table(json!([[1]])), done(true)])) {
            Err(DecodeError::Partial(errors)) => {
                assert!(errors[0].summary().contains("without details"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn incomplete_or_malformed() {
        let table = json!({"FrameType":"DataTable","TableId":1,"TableKind":"PrimaryResult","TableName":"P",
            "Columns":[{"ColumnName":"x","ColumnType":"long"}],"Rows":[[1]]});
        for body in [
            json!([header(), table]),
            json!({"Tables": []}),
            json!([header(), {"FrameType":"TableFragment","TableId":5,"Rows":[[1]]}, done(false)]),
            json!([header(), {"FrameType":"DataTable","TableId":1,"TableKind":"PrimaryResult","TableName":"P",
                "Columns":[{"ColumnName":"x","ColumnType":"long"}],"Rows":[[1, 2]]}, done(false)]),
        ] {
            assert!(
                matches!(parse(body.clone()), Err(DecodeError::Malformed { .. })),
                "{body}"
            );
        }
    }

    #[test]
    fn damaged_bodies_are_errors_not_panics() {
        let err = json!({"error":{"code":"LimitsExceeded","@message":"(E_QUERY_RESULT_SET_TOO_LARGE)",
            "innererror":{"code":"E_QUERY_RESULT_SET_TOO_LARGE","message":"x"}}});
        let samples = [
            json!([header(),
                {"FrameType":"DataTable","TableId":0,"TableKind":"QueryProperties","TableName":"@ExtendedProperties",
                 "Columns":[{"ColumnName":"TableId","ColumnType":"int"},{"ColumnName":"Key","ColumnType":"string"},{"ColumnName":"Value","ColumnType":"dynamic"}],
                 "Rows":[[1,"Cursor",{"Cursor":"638712399999999999"}]]},
                {"FrameType":"DataTable","TableId":1,"TableKind":"PrimaryResult","TableName":"PrimaryResult",
                 "Columns":[{"ColumnName":"Count","ColumnType":"long"},{"ColumnName":"Span","ColumnType":"timespan"}],
                 "Rows":[[1234567, "10675199.02:48:05.4775807"]]},
                done(false)]),
            json!([header(),
                {"FrameType":"TableHeader","TableId":1,"TableKind":"PrimaryResult","TableName":"P","Columns":[{"ColumnName":"x","ColumnType":"long"}]},
                {"FrameType":"TableFragment","TableId":1,"TableFragmentType":"DataAppend","Rows":[[1],[2]]},
                {"FrameType":"TableFragment","TableId":1,"TableFragmentType":"DataReplace","Rows":[[9]]},
                {"FrameType":"TableCompletion","TableId":1,"RowCount":1,"OneApiErrors":[err.clone()]},
                done(true)]),
        ]
        .map(|v| v.to_string());
        let samples: Vec<&[u8]> = samples.iter().map(|s| s.as_bytes()).collect();
        crate::mutate::check(0x52e2, &samples, |body| {
            super::super::tests::read_through(parse_v2(body).map(|r| r.tables))
        });
    }
}
