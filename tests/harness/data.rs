//! Seed data and inspection for the end-to-end tests of protect and what follows it (backfill,
//! restore): tables covering every Kusto type, rows generated per day with the per-day counts
//! they must produce, and readers for the state, catalog and content a run leaves behind.

use std::collections::{BTreeMap, BTreeSet};

use adx_backup::app::App;
use adx_backup::ids::{DatabaseName, TableName, TableRef};
use adx_backup::protect::TableState;
use adx_backup::storage::catalog::{Artifact, Catalog};
use adx_backup::storage::layout::Layout;
use futures::TryStreamExt;

use crate::harness::host::{DriveReport, FunctionsHost};
use crate::harness::stack::Stack;

pub const DB: &str = "Sales";

/// Every Kusto type, several times over: 55 columns.
pub fn wide_schema() -> String {
    let types = [
        "int", "long", "real", "decimal", "string", "bool", "datetime", "timespan", "guid",
        "dynamic", "string",
    ];
    let mut cols = vec!["Timestamp:datetime".to_owned()];
    for i in 0..54 {
        cols.push(format!(
            "C{i}_{}:{}",
            types[i % types.len()],
            types[i % types.len()]
        ));
    }
    cols.join(", ")
}

pub fn wide_row(day: u32, n: u32) -> String {
    let mut cells = vec![format!(
        "2026-01-{day:02}T{:02}:{:02}:07.123456Z",
        n % 24,
        n % 60
    )];
    for i in 0..54u32 {
        let cell = match i % 11 {
            0 => format!("{}", n as i32 - 3 + i as i32),
            1 => format!("{}", 9_000_000_000i64 + (n * 7 + i) as i64),
            2 => format!("{}.25", n + i),
            3 => format!("{}.125", n * 1000 + i),
            4 => format!("text {n}/{i} with, comma"),
            5 => {
                if (n + i).is_multiple_of(2) {
                    "true".into()
                } else {
                    "false".into()
                }
            }
            6 => format!("2025-12-{:02}T01:02:03.5Z", (n + i) % 28 + 1),
            7 => format!("0{}:0{}:0{}", n % 10, i % 10, (n + i) % 10),
            8 => format!("{:08x}-0000-4000-8000-{:012x}", n, i),
            9 => format!("{{\"n\":{n},\"tags\":[\"a\",\"b{i}\"]}}"),
            _ => String::new(),
        };
        cells.push(csv_cell(&cell));
    }
    cells.join(",")
}

pub fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

pub async fn create_tables(stack: &Stack) {
    stack
        .kusto(".create table Events (Timestamp:datetime, Id:long, Message:string)")
        .await;
    stack
        .kusto(&format!(".create table Wide ({})", wide_schema()))
        .await;
    stack
        .kusto(".create table NoDate (Id:long, Name:string)")
        .await;
    stack
        .kusto(".create table Orders (OrderId:long, Created:datetime, Shipped:datetime)")
        .await;
    stack
        .kusto(".create table TempStaging (Timestamp:datetime, X:long)")
        .await;
}

pub async fn ingest(stack: &Stack, table: &str, rows: &[String]) {
    stack
        .kusto(&format!(
            ".ingest inline into table {table} <|\n{}",
            rows.join("\n")
        ))
        .await;
}

/// Rows per table and per day folder, as ingested.
pub type Expected = BTreeMap<&'static str, BTreeMap<String, u64>>;

