//! Ingestion commands: `.ingest [async] into` (parquet from storage), `.ingest inline`
//! (CSV, to seed tests) and `.set/.append/.set-or-append`.

use uuid::Uuid;

use crate::backend::Backend;
use crate::error::{SimError, not_supported};
use crate::parse::command::{AppendMode, Props};
use crate::parse::query::parse_query;
use crate::query_runner::reshape;
use crate::state::{ExtentProps, Operation, Table};
use crate::table::{Column, ResultTable};
use crate::value::temporal::parse_datetime;
use crate::value::{Value, parse_text};

const INGEST_RESULT: &str =
    "(ExtentId: guid, ItemLoaded: string, Duration: string, HasErrors: string, OperationId: guid)";
const SET_APPEND_RESULT: &str = "(ExtentId: guid, OriginalSize: long, ExtentSize: long, ColumnSize: long, IndexSize: long, RowCount: long)";

/// `creationTime` and `tags` of an ingestion.
fn extent_props(props: &Props) -> Result<ExtentProps, SimError> {
    let creation_time =
        match props.get_str("creationTime") {
            Some(s) => Some(parse_datetime(&s).ok_or_else(|| {
                SimError::semantic(format!("creationTime '{s}' is not a datetime"))
            })?),
            None => None,
        };
    Ok(ExtentProps {
        creation_time,
        tags: json_list(props, "tags")?,
    })
}

/// A property holding a JSON array of strings (`tags='["a","b"]'`).
fn json_list(props: &Props, name: &str) -> Result<Vec<String>, SimError> {
    let Some(text) = props.get_str(name) else {
        return Ok(Vec::new());
    };
    serde_json::from_str(&text).map_err(|_| {
        SimError::semantic(format!(
            "'{name}' must be a JSON array of strings, got '{text}'"
        ))
    })
}

fn table_columns(sim: &Backend, db: &str, table: &str) -> Result<Vec<Column>, SimError> {
    Ok(sim.cluster().database(db)?.table(table)?.columns.clone())
}

