//! protect end to end on Azurite + kusto-sim: tables in scope get an external table and a
//! continuous export, rows ingested afterwards land as parquet under the right day folders
//! and in the catalog with the right counts, and the backup's content equals the source's.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use adx_backup::app::App;
use adx_backup::ids::{DatabaseName, TableName, TableRef};
use adx_backup::protect::{self, Protection, TableState};
use adx_backup::storage::catalog::{Artifact, Catalog};
use adx_backup::storage::layout::Layout;
use adx_backup::storage::state::Versioned;
use futures::TryStreamExt;
use kusto_sim::FaultConfig;

use crate::harness::host::{FunctionsHost, Shape};
use crate::harness::stack::Stack;

const DB: &str = "Sales";

/// Every Kusto type, several times over: 55 columns.
fn wide_schema() -> String {
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

fn wide_row(day: u32, n: u32) -> String {
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

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

async fn create_tables(stack: &Stack) {
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

async fn ingest(stack: &Stack, table: &str, rows: &[String]) {
    stack
        .kusto(&format!(
            ".ingest inline into table {table} <|\n{}",
            rows.join("\n")
        ))
        .await;
}

/// Rows per table and per day folder, as ingested.
type Expected = BTreeMap<&'static str, BTreeMap<String, u64>>;

async fn ingest_after_protection(stack: &Stack) -> Expected {
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

fn table_ref(table: &str) -> TableRef {
    TableRef {
        database: DatabaseName::new(DB).unwrap(),
        table: TableName::new(table).unwrap(),
    }
}

async fn table_state(app: &App, table: &str) -> Option<TableState> {
    let t = table_ref(table);
    let path = Layout::new(&app.settings.storage.prefix).table_state(&t.database, &t.table);
    app.blobs
        .read_opt(&path)
        .await
        .unwrap()
        .map(|(body, _)| serde_json::from_slice(&body).unwrap())
}

async fn catalog(app: &App, table: &str) -> Vec<Artifact> {
    let t = table_ref(table);
    let layout = Layout::new(&app.settings.storage.prefix);
    Catalog::new(&app.blobs, &layout)
        .stream(&t.database, &t.table)
        .try_collect()
        .await
        .unwrap()
}

async fn names(stack: &Stack, command: &str, column: &str) -> BTreeSet<String> {
    let table = stack.kusto(command).await;
    let idx = table.columns.iter().position(|c| c.name == column).unwrap();
    table
        .rows
        .iter()
        .map(|r| r[idx].to_kusto_string())
        .collect()
}

async fn scalar(stack: &Stack, query: &str) -> String {
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
async fn fingerprint(stack: &Stack, source: &str) -> String {
    scalar(
        stack,
        &format!(
            "{source} | extend h = hash(tostring(pack_all())) | summarize c = count(), s = sum(h)"
        ),
    )
    .await
}

/// A fresh stack whose source database has one table, `Events (Timestamp, Id)`.
async fn events_stack() -> Stack {
    let stack = Stack::start(DB).await;
    stack
        .kusto(".create table Events (Timestamp:datetime, Id:long)")
        .await;
    stack
}

/// A timer firing (first run when `last` is None) and the task queue worked until empty.
async fn timer_then_tasks(host: &FunctionsHost, app: &App, last: Option<&str>) -> usize {
    let verdict = host
        .invoke_timer("protect", "timer", last, last.is_some())
        .await;
    assert!(verdict.succeeded(), "protect timer failed: {}", verdict.raw);
    let poison = app.tasks.poison_queue().unwrap();
    let report = host.drive_queue("tasks", "task", &app.tasks, &poison).await;
    assert_eq!(
        (report.failed_attempts, report.poisoned),
        (0, 0),
        "{:?}",
        report.logs
    );
    report.succeeded
}

#[tokio::test]
async fn protect_backs_up_every_table_in_scope_through_the_functions_host() {
    let mut stack = Stack::start(DB).await;
    stack.set("AdxBackup__PartitionColumns", "Sales/Orders=Shipped");
    // Every timer run a full pass: each table's own step is what this test follows
    // (protect_scale.rs covers the passes that skip unchanged tables).
    stack.set("AdxBackup__FullPassIntervalSeconds", "0");
    create_tables(&stack).await;
    let app = stack.app();
    let host = FunctionsHost::start(&stack.settings).await;

    assert_eq!(
        timer_then_tasks(&host, &app, None).await,
        4,
        "one task per table in scope"
    );
    let protected: BTreeSet<String> =
        ["adxbk_Events", "adxbk_NoDate", "adxbk_Orders", "adxbk_Wide"]
            .map(String::from)
            .into();
    assert_eq!(
        names(&stack, ".show external tables", "TableName").await,
        protected
    );
    assert_eq!(
        names(&stack, ".show continuous-exports", "Name").await,
        protected
    );

    // The export's first run fixes its StartCursor; what is ingested after it is exported.
    stack.run_exports().await;
    let expected = ingest_after_protection(&stack).await;
    for report in stack.run_exports().await {
        assert!(report.error.is_none(), "{report:?}");
    }
    assert_eq!(
        timer_then_tasks(&host, &app, Some("2026-11-25T10:00:00+00:00")).await,
        4
    );

    for (table, days) in &expected {
        let artifacts = catalog(&app, table).await;
        let mut per_day: BTreeMap<String, u64> = BTreeMap::new();
        for a in &artifacts {
            *per_day.entry(a.day.folder()).or_default() += a.rows;
            assert!(
                a.path
                    .starts_with(&format!("backup/{DB}/{table}/{}/", a.day.folder())),
                "{}",
                a.path
            );
            assert!(
                app.blobs.exists(&a.path).await.unwrap(),
                "cataloged file exists: {}",
                a.path
            );
        }
        assert_eq!(&per_day, days, "{table}: catalog rows per day");
        let state = table_state(&app, table).await.expect("state");
        assert!(
            matches!(state.protection, Protection::Protected { .. }),
            "{table}: {:?}",
            state.protection
        );
        assert!(
            state.start_cursor.is_some(),
            "{table}: start cursor recorded"
        );
        assert_eq!(state.harvest.rows, days.values().sum::<u64>());
        assert_eq!(
            fingerprint(&stack, table).await,
            fingerprint(&stack, &format!("external_table('adxbk_{table}')")).await,
            "{table}: backup content equals source"
        );
    }
    assert!(
        table_state(&app, "TempStaging").await.is_none(),
        "excluded table untouched"
    );
    let stray: Vec<_> = app
        .blobs
        .list(&format!("backup/{DB}/TempStaging/"))
        .try_collect()
        .await
        .unwrap();
    assert!(stray.is_empty(), "excluded table has no files");
    let schema: Vec<_> = app
        .blobs
        .list(&format!("backup/$schema/{DB}/"))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        schema.len(),
        2,
        "one snapshot plus the latest pointer: {schema:?}"
    );

    // A run right after changes nothing: read-only commands, same objects, same catalog.
    let before = stack.commands().len();
    let objects = names(
        &stack,
        ".show external tables | project TableName, DocString",
        "DocString",
    )
    .await;
    assert_eq!(
        timer_then_tasks(&host, &app, Some("2026-11-25T10:00:00+00:00")).await,
        4
    );
    let writes: Vec<_> = stack.commands()[before..]
        .iter()
        .filter(|c| !c.starts_with(".show"))
        .cloned()
        .collect();
    assert!(writes.is_empty(), "second run sent {writes:?}");
    assert_eq!(
        names(
            &stack,
            ".show external tables | project TableName, DocString",
            "DocString"
        )
        .await,
        objects
    );
    assert_eq!(
        catalog(&app, "Events").await.len(),
        table_state(&app, "Events").await.unwrap().harvest.artifacts as usize
    );
}

#[tokio::test]
async fn new_tables_and_added_columns_are_followed_without_loss() {
    let stack = events_stack().await;
    let app = stack.app();
    protect::run_once(&app).await.unwrap();
    stack.run_exports().await;

    ingest(
        &stack,
        "Events",
        &(0..5)
            .map(|n| format!("2026-03-01T00:00:0{n}Z,{n}"))
            .collect::<Vec<_>>(),
    )
    .await;
    stack
        .kusto(".alter-merge table Events (Extra:string)")
        .await;
    ingest(
        &stack,
        "Events",
        &(5..9)
            .map(|n| format!("2026-03-02T00:00:0{n}Z,{n},extra {n}"))
            .collect::<Vec<_>>(),
    )
    .await;
    // The export runs before protect has seen the new column.
    stack.run_exports().await;
    stack
        .kusto(".create table Later (Timestamp:datetime, V:long)")
        .await;

    let report = protect::run_once(&app).await.unwrap();
    assert!(
        report.contains("updated external table adxbk_Events"),
        "{report}"
    );
    assert!(
        report.contains("Sales.Later"),
        "new table picked up: {report}"
    );
    stack.run_exports().await;
    ingest(
        &stack,
        "Later",
        &[
            "2026-03-03T00:00:00Z,1".into(),
            "2026-03-03T00:00:01Z,2".into(),
        ],
    )
    .await;
    stack.run_exports().await;
    protect::run_once(&app).await.unwrap();

    let events = catalog(&app, "Events").await;
    assert_eq!(
        events.iter().map(|a| a.rows).sum::<u64>(),
        9,
        "rows with and without the column"
    );
    assert_eq!(
        fingerprint(&stack, "Events").await,
        fingerprint(&stack, "external_table('adxbk_Events')").await
    );
    assert_eq!(
        scalar(
            &stack,
            "external_table('adxbk_Events') | where isnotempty(Extra) | count"
        )
        .await,
        "4"
    );
    assert_eq!(
        catalog(&app, "Later")
            .await
            .iter()
            .map(|a| a.rows)
            .sum::<u64>(),
        2
    );
}

#[tokio::test]
async fn concurrent_runs_create_nothing_twice_and_catalog_each_file_once() {
    let stack = events_stack().await;
    let (a, b) = (stack.app(), stack.app());
    let (ra, rb) = tokio::join!(protect::run_once(&a), protect::run_once(&b));
    ra.unwrap();
    rb.unwrap();
    assert_eq!(
        names(&stack, ".show continuous-exports", "Name")
            .await
            .len(),
        1
    );
    stack.run_exports().await;
    for batch in 0..3 {
        ingest(
            &stack,
            "Events",
            &(0..4)
                .map(|n| format!("2026-04-0{}T00:00:0{n}Z,{n}", batch + 1))
                .collect::<Vec<_>>(),
        )
        .await;
        stack.run_exports().await;
    }
    let t = table_ref("Events");
    let (x, y) = tokio::join!(
        protect::protect_table(&a, &t),
        protect::protect_table(&b, &t)
    );
    // One may lose the ETag race on the state document; the queue would deliver it again.
    assert!(x.is_ok() || y.is_ok(), "{x:?} {y:?}");
    protect::protect_table(&a, &t).await.unwrap();
    protect::protect_table(&b, &t).await.unwrap();
    let artifacts = catalog(&a, "Events").await;
    let paths: BTreeSet<_> = artifacts.iter().map(|x| &x.path).collect();
    assert_eq!(paths.len(), artifacts.len(), "no file cataloged twice");
    assert_eq!(artifacts.iter().map(|x| x.rows).sum::<u64>(), 12);
}

#[tokio::test]
async fn a_failing_export_shows_in_health_with_table_and_message() {
    let stack = events_stack().await;
    let app = stack.app();
    protect::run_once(&app).await.unwrap();
    stack.run_exports().await;
    ingest(&stack, "Events", &["2026-05-01T00:00:00Z,1".into()]).await;
    stack.sim.state().set_faults(FaultConfig {
        fail_continuous_exports: vec!["adxbk_Events".into()],
        ..FaultConfig::default()
    });
    let reports = stack.run_exports().await;
    let message = reports
        .iter()
        .find_map(|r| r.error.clone())
        .expect("the export failed");
    protect::run_once(&app).await.unwrap();
    let state = table_state(&app, "Events").await.unwrap();
    let health = state.health.expect("health recorded");
    assert_eq!(health.last_run_result.as_deref(), Some("Failed"));
    assert!(
        health
            .recent_failures
            .iter()
            .any(|f| f.details.contains(&message) || message.contains(&f.details)),
        "{message:?} in {:?}",
        health.recent_failures
    );
    assert_eq!(state.table.as_str(), "Events");
}

#[tokio::test]
async fn ingestion_time_policy_off_is_reported_then_fixed_when_allowed() {
    let mut stack = events_stack().await;
    stack
        .kusto(".alter table Events policy ingestiontime false")
        .await;
    protect::run_once(&stack.app()).await.unwrap();
    let state = table_state(&stack.app(), "Events").await.unwrap();
    match &state.protection {
        Protection::Unprotected { reason } => assert!(reason.contains("IngestionTime"), "{reason}"),
        other => panic!("expected unprotected, got {other:?}"),
    }
    assert!(
        names(&stack, ".show continuous-exports", "Name")
            .await
            .is_empty()
    );

    stack.set("AdxBackup__EnableIngestionTimePolicy", "true");
    protect::run_once(&stack.app()).await.unwrap();
    let state = table_state(&stack.app(), "Events").await.unwrap();
    assert!(matches!(state.protection, Protection::Protected { .. }));
}

#[tokio::test]
async fn bad_task_messages_end_in_the_poison_queue_and_good_ones_in_any_shape_work() {
    let stack = events_stack().await;
    let app = stack.app();
    let host = FunctionsHost::start(&stack.settings).await;
    app.tasks.ensure_exists().await.unwrap();
    let poison = app.tasks.poison_queue().unwrap();
    let bad = r#"{"kind":"ProtectTableV1","database":"Sales","table":"x'); .drop table Events"}"#;
    app.tasks.send(bad, None).await.unwrap();
    let report = host.drive_queue("tasks", "task", &app.tasks, &poison).await;
    assert_eq!((report.succeeded, report.poisoned), (0, 1), "{report:?}");
    let kept = poison.receive(1, Duration::from_secs(5)).await.unwrap();
    assert_eq!(
        kept[0].text.as_deref().ok(),
        Some(bad),
        "the bad message is kept intact"
    );
    assert_eq!(
        names(&stack, ".show tables", "TableName").await.len(),
        1,
        "nothing dropped"
    );

    let good = r#"{"kind":"ProtectTableV1","database":"Sales","table":"Events"}"#;
    for shape in [Shape::Docs, Shape::Host] {
        let verdict = host.invoke_queue("tasks", "task", good, 1, shape).await;
        assert!(verdict.succeeded(), "{shape:?}: {}", verdict.raw);
    }
    assert!(matches!(
        table_state(&app, "Events").await.unwrap().protection,
        Protection::Protected { .. }
    ));
}

/// Keeps `Versioned` in use from the test side: state documents are plain JSON.
#[tokio::test]
async fn state_documents_are_readable_json() {
    let stack = events_stack().await;
    let app = stack.app();
    protect::run_once(&app).await.unwrap();
    let t = table_ref("Events");
    let path = Layout::new("backup").table_state(&t.database, &t.table);
    let doc: Versioned<serde_json::Value> =
        Versioned::load_or(&app.blobs, &path, || serde_json::Value::Null)
            .await
            .unwrap();
    assert_eq!(doc.value["protection"]["kind"], "Protected");
    assert_eq!(doc.value["protection"]["export"], "adxbk_Events");
}

#[tokio::test]
async fn objects_it_did_not_create_are_never_touched_and_leaving_scope_keeps_the_backup() {
    let mut stack = events_stack().await;
    stack
        .kusto(".create table Notes (Timestamp:datetime, Text:string)")
        .await;
    let foreign = ".create-or-alter external table adxbk_Notes (Timestamp:datetime, Text:string) kind=storage dataformat=parquet (h@'http://127.0.0.1:1/elsewhere') with (docString='made by hand')";
    stack.kusto(foreign).await;
    protect::run_once(&stack.app()).await.unwrap();
    match table_state(&stack.app(), "Notes").await.unwrap().protection {
        Protection::Unprotected { reason } => assert!(reason.contains("adxbk_Notes"), "{reason}"),
        other => panic!("expected unprotected, got {other:?}"),
    }
    let docs = names(
        &stack,
        ".show external tables | where TableName == 'adxbk_Notes'",
        "DocString",
    )
    .await;
    assert_eq!(
        docs,
        BTreeSet::from(["made by hand".to_owned()]),
        "the foreign table is unchanged"
    );

    stack.set("AdxBackup__ExcludeTables", "Events");
    let before = stack.commands().len();
    protect::run_once(&stack.app()).await.unwrap();
    let drops: Vec<_> = stack.commands()[before..]
        .iter()
        .filter(|c| c.contains("drop"))
        .cloned()
        .collect();
    assert!(drops.is_empty(), "{drops:?}");
    assert!(
        names(&stack, ".show continuous-exports", "Name")
            .await
            .contains("adxbk_Events")
    );
    assert!(matches!(
        table_state(&stack.app(), "Events")
            .await
            .unwrap()
            .protection,
        Protection::Protected { .. }
    ));
}

#[tokio::test]
async fn a_table_failing_on_every_delivery_is_recorded_on_the_last_one_not_poisoned() {
    let mut stack = events_stack().await;
    // Kusto unreachable: a closed port on loopback, a transient failure every time.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    stack.set("AdxBackup__ClusterUri", &format!("http://{closed}"));
    let host = FunctionsHost::start(&stack.settings).await;
    let task = r#"{"kind":"ProtectTableV1","database":"Sales","table":"Events"}"#;

    let first = host
        .invoke_queue("tasks", "task", task, 1, Shape::Host)
        .await;
    assert_eq!(
        first.status, 500,
        "retried while deliveries remain: {}",
        first.raw
    );
    let last = host
        .invoke_queue(
            "tasks",
            "task",
            task,
            adx_backup::task::MAX_DEQUEUE_COUNT as u32,
            Shape::Host,
        )
        .await;
    assert!(
        last.succeeded(),
        "acknowledged on the last delivery: {}",
        last.raw
    );
    let state = table_state(&stack.app(), "Events")
        .await
        .expect("failure recorded");
    let error = state.last_error.expect("last_error");
    assert!(error.message.contains("Events"), "{}", error.message);
}

#[tokio::test]
async fn a_disabled_export_is_reported_and_re_enabled_only_when_allowed() {
    let mut stack = events_stack().await;
    protect::run_once(&stack.app()).await.unwrap();
    stack.kusto(".disable continuous-export adxbk_Events").await;
    protect::run_once(&stack.app()).await.unwrap();
    let health = table_state(&stack.app(), "Events")
        .await
        .unwrap()
        .health
        .unwrap();
    assert!(health.disabled, "reported disabled");
    let disabled = ".show continuous-exports | where IsDisabled == true | count";
    assert_eq!(
        stack.kusto(disabled).await.rows[0][0].to_kusto_string(),
        "1",
        "left disabled without the setting"
    );

    stack.set("AdxBackup__ReenableExports", "true");
    protect::run_once(&stack.app()).await.unwrap();
    assert_eq!(
        stack.kusto(disabled).await.rows[0][0].to_kusto_string(),
        "0",
        "re-enabled when allowed"
    );
    assert!(
        !table_state(&stack.app(), "Events")
            .await
            .unwrap()
            .health
            .unwrap()
            .disabled
    );
}

#[tokio::test]
async fn a_failing_database_does_not_stop_the_others() {
    let mut stack = events_stack().await;
    stack.set("AdxBackup__Databases", "Missing, Sales");
    let err = protect::run_once(&stack.app())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("Missing"), "{err}");
    assert!(
        err.contains("Sales.Events: protected"),
        "the other database went on: {err}"
    );
    assert!(matches!(
        table_state(&stack.app(), "Events")
            .await
            .unwrap()
            .protection,
        Protection::Protected { .. }
    ));
    // The lock was released: the next run is not skipped.
    let again = protect::run_once(&stack.app())
        .await
        .unwrap_err()
        .to_string();
    assert!(!again.contains("skipped"), "{again}");
}
