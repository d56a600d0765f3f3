//! reconcile end to end on Azurite + kusto-sim: a table backed up by backfill (history) and
//! the continuous export, with rows on three closed days (March 2026) and on today (inside
//! the settle time). Rows deleted from the source in a closed day leave the backup when
//! reconcile applies (a restore from the catalog lacks them, a restore `asOf` before the swap
//! still has them), also when every message is delivered twice; with `report` only verify's
//! finding changes; today's drift is never touched.

use std::time::Duration;

use adx_backup::app::App;
use adx_backup::ids::{DatabaseName, Day, TableName, TableRef};
use adx_backup::protect;
use adx_backup::reconcile::Drift;
use adx_backup::storage::catalog::Catalog;
use adx_backup::storage::supersede;
use adx_backup::task::Task;
use adx_backup::verify::{self, Finding, Outcome};
use futures::TryStreamExt;
use kusto_sim::Server;
use serde_json::json;
use time::OffsetDateTime;

use crate::harness::restore::{Delivery, query, run_restore};
use crate::harness::stack::Stack;
use crate::harness::tasks::drive;
use crate::restore::{SRC, request, restore_stacks};

/// Row `id` on a closed day: 2026-03-01 + id % 3, so each day gets every third id.
fn row(id: u64) -> String {
    format!("2026-03-0{}T0{}:00:00Z,{id}", 1 + id % 3, id % 10)
}

/// Row `id` on today, inside the settle time.
fn today_row(id: u64) -> String {
    let today = OffsetDateTime::now_utc().date();
    format!("{today}T00:00:{:02}Z,{id}", id % 60)
}

async fn ingest(stack: &Stack, rows: Vec<String>) {
    stack
        .kusto(&format!(
            ".ingest inline into table Orders <|\n{}",
            rows.join("\n")
        ))
        .await;
}

fn orders() -> TableRef {
    TableRef {
        database: DatabaseName::new(SRC).unwrap(),
        table: TableName::new("Orders").unwrap(),
    }
}

fn day(folder: &str) -> Day {
    Day::parse_folder(folder).unwrap()
}

/// Orders: ids 0..12 of history (backfilled) and 12..18 exported continuously, 6 rows on each
/// closed day; ids 100..103 today, exported. Protected, backfilled, harvested, verified Ok.
/// With `staging`, also a table Staging holding ids 200..203 of 2026-03-02, ingested before
/// anything was protected.
async fn backed_up(mode: &str, staging: bool) -> (Stack, App, Server) {
    backed_up_with(mode, staging, &[]).await
}

/// [`backed_up`], with more settings.
async fn backed_up_with(
    mode: &str,
    staging: bool,
    settings: &[(&str, &str)],
) -> (Stack, App, Server) {
    let (mut stack, target) = restore_stacks().await;
    for (k, v) in settings {
        stack.set(k, v);
    }
    stack.set("AdxBackup__Backfill", "on");
    stack.set("AdxBackup__BackfillPollSeconds", "1");
    stack.set("AdxBackup__Reconcile", mode);
    // kusto-sim's clock is its own; lag is not what this test is about.
    stack.set("AdxBackup__LagAlertSeconds", "315360000");
    stack
        .kusto(".create table Orders (Timestamp:datetime, Id:long)")
        .await;
    ingest(&stack, (0..12).map(row).collect()).await;
    if staging {
        stack
            .kusto(".create table Staging (Timestamp:datetime, Id:long)")
            .await;
        let rows: Vec<String> = (200..203)
            .map(|id| format!("2026-03-02T05:00:0{}Z,{id}", id % 10))
            .collect();
        stack
            .kusto(&format!(
                ".ingest inline into table Staging <|\n{}",
                rows.join("\n")
            ))
            .await;
    }
    let app = stack.app();
    protect::run_once(&app).await.unwrap();
    stack.run_exports().await;
    ingest(&stack, (12..18).map(row).collect()).await;
    ingest(&stack, (100..103).map(today_row).collect()).await;
    stack.run_exports().await;
    protect::run_full_pass(&app).await.unwrap();
    assert!(
        drive(&app, false).await > 0,
        "protect asked for no backfill"
    );
    let v = verify::verify_table(&app, &orders(), false).await.unwrap();
    assert_eq!(v.outcome, Outcome::Ok, "{v:#?}");
    (stack, app, target)
}

/// Deletes id 4 (2026-03-02, closed) and id 101 (today) from the source, then runs verify as
/// its timer task does (which queues reconcile work in apply mode) and works the queue.
async fn delete_and_verify(stack: &Stack, app: &App, twice: bool) {
    stack
        .kusto(".delete table Orders records <| Orders | where Id in (4, 101)")
        .await;
    let task = Task::VerifyTableV1 {
        table: orders(),
        files: false,
    };
    app.tasks.send(&task.to_json(), None).await.unwrap();
    drive(app, twice).await;
}

