//! A typed result table: what commands return and what queries produce.

use crate::value::{ColumnType, Value};

#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub ty: ColumnType,
}

impl Column {
    pub fn new(name: impl Into<String>, ty: ColumnType) -> Self {
        Self {
            name: name.into(),
            ty,
        }
    }
}

/// Where a table row came from; lets `ingestion_time()` and cursor predicates work on it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowMeta {
    pub ingestion_time: Option<i64>,
    pub cursor: u64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResultTable {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
    /// Present (same length as `rows`) only while rows still are table records.
    pub meta: Option<Vec<RowMeta>>,
}

impl ResultTable {
    pub fn new(columns: Vec<Column>) -> Self {
        Self {
            columns,
            rows: Vec::new(),
            meta: None,
        }
    }

    /// Builds an empty table from a grammar-style schema `"(Name: string, Count: long)"`.
    /// Only called with the literal schemas in this crate; an unknown type name is a bug
    /// caught by the tests of each command.
    pub fn with_schema(schema: &str) -> Self {
        let columns = schema
            .trim_matches(|c| c == '(' || c == ')')
            .split(',')
            .filter_map(|part| {
                let (name, ty) = part.split_once(':')?;
                Some(Column::new(name.trim(), ColumnType::parse(ty.trim())?))
            })
            .collect();
        Self::new(columns)
    }

    pub fn push(&mut self, row: Vec<Value>) {
        self.rows.push(row);
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_text() {
        let t = ResultTable::with_schema("(TableName: string, Total: long, IsOn: bool)");
        let names: Vec<_> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["TableName", "Total", "IsOn"]);
        assert_eq!(t.columns[1].ty, ColumnType::Long);
    }
}
