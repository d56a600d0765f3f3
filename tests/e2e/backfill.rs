//! backfill end to end on Azurite + kusto-sim, through the Functions host emulator: a table
//! whose history was ingested before protection, over many extents, with kusto-sim's export
//! memory budget below a batch's size. Backfill must finish with every row of the table in
//! the backup exactly once (history from backfill batches, newer rows from the continuous
//! export), at least one split recorded, and no file of a failed attempt left in the table's
//! folders or the catalog; also when every message is delivered twice and when a worker dies
//! between starting an export and recording it.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ops::Range;
use std::time::{Duration, Instant};

use adx_backup::app::App;
use adx_backup::backfill::{self, BackfillJob, BatchState};
use adx_backup::ids::{BatchRef, DatabaseName, TableName, TableRef};
use adx_backup::kusto::command::{self, ExternalTableSpec};
use adx_backup::status::{self, Filter, TemporaryObjects};
use adx_backup::storage::catalog::{Artifact, ArtifactSource, Catalog};
use adx_backup::task::Task;
use futures::TryStreamExt;
use kusto_sim::FaultConfig;
use serde_json::{Value, json};

use crate::harness::data::names;
use crate::harness::host::{FunctionsHost, Shape};
use crate::harness::parquet::{Cell, cataloged_rows};
use crate::harness::stack::Stack;

const DB: &str = "Sales";
const TABLE: &str = "History";

/// How the test delivers queue messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// Once each, like the host.
    Once,
    /// Every message a second time (at-least-once delivery).
    Twice,
    /// Two workers die: the first batch start after starting its export and before recording
    /// it (its state is rolled back to Launching, long ago, and the message comes back), and
    /// the first poll that catalogs a batch after writing the catalog and before recording it
    /// (its state is rolled back to Exporting and the message comes back).
    Crashes,
    /// The first batch start finds its batch claimed a moment ago by another delivery that
    /// then died (state `Launching`, now): it must not fail, and the batch must still run.
    Contended,
}

struct History {
    stack: Stack,
    app: App,
    host: FunctionsHost,
    rows: u64,
}

/// kusto-sim's export memory budget: an export of more rows fails with
/// E_LOW_MEMORY_CONDITION, leaving what it wrote so far.
fn budget(rows: u64) -> FaultConfig {
    FaultConfig {
        export_max_rows: Some(rows),
        ..FaultConfig::default()
    }
}

/// A stack with `extents` ingestions of `per_extent` rows each into `History`, one simulated
/// minute apart, before anything is protected; then kusto-sim's `faults`.
async fn history(
    extents: u64,
    per_extent: u64,
    batch_max_rows: u64,
    faults: FaultConfig,
) -> History {
    let mut stack = Stack::start(DB).await;
    stack.set("AdxBackup__Backfill", "on");
    stack.set(
        "AdxBackup__BackfillBatchMaxRows",
        &batch_max_rows.to_string(),
    );
    stack.set("AdxBackup__BackfillSplitFloorRows", "1000");
    stack.set("AdxBackup__BackfillPollSeconds", "1");
    stack.set("AdxBackup__BackfillMaxConcurrentBatches", "2");
    // The janitor drops a leftover batch table a second after it first sees it.
    stack.set("AdxBackup__JanitorGraceSeconds", "1");
    stack
        .kusto(&format!(
            ".create table {TABLE} (Timestamp:datetime, Id:long, Name:string)"
        ))
        .await;
    for e in 0..extents {
        ingest_rows(&stack, e * per_extent, per_extent).await;
        stack.sim.state().advance_clock(Duration::from_secs(60));
    }
    stack.sim.state().set_faults(faults);
    let app = stack.app();
    let host = FunctionsHost::start(&stack.settings).await;
    History {
        stack,
        app,
        host,
        rows: extents * per_extent,
    }
}

/// Row `id` as the test writes it: a timestamp spread over five days, the id, a name.
fn row_fields(id: u64) -> (String, String) {
    let timestamp = format!(
        "2026-01-{:02}T{:02}:{:02}:00",
        10 + id % 5,
        id % 24,
        id % 60
    );
    (timestamp, format!("row {id}"))
}

/// Rows `first..first+count` (see [`row_fields`]).
async fn ingest_rows(stack: &Stack, first: u64, count: u64) {
    let rows: Vec<String> = (first..first + count)
        .map(|id| {
            let (timestamp, name) = row_fields(id);
            format!("{timestamp}Z,{id},\"{name}\"")
        })
        .collect();
    stack
        .kusto(&format!(
            ".ingest inline into table {TABLE} <|\n{}",
            rows.join("\n")
        ))
        .await;
}

