//! The one place that writes KQL.
//!
//! Every command the product sends is built here, from validated names ([`crate::ids`]) and
//! typed values, through the helpers in [`literal`]: identifiers are always `['name']`,
//! strings always escaped single-quoted literals, connection strings always obfuscated
//! `h'...'`, datetimes and timespans always Kusto literals. Nothing else in the crate formats
//! KQL, so nothing from a queue message or a table name can change a command's meaning.
//!
//! [`Command`] can only be made by this module; the client accepts nothing else. Queries are
//! assembled with [`QueryBuilder`], which only takes typed parts. Unit tests pin the exact text
//! of every builder; with `ADXBACKUP_KQL_SAMPLES=<file>` they also write every sample as JSONL
//! so CI can run them through Microsoft's parser (`scripts/validate-kql.mjs`).

mod export;
mod external;
mod ingest;
pub mod literal;
mod objects;
mod query;
mod restore;
mod security;
mod views;

pub use export::{
    ContinuousExportSpec, ExportToTableOptions, ExternalTableSpec, PARTITION_COLUMN,
    alter_external_table, create_external_table, create_or_alter_continuous_export,
    disable_continuous_export, drop_continuous_export, drop_external_table,
    enable_continuous_export, export_async_to_table, export_to_table, find_continuous_export,
    find_external_table, show_continuous_export, show_continuous_export_failures,
    show_continuous_exports, show_exported_artifacts, show_external_tables, show_operation,
    show_operation_details, show_operations,
};
pub use external::{
    DataFormat, Property, PropertyValue, StorageExternalTableSpec, create_storage_external_table,
};
pub use ingest::{
    IngestProps, drop_extents_tagged, ingest_async, ingest_inline, set_or_append, show_capacity,
    show_table_extents_with_tag,
};
pub use literal::{
    datetime_literal, ident, obfuscated_string_literal, string_literal, timespan_literal,
};
pub use objects::{
    CodeError, FunctionSpec, KqlCode, MappingKind, alter_table_caching_policy,
    alter_table_retention_policy, alter_table_update_policy, create_or_alter_function,
    create_or_alter_ingestion_mapping, show_table_retention_policy, show_table_update_policy,
};
pub use query::{Query, QueryBuilder};
pub use restore::{
    create_merge_table, get_ingestion_resources, get_kusto_identity_token,
    show_tables_extents_tagged,
};
pub use security::{
    DatabaseRole, TableRole, add_database_principal, add_database_principals, add_table_principals,
    alter_merge_cluster_managed_identity_policy, alter_table_restricted_view_access,
    alter_table_row_level_security, delete_table_row_level_security_policy,
    show_cluster_managed_identity_policy, show_database_principal_roles,
    show_table_restricted_view_access_policy, show_table_row_level_security_policy,
};
pub use views::{
    MaterializedViewSpec, create_materialized_view_backfilled, find_materialized_view,
};

use crate::ids::{DatabaseName, TableName};

/// How long [`Command::first_line`] may be; enough to recognise a command in a log line.
const FIRST_LINE_MAX: usize = 200;

/// Which endpoint a command is meant for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    /// A `.command`, sent to `/v1/rest/mgmt`.
    Management,
    /// A query, sent to `/v2/rest/query`.
    Query,
}

/// A complete KQL command or query, built by this module and nowhere else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    text: String,
    kind: CommandKind,
}

impl Command {
    fn mgmt(text: String) -> Self {
        Self {
            text,
            kind: CommandKind::Management,
        }
    }

