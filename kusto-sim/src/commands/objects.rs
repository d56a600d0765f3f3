//! Stored functions and ingestion mappings: create, create-or-alter, show.
//!
//! A function body must parse (kusto-sim's query subset: `T | <operators>`); unless
//! `skipvalidation = 'true'`, its table must exist, as Kusto validates the body against the
//! database when the function is created
//! (<https://learn.microsoft.com/en-us/kusto/management/create-function>). A mapping must
//! be a JSON array whose entries name columns of the table.

use serde_json::Value as Json;

use crate::backend::Backend;
use crate::error::SimError;
use crate::parse::command::Props;
use crate::parse::query::{Source, parse_query};
use crate::state::{Database, Function, Mapping};
use crate::table::ResultTable;
use crate::value::Value;

const FUNCTIONS: &str =
    "(Name: string, Parameters: string, Body: string, Folder: string, DocString: string)";
const MAPPINGS: &str = "(Name: string, Kind: string, Mapping: string, LastUpdatedOn: datetime, Database: string, Table: string)";
/// The properties `.create function ... with (...)` takes.
const FUNCTION_PROPS: &[&str] = &["folder", "docstring", "view", "skipvalidation"];

pub struct FunctionDef {
    pub name: String,
    pub params: String,
    pub body: String,
    pub props: Props,
    pub or_alter: bool,
    pub if_not_exists: bool,
}

pub fn create_function(sim: &Backend, db: &str, def: FunctionDef) -> Result<ResultTable, SimError> {
    let mut cluster = sim.cluster();
    let database = cluster.database_mut(db)?;
    if let Some(unknown) = def
        .props
        .0
        .keys()
        .find(|k| !FUNCTION_PROPS.contains(&k.as_str()))
    {
        return Err(SimError::semantic(format!(
            "Function {}: unknown property '{unknown}'",
            def.name
        )));
    }
    let query = parse_query(&def.body)?;
    let skip = def.props.get_bool("skipvalidation").unwrap_or(false);
    if !skip && let Source::Table(t) = &query.source {
        database.table(t).map_err(|_| {
            SimError::semantic(format!(
                "Function {}: failed to resolve table or column expression named '{t}'",
                def.name
            ))
        })?;
    }
    if database.tables.contains_key(&def.name) {
        return Err(SimError::semantic(format!(
            "Function {}: a table of that name exists",
            def.name
        )));
    }
    let exists = database.functions.contains_key(&def.name);
    if exists && !def.or_alter {
        if def.if_not_exists {
            return Ok(functions(database, Some(&def.name)));
        }
        return Err(SimError::AlreadyExists {
            kind: "Function",
            name: def.name,
        });
    }
    let function = Function {
        name: def.name.clone(),
        params: def.params,
        body: def.body,
        folder: def.props.get_str("folder").unwrap_or_default(),
        docstring: def.props.get_str("docstring").unwrap_or_default(),
    };
    database.functions.insert(def.name.clone(), function);
    Ok(functions(database, Some(&def.name)))
}

pub fn show_functions(
    sim: &Backend,
    db: &str,
    name: Option<&str>,
) -> Result<ResultTable, SimError> {
    let cluster = sim.cluster();
    let database = cluster.database(db)?;
    if let Some(n) = name
        && !database.functions.contains_key(n)
    {
        return Err(SimError::NotFound {
            kind: "Function",
            name: n.to_string(),
        });
    }
    Ok(functions(database, name))
}

fn functions(db: &Database, name: Option<&str>) -> ResultTable {
    let mut out = ResultTable::with_schema(FUNCTIONS);
    for f in db.functions.values() {
        if name.is_some_and(|n| n != f.name) {
            continue;
        }
        out.push(vec![
            Value::String(f.name.clone()),
            Value::String(format!("({})", f.params)),
            Value::String(format!("{{ {} }}", f.body)),
            Value::String(f.folder.clone()),
            Value::String(f.docstring.clone()),
        ]);
    }
    out
}

pub struct MappingDef {
    pub table: String,
    pub kind: String,
    pub name: String,
    pub mapping: String,
    pub or_alter: bool,
}

pub fn create_mapping(sim: &Backend, db: &str, def: MappingDef) -> Result<ResultTable, SimError> {
    let mut cluster = sim.cluster();
    let database = cluster.database_mut(db)?;
    let table = database.table_mut(&def.table)?;
    check_mapping(&def, &table.columns)?;
    let same = |m: &Mapping| m.kind == def.kind && m.name == def.name;
    if table.mappings.iter().any(same) && !def.or_alter {
        return Err(SimError::AlreadyExists {
            kind: "Ingestion mapping",
            name: def.name,
        });
    }
    table.mappings.retain(|m| !same(m));
    table.mappings.push(Mapping {
        kind: def.kind.clone(),
        name: def.name.clone(),
        mapping: def.mapping,
    });
    let db_name = database.name.clone();
    Ok(mappings(
        &db_name,
        database.table(&def.table)?,
        Some(&def.kind),
    ))
}

/// A JSON array of objects, each naming a column of the table.
fn check_mapping(def: &MappingDef, columns: &[crate::table::Column]) -> Result<(), SimError> {
    let bad = |what: String| {
        SimError::semantic(format!(
            "Ingestion mapping '{}' of table '{}': {what}",
            def.name, def.table
        ))
    };
    let parsed: Json =
        serde_json::from_str(&def.mapping).map_err(|e| bad(format!("not JSON: {e}")))?;
    let Some(entries) = parsed.as_array() else {
        return Err(bad("not a JSON array".into()));
    };
    for entry in entries {
        let column = entry
            .get("column")
            .or_else(|| entry.get("Column"))
            .and_then(Json::as_str)
            .ok_or_else(|| bad(format!("entry {entry} names no column")))?;
        if !columns.iter().any(|c| c.name == column) {
            return Err(bad(format!("column '{column}' is not in the table")));
        }
    }
    Ok(())
}

pub fn show_mappings(
    sim: &Backend,
    db: &str,
    table: &str,
    kind: Option<&str>,
) -> Result<ResultTable, SimError> {
    let cluster = sim.cluster();
    let database = cluster.database(db)?;
    Ok(mappings(&database.name, database.table(table)?, kind))
}

fn mappings(db: &str, t: &crate::state::Table, kind: Option<&str>) -> ResultTable {
    let mut out = ResultTable::with_schema(MAPPINGS);
    for m in &t.mappings {
        if kind.is_some_and(|k| k != m.kind) {
            continue;
        }
        out.push(vec![
            Value::String(m.name.clone()),
            Value::String(m.kind.clone()),
            Value::String(m.mapping.clone()),
            Value::Null,
            Value::String(db.to_string()),
            Value::String(t.name.clone()),
        ]);
    }
    out
}
