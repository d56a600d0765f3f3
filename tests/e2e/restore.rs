//! Restore end to end: a source kusto-sim protected by adx-backup, a second kusto-sim as the
//! target cluster (its queued ingestion reading Azurite queues), and the handler run by the
//! Functions host emulator. Expected rows come from the source cluster itself, read back
//! through its own query engine, never from the restore's own report.

use std::time::Duration;

use adx_backup::app::App;
use adx_backup::ids::JobId;
use adx_backup::protect;
use adx_backup::restore::{self, state::JobStatus};
use kusto_sim::Server;
use serde_json::json;

use crate::harness::host::{FunctionsHost, Shape};
use crate::harness::restore::{Delivery, mgmt, query, run_restore};
use crate::harness::stack::Stack;

pub(crate) const SRC: &str = "Sales";
pub(crate) const DR: &str = "DR";

const WIDE: &str = ".create table Wide (Timestamp:datetime, B:bool, I:int, L:long, R:real, \
    D:decimal, S:string, Ts:timespan, G:guid, Dyn:dynamic)";
const WIDE_CSV: &str = r#"2026-03-01T10:20:30.123456Z,true,-2147483648,9223372036854775807,2.5,1234567890.123456789,"He said ""hi""",1.02:03:04.5678901,6f1c0d6e-3a51-4b7a-9a55-0c3c2b0d1e11,"{""a"":[1,2.5,null]}"
2026-03-02T23:59:59.999999Z,false,2147483647,-9223372036854775808,-0.1,-0.000000000000000001,Grüße 世界 🚀,-00:00:00.0000001,00000000-0000-0000-0000-000000000000,"[1,""two""]"
2026-03-03T00:00:00Z,,,,,,,,,"#;
const NULLS: &str = ".create table Nulls (Timestamp:datetime, V:long)";
const PLAIN: &str = ".create table Plain (Id:long, Name:string)";

/// A source stack and a second cluster its app may restore to, with restore's settings for
/// small chunks and quick polls.
pub(crate) async fn restore_stacks() -> (Stack, Server) {
    let mut stack = Stack::start(SRC).await;
    let target = Stack::target_cluster(DR).await;
    stack.set("AdxBackup__RestoreTargets", &target.url());
    stack.set("AdxBackup__RestoreChunkBlobs", "2");
    stack.set("AdxBackup__RestoreChunksInFlight", "2");
    stack.set("AdxBackup__RestorePollSeconds", "1");
    stack.set(
        "AdxBackup__RestoreQueue",
        &format!(
            "e2e-restore-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..20]
        ),
    );
    (stack, target)
}

/// A source database with three tables backed up (several files each), the app over it, and
/// a second cluster the app may restore to.
pub(crate) async fn protected_source() -> (Stack, App, Server) {
    let (stack, target) = restore_stacks().await;
    for create in [WIDE, NULLS, PLAIN] {
        stack.kusto(create).await;
    }
    let app = stack.app();
    protect::run_once(&app).await.unwrap();
    exports(&stack).await;
    stack
        .kusto(&format!(".ingest inline into table Wide <|\n{WIDE_CSV}"))
        .await;
    for round in 0..3 {
        let nulls: Vec<String> = (0..4)
            .map(|i| match i {
                0 => format!(",{round}{i}"),
                _ => format!("2026-03-0{i}T0{round}:00:00Z,{round}{i}"),
            })
            .collect();
        stack
            .kusto(&format!(
                ".ingest inline into table Nulls <|\n{}",
                nulls.join("\n")
            ))
            .await;
        let plain: Vec<String> = (0..5)
            .map(|i| format!("{round}{i},\"name {round}{i}\""))
            .collect();
        stack
            .kusto(&format!(
                ".ingest inline into table Plain <|\n{}",
                plain.join("\n")
            ))
            .await;
        exports(&stack).await;
    }
    protect::run_once(&app).await.unwrap();
    (stack, app, target)
}

pub(crate) async fn exports(stack: &Stack) {
    for report in stack.run_exports().await {
        assert!(report.error.is_none(), "{report:?}");
    }
}

pub(crate) fn request(job: &str, target: &Server, extra: serde_json::Value) -> String {
    let mut r = json!({
        "version": 1,
        "jobId": job,
        "target": {"clusterUri": target.url(), "database": DR},
    });
    if let (Some(r), Some(extra)) = (r.as_object_mut(), extra.as_object()) {
        r.extend(extra.clone());
    }
    r.to_string()
}

