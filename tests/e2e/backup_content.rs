//! What protect leaves in storage, read by something other than kusto-sim: the harness's own
//! parquet reader opens exactly the cataloged files and the tests compare the parquet types
//! and the rows to literal expectations. Also recovery: after a failed export run, and under
//! throttling, transient errors and slow export runs, the backup ends exact.

use std::collections::BTreeSet;
use std::ops::Range;

use ::parquet::basic::{LogicalType, TimeUnit, Type as PhysicalType};
use adx_backup::app::App;
use adx_backup::protect;
use adx_backup::retry::RetryPolicy;
use kusto_sim::FaultConfig;

use crate::harness::data::{DB, table_state, timer_then_tasks};
use crate::harness::host::FunctionsHost;
use crate::harness::parquet::{
    Cell, ParquetFile, catalog, cataloged_rows, files_in_folder, read_backup, sorted,
};
use crate::harness::stack::Stack;

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
/// digit, 100 ns, is lost; the doc does not say whether it is truncated or rounded, so the
/// rows use values where both give the same microsecond), timespan as a count of 100 ns ticks, decimal exact, dynamic as
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
        sorted(cataloged_rows(&app, DB, "Kinds", Some("Timestamp")).await),
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
    assert_eq!(
        cataloged, in_folder,
        "every file the export wrote is cataloged"
    );
}

const EVENTS: &str = ".create table Events (Timestamp:datetime, Id:long, Message:string)";

/// Event `n` as a CSV record: three days, quarter-second timestamps, a quoted message.
fn event_csv(n: u32) -> String {
    format!(
        "2026-03-{}T08:{:02}:{:02}.25Z,{n},\"event {n}, \"\"quoted\"\"\"",
        10 + n % 3,
        n / 60,
        n % 60
    )
}

/// Event `n` as the backup must hold it.
fn event_cells(n: u32) -> Vec<Cell> {
    vec![
        timestamp(&format!(
            "2026-03-{}T08:{:02}:{:02}.250000Z",
            10 + n % 3,
            n / 60,
            n % 60
        )),
        Cell::Long(i64::from(n)),
        text(&format!("event {n}, \"quoted\"")),
    ]
}

async fn ingest_events(stack: &Stack, ids: Range<u32>) {
    let records: Vec<String> = ids.map(event_csv).collect();
    stack
        .kusto(&format!(
            ".ingest inline into table Events <|\n{}",
            records.join("\n")
        ))
        .await;
}

/// Runs every continuous export once and asserts each run succeeded; returns the rows exported.
async fn exports_succeed(stack: &Stack) -> u64 {
    let reports = stack.run_exports().await;
    for report in &reports {
        assert!(report.error.is_none(), "{report:?}");
    }
    reports.iter().map(|r| r.records).sum()
}

#[tokio::test]
async fn rows_a_failed_export_run_missed_are_backed_up_exactly_once_after_it_recovers() {
    let (stack, app) = protected(EVENTS).await;
    ingest_events(&stack, 0..4).await;
    assert_eq!(exports_succeed(&stack).await, 4);
    protect::run_once(&app).await.unwrap();
    let before = catalog(&app, DB, "Events").await;

    stack.sim.state().set_faults(FaultConfig {
        fail_continuous_exports: vec!["adxbk_Events".into()],
        ..FaultConfig::default()
    });
    ingest_events(&stack, 4..10).await;
    let message = stack
        .run_exports()
        .await
        .into_iter()
        .find_map(|r| r.error)
        .expect("the export run failed");
    protect::run_once(&app).await.unwrap();
    let failed = table_state(&app, "Events").await.unwrap().health.unwrap();
    assert_eq!(failed.last_run_result.as_deref(), Some("Failed"));
    assert_eq!(
        failed
            .recent_failures
            .iter()
            .map(|f| f.details.as_str())
            .collect::<Vec<_>>(),
        [message.as_str()],
        "the run's failure, recorded once"
    );
    assert_eq!(
        catalog(&app, DB, "Events").await,
        before,
        "nothing cataloged from the failed run"
    );
    // A failed run can leave files it never lists: a copy of an exported file now lies in
    // that file's day folder, where a folder listing would count its rows twice.
    let (copy, _) = app.blobs.read(&before[0].path).await.unwrap();
    let stray = format!(
        "backup/{DB}/Events/{}/leftover-of-a-failed-run.parquet",
        before[0].day.folder()
    );
    app.blobs.write(&stray, copy).await.unwrap();

    stack.sim.state().set_faults(FaultConfig::default());
    assert_eq!(exports_succeed(&stack).await, 6, "the missed rows, once");
    protect::run_once(&app).await.unwrap();
    // Another export run and harvest with nothing new change nothing.
    assert_eq!(exports_succeed(&stack).await, 0);
    protect::run_once(&app).await.unwrap();

    let state = table_state(&app, "Events").await.unwrap();
    let health = state.health.unwrap();
    assert_eq!(health.last_run_result.as_deref(), Some("Completed"));
    assert_eq!(
        health.recent_failures,
        [],
        "the failure is no longer reported"
    );
    assert_eq!(
        sorted(cataloged_rows(&app, DB, "Events", Some("Timestamp")).await),
        sorted((0..10).map(event_cells).collect()),
        "every row once, from the cataloged files only"
    );
    assert_eq!((state.harvest.rows, state.harvest.artifacts), (10, 6));
    let mut expected_files: BTreeSet<_> = catalog(&app, DB, "Events")
        .await
        .into_iter()
        .map(|a| a.path)
        .collect();
    expected_files.insert(stray);
    assert_eq!(
        files_in_folder(&app, DB, "Events")
            .await
            .into_iter()
            .collect::<BTreeSet<_>>(),
        expected_files
    );
}

