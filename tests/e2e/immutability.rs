//! The backup with its data container under a container-level WORM (time-based retention)
//! policy, which Azurite does not implement: a [`BlobProxy`] in front of Azurite's blob
//! service refuses, as the storage service documents, every delete and overwrite in that
//! container, for the app and for the clusters alike. State lives in a container of its own
//! (`AdxBackup__StateContainer`).
//!
//! Protect, a backfill whose first export runs out of memory (its partial files cannot be
//! removed), and a restore work as without the policy, and the restore is exact. A prune
//! records the days that left the policy and defers their deletes, saying why; nothing is
//! lost, the catalog is untouched, and a later pass without the policy finishes the deletes.
//! The app never tries to overwrite a blob of the data container: the proxy would refuse it,
//! and the test finds every refusal to be a delete.

use std::collections::BTreeSet;
use std::time::Duration;

use adx_backup::app::App;
use adx_backup::retry::RetryPolicy;
use adx_backup::storage::{BlobStore, StorageError};
use adx_backup::verify::{self, Outcome};
use adx_backup::{protect, prune, status};
use bytes::Bytes;
use futures::TryStreamExt;
use kusto_sim::Server;
use kusto_sim::faults::FaultConfig;
use serde_json::json;
use time::Date;
use time::macros::date;

use crate::harness::blob_proxy::BlobProxy;
use crate::harness::restore::{Delivery, query, run_restore};
use crate::harness::stack::{Stack, azurite_blob_endpoint, azurite_queue_endpoint};
use crate::harness::tasks::drive;
use crate::prune::{FIRST, FIRST_KEPT, NOW, folders, orders, restorable_days, stored_days};
use crate::restore::{DR, SRC, exports, request};

/// The first day whose rows the continuous export carries; the days before are history.
const EXPORTED_FROM: Date = date!(2026 - 02 - 10);

/// Rows of the days `from..to_excl`: day `d` (counted from 2026-01-01) holds `1 + d % 3`.
fn rows(from: Date, to_excl: Date) -> Vec<String> {
    let mut out = Vec::new();
    let mut day = from;
    while day < to_excl {
        let d = (day - FIRST).whole_days();
        for r in 0..=(d % 3) {
            out.push(format!("{day}T0{r}:00:00Z,{}", d * 10 + r));
        }
        day = day.next_day().unwrap();
    }
    out
}

struct Worm {
    proxy: BlobProxy,
    stack: Stack,
    app: App,
    target: Server,
    data: String,
    state: String,
}

/// A source and a restore target reaching blob storage through the proxy, the app keeping
/// 30 days with its state in a container of its own, and the data container under the
/// emulated policy from the start.
async fn worm() -> Worm {
    let proxy = BlobProxy::start(&azurite_blob_endpoint()).await;
    let mut stack = Stack::start_at(SRC, &proxy.endpoint()).await;
    let target = Stack::target_cluster_at(DR, &proxy.endpoint(), &azurite_queue_endpoint()).await;
    let data = setting(&stack, "AdxBackup__Container");
    let state = format!("{data}-state");
    for (key, value) in [
        ("AdxBackup__StateContainer", state.as_str()),
        ("AdxBackup__RetentionDays", "30"),
        ("AdxBackup__Backfill", "on"),
        ("AdxBackup__BackfillPollSeconds", "1"),
        ("AdxBackup__BackfillBatchMaxRows", "1000"),
        ("AdxBackup__BackfillSplitFloorRows", "10"),
        ("AdxBackup__RestoreTargets", &target.url()),
        ("AdxBackup__RestoreChunkBlobs", "20"),
        ("AdxBackup__RestorePollSeconds", "1"),
        // kusto-sim's clock is its own; lag is not what this test is about.
        ("AdxBackup__LagAlertSeconds", "315360000"),
    ] {
        stack.set(key, value);
    }
    let queue = format!(
        "e2e-restore-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..20]
    );
    stack.set("AdxBackup__RestoreQueue", &queue);
    proxy.set_worm(&data, true);
    let app = stack.app();
    Worm {
        proxy,
        stack,
        app,
        target,
        data,
        state,
    }
}

fn setting(stack: &Stack, key: &str) -> String {
    stack
        .settings
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .unwrap()
}

