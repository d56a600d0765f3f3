//! What protect leaves in storage, read by something other than kusto-sim: the harness's own
//! parquet reader opens exactly the cataloged files and the tests compare the parquet types
//! and the rows to literal expectations. Also recovery: after a failed export run, and under
//! throttling, transient errors and slow export runs, the backup ends exact.

use std::collections::BTreeSet;

use adx_backup::app::App;
use adx_backup::protect;
use ::parquet::basic::{LogicalType, TimeUnit, Type as PhysicalType};

use crate::harness::parquet::{Cell, ParquetFile, catalog, files_in_folder, read_backup};
use crate::harness::stack::Stack;

const DB: &str = "Sales";

/// A fresh stack with `create` run and the table protected, its export's first run done (it
/// fixes StartCursor; what is ingested afterwards is exported).
async fn protected(create: &str) -> (Stack, App) {
    let stack = Stack::start(DB).await;
    stack.kusto(create).await;
    let app = stack.app();
    protect::run_once(&app).await.unwrap();
    for report in stack.run_exports().await {
        assert!(report.error.is_none(), "{report:?}");
    }
    (stack, app)
}

/// Every row of a table's backup, read from exactly the cataloged files, after checking each
/// file against its catalog entry: the row count Kusto reported (`NumRecords`) is the count
/// in the file, and every row's `day_column` lies in the day its folder names.
async fn cataloged_rows(app: &App, table: &str, day_column: &str) -> Vec<Vec<Cell>> {
    let files = read_backup(app, DB, table).await;
    let paths: BTreeSet<_> = files.iter().map(|f| &f.artifact.path).collect();
    assert_eq!(paths.len(), files.len(), "a file cataloged twice: {paths:?}");
    let mut rows = Vec::new();
    for backup in files {
        let (artifact, file) = (&backup.artifact, &backup.file);
        assert_eq!(
            (artifact.rows, file.footer_rows),
            (file.rows.len() as u64, file.rows.len() as i64),
            "{}: NumRecords and footer against the rows in the file",
            artifact.path
        );
        let day = file.column(day_column);
        for row in &file.rows {
            assert_eq!(
                day_folder(&row[day]),
                artifact.day.folder(),
                "{}: a row outside its day folder",
                artifact.path
            );
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
fn sorted(mut rows: Vec<Vec<Cell>>) -> Vec<Vec<Cell>> {
    rows.sort_by_key(|r| format!("{r:?}"));
    rows
}

fn text(s: &str) -> Cell {
    Cell::Text(s.to_owned())
}

fn timestamp(s: &str) -> Cell {
    Cell::Timestamp(s.to_owned())
}

fn decimal(s: &str) -> Cell {
    Cell::Decimal(s.to_owned())
}

const KINDS: &str = ".create table Kinds (Timestamp:datetime, B:bool, I:int, L:long, R:real, \
    D:decimal, S:string, Ts:timespan, G:guid, Dyn:dynamic)";

/// The rows ingested into `Kinds`, as CSV (one record per line, so no newline inside).
const KINDS_CSV: &str = r#"2026-03-01T10:20:30.1234564Z,true,-2147483648,9223372036854775807,2.5,1234567890.123456789012345678,"He said ""hi"", then left",1.02:03:04.5678901,6f1c0d6e-3a51-4b7a-9a55-0c3c2b0d1e11,"{""a"":{""b"":[1,2.5,{""c"":null}],""d"":""x\""y""},""e"":[]}"
2026-03-01T23:59:59.9999990Z,false,2147483647,-9223372036854775808,-0.1,-0.000000000000000001,Grüße 世界 🚀 'single',-00:00:00.0000001,00000000-0000-0000-0000-000000000000,"[1,""two"",[3,[4]],{""k"":""v""}]"
1969-12-31T23:59:59.999999Z,,,,,,,,,"#;

/// One more row through a query, for the string with a newline, a tab and a backslash.
const KINDS_APPEND: &str = r#".append Kinds <| print Timestamp=datetime(2026-03-02T00:00:00.0000001Z), B=false, I=int(0), L=long(-7), R=real(100), D=decimal(100.000), S="two\nlines,\ta \"quote\" and \\", Ts=timespan(00:00:00.000001), G=guid(00000000-0000-0000-0000-00000000000a), Dyn=dynamic({"k":{"k":{"k":"🚀"}}})"#;

/// What the backup of `Kinds` must hold, written out by hand from the rows above and
/// Kusto's documented parquet mapping: datetime as microseconds (the seventh fractional
/// digit, 100 ns, is lost), timespan as a count of 100 ns ticks, decimal exact, dynamic as
/// JSON text, an empty CSV field null except for string (Kusto has no null string).
fn kinds_expected() -> Vec<Vec<Cell>> {
    vec![
        vec![
            timestamp("2026-03-01T10:20:30.123456Z"),
            Cell::Bool(true),
            Cell::Int(i32::MIN),
            Cell::Long(i64::MAX),
            Cell::Real(2.5),
            decimal("1234567890.123456789012345678"),
            text(r#"He said "hi", then left"#),
            Cell::Long(937_845_678_901),
            text("6f1c0d6e-3a51-4b7a-9a55-0c3c2b0d1e11"),
            text(r#"{"a":{"b":[1,2.5,{"c":null}],"d":"x\"y"},"e":[]}"#),
        ],
        vec![
            timestamp("2026-03-01T23:59:59.999999Z"),
            Cell::Bool(false),
            Cell::Int(i32::MAX),
            Cell::Long(i64::MIN),
            Cell::Real(-0.1),
            decimal("-0.000000000000000001"),
            text("Grüße 世界 🚀 'single'"),
            Cell::Long(-1),
            text("00000000-0000-0000-0000-000000000000"),
            text(r#"[1,"two",[3,[4]],{"k":"v"}]"#),
        ],
        vec![
            timestamp("1969-12-31T23:59:59.999999Z"),
            Cell::Null,
            Cell::Null,
            Cell::Null,
            Cell::Null,
            Cell::Null,
            text(""),
            Cell::Null,
            Cell::Null,
            Cell::Null,
        ],
        vec![
            timestamp("2026-03-02T00:00:00.000000Z"),
            Cell::Bool(false),
            Cell::Int(0),
            Cell::Long(-7),
            Cell::Real(100.0),
            decimal("100"),
            text("two\nlines,\ta \"quote\" and \\"),
            Cell::Long(10),
            text("00000000-0000-0000-0000-00000000000a"),
            text(r#"{"k":{"k":{"k":"🚀"}}}"#),
        ],
    ]
}

/// Kusto's documented parquet type for each column of `Kinds` (export-data-to-storage,
/// "Parquet data types mapping"; the native writer is the only one now). The decimal's
/// precision and scale are not documented, so only the DECIMAL annotation is checked.
fn assert_kinds_types(file: &ParquetFile, path: &str) {
    let utf8 = Some(LogicalType::String);
    let expected = [
        ("Timestamp", PhysicalType::INT64, None),
        ("B", PhysicalType::BOOLEAN, None),
        ("I", PhysicalType::INT32, None),
        ("L", PhysicalType::INT64, None),
        ("R", PhysicalType::DOUBLE, None),
        ("D", PhysicalType::FIXED_LEN_BYTE_ARRAY, None),
        ("S", PhysicalType::BYTE_ARRAY, utf8.clone()),
        ("Ts", PhysicalType::INT64, None),
        ("G", PhysicalType::BYTE_ARRAY, utf8.clone()),
        ("Dyn", PhysicalType::BYTE_ARRAY, utf8),
    ];
    let names: Vec<_> = file.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        expected.iter().map(|e| e.0).collect::<Vec<_>>(),
        "{path}: columns"
    );
    for (column, (name, physical, logical)) in file.columns.iter().zip(expected) {
        assert_eq!(column.physical, physical, "{path}: {name}'s physical type");
        match name {
            "Timestamp" => assert!(
                matches!(
                    column.logical,
                    Some(LogicalType::Timestamp {
                        unit: TimeUnit::MICROS,
                        ..
                    })
                ),
                "{path}: {name} is TIMESTAMP_MICROS: {:?}",
                column.logical
            ),
            "D" => assert!(
                matches!(column.logical, Some(LogicalType::Decimal { .. })),
                "{path}: {name} is DECIMAL: {:?}",
                column.logical
            ),
            _ => assert_eq!(column.logical, logical, "{path}: {name}'s annotation"),
        }
    }
}

#[tokio::test]
async fn every_kusto_type_is_backed_up_with_its_documented_parquet_type_and_exact_value() {
    let (stack, app) = protected(KINDS).await;
    stack
        .kusto(&format!(".ingest inline into table Kinds <|\n{KINDS_CSV}"))
        .await;
    stack.kusto(KINDS_APPEND).await;
    for report in stack.run_exports().await {
        assert!(report.error.is_none(), "{report:?}");
    }
    protect::run_once(&app).await.unwrap();

    let files = read_backup(&app, DB, "Kinds").await;
    assert!(!files.is_empty(), "the export's files are cataloged");
    for backup in &files {
        assert_kinds_types(&backup.file, &backup.artifact.path);
    }
    assert_eq!(
        sorted(cataloged_rows(&app, "Kinds", "Timestamp").await),
        sorted(kinds_expected())
    );
    let days: BTreeSet<_> = files.iter().map(|f| f.artifact.day.folder()).collect();
    assert_eq!(
        days,
        BTreeSet::from(["19691231", "20260301", "20260302"].map(String::from)),
        "one folder per day of Timestamp"
    );
    let cataloged: BTreeSet<_> = catalog(&app, DB, "Kinds")
        .await
        .into_iter()
        .map(|a| a.path)
        .collect();
    let in_folder: BTreeSet<_> = files_in_folder(&app, DB, "Kinds")
        .await
        .into_iter()
        .collect();
    assert_eq!(cataloged, in_folder, "every file the export wrote is cataloged");
}