pub async fn ingest_after_protection(stack: &Stack) -> Expected {
    let mut expected: Expected = BTreeMap::new();
    let mut events = Vec::new();
    for n in 0..30u32 {
        let day = 10 + n % 3;
        events.push(format!(
            "2026-01-{day}T08:{:02}:00.5Z,{n},\"event, {n}\"",
            n % 60
        ));
        *expected
            .entry("Events")
            .or_default()
            .entry(format!("202601{day}"))
            .or_default() += 1;
    }
    ingest(stack, "Events", &events).await;
    let wide: Vec<String> = (0..10).map(|n| wide_row(20 + n % 2, n)).collect();
    for n in 0..10u32 {
        *expected
            .entry("Wide")
            .or_default()
            .entry(format!("202601{}", 20 + n % 2))
            .or_default() += 1;
    }
    ingest(stack, "Wide", &wide).await;
    let nodate: Vec<String> = (0..7).map(|n| format!("{n},name {n}")).collect();
    expected
        .entry("NoDate")
        .or_default()
        .insert("00010101".into(), 7);
    ingest(stack, "NoDate", &nodate).await;
    let mut orders = Vec::new();
    for n in 0..12u32 {
        let shipped = 3 + n % 2;
        orders.push(format!(
            "{n},2026-01-01T00:00:00Z,2026-02-0{shipped}T12:00:00Z"
        ));
        *expected
            .entry("Orders")
            .or_default()
            .entry(format!("2026020{shipped}"))
            .or_default() += 1;
    }
    ingest(stack, "Orders", &orders).await;
    ingest(
        stack,
        "TempStaging",
        &[
            "2026-01-10T00:00:00Z,1".into(),
            "2026-01-11T00:00:00Z,2".into(),
        ],
    )
    .await;
    expected
}

pub fn table_ref(table: &str) -> TableRef {
    TableRef {
        database: DatabaseName::new(DB).unwrap(),
        table: TableName::new(table).unwrap(),
    }
}

pub async fn table_state(app: &App, table: &str) -> Option<TableState> {
    let t = table_ref(table);
    let path = Layout::new(&app.settings.storage.prefix).table_state(&t.database, &t.table);
    app.blobs
        .read_opt(&path)
        .await
        .unwrap()
        .map(|(body, _)| serde_json::from_slice(&body).unwrap())
}

pub async fn catalog(app: &App, table: &str) -> Vec<Artifact> {
    let t = table_ref(table);
    let layout = Layout::new(&app.settings.storage.prefix);
    Catalog::new(&app.blobs, &layout)
        .stream(&t.database, &t.table)
        .try_collect()
        .await
        .unwrap()
}

pub async fn names(stack: &Stack, command: &str, column: &str) -> BTreeSet<String> {
    let table = stack.kusto(command).await;
    let idx = table.columns.iter().position(|c| c.name == column).unwrap();
    table
        .rows
        .iter()
        .map(|r| r[idx].to_kusto_string())
        .collect()
}

pub async fn scalar(stack: &Stack, query: &str) -> String {
    let out = stack
        .sim
        .state()
        .query(DB, query)
        .await
        .unwrap_or_else(|e| panic!("{query}: {e}"));
    out.primary.rows[0]
        .iter()
        .map(|v| v.to_kusto_string())
        .collect::<Vec<_>>()
        .join("|")
}

/// Row count and an order-independent hash of every row's content.
pub async fn fingerprint(stack: &Stack, source: &str) -> String {
    scalar(
        stack,
        &format!(
            "{source} | extend h = hash(tostring(pack_all())) | summarize c = count(), s = sum(h)"
        ),
    )
    .await
}

/// A fresh stack whose source database has one table, `Events (Timestamp, Id)`.
pub async fn events_stack() -> Stack {
    let stack = Stack::start(DB).await;
    stack
        .kusto(".create table Events (Timestamp:datetime, Id:long)")
        .await;
    stack
}

/// A timer firing (first run when `last` is None) and the task queue worked until empty. The
/// timer must succeed and no task may end in the poison queue; the caller checks how many
/// tasks succeeded and how many deliveries failed on the way.
pub async fn timer_then_tasks(host: &FunctionsHost, app: &App, last: Option<&str>) -> DriveReport {
    let verdict = host
        .invoke_timer("protect", "timer", last, last.is_some())
        .await;
    assert!(verdict.succeeded(), "protect timer failed: {}", verdict.raw);
    let poison = app.tasks.poison_queue().unwrap();
    let report = host.drive_queue("tasks", "task", &app.tasks, &poison).await;
    assert_eq!(report.poisoned, 0, "{:?}", report.logs);
    report
}
