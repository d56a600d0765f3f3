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

mod support;

use std::time::Instant;

use support::PassFigures;

const DB: &str = "Sales";

fn table(i: usize) -> String {
    format!("T{i:05}")
}

fn print(label: &str, n: usize, f: &PassFigures) {
    let commands = f.plan_commands + f.task_commands;
    println!(
        "{label}: plan {:.2} s, {} command(s); {} check(s) + {} harvest(s) in {:.2} s, {} command(s), {} artifact(s) harvested; {commands} in all = {:.4} per table; RSS {:.0} MB before, peak {:.0} MB",
        f.plan.as_secs_f64(),
        f.plan_commands,
        f.checks,
        f.harvests,
        f.tasks.as_secs_f64(),
        f.task_commands,
        f.harvested,
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
    let (sim, app) = support::start(DB, "protect").await;

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
    let first = support::one_pass(&sim, &app).await;
    print("first pass (creates every object)", n, &first);
    sim.state().run_continuous_exports_now().await;
    let cursors = support::one_pass(&sim, &app).await;
    print("second pass (records every StartCursor)", n, &cursors);

    // The pass after one that queued every table reads every table's state, once, to see
    // those tasks finished; from then on only the few tasks of the pass before are read.
    let settling = support::one_pass(&sim, &app).await;
    print(
        "third pass (sees the second pass's tasks done)",
        n,
        &settling,
    );
    let steady = support::one_pass(&sim, &app).await;
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
    let after = support::one_pass(&sim, &app).await;
    print(
        &format!("after a change to {} table(s)", changed.len()),
        n,
        &after,
    );
    support::clean_up(&app).await;
}
