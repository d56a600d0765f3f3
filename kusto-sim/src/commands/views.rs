//! Materialized views: their definitions only. kusto-sim keeps what `.create
//! materialized-view` defined and lists it (`.show materialized-views`, and the database's
//! schema as JSON); it does not materialize, so a query over a view is not supported.
//! Output columns: <https://learn.microsoft.com/kusto/management/materialized-views/materialized-view-show-commands>.

use crate::backend::Backend;
use crate::error::{SimError, not_supported};
use crate::parse::command::Command;
use crate::state::MaterializedView;
use crate::table::ResultTable;
use crate::value::Value;

const VIEWS: &str = "(Name: string, SourceTable: string, Query: string, MaterializedTo: datetime, LastRun: datetime, LastRunResult: string, IsHealthy: bool, IsEnabled: bool, Folder: string, DocString: string, AutoUpdateSchema: bool, EffectiveDateTime: datetime, Lookback: timespan)";

pub fn execute(sim: &Backend, db: &str, command: Command) -> Result<ResultTable, SimError> {
    let now = sim.now();
    let mut cluster = sim.cluster();
    let database = cluster.database_mut(db)?;
    match command {
        Command::CreateMaterializedView {
            name,
            source,
            query,
            props,
        } => {
            // Options that change how a view is built (backfill, update extents) would need
            // a materialization kusto-sim does not run: refused, not silently ignored.
            if let Some(key) = props
                .0
                .keys()
                .find(|k| !["folder", "docstring"].contains(&k.as_str()))
            {
                return Err(not_supported(&format!("materialized-view property {key}")));
            }
            database.table(&source)?;
            if database.tables.contains_key(&name)
                || database.materialized_views.contains_key(&name)
            {
                return Err(SimError::semantic(format!(
                    "An entity named '{name}' already exists in database '{db}'"
                )));
            }
            let view = MaterializedView {
                name: name.clone(),
                source_table: source,
                query,
            };
            let mut out = ResultTable::with_schema(VIEWS);
            out.push(row(&view, now));
            database.materialized_views.insert(name, view);
            Ok(out)
        }
        Command::ShowMaterializedViews => {
            let mut out = ResultTable::with_schema(VIEWS);
            for view in database.materialized_views.values() {
                out.push(row(view, now));
            }
            Ok(out)
        }
        other => Err(not_supported(&format!("{other:?}"))),
    }
}

fn row(view: &MaterializedView, now: i64) -> Vec<Value> {
    vec![
        Value::String(view.name.clone()),
        Value::String(view.source_table.clone()),
        Value::String(view.query.clone()),
        Value::Null,
        Value::Null,
        Value::Null,
        Value::Bool(false),
        Value::Bool(true),
        Value::String(String::new()),
        Value::String(String::new()),
        Value::Bool(false),
        Value::DateTime(now),
        Value::Null,
    ]
}
