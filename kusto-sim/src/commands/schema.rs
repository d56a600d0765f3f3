//! Databases, tables, schemas and the IngestionTime policy.

use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::backend::Backend;
use crate::error::{SimError, not_supported};
use crate::parse::command::{ColumnDefs, Command, Props};
use crate::roles::DbRole;
use crate::state::{Database, Table};
use crate::table::{Column, ResultTable};
use crate::value::Value;
use crate::value::temporal::{TICKS_PER_DAY, TICKS_PER_SECOND};

const DATABASES: &str = "(DatabaseName: string, PersistentStorage: string, Version: string, IsCurrent: bool, DatabaseAccessMode: string, PrettyName: string, ReservedSlot1: bool, DatabaseId: guid, InTransitionTo: string)";
const TABLES: &str = "(TableName: string, DatabaseName: string, Folder: string, DocString: string)";
const TABLE_SCHEMA: &str =
    "(TableName: string, Schema: string, DatabaseName: string, Folder: string, DocString: string)";
const POLICY: &str = "(PolicyName: string, EntityName: string, Policy: string, ChildEntities: string, EntityType: string)";

pub fn execute(sim: &Backend, db: &str, command: Command) -> Result<ResultTable, SimError> {
    let mut cluster = sim.cluster();
    if matches!(command, Command::ShowDatabases) {
        let mut out = ResultTable::with_schema(DATABASES);
        for (name, d) in &cluster.databases {
            out.push(database_row(name, name == db, d.follower));
        }
        return Ok(out);
    }
    if let Command::ShowDatabaseSchemaScript { include_security } = command {
        let database = cluster.database(db)?;
        let principals = include_security.then(|| {
            cluster
                .principals
                .databases
                .get(&database.name)
                .map_or(&[][..], Vec::as_slice)
        });
        return Ok(schema_script(database, principals));
    }
    let database = cluster.database_mut(db)?;
    match command {
        Command::ShowTables => Ok(tables(database, database.tables.keys())),
        Command::ShowTableSchema { table, json } => {
            let t = database.table(&table)?;
            Ok(table_schema(database, t, json))
        }
        Command::ShowDatabaseSchemaJson => Ok(schema_json(database)),
        Command::CreateTable {
            name,
            columns,
            props,
        } => create(database, &name, &columns, &props),
        Command::CreateTableBasedOn {
            name,
            source,
            if_not_exists,
            props,
        } => create_based_on(database, &name, &source, if_not_exists, &props),
        Command::CreateMergeTables {
            tables: defs,
            props,
            single,
        } => {
            for (name, columns) in &defs {
                validate_columns(columns)?;
                if let Ok(t) = database.table(name) {
                    t.clone().merge_columns(&to_columns(columns))?;
                }
            }
            for (name, columns) in &defs {
                merge(database, name, columns, &props)?;
            }
            let names: Vec<&String> = defs.iter().map(|(n, _)| n).collect();
            match (single, names.first()) {
                (true, Some(name)) => Ok(table_schema(database, database.table(name)?, false)),
                _ => Ok(tables(database, names.into_iter())),
            }
        }
        Command::AlterMergeTable {
            name,
            columns,
            props,
        } => {
            validate_columns(&columns)?;
            database.table(&name)?;
            merge(database, &name, &columns, &props)?;
            Ok(table_schema(database, database.table(&name)?, false))
        }
        Command::DropTables { names, if_exists } => {
            for n in &names {
                if database.tables.remove(n).is_none() && !if_exists {
                    return Err(SimError::NotFound {
                        kind: "Table",
                        name: n.clone(),
                    });
                }
            }
            let mut out = ResultTable::with_schema("(TableName: string, DatabaseName: string)");
            for n in database.tables.keys() {
                out.push(vec![
                    Value::String(n.clone()),
                    Value::String(database.name.clone()),
                ]);
            }
            Ok(out)
        }
        Command::ShowIngestionTimePolicy { table } => {
            let mut out = ResultTable::with_schema(POLICY);
            out.push(policy_row(database, database.table(&table)?));
            Ok(out)
        }
        Command::AlterIngestionTimePolicy {
            tables: names,
            enabled,
        } => {
            let mut out = ResultTable::with_schema(POLICY);
            for n in &names {
                database.table(n)?;
            }
            for n in &names {
                database.table_mut(n)?.ingestion_time_policy = enabled;
                out.push(policy_row(database, database.table(n)?));
            }
            Ok(out)
        }
        other => Err(not_supported(&format!("{other:?}"))),
    }
}