/// Works the task queue like the host until it stays empty, delivering as `delivery` says.
/// Returns the verdict log lines; panics on a failed invocation that is not expected.
async fn drive(h: &History, delivery: Delivery) -> Vec<String> {
    let queue = &h.app.tasks;
    let mut logs = Vec::new();
    let mut duplicated: HashSet<String> = HashSet::new();
    let mut crashed_start = false;
    let mut crashed_poll = false;
    let mut contended = false;
    let mut idle_since = Instant::now();
    // Polls are sent with a one-second delay; wait longer than that before calling it done
    // (and, when contended, until the look sent for after the lease has come).
    while idle_since.elapsed() < Duration::from_millis(2500)
        || (delivery == Delivery::Contended && queue.approximate_count().await.unwrap() > 0)
    {
        let batch = queue.receive(16, Duration::from_secs(30)).await.unwrap();
        if batch.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        for msg in batch {
            let text = msg.text.clone().unwrap();
            if delivery == Delivery::Twice && duplicated.insert(text.clone()) {
                queue.send(&text, None).await.unwrap();
            }
            let task = Task::decode_text(&text).unwrap();
            let before = match &task {
                Task::BackfillPollV1 { batch, .. } => Some(batch_state(h, batch).await),
                _ => None,
            };
            if let Task::BackfillBatchV1(b) = &task
                && delivery == Delivery::Contended
                && !contended
                && batch_state(h, b).await["state"] == "Queued"
            {
                contended = true;
                let now = time::OffsetDateTime::now_utc()
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap();
                let claimed = json!({"state": "Launching", "attempt": 1, "at": now});
                set_batch_state(h, b, claimed).await;
            }
            let verdict = h
                .host
                .invoke_queue("tasks", "task", &text, msg.dequeue_count, Shape::Host)
                .await;
            logs.extend(verdict.logs());
            let crash = match &task {
                Task::BackfillBatchV1(b) if delivery == Delivery::Crashes && !crashed_start => {
                    crashed_start = true;
                    roll_back_to_launching(h, b).await;
                    true
                }
                Task::BackfillPollV1 { batch, .. }
                    if delivery == Delivery::Crashes
                        && !crashed_poll
                        && batch_state(h, batch).await["state"] == "Cataloged" =>
                {
                    crashed_poll = true;
                    set_batch_state(h, batch, before.unwrap_or_default()).await;
                    true
                }
                _ => false,
            };
            if crash {
                queue
                    .update_visibility(&msg.id, &msg.pop_receipt, Duration::ZERO)
                    .await
                    .unwrap();
                continue;
            }
            if verdict.succeeded() {
                queue.delete(&msg.id, &msg.pop_receipt).await.unwrap();
            } else {
                assert!(
                    msg.dequeue_count < 5,
                    "a message failed on every delivery: {text}: {}",
                    verdict.raw
                );
                queue
                    .update_visibility(&msg.id, &msg.pop_receipt, Duration::ZERO)
                    .await
                    .unwrap();
            }
        }
        // Idle counts from the end of the work: a long step is not a quiet queue.
        idle_since = Instant::now();
    }
    if delivery == Delivery::Crashes {
        assert!(crashed_start && crashed_poll, "both crashes happened");
    }
    if delivery == Delivery::Contended {
        assert!(contended, "a start found its batch claimed");
    }
    let poison = queue.poison_queue().unwrap();
    poison.ensure_exists().await.unwrap();
    assert_eq!(
        poison.approximate_count().await.unwrap(),
        0,
        "nothing in the poison queue"
    );
    logs
}

/// The recorded state of batch `b`, as JSON.
async fn batch_state(h: &History, b: &BatchRef) -> Value {
    let path = h.app.layout.backfill_job(&b.database, &b.table, &b.job);
    let (body, _) = h.app.blobs.read(&path).await.unwrap();
    let doc: Value = serde_json::from_slice(&body).unwrap();
    doc["batches"][b.batch.as_str()]["state"].clone()
}