/// Every blob of one container, listed directly (not through the app's routing).
async fn container_blobs(app: &App, container: &str) -> Vec<(String, String)> {
    BlobStore::for_container(&app.settings.storage, container, RetryPolicy::fast(3))
        .unwrap()
        .list("")
        .map_ok(|i| (i.path, i.etag.to_string()))
        .try_collect()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protect_backfill_prune_and_restore_under_a_container_worm_policy() {
    let w = worm().await;
    let (stack, app) = (&w.stack, &w.app);
    stack
        .kusto(".create table Orders (Timestamp:datetime, Id:long)")
        .await;
    // History, in four ingestions a simulated minute apart (so a batch can be split)...
    let mut from = FIRST;
    while from < EXPORTED_FROM {
        let to = (from + time::Duration::days(10)).min(EXPORTED_FROM);
        stack
            .kusto(&format!(
                ".ingest inline into table Orders <|\n{}",
                rows(from, to).join("\n")
            ))
            .await;
        stack.sim.state().advance_clock(Duration::from_secs(60));
        from = to;
    }
    // ...and an export memory budget the one planned batch (80 rows) exceeds.
    stack.sim.state().set_faults(FaultConfig {
        export_max_rows: Some(50),
        ..FaultConfig::default()
    });
    protect::run_once(app).await.unwrap();
    exports(stack).await;
    stack
        .kusto(&format!(
            ".ingest inline into table Orders <|\n{}",
            rows(EXPORTED_FROM, date!(2026 - 03 - 02)).join("\n")
        ))
        .await;
    exports(stack).await;
    protect::run_full_pass(app).await.unwrap();
    drive(app, false).await;

    // The batch was split; the files its failed export wrote could not be removed.
    let refused = w.proxy.refused();
    assert!(
        !refused.is_empty(),
        "the failed attempt's files were removable"
    );
    for r in &refused {
        assert!(
            r.method == "DELETE" && r.container == w.data && r.blob.ends_with(".parquet"),
            "only deletes of data files are refused, never an overwrite: {r:?}"
        );
    }
    let v = verify::verify_table(app, &orders(), true).await.unwrap();
    assert_eq!(v.outcome, Outcome::Ok, "{v:#?}");
    let all = folders(FIRST, date!(2026 - 03 - 02));
    assert_eq!(stored_days(app).await, all);

    // The prune records the 30 oldest days and defers their deletes.
    let t = orders();
    let catalog_before = catalog(app).await;
    let refused_before = w.proxy.refused().len();
    let report = prune::prune_table(app, &t, NOW, false).await.unwrap();
    assert_eq!(report.days.len(), 30, "{report:#?}");
    assert!(report.finished.is_empty(), "{report:#?}");
    let deferred = report.deletes_deferred.clone().expect("deletes deferred");
    assert_eq!(deferred.days.len(), 30);
    assert!(
        deferred.reason.contains("BlobImmutableDueToPolicy"),
        "{deferred:?}"
    );
    let text = report.to_string();
    assert!(
        text.contains("deletes of 30 day(s) deferred")
            && text.contains("each prune pass tries again"),
        "{text}"
    );
    // One refused delete per day: the rest of a day waits for the next pass.
    assert_eq!(w.proxy.refused().len() - refused_before, 30);
    // Nothing lost: every file is still stored, the catalog unchanged, the records kept; the
    // 30 days left the restorable set.
    let kept = folders(FIRST_KEPT, date!(2026 - 03 - 02));
    assert_eq!(stored_days(app).await, all);
    assert_eq!(catalog(app).await, catalog_before);
    assert_eq!(restorable_days(app).await, kept);
    let (records, done) = prune_folder(app).await;
    assert_eq!((records, done), (30, 0));

    let s = status::collect_at(app, &status::Filter::default(), NOW)
        .await
        .unwrap();
    let r = &s.databases[0].tables[0].retention;
    let last = r.last_prune.clone().unwrap();
    assert_eq!(
        (last.recorded_days, last.finished_days, last.unfinished_days),
        (30, 0, 30)
    );
    assert!(
        last.deletes_deferred
            .as_deref()
            .is_some_and(|d| d.contains("BlobImmutableDueToPolicy")),
        "{last:#?}"
    );
    assert!(
        !s.needs_attention,
        "deferred deletes lose nothing: {:#?}",
        s.attention
    );
    let text = status::render(&s, status::Colour::Off);
    assert!(
        text.contains("deletes deferred: 30 day(s) still in storage")
            && text.contains("Sales.Orders: prune deletes of 30 day(s) deferred"),
        "{text}"
    );

    // A restore under the policy is exact: the 30 days kept, row for row.
    let req = request(
        "worm-1",
        &w.target,
        json!({"rename": {"Orders": "Orders_worm"}}),
    );
    let done_job = run_restore(stack, app, &w.target, &req, "worm-1", Delivery::Once).await;
    assert!(
        done_job.status.is_final() && done_job.failed.is_empty(),
        "{done_job:#?}"
    );
    let expected = query(
        &stack.sim,
        SRC,
        "Orders | where Timestamp >= datetime(2026-01-31) | project Timestamp, Id",
    )
    .await;
    assert_eq!(expected.len(), 60);
    assert_eq!(
        query(&w.target, DR, "Orders_worm | project Timestamp, Id").await,
        expected
    );

    // The next pass under the policy tries again and records nothing new.
    let again = prune::prune_table(app, &t, NOW, false).await.unwrap();
    assert!(
        again.days.is_empty() && again.finished.is_empty(),
        "{again:#?}"
    );
    assert_eq!(again.deletes_deferred.map(|d| d.days.len()), Some(30));

    // Without the policy a later pass finishes the deletes.
    w.proxy.set_worm(&w.data, false);
    let last = prune::prune_table(app, &t, NOW, false).await.unwrap();
    assert_eq!(last.finished.len(), 30, "{last:#?}");
    assert!(last.deletes_deferred.is_none());
    assert_eq!(stored_days(app).await, kept);
    assert_eq!(restorable_days(app).await, kept);
    assert_eq!(prune_folder(app).await, (30, 30));
    let s = status::collect_at(app, &status::Filter::default(), NOW)
        .await
        .unwrap();
    let last = s.databases[0].tables[0]
        .retention
        .last_prune
        .clone()
        .unwrap();
    assert_eq!((last.finished_days, last.unfinished_days), (30, 0));
    assert!(last.deletes_deferred.is_none());

    // Each area in its container: no state in the data container, nothing else in the state.
    let is_state = |p: &str| p.starts_with("backup/$state/") || p.ends_with("/latest.json");
    let data_blobs = container_blobs(app, &w.data).await;
    assert!(
        data_blobs.iter().all(|(p, _)| !is_state(p)),
        "{data_blobs:#?}"
    );
    let state_blobs = container_blobs(app, &w.state).await;
    assert!(
        state_blobs
            .iter()
            .any(|(p, _)| p.starts_with("backup/$state/tables/"))
            && state_blobs.iter().all(|(p, _)| is_state(p)),
        "{state_blobs:#?}"
    );
}

/// Catalog segments with their ETags.
async fn catalog(app: &App) -> BTreeSet<(String, String)> {
    let t = orders();
    app.blobs
        .list(&app.layout.catalog_dir(&t.database, &t.table))
        .map_ok(|i| (i.path, i.etag.to_string()))
        .try_collect()
        .await
        .unwrap()
}

/// Prune records and done markers of Orders.
async fn prune_folder(app: &App) -> (usize, usize) {
    let t = orders();
    let names: Vec<String> = app
        .blobs
        .list(&app.layout.prune_dir(&t.database, &t.table))
        .map_ok(|i| i.path)
        .try_collect()
        .await
        .unwrap();
    let done = names.iter().filter(|n| n.ends_with(".done")).count();
    (names.len() - done, done)
}

/// The proxy answers as the service documents, and the app reads it so: an overwrite or a
/// delete under the policy is `Immutable` (with the service's message), a create over an
/// existing blob counts as "exists"; a new blob, reads and listings pass; lifting the policy
/// lets both through.
#[tokio::test]
async fn the_proxy_refuses_overwrites_and_deletes_as_the_service_does() {
    let proxy = BlobProxy::start(&azurite_blob_endpoint()).await;
    let stack = Stack::start_at(SRC, &proxy.endpoint()).await;
    let app = stack.app();
    let container = app.blobs.container_name().to_owned();
    app.blobs.ensure_container().await.unwrap();
    proxy.set_worm(&container, true);
    let path = "backup/Sales/T/20260101/a.parquet";
    app.blobs
        .create_new(path, Bytes::from_static(b"one"))
        .await
        .unwrap();
    let overwrite = app.blobs.write(path, Bytes::from_static(b"two")).await;
    let delete = app.blobs.delete(path).await;
    for (what, result) in [("overwrite", overwrite.map(|_| ())), ("delete", delete)] {
        match result {
            Err(e @ StorageError::Immutable { .. }) => {
                let chain = format!("{e}: {}", std::error::Error::source(&e).unwrap());
                assert!(
                    chain.contains("BlobImmutableDueToPolicy")
                        && chain.contains("not permitted as the blob is immutable due to a policy"),
                    "{what}: {chain}"
                );
            }
            other => panic!("{what}: {other:?}"),
        }
    }
    assert!(
        app.blobs
            .create_new(path, Bytes::from_static(b"three"))
            .await
            .unwrap_err()
            .is_conflict()
    );
    assert_eq!(
        app.blobs.read(path).await.unwrap().0,
        Bytes::from_static(b"one")
    );
    assert_eq!(proxy.refused().len(), 3);

    proxy.set_worm(&container, false);
    app.blobs
        .write(path, Bytes::from_static(b"two"))
        .await
        .unwrap();
    app.blobs.delete(path).await.unwrap();
    assert!(!app.blobs.exists(path).await.unwrap());
    app.blobs.delete_container().await.unwrap();
}

/// With its state in the container under the policy, protect stops at its first rewrite of
/// a state document, and the error says where state must live.
#[tokio::test]
async fn state_in_the_worm_container_stops_protect_with_what_to_do() {
    let proxy = BlobProxy::start(&azurite_blob_endpoint()).await;
    let stack = Stack::start_at(SRC, &proxy.endpoint()).await;
    stack
        .kusto(".create table Orders (Timestamp:datetime, Id:long)")
        .await;
    let app = stack.app();
    proxy.set_worm(app.blobs.container_name(), true);
    let err = protect::run_once(&app).await.unwrap_err().to_string();
    assert!(
        err.contains("BlobImmutableDueToPolicy") && err.contains("AdxBackup__StateContainer"),
        "{err}"
    );
}
