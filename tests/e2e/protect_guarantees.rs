//! protect's guarantees, each checked from outside the code that makes it: the run lock,
//! harvest's exactly-once catalog (a crashed attempt's segment, a stray file, a late
//! artifact), schema snapshots, exports kept as protect defines them, partition overrides,
//! and export health. Each test fails when its guarantee is taken out of the product.

use std::collections::BTreeSet;
use std::time::Duration;

use adx_backup::app::App;
use adx_backup::protect::{self, Protection};
use adx_backup::storage::layout::Layout;
use bytes::Bytes;
use futures::TryStreamExt;
use kusto_sim::FaultConfig;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::harness::data::{DB, catalog, events_stack, ingest, table_ref, table_state};
use crate::harness::stack::Stack;

fn layout() -> Layout {
    Layout::new("backup")
}

/// `n` rows of `Events (Timestamp, Id)` on one day of 2026, ids from `first`.
fn events_on(day: &str, first: u32, n: u32) -> Vec<String> {
    (first..first + n)
        .map(|id| format!("{day}T00:00:{:02}Z,{id}", id % 60))
        .collect()
}

async fn read_json(app: &App, path: &str) -> Value {
    let (body, _) = app.blobs.read(path).await.unwrap();
    serde_json::from_slice(&body).unwrap()
}

async fn list(app: &App, prefix: &str) -> BTreeSet<String> {
    app.blobs
        .list(prefix)
        .map_ok(|item| item.path)
        .try_collect()
        .await
        .unwrap()
}

/// One column of kusto-sim's `.show continuous-exports` row for `export`.
async fn export_column(stack: &Stack, export: &str, column: &str) -> String {
    let table = stack.kusto(".show continuous-exports").await;
    let at = |name: &str| table.columns.iter().position(|c| c.name == name).unwrap();
    let (name, wanted) = (at("Name"), at(column));
    table
        .rows
        .iter()
        .find(|r| r[name].to_kusto_string() == export)
        .map(|r| r[wanted].to_kusto_string())
        .unwrap_or_else(|| panic!("no export {export}"))
}

fn datetime(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &Rfc3339).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn lock_doc(holder: &str, expires_at: OffsetDateTime) -> Bytes {
    let doc = json!({"holder": holder, "expires_at": expires_at.format(&Rfc3339).unwrap()});
    Bytes::from(doc.to_string())
}

#[tokio::test]
async fn a_held_run_lock_makes_a_run_skip_and_an_expired_one_is_taken_over() {
    let stack = events_stack().await;
    let app = stack.app();
    app.ensure_storage().await.unwrap();
    let lock = layout().protect_lock();

    let held = lock_doc(
        "another-run",
        OffsetDateTime::now_utc() + time::Duration::minutes(5),
    );
    app.blobs.write(&lock, held.clone()).await.unwrap();
    assert_eq!(
        protect::run_once(&app).await.unwrap(),
        "protect skipped: another protect run holds the lock"
    );
    assert!(
        stack.commands().is_empty(),
        "a skipped run sends nothing to Kusto: {:?}",
        stack.commands()
    );
    assert_eq!(
        app.blobs.read(&lock).await.unwrap().0,
        held,
        "the holder's lock is left alone"
    );

    app.blobs
        .write(
            &lock,
            lock_doc(
                "a-run-that-died",
                OffsetDateTime::now_utc() - time::Duration::seconds(1),
            ),
        )
        .await
        .unwrap();
    let report = protect::run_once(&app).await.unwrap();
    assert!(report.contains("Sales.Events: protected"), "{report}");
    let after = read_json(&app, &lock).await;
    assert_ne!(after["holder"], "a-run-that-died", "taken over: {after}");
    assert!(
        datetime(after["expires_at"].as_str().unwrap()) <= OffsetDateTime::now_utc(),
        "and released when the run ended: {after}"
    );
}

