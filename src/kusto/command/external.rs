//! Azure Storage external tables a restore re-creates from a snapshot: the database's own,
//! not adx-backup's (those are `export.rs`'s), which point at storage outside the database.
//!
//! The definition is rebuilt from its parts: names as `['..']`, types by name, connection
//! strings as hidden literals (`h'..'`, kept out of Kusto's traces), properties as literals.
//! Partitions and the path format are expressions (`Day:datetime = startofday(Ts)`,
//! `datetime_pattern("yyyyMMdd", Day)`): code, checked as [`KqlCode`] so they stay inside
//! their parentheses, like a function body.
//!
//! `.create`, not `.create-or-alter`: with a managed identity's connection string the latter
//! needs AllDatabasesAdmin, `.create` only Database User; it fails if the table exists, so a
//! restore looks first ([`super::find_external_table`])
//! (<https://learn.microsoft.com/kusto/management/external-tables-azure-storage>).

use super::literal::{ident, obfuscated_string_literal, string_literal};
use super::{Command, KqlCode};
use crate::ids::{ColumnName, TableName};
use crate::kusto::types::KustoType;

/// The data formats Kusto reads
/// (<https://learn.microsoft.com/kusto/ingestion-supported-formats>).
const DATA_FORMATS: &[&str] = &[
    "apacheavro",
    "avro",
    "csv",
    "json",
    "multijson",
    "orc",
    "parquet",
    "psv",
    "raw",
    "scsv",
    "singlejson",
    "sohsv",
    "sstream",
    "tsv",
    "tsve",
    "txt",
    "w3clogfile",
];

/// An external table's `dataformat`, one of Kusto's format names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFormat(&'static str);

impl DataFormat {
    pub fn parse(word: &str) -> Option<Self> {
        DATA_FORMATS
            .iter()
            .find(|f| f.eq_ignore_ascii_case(word))
            .map(|f| Self(f))
    }

    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

/// A property's value: text, a flag, or a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PropertyValue {
    Text(String),
    Flag(bool),
    Number(i64),
}

/// `name = value` in `with (...)`; the name is a plain word (letters, digits, `_`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    name: String,
    value: PropertyValue,
}

impl Property {
    /// None when `name` is not a plain word.
    pub fn new(name: &str, value: PropertyValue) -> Option<Self> {
        let word = name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        word.then(|| Self {
            name: name.to_owned(),
            value,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn text(&self) -> String {
        let value = match &self.value {
            PropertyValue::Text(t) => string_literal(t),
            PropertyValue::Flag(b) => b.to_string(),
            PropertyValue::Number(n) => n.to_string(),
        };
        format!("{}={value}", self.name)
    }
}

/// An Azure Storage external table (`kind=storage`) as a snapshot defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageExternalTableSpec {
    pub name: TableName,
    pub columns: Vec<(ColumnName, KustoType)>,
    /// What `partition by ( ... )` holds.
    pub partitions: Option<KqlCode>,
    /// What `pathformat = ( ... )` holds.
    pub path_format: Option<KqlCode>,
    pub data_format: DataFormat,
    /// The storage roots with their authentication suffix (`;managed_identity=...`).
    pub connection_strings: Vec<String>,
    pub properties: Vec<Property>,
}

/// `.create external table ['E'] (['a']:long, ...) kind=storage [partition by (...)
/// [pathformat = (...)]] dataformat=parquet (h'...', ...) [with (folder='..', ...)]`.
pub fn create_storage_external_table(t: &StorageExternalTableSpec) -> Command {
    let columns = t
        .columns
        .iter()
        .map(|(name, ty)| format!("{}:{}", ident(name.as_str()), ty.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let mut text = format!(
        ".create external table {} ({columns}) kind=storage",
        ident(t.name.as_str())
    );
    if let Some(p) = &t.partitions {
        text.push_str(&format!(" partition by ({}{}", p.as_str(), p.then(")")));
    }
    if let Some(f) = &t.path_format {
        text.push_str(&format!(" pathformat = ({}{}", f.as_str(), f.then(")")));
    }
    let roots = t
        .connection_strings
        .iter()
        .map(|c| obfuscated_string_literal(c))
        .collect::<Vec<_>>()
        .join(", ");
    text.push_str(&format!(" dataformat={} ({roots})", t.data_format.as_str()));
    if !t.properties.is_empty() {
        let props = t
            .properties
            .iter()
            .map(Property::text)
            .collect::<Vec<_>>()
            .join(", ");
        text.push_str(&format!(" with ({props})"));
    }
    Command::mgmt(text)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub fn lake_spec() -> StorageExternalTableSpec {
        StorageExternalTableSpec {
            name: TableName::new("Lake 1").expect("valid"),
            columns: vec![
                (ColumnName::new("Ts").expect("valid"), KustoType::DateTime),
                (ColumnName::new("Id").expect("valid"), KustoType::Long),
            ],
            partitions: Some(KqlCode::new("['Day']:datetime = startofday(['Ts'])").expect("code")),
            path_format: Some(
                KqlCode::new("\"day=\" datetime_pattern(\"yyyyMMdd\", ['Day'])").expect("code"),
            ),
            data_format: DataFormat::parse("Parquet").expect("a format"),
            connection_strings: vec![
                "https://lake.blob.core.windows.net/c/it's;managed_identity=system".to_owned(),
            ],
            properties: vec![
                Property::new("folder", PropertyValue::Text("Lake".into())).expect("a word"),
                Property::new("compressed", PropertyValue::Flag(true)).expect("a word"),
                Property::new("Threshold_1", PropertyValue::Number(-3)).expect("a word"),
            ],
        }
    }

    #[test]
    fn a_storage_external_table_is_rebuilt_from_its_parts() {
        assert_eq!(
            create_storage_external_table(&lake_spec()).as_str(),
            ".create external table ['Lake 1'] (['Ts']:datetime, ['Id']:long) kind=storage partition by (['Day']:datetime = startofday(['Ts'])) pathformat = (\"day=\" datetime_pattern(\"yyyyMMdd\", ['Day'])) dataformat=parquet (h'https://lake.blob.core.windows.net/c/it\\'s;managed_identity=system') with (folder='Lake', compressed=true, Threshold_1=-3)"
        );
        let plain = StorageExternalTableSpec {
            partitions: None,
            path_format: None,
            properties: Vec::new(),
            data_format: DataFormat::parse("csv").expect("a format"),
            ..lake_spec()
        };
        assert_eq!(
            create_storage_external_table(&plain).as_str(),
            ".create external table ['Lake 1'] (['Ts']:datetime, ['Id']:long) kind=storage dataformat=csv (h'https://lake.blob.core.windows.net/c/it\\'s;managed_identity=system')"
        );
        assert_eq!(DataFormat::parse("yaml"), None);
        for bad in ["", "1a", "a b", "a=b", "x'"] {
            assert!(
                Property::new(bad, PropertyValue::Flag(true)).is_none(),
                "{bad}"
            );
        }
    }
}