/// Overwrites the recorded state of batch `b`, as a lost write would leave it.
async fn set_batch_state(h: &History, b: &BatchRef, state: Value) {
    let path = h.app.layout.backfill_job(&b.database, &b.table, &b.job);
    let (body, _) = h.app.blobs.read(&path).await.unwrap();
    let mut doc: Value = serde_json::from_slice(&body).unwrap();
    let batch = &mut doc["batches"][b.batch.as_str()];
    // A claim counts its attempt, as the start that writes it does.
    if let Some(attempt) = state["attempt"].as_u64() {
        let attempts = batch["attempts"].as_u64().unwrap_or(0).max(attempt);
        batch["attempts"] = json!(attempts);
    }
    batch["state"] = state;
    h.app
        .blobs
        .write(&path, serde_json::to_vec(&doc).unwrap().into())
        .await
        .unwrap();
}

/// The crash: batch `b`'s export was started, but its state write is lost.
async fn roll_back_to_launching(h: &History, b: &BatchRef) {
    let state = batch_state(h, b).await;
    assert_eq!(
        state["state"], "Exporting",
        "the first delivery started the export"
    );
    let attempt = state["attempt"].clone();
    let launching = json!({"state": "Launching", "attempt": attempt, "at": "2000-01-01T00:00:00Z"});
    set_batch_state(h, b, launching).await;
}

/// protect (twice: the export's first run fixes its StartCursor), which asks for the
/// backfill; then the queue until it is empty. Returns the backfill's verdict lines.
async fn protect_and_backfill(h: &History, delivery: Delivery) -> Vec<String> {
    let fire = |last: Option<&'static str>| async move {
        let verdict = h
            .host
            .invoke_timer("protect", "timer", last, last.is_some())
            .await;
        assert!(verdict.succeeded(), "protect timer failed: {}", verdict.raw);
    };
    fire(None).await;
    drive(h, Delivery::Once).await;
    h.stack.run_exports().await;
    fire(Some("2026-11-25T10:00:00+00:00")).await;
    drive(h, delivery).await
}

/// The most batches any backfill step saw running at once, read from the verdict lines
/// ("..., 2 running, ...").
fn most_running(logs: &[String]) -> u64 {
    logs.iter()
        .filter_map(|line| {
            let (before, _) = line.split_once(" running,")?;
            before.rsplit(' ').next()?.parse().ok()
        })
        .max()
        .unwrap_or(0)
}

async fn job(h: &History) -> BackfillJob {
    let dir = format!(
        "{}/$state/backfill/{DB}/{TABLE}/",
        h.app.settings.storage.prefix
    );
    let items: Vec<_> = h.app.blobs.list(&dir).try_collect().await.unwrap();
    assert_eq!(items.len(), 1, "one backfill job for the table: {items:?}");
    let (body, _) = h.app.blobs.read(&items[0].path).await.unwrap();
    serde_json::from_slice(&body).unwrap()
}

async fn catalog(h: &History) -> Vec<Artifact> {
    Catalog::new(&h.app.blobs, &h.app.layout)
        .stream(
            &DatabaseName::new(DB).unwrap(),
            &TableName::new(TABLE).unwrap(),
        )
        .try_collect()
        .await
        .unwrap()
}

/// Reads exactly the cataloged files with the harness's own parquet reader (not kusto-sim's)
/// and compares them with the rows the test ingested, ids `ids`: every row once, with the
/// content the test wrote, each in its day's folder and each file's `NumRecords` right.
async fn assert_backup_holds(h: &History, ids: Range<u64>) {
    let mut backed_up = BTreeMap::new();
    for row in cataloged_rows(&h.app, DB, TABLE, Some("Timestamp")).await {
        let Cell::Long(id) = row[1] else {
            panic!("Id is not a long: {row:?}")
        };
        assert!(
            backed_up.insert(id, row).is_none(),
            "row {id} is in the backup twice"
        );
    }
    let expected: BTreeMap<i64, Vec<Cell>> = ids
        .map(|id| {
            let (timestamp, name) = row_fields(id);
            let cells = vec![
                Cell::Timestamp(format!("{timestamp}.000000Z")),
                Cell::Long(id as i64),
                Cell::Text(name),
            ];
            (id as i64, cells)
        })
        .collect();
    let missing: Vec<_> = expected
        .keys()
        .filter(|id| !backed_up.contains_key(id))
        .take(5)
        .collect();
    assert!(
        missing.is_empty(),
        "rows missing from the backup, e.g. {missing:?}"
    );
    assert_eq!(
        backed_up.len(),
        expected.len(),
        "rows the test never ingested"
    );
    for (id, row) in &expected {
        assert_eq!(&backed_up[id], row, "row {id}'s content");
    }
}