#[tokio::test]
async fn an_unreadable_run_lock_stops_the_run_with_the_blob_to_look_at() {
    let stack = events_stack().await;
    let app = stack.app();
    app.ensure_storage().await.unwrap();
    let lock = layout().protect_lock();
    app.blobs
        .write(&lock, Bytes::from_static(b"locked by hand"))
        .await
        .unwrap();

    let err = protect::run_once(&app).await.unwrap_err().to_string();
    assert!(
        err.starts_with(
            "protect could not read the protect run lock (delete the blob if no protect run is going on): decode on blob backup/$state/protect.lock: undecodable content:"
        ),
        "{err}"
    );
    assert!(stack.commands().is_empty(), "{:?}", stack.commands());
    assert_eq!(
        &app.blobs.read(&lock).await.unwrap().0[..],
        b"locked by hand",
        "not taken over"
    );
}

#[tokio::test]
async fn harvest_absorbs_the_segment_of_an_attempt_that_crashed_before_saving_state() {
    let stack = events_stack().await;
    let app = stack.app();
    let t = table_ref("Events");
    protect::run_once(&app).await.unwrap();
    stack.run_exports().await;
    ingest(&stack, "Events", &events_on("2026-06-01", 0, 5)).await;
    stack.run_exports().await;

    let state_path = layout().table_state(&t.database, &t.table);
    let (before, _) = app.blobs.read(&state_path).await.unwrap();
    assert_eq!(protect::protect_table(&app, &t).await.unwrap().harvested, 1);
    // The crash: the catalog segment was written, the state save never happened.
    app.blobs.write(&state_path, before).await.unwrap();

    let outcome = protect::protect_table(&app, &t).await.unwrap();
    assert_eq!(outcome.harvested, 0, "the file is already in the catalog");
    let artifacts = catalog(&app, "Events").await;
    assert_eq!(artifacts.len(), 1, "cataloged once: {artifacts:?}");
    let harvest = table_state(&app, "Events").await.unwrap().harvest;
    assert_eq!(
        (harvest.artifacts, harvest.rows, harvest.next_segment),
        (1, 5, 1),
        "the state counts the absorbed segment and moves past it"
    );

    ingest(&stack, "Events", &events_on("2026-06-02", 5, 3)).await;
    stack.run_exports().await;
    assert_eq!(protect::protect_table(&app, &t).await.unwrap().harvested, 1);
    let rows: u64 = catalog(&app, "Events").await.iter().map(|a| a.rows).sum();
    assert_eq!(rows, 8);
}

#[tokio::test]
async fn a_stray_parquet_file_in_the_table_folder_never_enters_the_catalog() {
    let stack = events_stack().await;
    let app = stack.app();
    let t = table_ref("Events");
    protect::run_once(&app).await.unwrap();
    stack.run_exports().await;
    ingest(&stack, "Events", &events_on("2026-06-03", 0, 4)).await;
    stack.run_exports().await;

    let folder = format!("backup/{DB}/Events/");
    let exported = list(&app, &folder).await;
    assert_eq!(exported.len(), 1, "{exported:?}");
    // A failed export run's leftover: a valid parquet file beside the exported one, which
    // Kusto never reports in exported-artifacts.
    let (bytes, _) = app.blobs.read(exported.first().unwrap()).await.unwrap();
    let stray = format!("{folder}20260603/leftover-of-a-failed-run.parquet");
    app.blobs.write(&stray, bytes).await.unwrap();

    protect::protect_table(&app, &t).await.unwrap();
    let cataloged: BTreeSet<String> = catalog(&app, "Events")
        .await
        .into_iter()
        .map(|a| a.path)
        .collect();
    assert_eq!(cataloged, exported, "only what the export reported");
    assert!(list(&app, &folder).await.contains(&stray));
    assert_eq!(table_state(&app, "Events").await.unwrap().harvest.rows, 4);
}

