//! External tables: schema, storage roots, and how a row maps to a partition path.

use serde_json::json;

use crate::error::SimError;
use crate::parse::command::{ExternalTableDef, PartitionDef, PartitionFn, PathPart, Props};
use crate::table::Column;
use crate::value::Value;
use crate::value::temporal::{TICKS_PER_DAY, format_pattern};

const TICKS_PER_HOUR: i64 = TICKS_PER_DAY / 24;

/// Kusto's folder name for a null or invalid partition value.
pub const DEFAULT_PARTITION: &str = "__DEFAULT_PARTITION__";

#[derive(Debug, Clone)]
pub struct ExternalTable {
    pub name: String,
    pub columns: Vec<Column>,
    pub partitions: Vec<PartitionDef>,
    pub path_format: Option<Vec<PathPart>>,
    /// Connection strings as given (auth suffix included).
    pub connection_strings: Vec<String>,
    pub props: Props,
}

impl ExternalTable {
    pub fn from_def(def: &ExternalTableDef) -> Result<Self, SimError> {
        if def.data_format != "parquet" {
            return Err(crate::error::not_supported(&format!(
                "external table dataformat={}",
                def.data_format
            )));
        }
        let columns: Vec<Column> = def
            .columns
            .iter()
            .map(|(n, t)| Column::new(n.clone(), *t))
            .collect();
        for p in &def.partitions {
            let source = partition_source(p);
            if !columns.iter().any(|c| c.name == source) {
                return Err(SimError::semantic(format!(
                    "Partition '{}' refers to column '{source}', which the external table doesn't have",
                    p.name
                )));
            }
        }
        if def.connection_strings.is_empty() {
            return Err(SimError::semantic(
                "An external table needs a connection string",
            ));
        }
        Ok(Self {
            name: def.name.clone(),
            columns,
            partitions: def.partitions.clone(),
            path_format: def.path_format.clone(),
            connection_strings: def.connection_strings.clone(),
            props: def.props.clone(),
        })
    }

    pub fn folder(&self) -> String {
        self.props.get_str("folder").unwrap_or_default()
    }

    pub fn docstring(&self) -> String {
        self.props.get_str("docstring").unwrap_or_default()
    }

    pub fn file_extension(&self) -> String {
        self.props
            .get_str("fileExtension")
            .unwrap_or_else(|| ".parquet".into())
    }

    pub fn name_prefix(&self) -> Option<String> {
        self.props.get_str("namePrefix")
    }

    /// Whether a blob is one of this table's files: reads see only the names that writes
    /// give (`namePrefix` and `fileExtension` "apply to writes and filter reads").
    pub fn holds_file(&self, blob_path: &str) -> bool {
        let name = blob_path.rsplit('/').next().unwrap_or(blob_path);
        name.ends_with(&self.file_extension())
            && self
                .name_prefix()
                .is_none_or(|prefix| name.starts_with(&prefix))
    }

    /// The partition folder a row lands in (empty for an unpartitioned table).
    pub fn partition_path(&self, row: &[Value]) -> String {
        let values: Vec<(String, Value)> = self
            .partitions
            .iter()
            .map(|p| (p.name.clone(), self.partition_value(p, row)))
            .collect();
        let value_of = |name: &str| {
            values
                .iter()
                .find(|(n, _)| n == name)
                .map_or(Value::Null, |(_, v)| v.clone())
        };
        // A partition named in the path format without a pattern renders in its function's
        // default format, as it does when there is no path format at all.
        let default_of = |name: &str| {
            self.partitions
                .iter()
                .find(|p| p.name == name)
                .map_or("yyyy/MM/dd", |p| default_pattern(&p.func))
        };
        match &self.path_format {
            Some(parts) => parts
                .iter()
                .map(|part| match part {
                    PathPart::Separator(s) => s.clone(),
                    PathPart::Partition(n) => render(&value_of(n), default_of(n)),
                    PathPart::DatetimePattern(f, n) => render(&value_of(n), f),
                })
                .collect(),
            None => self
                .partitions
                .iter()
                .zip(&values)
                .map(|(p, (_, v))| render(v, default_pattern(&p.func)))
                .collect::<Vec<_>>()
                .join("/"),
        }
    }

