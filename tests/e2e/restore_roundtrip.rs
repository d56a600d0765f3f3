//! Restore's acceptance round trip: a source database protected by adx-backup (history
//! through backfill, newer rows through the continuous export) comes back into a second
//! cluster through the queue-driven restore, identical per table and per day; and a worker
//! killed between sending a chunk's ingestion messages and saving the chunk changes nothing.
//!
//! Expected values never come from the product: row counts per day come from the generator
//! below, content hashes from the source cluster's own query engine.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use adx_backup::app::App;
use adx_backup::backfill::BackfillJob;
use adx_backup::ids::JobId;
use adx_backup::restore::{
    self,
    state::{ChunkState, JobStatus, RestoreChunk},
};
use futures::TryStreamExt;
use kusto_sim::Server;
use kusto_sim::value::Value;
use serde_json::json;
use time::macros::date;

use crate::harness::data::{csv_cell, timer_then_tasks};
use crate::harness::gate::QueueGate;
use crate::harness::host::FunctionsHost;
use crate::harness::restore::{Delivery, RestoreRun, mgmt, query};
use crate::harness::stack::{Stack, azurite_queue_endpoint};

const SRC: &str = "Sales";
const DR: &str = "DR";
const DAYS: u64 = 30;
const TICKS_PER_DAY: i64 = 864_000_000_000;

/// One generated table: row `n` of it is `row(n)`, a CSV line.
struct Table {
    name: &'static str,
    schema: &'static str,
    /// Rows per unit of scale.
    weight: u64,
    row: fn(u64) -> String,
    /// The day row `n` falls on (days since 1970-01-01), `None` for an undated row.
    day: fn(u64) -> Option<i64>,
}

/// The five tables: one with every scalar type, one with null datetimes in its partition
/// column, one without a datetime column, two ordinary ones. Scale 10,000 is 1,010,000 rows.
const TABLES: [Table; 5] = [
    Table {
        name: "Wide",
        schema: "(Timestamp:datetime, B:bool, I:int, L:long, R:real, D:decimal, S:string, \
                 Ts:timespan, G:guid, Dyn:dynamic)",
        weight: 15,
        row: wide,
        day: dated,
    },
    Table {
        name: "Nulls",
        schema: "(Timestamp:datetime, V:long)",
        weight: 12,
        row: nulls,
        day: nulls_day,
    },
    Table {
        name: "Plain",
        schema: "(Id:long, Name:string)",
        weight: 9,
        row: plain,
        day: undated,
    },
    Table {
        name: "Events",
        schema: "(Timestamp:datetime, Id:long, Message:string)",
        weight: 35,
        row: events,
        day: dated,
    },
    Table {
        name: "Metrics",
        schema: "(Timestamp:datetime, Host:string, Value:real)",
        weight: 30,
        row: metrics,
        day: dated,
    },
];

fn dated(n: u64) -> Option<i64> {
    Some((date!(2026 - 02 - 01) - date!(1970 - 01 - 01)).whole_days() + (n % DAYS) as i64)
}

fn undated(_: u64) -> Option<i64> {
    None
}

fn nulls_day(n: u64) -> Option<i64> {
    (!n.is_multiple_of(10)).then(|| dated(n)).flatten()
}

/// Row `n`'s time: day `n % 30` from 2026-02-01, spread over the day, with microseconds.
fn timestamp(n: u64) -> String {
    let day = date!(2026 - 02 - 01) + time::Duration::days((n % DAYS) as i64);
    let secs = (n * 7919) % 86_400;
    format!(
        "{day}T{:02}:{:02}:{:02}.{:06}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        n % 1_000_000
    )
}

fn wide(n: u64) -> String {
    if n.is_multiple_of(97) {
        // A null in every column but the partition column.
        return format!("{},,,,,,,,,", timestamp(n));
    }
    let cells = [
        timestamp(n),
        if n.is_multiple_of(2) { "true" } else { "false" }.into(),
        format!("{}", (n as i64 * 7919 % 4_294_967_291) as i32),
        format!("{}", n as i64 * 1_000_000_007 - 4_611_686_018_427_387_904),
        format!("{}", n as f64 / 8.0 - 1000.0),
        format!("{}.{:09}", n as i64 - 500_000, n * 13 % 1_000_000_000),
        csv_cell(&format!("s{n}, \"q\" Grüße 🚀")),
        format!(
            "{}.{:02}:{:02}:{:02}.{:07}",
            n % 9,
            n % 24,
            n % 60,
            n % 59,
            n % 10_000_000
        ),
        format!("{:08x}-0000-4000-8000-{:012x}", n, n * 31),
        csv_cell(&format!(
            "{{\"n\":{n},\"a\":[1,\"x\",null],\"o\":{{\"k\":{}}}}}",
            n % 7
        )),
    ];
    cells.join(",")
}

