//! retention end to end on Azurite + kusto-sim: a table backed up over 60 days (2026-01-01 ..
//! 2026-03-01, 1 to 3 rows a day), kept 30 days as of 2026-03-02 (the "now" the timer puts in
//! its task). A dry run changes nothing and lists the 30 oldest days with kusto-sim's counts;
//! the prune removes exactly those from the catalog's restorable set and from storage (the
//! data folder listed here, not through the product's layout), verify still agrees, and a
//! restore brings back exactly days 31-60, row for row. A crash between the records and the
//! deletes (the record step run alone) and every message delivered twice end in the same
//! state. `status` shows beforehand what the prune will remove (figures from the stored files
//! and kusto-sim's rows), nothing afterwards, and raises the retention alert once a day the
//! policy keeps is pruned by a record no policy explains.

use std::collections::BTreeSet;

use adx_backup::app::App;
use adx_backup::ids::{DatabaseName, Day, JobId, TableName, TableRef};
use adx_backup::restore::state::{JobStatus, RestoreJob};
use adx_backup::storage::catalog_totals;
use adx_backup::storage::prune::{self as prune_records, Prune};
use adx_backup::task::Task;
use adx_backup::verify::{self, Outcome};
use adx_backup::worker;
use adx_backup::{protect, prune, status};
use futures::TryStreamExt;
use kusto_sim::Server;
use serde_json::json;
use time::macros::{date, datetime};
use time::{Date, OffsetDateTime};

use crate::harness::restore::{Delivery, query, run_restore};
use crate::harness::stack::Stack;
use crate::harness::tasks::drive;
use crate::restore::{DR, SRC, exports, request, restore_stacks};

/// The timer's "now": the day after the backup's last day.
pub(crate) const NOW: OffsetDateTime = datetime!(2026-03-02 06:00 UTC);
pub(crate) const FIRST: Date = date!(2026 - 01 - 01);
/// The first day the policy keeps: 30 days before NOW's date.
pub(crate) const FIRST_KEPT: Date = date!(2026 - 01 - 31);

pub(crate) fn orders() -> TableRef {
    TableRef {
        database: DatabaseName::new(SRC).unwrap(),
        table: TableName::new("Orders").unwrap(),
    }
}

/// Day `d` (0..60) holds `1 + d % 3` rows.
fn rows() -> Vec<String> {
    let mut out = Vec::new();
    for d in 0..60i64 {
        let day = FIRST + time::Duration::days(d);
        for r in 0..=(d % 3) {
            out.push(format!("{day}T0{r}:00:00Z,{}", d * 10 + r));
        }
    }
    out
}

pub(crate) fn folders(from: Date, to_excl: Date) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut d = from;
    while d < to_excl {
        out.insert(format!(
            "{:04}{:02}{:02}",
            d.year(),
            u8::from(d.month()),
            d.day()
        ));
        d = d.next_day().unwrap();
    }
    out
}

/// Orders exported continuously over its 60 days, harvested; verify agrees.
async fn backed_up() -> (Stack, App, Server) {
    let (mut stack, target) = restore_stacks().await;
    stack.set("AdxBackup__RetentionDays", "30");
    stack.set("AdxBackup__Backfill", "on");
    stack.set("AdxBackup__BackfillPollSeconds", "1");
    stack.set("AdxBackup__RestoreChunkBlobs", "20");
    // kusto-sim's clock is its own; lag is not what this test is about.
    stack.set("AdxBackup__LagAlertSeconds", "315360000");
    stack
        .kusto(".create table Orders (Timestamp:datetime, Id:long)")
        .await;
    let app = stack.app();
    protect::run_once(&app).await.unwrap();
    exports(&stack).await;
    stack
        .kusto(&format!(
            ".ingest inline into table Orders <|\n{}",
            rows().join("\n")
        ))
        .await;
    exports(&stack).await;
    protect::run_full_pass(&app).await.unwrap();
    // The backfill protect asks for (nothing before the export's start) runs its course.
    drive(&app, false).await;
    let v = verify::verify_table(&app, &orders(), false).await.unwrap();
    assert_eq!(v.outcome, Outcome::Ok, "{v:#?}");
    (stack, app, target)
}

