//! What the benches that run protect against an in-process kusto-sim and Azurite share: the
//! stack (kusto-sim in this process, adx-backup pointed at it and at a fresh container), one
//! timer pass measured the same way in each (time, Kusto commands from kusto-sim's own log,
//! the process's RSS), and the clean-up. A directory module, so cargo does not take it for a
//! bench of its own.

use std::time::{Duration, Instant};

use adx_backup::app::App;
use adx_backup::protect::{self, ProtectPlan};
use adx_backup::settings::{Env, Settings};
use futures::{FutureExt, StreamExt, TryStreamExt, stream};
use kusto_sim::{Config, Server};

const TOKEN: &str = "bench-dev-token";
/// Tasks run side by side, as the Functions host's queue workers would.
const TASKS_AT_ONCE: usize = 8;

/// A `/proc/self/status` field in MB (VmRSS now, VmHWM the peak since the last reset).
pub fn status_mb(field: &str) -> f64 {
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

/// kusto-sim with database `db` (its scheduler off: the bench runs exports itself) and an
/// App on Azurite's `AZURITE_CONNECTION_STRING`, in a container and task queue named
/// `bench-<label>-<random>`. Backfill is off: these benches measure protect's passes, and a
/// backfill is a queue message none of them runs (`benches/backfill_plan.rs` measures it).
pub async fn start(db: &str, label: &str) -> (Server, App) {
    let blob = std::env::var("AZURITE_BLOB_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:10000/devstoreaccount1".into());
    let conn = std::env::var("AZURITE_CONNECTION_STRING")
        .unwrap_or_else(|_| "UseDevelopmentStorage=true".into());
    let mut config = Config::new(&[db], &blob);
    config.scheduler_tick = None;
    config.required_token = Some(TOKEN.into());
    let sim = Server::start(config).await.expect("start kusto-sim");
    let id = uuid::Uuid::new_v4().simple().to_string();
    let env = Env::from_pairs([
        ("AdxBackup__ClusterUri", sim.url()),
        ("AdxBackup__KustoCredential", "devtoken".into()),
        ("AdxBackup__KustoDevToken", TOKEN.into()),
        ("AdxBackup__Databases", db.into()),
        ("BackupStorage", conn),
        (
            "AdxBackup__Container",
            format!("bench-{label}-{}", &id[..16]),
        ),
        ("AdxBackup__TaskQueue", format!("bench-tasks-{}", &id[..16])),
        ("AdxBackup__LogFormat", "text".into()),
        ("AdxBackup__Backfill", "off".into()),
    ]);
    let app = App::new(Settings::load(&env).expect("settings")).expect("app");
    app.tasks
        .ensure_exists()
        .await
        .expect("create the task queue (is Azurite running? scripts/azurite.sh start)");
    (sim, app)
}

/// Deletes the bench's container and task queue.
pub async fn clean_up(app: &App) {
    app.blobs.delete_container().await.expect("clean up");
    app.tasks
        .delete_queue()
        .await
        .expect("clean up the task queue");
}

pub struct PassFigures {
    pub plan: Duration,
    pub plan_commands: usize,
    pub checks: usize,
    pub harvests: usize,
    /// New artifacts the pass's tasks appended to the catalogs, as the tasks report them.
    pub harvested: usize,
    pub tasks: Duration,
    pub task_commands: usize,
    pub rss_before_mb: f64,
    pub peak_rss_mb: f64,
}

/// One timer pass: plan, then every task it picked; the task queue stays empty throughout.
pub async fn one_pass(sim: &Server, app: &App) -> PassFigures {
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
    let harvested = run_tasks(app, &plan).await;
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
        harvested,
        tasks,
        task_commands: sim.state().commands().len() - planned,
        rss_before_mb,
        peak_rss_mb: status_mb("VmHWM"),
    }
}

/// Runs the plan's tasks, as many at once as the host's workers would; returns how many
/// artifacts they harvested.
async fn run_tasks(app: &App, plan: &ProtectPlan) -> usize {
    let checks = plan
        .tables
        .iter()
        .map(|t| protect::protect_table(app, t).boxed());
    let harvests = plan
        .harvests
        .iter()
        .map(|h| protect::harvest_table(app, h).boxed());
    let outcomes: Vec<_> = stream::iter(checks.chain(harvests))
        .buffer_unordered(TASKS_AT_ONCE)
        .try_collect()
        .await
        .expect("every task succeeds");
    outcomes.iter().map(|o| o.harvested).sum()
}
