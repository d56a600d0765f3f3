//! External tables, continuous exports, one-shot exports and the operations they start.

use std::time::Duration;

use time::OffsetDateTime;

use super::literal::{
    datetime_literal, ident, obfuscated_string_literal, string_literal, timespan_literal,
};
use super::{Command, Query};
use crate::ids::{ColumnName, ExportName, OperationId, TableName};
use crate::kusto::types::KustoType;

/// The virtual partition column of a day-partitioned external table. Chosen so it cannot
/// collide with a real column of the source table in practice; it never appears in the data.
pub const PARTITION_COLUMN: &str = "AdxBackupDay";

/// What `create_external_table` and `alter_external_table` write: a parquet external table
/// over one storage folder, optionally partitioned by the day of a datetime column
/// (`<root>/yyyyMMdd/...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalTableSpec {
    pub name: TableName,
    pub columns: Vec<(ColumnName, KustoType)>,
    /// A datetime column; rows are written under the folder of its day.
    pub partition: Option<ColumnName>,
    /// Folder URL plus auth suffix, e.g. `https://acct.blob.core.windows.net/c/Db/T;managed_identity=system`.
    pub storage_uri: String,
    /// The Kusto UI folder the table is listed under.
    pub folder: String,
    /// E.g. `.parquet`; applies to written files and filters reads.
    pub file_extension: String,
    /// The table's `docString`, e.g. a marker and fingerprint of what created it.
    pub doc_string: String,
    /// `namePrefix`: the start of every file name an export through this table writes. A
    /// backfill batch gets its own, since `.export to table` takes none.
    pub name_prefix: Option<String>,
}

/// `.create external table ['bk_T'] (...) kind=storage [partition by ...] dataformat=parquet (h'...') with (...)`
///
/// Fails if the table exists. Needs Database User, where `.create-or-alter` of a table whose
/// connection string uses a managed identity needs AllDatabasesAdmin (docs/deploy.md).
pub fn create_external_table(spec: &ExternalTableSpec) -> Command {
    external_table_command(".create", spec)
}

/// `.alter external table ['bk_T'] (...) ...`, the same definition as [`create_external_table`].
///
/// Fails if the table is missing. Needs Table Admin on the external table (its creator has it).
pub fn alter_external_table(spec: &ExternalTableSpec) -> Command {
    external_table_command(".alter", spec)
}