/// The day folders of the table's data in storage, read straight from a listing.
pub(crate) async fn stored_days(app: &App) -> BTreeSet<String> {
    let root = format!("backup/{SRC}/Orders/");
    let paths: Vec<String> = app
        .blobs
        .list(&root)
        .map_ok(|i| i.path)
        .try_collect()
        .await
        .unwrap();
    paths
        .iter()
        .filter_map(|p| {
            p.strip_prefix(&root)?
                .split_once('/')
                .map(|(d, _)| d.to_owned())
        })
        .collect()
}

/// Every blob of the backup container, for "nothing changed".
async fn everything(app: &App) -> Vec<String> {
    app.blobs
        .list("")
        .map_ok(|i| format!("{} {}", i.path, i.etag))
        .try_collect()
        .await
        .unwrap()
}

pub(crate) async fn restorable_days(app: &App) -> BTreeSet<String> {
    let t = orders();
    let totals = catalog_totals::refresh(&app.blobs, &app.layout, &t.database, &t.table)
        .await
        .unwrap();
    totals.days.keys().map(|d| d.folder()).collect()
}

/// What every scenario must end in: days 31-60 in storage, in the catalog's totals, and in
/// a restore, row for row as the source holds them; verify still agrees.
async fn assert_pruned_end_state(stack: &Stack, app: &App, target: &Server, job: &str) {
    let kept = folders(FIRST_KEPT, date!(2026 - 03 - 02));
    assert_eq!(kept.len(), 30);
    assert_eq!(stored_days(app).await, kept);
    assert_eq!(restorable_days(app).await, kept);
    let v = verify::verify_table(app, &orders(), false).await.unwrap();
    assert_eq!(v.outcome, Outcome::Ok, "{v:#?}");
    // status shows the restorable days and rows only.
    let s = status::collect(app, &status::Filter::default())
        .await
        .unwrap();
    let c = s.databases[0].tables[0].catalog.clone().unwrap();
    assert_eq!(
        (
            c.oldest_day.as_deref(),
            c.newest_day.as_deref(),
            c.days,
            c.rows
        ),
        (Some("20260131"), Some("20260301"), 30, 60)
    );
    let table = format!("Orders_{}", job.replace('-', "_"));
    let req = request(job, target, json!({"rename": {"Orders": table}}));
    let done = run_restore(stack, app, target, &req, job, Delivery::Once).await;
    assert!(
        done.status.is_final() && done.failed.is_empty(),
        "{done:#?}"
    );
    let expected = query(
        &stack.sim,
        SRC,
        "Orders | where Timestamp >= datetime(2026-01-31) | project Timestamp, Id",
    )
    .await;
    // Days 31..60 hold 30 + 10 * (0 + 1 + 2) rows.
    assert_eq!(expected.len(), 60);
    assert_eq!(
        query(target, DR, &format!("{table} | project Timestamp, Id")).await,
        expected
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_lists_the_30_oldest_days_and_the_prune_removes_exactly_them() {
    let (stack, app, target) = backed_up().await;
    assert_eq!(
        stored_days(&app).await,
        folders(FIRST, date!(2026 - 03 - 02))
    );
    let before = everything(&app).await;

    let dry = prune::prune_table(&app, &orders(), NOW, true)
        .await
        .unwrap();
    assert_eq!(everything(&app).await, before, "a dry run changed storage");
    let listed: Vec<String> = dry.days.iter().map(|d| d.day.folder()).collect();
    assert_eq!(
        listed,
        folders(FIRST, FIRST_KEPT).into_iter().collect::<Vec<_>>()
    );
    // Its row counts are kusto-sim's, day by day.
    for d in &dry.days {
        let n = query(
            &stack.sim,
            SRC,
            &format!(
                "Orders | where Timestamp >= datetime({0}) and Timestamp < datetime({0}) + 1d | project Id",
                d.day.date()
            ),
        )
        .await
        .len() as u64;
        assert_eq!(d.rows, n, "{}", d.day);
        assert!(d.files > 0 && d.bytes > 0, "{d:?}");
    }
    let text = dry.to_string();
    assert!(text.contains("would prune 30 day(s)"), "{text}");

    // A restore still planning from this backup holds the table: nothing is recorded or
    // deleted, and the report says why.
    let mut reading = RestoreJob::new(JobId::new("r-reading").unwrap(), None);
    reading.status = JobStatus::Planning;
    reading.source_database = Some(orders().database);
    let job_doc = app.layout.restore_job(&reading.job);
    app.blobs
        .create_new(&job_doc, serde_json::to_vec(&reading).unwrap().into())
        .await
        .unwrap();
    let before = everything(&app).await;
    let held = prune::prune_table(&app, &orders(), NOW, false)
        .await
        .unwrap();
    assert!(
        held.skipped.as_deref().unwrap_or("").contains("r-reading") && held.days.is_empty(),
        "{held:#?}"
    );
    assert_eq!(
        everything(&app).await,
        before,
        "a held prune changed storage"
    );
    app.blobs.delete(&job_doc).await.unwrap();

    let task = Task::PruneTableV1 {
        table: orders(),
        now: NOW,
    };
    app.tasks.send(&task.to_json(), None).await.unwrap();
    assert_eq!(drive(&app, false).await, 1);
    assert_pruned_end_state(&stack, &app, &target, "pr-once").await;

    // A second prune finds nothing more to do.
    let again = prune::prune_table(&app, &orders(), NOW, false)
        .await
        .unwrap();
    assert!(
        again.days.is_empty() && again.finished.is_empty(),
        "{again:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_records_and_every_message_twice_end_in_the_same_state() {
    let (stack, app, target) = backed_up().await;
    // The records only: the worker died before any delete.
    let (recorded, _) = prune::record(&app, &orders(), NOW, false).await.unwrap();
    assert_eq!(recorded.days.len(), 30);
    // Nothing cataloged as live lacks its blob: the days are out of the restorable set,
    // their files still there.
    assert_eq!(
        stored_days(&app).await,
        folders(FIRST, date!(2026 - 03 - 02))
    );
    assert_eq!(
        restorable_days(&app).await,
        folders(FIRST_KEPT, date!(2026 - 03 - 02))
    );

    // The timer's message, delivered twice, finishes the deletes.
    let task = Task::PruneTableV1 {
        table: orders(),
        now: NOW,
    };
    app.tasks.send(&task.to_json(), None).await.unwrap();
    assert_eq!(drive(&app, true).await, 1);
    let records: Vec<String> = app
        .blobs
        .list(&app.layout.prune_dir(&orders().database, &orders().table))
        .map_ok(|i| i.path)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(records.len(), 60, "one record and one done marker per day");
    assert_pruned_end_state(&stack, &app, &target, "pr-twice").await;
}

/// The protect timer's full pass queues one prune task per table, with its own clock (long
/// after the 60 days, so all of them are past the policy); each pass removes at most
/// `AdxBackup__PruneMaxDaysPerPass` days, the oldest first, and the next pass the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timer_queues_a_bounded_prune_and_the_next_pass_goes_on() {
    let (mut stack, _app, _target) = backed_up().await;
    stack.set("AdxBackup__PruneMaxDaysPerPass", "20");
    // Prunes are queued on full passes: every pass is one here.
    stack.set("AdxBackup__FullPassIntervalSeconds", "0");
    let app = stack.app();
    let end = date!(2026 - 03 - 02);
    for (pass, first_left) in [(1, date!(2026 - 01 - 21)), (2, date!(2026 - 02 - 10))] {
        let plan = worker::fan_out_protect(&app).await.unwrap();
        assert_eq!(plan.prunes_queued, 1, "pass {pass}: {plan:?}");
        drive(&app, false).await;
        assert_eq!(
            stored_days(&app).await,
            folders(first_left, end),
            "pass {pass}"
        );
        assert_eq!(
            restorable_days(&app).await,
            folders(first_left, end),
            "pass {pass}"
        );
    }
    // A pass that is not a full one queues no prune.
    stack.set("AdxBackup__FullPassIntervalSeconds", "86400");
    let plan = worker::fan_out_protect(&stack.app()).await.unwrap();
    assert!(!plan.full_pass && plan.prunes_queued == 0, "{plan:?}");
}

/// A restore job document that is not JSON stops the prune with an error that names it; the
/// failure is recorded in the table's state (status shows it) and nothing is pruned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prune_that_cannot_read_a_job_fails_with_the_path_and_changes_nothing() {
    let (_stack, app, _target) = backed_up().await;
    let bad = app.layout.restore_job(&JobId::new("r-broken").unwrap());
    app.blobs
        .create_new(&bad, b"not json".to_vec().into())
        .await
        .unwrap();
    let before = stored_days(&app).await;
    let task = Task::PruneTableV1 {
        table: orders(),
        now: NOW,
    };
    let verdict = worker::deliver_text(&app, &task.to_json(), Some(1)).await;
    assert!(matches!(verdict, worker::Verdict::Recorded(_)), "{verdict}");
    assert_eq!(stored_days(&app).await, before);
    // (status cannot read the broken document either: it goes before status is asked.)
    app.blobs.delete(&bad).await.unwrap();
    let s = status::collect(&app, &status::Filter::default())
        .await
        .unwrap();
    let error = s.databases[0].tables[0]
        .last_error
        .clone()
        .unwrap_or_default();
    assert!(
        error.contains("prune") && error.contains("r-broken"),
        "{error}"
    );
}

/// Files and bytes stored in the day folders `from..to_excl`, from a listing of the data
/// folder (not through the catalog).
async fn stored_files(app: &App, from: Date, to_excl: Date) -> (u64, u64) {
    let root = format!("backup/{SRC}/Orders/");
    let days = folders(from, to_excl);
    let items: Vec<_> = app.blobs.list(&root).try_collect().await.unwrap();
    items
        .iter()
        .filter(|i| {
            i.path
                .strip_prefix(&root)
                .and_then(|rest| rest.split_once('/'))
                .is_some_and(|(day, _)| days.contains(day))
        })
        .fold((0, 0), |(n, b), i| (n + 1, b + i.size))
}

/// The table's line of the retention block of the rendered status.
fn retention_line(text: &str) -> &str {
    let block = text
        .split_once("\nTABLE         RETENTION")
        .expect("a retention block")
        .1;
    block
        .lines()
        .find(|l| l.starts_with("Sales.Orders"))
        .expect("a line for Orders")
}

async fn orders_status(app: &App) -> (status::StatusV1, status::TableStatus) {
    let s = status::collect_at(app, &status::Filter::default(), NOW)
        .await
        .unwrap();
    let t = s.databases[0].tables[0].clone();
    assert_eq!(t.table.as_str(), "Orders");
    (s, t)
}

/// With 30 days kept of 60, status says before the prune that the next one removes the 30
/// oldest days, with the files and bytes stored in them and kusto-sim's rows; after it,
/// nothing. Then a prune record for a day the policy keeps (as a foreign or buggy prune would
/// write) takes it out of the backup, and status needs attention: what happened, what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_what_the_next_prune_removes_and_alerts_when_a_kept_day_is_pruned() {
    let (stack, app, _target) = backed_up().await;
    let (s, t) = orders_status(&app).await;
    let r = &t.retention;
    assert_eq!(
        (r.policy.as_str(), r.keep_days, r.first_kept_day.as_deref()),
        ("keep", Some(30), Some("20260131"))
    );
    let (files, bytes) = stored_files(&app, FIRST, FIRST_KEPT).await;
    let old_rows = query(
        &stack.sim,
        SRC,
        "Orders | where Timestamp < datetime(2026-01-31) | project Id",
    )
    .await
    .len() as u64;
    let next = r.next_prune.clone().unwrap();
    assert_eq!(
        (next.days, next.files, next.rows, next.bytes, next.more_days),
        (30, files, old_rows, bytes, 0)
    );
    // Days 1-30 hold 10 * (1 + 2 + 3) rows.
    assert_eq!(old_rows, 60);
    assert_eq!(
        (next.oldest_day.as_deref(), next.newest_day.as_deref()),
        (Some("20260101"), Some("20260130"))
    );
    let (_, all_bytes) = stored_files(&app, FIRST, date!(2026 - 03 - 02)).await;
    assert_eq!(r.bytes_kept, all_bytes);
    assert!(r.last_prune.is_none() && !s.needs_attention, "{s:#?}");
    let text = status::render(&s, status::Colour::Off);
    let line = retention_line(&text);
    assert!(
        line.contains(&format!(
            "30 days    30 day(s) 20260101..20260130, {files} file(s), {bytes} B"
        )) && line.ends_with("never"),
        "{text}"
    );

    let task = Task::PruneTableV1 {
        table: orders(),
        now: NOW,
    };
    app.tasks.send(&task.to_json(), None).await.unwrap();
    assert_eq!(drive(&app, false).await, 1);
    let (s, t) = orders_status(&app).await;
    let r = &t.retention;
    let next = r.next_prune.clone().unwrap();
    assert_eq!((next.days, next.files, next.bytes), (0, 0, 0), "{r:#?}");
    let (_, kept_bytes) = stored_files(&app, FIRST_KEPT, date!(2026 - 03 - 02)).await;
    assert_eq!(r.bytes_kept, kept_bytes);
    assert_eq!(
        (r.pruned_days, r.newest_pruned_day.as_deref()),
        (30, Some("20260130"))
    );
    let last = r.last_prune.clone().unwrap();
    assert_eq!(
        (last.recorded_days, last.finished_days, last.unfinished_days),
        (30, 30, 0)
    );
    assert!(last.deletes_deferred.is_none());
    assert!(!s.needs_attention, "{:#?}", s.attention);
    let text = status::render(&s, status::Colour::Off);
    let line = retention_line(&text);
    assert!(
        line.contains("30 days    nothing") && line.ends_with("30 day(s) recorded, 30 finished"),
        "{text}"
    );

    // A record for the oldest day the policy keeps, not written by this prune.
    let kept = Day::new(FIRST_KEPT);
    let foreign = Prune {
        day: kept,
        at: NOW,
        now: NOW,
        keep_days: 30,
        artifacts: 1,
        rows: 1,
        bytes: 1,
    };
    let t = orders();
    assert!(
        prune_records::write(&app.blobs, &app.layout, &t.database, &t.table, &foreign)
            .await
            .unwrap()
    );
    catalog_totals::refresh(&app.blobs, &app.layout, &t.database, &t.table)
        .await
        .unwrap();
    let (s, _) = orders_status(&app).await;
    assert!(s.needs_attention);
    assert_eq!(s.attention.len(), 1, "{:#?}", s.attention);
    let line = &s.attention[0];
    assert!(
        line.starts_with("Sales.Orders: RETENTION BROKEN: the policy keeps 30 day(s), from 20260131, but day 20260131 was pruned (the oldest restorable day is 20260201)")
            && line.contains("no policy explains it"),
        "{line}"
    );
    let text = status::render(&s, status::Colour::Off);
    assert!(
        text.contains("NEEDS ATTENTION (1):") && text.contains("RETENTION BROKEN"),
        "{text}"
    );
}