/// `DatabaseAccessMode` is one of `ReadWrite`, `ReadOnly`, `ReadOnlyFollowing` or
/// `ReadWriteEphemeral` (<https://learn.microsoft.com/kusto/management/show-databases>).
fn database_row(name: &str, is_current: bool, follower: bool) -> Vec<Value> {
    let digest = Sha256::digest(name.as_bytes());
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    vec![
        Value::String(name.to_string()),
        Value::String(format!("http://kusto-sim/{name}")),
        Value::String("v1.0".into()),
        Value::Bool(is_current),
        Value::String(
            if follower {
                "ReadOnlyFollowing"
            } else {
                "ReadWrite"
            }
            .into(),
        ),
        Value::String(String::new()),
        Value::Bool(false),
        Value::Guid(Uuid::from_bytes(id)),
        Value::String(String::new()),
    ]
}

fn tables<'a>(db: &Database, names: impl Iterator<Item = &'a String>) -> ResultTable {
    let mut out = ResultTable::with_schema(TABLES);
    for n in names {
        if let Ok(t) = db.table(n) {
            out.push(vec![
                Value::String(t.name.clone()),
                Value::String(db.name.clone()),
                Value::String(t.folder.clone()),
                Value::String(t.docstring.clone()),
            ]);
        }
    }
    out
}

fn table_schema(db: &Database, t: &Table, as_json: bool) -> ResultTable {
    let schema = if as_json {
        table_json(t).to_string()
    } else {
        t.csl_schema()
    };
    let mut out = ResultTable::with_schema(TABLE_SCHEMA);
    out.push(vec![
        Value::String(t.name.clone()),
        Value::String(schema),
        Value::String(db.name.clone()),
        Value::String(t.folder.clone()),
        Value::String(t.docstring.clone()),
    ]);
    out
}

fn table_json(t: &Table) -> serde_json::Value {
    let columns: Vec<_> = t
        .columns
        .iter()
        .map(|c| json!({"Name": c.name, "Type": c.ty.clr_name(), "CslType": c.ty.kusto_name()}))
        .collect();
    json!({"Name": t.name, "Folder": t.folder, "DocString": t.docstring, "OrderedColumns": columns})
}

