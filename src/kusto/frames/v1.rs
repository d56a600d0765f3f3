//! V1: `{"Tables":[{"TableName","Columns":[{"ColumnName","DataType","ColumnType"}],"Rows"}],"Exceptions"?}`.

use serde::Deserialize;
use serde_json::Value;

use super::{Column, ColumnType, DecodeError, KustoTable, TableKind, exception_error, split_rows};
use crate::kusto::service_error::ServiceError;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Response {
    tables: Vec<RawTable>,
    #[serde(default)]
    exceptions: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawTable {
    table_name: String,
    columns: Vec<RawColumn>,
    rows: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawColumn {
    column_name: String,
    /// The Kusto type; older services send only the .NET `DataType`.
    column_type: Option<String>,
    data_type: Option<String>,
}

/// Parses a V1 body into all its tables, kinds assigned the way the SDKs do.
pub fn parse_v1(body: &[u8]) -> Result<Vec<KustoTable>, DecodeError> {
    let response: Response =
        serde_json::from_slice(body).map_err(|source| DecodeError::Malformed {
            detail: "not a V1 result ({\"Tables\":[...]})".to_owned(),
            source: Some(source),
        })?;
    let mut errors: Vec<ServiceError> = response.exceptions.iter().map(exception_error).collect();
    let mut tables = response
        .tables
        .into_iter()
        .map(|raw| convert(raw, &mut errors))
        .collect::<Result<Vec<_>, _>>()?;
    if !errors.is_empty() {
        return Err(DecodeError::Partial(errors));
    }
    assign_kinds(&mut tables)?;
    Ok(tables)
}

fn convert(raw: RawTable, errors: &mut Vec<ServiceError>) -> Result<KustoTable, DecodeError> {
    let columns: Vec<Column> = raw
        .columns
        .into_iter()
        .map(|c| Column {
            name: c.column_name,
            ty: ColumnType::parse(c.column_type.or(c.data_type).as_deref().unwrap_or("")),
        })
        .collect();
    let rows = split_rows(&raw.table_name, columns.len(), raw.rows, errors)?;
    Ok(KustoTable {
        name: raw.table_name,
        kind: TableKind::PrimaryResult,
        columns,
        rows,
    })
}

/// At most two tables: the result and `@ExtendedProperties`. More: the last is the table of
/// contents, whose row `i` gives table `i`'s `Kind` and `Name`.
fn assign_kinds(tables: &mut [KustoTable]) -> Result<(), DecodeError> {
    if tables.len() <= 2 {
        if let Some(props) = tables.get_mut(1) {
            props.kind = TableKind::QueryProperties;
        }
        return Ok(());
    }
    let Some((toc, data)) = tables.split_last_mut() else {
        return Ok(());
    };
    toc.kind = TableKind::TableOfContents;
    for (i, table) in data.iter_mut().enumerate() {
        let entry = toc.row(i).ok_or_else(|| {
            DecodeError::malformed(format!("the table of contents has no entry for table {i}"))
        })?;
        let (kind, name) = entry
            .str("Kind")
            .and_then(|kind| Ok((kind, entry.str("Name")?)))
            .map_err(|e| DecodeError::malformed(e.to_string()))?;
        table.kind = match kind {
            "QueryResult" => TableKind::PrimaryResult,
            "QueryProperties" => TableKind::QueryProperties,
            "QueryStatus" => TableKind::QueryCompletionInformation,
            other => TableKind::Other(other.to_owned()),
        };
        table.name = name.to_owned();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: Value) -> Result<Vec<KustoTable>, DecodeError> {
        parse_v1(body.to_string().as_bytes())
    }

    #[test]
    fn single_table_is_the_result() {
        let tables = parse(json!({"Tables":[{"TableName":"Table_0","Columns":[
            {"ColumnName":"Name","DataType":"String","ColumnType":"string"},
            {"ColumnName":"IsDisabled","DataType":"Boolean"}],
            "Rows":[["ce_T", 0]]}]}))
        .unwrap();
        assert_eq!(tables.len(), 1);
        assert_eq!(tables[0].kind, TableKind::PrimaryResult);
        assert_eq!(
            tables[0].columns[1].ty,
            ColumnType::Known(crate::kusto::types::KustoType::Bool)
        );
        assert!(!tables[0].row(0).unwrap().bool("IsDisabled").unwrap());
    }

    #[test]
    fn table_of_contents_names_the_tables() {
        let tables = parse(json!({"Tables":[
            {"TableName":"Table_0","Columns":[{"ColumnName":"Count","DataType":"Int64","ColumnType":"long"}],"Rows":[[3]]},
            {"TableName":"Table_1","Columns":[{"ColumnName":"Value","DataType":"String","ColumnType":"string"}],"Rows":[["{\"Cursor\":\"637239957206013576\"}"]]},
            {"TableName":"Table_2","Columns":[{"ColumnName":"Severity","DataType":"Int32"}],"Rows":[[4]]},
            {"TableName":"Table_3","Columns":[
                {"ColumnName":"Ordinal","DataType":"Int64"},{"ColumnName":"Kind","DataType":"String"},
                {"ColumnName":"Name","DataType":"String"},{"ColumnName":"Id","DataType":"String"},
                {"ColumnName":"PrettyName","DataType":"String"}],
             "Rows":[[0,"QueryResult","PrimaryResult","a",""],[1,"QueryProperties","@ExtendedProperties","b",""],
                     [2,"QueryStatus","QueryStatus","c",""]]}]}))
        .unwrap();
        let kinds: Vec<_> = tables.iter().map(|t| t.kind.clone()).collect();
        assert_eq!(
            kinds,
            [
                TableKind::PrimaryResult,
                TableKind::QueryProperties,
                TableKind::QueryCompletionInformation,
                TableKind::TableOfContents
            ]
        );
        assert_eq!(tables[1].name, "@ExtendedProperties");
        let result = super::super::QueryResult { tables };
        assert_eq!(result.cursor().unwrap().as_str(), "637239957206013576");
    }

    #[test]
    fn exceptions_make_a_partial_failure() {
        let body = json!({"Tables":[{"TableName":"Table_0","Columns":[{"ColumnName":"x","DataType":"Int64"}],
            "Rows":[[1],{"Exceptions":["Query execution has exceeded the allowed limits (E_LOW_MEMORY_CONDITION)"]}]}],
            "Exceptions":["Query execution has exceeded the allowed limits (E_LOW_MEMORY_CONDITION)"]});
        match parse(body) {
            Err(DecodeError::Partial(errors)) => {
                assert_eq!(errors.len(), 2);
                assert!(errors[0].summary().contains("E_LOW_MEMORY_CONDITION"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_bodies() {
        for body in [
            json!({"tables": []}),
            json!({"Tables":[{"TableName":"T","Columns":[{"ColumnName":"x"}],"Rows":[[1, 2]]}]}),
            json!({"Tables":[{"TableName":"T","Columns":[{"ColumnName":"x"}],"Rows":[7]}]}),
            json!({"Tables":[{"TableName":"T","Columns":[],"Rows":[]},{"TableName":"U","Columns":[],"Rows":[]},
                             {"TableName":"TOC","Columns":[{"ColumnName":"Kind"}],"Rows":[]}]}),
        ] {
            assert!(
                matches!(parse(body.clone()), Err(DecodeError::Malformed { .. })),
                "{body}"
            );
        }
        assert!(matches!(
            parse_v1(b"<html>"),
            Err(DecodeError::Malformed {
                source: Some(_),
                ..
            })
        ));
    }

    #[test]
    fn damaged_bodies_are_errors_not_panics() {
        let samples = [
            json!({"Tables":[{"TableName":"Table_0","Columns":[
                {"ColumnName":"Name","DataType":"String","ColumnType":"string"},
                {"ColumnName":"Interval","DataType":"TimeSpan","ColumnType":"timespan"},
                {"ColumnName":"At","DataType":"DateTime","ColumnType":"datetime"},
                {"ColumnName":"IsDisabled","DataType":"Boolean"}],
                "Rows":[["ce_T", "1.02:03:04.5000000", "2026-01-01T10:04:59.1234567Z", 0], [null, "00:05:00", null, true]]}]}),
            json!({"Tables":[
                {"TableName":"Table_0","Columns":[{"ColumnName":"Count","DataType":"Int64","ColumnType":"long"}],"Rows":[[3]]},
                {"TableName":"Table_1","Columns":[{"ColumnName":"Value","DataType":"String","ColumnType":"string"}],"Rows":[["{\"Cursor\":\"637239957206013576\"}"]]},
                {"TableName":"Table_2","Columns":[{"ColumnName":"Kind","DataType":"String"},{"ColumnName":"Name","DataType":"String"}],
                 "Rows":[["QueryResult","PrimaryResult"],["QueryProperties","@ExtendedProperties"],["QueryStatus","QueryStatus"]]}]}),
            json!({"Tables":[{"TableName":"Table_0","Columns":[{"ColumnName":"x","DataType":"Int64"}],
                "Rows":[[1],{"Exceptions":["(E_LOW_MEMORY_CONDITION)"]}]}],"Exceptions":["(E_LOW_MEMORY_CONDITION)"]}),
        ]
        .map(|v| v.to_string());
        let samples: Vec<&[u8]> = samples.iter().map(|s| s.as_bytes()).collect();
        crate::mutate::check(0x51e1, &samples, |body| {
            super::super::tests::read_through(parse_v1(body))
        });
    }
}