#[tokio::test]
async fn harvest_catches_an_artifact_listed_late_within_the_overlap_window() {
    let stack = events_stack().await;
    let app = stack.app();
    let t = table_ref("Events");
    protect::run_once(&app).await.unwrap();
    stack.run_exports().await;
    ingest(&stack, "Events", &events_on("2026-07-01", 0, 3)).await;
    stack.run_exports().await;
    protect::protect_table(&app, &t).await.unwrap();
    let watermark = table_state(&app, "Events")
        .await
        .unwrap()
        .harvest
        .watermark
        .expect("a watermark after the first harvest");

    // The next run's file is listed stamped half an hour before the last harvested one.
    stack.sim.state().set_faults(FaultConfig {
        artifact_report_lag_ms: 30 * 60 * 1000,
        ..FaultConfig::default()
    });
    ingest(&stack, "Events", &events_on("2026-07-02", 3, 2)).await;
    stack.run_exports().await;
    let late = export_artifact_timestamps(&stack).await;
    assert!(
        late.iter().any(|at| *at < watermark),
        "the sim listed a file behind the watermark {watermark}: {late:?}"
    );

    assert_eq!(protect::protect_table(&app, &t).await.unwrap().harvested, 1);
    let artifacts = catalog(&app, "Events").await;
    assert_eq!(artifacts.len(), 2, "{artifacts:?}");
    assert_eq!(artifacts.iter().map(|a| a.rows).sum::<u64>(), 5);
}

#[tokio::test]
async fn an_artifact_without_a_timestamp_does_not_make_harvest_skip_a_later_listed_one() {
    let stack = events_stack().await;
    let app = stack.app();
    let t = table_ref("Events");
    protect::run_once(&app).await.unwrap();
    stack.run_exports().await;
    stack.sim.state().set_faults(FaultConfig {
        artifact_timestamps_missing: true,
        ..FaultConfig::default()
    });
    ingest(&stack, "Events", &events_on("2026-07-03", 0, 3)).await;
    stack.run_exports().await;
    assert_eq!(protect::protect_table(&app, &t).await.unwrap().harvested, 1);

    // Listed after that harvest, stamped three hours back: an unknown time must not have
    // moved the watermark to the present.
    stack.sim.state().set_faults(FaultConfig {
        artifact_report_lag_ms: 3 * 60 * 60 * 1000,
        ..FaultConfig::default()
    });
    ingest(&stack, "Events", &events_on("2026-07-04", 3, 2)).await;
    stack.run_exports().await;
    assert_eq!(protect::protect_table(&app, &t).await.unwrap().harvested, 1);
    let artifacts = catalog(&app, "Events").await;
    assert_eq!(artifacts.len(), 2, "{artifacts:?}");
    assert_eq!(artifacts.iter().map(|a| a.rows).sum::<u64>(), 5);
}

/// Every `Timestamp` in the export's exported-artifacts, read from kusto-sim directly.
async fn export_artifact_timestamps(stack: &Stack) -> Vec<OffsetDateTime> {
    let table = stack
        .kusto(".show continuous-export adxbk_Events exported-artifacts")
        .await;
    let at = table
        .columns
        .iter()
        .position(|c| c.name == "Timestamp")
        .unwrap();
    table
        .rows
        .iter()
        .map(|r| datetime(&r[at].to_kusto_string()))
        .collect()
}