    fn query(text: String) -> Self {
        Self {
            text,
            kind: CommandKind::Query,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn kind(&self) -> CommandKind {
        self.kind
    }

    /// The first line, cut at 200 characters: what errors and logs show of a command.
    pub fn first_line(&self) -> String {
        let line = self.text.lines().next().unwrap_or_default();
        match line.char_indices().nth(FIRST_LINE_MAX) {
            Some((cut, _)) => format!("{}…", &line[..cut]),
            None => line.to_owned(),
        }
    }
}

/// `.show databases`
pub fn show_databases() -> Command {
    Command::mgmt(".show databases".to_owned())
}

/// `.show tables`
pub fn show_tables() -> Command {
    Command::mgmt(".show tables".to_owned())
}

/// `.show materialized-views` → `Name, SourceTable, Query, ...`: views are not tables, so
/// `.show tables` does not list them
/// (<https://learn.microsoft.com/kusto/management/materialized-views/materialized-view-show-commands>).
pub fn show_materialized_views() -> Command {
    Command::mgmt(".show materialized-views".to_owned())
}

/// `.show table ['T'] cslschema` → `TableName, Schema, DatabaseName, Folder, DocString`.
pub fn show_table_cslschema(table: &TableName) -> Command {
    Command::mgmt(format!(".show table {} cslschema", ident(table.as_str())))
}

/// `.show table ['T'] schema as json` → `TableName, Schema, DatabaseName, Folder, DocString`,
/// `Schema` being JSON text with `OrderedColumns[{Name, Type, CslType}]`.
pub fn show_table_schema_as_json(table: &TableName) -> Command {
    Command::mgmt(format!(
        ".show table {} schema as json",
        ident(table.as_str())
    ))
}

/// `.show database ['Db'] schema as csl script with (IncludeSecuritySettings = true)`: one
/// row per command that re-creates the database's tables, policies, functions, mappings and
/// principals. The option is said outright: the docs have given its default as `false` and
/// later as `true`
/// (<https://learn.microsoft.com/en-us/kusto/management/show-schema-database#supported-options>),
/// and restore needs the principals, row-level security and restricted view access it adds.
pub fn show_database_schema_csl_script(db: &DatabaseName) -> Command {
    Command::mgmt(format!(
        ".show database {} schema as csl script with (IncludeSecuritySettings = true)",
        ident(db.as_str())
    ))
}

/// `.show database ['Db'] schema as json`: one row, `DatabaseSchema`, a JSON text with every
/// table and its ordered columns (`Databases.<Db>.Tables.<T>.OrderedColumns[{Name, Type,
/// CslType}]`). protect's plan reads every table's schema with this one command.
pub fn show_database_schema_as_json(db: &DatabaseName) -> Command {
    Command::mgmt(format!(
        ".show database {} schema as json",
        ident(db.as_str())
    ))
}

/// `.show table ['T'] policy ingestiontime`
pub fn show_table_ingestiontime_policy(table: &TableName) -> Command {
    Command::mgmt(format!(
        ".show table {} policy ingestiontime",
        ident(table.as_str())
    ))
}

/// `.alter table ['T'] policy ingestiontime true|false`
pub fn alter_table_ingestiontime_policy(table: &TableName, enabled: bool) -> Command {
    Command::mgmt(format!(
        ".alter table {} policy ingestiontime {}",
        ident(table.as_str()),
        literal::bool_literal(enabled)
    ))
}

#[cfg(test)]
mod samples;

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str) -> TableName {
        TableName::new(name).unwrap()
    }

    #[test]
    fn schema_commands() {
        assert_eq!(show_databases().as_str(), ".show databases");
        assert_eq!(show_tables().as_str(), ".show tables");
        assert_eq!(
            show_materialized_views().as_str(),
            ".show materialized-views"
        );
        assert_eq!(
            show_table_cslschema(&table("My Table-1")).as_str(),
            ".show table ['My Table-1'] cslschema"
        );
        assert_eq!(
            show_table_schema_as_json(&table("T")).as_str(),
            ".show table ['T'] schema as json"
        );
        let db = DatabaseName::new("Sales").unwrap();
        assert_eq!(
            show_database_schema_csl_script(&db).as_str(),
            ".show database ['Sales'] schema as csl script with (IncludeSecuritySettings = true)"
        );
        assert_eq!(
            show_database_schema_as_json(&db).as_str(),
            ".show database ['Sales'] schema as json"
        );
        assert_eq!(
            show_table_ingestiontime_policy(&table("T")).as_str(),
            ".show table ['T'] policy ingestiontime"
        );
        assert_eq!(
            alter_table_ingestiontime_policy(&table("T"), true).as_str(),
            ".alter table ['T'] policy ingestiontime true"
        );
        assert_eq!(show_tables().kind(), CommandKind::Management);
    }

    #[test]
    fn first_line_is_cut() {
        assert_eq!(
            Command::mgmt(".a\n.b".to_owned()).first_line(),
            ".a",
            "only the first line"
        );
        let long = Command::mgmt(format!(".show {}", "é".repeat(300)));
        let line = long.first_line();
        assert_eq!(line.chars().count(), FIRST_LINE_MAX + 1);
        assert!(line.ends_with('…'));
        assert_eq!(Command::mgmt(String::new()).first_line(), "");
    }
}