    fn partition_value(&self, p: &PartitionDef, row: &[Value]) -> Value {
        let source = partition_source(p);
        let Some(idx) = self.columns.iter().position(|c| c.name == source) else {
            return Value::Null;
        };
        match (&p.func, row.get(idx)) {
            (PartitionFn::StringColumn(_), Some(v)) => Value::String(v.to_kusto_string()),
            (PartitionFn::StartOf(f, _), Some(Value::DateTime(t))) => {
                crate::engine::functions::start_of(f, *t).map_or(Value::Null, Value::DateTime)
            }
            (PartitionFn::Bin(_, span), Some(Value::DateTime(t))) => {
                Value::DateTime(t.div_euclid(*span) * span)
            }
            _ => Value::Null,
        }
    }

    /// `Partitions` column of `.show external tables`.
    pub fn partitions_json(&self) -> serde_json::Value {
        let parts: Vec<_> = self
            .partitions
            .iter()
            .map(|p| {
                let (kind, function) = match &p.func {
                    PartitionFn::StringColumn(_) => ("Value", String::new()),
                    PartitionFn::StartOf(f, _) => ("DateTime", (*f).to_string()),
                    PartitionFn::Bin(_, span) => ("DateTime", format!("bin({span})")),
                };
                json!({"Name": p.name, "Kind": kind, "ColumnName": partition_source(p), "Function": function})
            })
            .collect();
        json!(parts)
    }

