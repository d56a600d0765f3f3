//! Management commands: the AST and the entry point. Table and schema commands are parsed
//! in `ddl`, table policies in `policy`, data movement (ingest, export, extents, operations)
//! in `data`.

mod data;
mod ddl;
mod objects;

use std::collections::BTreeMap;

use uuid::Uuid;

use super::Parser;
use super::expr::typed_literal;
use super::query::{Op, pipeline};
use crate::error::{SimError, not_supported};
use crate::lexer::Tok;
use crate::value::{ColumnType, Value};

pub use data::{ExtentSelector, TagFilter};
pub use ddl::{CreateMode, ExternalTableDef, PartitionDef, PartitionFn, PathPart};
pub use policy::{PolicyChange, PolicyKind};

mod policy;

/// `with (name=value, ...)`; names are case-insensitive, so keys are lower-cased.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Props(pub BTreeMap<String, Value>);

impl Props {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(&name.to_ascii_lowercase())
    }

    pub fn get_str(&self, name: &str) -> Option<String> {
        self.get(name).map(Value::to_kusto_string)
    }

    pub fn get_bool(&self, name: &str) -> Option<bool> {
        match self.get(name)? {
            Value::Bool(b) => Some(*b),
            other => match other.to_kusto_string().to_ascii_lowercase().as_str() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
        }
    }
}