/// What the Functions host's timer passes once it has run before.
const LAST_RUN: &str = "2026-11-25T10:00:00+00:00";

/// The protect timer firing, then the task queue worked by the host until it is empty: the one
/// task must end done. Returns how many deliveries failed (and were redelivered).
async fn protect_one_table(host: &FunctionsHost, app: &App, last: Option<&str>) -> usize {
    let report = timer_then_tasks(host, app, last).await;
    assert_eq!(report.succeeded, 1, "{:?}", report.logs);
    report.failed_attempts
}

/// Which of the first `requests` requests kusto-sim answers 429 or 503: it draws one number
/// per request from a generator seeded with `seed` (kusto-sim/README.md).
fn fault_draws(faults: &FaultConfig, requests: usize) -> Vec<bool> {
    let mut rng = fastrand::Rng::with_seed(faults.seed);
    (0..requests)
        .map(|_| rng.f64() < faults.throttle_rate + faults.transient_rate)
        .collect()
}

/// The longest run of faulted requests in a row.
fn longest_fault_run(draws: &[bool]) -> usize {
    draws
        .split(|faulted| !faulted)
        .map(<[bool]>::len)
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn protect_through_the_task_queue_under_throttling_errors_and_slow_exports_ends_exact() {
    let mut stack = Stack::start(DB).await;
    // Every timer run a full pass, so each one has its table's task to deliver under faults.
    stack.set("AdxBackup__FullPassIntervalSeconds", "0");
    stack.kusto(EVENTS).await;
    let app = stack.app();
    let host = FunctionsHost::start(&stack.settings).await;
    let faults = FaultConfig {
        seed: 47,
        throttle_rate: 0.15,
        transient_rate: 0.15,
        operation_latency_ms: 1000,
        ..FaultConfig::default()
    };
    stack.sim.state().set_faults(faults.clone());
    let before = stack.commands().len();

    let mut failed_deliveries = protect_one_table(&host, &app, None).await;
    exports_succeed(&stack).await;
    for batch in 0..2 {
        ingest_events(&stack, batch * 10..batch * 10 + 10).await;
        // The export run is slow, so protect runs beside it: a harvest that ends before the
        // run does finds its files not yet listed and leaves them to a later run. Which
        // harvest sees them depends on the retries it met; the backup must end exact anyway.
        let (exported, failed) = tokio::join!(
            exports_succeed(&stack),
            protect_one_table(&host, &app, Some(LAST_RUN))
        );
        assert_eq!(exported, 10);
        failed_deliveries += failed;
    }
    failed_deliveries += protect_one_table(&host, &app, Some(LAST_RUN)).await;

    // The handler sends one request at a time, so a command fails for good only when all its
    // attempts meet faults in a row. This seed never faults that many requests in a row:
    // every fault must have been absorbed by a retry inside its delivery.
    let draws = fault_draws(&faults, stack.commands().len() - before);
    let faulted = draws.iter().filter(|f| **f).count();
    assert!(
        faulted >= 5,
        "only {faulted} of {} requests faulted",
        draws.len()
    );
    assert!(
        longest_fault_run(&draws) < RetryPolicy::default().max_attempts as usize,
        "seed {} faults a request on every attempt; pick another seed",
        faults.seed
    );
    assert_eq!(
        failed_deliveries, 0,
        "a transient fault escaped the retries"
    );
    assert_eq!(
        sorted(cataloged_rows(&app, DB, "Events", Some("Timestamp")).await),
        sorted((0..20).map(event_cells).collect())
    );
    assert_eq!(
        catalog(&app, DB, "Events")
            .await
            .into_iter()
            .map(|a| a.path)
            .collect::<BTreeSet<_>>(),
        files_in_folder(&app, DB, "Events")
            .await
            .into_iter()
            .collect::<BTreeSet<_>>(),
        "every file the export wrote is cataloged"
    );
}