/// The extra-rows finding of today: inside the settle time, so never reconciled.
fn today_extra() -> Finding {
    Finding::ExtraRows {
        day: Day::new(OffsetDateTime::now_utc().date()),
        backup_rows: 3,
        source_rows: 2,
    }
}

async fn catalog_segments(app: &App) -> Vec<String> {
    app.blobs
        .list(&app.layout.catalog_dir(&orders().database, &orders().table))
        .map_ok(|i| i.path)
        .try_collect()
        .await
        .unwrap()
}

async fn apply_scenario(twice: bool) {
    let (stack, app, target) = backed_up("apply", false).await;
    // What the restores must hold, as kusto-sim prints the source before the delete.
    let every_row = query(&stack.sim, SRC, "Orders | project Id").await;
    assert_eq!(every_row.len(), 21);
    let without_4 = query(&stack.sim, SRC, "Orders | where Id != 4 | project Id").await;
    let before_swap = OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    delete_and_verify(&stack, &app, twice).await;
    if twice {
        // A copy of the reconcile message that arrives after the swap finds its job done.
        let late = Task::ReconcileDayV1 {
            table: orders(),
            day: day("20260302"),
            drift: Drift {
                backup_rows: 6,
                source_rows: 5,
            },
            verified_at: before_swap,
        };
        app.tasks.send(&late.to_json(), None).await.unwrap();
        assert_eq!(drive(&app, true).await, 1);
    }

    // Exactly one swap, of the closed day only, with the source's count.
    let records = supersede::records(&app.blobs, &app.layout, &orders().database, &orders().table)
        .await
        .unwrap();
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(records[0].day, day("20260302"));
    assert_eq!(records[0].rows, 5);
    assert!(records[0].at > before_swap);

    // verify now agrees on every closed day; today still differs, untouched.
    let v = verify::verify_table(&app, &orders(), false).await.unwrap();
    assert_eq!(v.findings, [today_extra()], "{v:#?}");

    // The live catalog of 2026-03-02 holds exactly the source's rows of the day.
    let catalog = Catalog::new(&app.blobs, &app.layout);
    let live = supersede::load(
        &app.blobs,
        &app.layout,
        &orders().database,
        &orders().table,
        None,
    )
    .await
    .unwrap();
    let mut live_rows = 0;
    for path in catalog_segments(&app).await {
        for a in catalog.read_path(&path).await.unwrap() {
            if a.day == day("20260302") && live.is_live(&path, &a) {
                live_rows += a.rows;
            }
        }
    }
    assert_eq!(live_rows, 5);

    // A restore from the catalog lacks id 4 and has today's id 101 (today is not reconciled).
    let now = request(
        "rc-now",
        &target,
        json!({"rename": {"Orders": "OrdersNow"}}),
    );
    let job = run_restore(&stack, &app, &target, &now, "rc-now", Delivery::Once).await;
    assert!(job.status.is_final(), "{job:?}");
    assert_eq!(
        query(&target, crate::restore::DR, "OrdersNow | project Id").await,
        without_4
    );
    // A restore as of before the swap still has id 4.
    let then = request(
        "rc-then",
        &target,
        json!({"rename": {"Orders": "OrdersThen"}, "asOf": before_swap.format(&time::format_description::well_known::Rfc3339).unwrap()}),
    );
    run_restore(&stack, &app, &target, &then, "rc-then", Delivery::Once).await;
    assert_eq!(
        query(&target, crate::restore::DR, "OrdersThen | project Id").await,
        every_row
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_removes_rows_deleted_from_a_closed_day_and_as_of_before_still_has_them() {
    apply_scenario(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_delivered_twice_still_swaps_the_day_once_with_exact_counts() {
    apply_scenario(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_mode_changes_only_verifys_finding() {
    let (stack, app, _target) = backed_up("report", false).await;
    let segments = catalog_segments(&app).await;
    delete_and_verify(&stack, &app, false).await;
    let v = verify::load(&app, &orders()).await.unwrap().unwrap();
    assert_eq!(
        v.findings,
        [
            Finding::ExtraRows {
                day: day("20260302"),
                backup_rows: 6,
                source_rows: 5
            },
            today_extra()
        ],
        "{v:#?}"
    );
    assert_eq!(catalog_segments(&app).await, segments);
    let records = supersede::records(&app.blobs, &app.layout, &orders().database, &orders().table)
        .await
        .unwrap();
    assert!(records.is_empty(), "{records:#?}");
}

/// A worker dies after cataloging the reconcile job's last batch and before recording the
/// swap (the state that leaves: the record is the swap's last and only write, so it is
/// removed): the old set stays live, nothing counts twice; the poll's redelivery swaps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_dying_before_the_swap_leaves_the_old_set_live_until_the_redelivery_swaps() {
    let (stack, app, _target) = backed_up("apply", false).await;
    delete_and_verify(&stack, &app, false).await;
    let t = orders();
    let records = supersede::records(&app.blobs, &app.layout, &t.database, &t.table)
        .await
        .unwrap();
    assert_eq!(records.len(), 1, "{records:#?}");
    let swap = &records[0];
    app.blobs
        .delete(
            &app.layout
                .supersede_record(&t.database, &t.table, swap.day, 0),
        )
        .await
        .unwrap();

    // Crashed before the swap: the old set (6 rows of 2026-03-02) is the live one, once.
    let v = verify::verify_table(&app, &t, false).await.unwrap();
    assert_eq!(
        v.findings,
        [
            Finding::ExtraRows {
                day: day("20260302"),
                backup_rows: 6,
                source_rows: 5
            },
            today_extra()
        ],
        "{v:#?}"
    );

    // The poll message the dead worker did not settle comes back.
    let job = swap.job.clone();
    let batch = swap
        .segments
        .iter()
        .next()
        .and_then(|s| s.strip_suffix(".jsonl"))
        .and_then(|s| s.rsplit('-').next())
        .unwrap()
        .to_owned();
    let poll = Task::BackfillPollV1 {
        batch: adx_backup::ids::BatchRef {
            database: t.database.clone(),
            table: t.table.clone(),
            job,
            batch: adx_backup::ids::BatchId::new(batch).unwrap(),
        },
        poll: 0,
    };
    app.tasks.send(&poll.to_json(), None).await.unwrap();
    assert_eq!(drive(&app, false).await, 1);
    let records = supersede::records(&app.blobs, &app.layout, &t.database, &t.table)
        .await
        .unwrap();
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(
        (records[0].job.clone(), records[0].rows),
        (swap.job.clone(), 5)
    );
    let v = verify::verify_table(&app, &t, false).await.unwrap();
    assert_eq!(v.findings, [today_extra()], "{v:#?}");
}

/// A batch moved into the protected table with `.move extents` keeps its old ingestion time
/// and cursor, so the continuous export never exports it: verify reports the day missing
/// rows, reconcile brings them into the backup, a restore has them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_moved_in_with_move_extents_are_reconciled_into_the_backup() {
    let (stack, app, target) = backed_up("apply", true).await;
    stack
        .kusto(".move extents all from table Staging to table Orders")
        .await;
    stack.run_exports().await;
    protect::run_full_pass(&app).await.unwrap();
    let every_row = query(&stack.sim, SRC, "Orders | project Id").await;
    assert_eq!(every_row.len(), 24);
    // The export did not pick the moved rows up.
    let v = verify::verify_table(&app, &orders(), false).await.unwrap();
    assert_eq!(
        v.findings,
        [Finding::MissingRows {
            day: day("20260302"),
            backup_rows: 6,
            source_rows: 9
        }],
        "{v:#?}"
    );
    let task = Task::VerifyTableV1 {
        table: orders(),
        files: false,
    };
    app.tasks.send(&task.to_json(), None).await.unwrap();
    drive(&app, false).await;

    let records = supersede::records(&app.blobs, &app.layout, &orders().database, &orders().table)
        .await
        .unwrap();
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!((records[0].day, records[0].rows), (day("20260302"), 9));
    let v = verify::verify_table(&app, &orders(), false).await.unwrap();
    assert_eq!(v.outcome, Outcome::Ok, "{v:#?}");

    let now = request(
        "rc-moved",
        &target,
        json!({"rename": {"Orders": "OrdersMoved"}}),
    );
    run_restore(&stack, &app, &target, &now, "rc-moved", Delivery::Once).await;
    assert_eq!(
        query(&target, crate::restore::DR, "OrdersMoved | project Id").await,
        every_row
    );
}

/// Every file the catalog lists for `folder`, split into the ones live now and the ones a
/// reader as of `before` saw live and no longer are (what the swap superseded), each with
/// whether its blob exists.
async fn day_files(
    app: &App,
    folder: &str,
    before: OffsetDateTime,
) -> (Vec<(String, bool)>, Vec<(String, bool)>) {
    let t = orders();
    let now = supersede::load(&app.blobs, &app.layout, &t.database, &t.table, None)
        .await
        .unwrap();
    let then = supersede::LiveSet::new(
        supersede::records(&app.blobs, &app.layout, &t.database, &t.table)
            .await
            .unwrap(),
        Some(before),
    );
    let catalog = Catalog::new(&app.blobs, &app.layout);
    let (mut live, mut old) = (Vec::new(), Vec::new());
    for segment in catalog_segments(app).await {
        for a in catalog.read_path(&segment).await.unwrap() {
            if a.day != day(folder) {
                continue;
            }
            let exists = app.blobs.exists(&a.path).await.unwrap();
            if now.is_live(&segment, &a) {
                live.push((a.path, exists));
            } else if then.is_live(&segment, &a) {
                old.push((a.path, exists));
            }
        }
    }
    (live, old)
}

/// What [`reconciled_then_verified_again`] leaves: the day's files (live, superseded) after
/// the second verification, the time before the swap, and what a restore from the catalog
/// must hold (the source's rows before the delete, without id 4; today's id 101 stays, as
/// today is never reconciled).
struct Reconciled {
    stack: Stack,
    app: App,
    target: Server,
    live: Vec<(String, bool)>,
    old: Vec<(String, bool)>,
    before_swap: OffsetDateTime,
    without_4: Vec<String>,
}

/// A reconciled day; verify runs again once the swap is older than the retention (when one
/// is set).
async fn reconciled_then_verified_again(retention: Option<&str>) -> Reconciled {
    let settings: Vec<(&str, &str)> = retention
        .map(|r| ("AdxBackup__ReconcileSupersededRetentionSeconds", r))
        .into_iter()
        .collect();
    let (stack, app, target) = backed_up_with("apply", false, &settings).await;
    let without_4 = query(&stack.sim, SRC, "Orders | where Id != 4 | project Id").await;
    let before_swap = OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    delete_and_verify(&stack, &app, false).await;
    let (live, old) = day_files(&app, "20260302", before_swap).await;
    assert!(!live.is_empty() && !old.is_empty(), "{live:?} {old:?}");
    assert!(
        live.iter().chain(&old).all(|(_, exists)| *exists),
        "nothing is deleted before the retention: {live:?} {old:?}"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let task = Task::VerifyTableV1 {
        table: orders(),
        files: false,
    };
    app.tasks.send(&task.to_json(), None).await.unwrap();
    drive(&app, false).await;
    let (live, old) = day_files(&app, "20260302", before_swap).await;
    Reconciled {
        stack,
        app,
        target,
        live,
        old,
        before_swap,
        without_4,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn superseded_files_are_deleted_after_the_retention_and_a_restore_is_still_exact() {
    let Reconciled {
        stack,
        app,
        target,
        live,
        old,
        before_swap,
        without_4,
    } = reconciled_then_verified_again(Some("2")).await;
    assert!(
        live.iter().all(|(_, exists)| *exists),
        "live files intact: {live:?}"
    );
    assert!(
        old.iter().all(|(_, exists)| !*exists),
        "superseded files gone: {old:?}"
    );
    // Other days were never reconciled: all their files are still there.
    for other in ["20260301", "20260303"] {
        let (files, superseded) = day_files(&app, other, before_swap).await;
        assert!(
            superseded.is_empty() && files.iter().all(|(_, e)| *e),
            "{other}: {files:?}"
        );
    }
    // A third verification finds nothing left to delete, and verify still agrees.
    assert_eq!(
        adx_backup::reconcile::delete_superseded(&app, &orders(), OffsetDateTime::now_utc())
            .await
            .unwrap(),
        0
    );
    let v = verify::verify_table(&app, &orders(), false).await.unwrap();
    assert_eq!(v.findings, [today_extra()], "{v:#?}");

    // A restore from the catalog is exact: without the deleted id 4.
    let now = request(
        "rc-kept",
        &target,
        json!({"rename": {"Orders": "OrdersKept"}}),
    );
    let job = run_restore(&stack, &app, &target, &now, "rc-kept", Delivery::Once).await;
    assert!(job.status.is_final(), "{job:?}");
    assert_eq!(
        query(&target, crate::restore::DR, "OrdersKept | project Id").await,
        without_4
    );
    // As of before the swap the old files are gone: refused, saying why, nothing planned.
    let then = request(
        "rc-gone",
        &target,
        json!({"rename": {"Orders": "OrdersGone"}, "asOf": before_swap.format(&time::format_description::well_known::Rfc3339).unwrap()}),
    );
    let job = run_restore(&stack, &app, &target, &then, "rc-gone", Delivery::Once).await;
    let error = job
        .error
        .as_ref()
        .map(|e| e.message.clone())
        .unwrap_or_default();
    assert!(
        error.contains("day 20260302") && error.contains("were deleted"),
        "{:?}: {error}",
        job.status
    );
    assert_eq!(job.totals.artifacts, 0, "{job:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_retention_superseded_files_stay() {
    let r = reconciled_then_verified_again(None).await;
    assert!(
        r.live.iter().chain(&r.old).all(|(_, exists)| *exists),
        "{:?} {:?}",
        r.live,
        r.old
    );
}