/// Every data file in the table's folders is cataloged: nothing of a failed attempt stays.
async fn assert_no_stray_files(h: &History, artifacts: &[Artifact]) {
    let root = format!("{}/{DB}/{TABLE}/", h.app.settings.storage.prefix);
    let on_disk: BTreeSet<String> = h
        .app
        .blobs
        .list(&root)
        .map_ok(|item| item.path)
        .try_collect()
        .await
        .unwrap();
    let cataloged: BTreeSet<String> = artifacts.iter().map(|a| a.path.clone()).collect();
    assert_eq!(cataloged.len(), artifacts.len(), "no file cataloged twice");
    let stray: Vec<_> = on_disk.difference(&cataloged).collect();
    assert!(stray.is_empty(), "files no catalog entry names: {stray:?}");
}

/// The whole scenario, delivered as `delivery` says, with kusto-sim's `faults` on top of a
/// 12,000-row export memory budget while the backfill runs.
/// Returns the backfill's verdict lines.
async fn backfill_scenario(delivery: Delivery, faults: FaultConfig) -> Vec<String> {
    let h = history(30, 2_000, 20_000, faults).await;
    let logs = protect_and_backfill(&h, delivery).await;
    h.stack.sim.state().set_faults(budget(12_000));
    // The simulated crash after cataloging rolls a batch back to Exporting after the step
    // already started the next one, which a real crash would not have; not counted there.
    if delivery != Delivery::Crashes {
        assert_eq!(
            most_running(&logs),
            2,
            "at most AdxBackup__BackfillMaxConcurrentBatches batches run at once, and that many do"
        );
    }

    let job = job(&h).await;
    let p = &job.progress;
    assert!(p.finished, "{p:?}");
    assert_eq!((p.batches_failed, p.rows_failed), (0, 0), "{p:?}");
    assert_eq!(job.planned_rows, h.rows, "the whole history is planned");
    assert_eq!(p.rows_exported, h.rows, "{p:?}");
    assert_eq!(job.uncovered, None);
    assert!(
        p.batches_split >= 1,
        "a batch over the memory budget was split: {p:?}"
    );
    for (id, batch) in &job.batches {
        match &batch.state {
            BatchState::Split { into, message } => {
                assert!(
                    message.contains("E_LOW_MEMORY_CONDITION"),
                    "{id}: {message}"
                );
                for half in into {
                    assert_eq!(job.batches[half].parent.as_ref(), Some(id));
                }
            }
            BatchState::Cataloged { .. } => {}
            other => panic!("{id} ended {other:?}"),
        }
    }
    let mut exported = BTreeMap::new();
    for (id, batch) in &job.batches {
        if let BatchState::Cataloged { rows, .. } = batch.state {
            exported.insert(id.clone(), rows);
            assert_eq!(rows, batch.rows, "{id}: exported what was counted");
            assert!(rows <= 12_000, "{id}: within the memory budget");
        }
    }

    // New rows after the StartCursor come from the continuous export, not the backfill.
    ingest_rows(&h.stack, h.rows, 500).await;
    h.stack.run_exports().await;
    let verdict = h
        .host
        .invoke_timer("protect", "timer", Some("2026-11-25T10:05:00+00:00"), false)
        .await;
    assert!(verdict.succeeded(), "{}", verdict.raw);
    drive(&h, Delivery::Once).await;

    let artifacts = catalog(&h).await;
    let mut per_batch: BTreeMap<_, u64> = BTreeMap::new();
    let mut continuous = 0;
    for a in &artifacts {
        assert!(
            a.path
                .starts_with(&format!("backup/{DB}/{TABLE}/{}/", a.day.folder())),
            "beside the continuous export's files, in its day folder: {}",
            a.path
        );
        match &a.source {
            ArtifactSource::Backfill { job: j, batch } => {
                assert_eq!(j, &job.job);
                *per_batch.entry(batch.clone()).or_default() += a.rows;
            }
            ArtifactSource::ContinuousExport { .. } => continuous += a.rows,
        }
    }
    assert_eq!(
        per_batch, exported,
        "the catalog lists every backfill file, per batch"
    );
    assert_eq!(
        continuous, 500,
        "newer rows only through the continuous export"
    );
    assert_no_stray_files(&h, &artifacts).await;
    assert_backup_holds(&h, 0..h.rows + 500).await;
    logs
}

