//! protect end to end on Azurite + kusto-sim: tables in scope get an external table and a
//! continuous export, rows ingested afterwards land as parquet under the right day folders
//! and in the catalog with the right counts, and the backup's content equals the source's.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use adx_backup::protect::{self, Protection};
use adx_backup::storage::layout::Layout;
use adx_backup::storage::state::Versioned;
use futures::TryStreamExt;
use kusto_sim::FaultConfig;

use crate::harness::data::{
    DB, catalog, create_tables, events_stack, fingerprint, ingest, ingest_after_protection, names,
    scalar, table_ref, table_state, timer_then_tasks,
};
use crate::harness::host::{FunctionsHost, Shape};
use crate::harness::stack::Stack;

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

    let first = timer_then_tasks(&host, &app, None).await;
    assert_eq!(
        (first.succeeded, first.failed_attempts),
        (4, 0),
        "one task per table in scope: {:?}",
        first.logs
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
    let run = timer_then_tasks(&host, &app, Some("2026-11-25T10:00:00+00:00")).await;
    assert_eq!(
        (run.succeeded, run.failed_attempts),
        (4, 0),
        "{:?}",
        run.logs
    );

    for (table, days) in &expected {
        let artifacts = catalog(&app, table).await;
        let mut per_day: BTreeMap<String, u64> = BTreeMap::new();
        for a in &artifacts {
            // The day comes from the path; what checks it is the per-day row counts below,
            // which come from the ingested data.
            *per_day.entry(a.day.folder()).or_default() += a.rows;
            assert!(
                a.path.starts_with(&format!("backup/{DB}/{table}/")),
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
        assert_eq!(
            state.start_cursor.as_ref().map(|c| c.as_str().to_owned()),
            Some(export_start_cursor(&stack, &format!("adxbk_{table}")).await),
            "{table}: the export's StartCursor is recorded"
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
    let run = timer_then_tasks(&host, &app, Some("2026-11-25T10:00:00+00:00")).await;
    assert_eq!(
        (run.succeeded, run.failed_attempts),
        (4, 0),
        "{:?}",
        run.logs
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
    // Created with `.create`, changed with `.alter`: `.create-or-alter` of a table over a
    // managed identity would need AllDatabasesAdmin on a real cluster.
    let commands = stack.commands();
    let sent = |prefix: &str| commands.iter().filter(|c| c.starts_with(prefix)).count();
    assert_eq!(
        (
            sent(".create external table ['adxbk_Events']"),
            sent(".alter external table ['adxbk_Events']"),
            sent(".create-or-alter external table"),
        ),
        (1, 1, 0),
        "{commands:?}"
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
    let reports = [ra.unwrap(), rb.unwrap()];
    let skipped = reports
        .iter()
        .filter(|r| r.starts_with("protect skipped: another protect run holds the lock"))
        .count();
    assert_eq!(
        skipped, 1,
        "one run holds the lock, the other skips: {reports:?}"
    );
    // kusto-sim keys objects by name, so listing them cannot show a duplicate: count what
    // the product sent instead.
    assert_eq!(create_commands(&stack), (1, 1), "{:?}", stack.commands());
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
    // One may lose the race for the catalog segment or the state document; it must lose it
    // as a conflict (which the queue delivers again), never with a wrong write.
    for result in [&x, &y] {
        if let Err(err) = result {
            assert!(
                matches!(err, protect::ProtectError::Storage { source, .. } if source.is_conflict()),
                "the loser fails with a conflict: {err}"
            );
        }
    }
    assert!(x.is_ok() || y.is_ok(), "one of them wins: {x:?} {y:?}");
    protect::protect_table(&a, &t).await.unwrap();
    protect::protect_table(&b, &t).await.unwrap();
    let artifacts = catalog(&a, "Events").await;
    let paths: BTreeSet<_> = artifacts.iter().map(|x| &x.path).collect();
    assert_eq!(paths.len(), artifacts.len(), "no file cataloged twice");
    assert_eq!(artifacts.iter().map(|x| x.rows).sum::<u64>(), 12);
    let harvest = table_state(&a, "Events").await.unwrap().harvest;
    assert_eq!(
        (harvest.artifacts, harvest.rows),
        (artifacts.len() as u64, 12),
        "the state counts what the catalog holds"
    );
    assert_eq!(create_commands(&stack), (1, 1), "{:?}", stack.commands());
}

/// How many commands that write an external table (any verb) and how many
/// `.create-or-alter continuous-export` commands the product sent.
fn create_commands(stack: &Stack) -> (usize, usize) {
    let commands = stack.commands();
    let count = |prefix: &str| commands.iter().filter(|c| c.starts_with(prefix)).count();
    (
        count(".create external table")
            + count(".alter external table")
            + count(".create-or-alter external table"),
        count(".create-or-alter continuous-export"),
    )
}

/// The StartCursor kusto-sim reports for an export.
async fn export_start_cursor(stack: &Stack, export: &str) -> String {
    let table = stack.kusto(".show continuous-exports").await;
    let column = |name: &str| table.columns.iter().position(|c| c.name == name).unwrap();
    let (name, cursor) = (column("Name"), column("StartCursor"));
    let row = table
        .rows
        .iter()
        .find(|r| r[name].to_kusto_string() == export)
        .unwrap_or_else(|| panic!("no export {export}"));
    let cursor = row[cursor].to_kusto_string();
    assert!(
        !cursor.is_empty(),
        "{export} has run once and has a StartCursor"
    );
    cursor
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
    let details: Vec<_> = health
        .recent_failures
        .iter()
        .map(|f| f.details.as_str())
        .collect();
    assert_eq!(
        details,
        [message.as_str()],
        "Kusto's failure message, verbatim"
    );
    assert_eq!(state.table.as_str(), "Events");
}

#[tokio::test]
async fn ingestion_time_policy_off_is_reported_then_fixed_when_allowed() {
    let mut stack = events_stack().await;
    stack
        .kusto(".delete table Events policy ingestiontime")
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

    assert_eq!(
        ingestion_time_policy(&stack).await,
        r#"{"IsEnabled":false}"#
    );

    stack.set("AdxBackup__EnableIngestionTimePolicy", "true");
    let report = protect::run_once(&stack.app()).await.unwrap();
    assert!(
        report.contains("enabled the IngestionTime policy"),
        "{report}"
    );
    assert_eq!(
        ingestion_time_policy(&stack).await,
        r#"{"IsEnabled":true}"#,
        "the policy is really on in Kusto"
    );
    let state = table_state(&stack.app(), "Events").await.unwrap();
    assert!(matches!(state.protection, Protection::Protected { .. }));
}

async fn ingestion_time_policy(stack: &Stack) -> String {
    let policies = names(stack, ".show table Events policy ingestiontime", "Policy").await;
    assert_eq!(policies.len(), 1, "{policies:?}");
    policies.into_iter().next().unwrap()
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
    let foreign = ".create-or-alter external table adxbk_Notes (Timestamp:datetime, Text:string) kind=storage dataformat=parquet (h@'http://127.0.0.1:0/elsewhere') with (docString='made by hand')";
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
    // Kusto unreachable: port 0 on loopback, which nothing can listen on, so every attempt is
    // refused (a transient failure) and no other test's server can answer instead.
    stack.set("AdxBackup__ClusterUri", "http://127.0.0.1:0");
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
    let error = state.last_error.expect("last_error").message;
    assert!(
        error.starts_with(
            "protect could not read the table schema in database Sales, table Events: transient Kusto failure for `.show table ['Events'] schema as json` on database Sales"
        ) && error.contains("could not connect"),
        "{error}"
    );
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
