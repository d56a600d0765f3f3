//! Chaos: the whole pipeline — protect, backfill of history, continuous export, harvest,
//! reconcile of rows deleted in the source, and a restore into a second cluster — driven through the real queue path (the handler process
//! under the host emulator) while faults are injected at random from one seed:
//!
//! - the handler process killed (SIGKILL) at a random moment of a pass, then started again;
//!   the messages it was working on come back, as they do when the host's worker dies;
//! - messages delivered twice at once, and late copies delivered seconds after the original
//!   was settled;
//! - rows deleted in the source after the backup verified, which reconcile must carry into
//!   the backup before the restore;
//! - kusto-sim: 10 % of requests throttled (429), 5 % transient 503, slow operations, an export
//!   memory budget the history's first batch exceeds, continuous-export runs that write their
//!   files and then fail, and extent merges on the target while it ingests;
//! - storage: a proxy in front of Azurite answers some of the app's requests 503 before they
//!   reach storage, and some 500 *after* storage did the work (a timeout the client cannot
//!   tell from a failure);
//! - a message that is not a task, which must end in the poison queue and nowhere else.
//!
//! Each run ends by comparing, per table and day, the source's rows with what verify finds in
//! the catalog and with the restored rows, row for row (so nothing lost, nothing doubled), and
//! checks that no valid task was poisoned and that the restore ended without a failed file.
//! A failing run panics with its seed and its event trace. The fault *decisions* come from the
//! seed in the order they are drawn; the processes' timing is the machine's, so a seed replays
//! the same plan of faults, not the same interleaving.
//!
//! `make test` runs two seeds; `make chaos RUNS=50 SEED=1` runs many (the ignored test).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use adx_backup::app::App;
use adx_backup::ids::{DatabaseName, JobId, TableName, TableRef};
use adx_backup::restore::{self, state::JobStatus};
use adx_backup::storage::TaskQueue;
use adx_backup::verify::{self, Outcome};
use kusto_sim::faults::FaultConfig;
use serde_json::json;
use tokio::sync::RwLock;

use crate::harness::host::{FunctionsHost, Shape};
use crate::harness::proxy::{FaultRates, Faulty};
use crate::harness::restore::{query, restore_requests};
use crate::harness::stack::{Stack, azurite_blob_endpoint, azurite_queue_endpoint};
use crate::restore::{DR, SRC, request};

const TABLES: [&str; 3] = ["Clicks", "Orders", "Audit"];
/// The message that is not a task.
const GARBAGE: &str = "chaos: this is not a task";
/// A run that has not ended by then is stuck.
const BACKUP_DEADLINE: Duration = Duration::from_secs(240);
const RESTORE_DEADLINE: Duration = Duration::from_secs(240);

/// What one run did, summed over runs for the closing line.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    kills: u64,
    twice: u64,
    late: u64,
    kusto_faults: u64,
    storage_busy: u64,
    storage_lost: u64,
    export_runs_failed: u64,
    merges: u64,
    rows: u64,
}

impl Tally {
    fn faults(&self) -> u64 {
        self.kills
            + self.twice
            + self.late
            + self.kusto_faults
            + self.storage_busy
            + self.storage_lost
            + self.export_runs_failed
            + self.merges
    }

    fn add(&mut self, o: Tally) {
        self.kills += o.kills;
        self.twice += o.twice;
        self.late += o.late;
        self.kusto_faults += o.kusto_faults;
        self.storage_busy += o.storage_busy;
        self.storage_lost += o.storage_lost;
        self.export_runs_failed += o.export_runs_failed;
        self.merges += o.merges;
        self.rows += o.rows;
    }
}

/// The seed's choices and what happened, in order.
struct Chaos {
    seed: u64,
    rng: Mutex<fastrand::Rng>,
    trace: Mutex<Vec<String>>,
    tally: Mutex<Tally>,
    started: Instant,
}

impl Chaos {
    fn new(seed: u64) -> Chaos {
        Chaos {
            seed,
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            trace: Mutex::default(),
            tally: Mutex::default(),
            started: Instant::now(),
        }
    }