#[tokio::test]
async fn history_is_backfilled_exactly_once_in_batches_split_to_the_memory_budget() {
    backfill_scenario(Delivery::Once, budget(12_000)).await;
}

#[tokio::test]
async fn throttling_server_errors_and_slow_exports_still_give_the_same_exact_backup() {
    let faults = FaultConfig {
        seed: 7,
        throttle_rate: 0.1,
        transient_rate: 0.1,
        operation_latency_ms: 1_500,
        ..budget(12_000)
    };
    let logs = backfill_scenario(Delivery::Once, faults).await;
    assert!(
        logs.iter().any(|l| l.contains(" is InProgress")),
        "a poll found an export still running and looked again: {logs:#?}"
    );
}

#[tokio::test]
async fn every_message_delivered_twice_gives_the_same_exact_backup() {
    backfill_scenario(Delivery::Twice, budget(12_000)).await;
}

#[tokio::test]
async fn workers_dying_before_recording_an_export_or_its_catalog_give_the_same_exact_backup() {
    backfill_scenario(Delivery::Crashes, budget(12_000)).await;
}

/// The claim's lease is twice the Kusto request timeout: 10 s here. The contended start is
/// done at once (no failed delivery), looks again after the lease, and starts attempt 2.
#[tokio::test]
async fn a_start_that_finds_its_batch_claimed_by_a_dead_worker_looks_again_after_the_lease() {
    let mut h = history(3, 1_000, 20_000, FaultConfig::default()).await;
    h.stack.set("AdxBackup__KustoTimeoutSeconds", "5");
    h.app = h.stack.app();
    h.host = FunctionsHost::start(&h.stack.settings).await;
    let logs = protect_and_backfill(&h, Delivery::Contended).await;
    assert!(
        logs.iter()
            .any(|l| l.contains("is being started elsewhere; looking again in 1")),
        "{logs:#?}"
    );
    let job = job(&h).await;
    assert!(job.progress.finished, "{:?}", job.progress);
    assert!(
        job.batches.values().any(|b| b.attempts == 2),
        "the claimed batch ran as attempt 2: {:#?}",
        job.batches
    );
    assert_backup_holds(&h, 0..h.rows).await;
}