/// Rows and per-day counts of every table equal in source and target, and nothing else in
/// the target: no temporary table or external table is left behind.
async fn assert_identical(stack: &Stack, target: &Server) {
    for (command, expected) in [
        (".show tables", vec!["Nulls", "Plain", "Wide"]),
        (".show external tables", vec![]),
    ] {
        let result = mgmt(target, DR, command).await;
        let name = result.column_index("TableName").unwrap();
        let mut names: Vec<String> = result
            .rows
            .iter()
            .map(|r| match &r[name] {
                kusto_sim::value::Value::String(s) => s.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        names.sort();
        assert_eq!(names, expected, "{command} in the target");
    }
    for (table, day) in [
        ("Wide", Some("Timestamp")),
        ("Nulls", Some("Timestamp")),
        ("Plain", None),
    ] {
        let all = table.to_owned();
        let source_rows = query(&stack.sim, SRC, &all).await;
        assert!(!source_rows.is_empty(), "{table} has rows in the source");
        assert_eq!(
            query(target, DR, &all).await,
            source_rows,
            "{table}: the target holds exactly the source's rows"
        );
        if let Some(column) = day {
            let per_day = format!("{table} | summarize count() by bin({column}, 1d)");
            assert_eq!(
                query(target, DR, &per_day).await,
                query(&stack.sim, SRC, &per_day).await,
                "{table}: rows per day"
            );
        }
    }
}

#[tokio::test]
async fn a_backup_comes_back_exactly_once_with_every_message_delivered_twice() {
    let (stack, app, target) = protected_source().await;
    let job = "r-twice";
    let state = run_restore(
        &stack,
        &app,
        &target,
        &request(job, &target, json!({})),
        job,
        Delivery::Twice,
    )
    .await;
    assert_eq!(state.status, JobStatus::Succeeded, "{state:#?}");
    assert!(
        state.totals.chunks > 3,
        "several chunks: {:?}",
        state.totals
    );
    assert_identical(&stack, &target).await;
    let report = state.report.unwrap();
    assert!(report.missing.is_empty(), "{report:?}");

    // Extents carry the job's tag and their day as creation time (merges keep the range).
    let extents = mgmt(&target, DR, ".show table Wide extents").await;
    let tags = extents.column_index("Tags").unwrap();
    let mut days = std::collections::BTreeSet::new();
    for column in ["MinCreatedOn", "MaxCreatedOn"] {
        let i = extents.column_index(column).unwrap();
        for r in &extents.rows {
            assert!(
                format!("{:?}", r[tags]).contains("drop-by:r-twice"),
                "{r:?}"
            );
            let kusto_sim::value::Value::DateTime(ticks) = r[i] else {
                panic!("{column}: {r:?}");
            };
            const TICKS_PER_DAY: i64 = 864_000_000_000;
            assert_eq!(ticks % TICKS_PER_DAY, 0, "{column} is a midnight: {r:?}");
            days.insert(ticks / TICKS_PER_DAY);
        }
    }
    // 2026-03-01..03 as days since 1970-01-01.
    assert_eq!(
        days,
        std::collections::BTreeSet::from([20513, 20514, 20515])
    );

    // Restored rows are visible to database cursors, so protect can back them up again.
    let after_cursor = query(&target, DR, "Plain | where cursor_after('') | count").await;
    assert_eq!(after_cursor, query(&stack.sim, SRC, "Plain | count").await);

    // Undo removes exactly the job's rows.
    let undone = restore::undo(&app, &JobId::new(job).unwrap())
        .await
        .unwrap();
    assert_eq!(undone.tables.len(), 3);
    for table in ["Wide", "Nulls", "Plain"] {
        assert_eq!(
            query(&target, DR, &format!("{table} | count")).await,
            vec!["[Long(0)]".to_owned()],
            "{table} is empty after undo"
        );
    }
}

#[tokio::test]
async fn append_adds_beside_existing_rows_and_undo_leaves_them() {
    let (stack, app, target) = protected_source().await;
    mgmt(&target, DR, PLAIN).await;
    mgmt(
        &target,
        DR,
        ".ingest inline into table Plain <|\n999,\"kept\"",
    )
    .await;
    let job = "r-append";
    let state = run_restore(
        &stack,
        &app,
        &target,
        &request(job, &target, json!({"tables": ["Plain"], "mode": "append"})),
        job,
        Delivery::Once,
    )
    .await;
    assert_eq!(state.status, JobStatus::Succeeded, "{state:#?}");
    let source = query(&stack.sim, SRC, "Plain | count").await;
    assert_eq!(source, vec!["[Long(15)]".to_owned()]);
    assert_eq!(
        query(&target, DR, "Plain | count").await,
        vec!["[Long(16)]".to_owned()]
    );
    restore::undo(&app, &JobId::new(job).unwrap())
        .await
        .unwrap();
    assert_eq!(
        query(&target, DR, "Plain").await,
        vec![r#"[Long(999), String("kept")]"#.to_owned()],
        "undo removed exactly the job's rows"
    );
}

#[tokio::test]
async fn bad_requests_are_rejected_in_job_state_and_change_nothing() {
    let (stack, app, target) = protected_source().await;
    mgmt(&target, DR, PLAIN).await;
    mgmt(
        &target,
        DR,
        ".ingest inline into table Plain <|\n1,\"there\"",
    )
    .await;
    let tables_before = mgmt(&target, DR, ".show tables").await.rows;
    // A cluster the request names but the app's settings do not list: the app's token must
    // never be sent there.
    let rogue = Stack::target_cluster(DR).await;
    for (job, text, want) in [
        (
            "r-refused",
            request("r-refused", &target, json!({"tables": ["Plain"]})),
            "already hold rows",
        ),
        (
            "r-unknown",
            request("r-unknown", &target, json!({"tables": ["Nope*"]})),
            "no table of the backup",
        ),
        (
            "r-asof",
            request("r-asof", &target, json!({"asOf": "2001-01-01T00:00:00Z"})),
            "no schema snapshot",
        ),
        (
            "r-field",
            request("r-field", &target, json!({"colour": "red"})),
            "unknown field `colour`",
        ),
        (
            "r-version",
            json!({"version": 7, "jobId": "r-version"}).to_string(),
            "version 7 is unknown",
        ),
        (
            "r-elsewhere",
            request("r-elsewhere", &rogue, json!({})),
            "not one this app restores to",
        ),
    ] {
        let state = run_restore(&stack, &app, &target, &text, job, Delivery::Once).await;
        assert_eq!(state.status, JobStatus::Rejected, "{job}: {state:#?}");
        let error = state.error.unwrap().message;
        assert!(error.contains(want), "{job}: {error}");
    }
    // Messages without a usable job id: the job is named after the queue message.
    let host = FunctionsHost::start(&stack.settings).await;
    for text in [
        "restore everything please",
        r#"{"version":1,"target":{"clusterUri":"http://127.0.0.1:1","database":"x'); .drop table Plain"}}"#,
    ] {
        let verdict = host
            .invoke_queue("restore", "request", text, 1, Shape::Host)
            .await;
        assert!(
            verdict.succeeded(),
            "acknowledged, not poisoned: {verdict:?}"
        );
        let log = verdict.logs().join("\n");
        assert!(log.contains("rejected"), "{log}");
    }
    assert_eq!(
        rogue.state().commands(),
        vec![],
        "nothing was sent to a cluster outside AdxBackup__RestoreTargets"
    );
    assert_eq!(mgmt(&target, DR, ".show tables").await.rows, tables_before);
    assert_eq!(
        query(&target, DR, "Plain").await,
        vec![r#"[Long(1), String("there")]"#.to_owned()]
    );
}

#[tokio::test]
async fn a_file_lost_from_the_backup_is_reported_with_kustos_reason() {
    let (stack, app, target) = protected_source().await;
    let lost = crate::harness::parquet::catalog(&app, SRC, "Plain")
        .await
        .into_iter()
        .next()
        .unwrap();
    app.blobs.delete(&lost.path).await.unwrap();
    let job = "r-lost";
    let state = run_restore(
        &stack,
        &app,
        &target,
        &request(job, &target, json!({"tables": ["Plain"]})),
        job,
        Delivery::Once,
    )
    .await;
    assert_eq!(state.status, JobStatus::PartiallySucceeded, "{state:#?}");
    let report = state.report.unwrap();
    assert_eq!(report.failed.len(), 1, "{report:#?}");
    assert_eq!(report.failed[0].path, lost.path);
    assert!(
        report.failed[0].reason.contains("Download_SourceNotFound"),
        "Kusto's reason: {}",
        report.failed[0].reason
    );
    assert_eq!(report.tables[0].expected_rows, Some(15));
    assert_eq!(report.tables[0].found_rows, 15 - lost.rows);
    assert!(
        report.missing.iter().any(|m| m.contains("Plain")),
        "{:?}",
        report.missing
    );
    assert_eq!(
        query(&target, DR, "Plain | count").await,
        vec![format!("[Long({})]", 15 - lost.rows)]
    );
}

#[tokio::test]
async fn point_in_time_window_rename_and_dry_run() {
    let (stack, app, target) = protected_source().await;
    // Rows ingested after `as_of` are backed up too, but a restore as of then leaves them out.
    let as_of = time::OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    stack
        .kusto(".ingest inline into table Plain <|\n900,\"late\"\n901,\"late\"")
        .await;
    exports(&stack).await;
    protect::run_once(&app).await.unwrap();
    let as_of_text = as_of
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();

    let state = run_restore(
        &stack,
        &app,
        &target,
        &request(
            "r-asof-ok",
            &target,
            json!({"tables": ["Plain"], "asOf": as_of_text, "rename": {"Plain": "PlainThen"}}),
        ),
        "r-asof-ok",
        Delivery::Once,
    )
    .await;
    assert_eq!(state.status, JobStatus::Succeeded, "{state:#?}");
    assert_eq!(
        query(&target, DR, "PlainThen").await,
        query(&stack.sim, SRC, "Plain | where Name != 'late'").await,
        "exactly the rows exported by asOf, under the new name"
    );

    let state = run_restore(
        &stack,
        &app,
        &target,
        &request(
            "r-window",
            &target,
            json!({"tables": ["Nulls"], "window": {"from": "2026-03-02", "to": "2026-03-03"},
                   "rename": {"Nulls": "NullsWindow"}}),
        ),
        "r-window",
        Delivery::Once,
    )
    .await;
    assert_eq!(state.status, JobStatus::Succeeded, "{state:#?}");
    let in_window = query(
        &stack.sim,
        SRC,
        "Nulls | where Timestamp >= datetime(2026-03-02) and Timestamp < datetime(2026-03-04)",
    )
    .await;
    assert_eq!(in_window.len(), 6);
    assert_eq!(query(&target, DR, "NullsWindow").await, in_window);

    let tables_before = mgmt(&target, DR, ".show tables").await.rows;
    let state = run_restore(
        &stack,
        &app,
        &target,
        &request(
            "r-dry",
            &target,
            json!({"tables": ["Wide", "Plain"], "dryRun": true}),
        ),
        "r-dry",
        Delivery::Once,
    )
    .await;
    assert_eq!(state.status, JobStatus::Planned, "{state:#?}");
    let totals = state.report.unwrap().totals;
    assert_eq!(
        totals.rows,
        3 + 17,
        "Wide's 3 rows and Plain's 17: {totals:?}"
    );
    let cataloged = crate::harness::parquet::catalog(&app, SRC, "Wide")
        .await
        .len()
        + crate::harness::parquet::catalog(&app, SRC, "Plain")
            .await
            .len();
    assert_eq!(totals.artifacts, cataloged as u64);
    assert!(totals.chunks >= totals.artifacts / 2, "{totals:?}");
    assert_eq!(
        mgmt(&target, DR, ".show tables").await.rows,
        tables_before,
        "a dry run creates nothing"
    );
}

#[tokio::test]
async fn a_catalog_past_the_portals_10000_files_and_a_backfill_segment_is_planned_whole_in_bounded_steps()
 {
    use adx_backup::ids::{DatabaseName, Day, ExportName, TableName};
    use adx_backup::storage::catalog::{Artifact, ArtifactSource, Catalog};

    let (stack, app, target) = protected_source().await;
    let (db, table) = (
        DatabaseName::new(SRC).unwrap(),
        TableName::new("Plain").unwrap(),
    );
    let catalog = Catalog::new(&app.blobs, &app.layout);
    let mut seq = 0;
    let mut real = 0;
    while let Some(segment) = catalog.read_segment(&db, &table, seq).await.unwrap() {
        real += segment.len();
        seq += 1;
    }
    // 12,000 more cataloged files (planning reads the catalog only; a dry run opens none).
    const EXTRA: usize = 12_000;
    let export = ExportName::new("adxbk_Plain").unwrap();
    for s in 0..(EXTRA / 500) {
        let segment: Vec<Artifact> = (0..500)
            .map(|i| Artifact {
                path: format!("backup/{SRC}/Plain/00010101/extra-{s}-{i}.parquet"),
                day: Day::UNDATED,
                rows: 2,
                bytes: Some(1000),
                source: ArtifactSource::ContinuousExport {
                    export: export.clone(),
                },
                produced_at: time::OffsetDateTime::now_utc(),
            })
            .collect();
        catalog.append(&db, &table, seq, &segment).await.unwrap();
        seq += 1;
    }
    // And a backfill batch's segment, which lists before every `seg-` segment.
    let (job, batch) = (
        adx_backup::ids::JobId::new("bf-1").unwrap(),
        adx_backup::ids::BatchId::new("b000001").unwrap(),
    );
    let history: Vec<Artifact> = (0..7)
        .map(|i| Artifact {
            path: format!("backup/{SRC}/Plain/00010101/bf-1_b000001_a001_{i}.parquet"),
            day: Day::UNDATED,
            rows: 3,
            bytes: Some(1000),
            source: ArtifactSource::Backfill {
                job: job.clone(),
                batch: batch.clone(),
            },
            produced_at: time::OffsetDateTime::now_utc(),
        })
        .collect();
    catalog
        .append_batch(&db, &table, &job, &batch, &history)
        .await
        .unwrap();
    let mut stack = stack;
    stack.set("AdxBackup__RestoreChunkBlobs", "1");
    let app = stack.app();
    let state = run_restore(
        &stack,
        &app,
        &target,
        &request(
            "r-many",
            &target,
            json!({"tables": ["Plain"], "dryRun": true}),
        ),
        "r-many",
        Delivery::Once,
    )
    .await;
    assert_eq!(state.status, JobStatus::Planned, "{state:#?}");
    let totals = state.report.unwrap().totals;
    assert_eq!(totals.artifacts, (real + EXTRA + 7) as u64, "{totals:?}");
    assert_eq!(totals.rows, 15 + 2 * EXTRA as u64 + 7 * 3);
    // A file a chunk; a step plans at most CATALOG_STEP_PAGES pages of PAGE_CHUNKS chunks,
    // so more than 12 steps ran.
    use adx_backup::restore::plan::{CATALOG_STEP_PAGES, PAGE_CHUNKS};
    let per_step = PAGE_CHUNKS * CATALOG_STEP_PAGES;
    assert!(totals.chunks >= EXTRA as u64, "{totals:?}");
    assert!(
        state.tick > (EXTRA / per_step) as u64,
        "bounded steps: {}",
        state.tick
    );
}

/// A target whose retention would refuse the backup's oldest days is refused before the
/// restore changes anything, with the command that fixes it; run, the fix lets every row in.
#[tokio::test]
async fn a_target_retention_shorter_than_the_backup_is_refused_first_with_its_fix() {
    let (stack, app, target) = protected_source().await;
    mgmt(&target, DR, NULLS).await;
    mgmt(
        &target,
        DR,
        ".alter-merge table Nulls policy retention softdelete = 10d",
    )
    .await;
    let job = "r-old";
    let state = run_restore(
        &stack,
        &app,
        &target,
        &request(job, &target, json!({"tables": ["Nulls"]})),
        job,
        Delivery::Once,
    )
    .await;
    assert_eq!(state.status, JobStatus::Rejected, "{state:#?}");
    let reason = state.error.unwrap().message;
    assert!(
        reason.contains("the restore brings days from 2026-03-01 on, but the target table's retention policy keeps 10 days"),
        "{reason}"
    );
    assert!(
        query(&target, DR, "Nulls").await.is_empty(),
        "nothing was ingested"
    );
    // The fix, as the finding words it.
    let fix = reason
        .split("(fix: run `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .unwrap_or_else(|| panic!("a command to run in: {reason}"))
        .to_owned();
    assert!(
        fix.starts_with(".alter table ['Nulls'] policy retention"),
        "{fix}"
    );
    mgmt(&target, DR, &fix).await;
    let job = "r-old-fixed";
    let state = run_restore(
        &stack,
        &app,
        &target,
        &request(job, &target, json!({"tables": ["Nulls"]})),
        job,
        Delivery::Once,
    )
    .await;
    assert_eq!(state.status, JobStatus::Succeeded, "{state:#?}");
    assert_eq!(
        query(&target, DR, "Nulls | order by V asc").await,
        query(&stack.sim, SRC, "Nulls | order by V asc").await
    );
}

/// A target on which the app may only read is refused before anything changes, with the
/// role to grant.
#[tokio::test]
async fn a_target_the_app_may_not_change_is_refused_with_the_role_to_grant() {
    let (stack, app, target) = protected_source().await;
    mgmt(
        &target,
        DR,
        ".add database DR viewers ('aadapp=restorer;tenant') 'test'",
    )
    .await;
    target.state().set_caller("aadapp=restorer;tenant");
    let job = "r-viewer";
    let state = run_restore(
        &stack,
        &app,
        &target,
        &request(job, &target, json!({"tables": ["Plain"]})),
        job,
        Delivery::Once,
    )
    .await;
    assert_eq!(state.status, JobStatus::Rejected, "{state:#?}");
    let reason = state.error.unwrap().message;
    assert!(
        reason.contains("the app is Database DR Viewer on the restore target but creating its tables, functions and policies needs Database Admin"),
        "{reason}"
    );
    assert!(reason.contains(".add database ['DR'] admins ("), "{reason}");
    // In-process commands are not role-checked: this looks as an administrator would.
    assert!(
        mgmt(&target, DR, ".show tables").await.rows.is_empty(),
        "nothing was created in the target"
    );
}

/// Deletes every blob under `prefix` (container-relative).
async fn delete_all(app: &App, prefix: &str) -> usize {
    use futures::TryStreamExt;
    let paths: Vec<String> = app
        .blobs
        .list(prefix)
        .map_ok(|item| item.path)
        .try_collect()
        .await
        .unwrap();
    for path in &paths {
        app.blobs.delete(path).await.unwrap();
    }
    paths.len()
}

#[tokio::test]
async fn without_its_catalog_a_backup_comes_back_from_a_listing_leftovers_included() {
    let (stack, app, target) = protected_source().await;
    // A file a failed export left behind: in Plain's folder, never cataloged. (A copy of a
    // real one, so its rows are known: they come back twice.)
    let first = crate::harness::parquet::catalog(&app, SRC, "Plain")
        .await
        .into_iter()
        .next()
        .unwrap();
    let (body, _) = app.blobs.read(&first.path).await.unwrap();
    let folder = first.path.rsplit_once('/').unwrap().0;
    app.blobs
        .write(
            &format!("{folder}/leftover-of-a-failed-export.parquet"),
            body,
        )
        .await
        .unwrap();
    let mut listed = 0;
    for table in ["Wide", "Nulls", "Plain"] {
        listed += crate::harness::parquet::files_in_folder(&app, SRC, table)
            .await
            .len();
    }
    assert!(
        delete_all(&app, "backup/$catalog/").await > 0,
        "the catalog is lost"
    );

    let job = "r-listing";
    let state = run_restore(
        &stack,
        &app,
        &target,
        &request(job, &target, json!({"source": {"fromListing": true}})),
        job,
        Delivery::Twice,
    )
    .await;
    assert_eq!(state.status, JobStatus::Succeeded, "{state:#?}");
    for table in ["Wide", "Nulls"] {
        assert_eq!(
            query(&target, DR, table).await,
            query(&stack.sim, SRC, table).await,
            "{table}: exactly the source's rows"
        );
    }
    // Plain: every source row, and the leftover's rows a second time.
    assert_eq!(
        query(&target, DR, "Plain | distinct Id, Name").await,
        query(&stack.sim, SRC, "Plain | distinct Id, Name").await
    );
    assert_eq!(
        query(&target, DR, "Plain | count").await,
        vec![format!("[Long({})]", 15 + first.rows)]
    );
    let report = state.report.unwrap();
    assert_eq!(report.totals.artifacts, listed as u64, "{report:#?}");
    assert_eq!(report.totals.ingested_artifacts, listed as u64);
    assert!(
        report
            .caveats
            .iter()
            .any(|c| c.contains("files of failed exports may be among them")),
        "{report:#?}"
    );
    assert!(
        report
            .caveats
            .iter()
            .any(|c| c.contains("expected rows were unknown")),
        "{report:#?}"
    );
    for t in &report.tables {
        assert_eq!(t.expected_rows, None, "{t:?}");
    }
    let plain = report.tables.iter().find(|t| t.target.as_str() == "Plain");
    assert_eq!(plain.unwrap().found_rows, 15 + first.rows);
}

#[tokio::test]
async fn without_catalog_or_schema_a_listing_restores_data_only_into_existing_tables() {
    let (stack, app, target) = protected_source().await;
    delete_all(&app, "backup/$catalog/").await;
    assert!(
        delete_all(&app, "backup/$schema/").await > 0,
        "the schema is lost"
    );
    let state = run_restore(
        &stack,
        &app,
        &target,
        &request(
            "r-noschema",
            &target,
            json!({"source": {"fromListing": true}}),
        ),
        "r-noschema",
        Delivery::Once,
    )
    .await;
    assert_eq!(state.status, JobStatus::Rejected, "{state:#?}");
    let error = state.error.unwrap().message;
    assert!(
        error.contains("no schema snapshot") && error.contains("dataOnly"),
        "{error}"
    );
    assert_eq!(mgmt(&target, DR, ".show tables").await.rows.len(), 0);

    mgmt(&target, DR, ".create table PlainToo (Id:long, Name:string)").await;
    let job = "r-dataonly";
    let state = run_restore(
        &stack,
        &app,
        &target,
        &request(
            job,
            &target,
            json!({"source": {"fromListing": true}, "what": "dataOnly",
                   "rename": {"Plain": "PlainToo"}}),
        ),
        job,
        Delivery::Once,
    )
    .await;
    assert_eq!(state.status, JobStatus::Succeeded, "{state:#?}");
    assert_eq!(
        query(&target, DR, "PlainToo").await,
        query(&stack.sim, SRC, "Plain").await
    );
    let report = state.report.unwrap();
    assert_eq!(report.tables.len(), 1, "only the table the target has");
    assert!(
        report
            .caveats
            .iter()
            .any(|c| c.contains("no schema snapshot")),
        "{report:#?}"
    );
}

/// Every message on the task queue, taken off it.
async fn take_all(app: &App) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let batch = app
            .tasks
            .receive(32, Duration::from_secs(30))
            .await
            .unwrap();
        if batch.is_empty() {
            return out;
        }
        for msg in batch {
            out.push(msg.text.clone().unwrap());
            app.tasks.delete(&msg.id, &msg.pop_receipt).await.unwrap();
        }
    }
}

/// A worker saved a driver step and died before sending the next step's message: only a
/// redelivery of its message (the host's, dequeue count above one) sends it again, and the
/// job goes on from there. A first delivery of a taken step sends nothing, so copies end.
#[tokio::test]
async fn a_driver_step_saved_but_never_sent_is_sent_again_by_its_redelivery() {
    let (_stack, app, target) = protected_source().await;
    let job = JobId::new("lost-step").unwrap();
    let text = request(job.as_str(), &target, json!({}));
    let message: serde_json::Value = serde_json::from_str(&text).unwrap();
    restore::accept(&app, &message, None).await.unwrap();
    let first = format!(r#"{{"kind":"RestoreJobV1","job":"{job}","tick":0}}"#);
    assert_eq!(take_all(&app).await, [first.as_str()]);

    restore::drive(&app, &job, 0, false).await.unwrap();
    assert_eq!(restore::load_job(&app, &job).await.unwrap().tick, 1);
    // The crash: step 1's message is lost.
    let second = format!(r#"{{"kind":"RestoreJobV1","job":"{job}","tick":1}}"#);
    assert_eq!(take_all(&app).await, [second.as_str()]);

    let copy = restore::drive(&app, &job, 0, false).await.unwrap();
    assert!(copy.contains("already taken"), "{copy}");
    assert!(take_all(&app).await.is_empty(), "a copy sends nothing");

    let again = restore::drive(&app, &job, 0, true).await.unwrap();
    assert!(again.contains("step 1 sent again"), "{again}");
    assert_eq!(take_all(&app).await, [second.as_str()]);
    restore::drive(&app, &job, 1, false).await.unwrap();
    let state = restore::load_job(&app, &job).await.unwrap();
    assert_eq!(state.tick, 2, "{state:#?}");
    assert!(
        !state.status.is_final() || state.failed.is_empty(),
        "{state:#?}"
    );
}