fn external_table_command(verb: &str, spec: &ExternalTableSpec) -> Command {
    let columns = spec
        .columns
        .iter()
        .map(|(name, ty)| format!("{}:{}", ident(name.as_str()), ty.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let partition = spec.partition.as_ref().map_or_else(String::new, |col| {
        let day = ident(PARTITION_COLUMN);
        format!(
            " partition by ({day}:datetime = startofday({})) pathformat = (datetime_pattern(\"yyyyMMdd\", {day}))",
            ident(col.as_str())
        )
    });
    let name_prefix = spec
        .name_prefix
        .as_deref()
        .map_or_else(String::new, |prefix| {
            format!(", namePrefix={}", string_literal(prefix))
        });
    Command::mgmt(format!(
        "{verb} external table {} ({columns}) kind=storage{partition} dataformat=parquet ({}) with (folder={}, docString={}, fileExtension={}{name_prefix})",
        ident(spec.name.as_str()),
        obfuscated_string_literal(&spec.storage_uri),
        string_literal(&spec.folder),
        string_literal(&spec.doc_string),
        string_literal(&spec.file_extension),
    ))
}

/// `.drop external table ['bk_T'] ifexists`
pub fn drop_external_table(name: &TableName) -> Command {
    Command::mgmt(format!(
        ".drop external table {} ifexists",
        ident(name.as_str())
    ))
}

/// `.show external tables`
pub fn show_external_tables() -> Command {
    Command::mgmt(".show external tables".to_owned())
}

/// `.show external tables | where TableName == 'x'`: one table's row (or none), without
/// listing every external table of the database; unlike `.show external table x`, a missing
/// table is an empty answer rather than an error.
pub fn find_external_table(name: &TableName) -> Command {
    Command::mgmt(format!(
        ".show external tables | where TableName == {}",
        string_literal(name.as_str())
    ))
}

/// A continuous export of a whole table into its external table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContinuousExportSpec {
    pub name: ExportName,
    pub table: TableName,
    pub external_table: TableName,
    /// `intervalBetweenRuns`; Kusto wants more than one minute.
    pub interval: Duration,
    /// `forcedLatency`: only rows ingested at least this long ago are exported.
    pub forced_latency: Option<Duration>,
    /// `sizeLimit` in bytes per artifact (100 MB – 1 GB).
    pub size_limit: Option<u64>,
}

/// `.create-or-alter continuous-export ['ce'] over (['T']) to table ['bk_T'] with (...) <| ['T']`
///
/// The query is the bare table: the database cursor decides what each run exports.
pub fn create_or_alter_continuous_export(spec: &ContinuousExportSpec) -> Command {
    let mut props = vec![format!(
        "intervalBetweenRuns={}",
        timespan_literal(spec.interval)
    )];
    if let Some(latency) = spec.forced_latency {
        props.push(format!("forcedLatency={}", timespan_literal(latency)));
    }
    if let Some(limit) = spec.size_limit {
        props.push(format!("sizeLimit={limit}"));
    }
    let table = ident(spec.table.as_str());
    Command::mgmt(format!(
        ".create-or-alter continuous-export {} over ({table}) to table {} with ({}) <| {table}",
        ident(spec.name.as_str()),
        ident(spec.external_table.as_str()),
        props.join(", "),
    ))
}

/// `.show continuous-exports`
pub fn show_continuous_exports() -> Command {
    Command::mgmt(".show continuous-exports".to_owned())
}

/// `.show continuous-exports | where Name == 'ce'`: one export's row (or none).
pub fn find_continuous_export(name: &ExportName) -> Command {
    Command::mgmt(format!(
        ".show continuous-exports | where Name == {}",
        string_literal(name.as_str())
    ))
}

/// `.show continuous-export ['ce']`
pub fn show_continuous_export(name: &ExportName) -> Command {
    Command::mgmt(format!(".show continuous-export {}", ident(name.as_str())))
}

/// `.show continuous-export ['ce'] exported-artifacts [| where Timestamp > datetime(...)]`
pub fn show_exported_artifacts(name: &ExportName, since: Option<OffsetDateTime>) -> Command {
    let filter = since.map_or_else(String::new, |at| {
        format!(" | where Timestamp > {}", datetime_literal(at))
    });
    Command::mgmt(format!(
        ".show continuous-export {} exported-artifacts{filter}",
        ident(name.as_str())
    ))
}

/// `.show continuous-export ['ce'] failures`
pub fn show_continuous_export_failures(name: &ExportName) -> Command {
    Command::mgmt(format!(
        ".show continuous-export {} failures",
        ident(name.as_str())
    ))
}

/// `.enable continuous-export ['ce']` (keeps the cursor; the export catches up).
pub fn enable_continuous_export(name: &ExportName) -> Command {
    Command::mgmt(format!(
        ".enable continuous-export {}",
        ident(name.as_str())
    ))
}

/// `.disable continuous-export ['ce']`
pub fn disable_continuous_export(name: &ExportName) -> Command {
    Command::mgmt(format!(
        ".disable continuous-export {}",
        ident(name.as_str())
    ))
}

/// `.drop continuous-export ['ce']`
pub fn drop_continuous_export(name: &ExportName) -> Command {
    Command::mgmt(format!(".drop continuous-export {}", ident(name.as_str())))
}

/// Knobs of `.export to table`; None leaves Kusto's default. `.export to table` has no
/// `namePrefix`: files are named by the external table's own properties.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportToTableOptions {
    /// `sizeLimit` in bytes per artifact (100 MB – 1 GB).
    pub size_limit: Option<u64>,
    /// `parquetRowGroupSize`; smaller groups need less writer memory.
    pub parquet_row_group_size: Option<u32>,
}

/// `.export async to table ['bk_T'] [with (...)] <| query` → one row `OperationId`.
pub fn export_async_to_table(
    external_table: &TableName,
    query: &Query,
    options: ExportToTableOptions,
) -> Command {
    let mut props = Vec::new();
    if let Some(limit) = options.size_limit {
        props.push(format!("sizeLimit={limit}"));
    }
    if let Some(rows) = options.parquet_row_group_size {
        props.push(format!("parquetRowGroupSize={rows}"));
    }
    let with = if props.is_empty() {
        String::new()
    } else {
        format!(" with ({})", props.join(", "))
    };
    Command::mgmt(format!(
        ".export async to table {}{with} <| {}",
        ident(external_table.as_str()),
        query.as_str()
    ))
}

/// `.export to table ['E'] <| query`, synchronously: the answer lists each file written
/// (`ExternalTableName, Path, NumRecords`). Only for a few rows: it holds the request open.
pub fn export_to_table(external_table: &TableName, query: &Query) -> Command {
    Command::mgmt(format!(
        ".export to table {} <| {}",
        ident(external_table.as_str()),
        query.as_str()
    ))
}