/// `['name']` with quotes and backslashes escaped.
pub(crate) fn quote(name: &str) -> String {
    format!("['{}']", name.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn escape_literal(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// One command per row, as Kusto's script holds them: each table as `.create-merge table`
/// with its policies and ingestion mappings, then the functions, the external tables (their
/// credentials hidden) and the materialized views, then the update,
/// row-level security and restricted view access policies (which may name other tables or
/// functions), then the database's and the tables' principals. A function body keeps its
/// line breaks, so one row can span several lines.
/// <https://learn.microsoft.com/en-us/kusto/management/show-schema-database#show-database-schema-as-csl-script>
///
/// `security` (`IncludeSecuritySettings`, on by default) is the database's principals, or
/// None to leave out the principals, row-level security and restricted view access, as that
/// option says. The docs give the option but not how a principal's line reads; kusto-sim
/// writes the documented `.add` syntax (manage-database-security-roles,
/// manage-table-security-roles) with the principal's FQN as `.show ... principals` lists it
/// and its notes, one line per principal and role: `.add database ['Db'] viewers
/// ("aadapp=<app id>;<tenant>") "notes"`.
fn schema_script(db: &Database, security: Option<&[(DbRole, String, String)]>) -> ResultTable {
    let mut out = ResultTable::with_schema("(DatabaseSchemaScript: string)");
    for t in db.tables.values() {
        let columns: Vec<String> = t
            .columns
            .iter()
            .map(|c| format!("{}:{}", quote(&c.name), c.ty.kusto_name()))
            .collect();
        out.push(vec![Value::String(format!(
            ".create-merge table {} ({}) with (folder = {}, docstring = {})",
            quote(&t.name),
            columns.join(", "),
            escape_literal(&t.folder),
            escape_literal(&t.docstring)
        ))]);
        if t.ingestion_time_policy {
            out.push(vec![Value::String(format!(
                ".alter table {} policy ingestiontime true",
                quote(&t.name)
            ))]);
        }
        for row in table_policy_script(t) {
            out.push(vec![Value::String(row)]);
        }
    }
    for f in db.functions.values() {
        out.push(vec![Value::String(format!(
            ".create-or-alter function with (folder = {}, docstring = {}, skipvalidation = \"true\") {}({}) {{ {} }}",
            escape_literal(&f.folder),
            escape_literal(&f.docstring),
            quote(&f.name),
            f.params,
            f.body
        ))]);
    }
    for e in db.external_tables.values() {
        out.push(vec![Value::String(external_table_script(e))]);
    }
    for v in db.materialized_views.values() {
        out.push(vec![Value::String(format!(
            ".create-or-alter materialized-view with (folder = {}, docString = {}) {} on table {} {{ {} }}",
            escape_literal(&v.folder),
            escape_literal(&v.docstring),
            quote(&v.name),
            quote(&v.source_table),
            v.query
        ))]);
    }
    for t in db.tables.values() {
        if let Some(policy) = &t.policies.update_json {
            out.push(vec![Value::String(format!(
                ".alter table {} policy update {}",
                quote(&t.name),
                escape_literal(&policy.to_string())
            ))]);
        }
        if security.is_none() {
            continue;
        }
        // After the functions: a row-level security query may call one.
        if let Some((enabled, query)) = &t.policies.row_level_security {
            out.push(vec![Value::String(format!(
                ".alter table {} policy row_level_security {} {}",
                quote(&t.name),
                if *enabled { "enable" } else { "disable" },
                escape_literal(query)
            ))]);
        }
        if t.policies.restricted_view_access {
            out.push(vec![Value::String(format!(
                ".alter table {} policy restricted_view_access true",
                quote(&t.name)
            ))]);
        }
    }
    for (role, fqn, notes) in security.unwrap_or_default() {
        out.push(vec![Value::String(format!(
            ".add database {} {} ({}) {}",
            quote(&db.name),
            role.plural(),
            escape_literal(fqn),
            escape_literal(notes)
        ))]);
    }
    for t in db.tables.values().filter(|_| security.is_some()) {
        for (role, fqn, notes) in &t.principals {
            out.push(vec![Value::String(format!(
                ".add table {} {} ({}) {}",
                quote(&t.name),
                role.plural(),
                escape_literal(fqn),
                escape_literal(notes)
            ))]);
        }
    }
    out
}

/// An external table as one script row, its connection strings' credentials hidden
/// ([`crate::state::ExternalTable::script_connection_strings`]).
fn external_table_script(e: &crate::state::ExternalTable) -> String {
    use crate::parse::command::PartitionFn;
    let columns: Vec<String> = e
        .columns
        .iter()
        .map(|c| format!("{}:{}", quote(&c.name), c.ty.kusto_name()))
        .collect();
    let mut text = format!(
        ".create-or-alter external table {} ({}) kind = storage",
        quote(&e.name),
        columns.join(", ")
    );
    if !e.partitions.is_empty() {
        let parts: Vec<String> = e
            .partitions
            .iter()
            .map(|p| match &p.func {
                PartitionFn::StringColumn(c) if *c == p.name => format!("{}:string", quote(c)),
                PartitionFn::StringColumn(c) => {
                    format!("{}:string = {}", quote(&p.name), quote(c))
                }
                PartitionFn::StartOf(f, c) => {
                    format!("{}:datetime = {f}({})", quote(&p.name), quote(c))
                }
                PartitionFn::Bin(c, span) => format!(
                    "{}:datetime = bin({}, {})",
                    quote(&p.name),
                    quote(c),
                    span_words(*span)
                ),
            })
            .collect();
        text.push_str(&format!(" partition by ({})", parts.join(", ")));
    }
    let path_format = e.path_format_text();
    if !path_format.is_empty() {
        text.push_str(&format!(" pathformat = ({path_format})"));
    }
    let roots: Vec<String> = e
        .script_connection_strings()
        .iter()
        .map(|c| format!("h@{}", verbatim_literal(c)))
        .collect();
    text.push_str(&format!(" dataformat = parquet ({})", roots.join(", ")));
    let props: Vec<String> = e
        .props
        .0
        .iter()
        .map(|(k, v)| match v {
            Value::Bool(_) | Value::Long(_) => format!("{k} = {}", v.to_kusto_string()),
            other => format!("{k} = {}", escape_literal(&other.to_kusto_string())),
        })
        .collect();
    if !props.is_empty() {
        text.push_str(&format!(" with ({})", props.join(", ")));
    }
    text
}

/// `"text"` as a verbatim literal (`@"..."`): quotes doubled, nothing else escaped.
fn verbatim_literal(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `7d`, or whole seconds (`90s`) for a period that is not whole days.
fn span_words(ticks: i64) -> String {
    if ticks % TICKS_PER_DAY == 0 {
        format!("{}d", ticks / TICKS_PER_DAY)
    } else {
        format!("{}s", ticks / TICKS_PER_SECOND)
    }
}

/// A table's retention and caching policies and its ingestion mappings, as script rows.
fn table_policy_script(t: &Table) -> Vec<String> {
    let mut rows = Vec::new();
    if let Some(r) = t.policies.retention {
        let words = match r.soft_delete {
            Some(ticks) if ticks % TICKS_PER_DAY == 0 => {
                format!("softdelete = {} ", span_words(ticks))
            }
            _ => String::new(),
        };
        if words.is_empty() {
            rows.push(format!(
                ".alter table {} policy retention {}",
                quote(&t.name),
                escape_literal(&r.to_json().to_string())
            ));
        } else {
            let recoverability = if r.recoverability {
                "enabled"
            } else {
                "disabled"
            };
            rows.push(format!(
                ".alter-merge table {} policy retention {words}recoverability = {recoverability}",
                quote(&t.name)
            ));
        }
    }
    if let Some(hot) = t.policies.caching_hot {
        rows.push(format!(
            ".alter table {} policy caching hot = {}",
            quote(&t.name),
            span_words(hot)
        ));
    }
    for m in &t.mappings {
        rows.push(format!(
            ".create-or-alter table {} ingestion {} mapping {} {}",
            quote(&t.name),
            m.kind,
            escape_literal(&m.name),
            escape_literal(&m.mapping)
        ));
    }
    rows
}

fn schema_json(db: &Database) -> ResultTable {
    let tables: serde_json::Map<String, serde_json::Value> = db
        .tables
        .values()
        .map(|t| (t.name.clone(), table_json(t)))
        .collect();
    let views: serde_json::Map<String, serde_json::Value> = db
        .materialized_views
        .values()
        .map(|v| {
            let doc = json!({"Name": v.name, "SourceTable": v.source_table, "Query": v.query});
            (v.name.clone(), doc)
        })
        .collect();
    let doc = json!({"Databases": {db.name.clone(): {
        "Name": db.name, "Tables": tables, "ExternalTables": {}, "MaterializedViews": views,
        "Functions": {}, "MajorVersion": 1, "MinorVersion": 0}}});
    let mut out = ResultTable::with_schema("(DatabaseSchema: string)");
    out.push(vec![Value::String(doc.to_string())]);
    out
}

fn policy_row(db: &Database, t: &Table) -> Vec<Value> {
    vec![
        Value::String("IngestionTimePolicy".into()),
        Value::String(format!("[{}].[{}]", db.name, t.name)),
        Value::String(json!({"IsEnabled": t.ingestion_time_policy}).to_string()),
        Value::String(String::new()),
        Value::String("Table".into()),
    ]
}

fn to_columns(defs: &ColumnDefs) -> Vec<Column> {
    defs.iter()
        .map(|(n, t)| Column::new(n.clone(), *t))
        .collect()
}

fn validate_columns(defs: &ColumnDefs) -> Result<(), SimError> {
    for (i, (name, _)) in defs.iter().enumerate() {
        if name.is_empty() || defs[..i].iter().any(|(n, _)| n == name) {
            return Err(SimError::semantic(format!(
                "Invalid or duplicate column name '{name}'"
            )));
        }
    }
    Ok(())
}

fn apply_props(t: &mut Table, props: &Props) {
    if let Some(f) = props.get_str("folder") {
        t.folder = f;
    }
    if let Some(d) = props.get_str("docstring") {
        t.docstring = d;
    }
}

fn create(
    db: &mut Database,
    name: &str,
    columns: &ColumnDefs,
    props: &Props,
) -> Result<ResultTable, SimError> {
    validate_columns(columns)?;
    let wanted = to_columns(columns);
    match db.tables.get(name) {
        Some(existing) if existing.columns != wanted => {
            return Err(SimError::AlreadyExists {
                kind: "Table",
                name: name.to_string(),
            });
        }
        Some(_) => {}
        None => {
            let mut t = Table::new(name, wanted);
            apply_props(&mut t, props);
            db.tables.insert(name.to_string(), t);
        }
    }
    Ok(table_schema(db, db.table(name)?, false))
}

/// A new table with `source`'s columns (not its data, nor its policies other than the
/// IngestionTime default); an existing table fails unless `ifnotexists`.
fn create_based_on(
    db: &mut Database,
    name: &str,
    source: &str,
    if_not_exists: bool,
    props: &Props,
) -> Result<ResultTable, SimError> {
    let columns = db.table(source)?.columns.clone();
    match db.tables.get(name) {
        Some(_) if if_not_exists => {}
        Some(_) => {
            return Err(SimError::AlreadyExists {
                kind: "Table",
                name: name.to_string(),
            });
        }
        None => {
            let mut t = Table::new(name, columns);
            apply_props(&mut t, props);
            db.tables.insert(name.to_string(), t);
        }
    }
    Ok(table_schema(db, db.table(name)?, false))
}

fn merge(
    db: &mut Database,
    name: &str,
    columns: &ColumnDefs,
    props: &Props,
) -> Result<(), SimError> {
    let t = db
        .tables
        .entry(name.to_string())
        .or_insert_with(|| Table::new(name, Vec::new()));
    t.merge_columns(&to_columns(columns))?;
    apply_props(t, props);
    Ok(())
}