    /// `PathFormat` column of `.show external tables`.
    pub fn path_format_text(&self) -> String {
        let Some(parts) = &self.path_format else {
            return String::new();
        };
        parts
            .iter()
            .map(|p| match p {
                PathPart::Separator(s) => format!("\"{s}\""),
                PathPart::Partition(n) => n.clone(),
                PathPart::DatetimePattern(f, n) => format!("datetime_pattern(\"{f}\", {n})"),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `Properties` column: JSON text as Kusto shows it.
    pub fn properties_json(&self) -> String {
        json!({
            "Format": "Parquet",
            "Compressed": false,
            "FileExtension": self.file_extension(),
            "IncludeHeaders": "None",
            "Encoding": "None",
            "NamePrefix": self.name_prefix(),
        })
        .to_string()
    }

    /// Connection strings with any SAS signature hidden, as Kusto obfuscates them.
    pub fn masked_connection_strings(&self) -> serde_json::Value {
        let masked: Vec<String> = self
            .connection_strings
            .iter()
            .map(|c| match c.split_once('?') {
                Some((base, _)) => format!("{base}?*****"),
                None => c.clone(),
            })
            .collect();
        json!(masked)
    }
}

impl ExternalTable {
    /// Connection strings as `.show database schema as csl script` writes them: Kusto
    /// returns "credentials persisted in Kusto configurations" only with
    /// `ShowObfuscatedStrings = true`
    /// (<https://learn.microsoft.com/kusto/management/show-schema-database#supported-options>),
    /// and does not say how it hides them. kusto-sim's reading: a SAS (`?...`) and any `;`
    /// suffix that is a credential (an account key, `;token=`, `;sharedkey=`) become
    /// `*****`; `;managed_identity=...` and `;impersonate` name no secret and stay
    /// (<https://learn.microsoft.com/kusto/api/connection-strings/storage-connection-strings#storage-authentication-methods>).
    pub fn script_connection_strings(&self) -> Vec<String> {
        self.connection_strings
            .iter()
            .map(|c| {
                if let Some((base, _)) = c.split_once('?') {
                    return format!("{base}?*****");
                }
                match c.split_once(';') {
                    Some((_, auth))
                        if auth.eq_ignore_ascii_case("impersonate")
                            || auth.to_ascii_lowercase().starts_with("managed_identity=") =>
                    {
                        c.clone()
                    }
                    Some((base, _)) => format!("{base};*****"),
                    None => c.clone(),
                }
            })
            .collect()
    }
}

fn partition_source(p: &PartitionDef) -> &str {
    match &p.func {
        PartitionFn::StringColumn(c) | PartitionFn::StartOf(_, c) | PartitionFn::Bin(c, _) => c,
    }
}

fn default_pattern(f: &PartitionFn) -> &'static str {
    match f {
        PartitionFn::StartOf("startofyear", _) => "yyyy",
        PartitionFn::StartOf("startofmonth", _) => "yyyy/MM",
        PartitionFn::Bin(_, span) if *span < TICKS_PER_HOUR => "yyyy/MM/dd/HH/mm",
        PartitionFn::Bin(_, span) if *span < TICKS_PER_DAY => "yyyy/MM/dd/HH",
        _ => "yyyy/MM/dd",
    }
}

fn render(v: &Value, pattern: &str) -> String {
    match v {
        Value::DateTime(t) => format_pattern(*t, pattern),
        Value::String(s) if !s.is_empty() => s.clone(),
        _ => DEFAULT_PARTITION.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::command::{Command, parse_command};
    use crate::value::temporal::parse_datetime;

    fn table(text: &str) -> ExternalTable {
        let Ok(parsed) = parse_command(text) else {
            panic!("parse")
        };
        let Command::CreateOrAlterExternalTable(def) = parsed.command else {
            panic!("kind")
        };
        ExternalTable::from_def(&def).unwrap()
    }

    #[test]
    fn day_partitions_follow_the_path_format() {
        let t = table(
            ".create-or-alter external table E (a:datetime, b:long) kind=storage partition by (Day:datetime = startofday(a)) pathformat = (datetime_pattern(\"yyyyMMdd\", Day)) dataformat=parquet ('http://x/c/p')",
        );
        let ts = parse_datetime("2024-01-15T10:11:12Z").unwrap();
        assert_eq!(
            t.partition_path(&[Value::DateTime(ts), Value::Long(1)]),
            "20240115"
        );
        assert_eq!(
            t.partition_path(&[Value::Null, Value::Long(1)]),
            DEFAULT_PARTITION
        );
    }

    #[test]
    fn partitions_without_a_pattern_take_their_function_default() {
        let t = table(
            ".create-or-alter external table E (a:datetime, s:string) kind=storage partition by (M:datetime = startofmonth(a), H:datetime = bin(a, 1h), S:string = s) pathformat = (\"m=\" M \"/h=\" H \"/\" S) dataformat=parquet ('http://x/c/p')",
        );
        let ts = parse_datetime("2024-01-15T10:11:12Z").unwrap();
        assert_eq!(
            t.partition_path(&[Value::DateTime(ts), Value::String("eu".into())]),
            "m=2024/01/h=2024/01/15/10/eu"
        );
        assert_eq!(
            t.partition_path(&[Value::Null, Value::Null]),
            "m=__DEFAULT_PARTITION__/h=__DEFAULT_PARTITION__/__DEFAULT_PARTITION__"
        );
        let plain = table(
            ".create external table P (a:datetime) kind=storage partition by (D:datetime = bin(a, 15m)) dataformat=parquet ('http://x/c/p') with (namePrefix='bk', fileExtension='.pq')",
        );
        assert_eq!(
            plain.partition_path(&[Value::DateTime(ts)]),
            "2024/01/15/10/00"
        );
        assert!(plain.holds_file("c/p/2024/bk_1.pq"));
        assert!(!plain.holds_file("c/p/2024/other_1.pq"));
        assert!(!plain.holds_file("c/p/2024/bk_1.parquet"));
    }

    #[test]
    fn unknown_partition_column_is_rejected() {
        let Ok(parsed) = parse_command(
            ".create external table E (a:datetime) kind=storage partition by (D:datetime = startofday(zz)) dataformat=parquet ('http://x')",
        ) else {
            panic!("parse")
        };
        let Command::CreateOrAlterExternalTable(def) = parsed.command else {
            panic!("kind")
        };
        assert!(ExternalTable::from_def(&def).is_err());
    }
}
