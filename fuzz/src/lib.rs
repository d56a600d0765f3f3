//! What the fuzz targets share: reading everything a decoded value offers the way the product
//! would, and the write-back check of the documents the product reads, changes and saves.

use std::fmt::Debug;

use adx_backup::kusto::{
    ContinuousExportRow, ExportFailureRow, ExportedArtifactRow, KustoTable, OperationRow,
    QueryResult,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Reads every cell of every table with every typed accessor, then the tables as each typed
/// row the capabilities read: none of it may panic, whatever the cells hold.
pub fn read_tables(tables: &[KustoTable]) {
    for table in tables {
        for row in table.rows() {
            for column in &table.columns {
                let c = column.name.as_str();
                let _ = row.opt_str(c);
                let _ = row.opt_i64(c);
                let _ = row.opt_f64(c);
                let _ = row.opt_bool(c);
                let _ = row.opt_datetime(c);
                let _ = row.opt_timespan(c);
                let _ = row.opt_dynamic(c);
            }
        }
    }
    let _ = ContinuousExportRow::all(tables);
    let _ = ExportFailureRow::all(tables);
    let _ = ExportedArtifactRow::all(tables);
    if let Ok(operations) = OperationRow::all(tables) {
        operations.iter().for_each(|op| drop(op.failure()));
    }
    let result = QueryResult {
        tables: tables.to_vec(),
    };
    let _ = result.cursor();
    let _ = result.primary_table();
}

/// A state document is read, changed and saved again (`Versioned::save`, pretty JSON): what
/// was read must survive the write unchanged, or a save would lose part of it.
pub fn survives_a_save<T: Serialize + DeserializeOwned + PartialEq + Debug>(doc: &T) {
    let saved = serde_json::to_vec_pretty(doc).expect("a decoded document encodes");
    let again: T = serde_json::from_slice(&saved).expect("a saved document decodes");
    assert_eq!(
        &again, doc,
        "the document changed on its way through a save"
    );
}
