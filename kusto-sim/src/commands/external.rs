//! External tables and continuous-export definitions.

use crate::backend::Backend;
use crate::error::{SimError, not_supported};
use crate::parse::command::{Command, CreateMode, ExternalTableDef, Props};
use crate::parse::query::{Source, parse_query};
use crate::state::{ContinuousExport, Database, ExternalTable, continuous};
use crate::table::ResultTable;
use crate::value::Value;
use crate::value::temporal::parse_span_literal;

const EXTERNAL: &str = "(TableName: string, TableType: string, Folder: string, DocString: string, Properties: string, ConnectionStrings: dynamic, Partitions: dynamic, PathFormat: string)";
const EXTERNAL_FULL: &str = "(TableName: string, TableType: string, Folder: string, DocString: string, Schema: string, Properties: string)";

pub fn create_or_alter_table(
    sim: &Backend,
    db: &str,
    def: &ExternalTableDef,
) -> Result<ResultTable, SimError> {
    let table = ExternalTable::from_def(def)?;
    let mut cluster = sim.cluster();
    let database = cluster.database_mut(db)?;
    let exists = database.external_tables.contains_key(&def.name);
    match (def.mode, exists) {
        (CreateMode::Create, true) => {
            return Err(SimError::AlreadyExists {
                kind: "External table",
                name: def.name.clone(),
            });
        }
        (CreateMode::Alter, false) => {
            return Err(SimError::NotFound {
                kind: "External table",
                name: def.name.clone(),
            });
        }
        _ => {}
    }
    let mut out = ResultTable::with_schema(EXTERNAL_FULL);
    out.push(vec![
        Value::String(table.name.clone()),
        Value::String("Blob".into()),
        Value::String(table.folder()),
        Value::String(table.docstring()),
        Value::String(crate::state::csl_schema(&table.columns)),
        Value::String(table.properties_json()),
    ]);
    database.external_tables.insert(def.name.clone(), table);
    Ok(out)
}

/// `.show external tables` and `.drop external table` (which returns the dropped table).
pub fn tables(sim: &Backend, db: &str, command: Command) -> Result<ResultTable, SimError> {
    let mut cluster = sim.cluster();
    let database = cluster.database_mut(db)?;
    let mut out = ResultTable::with_schema(EXTERNAL);
    match command {
        Command::DropExternalTable { name, if_exists } => {
            match database.external_tables.remove(&name) {
                Some(t) => push_external(&mut out, &t),
                None if if_exists => {}
                None => {
                    return Err(SimError::NotFound {
                        kind: "External table",
                        name,
                    });
                }
            }
        }
        Command::ShowExternalTables { only: Some(name) } => database
            .external_tables
            .get(&name)
            .into_iter()
            .for_each(|t| push_external(&mut out, t)),
        _ => database
            .external_tables
            .values()
            .for_each(|t| push_external(&mut out, t)),
    }
    Ok(out)
}

fn push_external(out: &mut ResultTable, t: &ExternalTable) {
    out.push(vec![
        Value::String(t.name.clone()),
        Value::String("Blob".into()),
        Value::String(t.folder()),
        Value::String(t.docstring()),
        Value::String(t.properties_json()),
        Value::Dynamic(t.masked_connection_strings()),
        Value::Dynamic(t.partitions_json()),
        Value::String(t.path_format_text()),
    ]);
}

fn timespan_prop(props: &Props, name: &str, default: i64) -> Result<i64, SimError> {
    match props.get(name) {
        None => Ok(default),
        Some(Value::TimeSpan(t)) => Ok(*t),
        Some(Value::String(s)) => parse_span_literal(s)
            .or_else(|| crate::value::temporal::parse_timespan(s))
            .ok_or_else(|| SimError::semantic(format!("'{name}' must be a timespan, got '{s}'"))),
        Some(other) => Err(SimError::semantic(format!(
            "'{name}' must be a timespan, got {other:?}"
        ))),
    }
}