pub type ColumnDefs = Vec<(String, ColumnType)>;

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    ShowDatabases,
    ShowTables,
    ShowTableSchema {
        table: String,
        json: bool,
    },
    /// `.show database D schema as csl script [with (IncludeSecuritySettings = bool)]`.
    ShowDatabaseSchemaScript {
        include_security: bool,
    },
    ShowDatabaseSchemaJson,
    /// `.create [async] [ifnotexists] materialized-view [with (...)] V on table T { query }`.
    CreateMaterializedView {
        name: String,
        source: String,
        query: String,
        props: Props,
        is_async: bool,
        if_not_exists: bool,
    },
    /// `.show materialized-views`.
    ShowMaterializedViews,
    CreateTable {
        name: String,
        columns: ColumnDefs,
        props: Props,
    },
    /// `.create table T based-on S [ifnotexists] [with (folder, docstring)]`.
    CreateTableBasedOn {
        name: String,
        source: String,
        if_not_exists: bool,
        props: Props,
    },
    CreateMergeTables {
        tables: Vec<(String, ColumnDefs)>,
        props: Props,
        single: bool,
    },
    AlterMergeTable {
        name: String,
        columns: ColumnDefs,
        props: Props,
    },
    DropTables {
        names: Vec<String>,
        if_exists: bool,
    },
    ShowIngestionTimePolicy {
        table: String,
    },
    AlterIngestionTimePolicy {
        tables: Vec<String>,
        enabled: bool,
    },
    ShowTablePolicy {
        table: String,
        kind: PolicyKind,
    },
    AlterTablePolicy {
        table: String,
        change: PolicyChange,
    },
    DeleteTablePolicy {
        table: String,
        kind: PolicyKind,
    },
    ExecuteScript {
        props: Props,
        script: String,
    },
    CreateOrAlterExternalTable(ExternalTableDef),
    /// `.show external tables`.
    ShowExternalTables {
        /// Only the external table of this name (none when it is missing): what a piped
        /// `where TableName == '<name>'` keeps of the list. The parser leaves it unset;
        /// `commands::lookup` sets it from the pipe.
        only: Option<String>,
    },
    DropExternalTable {
        name: String,
        /// `ifexists`: a missing table is not an error (documented for `.drop external table`).
        if_exists: bool,
    },
    CreateOrAlterContinuousExport {
        name: String,
        over: Vec<String>,
        external_table: String,
        props: Props,
        query: String,
    },
    /// `.show continuous-exports`.
    ShowContinuousExports {
        /// Only the export of this name (none when it is missing): what a piped
        /// `where Name == '<name>'` keeps of the list. The parser leaves it unset;
        /// `commands::lookup` sets it from the pipe.
        only: Option<String>,
    },
    /// `.show continuous-export X`: that export, an error when it is missing.
    ShowContinuousExport {
        name: String,
    },
    ShowContinuousExportArtifacts {
        name: String,
    },
    ShowContinuousExportFailures {
        name: String,
    },
    SetContinuousExportDisabled {
        name: String,
        disabled: bool,
    },
    DropContinuousExport {
        name: String,
    },
    ExportToTable {
        is_async: bool,
        external_table: String,
        props: Props,
        query: String,
    },
    ShowOperations {
        ids: Vec<Uuid>,
    },
    ShowOperationDetails {
        id: Uuid,
    },
    Ingest {
        is_async: bool,
        table: String,
        uris: Vec<String>,
        props: Props,
    },
    IngestInline {
        table: String,
        props: Props,
        data: String,
    },
    SetOrAppend {
        mode: AppendMode,
        is_async: bool,
        table: String,
        props: Props,
        query: String,
    },
    DeleteRecords {
        table: String,
        props: Props,
        query: String,
    },
    ShowExtents(ExtentSelector),
    /// `.show tables (T1, T2) extents ...`: one selector per table, the same filter on each.
    ShowTablesExtents(Vec<ExtentSelector>),
    DropExtents(ExtentSelector),
    MoveExtents {
        is_async: bool,
        from: ExtentSelector,
        to_table: String,
        props: Props,
    },
    /// `.drop table T extent tags ('a', ...)`.
    DropExtentTags {
        table: String,
        tags: Vec<String>,
    },
    ShowCapacity {
        resource: Option<String>,
    },
    GetIngestionResources,
    GetKustoIdentityToken,
    ShowIngestionFailures {
        operation_id: Option<Uuid>,
    },
    /// `.create[-or-alter] function [ifnotexists] [with (..)] Name(params) { body }`.
    CreateFunction {
        name: String,
        /// The parameter list's text, without its parentheses.
        params: String,
        /// The body's text, without its braces.
        body: String,
        props: Props,
        or_alter: bool,
        if_not_exists: bool,
    },
    /// `.show functions` (None) or `.show function F`.
    ShowFunctions {
        name: Option<String>,
    },
    /// `.create[-or-alter] table T ingestion <kind> mapping "name" '<json>'`.
    CreateIngestionMapping {
        table: String,
        kind: String,
        name: String,
        mapping: String,
        or_alter: bool,
    },
    /// `.show table T ingestion [<kind>] mappings`.
    ShowIngestionMappings {
        table: String,
        kind: Option<String>,
    },
    /// `.show database D principals`: every principal and its role.
    ShowDatabasePrincipals,
    /// `.show database D principal roles`: the caller's own roles.
    ShowPrincipalRoles,
    /// `.add database D admins|users|viewers|unrestrictedviewers|ingestors|monitors ('fqn',
    /// ...) [skip-results] ['notes']`.
    AddDatabasePrincipals {
        role: String,
        principals: Vec<String>,
        notes: String,
        skip_results: bool,
    },
    /// `.show table T principals`.
    ShowTablePrincipals {
        table: String,
    },
    /// `.add table T admins|ingestors ('fqn', ...) [skip-results] ['notes']`.
    AddTablePrincipals {
        table: String,
        role: String,
        principals: Vec<String>,
        notes: String,
        skip_results: bool,
    },
    ShowClusterManagedIdentityPolicy,
    /// `.alter[-merge] cluster policy managed_identity "<json array>"`.
    AlterClusterManagedIdentityPolicy {
        merge: bool,
        policy: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendMode {
    Set,
    Append,
    SetOrAppend,
}

/// A command and the query operators piped after it (only `.show` commands take them).
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub command: Command,
    pub pipe: Vec<Op>,
}

pub fn parse_command(text: &str) -> Result<Parsed, SimError> {
    let mut p = Parser::new(text)?;
    p.expect_punct(".")?;
    let command = command(&mut p, text)?;
    let pipe = if p.is_punct("|") {
        if !is_show(&command) {
            return Err(not_supported(text));
        }
        pipeline(&mut p)?
    } else {
        Vec::new()
    };
    if !p.at_end() {
        return Err(not_supported(text));
    }
    Ok(Parsed { command, pipe })
}