/// A worker that saved a poll's next look and died before sending it: the look it waits for
/// is sent again by a redelivery (of the poll, or of the batch's start), never by a first
/// delivery, so copies end.
#[tokio::test]
async fn a_look_saved_but_never_sent_is_sent_again_by_a_redelivery() {
    let h = history(3, 1_000, 20_000, FaultConfig::default()).await;
    protect_and_backfill(&h, Delivery::Once).await;
    let j = job(&h).await;
    let (id, done) = j.batches.iter().next().unwrap();
    let b = BatchRef {
        database: DatabaseName::new(DB).unwrap(),
        table: TableName::new(TABLE).unwrap(),
        job: j.job.clone(),
        batch: id.clone(),
    };
    let exporting = json!({"state": "Exporting", "attempt": done.attempts, "operation": "00000000-0000-0000-0000-000000000001", "poll": 3});
    set_batch_state(&h, &b, exporting).await;
    let look = |poll: u32| Task::BackfillPollV1 {
        batch: b.clone(),
        poll,
    };

    let copy = backfill::poll_batch(&h.app, &b, 2, false).await.unwrap();
    assert!(copy.to_string().contains("a stale poll"), "{copy}");
    let start = backfill::start_batch(&h.app, &b, false).await.unwrap();
    assert!(start.to_string().contains("already started"), "{start}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(h.app.tasks.approximate_count().await.unwrap(), 0);

    let again = backfill::poll_batch(&h.app, &b, 2, true).await.unwrap();
    assert!(again.to_string().contains("poll 3 sent again"), "{again}");
    let start = backfill::start_batch(&h.app, &b, true).await.unwrap();
    assert!(start.to_string().contains("poll 3 sent again"), "{start}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let sent = h
        .app
        .tasks
        .receive(32, Duration::from_secs(30))
        .await
        .unwrap();
    let texts: Vec<String> = sent.iter().map(|m| m.text.clone().unwrap()).collect();
    assert_eq!(texts, [look(3).to_json(), look(3).to_json()]);
    for m in &sent {
        h.app.tasks.delete(&m.id, &m.pop_receipt).await.unwrap();
    }
}

#[tokio::test]
async fn rows_without_ingestion_time_are_counted_and_reported_not_lost_silently() {
    let h = history(0, 0, 20_000, FaultConfig::default()).await;
    h.stack
        .kusto(&format!(".delete table {TABLE} policy ingestiontime"))
        .await;
    ingest_rows(&h.stack, 0, 40).await;
    h.stack
        .kusto(&format!(".alter table {TABLE} policy ingestiontime true"))
        .await;
    h.stack.sim.state().advance_clock(Duration::from_secs(60));
    ingest_rows(&h.stack, 40, 300).await;
    protect_and_backfill(&h, Delivery::Once).await;

    let job = job(&h).await;
    let uncovered = job
        .uncovered
        .clone()
        .expect("the rows without ingestion time are reported");
    assert_eq!(uncovered.rows, 40);
    assert!(
        uncovered.reason.contains("IngestionTime policy was off"),
        "{}",
        uncovered.reason
    );
    assert!(job.progress.finished);
    assert_eq!(job.progress.rows_exported, 300);
    let backfilled: u64 = catalog(&h).await.iter().map(|a| a.rows).sum();
    assert_eq!(backfilled, 300);
}

#[tokio::test]
async fn a_dry_run_shows_the_plan_and_starts_nothing() {
    let h = history(10, 1_000, 3_000, FaultConfig::default()).await;
    let verdict = h.host.invoke_timer("protect", "timer", None, false).await;
    assert!(verdict.succeeded(), "{}", verdict.raw);
    drive(&h, Delivery::Once).await;
    let t = TableRef {
        database: DatabaseName::new(DB).unwrap(),
        table: TableName::new(TABLE).unwrap(),
    };
    let err = backfill::start(&h.app, &t, true).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("no continuous export StartCursor yet"),
        "{err}"
    );

    h.stack.run_exports().await;
    let verdict = h
        .host
        .invoke_timer("protect", "timer", Some("2026-11-25T10:00:00+00:00"), false)
        .await;
    assert!(verdict.succeeded(), "{}", verdict.raw);
    // protect asked for the backfill; take that task off the queue unrun.
    let asked: Vec<_> = h
        .app
        .tasks
        .receive(32, Duration::from_secs(60))
        .await
        .unwrap();
    let kinds: Vec<_> = asked
        .iter()
        .map(|m| Task::decode_text(m.text.as_ref().unwrap()).unwrap().kind())
        .collect();
    assert_eq!(kinds, ["ProtectTableV1"]);
    let verdict = h
        .host
        .invoke_queue(
            "tasks",
            "task",
            asked[0].text.as_ref().unwrap(),
            1,
            Shape::Host,
        )
        .await;
    assert!(verdict.succeeded(), "{}", verdict.raw);
    h.app
        .tasks
        .delete(&asked[0].id, &asked[0].pop_receipt)
        .await
        .unwrap();
    let backfill_task = h
        .app
        .tasks
        .receive(32, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(backfill_task.len(), 1);
    assert_eq!(
        Task::decode_text(backfill_task[0].text.as_ref().unwrap()).unwrap(),
        Task::BackfillTableV1(t.clone())
    );
    h.app
        .tasks
        .delete(&backfill_task[0].id, &backfill_task[0].pop_receipt)
        .await
        .unwrap();

    let plan = backfill::start(&h.app, &t, true).await.unwrap();
    // Ten ingestions of 1,000 rows, a minute apart, in batches of at most 3,000 rows.
    assert_eq!(plan.progress.batches_planned, 4, "{plan}");
    assert_eq!(plan.progress.rows_planned, 10_000);
    assert!(
        plan.to_string().contains("dry run, nothing started"),
        "{plan}"
    );
    let dir = format!("{}/$state/backfill/", h.app.settings.storage.prefix);
    let written: Vec<_> = h.app.blobs.list(&dir).try_collect().await.unwrap();
    assert!(written.is_empty(), "a dry run writes no job: {written:?}");
    assert!(
        h.app
            .tasks
            .receive(32, Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty()
    );
}

/// protect's timer once (a later run), then the queue until it is empty.
async fn protect_again(h: &History) {
    let verdict = h
        .host
        .invoke_timer("protect", "timer", Some("2026-11-25T10:05:00+00:00"), false)
        .await;
    assert!(verdict.succeeded(), "{}", verdict.raw);
    drive(h, Delivery::Once).await;
}

#[tokio::test]
async fn a_dropped_and_re_created_export_leaves_a_gap_that_is_recorded_and_closed_exactly() {
    let h = history(3, 1_000, 20_000, FaultConfig::default()).await;
    protect_and_backfill(&h, Delivery::Once).await;
    // Covered by the first export.
    ingest_rows(&h.stack, 3_000, 500).await;
    h.stack.run_exports().await;
    protect_again(&h).await;

    // Someone drops the export; rows keep arriving; protect re-creates it.
    h.stack
        .kusto(".drop continuous-export ['adxbk_History']")
        .await;
    h.stack.sim.state().advance_clock(Duration::from_secs(60));
    ingest_rows(&h.stack, 3_500, 700).await;
    protect_again(&h).await;
    // The new export's first run fixes its StartCursor after the 700 rows; newer rows are its.
    h.stack.run_exports().await;
    h.stack.sim.state().advance_clock(Duration::from_secs(60));
    ingest_rows(&h.stack, 4_200, 300).await;
    h.stack.run_exports().await;
    protect_again(&h).await;

    let t = TableRef {
        database: DatabaseName::new(DB).unwrap(),
        table: TableName::new(TABLE).unwrap(),
    };
    let path = h.app.layout.table_state(&t.database, &t.table);
    let (body, _) = h.app.blobs.read(&path).await.unwrap();
    let state: adx_backup::protect::TableState = serde_json::from_slice(&body).unwrap();
    assert_eq!(state.gaps.len(), 1, "{:?}", state.gaps);
    let gap = &state.gaps[0];
    assert_eq!(
        Some(&gap.after_cursor),
        state.start_cursor.as_ref(),
        "from the first export's StartCursor"
    );
    assert_eq!(
        Some(&gap.until_cursor),
        state.export_start_cursor.as_ref(),
        "to the new one's"
    );
    assert!(
        gap.reason.contains("re-created or altered"),
        "{}",
        gap.reason
    );

    let dir = format!(
        "{}/$state/backfill/{DB}/{TABLE}/",
        h.app.settings.storage.prefix
    );
    let mut jobs = Vec::new();
    for item in h
        .app
        .blobs
        .list(&dir)
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
    {
        let (body, _) = h.app.blobs.read(&item.path).await.unwrap();
        jobs.push(serde_json::from_slice::<BackfillJob>(&body).unwrap());
    }
    let closing: Vec<_> = jobs.iter().filter(|j| j.after_cursor.is_some()).collect();
    assert_eq!(closing.len(), 1, "one job closes the gap");
    let closing = closing[0];
    assert_eq!(closing.reason, gap.reason);
    assert_eq!(
        closing.planned_rows, 700,
        "exactly the rows neither export took"
    );
    assert!(closing.progress.finished, "{:?}", closing.progress);
    assert_eq!(closing.progress.rows_exported, 700);

    let artifacts = catalog(&h).await;
    assert_eq!(artifacts.iter().map(|a| a.rows).sum::<u64>(), 4_500);
    assert_no_stray_files(&h, &artifacts).await;
    assert_backup_holds(&h, 0..4_500).await;
}

/// The acceptance size: 1,000,000 rows over 40 extents, a 150,000-row memory
/// budget. Slow in debug builds; run with `cargo test --release --test e2e -- --ignored`.
#[tokio::test]
#[ignore = "long: one million rows"]
async fn a_million_rows_with_a_150k_row_budget() {
    let started = Instant::now();
    let h = history(40, 25_000, 200_000, budget(150_000)).await;
    protect_and_backfill(&h, Delivery::Once).await;
    let job = job(&h).await;
    assert!(job.progress.finished, "{:?}", job.progress);
    assert_eq!(job.progress.rows_exported, 1_000_000);
    assert!(job.progress.batches_split >= 1);
    let artifacts = catalog(&h).await;
    assert_no_stray_files(&h, &artifacts).await;
    assert_backup_holds(&h, 0..1_000_000).await;
    println!(
        "one million rows backfilled and checked in {:?}",
        started.elapsed()
    );
}

/// The temporary objects `status` shows for the database.
async fn temporary_objects(h: &History) -> TemporaryObjects {
    let shown = status::collect(&h.app, &Filter::default()).await.unwrap();
    shown.databases[0]
        .temporary_objects
        .expect("status shows the janitor's count")
}

/// The janitor's state of the database, as `status` would read it.
async fn janitor_state(h: &History) -> backfill::JanitorState {
    let path = h.app.layout.janitor_state(&DatabaseName::new(DB).unwrap());
    let (body, _) = h.app.blobs.read(&path).await.unwrap();
    serde_json::from_slice(&body).unwrap()
}

/// Creates an external table the way a backfill worker creates its batch's: the table's own
/// definition, named and marked as the batch `job`/`batch`.
async fn leave_batch_table(h: &History, job: &str, batch: &str) -> String {
    let t = TableRef {
        database: DatabaseName::new(DB).unwrap(),
        table: TableName::new(TABLE).unwrap(),
    };
    let base = adx_backup::protect::current_external_table(&h.app, &t)
        .await
        .unwrap();
    let name = format!("adxbk_{job}_{batch}");
    let spec = ExternalTableSpec {
        name: TableName::new(&name).unwrap(),
        doc_string: format!("adx-backup:backfill {job} {batch}"),
        name_prefix: Some(format!("{job}_{batch}_a009")),
        ..base
    };
    h.stack
        .kusto(command::create_external_table(&spec).as_str())
        .await;
    name
}

#[tokio::test]
async fn workers_killed_mid_way_and_abandoned_jobs_leave_no_temporary_object() {
    let h = history(10, 2_000, 6_000, FaultConfig::default()).await;
    // Two workers die mid-way (after starting an export, after cataloging a batch).
    protect_and_backfill(&h, Delivery::Crashes).await;
    let job = job(&h).await;
    assert!(job.progress.finished, "{:?}", job.progress);
    let own: BTreeSet<String> = names(&h.stack, ".show external tables", "TableName").await;
    assert_eq!(
        own,
        BTreeSet::from([format!("adxbk_{TABLE}")]),
        "every attempt dropped its batch table"
    );
    // What crashes can still leave: a worker that stalled past its lease and created its
    // batch's table after another delivery ended the batch, and a job whose state is gone.
    let ended = job
        .batches
        .iter()
        .find(|(_, b)| matches!(b.state, BatchState::Cataloged { .. }))
        .map(|(id, _)| id.to_string())
        .unwrap();
    let stalled = leave_batch_table(&h, job.job.as_str(), &ended).await;
    let abandoned = leave_batch_table(&h, "bf-00000000deadbeef", "b000001").await;
    // Objects the janitor does not own: a prefixed table made by hand, an unprefixed one
    // whose DocString looks like a batch table's.
    h.stack
        .kusto(".create external table adxbk_ByHand (x:long) kind=storage dataformat=parquet ('https://a.blob.core.windows.net/c/x') with (docString='made by hand')")
        .await;
    h.stack
        .kusto(&format!(".create external table NotOurs (x:long) kind=storage dataformat=parquet ('https://a.blob.core.windows.net/c/x') with (docString='adx-backup:backfill {} {ended}')", job.job))
        .await;

    let h = &h;
    let fire = |at: &'static str| async move {
        let verdict = h
            .host
            .invoke_timer("protect", "timer", Some(at), false)
            .await;
        assert!(verdict.succeeded(), "protect timer failed: {}", verdict.raw);
    };
    fire("2026-11-25T11:00:00+00:00").await;
    let seen = janitor_state(h).await;
    assert_eq!(seen.temporary, 2, "{seen:?}");
    let orphans: BTreeSet<String> = seen.orphans.iter().map(|o| o.name.to_string()).collect();
    assert_eq!(
        orphans,
        BTreeSet::from([stalled.clone(), abandoned.clone()])
    );
    assert_eq!(seen.dropped, 0, "nothing dropped before the grace period");
    assert_eq!(
        temporary_objects(h).await,
        TemporaryObjects {
            count: 2,
            orphans_waiting: 2,
            dropped: 0
        },
        "status shows what the janitor saw"
    );

    tokio::time::sleep(Duration::from_millis(1_100)).await;
    fire("2026-11-25T11:05:00+00:00").await;
    let after = janitor_state(h).await;
    assert_eq!((after.temporary, after.dropped), (0, 2), "{after:?}");
    assert!(after.orphans.is_empty(), "{after:?}");
    assert_eq!(
        temporary_objects(h).await,
        TemporaryObjects {
            count: 0,
            orphans_waiting: 0,
            dropped: 2
        }
    );
    assert_eq!(
        names(&h.stack, ".show external tables", "TableName").await,
        BTreeSet::from([
            format!("adxbk_{TABLE}"),
            "adxbk_ByHand".to_owned(),
            "NotOurs".to_owned()
        ]),
        "no temporary object left, and nothing else dropped"
    );
}