    fn chance(&self, p: f64) -> bool {
        self.rng.lock().unwrap().f64() < p
    }

    fn below(&self, n: u64) -> u64 {
        self.rng.lock().unwrap().u64(0..n)
    }

    fn event(&self, what: String) {
        let at = self.started.elapsed().as_secs_f64();
        self.trace.lock().unwrap().push(format!("{at:8.2}s {what}"));
    }

    fn count(&self, f: impl FnOnce(&mut Tally)) {
        f(&mut self.tally.lock().unwrap());
    }

    /// Panics with the seed and the trace: what a failing run must print to be replayed.
    fn fail(&self, why: String) -> ! {
        let trace = self.trace.lock().unwrap().join("\n");
        panic!(
            "chaos seed {} failed: {why}\nrerun: make chaos SEED={} RUNS=1\nevent trace:\n{trace}",
            self.seed, self.seed
        );
    }
}

/// The handler process, replaced when it is killed.
struct Worker {
    host: RwLock<Arc<FunctionsHost>>,
    settings: Vec<(String, String)>,
}

impl Worker {
    async fn current(&self) -> Arc<FunctionsHost> {
        self.host.read().await.clone()
    }

    async fn kill_and_restart(&self) {
        let mut host = self.host.write().await;
        host.kill();
        *host = Arc::new(FunctionsHost::start(&self.settings).await);
    }
}

