//! protect over many tables, in kusto-sim (in process) and Azurite: what one pass costs once
//! every table is protected, and after a change to 1 % of them. Prints, per pass, the plan's
//! time and commands, the tasks it picked and their commands, and the process's peak RSS
//! during the pass (kusto-sim's tables live in the same process: the RSS before the pass is
//! printed beside it).
//!
//! Backfill is off (`AdxBackup__Backfill=off`): the bench measures protect's plan and
//! per-table work, not the history's backfill (`benches/backfill_plan.rs` does). With it on, the
//! pass that records every StartCursor would queue one backfill message per table, none of
//! which the bench runs; the Kusto commands of every pass are the same either way (asking for
//! a backfill is a queue message, not a command). After every pass the bench checks the task
//! queue is still empty, so nothing piles up between passes.
//!
//!   scripts/azurite.sh start
//!   cargo bench --bench protect_scale -- [tables]   (default 10000)

use std::time::{Duration, Instant};

use adx_backup::app::App;
use adx_backup::protect::{self, ProtectPlan};
use adx_backup::settings::{Env, Settings};
use futures::{FutureExt, StreamExt, TryStreamExt, stream};
use kusto_sim::{Config, Server};

const DB: &str = "Sales";
const TOKEN: &str = "bench-dev-token";
/// Tasks run side by side, as the Functions host's queue workers would.
const TASKS_AT_ONCE: usize = 8;

fn status_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Resets the kernel's peak-RSS mark (VmHWM), so the next reading is this pass's peak.
fn reset_peak_rss() {
    // Best effort: without it the peak printed is the process's, which can only be higher.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn table(i: usize) -> String {
    format!("T{i:05}")
}

struct PassFigures {
    plan: Duration,
    plan_commands: usize,
    checks: usize,
    harvests: usize,
    tasks: Duration,
    task_commands: usize,
    rss_before_mb: f64,
    peak_rss_mb: f64,
}

/// One timer pass: plan, then every task it picked; the task queue stays empty throughout.
async fn one_pass(sim: &Server, app: &App) -> PassFigures {
    reset_peak_rss();
    let rss_before_mb = status_mb("VmRSS");
    let before = sim.state().commands().len();
    let started = Instant::now();
    let plan = protect::plan(app, false, protect::Delivery::Inline)
        .await
        .expect("plan");
    let plan_time = started.elapsed();
    let planned = sim.state().commands().len();
    let started = Instant::now();
    run_tasks(app, &plan).await;
    let tasks = started.elapsed();
    let queued = app
        .tasks
        .approximate_count()
        .await
        .expect("count the task queue");
    assert_eq!(queued, 0, "a pass left task messages queued");
    PassFigures {
        plan: plan_time,
        plan_commands: planned - before,
        checks: plan.tables.len(),
        harvests: plan.harvests.len(),
        tasks,
        task_commands: sim.state().commands().len() - planned,
        rss_before_mb,
        peak_rss_mb: status_mb("VmHWM"),
    }
}

async fn run_tasks(app: &App, plan: &ProtectPlan) {
    let checks = plan
        .tables
        .iter()
        .map(|t| protect::protect_table(app, t).boxed());
    let harvests = plan
        .harvests
        .iter()
        .map(|h| protect::harvest_table(app, h).boxed());
    stream::iter(checks.chain(harvests))
        .buffer_unordered(TASKS_AT_ONCE)
        .try_collect::<Vec<_>>()
        .await
        .expect("every task succeeds");
}

fn print(label: &str, n: usize, f: &PassFigures) {
    let commands = f.plan_commands + f.task_commands;
    println!(
        "{label}: plan {:.2} s, {} command(s); {} check(s) + {} harvest(s) in {:.2} s, {} command(s); {commands} in all = {:.4} per table; RSS {:.0} MB before, peak {:.0} MB",
        f.plan.as_secs_f64(),
        f.plan_commands,
        f.checks,
        f.harvests,
        f.tasks.as_secs_f64(),
        f.task_commands,
        commands as f64 / n as f64,
        f.rss_before_mb,
        f.peak_rss_mb,
    );
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let blob = std::env::var("AZURITE_BLOB_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:10000/devstoreaccount1".into());
    let conn = std::env::var("AZURITE_CONNECTION_STRING")
        .unwrap_or_else(|_| "UseDevelopmentStorage=true".into());
    let mut config = Config::new(&[DB], &blob);
    config.scheduler_tick = None;
    config.required_token = Some(TOKEN.into());
    let sim = Server::start(config).await.expect("start kusto-sim");
    let id = uuid::Uuid::new_v4().simple().to_string();
    let env = Env::from_pairs([
        ("AdxBackup__ClusterUri", sim.url()),
        ("AdxBackup__KustoCredential", "devtoken".into()),
        ("AdxBackup__KustoDevToken", TOKEN.into()),
        ("AdxBackup__Databases", DB.into()),
        ("BackupStorage", conn),
        (
            "AdxBackup__Container",
            format!("bench-protect-{}", &id[..16]),
        ),
        ("AdxBackup__TaskQueue", format!("bench-tasks-{}", &id[..16])),
        ("AdxBackup__LogFormat", "text".into()),
        ("AdxBackup__Backfill", "off".into()),
    ]);
    let app = App::new(Settings::load(&env).expect("settings")).expect("app");
    app.tasks
        .ensure_exists()
        .await
        .expect("create the task queue");

    let started = Instant::now();
    for i in 0..n {
        sim.state()
            .mgmt(
                DB,
                &format!(".create table {} (Timestamp:datetime, Id:long)", table(i)),
            )
            .await
            .expect("create table");
    }
    println!(
        "{n} tables created in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let first = one_pass(&sim, &app).await;
    print("first pass (creates every object)", n, &first);
    sim.state().run_continuous_exports_now().await;
    let cursors = one_pass(&sim, &app).await;
    print("second pass (records every StartCursor)", n, &cursors);

    // The pass after one that queued every table reads every table's state, once, to see
    // those tasks finished; from then on only the few tasks of the pass before are read.
    let settling = one_pass(&sim, &app).await;
    print(
        "third pass (sees the second pass's tasks done)",
        n,
        &settling,
    );
    let steady = one_pass(&sim, &app).await;
    print("steady pass (nothing changed)", n, &steady);

    // 1 %: half of it gets a column, the other half rows its export then writes out.
    let changed: Vec<usize> = (0..n).step_by(100).collect();
    for (k, i) in changed.iter().enumerate() {
        let name = table(*i);
        if k % 2 == 0 {
            sim.state()
                .mgmt(DB, &format!(".alter-merge table {name} (Extra:string)"))
                .await
                .expect("add a column");
        } else {
            sim.state()
                .mgmt(
                    DB,
                    &format!(".ingest inline into table {name} <|\n2026-03-01T00:00:00Z,{i}"),
                )
                .await
                .expect("ingest");
            let run = sim
                .state()
                .run_continuous_export_now(DB, &format!("adxbk_{name}"))
                .await;
            assert_eq!(run.error, None, "{name}'s export ran");
        }
    }
    let after = one_pass(&sim, &app).await;
    print(
        &format!("after a change to {} table(s)", changed.len()),
        n,
        &after,
    );
    app.blobs.delete_container().await.expect("clean up");
    app.tasks
        .delete_queue()
        .await
        .expect("clean up the task queue");
}