pub fn create_or_alter_export(
    sim: &Backend,
    db: &str,
    name: String,
    over: Vec<String>,
    external_table: String,
    props: Props,
    query: String,
) -> Result<ResultTable, SimError> {
    let parsed = parse_query(&query)?;
    let Source::Table(source) = &parsed.source else {
        return Err(not_supported("continuous export over a non-table source"));
    };
    let interval = timespan_prop(&props, "intervalBetweenRuns", 300 * 10_000_000)?;
    if interval < 60 * 10_000_000 {
        return Err(SimError::semantic(
            "intervalBetweenRuns must be at least 1 minute",
        ));
    }
    let forced_latency = timespan_prop(&props, "forcedLatency", 0)?;
    let mut cluster = sim.cluster();
    let database = cluster.database_mut(db)?;
    database.table(source)?;
    let ext = database.external_table(&external_table)?;
    let tables: Vec<&str> = std::iter::once(source.as_str())
        .chain(over.iter().map(String::as_str))
        .collect();
    crate::continuous_export::refuse_unexportable(database, &name, &tables, ext, &props)?;
    let previous = database.continuous_exports.remove(&name);
    let export = ContinuousExport {
        is_disabled: props.get_bool("isDisabled").unwrap_or(false),
        name: name.clone(),
        external_table,
        query,
        over,
        interval,
        forced_latency,
        props,
        // Altering keeps the cursor and the history, as in Kusto.
        start_cursor: previous.as_ref().and_then(|p| p.start_cursor),
        last_cursor: previous.as_ref().and_then(|p| p.last_cursor),
        last_run_time: previous.as_ref().and_then(|p| p.last_run_time),
        last_run_result: previous.as_ref().and_then(|p| p.last_run_result),
        last_success: previous.as_ref().and_then(|p| p.last_success),
        exported_to: previous.as_ref().and_then(|p| p.exported_to),
        is_running: false,
        artifacts: previous
            .as_ref()
            .map(|p| p.artifacts.clone())
            .unwrap_or_default(),
        failures: previous.map(|p| p.failures).unwrap_or_default(),
    };
    let mut out = ResultTable::with_schema(continuous::SHOW_SCHEMA);
    export.push_row(&mut out);
    database.continuous_exports.insert(name, export);
    Ok(out)
}

pub fn exports(sim: &Backend, db: &str, command: Command) -> Result<ResultTable, SimError> {
    let now = sim.now();
    let mut cluster = sim.cluster();
    let database = cluster.database_mut(db)?;
    match command {
        Command::ShowContinuousExports { only: None } => Ok(all_exports(database)),
        Command::ShowContinuousExports { only: Some(name) } => {
            let mut out = ResultTable::with_schema(continuous::SHOW_SCHEMA);
            if let Some(export) = database.continuous_exports.get(&name) {
                export.push_row(&mut out);
            }
            Ok(out)
        }
        Command::ShowContinuousExport { name } => {
            let mut out = ResultTable::with_schema(continuous::SHOW_SCHEMA);
            database.continuous_export_mut(&name)?.push_row(&mut out);
            Ok(out)
        }
        Command::ShowContinuousExportArtifacts { name } => {
            Ok(database.continuous_export_mut(&name)?.artifacts_table(now))
        }
        Command::ShowContinuousExportFailures { name } => {
            Ok(database.continuous_export_mut(&name)?.failures_table(now))
        }
        Command::SetContinuousExportDisabled { name, disabled } => {
            let export = database.continuous_export_mut(&name)?;
            export.is_disabled = disabled;
            let mut out = ResultTable::with_schema(continuous::SHOW_SCHEMA);
            export.push_row(&mut out);
            Ok(out)
        }
        Command::DropContinuousExport { name } => {
            database.continuous_export_mut(&name)?;
            database.continuous_exports.remove(&name);
            Ok(all_exports(database))
        }
        other => Err(not_supported(&format!("{other:?}"))),
    }
}

fn all_exports(database: &Database) -> ResultTable {
    let mut out = ResultTable::with_schema(continuous::SHOW_SCHEMA);
    database
        .continuous_exports
        .values()
        .for_each(|e| e.push_row(&mut out));
    out
}