/// One run: returns what it injected, or panics with the seed and trace.
async fn run(seed: u64) -> Tally {
    let chaos = Chaos::new(seed);
    let rates = FaultRates {
        seed,
        busy_before: 0.02,
        lost_after: 0.02,
    };
    let blob = Faulty::start(&azurite_blob_endpoint(), rates).await;
    let queue = Faulty::start(
        &azurite_queue_endpoint(),
        FaultRates {
            seed: seed.wrapping_add(1),
            ..rates
        },
    )
    .await;
    // The clusters reach storage through the proxies too (the app hands them its URLs), but
    // their requests pass untouched.
    let mut stack = Stack::start_at(SRC, &blob.endpoint()).await;
    let target = Stack::target_cluster_at(DR, &blob.endpoint(), &azurite_queue_endpoint()).await;
    for (key, value) in [
        ("AdxBackup__Backfill", "on"),
        ("AdxBackup__BackfillPollSeconds", "1"),
        ("AdxBackup__BackfillBatchMaxRows", "1000"),
        ("AdxBackup__BackfillSplitFloorRows", "4"),
        ("AdxBackup__RestoreTargets", &target.url()),
        ("AdxBackup__RestoreChunkBlobs", "3"),
        ("AdxBackup__RestorePollSeconds", "1"),
        ("AdxBackup__LagAlertSeconds", "315360000"),
        ("AdxBackup__Reconcile", "apply"),
        // A batch start claimed by a killed worker waits for the claim's lease, twice this.
        ("AdxBackup__KustoTimeoutSeconds", "10"),
    ] {
        stack.set(key, value);
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    stack.set(
        "AdxBackup__RestoreQueue",
        &format!("e2e-chaos-{}", &id[..20]),
    );
    // The handler's storage goes through the faulty proxies; the test's own view goes
    // straight to Azurite.
    let account = |blob: &str, queue: &str| {
        format!(
            "AccountName={};AccountKey={};BlobEndpoint={blob};QueueEndpoint={queue}",
            kusto_sim::config::AZURITE_ACCOUNT,
            kusto_sim::config::AZURITE_KEY,
        )
    };
    stack.set(
        "BackupStorage",
        &account(&blob.endpoint(), &queue.endpoint()),
    );
    let handler_settings = stack.settings.clone();
    stack.set(
        "BackupStorage",
        &account(&azurite_blob_endpoint(), &azurite_queue_endpoint()),
    );
    let app = stack.app();

    let history = seed_history(&chaos, &stack).await;
    chaos.event(format!(
        "history: {history} rows in {} tables",
        TABLES.len()
    ));
    let export_budget = 2 + chaos.below(6);
    let failing_export = format!("adxbk_{}", TABLES[usize::try_from(chaos.below(3)).unwrap()]);
    let kusto = FaultConfig {
        seed,
        export_max_rows: Some(export_budget * 10),
        throttle_rate: 0.10,
        transient_rate: 0.05,
        operation_latency_ms: chaos.below(300),
        fail_continuous_exports_after_write: vec![failing_export.clone()],
        ..FaultConfig::default()
    };
    chaos.event(format!("kusto faults: {kusto:?}"));
    stack.sim.state().set_faults(kusto.clone());
    target.state().set_faults(FaultConfig {
        seed: seed.wrapping_add(2),
        throttle_rate: 0.10,
        transient_rate: 0.05,
        ..FaultConfig::default()
    });

    app.ensure_storage().await.unwrap();
    app.tasks.send(GARBAGE, None).await.unwrap();
    let poison = app.tasks.poison_queue().unwrap();
    let worker = Worker {
        host: RwLock::new(Arc::new(FunctionsHost::start(&handler_settings).await)),
        settings: handler_settings,
    };

    // Backup: the timer, the exports and the task queue, until every table verifies.
    let started = Instant::now();
    let mut live = 0;
    let mut pass = 0u32;
    loop {
        pass += 1;
        if pass % 3 == 1 {
            fire(&chaos, &worker, "protect").await;
        }
        if pass == 4 {
            // The continuous exports recover; rows keep arriving.
            stack.sim.state().set_faults(FaultConfig {
                fail_continuous_exports_after_write: Vec::new(),
                seed: seed.wrapping_add(3),
                ..kusto.clone()
            });
            chaos.event(format!("{failing_export}: runs succeed again"));
        }
        if (2..=5).contains(&pass) {
            live += seed_live(&chaos, &stack, pass).await;
        }
        for report in stack.run_exports().await {
            if let Some(e) = report.error {
                chaos.count(|t| t.export_runs_failed += 1);
                chaos.event(format!("continuous export run failed: {e:?}"));
            }
        }
        work_with_kills(&chaos, &worker, &app.tasks, "tasks", "task", &poison).await;
        if pass >= 6 && settled(&chaos, &app, started, "the backup").await {
            break;
        }
    }
    chaos.event(format!("backup verified after {pass} passes"));

    // Rows deleted in the source: the verify timer finds the drift, reconcile replaces the
    // days in the backup, until every table verifies again.
    let deleted = delete_some(&chaos, &stack).await;
    chaos.event(format!("deleted {deleted} rows in the source"));
    let started = Instant::now();
    let mut pass = 0u32;
    loop {
        pass += 1;
        if pass % 4 == 1 {
            fire(&chaos, &worker, "verify").await;
        }
        work_with_kills(&chaos, &worker, &app.tasks, "tasks", "task", &poison).await;
        if pass >= 2 && settled(&chaos, &app, started, "reconcile").await {
            break;
        }
    }
    chaos.event(format!("reconciled after {pass} passes"));

    // Restore into the second cluster, through the restore queue.
    let job = format!("chaos-{seed}");
    let requests = restore_requests(&app).await;
    requests
        .send(&request(&job, &target, json!({})), None)
        .await
        .unwrap();
    let job_id = JobId::new(&job).unwrap();
    let started = Instant::now();
    let final_job = loop {
        work_with_kills(&chaos, &worker, &requests, "restore", "request", &poison).await;
        work_with_kills(&chaos, &worker, &app.tasks, "tasks", "task", &poison).await;
        target.state().run_queued_ingestion_now().await;
        if chaos.chance(0.5) {
            let merged = target.state().merge_extents_now().len() as u64;
            chaos.count(|t| t.merges += merged);
        }
        if let Ok(state) = restore::load_job(&app, &job_id).await
            && state.status.is_final()
        {
            break state;
        }
        if started.elapsed() > RESTORE_DEADLINE {
            chaos.fail(format!(
                "restore {job} did not end within {RESTORE_DEADLINE:?}: {:?}",
                restore::load_job(&app, &job_id).await
            ));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    if final_job.status != JobStatus::Succeeded || !final_job.failed.is_empty() {
        chaos.fail(format!("restore ended {final_job:#?}"));
    }

    // Source, catalog (verify, above) and restored rows, per table and day.
    for table in TABLES {
        let csl = format!("{table} | project Timestamp, Id, S");
        let source = query(&stack.sim, SRC, &csl).await;
        let restored = query(&target, DR, &csl).await;
        if source != restored {
            chaos.fail(format!(
                "{table}: restored rows differ from the source's\n{}",
                per_day_difference(&source, &restored)
            ));
        }
    }
    // The message that is not a task, once or more (a late copy is a second message).
    let poisoned = drain(&poison).await;
    if poisoned.is_empty() || poisoned.iter().any(|p| p != GARBAGE) {
        chaos.fail(format!(
            "the poison queue must hold exactly the message that is not a task: {poisoned:?}"
        ));
    }

    let counts_blob = blob.counts();
    let counts_queue = queue.counts();
    let kusto_faults = stack.sim.state().faults_injected() + target.state().faults_injected();
    chaos.count(|t| {
        t.storage_busy += counts_blob.busy_before + counts_queue.busy_before;
        t.storage_lost += counts_blob.lost_after + counts_queue.lost_after;
        t.kusto_faults += kusto_faults;
        t.rows += history + live;
    });
    *chaos.tally.lock().unwrap()
}

/// History in every table before protect: a few days, each ingested in a few separate
/// ingestions a simulated minute apart (so backfill has batches to split).
async fn seed_history(chaos: &Chaos, stack: &Stack) -> u64 {
    let mut total = 0;
    for (t, table) in TABLES.iter().enumerate() {
        stack
            .kusto(&format!(
                ".create table {table} (Timestamp:datetime, Id:long, S:string)"
            ))
            .await;
        let days = 3 + chaos.below(5);
        for ingestion in 0..(2 + chaos.below(3)) {
            let mut rows = Vec::new();
            for d in 0..days {
                for r in 0..chaos.below(4) {
                    let id = (t as u64) * 1_000_000 + ingestion * 10_000 + d * 100 + r;
                    rows.push(format!(
                        "2026-02-{:02}T0{r}:00:00Z,{id},\"h {id}, a\"\"b\"",
                        d + 1
                    ));
                }
            }
            if rows.is_empty() {
                continue;
            }
            total += rows.len() as u64;
            ingest(stack, table, &rows).await;
            stack.sim.state().advance_clock(Duration::from_secs(60));
        }
    }
    total
}

/// The timer-triggered function `function` firing, as the host fires it.
async fn fire(chaos: &Chaos, worker: &Worker, function: &str) {
    let v = worker
        .current()
        .await
        .invoke_timer(function, "timer", Some("2026-11-25T10:00:00Z"), false)
        .await;
    chaos.event(format!("{function} timer: succeeded={}", v.succeeded()));
}

/// The end of a pass of `stage`: true when the task queue is empty and every table
/// verifies; fails the run once `stage` has taken longer than [`BACKUP_DEADLINE`]; else
/// waits a moment for the next pass.
async fn settled(chaos: &Chaos, app: &App, started: Instant, stage: &str) -> bool {
    if app.tasks.approximate_count().await.unwrap() == 0 {
        let pending = unverified(app).await;
        if pending.is_empty() {
            return true;
        }
        chaos.event(format!("{stage}: not yet verified: {pending:?}"));
    }
    if started.elapsed() > BACKUP_DEADLINE {
        let pending = unverified(app).await;
        chaos.fail(format!(
            "{stage} did not complete within {BACKUP_DEADLINE:?}: {pending:?}"
        ));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    false
}

async fn ingest(stack: &Stack, table: &str, rows: &[String]) {
    stack
        .kusto(&format!(
            ".ingest inline into table {table} <|\n{}",
            rows.join("\n")
        ))
        .await;
}

/// Deletes a few rows of every table (those whose id ends in a digit the seed picks) and
/// returns how many went.
async fn delete_some(chaos: &Chaos, stack: &Stack) -> u64 {
    let digit = chaos.below(10);
    let mut deleted = 0;
    for table in TABLES {
        let csl = format!("{table} | where Id % 10 == {digit} | project Id");
        deleted += query(&stack.sim, SRC, &csl).await.len() as u64;
        stack
            .kusto(&format!(
                ".delete table {table} records <| {table} | where Id % 10 == {digit}"
            ))
            .await;
    }
    deleted
}

/// Rows arriving after protect started, for the continuous exports.
async fn seed_live(chaos: &Chaos, stack: &Stack, pass: u32) -> u64 {
    let mut total = 0;
    for (t, table) in TABLES.iter().enumerate() {
        let n = chaos.below(5);
        let rows: Vec<String> = (0..n)
            .map(|r| {
                let id = (t as u64) * 1_000_000 + 900_000 + u64::from(pass) * 100 + r;
                format!("2026-03-{:02}T1{r}:00:00Z,{id},live {id}", pass)
            })
            .collect();
        if rows.is_empty() {
            continue;
        }
        total += n;
        ingest(stack, table, &rows).await;
    }
    stack.sim.state().advance_clock(Duration::from_secs(60));
    total
}

/// Tables whose backup does not verify yet (verify compares the catalog's rows per day with
/// the source's).
async fn unverified(app: &App) -> Vec<String> {
    let mut pending = Vec::new();
    for table in TABLES {
        let t = TableRef {
            database: DatabaseName::new(SRC).unwrap(),
            table: TableName::new(table).unwrap(),
        };
        match verify::verify_table(app, &t, false).await {
            Ok(v) if v.outcome == Outcome::Ok => {}
            Ok(v) => pending.push(format!("{table}: {:?}", v.outcome)),
            Err(e) => pending.push(format!("{table}: {e}")),
        }
    }
    pending
}

/// One pass over `queue` as several workers at once, with the faults: a message invoked
/// twice at once, a late copy sent for a few seconds later, and the handler killed at a
/// random moment of the pass (then started again). Success deletes a message; failure makes
/// it visible again a second later, and on the fifth failure it moves to `poison`, as the
/// host does.
async fn work_with_kills(
    chaos: &Chaos,
    worker: &Worker,
    queue: &TaskQueue,
    function: &str,
    binding: &str,
    poison: &TaskQueue,
) {
    let batch = queue.receive(16, Duration::from_secs(30)).await.unwrap();
    if batch.is_empty() {
        return;
    }
    let kill_after = chaos
        .chance(0.15)
        .then(|| Duration::from_millis(chaos.below(400)));
    let plans: Vec<(bool, Option<u64>)> = batch
        .iter()
        .map(|_| {
            (
                chaos.chance(0.25),
                chaos.chance(0.1).then(|| 1 + chaos.below(3)),
            )
        })
        .collect();
    let runs = batch
        .iter()
        .zip(plans)
        .map(|(msg, (twice, late))| async move {
            let text = match &msg.text {
                Ok(text) => text.clone(),
                Err(undecodable) => undecodable.raw.clone(),
            };
            if twice {
                chaos.count(|t| t.twice += 1);
                chaos.event(format!(
                    "{function}: delivered twice at once: {}",
                    short(&text)
                ));
            }
            if let Some(secs) = late {
                chaos.count(|t| t.late += 1);
                chaos.event(format!(
                    "{function}: a late copy in {secs} s: {}",
                    short(&text)
                ));
                queue
                    .send(&text, Some(Duration::from_secs(secs)))
                    .await
                    .unwrap();
            }
            let host = worker.current().await;
            let copies = if twice { 2 } else { 1 };
            let invocations = (0..copies).map(|_| {
                host.invoke_queue(function, binding, &text, msg.dequeue_count, Shape::Host)
            });
            let verdicts = futures::future::join_all(invocations).await;
            if verdicts.iter().all(|v| v.succeeded()) {
                queue.delete(&msg.id, &msg.pop_receipt).await.unwrap();
            } else if msg.dequeue_count >= 5 {
                chaos.event(format!("{function}: poisoned: {}", short(&text)));
                poison.ensure_exists().await.unwrap();
                poison.send(&text, None).await.unwrap();
                queue.delete(&msg.id, &msg.pop_receipt).await.unwrap();
            } else {
                // The host makes a failed message visible again after host.json's
                // visibilityTimeout (30 s); a second keeps runs short and is still harsher.
                queue
                    .update_visibility(&msg.id, &msg.pop_receipt, Duration::from_secs(1))
                    .await
                    .unwrap();
            }
        });
    let killer = async {
        if let Some(after) = kill_after {
            tokio::time::sleep(after).await;
            chaos.count(|t| t.kills += 1);
            chaos.event(format!(
                "{function}: handler killed {after:?} into the pass"
            ));
            worker.kill_and_restart().await;
        }
    };
    futures::join!(futures::future::join_all(runs), killer);
}

fn short(text: &str) -> String {
    text.chars().take(160).collect()
}

/// Every message left on `queue`, taken off it.
async fn drain(queue: &TaskQueue) -> Vec<String> {
    let mut out = Vec::new();
    if queue.ensure_exists().await.is_err() {
        return out;
    }
    loop {
        let batch = queue.receive(32, Duration::from_secs(30)).await.unwrap();
        if batch.is_empty() {
            return out;
        }
        for msg in batch {
            out.push(msg.text.clone().unwrap_or_else(|e| e.raw.clone()));
            queue.delete(&msg.id, &msg.pop_receipt).await.unwrap();
        }
    }
}

/// Which days lost or gained rows, for a failing run's message.
fn per_day_difference(source: &[String], restored: &[String]) -> String {
    let day = |row: &String| {
        row.chars()
            .skip_while(|c| !c.is_ascii_digit())
            .take(10)
            .collect::<String>()
    };
    let mut counts: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for r in source {
        counts.entry(day(r)).or_default().0 += 1;
    }
    for r in restored {
        counts.entry(day(r)).or_default().1 += 1;
    }
    counts
        .iter()
        .filter(|(_, (s, r))| s != r)
        .map(|(d, (s, r))| format!("{d}: source {s} rows, restored {r}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs `runs` seeds from `first`, one after another, and prints the closing line.
async fn runs(first: u64, runs: u64) -> Tally {
    let mut total = Tally::default();
    for seed in first..first + runs {
        let t = run(seed).await;
        eprintln!(
            "chaos seed {seed}: {} faults injected, {} rows: {t:?}",
            t.faults(),
            t.rows
        );
        total.add(t);
    }
    let line = format!(
        "chaos: {runs} runs (seeds {first}..{}), {} faults injected ({} kills, {} doubled, {} late, {} Kusto 429/503, {} storage 503 before, {} storage 500 after, {} failed export runs, {} extent merges), {} rows through backup and restore",
        first + runs - 1,
        total.faults(),
        total.kills,
        total.twice,
        total.late,
        total.kusto_faults,
        total.storage_busy,
        total.storage_lost,
        total.export_runs_failed,
        total.merges,
        total.rows
    );
    println!("{line}");
    if let Some(path) = std::env::var_os("ADXBACKUP_CHAOS_SUMMARY") {
        std::fs::write(path, format!("{line}\n")).unwrap();
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_run_of_two_seeds_loses_and_doubles_nothing() {
    let t = runs(1, 2).await;
    assert!(
        t.kills + t.twice + t.late > 0 && t.kusto_faults > 0,
        "{t:?}"
    );
}

/// `make chaos`: CHAOS_RUNS seeds (default 50) from CHAOS_SEED (default 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: make chaos"]
async fn many_runs() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    runs(env("CHAOS_SEED", 1), env("CHAOS_RUNS", 50)).await;
}