/// `.show operations (id1, id2, ...)`: the latest state of each (only for operations younger
/// than 6 hours). None when there is nothing to ask about.
pub fn show_operations(ids: &[OperationId]) -> Option<Command> {
    if ids.is_empty() {
        return None;
    }
    let list = ids.iter().map(operation_id).collect::<Vec<_>>().join(", ");
    Some(Command::mgmt(format!(".show operations ({list})")))
}

/// `.show operations <id>`: the latest state of one operation (younger than 6 hours).
pub fn show_operation(id: &OperationId) -> Command {
    Command::mgmt(format!(".show operations {}", operation_id(id)))
}

/// `.show operation <id> details`: the result of a completed async command.
pub fn show_operation_details(id: &OperationId) -> Command {
    Command::mgmt(format!(".show operation {} details", operation_id(id)))
}

/// Operation ids are GUIDs and are written bare, re-printed from the parsed value so nothing
/// but hex digits and dashes gets through. Anything else (which Kusto never issues) becomes an
/// escaped string literal: Kusto rejects it, and it cannot change the command.
fn operation_id(id: &OperationId) -> String {
    match uuid::Uuid::parse_str(id.as_str()) {
        Ok(guid) => guid.hyphenated().to_string(),
        Err(_) => string_literal(id.as_str()),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::kusto::command::QueryBuilder;
    use time::macros::datetime;

    fn t(name: &str) -> TableName {
        TableName::new(name).unwrap()
    }
    fn ce(name: &str) -> ExportName {
        ExportName::new(name).unwrap()
    }

    pub(in crate::kusto::command) fn external_spec(partition: bool) -> ExternalTableSpec {
        ExternalTableSpec {
            name: t("bk_My Table"),
            columns: vec![
                (ColumnName::new("Timestamp").unwrap(), KustoType::DateTime),
                (ColumnName::new("Id").unwrap(), KustoType::Long),
                (ColumnName::new("Payload").unwrap(), KustoType::Dynamic),
            ],
            partition: partition.then(|| ColumnName::new("Timestamp").unwrap()),
            storage_uri:
                "https://acct.blob.core.windows.net/backup/Db/My Table;managed_identity=system"
                    .to_owned(),
            folder: "adx-backup".to_owned(),
            file_extension: ".parquet".to_owned(),
            doc_string: "adx-backup:0123abcd".to_owned(),
            name_prefix: None,
        }
    }

    pub(in crate::kusto::command) fn export_spec() -> ContinuousExportSpec {
        ContinuousExportSpec {
            name: ce("ce_My Table"),
            table: t("My Table"),
            external_table: t("bk_My Table"),
            interval: Duration::from_secs(300),
            forced_latency: Some(Duration::from_secs(60)),
            size_limit: Some(1_073_741_824),
        }
    }

    #[test]
    fn external_table_partitioned_by_day() {
        assert_eq!(
            create_external_table(&external_spec(true)).as_str(),
            ".create external table ['bk_My Table'] (['Timestamp']:datetime, ['Id']:long, ['Payload']:dynamic) \
             kind=storage partition by (['AdxBackupDay']:datetime = startofday(['Timestamp'])) \
             pathformat = (datetime_pattern(\"yyyyMMdd\", ['AdxBackupDay'])) dataformat=parquet \
             (h'https://acct.blob.core.windows.net/backup/Db/My Table;managed_identity=system') \
             with (folder='adx-backup', docString='adx-backup:0123abcd', fileExtension='.parquet')"
        );
        assert_eq!(
            alter_external_table(&external_spec(false)).as_str(),
            ".alter external table ['bk_My Table'] (['Timestamp']:datetime, ['Id']:long, ['Payload']:dynamic) \
             kind=storage dataformat=parquet \
             (h'https://acct.blob.core.windows.net/backup/Db/My Table;managed_identity=system') \
             with (folder='adx-backup', docString='adx-backup:0123abcd', fileExtension='.parquet')"
        );
        let batch_table = ExternalTableSpec {
            name_prefix: Some("bf-1_b000002-a1".to_owned()),
            ..external_spec(true)
        };
        assert!(
            create_external_table(&batch_table)
                .as_str()
                .ends_with("fileExtension='.parquet', namePrefix='bf-1_b000002-a1')"),
            "{}",
            create_external_table(&batch_table).as_str()
        );
        assert_eq!(
            drop_external_table(&t("bk_T")).as_str(),
            ".drop external table ['bk_T'] ifexists"
        );
        assert_eq!(show_external_tables().as_str(), ".show external tables");
        assert_eq!(
            find_external_table(&t("bk_My Table")).as_str(),
            ".show external tables | where TableName == 'bk_My Table'"
        );
        assert_eq!(
            find_continuous_export(&ce("ce_T")).as_str(),
            ".show continuous-exports | where Name == 'ce_T'"
        );
    }

    #[test]
    fn hostile_storage_uri_stays_one_literal() {
        let mut spec = external_spec(false);
        spec.storage_uri = "x') with (folder='evil'); .drop table T\n".to_owned();
        let text = create_external_table(&spec).as_str().to_owned();
        assert!(
            text.contains(r"(h'x\') with (folder=\'evil\'); .drop table T\n')"),
            "{text}"
        );
    }

    #[test]
    fn continuous_export_commands() {
        assert_eq!(
            create_or_alter_continuous_export(&export_spec()).as_str(),
            ".create-or-alter continuous-export ['ce_My Table'] over (['My Table']) to table ['bk_My Table'] \
             with (intervalBetweenRuns=time(0.00:05:00.0000000), forcedLatency=time(0.00:01:00.0000000), sizeLimit=1073741824) \
             <| ['My Table']"
        );
        let minimal = ContinuousExportSpec {
            forced_latency: None,
            size_limit: None,
            ..export_spec()
        };
        assert!(
            create_or_alter_continuous_export(&minimal)
                .as_str()
                .contains("with (intervalBetweenRuns=time(0.00:05:00.0000000)) <|")
        );
        let name = ce("ce_T");
        assert_eq!(
            show_continuous_exports().as_str(),
            ".show continuous-exports"
        );
        assert_eq!(
            show_continuous_export(&name).as_str(),
            ".show continuous-export ['ce_T']"
        );
        assert_eq!(
            show_exported_artifacts(&name, None).as_str(),
            ".show continuous-export ['ce_T'] exported-artifacts"
        );
        assert_eq!(
            show_exported_artifacts(&name, Some(datetime!(2024-01-15 10:00:00.1234567 UTC)))
                .as_str(),
            ".show continuous-export ['ce_T'] exported-artifacts | where Timestamp > datetime(2024-01-15T10:00:00.1234567Z)"
        );
        assert_eq!(
            show_continuous_export_failures(&name).as_str(),
            ".show continuous-export ['ce_T'] failures"
        );
        assert_eq!(
            enable_continuous_export(&name).as_str(),
            ".enable continuous-export ['ce_T']"
        );
        assert_eq!(
            disable_continuous_export(&name).as_str(),
            ".disable continuous-export ['ce_T']"
        );
        assert_eq!(
            drop_continuous_export(&name).as_str(),
            ".drop continuous-export ['ce_T']"
        );
    }

    #[test]
    fn export_sync_of_one_printed_row() {
        let row = QueryBuilder::print_text(&ColumnName::new("Probe").unwrap(), "it's");
        assert_eq!(
            export_to_table(&t("bk_probe"), &row).as_str(),
            r".export to table ['bk_probe'] <| print ['Probe']='it\'s'"
        );
    }

    #[test]
    fn export_async() {
        let query = QueryBuilder::table(&t("T"))
            .cursor_before_or_at(&crate::ids::Cursor::new("638712345678901234"))
            .build();
        assert_eq!(
            export_async_to_table(&t("bk_T"), &query, ExportToTableOptions::default()).as_str(),
            ".export async to table ['bk_T'] <| ['T'] | where cursor_before_or_at('638712345678901234')"
        );
        let options = ExportToTableOptions {
            size_limit: Some(104_857_600),
            parquet_row_group_size: Some(10_000),
        };
        assert_eq!(
            export_async_to_table(&t("bk_T"), &query, options).as_str(),
            ".export async to table ['bk_T'] with (sizeLimit=104857600, parquetRowGroupSize=10000) \
             <| ['T'] | where cursor_before_or_at('638712345678901234')"
        );
    }

    #[test]
    fn operations() {
        let a = OperationId::new("8B1A2C3D-0000-4000-8000-000000000001");
        let b = OperationId::new("8b1a2c3d-0000-4000-8000-000000000002");
        assert_eq!(
            show_operations(&[a.clone(), b]).unwrap().as_str(),
            ".show operations (8b1a2c3d-0000-4000-8000-000000000001, 8b1a2c3d-0000-4000-8000-000000000002)"
        );
        assert!(show_operations(&[]).is_none());
        assert_eq!(
            show_operation(&a).as_str(),
            ".show operations 8b1a2c3d-0000-4000-8000-000000000001"
        );
        assert_eq!(
            show_operation_details(&a).as_str(),
            ".show operation 8b1a2c3d-0000-4000-8000-000000000001 details"
        );
        let hostile = OperationId::new("x); .drop table T //");
        assert_eq!(
            show_operation_details(&hostile).as_str(),
            ".show operation 'x); .drop table T //' details"
        );
    }
}
