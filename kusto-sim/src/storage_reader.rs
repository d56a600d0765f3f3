//! Reading rows back out of Blob Storage (parquet): `.ingest` sources and `external_table()`
//! scans.

use crate::backend::Backend;
use crate::error::SimError;
use crate::parquet_io;
use crate::state::ExternalTable;
use crate::table::Column;
use crate::value::Value;

/// The rows of one parquet blob (`url` may carry a SAS or `;managed_identity=...`), mapped
/// by name onto `columns`.
pub async fn read_blob(
    sim: &Backend,
    url: &str,
    columns: &[Column],
) -> Result<Vec<Vec<Value>>, SimError> {
    let loc = sim.blob.locate(url)?;
    let data = sim.blob.get(&loc).await?;
    parquet_io::read(data, columns)
        .map_err(|e| SimError::Storage(format!("{}: {e}", loc.public_url())))
}

/// Every row under the external table's roots, from the files its `namePrefix` and
/// `fileExtension` name.
pub async fn read_external_table(
    sim: &Backend,
    ext: &ExternalTable,
) -> Result<Vec<Vec<Value>>, SimError> {
    let mut rows = Vec::new();
    for conn in &ext.connection_strings {
        let root = sim.blob.locate(conn)?;
        // List under "root/" so a sibling folder sharing the root's name prefix is excluded.
        let under = if root.path.is_empty() {
            root.clone()
        } else {
            root.child("")
        };
        for (loc, _) in sim.blob.list(&under).await? {
            if !ext.holds_file(&loc.path) {
                continue;
            }
            let data = sim.blob.get(&loc).await?;
            rows.extend(parquet_io::read(data, &ext.columns)?);
        }
    }
    Ok(rows)
}