pub(crate) fn is_show(c: &Command) -> bool {
    use Command::*;
    matches!(
        c,
        ShowDatabases
            | ShowMaterializedViews
            | ShowTables
            | ShowTableSchema { .. }
            | ShowDatabaseSchemaScript { .. }
            | ShowDatabaseSchemaJson
            | ShowIngestionTimePolicy { .. }
            | ShowTablePolicy { .. }
            | ShowExternalTables { .. }
            | ShowContinuousExports { .. }
            | ShowContinuousExport { .. }
            | ShowContinuousExportArtifacts { .. }
            | ShowContinuousExportFailures { .. }
            | ShowOperations { .. }
            | ShowOperationDetails { .. }
            | ShowExtents(_)
            | ShowTablesExtents(_)
            | ShowCapacity { .. }
            | ShowIngestionFailures { .. }
            | ShowFunctions { .. }
            | ShowIngestionMappings { .. }
            | ShowDatabasePrincipals
            | ShowTablePrincipals { .. }
            | ShowPrincipalRoles
            | ShowClusterManagedIdentityPolicy
    )
}

/// Parses the command after its leading `.`; `text` is for the "not supported" message.
pub(crate) fn command(p: &mut Parser, text: &str) -> Result<Command, SimError> {
    let parsed = if p.eat_kw("show") {
        show(p)?
    } else if p.eat_kw("get") {
        data::get(p)
    } else if is_data_command(p) {
        data::parse(p)?
    } else if p.is_kw("delete") && p.peek_at(1) == Some(&Tok::Ident("table".into())) {
        delete_table(p)?
    } else {
        ddl::parse(p)?
    };
    parsed.ok_or_else(|| not_supported(text))
}

fn is_data_command(p: &Parser) -> bool {
    ["ingest", "export", "move", "set-or-append", "append", "set"]
        .iter()
        .any(|kw| p.is_kw(kw))
        || (p.is_kw("drop") && p.peek_at(1) == Some(&Tok::Ident("extents".into())))
}

fn show(p: &mut Parser) -> Result<Option<Command>, SimError> {
    if p.eat_kw("databases") {
        return Ok(Some(Command::ShowDatabases));
    }
    if p.eat_kw("functions") {
        return Ok(Some(Command::ShowFunctions { name: None }));
    }
    if p.eat_kw("function") {
        let name = p.name()?;
        return Ok(Some(Command::ShowFunctions { name: Some(name) }));
    }
    if p.eat_kw("tables") {
        if p.is_punct("(") {
            return data::show_tables_extents(p).map(Some);
        }
        return Ok(Some(Command::ShowTables));
    }
    if p.eat_kw("materialized-views") {
        return Ok(Some(Command::ShowMaterializedViews));
    }
    if p.eat_kw("capacity") {
        return Ok(Some(Command::ShowCapacity {
            resource: capacity_resource(p)?,
        }));
    }
    if p.eat_kw("database") {
        return ddl::show_database(p);
    }
    if p.eat_kw("cluster") {
        p.expect_kw("policy")?;
        p.expect_kw("managed_identity")?;
        return Ok(Some(Command::ShowClusterManagedIdentityPolicy));
    }
    if p.is_kw("table") {
        return show_table(p);
    }
    if p.eat_kw("external") {
        p.expect_kw("tables")?;
        return Ok(Some(Command::ShowExternalTables { only: None }));
    }
    if p.eat_kw("continuous-exports") {
        return Ok(Some(Command::ShowContinuousExports { only: None }));
    }
    if p.eat_kw("continuous-export") {
        let name = p.name()?;
        return Ok(Some(if p.eat_kw("exported-artifacts") {
            Command::ShowContinuousExportArtifacts { name }
        } else if p.eat_kw("failures") {
            Command::ShowContinuousExportFailures { name }
        } else {
            Command::ShowContinuousExport { name }
        }));
    }
    if p.eat_kw("ingestion") {
        return data::show_ingestion_failures(p).map(Some);
    }
    data::show_operations(p)
}

