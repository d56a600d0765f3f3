//! An independent reader of the backup, for checking what protect produced from outside the
//! code that produced it: it reads exactly the files the catalog lists (not a folder listing),
//! from Azurite, with the `parquet` crate's row API (not kusto-sim's arrow-based reader), and
//! reports each column's physical and logical parquet type and every value, typed.
//!
//! Values come back as [`Cell`]s with a fixed text form for the types that have several
//! (decimals without trailing zeros, timestamps as RFC 3339 with six fractional digits), so
//! tests can compare them to literal expected rows.

use ::parquet::basic::{LogicalType, Type as PhysicalType};
use ::parquet::data_type::Decimal;
use ::parquet::file::reader::{FileReader, SerializedFileReader};
use ::parquet::record::Field;
use std::collections::BTreeSet;

use adx_backup::app::App;
use adx_backup::ids::{DatabaseName, TableName};
use adx_backup::storage::catalog::{Artifact, Catalog};
use adx_backup::storage::layout::Layout;
use bytes::Bytes;
use futures::TryStreamExt;

/// One value as read from a parquet file.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Bool(bool),
    Int(i32),
    Long(i64),
    Real(f64),
    /// Exact digits, no trailing fractional zeros: `-0.5`, `100`.
    Decimal(String),
    /// A microsecond timestamp as `yyyy-MM-ddTHH:mm:ss.ffffffZ`.
    Timestamp(String),
    Text(String),
    /// A byte array without a UTF-8 annotation (Kusto never writes one).
    Bytes(Vec<u8>),
}

/// One column's type as written in the file's schema.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnType {
    pub name: String,
    pub physical: PhysicalType,
    pub logical: Option<LogicalType>,
}

/// The content of one parquet file.
#[derive(Debug, Clone, PartialEq)]
pub struct ParquetFile {
    pub columns: Vec<ColumnType>,
    /// The row count in the file's footer.
    pub footer_rows: i64,
    pub rows: Vec<Vec<Cell>>,
}

impl ParquetFile {
    /// Parses a whole file; panics (failing the test) with what was wrong.
    pub fn parse(data: Bytes) -> ParquetFile {
        let reader = SerializedFileReader::new(data).expect("a readable parquet file");
        let meta = reader.metadata().file_metadata();
        let columns = meta
            .schema_descr()
            .columns()
            .iter()
            .map(|c| ColumnType {
                name: c.name().to_owned(),
                physical: c.physical_type(),
                logical: c.logical_type_ref().cloned(),
            })
            .collect();
        let footer_rows = meta.num_rows();
        let rows = reader
            .get_row_iter(None)
            .expect("rows of the parquet file")
            .map(|row| {
                row.expect("a parquet row")
                    .get_column_iter()
                    .map(|(name, field)| cell(name, field))
                    .collect()
            })
            .collect();
        ParquetFile {
            columns,
            footer_rows,
            rows,
        }
    }

    /// The index of a column, by name.
    pub fn column(&self, name: &str) -> usize {
        self.columns
            .iter()
            .position(|c| c.name == name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", self.columns))
    }
}

fn cell(column: &str, field: &Field) -> Cell {
    match field {
        Field::Null => Cell::Null,
        Field::Bool(b) => Cell::Bool(*b),
        Field::Int(i) => Cell::Int(*i),
        Field::Long(l) => Cell::Long(*l),
        Field::Double(d) => Cell::Real(*d),
        Field::Decimal(d) => Cell::Decimal(decimal_text(d)),
        Field::TimestampMicros(us) => Cell::Timestamp(timestamp_text(*us)),
        Field::Str(s) => Cell::Text(s.clone()),
        Field::Bytes(b) => Cell::Bytes(b.data().to_vec()),
        other => panic!("column {column}: a value Kusto's export never writes: {other:?}"),
    }
}

/// A parquet decimal (big-endian two's complement, any width up to 16 bytes) as exact text.
fn decimal_text(d: &Decimal) -> String {
    let bytes = d.data();
    assert!(bytes.len() <= 16, "decimal wider than 128 bits: {d:?}");
    let fill = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
        0xff
    } else {
        0
    };
    let mut wide = [fill; 16];
    wide[16 - bytes.len()..].copy_from_slice(bytes);
    let unscaled = i128::from_be_bytes(wide);
    let scale = usize::try_from(d.scale()).expect("a non-negative decimal scale");
    let digits = unscaled.unsigned_abs().to_string();
    let digits = format!("{digits:0>width$}", width = scale + 1);
    let (int_part, frac_part) = digits.split_at(digits.len() - scale);
    let frac_part = frac_part.trim_end_matches('0');
    let sign = if unscaled < 0 { "-" } else { "" };
    if frac_part.is_empty() {
        format!("{sign}{int_part}")
    } else {
        format!("{sign}{int_part}.{frac_part}")
    }
}

