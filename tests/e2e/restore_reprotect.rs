//! The step after a disaster: the restored database is protected by adx-backup itself, with
//! a second app (its own container, prefix and task queue) over the restore's target cluster.
//! Its backup (backfill for the restored history, the continuous export for rows ingested
//! after protection) must hold exactly the target's rows: each restored row once, none
//! missing, none twice. Expected rows come from the first backup (the source's, read with the
//! `parquet` crate) plus the rows the test ingests into the target by hand.

use adx_backup::restore::state::JobStatus;
use serde_json::json;

use super::restore::{DR, SRC, exports, protected_source, request};
use crate::harness::data::timer_then_tasks;
use crate::harness::host::FunctionsHost;
use crate::harness::parquet::{Cell, cataloged_rows, sorted};
use crate::harness::restore::{Delivery, mgmt, query, run_restore};
use crate::harness::stack::Stack;

/// The restored tables and the column protect partitions each by.
const TABLES: [(&str, Option<&str>); 3] = [
    ("Wide", Some("Timestamp")),
    // Null timestamps land in the undated folder, which has no day to check rows against.
    ("Nulls", None),
    ("Plain", None),
];

#[tokio::test]
async fn a_restored_database_is_protected_again_with_exactly_its_rows() {
    let (source, source_app, target) = protected_source().await;
    let job = "r-again";
    let state = run_restore(
        &source,
        &source_app,
        &target,
        &request(job, &target, json!({})),
        job,
        Delivery::Once,
    )
    .await;
    assert_eq!(state.status, JobStatus::Succeeded, "{state:#?}");

    // Protect the target: first run creates the exports, the second (after the exports ran
    // once and fixed their start cursors) backfills the restored history.
    let mut again = Stack::over(target, DR);
    again.set("AdxBackup__Prefix", "again");
    again.set("AdxBackup__Backfill", "on");
    again.set("AdxBackup__BackfillPollSeconds", "1");
    let app = again.app();
    let host = FunctionsHost::start(&again.settings).await;
    timer_then_tasks(&host, &app, None).await;
    exports(&again).await;
    timer_then_tasks(&host, &app, Some("2026-11-25T10:00:00+00:00")).await;

    // A row written after protection reaches the backup through the continuous export.
    mgmt(
        &again.sim,
        DR,
        ".ingest inline into table Plain <|\n900,\"after the restore\"",
    )
    .await;
    exports(&again).await;
    timer_then_tasks(&host, &app, Some("2026-11-25T10:05:00+00:00")).await;

    for (table, day) in TABLES {
        let mut expected = cataloged_rows(&source_app, SRC, table, day).await;
        assert!(
            !expected.is_empty(),
            "{table}: the source's backup has rows"
        );
        if table == "Plain" {
            expected.push(vec![
                Cell::Long(900),
                Cell::Text("after the restore".into()),
            ]);
        }
        let backed_up = cataloged_rows(&app, DR, table, day).await;
        assert_eq!(
            sorted(backed_up),
            sorted(expected),
            "{table}: the restored database's backup holds each of its rows exactly once"
        );
        // And the target itself holds no more and no fewer rows than its backup.
        let count = query(&again.sim, DR, &format!("{table} | count")).await;
        let backed_up_rows = cataloged_rows(&app, DR, table, day).await.len();
        assert_eq!(count, vec![format!("[Long({backed_up_rows})]")], "{table}");
    }
}
