//! protect at scale: what one pass costs the cluster once every table is protected, and that
//! the passes that skip unchanged tables still see every change. Each pass is measured by the
//! commands kusto-sim received over HTTP (`Sim::commands()`), so the figures are what a real
//! cluster's admin node would see.

use std::time::{Duration, Instant};

use adx_backup::app::App;
use adx_backup::ids::{DatabaseName, TableName};
use adx_backup::protect::{self, ProtectPlan, TableState};
use adx_backup::storage::catalog::Catalog;
use adx_backup::storage::layout::Layout;
use adx_backup::worker;
use futures::TryStreamExt;

use crate::harness::stack::Stack;

const DB: &str = "Sales";

/// `T0000`, `T0001`, ...: the tables of a scale test.
fn table_name(i: usize) -> String {
    format!("T{i:04}")
}

/// A stack whose source database has `n` tables `(Timestamp:datetime, Id:long)`.
async fn stack_with_tables(n: usize) -> Stack {
    let stack = Stack::start(DB).await;
    for i in 0..n {
        stack
            .kusto(&format!(
                ".create table {} (Timestamp:datetime, Id:long)",
                table_name(i)
            ))
            .await;
    }
    stack
}

/// One `protect` pass (plan and every table it ran): its report and the commands it sent.
async fn one_pass(stack: &Stack, app: &App) -> (String, Vec<String>) {
    let before = stack.commands().len();
    let report = protect::run_once(app).await.unwrap();
    (report, stack.commands()[before..].to_vec())
}

/// The commands that name `table`, as an identifier or inside its objects' names.
fn naming<'a>(sent: &'a [String], table: &str) -> Vec<&'a str> {
    sent.iter()
        .map(String::as_str)
        .filter(|c| c.contains(&format!("['{table}']")) || c.contains(&format!("adxbk_{table}")))
        .collect()
}

/// The commands that name no table: the database-wide reads.
fn database_wide(sent: &[String]) -> Vec<&str> {
    sent.iter()
        .map(String::as_str)
        .filter(|c| !c.contains("['T") && !c.contains("adxbk_T"))
        .collect()
}

async fn state(app: &App, table: &str) -> TableState {
    let path = Layout::new(&app.settings.storage.prefix).table_state(
        &DatabaseName::new(DB).unwrap(),
        &TableName::new(table).unwrap(),
    );
    let (body, _) = app.blobs.read(&path).await.unwrap();
    serde_json::from_slice(&body).unwrap()
}

async fn cataloged_rows(app: &App, table: &str) -> u64 {
    let layout = Layout::new(&app.settings.storage.prefix);
    let artifacts: Vec<_> = Catalog::new(&app.blobs, &layout)
        .stream(
            &DatabaseName::new(DB).unwrap(),
            &TableName::new(table).unwrap(),
        )
        .try_collect()
        .await
        .unwrap();
    artifacts.iter().map(|a| a.rows).sum()
}

#[tokio::test]
async fn a_steady_pass_over_500_tables_costs_almost_nothing_and_still_sees_each_change() {
    let n = 500;
    let stack = stack_with_tables(n).await;
    let app = stack.app();
    let started = Instant::now();
    let (_, first) = one_pass(&stack, &app).await;
    let first_took = started.elapsed();
    // Each export's first run fixes its StartCursor; the next pass records it in each
    // table's state (where the backfill starts from), once in the table's life.
    stack.run_exports().await;
    let (report, _) = one_pass(&stack, &app).await;
    assert!(
        report.contains(&format!("planned {n} table(s)")),
        "{report}"
    );

    let started = Instant::now();
    let (report, steady) = one_pass(&stack, &app).await;
    println!(
        "{n} tables: first pass {} commands in {first_took:?}, steady pass {} commands in {:?}",
        first.len(),
        steady.len(),
        started.elapsed()
    );
    assert!(
        steady.len() * 10 <= n,
        "a steady pass over {n} tables sent {} commands (at most 0.1 per table): {:?}",
        steady.len(),
        &steady[..steady.len().min(20)]
    );
    assert!(report.contains(&format!("{n} unchanged")), "{report}");

    // Between two passes: a column added, rows exported, an export disabled.
    stack.kusto(".alter-merge table T0007 (Extra:string)").await;
    stack
        .kusto(".ingest inline into table T0123 <|\n2026-03-01T00:00:00Z,1\n2026-03-02T00:00:00Z,2")
        .await;
    let run = stack
        .sim
        .state()
        .run_continuous_export_now(DB, "adxbk_T0123")
        .await;
    assert_eq!((run.records, run.error), (2, None));
    stack.kusto(".disable continuous-export adxbk_T0042").await;

    let (report, changed) = one_pass(&stack, &app).await;
    assert!(
        report.contains("updated external table adxbk_T0007"),
        "the new column is followed: {report}"
    );
    assert_eq!(
        naming(&changed, "T0123"),
        [".show continuous-export ['adxbk_T0123'] exported-artifacts"],
        "a moved export costs one harvest command"
    );
    assert_eq!(cataloged_rows(&app, "T0123").await, 2);
    assert!(
        naming(&changed, "T0042")
            .iter()
            .any(|c| c.contains("failures")),
        "the disabled export is checked: {changed:?}"
    );
    assert!(report.contains("Sales.T0042"), "{report}");
    assert!(
        database_wide(&changed).len() * 10 <= n,
        "{:?}",
        database_wide(&changed)
    );
    let changed_tables = ["T0007", "T0123", "T0042"];
    let touched: Vec<_> = (0..n)
        .map(table_name)
        .filter(|t| !changed_tables.contains(&t.as_str()) && !naming(&changed, t).is_empty())
        .collect();
    assert!(
        touched.is_empty(),
        "unchanged tables were touched: {touched:?}"
    );
}