pub fn ingest_inline(
    sim: &Backend,
    db: &str,
    table: &str,
    props: &Props,
    data: &str,
) -> Result<ResultTable, SimError> {
    let columns = table_columns(sim, db, table)?;
    let mut rows = Vec::new();
    for (n, line) in data.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let cells = split_csv(line);
        let row = columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let cell = cells.get(i).map_or("", String::as_str);
                parse_text(cell, c.ty).ok_or_else(|| {
                    SimError::semantic(format!(
                        "line {}: '{cell}' is not a valid {}",
                        n + 1,
                        c.ty.kusto_name()
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        rows.push(row);
    }
    let now = sim.now();
    let ids =
        sim.cluster()
            .database_mut(db)?
            .ingest(table, vec![(rows, extent_props(props)?)], now)?;
    let mut out = ResultTable::with_schema("(ExtentId: guid)");
    ids.into_iter()
        .for_each(|id| out.push(vec![Value::Guid(id)]));
    Ok(out)
}

/// One CSV record: commas separate, `"..."` quotes, `""` is a quote inside quotes.
fn split_csv(line: &str) -> Vec<String> {
    let mut cells = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                push_char(&mut cells, '"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => cells.push(String::new()),
            (c, _) => push_char(&mut cells, c),
        }
    }
    cells
}

fn push_char(cells: &mut [String], c: char) {
    if let Some(last) = cells.last_mut() {
        last.push(c);
    }
}

pub async fn set_or_append(
    sim: &Backend,
    db: &str,
    mode: AppendMode,
    table: &str,
    props: &Props,
    query: &str,
) -> Result<ResultTable, SimError> {
    let parsed = parse_query(query)?;
    let (result, _) = crate::query_runner::evaluate(sim, db, &parsed, None).await?;
    let extent = extent_props(props)?;
    let now = sim.now();
    let mut cluster = sim.cluster();
    let database = cluster.database_mut(db)?;
    let exists = database.tables.contains_key(table);
    match (mode, exists) {
        (AppendMode::Set, true) => {
            return Err(SimError::AlreadyExists {
                kind: "Table",
                name: table.to_string(),
            });
        }
        (AppendMode::Append, false) => {
            return Err(SimError::NotFound {
                kind: "Table",
                name: table.to_string(),
            });
        }
        (_, false) => {
            database
                .tables
                .insert(table.to_string(), Table::new(table, result.columns.clone()));
        }
        _ => {}
    }
    let columns = database.table(table)?.columns.clone();
    let rows = reshape(&result.columns, result.rows, &columns);
    let count = rows.len() as i64;
    let ids = database.ingest(table, vec![(rows, extent)], now)?;
    let mut out = ResultTable::with_schema(SET_APPEND_RESULT);
    for id in ids {
        let size = database
            .table(table)?
            .extents
            .iter()
            .find(|e| e.id == id)
            .map_or(0, |e| e.original_size as i64);
        out.push(vec![
            Value::Guid(id),
            Value::Long(size),
            Value::Long(size),
            Value::Long(size),
            Value::Long(0),
            Value::Long(count),
        ]);
    }
    Ok(out)
}

pub async fn ingest(
    sim: &Backend,
    db: &str,
    is_async: bool,
    table: &str,
    uris: &[String],
    props: &Props,
) -> Result<ResultTable, SimError> {
    let format = props.get_str("format").unwrap_or_else(|| "csv".into());
    if !format.eq_ignore_ascii_case("parquet") {
        return Err(not_supported(&format!(".ingest with format={format}")));
    }
    let request = Request {
        db: db.to_string(),
        table: table.to_string(),
        uris: uris.to_vec(),
        extent: extent_props(props)?,
        if_not_exists: json_list(props, "ingestIfNotExists")?,
    };
    table_columns(sim, db, table)?;
    if !is_async {
        return run(sim, &request, Uuid::nil()).await;
    }
    let op = Operation::start("DataIngestPull", db, sim.now());
    let id = op.id;
    sim.cluster().operations.push(op);
    let owned = sim.handle()?;
    tokio::spawn(async move {
        tokio::time::sleep(owned.operation_latency()).await;
        let outcome = run(&owned, &request, id).await;
        let now = owned.now();
        let mut cluster = owned.cluster();
        if let Some(op) = cluster.operation_mut(id) {
            match outcome {
                Ok(details) => op.complete(details, now),
                Err(e) => op.fail(e.to_string(), !e.permanent(), now),
            }
        }
    });
    let mut out = ResultTable::with_schema("(OperationId: guid)");
    out.push(vec![Value::Guid(id)]);
    Ok(out)
}

struct Request {
    db: String,
    table: String,
    uris: Vec<String>,
    extent: ExtentProps,
    if_not_exists: Vec<String>,
}

/// Reads every source, then commits one extent per source in a single commit; skipped
/// (one zero-guid row) when an extent already carries one of the `ingest-by:` tags.
async fn run(sim: &Backend, req: &Request, operation_id: Uuid) -> Result<ResultTable, SimError> {
    let mut out = ResultTable::with_schema(INGEST_RESULT);
    if already_ingested(sim, req)? {
        out.push(result_row(Uuid::nil(), "", operation_id));
        return Ok(out);
    }
    let columns = table_columns(sim, &req.db, &req.table)?;
    let mut extents = Vec::new();
    for uri in &req.uris {
        let rows = crate::storage_reader::read_blob(sim, uri, &columns).await?;
        extents.push((rows, req.extent.clone()));
    }
    let now = sim.now();
    let mut cluster = sim.cluster();
    let database = cluster.database_mut(&req.db)?;
    // Checked again under the lock: a concurrent ingestion may have landed meanwhile.
    if has_tags(database.table(&req.table)?, &req.if_not_exists) {
        out.push(result_row(Uuid::nil(), "", operation_id));
        return Ok(out);
    }
    let ids = database.ingest(&req.table, extents, now)?;
    for (id, uri) in ids.into_iter().zip(&req.uris) {
        let item = sim
            .blob
            .locate(uri)
            .map(|l| l.public_url())
            .unwrap_or_default();
        out.push(result_row(id, &item, operation_id));
    }
    Ok(out)
}

fn already_ingested(sim: &Backend, req: &Request) -> Result<bool, SimError> {
    let cluster = sim.cluster();
    Ok(has_tags(
        cluster.database(&req.db)?.table(&req.table)?,
        &req.if_not_exists,
    ))
}

fn has_tags(table: &Table, if_not_exists: &[String]) -> bool {
    if_not_exists.iter().any(|x| {
        let tag = format!("ingest-by:{x}");
        table.extents.iter().any(|e| e.tags.contains(&tag))
    })
}

fn result_row(extent: Uuid, item: &str, operation_id: Uuid) -> Vec<Value> {
    vec![
        Value::Guid(extent),
        Value::String(item.to_string()),
        Value::String("00:00:00".into()),
        Value::String("False".into()),
        Value::Guid(operation_id),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells() {
        assert_eq!(
            split_csv(r#"a,"b,c","d""e",,"#),
            vec!["a", "b,c", "d\"e", "", ""]
        );
    }
}