fn nulls(n: u64) -> String {
    match nulls_day(n) {
        None => format!(",{n}"),
        Some(_) => format!("{},{n}", timestamp(n)),
    }
}

fn plain(n: u64) -> String {
    format!("{n},name {n}")
}

fn events(n: u64) -> String {
    format!(
        "{},{n},{}",
        timestamp(n),
        csv_cell(&format!("event {n}, ok"))
    )
}

fn metrics(n: u64) -> String {
    format!("{},host-{},{}", timestamp(n), n % 17, n as f64 * 0.25)
}

impl Table {
    fn rows(&self, scale: u64) -> u64 {
        self.weight * scale
    }

    /// Rows per day (`None`: undated) of rows `0..rows`, from the generator alone.
    fn per_day(&self, rows: u64) -> BTreeMap<Option<i64>, u64> {
        let mut out = BTreeMap::new();
        for n in 0..rows {
            *out.entry((self.day)(n)).or_default() += 1;
        }
        out
    }

    /// The table's name and the column its files are partitioned by, if any.
    fn key(&self) -> (&'static str, Option<&'static str>) {
        let partition = self.schema.contains(":datetime").then_some("Timestamp");
        (self.name, partition)
    }

    /// Ingests rows `range`, 25,000 rows to a command (each an extent of the source).
    async fn ingest(&self, stack: &Stack, range: std::ops::Range<u64>) {
        const PER_COMMAND: u64 = 25_000;
        let mut start = range.start;
        while start < range.end {
            let end = (start + PER_COMMAND).min(range.end);
            let mut text = format!(".ingest inline into table {} <|\n", self.name);
            for n in start..end {
                text.push_str(&(self.row)(n));
                text.push('\n');
            }
            stack.kusto(&text).await;
            start = end;
        }
    }
}

/// Rows and an order-independent hash of their content per day of the partition column
/// (one line per day, the undated rows as a null day), as a cluster's query engine sees
/// them.
async fn fingerprint(
    sim: &Server,
    db: &str,
    (table, partition): (&str, Option<&str>),
    filter: &str,
) -> Vec<String> {
    let by = partition
        .map(|c| format!(" by Day = bin({c}, 1d)"))
        .unwrap_or_default();
    query(
        sim,
        db,
        &format!(
            "{table}{filter} | summarize Rows = count(), Hash = sum(hash(tostring(pack_all()))){by}"
        ),
    )
    .await
}

/// Rows per day as the target's query engine counts them.
async fn rows_per_day(
    sim: &Server,
    db: &str,
    (table, partition): (&str, Option<&str>),
) -> BTreeMap<Option<i64>, u64> {
    let Some(column) = partition else {
        let rows = query(sim, db, &format!("{table} | count")).await;
        return BTreeMap::from([(None, parse_count(&rows[0]))]);
    };
    let out = sim
        .state()
        .query(
            db,
            &format!("{table} | summarize Rows = count() by Day = bin({column}, 1d)"),
        )
        .await
        .unwrap();
    out.primary
        .rows
        .iter()
        .map(|r| {
            let day = match r[0] {
                Value::DateTime(t) => Some(t / TICKS_PER_DAY),
                _ => None,
            };
            let Value::Long(rows) = r[1] else {
                panic!("count is a long: {r:?}")
            };
            (day, rows as u64)
        })
        .collect()
}

fn parse_count(row: &str) -> u64 {
    row.trim_start_matches("[Long(")
        .trim_end_matches(")]")
        .parse()
        .unwrap_or_else(|_| panic!("a count: {row}"))
}