fn timestamp_text(micros: i64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .expect("a timestamp in range");
    at.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    ))
    .expect("format a timestamp")
}

/// A backed-up file: its catalog entry and its content.
#[derive(Debug)]
pub struct BackupFile {
    pub artifact: Artifact,
    pub file: ParquetFile,
}

/// Every artifact of a table's catalog, in append order.
pub async fn catalog(app: &App, db: &str, table: &str) -> Vec<Artifact> {
    let (db, table) = names(db, table);
    let layout = Layout::new(&app.settings.storage.prefix);
    Catalog::new(&app.blobs, &layout)
        .stream(&db, &table)
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("read the catalog of {db}.{table}: {e}"))
}

/// Reads exactly the files a table's catalog lists; a listed file that is missing fails.
pub async fn read_backup(app: &App, db: &str, table: &str) -> Vec<BackupFile> {
    let mut files = Vec::new();
    for artifact in catalog(app, db, table).await {
        let (data, _) = app
            .blobs
            .read(&artifact.path)
            .await
            .unwrap_or_else(|e| panic!("cataloged file {} unreadable: {e}", artifact.path));
        files.push(BackupFile {
            artifact,
            file: ParquetFile::parse(data),
        });
    }
    files
}

/// Every parquet file under a table's data folder, whatever the catalog says.
pub async fn files_in_folder(app: &App, db: &str, table: &str) -> Vec<String> {
    let (db, table) = names(db, table);
    let root = Layout::new(&app.settings.storage.prefix).table_data_root(&db, &table);
    app.blobs
        .list(&format!("{root}/"))
        .map_ok(|item| item.path)
        .try_filter(|path| std::future::ready(path.ends_with(".parquet")))
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("list {root}: {e}"))
}

/// Every row of a table's backup, read from exactly the cataloged files, after checking each
/// file against its catalog entry: the row count Kusto reported (`NumRecords`) is the count
/// in the file, and every row's `day_column` (the partition column, if any) lies in the day
/// its folder names.
pub async fn cataloged_rows(
    app: &App,
    db: &str,
    table: &str,
    day_column: Option<&str>,
) -> Vec<Vec<Cell>> {
    let files = read_backup(app, db, table).await;
    let paths: BTreeSet<_> = files.iter().map(|f| &f.artifact.path).collect();
    assert_eq!(
        paths.len(),
        files.len(),
        "a file cataloged twice: {paths:?}"
    );
    let mut rows = Vec::new();
    for backup in files {
        let (artifact, file) = (&backup.artifact, &backup.file);
        assert_eq!(
            (artifact.rows, file.footer_rows),
            (file.rows.len() as u64, file.rows.len() as i64),
            "{}: NumRecords and footer against the rows in the file",
            artifact.path
        );
        if let Some(day) = day_column.map(|c| file.column(c)) {
            for row in &file.rows {
                assert_eq!(
                    day_folder(&row[day]),
                    artifact.day.folder(),
                    "{}: a row outside its day folder",
                    artifact.path
                );
            }
        }
        rows.extend(backup.file.rows);
    }
    rows
}

/// The `yyyyMMdd` folder of a timestamp cell.
fn day_folder(cell: &Cell) -> String {
    match cell {
        Cell::Timestamp(t) => t[..10].replace('-', ""),
        other => panic!("not a timestamp: {other:?}"),
    }
}

/// Order-independent comparison: export runs and partitions decide the order of files.
pub fn sorted(mut rows: Vec<Vec<Cell>>) -> Vec<Vec<Cell>> {
    rows.sort_by_key(|r| format!("{r:?}"));
    rows
}

fn names(db: &str, table: &str) -> (DatabaseName, TableName) {
    (
        DatabaseName::new(db).expect("a database name"),
        TableName::new(table).expect("a table name"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(unscaled: i128, width: usize, scale: i32) -> String {
        let bytes = unscaled.to_be_bytes()[16 - width..].to_vec();
        decimal_text(&Decimal::from_bytes(bytes.into(), 38, scale))
    }

    #[test]
    fn decimals_read_exactly_at_any_width_and_scale() {
        assert_eq!(dec(-5, 16, 1), "-0.5");
        assert_eq!(dec(100_000, 3, 3), "100");
        assert_eq!(dec(-1, 1, 18), "-0.000000000000000001");
        assert_eq!(dec(12_345, 16, 0), "12345");
    }

    #[test]
    fn timestamps_keep_six_digits_on_both_sides_of_the_epoch() {
        assert_eq!(timestamp_text(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(timestamp_text(-1), "1969-12-31T23:59:59.999999Z");
    }
}