/// The protect timer's half: plan and queue; the tasks stay on the queue until worked.
async fn timer(app: &App) -> ProtectPlan {
    worker::fan_out_protect(app).await.unwrap()
}

/// Works the task queue until it is empty, as the `tasks` function would.
async fn work_queue(app: &App) -> usize {
    let mut done = 0;
    loop {
        let messages = app
            .tasks
            .receive(32, Duration::from_secs(60))
            .await
            .unwrap();
        if messages.is_empty() {
            return done;
        }
        for m in messages {
            let verdict = worker::deliver_text(app, m.text.as_deref().unwrap(), None).await;
            assert!(matches!(verdict, worker::Verdict::Done(_)), "{verdict}");
            app.tasks.delete(&m.id, &m.pop_receipt).await.unwrap();
            done += 1;
        }
    }
}

#[tokio::test]
async fn a_table_whose_task_is_queued_is_not_queued_again_until_it_ran() {
    let stack = stack_with_tables(3).await;
    let app = stack.app();
    let first = timer(&app).await;
    assert_eq!((first.tables.len(), first.in_flight), (3, 0));
    // The queue is slow: the timer fires again before any task ran.
    let again = timer(&app).await;
    assert_eq!(
        (again.tables.len(), again.harvests.len(), again.in_flight),
        (0, 0, 3),
        "{again}"
    );
    assert_eq!(app.tasks.approximate_count().await.unwrap(), 3);
    assert_eq!(work_queue(&app).await, 3);
    // The exports' first runs report StartCursors, which one more check records.
    stack.run_exports().await;
    assert_eq!(timer(&app).await.tables.len(), 3);
    assert_eq!(work_queue(&app).await, 3);
    for i in 0..3 {
        assert!(state(&app, &table_name(i)).await.start_cursor.is_some());
    }
    let settled = timer(&app).await;
    assert_eq!(
        (settled.tables.len(), settled.in_flight, settled.unchanged),
        (0, 0, 3),
        "{settled}"
    );

    stack
        .kusto(".ingest inline into table T0001 <|\n2026-03-01T00:00:00Z,1")
        .await;
    stack
        .sim
        .state()
        .run_continuous_export_now(DB, "adxbk_T0001")
        .await;
    let harvest = timer(&app).await;
    assert_eq!(
        harvest
            .harvests
            .iter()
            .map(|t| t.table.as_str())
            .collect::<Vec<_>>(),
        ["T0001"]
    );
    let again = timer(&app).await;
    assert_eq!(
        (again.harvests.len(), again.in_flight),
        (0, 1),
        "the queued harvest is not queued twice: {again}"
    );
    assert_eq!(work_queue(&app).await, 1);
    assert_eq!(cataloged_rows(&app, "T0001").await, 1);
    assert_eq!(timer(&app).await.unchanged, 3);
}

#[tokio::test]
async fn a_task_that_could_not_be_queued_is_queued_by_the_next_timer_run() {
    let stack = stack_with_tables(2).await;
    let app = stack.app();
    app.ensure_storage().await.unwrap();
    app.tasks.delete_queue().await.unwrap();
    let err = worker::fan_out_protect(&app).await.unwrap_err().to_string();
    assert!(err.contains("queue the task of Sales.T0000"), "{err}");
    app.tasks.ensure_exists().await.unwrap();
    let plan = timer(&app).await;
    assert_eq!((plan.tables.len(), plan.in_flight), (2, 0), "{plan}");
}

#[tokio::test]
async fn a_full_pass_checks_every_table_and_changes_nothing_that_is_right() {
    let mut stack = stack_with_tables(4).await;
    let app = stack.app();
    protect::run_once(&app).await.unwrap();
    let (_, steady) = one_pass(&stack, &app).await;
    assert!((0..4).all(|i| naming(&steady, &table_name(i)).is_empty()));

    let before = stack.commands().len();
    let report = protect::run_full_pass(&app).await.unwrap();
    let full = stack.commands()[before..].to_vec();
    assert!(report.contains("(full pass)"), "{report}");
    for i in 0..4 {
        let table = table_name(i);
        assert!(
            naming(&full, &table)
                .iter()
                .any(|c| c.contains("schema as json")),
            "{table} checked: {full:?}"
        );
    }
    let writes: Vec<_> = full.iter().filter(|c| !c.starts_with(".show")).collect();
    assert!(writes.is_empty(), "{writes:?}");

    // The timer's own full pass, once its interval has passed.
    stack.set("AdxBackup__FullPassIntervalSeconds", "1");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let plan = timer(&stack.app()).await;
    assert!(plan.full_pass, "{plan}");
    assert_eq!(plan.tables.len(), 4);
}