/// Rows per day as the target's extents record them: an extent created at a midnight holds
/// that day's rows, any other creation time is an undated file's ingestion time.
async fn rows_per_creation_day(sim: &Server, db: &str, table: &str) -> BTreeMap<Option<i64>, u64> {
    let extents = mgmt(sim, db, &format!(".show table {table} extents")).await;
    let col = |name: &str| extents.column_index(name).unwrap();
    let (min, max, rows) = (col("MinCreatedOn"), col("MaxCreatedOn"), col("RowCount"));
    let mut out = BTreeMap::new();
    for r in &extents.rows {
        let (Value::DateTime(min), Value::DateTime(max), Value::Long(count)) =
            (&r[min], &r[max], &r[rows])
        else {
            panic!("{table}: an extent without creation times or rows: {r:?}")
        };
        assert_eq!(
            min, max,
            "{table}: one file, one creation time per extent: {r:?}"
        );
        let day = (min % TICKS_PER_DAY == 0).then_some(min / TICKS_PER_DAY);
        *out.entry(day).or_default() += *count as u64;
    }
    out
}

/// A source database with the five tables: `history` of every 10 rows ingested before
/// protect (and backed up by backfill), the rest after (by the continuous export); the app,
/// with backfill on, has protected it and cataloged everything.
async fn protected_source(scale: u64, history: u64, target: &Server) -> (Stack, App) {
    let mut stack = Stack::start(SRC).await;
    stack.set("AdxBackup__Backfill", "on");
    stack.set("AdxBackup__BackfillPollSeconds", "1");
    stack.set("AdxBackup__RestoreTargets", &target.url());
    stack.set("AdxBackup__RestoreChunksInFlight", "4");
    stack.set("AdxBackup__RestorePollSeconds", "1");
    stack.set(
        "AdxBackup__RestoreQueue",
        &format!(
            "e2e-restore-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..20]
        ),
    );
    let started = Instant::now();
    for t in &TABLES {
        stack
            .kusto(&format!(".create table {} {}", t.name, t.schema))
            .await;
        t.ingest(&stack, 0..t.rows(scale) * history / 10).await;
    }
    let app = stack.app();
    let host = FunctionsHost::start(&stack.settings).await;
    // The first run creates the exports; their first run fixes each StartCursor, and the
    // second protect run backfills what lies before it.
    timer_then_tasks(&host, &app, None).await;
    stack.run_exports().await;
    timer_then_tasks(&host, &app, Some("2026-11-25T10:00:00+00:00")).await;
    let with_history = if history == 0 { 0 } else { TABLES.len() };
    until_backfilled(&host, &app, with_history).await;
    for t in &TABLES {
        t.ingest(&stack, t.rows(scale) * history / 10..t.rows(scale))
            .await;
    }
    for report in stack.run_exports().await {
        assert!(report.error.is_none(), "{report:?}");
    }
    timer_then_tasks(&host, &app, Some("2026-11-25T10:05:00+00:00")).await;
    eprintln!(
        "round trip: {} rows generated and backed up in {:?}",
        TABLES.iter().map(|t| t.rows(scale)).sum::<u64>(),
        started.elapsed()
    );
    (stack, app)
}

/// Works the task queue until `tables` backfill jobs exist and every one has finished with
/// no failed batch.
async fn until_backfilled(host: &FunctionsHost, app: &App, tables: usize) {
    let dir = format!("{}/$state/backfill/", app.settings.storage.prefix);
    let started = Instant::now();
    loop {
        let mut jobs = Vec::new();
        let items: Vec<_> = app.blobs.list(&dir).try_collect().await.unwrap();
        for item in items {
            let (body, _) = app.blobs.read(&item.path).await.unwrap();
            jobs.push(serde_json::from_slice::<BackfillJob>(&body).unwrap());
        }
        if jobs.len() >= tables && jobs.iter().all(|j| j.progress.finished) {
            for j in &jobs {
                assert_eq!(
                    j.progress.batches_failed, 0,
                    "{}: {:?}",
                    j.table, j.progress
                );
            }
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "backfill did not finish: {:?}",
            jobs.iter()
                .map(|j| (&j.table, &j.progress))
                .collect::<Vec<_>>()
        );
        let poison = app.tasks.poison_queue().unwrap();
        let report = host.drive_queue("tasks", "task", &app.tasks, &poison).await;
        assert_eq!(report.poisoned, 0, "{:?}", report.logs);
    }
}