#[tokio::test]
async fn a_schema_change_stores_a_new_snapshot_with_the_new_text_and_moves_latest() {
    let stack = events_stack().await;
    let app = stack.app();
    let db = adx_backup::ids::DatabaseName::new(DB).unwrap();
    let latest_path = layout().schema_latest(&db);
    protect::run_once(&app).await.unwrap();
    let first = read_json(&app, &latest_path).await["path"]
        .as_str()
        .unwrap()
        .to_owned();
    let (first_text, _) = app.blobs.read(&first).await.unwrap();

    stack
        .kusto(".alter-merge table Events (Extra:string)")
        .await;
    protect::run_once(&app).await.unwrap();
    let second = read_json(&app, &latest_path).await["path"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(second, first, "latest.json moved to the new snapshot");
    let (second_text, _) = app.blobs.read(&second).await.unwrap();
    let script = stack
        .kusto(&format!(".show database {DB} schema as csl script"))
        .await
        .rows
        .iter()
        .map(|r| r[0].to_kusto_string())
        .collect::<Vec<_>>()
        .join("\n");
    // The app's own external tables are in the script, and only they are left out.
    let own = |l: &&str| l.starts_with(".create-or-alter external table ['adxbk_");
    assert!(script.lines().any(|l| own(&l)), "{script}");
    let expected: Vec<&str> = script.lines().filter(|l| !own(l)).collect();
    assert_eq!(
        String::from_utf8_lossy(&second_text),
        expected.join("\n"),
        "the snapshot is the schema as Kusto states it now, without the app's own objects"
    );
    assert!(script.contains("Extra"), "{script}");
    assert!(
        !String::from_utf8_lossy(&first_text).contains("Extra"),
        "the old snapshot keeps the old schema"
    );
    assert_eq!(app.blobs.read(&first).await.unwrap().0, first_text);

    // An unchanged schema stores nothing more: no new snapshot, and neither the snapshot nor
    // the pointer is written again (a rewrite within the same second keeps the same name).
    let versions = |path: String| {
        let app = &app;
        async move { app.blobs.read(&path).await.unwrap().1 }
    };
    let before = (
        versions(second.clone()).await,
        versions(latest_path.clone()).await,
    );
    protect::run_once(&app).await.unwrap();
    assert_eq!(
        (
            versions(second.clone()).await,
            versions(latest_path.clone()).await
        ),
        before
    );
    assert_eq!(
        list(&app, &layout().schema_dir(&db)).await,
        BTreeSet::from([first, second, latest_path]),
    );
}

#[tokio::test]
async fn an_export_whose_interval_target_or_query_changed_is_re_created() {
    let mut stack = events_stack().await;
    protect::run_once(&stack.app()).await.unwrap();
    let query = export_column(&stack, "adxbk_Events", "Query").await;
    assert_eq!(
        export_column(&stack, "adxbk_Events", "IntervalBetweenRuns").await,
        "00:05:00"
    );

    stack.set("AdxBackup__ExportIntervalSeconds", "600");
    protect::run_once(&stack.app()).await.unwrap();
    assert_eq!(
        export_column(&stack, "adxbk_Events", "IntervalBetweenRuns").await,
        "00:10:00",
        "the new interval"
    );

    stack
        .kusto(".create external table Elsewhere (Timestamp:datetime, Id:long) kind=storage dataformat=parquet (h@'http://127.0.0.1:0/elsewhere')")
        .await;
    stack
        .kusto(".create-or-alter continuous-export adxbk_Events over (Events) to table Elsewhere with (intervalBetweenRuns=10m) <| Events")
        .await;
    protect::run_once(&stack.app()).await.unwrap();
    assert_eq!(
        export_column(&stack, "adxbk_Events", "ExternalTableName").await,
        "adxbk_Events",
        "pointed back at the backup"
    );

    stack
        .kusto(".create-or-alter continuous-export adxbk_Events over (Events) to table adxbk_Events with (intervalBetweenRuns=10m) <| Events | where Id > 0")
        .await;
    protect::run_once(&stack.app()).await.unwrap();
    assert_eq!(
        export_column(&stack, "adxbk_Events", "Query").await,
        query,
        "the whole table again"
    );
    let creates = stack
        .commands()
        .iter()
        .filter(|c| c.starts_with(".create-or-alter continuous-export"))
        .count();
    assert_eq!(creates, 4, "created once, re-created three times");
}

#[tokio::test]
async fn a_bad_partition_column_override_leaves_the_table_unprotected_with_what_to_fix() {
    let mut stack = events_stack().await;
    for (setting, reason) in [
        (
            "Sales/Events=Nope",
            "partition column override Nope is not a column of the table; fix AdxBackup__PartitionColumns",
        ),
        (
            "Sales/Events=Id",
            "partition column override Id is of type long, not datetime; fix AdxBackup__PartitionColumns",
        ),
    ] {
        stack.set("AdxBackup__PartitionColumns", setting);
        let report = protect::run_once(&stack.app()).await.unwrap();
        assert!(
            report.contains(&format!("UNPROTECTED: {reason}")),
            "{report}"
        );
        assert_eq!(
            table_state(&stack.app(), "Events")
                .await
                .unwrap()
                .protection,
            Protection::Unprotected {
                reason: reason.to_owned()
            }
        );
    }
    let writes: Vec<_> = stack
        .commands()
        .into_iter()
        .filter(|c| !c.starts_with(".show"))
        .collect();
    assert!(writes.is_empty(), "nothing created: {writes:?}");

    stack.set("AdxBackup__PartitionColumns", "Sales/Events=Timestamp");
    protect::run_once(&stack.app()).await.unwrap();
    match table_state(&stack.app(), "Events")
        .await
        .unwrap()
        .protection
    {
        Protection::Protected {
            partition_column, ..
        } => assert_eq!(partition_column.unwrap().as_str(), "Timestamp"),
        other => panic!("expected protected, got {other:?}"),
    }
}

/// The export's failures as kusto-sim lists them, newest first: (Timestamp, Details).
async fn export_failures(stack: &Stack) -> Vec<(OffsetDateTime, String)> {
    let table = stack
        .kusto(".show continuous-export adxbk_Events failures")
        .await;
    let at = |name: &str| table.columns.iter().position(|c| c.name == name).unwrap();
    let (ts, details) = (at("Timestamp"), at("Details"));
    let mut out: Vec<_> = table
        .rows
        .iter()
        .map(|r| {
            (
                datetime(&r[ts].to_kusto_string()),
                r[details].to_kusto_string(),
            )
        })
        .collect();
    out.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    out
}

#[tokio::test]
async fn health_keeps_each_failure_once_at_most_ten_and_the_lag_behind_exported_to() {
    let stack = events_stack().await;
    let app = stack.app();
    let t = table_ref("Events");
    protect::run_once(&app).await.unwrap();
    stack.run_exports().await;
    ingest(&stack, "Events", &events_on("2026-08-01", 0, 2)).await;
    stack.run_exports().await;
    ingest(&stack, "Events", &events_on("2026-08-02", 2, 2)).await;
    // The failing runs start over a second after the last success: LastRunTime moves on,
    // ExportedTo stays, and the lag must follow ExportedTo.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    stack.sim.state().set_faults(FaultConfig {
        fail_continuous_exports: vec!["adxbk_Events".into()],
        ..FaultConfig::default()
    });
    for _ in 0..12 {
        stack.run_exports().await;
        // Distinct failure times, a millisecond apart at least.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let failures = export_failures(&stack).await;
    assert_eq!(failures.len(), 12);

    protect::protect_table(&app, &t).await.unwrap();
    let health = table_state(&app, "Events").await.unwrap().health.unwrap();
    let kept: Vec<_> = health
        .recent_failures
        .iter()
        .map(|f| (f.at, f.details.clone()))
        .collect();
    assert_eq!(kept, failures[..10], "the ten newest, newest first");
    let exported_to = datetime(&export_column(&stack, "adxbk_Events", "ExportedTo").await);
    assert_eq!(
        health.lag_seconds,
        Some((health.checked_at - exported_to).whole_seconds()),
        "lag is the check's time minus Kusto's ExportedTo"
    );
    assert!(health.lag_seconds >= Some(1), "{:?}", health.lag_seconds);

    protect::protect_table(&app, &t).await.unwrap();
    let health = table_state(&app, "Events").await.unwrap().health.unwrap();
    assert!(
        health.recent_failures.is_empty(),
        "failures already reported are not reported again: {:?}",
        health.recent_failures
    );

    stack.run_exports().await;
    protect::protect_table(&app, &t).await.unwrap();
    let health = table_state(&app, "Events").await.unwrap().health.unwrap();
    let newest = export_failures(&stack).await.remove(0);
    let kept: Vec<_> = health
        .recent_failures
        .iter()
        .map(|f| (f.at, f.details.clone()))
        .collect();
    assert_eq!(kept, [newest], "only the failure since the last check");
}