fn show_table(p: &mut Parser) -> Result<Option<Command>, SimError> {
    p.expect_kw("table")?;
    let table = p.name()?;
    if p.eat_kw("cslschema") || p.eat_kw("kqlschema") {
        return Ok(Some(Command::ShowTableSchema { table, json: false }));
    }
    if p.eat_kw("schema") {
        p.expect_kw("as")?;
        p.expect_kw("json")?;
        return Ok(Some(Command::ShowTableSchema { table, json: true }));
    }
    if p.eat_kw("policy") {
        if p.eat_kw("ingestiontime") {
            return Ok(Some(Command::ShowIngestionTimePolicy { table }));
        }
        return Ok(policy::kind(p).map(|kind| Command::ShowTablePolicy { table, kind }));
    }
    if p.is_kw("extents") {
        return data::show_extents_of(p, table).map(Some);
    }
    if p.eat_kw("ingestion") {
        return objects::show_mappings(p, table).map(Some);
    }
    if p.eat_kw("principals") {
        return Ok(Some(Command::ShowTablePrincipals { table }));
    }
    Ok(None)
}

const CAPACITY_RESOURCES: &[&str] = &[
    "ingestions",
    "extents-merge",
    "extents-partition",
    "data-export",
    "table-purge",
    "materialized-view",
    "stored-query-results",
    "queries",
];

fn capacity_resource(p: &mut Parser) -> Result<Option<String>, SimError> {
    for r in CAPACITY_RESOURCES {
        if p.eat_kw(r) {
            return Ok(Some((*r).to_string()));
        }
    }
    Ok(None)
}

fn delete_table(p: &mut Parser) -> Result<Option<Command>, SimError> {
    p.expect_kw("delete")?;
    p.expect_kw("table")?;
    let table = p.name()?;
    if p.eat_kw("policy") {
        if p.eat_kw("ingestiontime") {
            return Ok(Some(Command::AlterIngestionTimePolicy {
                tables: vec![table],
                enabled: false,
            }));
        }
        return Ok(policy::kind(p).map(|kind| Command::DeleteTablePolicy { table, kind }));
    }
    p.expect_kw("records")?;
    let props = with_props(p)?;
    p.expect_punct("<|")?;
    let query = p.take_rest().to_string();
    Ok(Some(Command::DeleteRecords {
        table,
        props,
        query,
    }))
}

/// An optional `with (k = v, ...)`.
pub(crate) fn with_props(p: &mut Parser) -> Result<Props, SimError> {
    if !p.eat_kw("with") {
        return Ok(Props::default());
    }
    let pairs = p.paren_list(|p| {
        let name = p.name()?;
        p.expect_punct("=")?;
        Ok((name.to_ascii_lowercase(), prop_value(p)?))
    })?;
    Ok(Props(pairs.into_iter().collect()))
}

fn prop_value(p: &mut Parser) -> Result<Value, SimError> {
    let negative = p.eat_punct("-");
    let v = match p.advance() {
        Some(Tok::Str(s)) => Value::String(s),
        Some(Tok::Number(n)) => match n.parse::<i64>() {
            Ok(i) => Value::Long(i),
            Err(_) => Value::Real(n.parse().map_err(|_| p.unexpected("a number"))?),
        },
        Some(Tok::Span(t)) => Value::TimeSpan(t),
        Some(Tok::Typed(ty, raw)) => typed_literal(&ty, &raw)?,
        Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("true") => Value::Bool(true),
        Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("false") => Value::Bool(false),
        Some(Tok::Ident(w) | Tok::Quoted(w)) => Value::String(w),
        Some(Tok::Guid(g)) => Value::Guid(g),
        _ => return Err(p.unexpected("a property value")),
    };
    Ok(match (negative, v) {
        (false, v) => v,
        (true, Value::Long(i)) => Value::Long(-i),
        (true, Value::Real(r)) => Value::Real(-r),
        (true, _) => return Err(p.unexpected("a number")),
    })
}

#[cfg(test)]
mod tests;