fn request(job: &str, target: &Server, extra: serde_json::Value) -> String {
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

/// Every table of the target identical to the source's: rows per day as generated, content
/// hashes per day as the source's engine computes them, and each extent created at midnight
/// of the day its rows fall on.
async fn assert_round_trip(stack: &Stack, target: &Server, scale: u64) {
    for t in &TABLES {
        let expected = t.per_day(t.rows(scale));
        assert_eq!(
            rows_per_day(&stack.sim, SRC, t.key()).await,
            expected,
            "{}: the source holds what was generated",
            t.name
        );
        assert_eq!(
            rows_per_day(target, DR, t.key()).await,
            expected,
            "{}: rows per day in the target",
            t.name
        );
        assert_eq!(
            fingerprint(target, DR, t.key(), "").await,
            fingerprint(&stack.sim, SRC, t.key(), "").await,
            "{}: content per day",
            t.name
        );
        assert_eq!(
            rows_per_creation_day(target, DR, t.name).await,
            expected,
            "{}: extents' creation times are their rows' days",
            t.name
        );
    }
}

#[tokio::test]
async fn a_million_rows_over_thirty_days_come_back_identical_per_table_and_day() {
    const SCALE: u64 = 10_000;
    let target = Stack::target_cluster(DR).await;
    let (stack, app) = protected_source(SCALE, 6, &target).await;
    let started = Instant::now();
    let job = "r-roundtrip";
    let state = RestoreRun::post(
        &stack,
        &app,
        &target,
        &request(job, &target, json!({})),
        Delivery::Once,
    )
    .await
    .until_final(job, Duration::from_secs(900))
    .await;
    eprintln!(
        "round trip: restored {:?} in {:?}",
        state.totals,
        started.elapsed()
    );
    assert_eq!(state.status, JobStatus::Succeeded, "{state:#?}");
    let checked = Instant::now();
    assert_round_trip(&stack, &target, SCALE).await;
    eprintln!("round trip: compared in {:?}", checked.elapsed());
}

/// Every chunk document of `job`.
async fn chunks(app: &App, job: &str) -> Vec<RestoreChunk> {
    let dir = format!(
        "{}/$state/restore/{job}/chunks/",
        app.settings.storage.prefix
    );
    let mut out = Vec::new();
    let items: Vec<_> = app.blobs.list(&dir).try_collect().await.unwrap();
    for item in items {
        let (body, _) = app.blobs.read(&item.path).await.unwrap();
        out.push(serde_json::from_slice(&body).unwrap());
    }
    out
}

#[tokio::test]
async fn a_worker_killed_between_sending_a_chunks_files_and_saving_it_changes_nothing() {
    const SCALE: u64 = 10;
    const SENT_BEFORE_KILL: u64 = 5;
    let gate = QueueGate::start(&azurite_queue_endpoint(), SENT_BEFORE_KILL).await;
    let target = Stack::target_cluster_queues_at(DR, &gate.endpoint()).await;
    let (mut stack, _) = protected_source(SCALE, 0, &target).await;
    stack.set("AdxBackup__RestoreChunkBlobs", "10");
    stack.set("AdxBackup__RestoreChunksInFlight", "2");
    let app = stack.app();
    // A row of the target's own, beside which the job appends and which undo must keep.
    mgmt(&target, DR, ".create table Plain (Id:long, Name:string)").await;
    mgmt(&target, DR, ".ingest inline into table Plain <|\n-1,kept").await;

    let job = "r-killed";
    let mut run = RestoreRun::post(
        &stack,
        &app,
        &target,
        &request(job, &target, json!({"mode": "append"})),
        Delivery::Once,
    )
    .await;
    let started = Instant::now();
    while !run.pass_killing_at(&gate).await {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no chunk step reached its sixth ingestion message"
        );
        run.ingest().await;
    }
    assert_eq!(gate.passed(), SENT_BEFORE_KILL, "sent before the kill");
    let states: Vec<ChunkState> = chunks(&app, job).await.iter().map(|c| c.state).collect();
    assert!(
        !states.is_empty() && states.iter().all(|s| *s == ChunkState::Planned),
        "no chunk was saved as sent: {states:?}"
    );
    // The target ingests what the dead worker sent; then the step is delivered again.
    run.ingest().await;
    assert_eq!(run.ingestion.succeeded as u64, SENT_BEFORE_KILL);
    gate.open();
    run.restart_handler().await;
    let state = run.until_final(job, Duration::from_secs(180)).await;
    assert_eq!(state.status, JobStatus::Succeeded, "{state:#?}");
    assert_eq!(
        run.ingestion.skipped as u64, SENT_BEFORE_KILL,
        "each file sent before the kill was sent again and skipped by its ingestIfNotExists tag"
    );
    assert_eq!(run.ingestion.failed, 0);

    for t in &TABLES {
        let mine = if t.name == "Plain" {
            " | where Id != -1"
        } else {
            ""
        };
        assert_eq!(
            fingerprint(&target, DR, t.key(), mine).await,
            fingerprint(&stack.sim, SRC, t.key(), "").await,
            "{}: exactly the source's rows, none twice",
            t.name
        );
    }
    restore::undo(&app, &JobId::new(job).unwrap())
        .await
        .unwrap();
    assert_eq!(
        query(&target, DR, "Plain").await,
        vec![r#"[Long(-1), String("kept")]"#.to_owned()],
        "undo removed exactly the job's rows"
    );
    for t in TABLES.iter().filter(|t| t.name != "Plain") {
        assert_eq!(
            query(&target, DR, &format!("{} | count", t.name)).await,
            vec!["[Long(0)]".to_owned()],
            "{} is empty after undo",
            t.name
        );
    }
}

/// 12,000 files take many minutes on the shared 2-core machine, nearly all of it Azurite (one
/// export run writes a file per day, the target reads each file on its own, and an in-memory
/// Azurite slows as a container fills), so `make bench` runs this one, not `make test`.
#[tokio::test]
#[ignore = "run by `make bench` (scripts/bench.sh); figures in BENCHMARKS.md"]
async fn twelve_thousand_files_past_the_portals_limit_all_come_back() {
    const FILES: i64 = 12_000;
    let target = Stack::target_cluster(DR).await;
    let mut stack = Stack::start(SRC).await;
    stack.set("AdxBackup__RestoreTargets", &target.url());
    stack.set("AdxBackup__RestorePollSeconds", "1");
    stack.set(
        "AdxBackup__RestoreQueue",
        &format!(
            "e2e-restore-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..20]
        ),
    );
    let started = Instant::now();
    stack
        .kusto(".create table Many (Timestamp:datetime, Id:long)")
        .await;
    let app = stack.app();
    let host = FunctionsHost::start(&stack.settings).await;
    timer_then_tasks(&host, &app, None).await;
    stack.run_exports().await;
    // One to three rows on each of 12,000 days: one export run writes one file per day.
    let first = date!(1994 - 01 - 01);
    let mut text = String::from(".ingest inline into table Many <|\n");
    let mut expected = BTreeMap::new();
    let mut id = 0;
    for d in 0..FILES {
        let day = first + time::Duration::days(d);
        for r in 0..(d % 3 + 1) {
            text.push_str(&format!("{day}T{:02}:00:00Z,{id}\n", r * 5));
            id += 1;
        }
        expected.insert(
            Some((day - date!(1970 - 01 - 01)).whole_days()),
            (d % 3 + 1) as u64,
        );
    }
    stack.kusto(&text).await;
    for report in stack.run_exports().await {
        assert!(report.error.is_none(), "{report:?}");
    }
    timer_then_tasks(&host, &app, Some("2026-11-25T10:00:00+00:00")).await;
    let exported = mgmt(&stack.sim, SRC, ".show continuous-exports | project Name").await;
    let export = exported.rows[0][0].to_kusto_string();
    let files = mgmt(
        &stack.sim,
        SRC,
        &format!(".show continuous-export {export} exported-artifacts | count"),
    )
    .await;
    assert_eq!(files.rows[0][0], Value::Long(FILES), "one file per day");
    eprintln!("12,000 files: backed up in {:?}", started.elapsed());

    let restoring = Instant::now();
    let job = "r-12000";
    let state = RestoreRun::post(
        &stack,
        &app,
        &target,
        &request(job, &target, json!({})),
        Delivery::Once,
    )
    .await
    .until_final(job, Duration::from_secs(3600))
    .await;
    eprintln!(
        "12,000 files: restored {:?} in {:?}",
        state.totals,
        restoring.elapsed()
    );
    assert_eq!(state.status, JobStatus::Succeeded, "{state:#?}");
    assert_eq!(state.totals.artifacts, FILES as u64, "{:?}", state.totals);
    let many = ("Many", Some("Timestamp"));
    assert_eq!(rows_per_day(&target, DR, many).await, expected);
    assert_eq!(
        fingerprint(&target, DR, many, "").await,
        fingerprint(&stack.sim, SRC, many, "").await
    );
    let extents = mgmt(&target, DR, ".show table Many extents | count").await;
    assert_eq!(
        extents.rows[0][0],
        Value::Long(FILES),
        "each file its own ingestion"
    );
    assert_eq!(rows_per_creation_day(&target, DR, "Many").await, expected);
}
