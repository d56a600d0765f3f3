//! Writing query results into an external table's storage as parquet: one file per
//! partition folder (more when `sizeLimit` is reached), spread over its connection strings.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::backend::Backend;
use crate::blob::BlobLocation;
use crate::error::SimError;
use crate::parquet_io;
use crate::state::{ExternalTable, value_size};
use crate::table::ResultTable;
use crate::value::Value;

/// Kusto's default `sizeLimit` (100 MB of uncompressed data per file).
pub const DEFAULT_SIZE_LIMIT: u64 = 100 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct ExportedFile {
    /// Blob URL without credentials.
    pub path: String,
    pub num_records: u64,
    pub size: u64,
}

/// How to cut the files of one export (their names come from the external table).
#[derive(Debug, Clone, Default)]
pub struct FileOptions {
    pub size_limit: Option<u64>,
    /// Rows the export may hold before failing with E_LOW_MEMORY_CONDITION (fault
    /// injection); files written until then stay, as they do in Kusto.
    pub memory_budget_rows: Option<u64>,
}

/// The query result's rows in the external table's column order; the query's columns must
/// be exactly the external table's (by name and type).
pub fn conform(ext: &ExternalTable, result: ResultTable) -> Result<Vec<Vec<Value>>, SimError> {
    let mismatch = result.columns.len() != ext.columns.len()
        || ext.columns.iter().any(|c| {
            !result
                .columns
                .iter()
                .any(|r| r.name == c.name && r.ty == c.ty)
        });
    if mismatch {
        return Err(SimError::semantic(format!(
            "Query schema ({}) does not match the schema of external table '{}' ({})",
            crate::state::csl_schema(&result.columns),
            ext.name,
            crate::state::csl_schema(&ext.columns)
        )));
    }
    Ok(crate::query_runner::reshape(
        &result.columns,
        result.rows,
        &ext.columns,
    ))
}

/// Files written at once, as Kusto's export writes from many nodes in parallel: storage
/// latency then bounds an export of thousands of partition folders less than one file
/// after another would.
const PARALLEL_WRITES: usize = 8;

/// Writes `rows`; on failure returns the error with the files already written.
pub async fn write(
    sim: &Backend,
    ext: &ExternalTable,
    rows: Vec<Vec<Value>>,
    opts: &FileOptions,
) -> Result<Vec<ExportedFile>, (SimError, Vec<ExportedFile>)> {
    let mut groups: BTreeMap<String, Vec<Vec<Value>>> = BTreeMap::new();
    for row in rows {
        groups
            .entry(ext.partition_path(&row))
            .or_default()
            .push(row);
    }
    let limit = opts.size_limit.unwrap_or(DEFAULT_SIZE_LIMIT).max(1);
    // The files in order, up to where the memory budget runs out: those before it are
    // written, as they would be before the failure.
    let mut files = Vec::new();
    let mut held: u64 = 0;
    let mut out_of_memory = false;
    'folders: for (folder, rows) in &groups {
        for chunk in split_by_size(rows, limit) {
            held += chunk.len() as u64;
            if opts.memory_budget_rows.is_some_and(|max| held > max) {
                out_of_memory = true;
                break 'folders;
            }
            files.push((folder.as_str(), chunk));
        }
    }
    let batch = Uuid::new_v4();
    let (prefix, extension) = (ext.name_prefix(), ext.file_extension());
    let mut written = Vec::new();
    for window in files.chunks(PARALLEL_WRITES) {
        let mut encoded = Vec::new();
        for (i, (folder, rows)) in window.iter().enumerate() {
            let n = written.len() + i;
            let conn = &ext.connection_strings[n % ext.connection_strings.len()];
            let name = file_name(prefix.as_deref(), batch, n, &extension);
            match encode(sim, ext, conn, folder, &name, rows) {
                Ok(file) => encoded.push(file),
                Err(e) => return Err((e, written)),
            }
        }
        let puts = encoded
            .iter_mut()
            .map(|(loc, data, _)| sim.blob.put(loc, std::mem::take(data)));
        let results = futures::future::join_all(puts).await;
        for ((_, _, file), put) in encoded.into_iter().zip(results) {
            match put {
                Ok(()) => written.push(file),
                Err(e) => return Err((e, written)),
            }
        }
    }
    if out_of_memory {
        return Err((SimError::LowMemory, written));
    }
    Ok(written)
}

fn file_name(prefix: Option<&str>, batch: Uuid, n: usize, extension: &str) -> String {
    let body = format!("{batch}_{n}_{}", Uuid::new_v4());
    match prefix {
        Some(p) if !p.is_empty() => format!("{p}_{body}{extension}"),
        _ => format!("{body}{extension}"),
    }
}

fn split_by_size(rows: &[Vec<Value>], limit: u64) -> Vec<Vec<&Vec<Value>>> {
    let mut out: Vec<Vec<&Vec<Value>>> = vec![Vec::new()];
    let mut size = 0;
    for row in rows {
        let row_size: u64 = row.iter().map(value_size).sum();
        if size + row_size > limit && out.last().is_some_and(|c| !c.is_empty()) {
            out.push(Vec::new());
            size = 0;
        }
        size += row_size;
        if let Some(current) = out.last_mut() {
            current.push(row);
        }
    }
    out
}

/// One file's place, its parquet bytes, and what the export reports about it.
fn encode(
    sim: &Backend,
    ext: &ExternalTable,
    conn: &str,
    folder: &str,
    name: &str,
    rows: &[&Vec<Value>],
) -> Result<(BlobLocation, Vec<u8>, ExportedFile), SimError> {
    let data = parquet_io::write(&ext.columns, rows)?;
    let root = sim.blob.locate(conn)?;
    let loc = if folder.is_empty() {
        root.child(name)
    } else {
        root.child(folder).child(name)
    };
    let file = ExportedFile {
        path: loc.public_url(),
        num_records: rows.len() as u64,
        size: data.len() as u64,
    };
    Ok((loc, data, file))
}

/// The synchronous result of `.export to table` (also the operation's details).
pub fn details(ext_name: &str, files: &[ExportedFile]) -> ResultTable {
    let mut out =
        ResultTable::with_schema("(ExternalTableName: string, Path: string, NumRecords: long)");
    for f in files {
        out.push(vec![
            Value::String(ext_name.to_string()),
            Value::String(f.path.clone()),
            Value::Long(f.num_records as i64),
        ]);
    }
    out
}
