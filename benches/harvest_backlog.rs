//! Harvest of a 14-day backlog (issue 14): the function app was down for 14 days, as long as
//! Kusto keeps a continuous export's `exported-artifacts`, while every table's export kept
//! running every interval (5 minutes by default) and writing a few files per run. Then the
//! timer fires again: how many protect passes, how long, how many Kusto commands and how
//! much memory until every catalog holds every artifact, once?
//!
//! kusto-sim runs in this process; its exports are real runs (rows ingested, the window
//! exported as parquet files to Azurite, the files listed in `exported-artifacts`), on its
//! clock moved one interval per run. The tables are protected and harvested once before the
//! outage, so the catch-up starts from a watermark as after any normal pass. Each run ingests
//! one row for each of the last `files-per-run` days (late data), so the export writes one
//! file per day folder. The check reads the catalogs back with `Catalog::segments`, an
//! independent reader, and compares them with what the runs reported: every artifact once,
//! with its rows.
//!
//!   scripts/azurite.sh start
//!   cargo bench --bench harvest_backlog -- [tables] [files-per-run] [days]   (default 3 3 14)

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use adx_backup::app::App;
use adx_backup::ids::{DatabaseName, TableName};
use adx_backup::storage::catalog::Catalog;
use futures::TryStreamExt;
use futures::future::join_all;
use kusto_sim::Server;
use support::PassFigures;
use time::OffsetDateTime;

const DB: &str = "Sales";
/// More passes than this without catching up is a failure, not a figure.
const MAX_PASSES: usize = 10;
/// kusto-sim's clock counts 100 ns ticks.
const TICKS_PER_SECOND: i64 = 10_000_000;

fn table(i: usize) -> String {
    format!("T{i:02}")
}

fn export(i: usize) -> String {
    format!("adxbk_{}", table(i))
}

/// What the export runs reported for one table: the figures the catalog must match.
#[derive(Clone, Copy, Default)]
struct Seeded {
    artifacts: u64,
    rows: u64,
}

/// What the catalog of one table holds, read back segment by segment.
struct Cataloged {
    segments: u64,
    artifacts: u64,
    distinct_paths: u64,
    rows: u64,
}

async fn read_catalog(app: &App, i: usize) -> Cataloged {
    let catalog = Catalog::new(&app.blobs, &app.layout);
    let db = DatabaseName::new(DB).expect("db");
    let name = TableName::new(table(i)).expect("table");
    let mut paths = HashSet::new();
    let mut c = Cataloged {
        segments: 0,
        artifacts: 0,
        distinct_paths: 0,
        rows: 0,
    };
    let mut segments = std::pin::pin!(catalog.segments(&db, &name));
    while let Some((_, artifacts)) = segments.try_next().await.expect("read the catalog") {
        c.segments += 1;
        for a in artifacts {
            c.artifacts += 1;
            c.rows += a.rows;
            if paths.insert(a.path) {
                c.distinct_paths += 1;
            }
        }
    }
    c
}

/// One export run of every table, side by side; adds what each reported to `seeded`.
async fn run_exports(sim: &Server, seeded: &mut [Seeded]) {
    let state = sim.state();
    let reports = join_all((0..seeded.len()).map(|i| {
        let name = export(i);
        async move { state.run_continuous_export_now(DB, &name).await }
    }))
    .await;
    for (s, r) in seeded.iter_mut().zip(reports) {
        assert_eq!(r.error, None, "{}'s export ran", r.name);
        s.artifacts += r.artifacts as u64;
        s.rows += r.records;
    }
}

/// Ingests one row per day for the `days` days up to the simulator's present.
async fn ingest(sim: &Server, tables: usize, days: i64, run: u64) {
    let now = OffsetDateTime::from_unix_timestamp_nanos(i128::from(sim.state().now()) * 100)
        .expect("kusto-sim's clock");
    for i in 0..tables {
        let rows: String = (0..days)
            .map(|d| {
                let at = now - time::Duration::days(d);
                format!(
                    "\n{},{run}",
                    at.format(&time::format_description::well_known::Rfc3339)
                        .expect("format")
                )
            })
            .collect();
        sim.state()
            .mgmt(
                DB,
                &format!(".ingest inline into table {} <|{rows}", table(i)),
            )
            .await
            .expect("ingest");
    }
}

fn print(label: &str, f: &PassFigures, artifacts_commands: usize) {
    println!(
        "{label}: plan {:.2} s, {} command(s); {} check(s) + {} harvest(s) in {:.2} s, {} command(s) ({artifacts_commands} exported-artifacts); {} artifact(s) harvested ({:.0}/s); RSS {:.0} MB before, peak {:.0} MB",
        f.plan.as_secs_f64(),
        f.plan_commands,
        f.checks,
        f.harvests,
        f.tasks.as_secs_f64(),
        f.task_commands,
        f.harvested,
        f.harvested as f64 / f.tasks.as_secs_f64().max(f64::EPSILON),
        f.rss_before_mb,
        f.peak_rss_mb,
    );
}

/// One pass, with how many of its commands read `exported-artifacts`.
async fn pass(sim: &Server, app: &App) -> (PassFigures, usize) {
    let before = sim.state().commands().len();
    let figures = support::one_pass(sim, app).await;
    let artifacts_commands = sim.state().commands()[before..]
        .iter()
        .filter(|c| c.csl.contains("exported-artifacts"))
        .count();
    (figures, artifacts_commands)
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let tables = args.first().copied().unwrap_or(3);
    let files_per_run = args.get(1).copied().unwrap_or(3);
    let days = args.get(2).copied().unwrap_or(14);
    let (sim, app) = support::start(DB, "harvest").await;
    let interval = app.settings.protect.export_interval;
    let runs = days as u64 * 86_400 / interval.as_secs();
    let late_days = i64::try_from(files_per_run).expect("files per run");

    for i in 0..tables {
        sim.state()
            .mgmt(
                DB,
                &format!(".create table {} (Timestamp:datetime, Id:long)", table(i)),
            )
            .await
            .expect("create table");
    }
    // Before the outage: objects created, StartCursor recorded, one run harvested.
    let mut seeded = vec![Seeded::default(); tables];
    support::one_pass(&sim, &app).await;
    sim.state().run_continuous_exports_now().await;
    support::one_pass(&sim, &app).await;
    ingest(&sim, tables, late_days, 0).await;
    sim.state().advance_clock(interval);
    run_exports(&sim, &mut seeded).await;
    let before_outage = support::one_pass(&sim, &app).await;
    let harvested_before: u64 = seeded.iter().map(|s| s.artifacts).sum();
    assert_eq!(
        before_outage.harvested as u64, harvested_before,
        "the pass before the outage harvests its run"
    );

    // The outage: runs on the simulator's clock exactly one interval apart (the clock also
    // moves with real time, which the step takes back), so the oldest run is one interval
    // younger than Kusto's 14 days when the timer fires again.
    let step = i64::try_from(interval.as_secs()).expect("interval") * TICKS_PER_SECOND;
    let t0 = sim.state().now();
    let started = Instant::now();
    for k in 1..=runs {
        ingest(&sim, tables, late_days, k).await;
        let target = t0 + i64::try_from(k).expect("run") * step;
        let behind = target - sim.state().now();
        if behind > 0 {
            sim.state()
                .advance_clock(Duration::from_nanos(behind as u64 * 100));
        }
        run_exports(&sim, &mut seeded).await;
        if k % (runs / days as u64).max(1) == 0 {
            eprintln!(
                "seeded day {} of {days} in {:.0} s",
                k * days as u64 / runs,
                started.elapsed().as_secs_f64()
            );
        }
    }
    let seeding = started.elapsed();
    let backlog: u64 = seeded.iter().map(|s| s.artifacts).sum::<u64>() - harvested_before;
    println!(
        "backlog: {tables} table(s) x {runs} export runs ({days} days, one per {} s) x {files_per_run} file(s) = {backlog} artifacts unharvested, seeded in {:.0} s (set-up: kusto-sim exports and Azurite writes)",
        interval.as_secs(),
        seeding.as_secs_f64()
    );

    // The timer fires again: passes until every catalog holds what the runs reported.
    let expected: u64 = seeded.iter().map(|s| s.artifacts).sum();
    let mut passes = 0;
    let mut commands = 0;
    let mut catch_up = Duration::ZERO;
    let mut peak_rss_mb: f64 = 0.0;
    let rss_before_mb = support::status_mb("VmRSS");
    loop {
        passes += 1;
        let (f, artifacts_commands) = pass(&sim, &app).await;
        print(&format!("catch-up pass {passes}"), &f, artifacts_commands);
        commands += f.plan_commands + f.task_commands;
        catch_up += f.plan + f.tasks;
        peak_rss_mb = peak_rss_mb.max(f.peak_rss_mb);
        let mut cataloged = 0;
        for i in 0..tables {
            cataloged += read_catalog(&app, i).await.artifacts;
        }
        if cataloged >= expected || passes == MAX_PASSES {
            break;
        }
    }

    let mut every_once = true;
    for (i, s) in seeded.iter().enumerate() {
        let c = read_catalog(&app, i).await;
        let once =
            c.artifacts == s.artifacts && c.distinct_paths == s.artifacts && c.rows == s.rows;
        every_once &= once;
        println!(
            "{}: exports reported {} artifacts ({} rows); catalog holds {} in {} segment(s), {} distinct paths, {} rows: {}",
            table(i),
            s.artifacts,
            s.rows,
            c.artifacts,
            c.segments,
            c.distinct_paths,
            c.rows,
            if once { "each once" } else { "MISMATCH" }
        );
    }
    println!(
        "caught up: {backlog} artifacts in {passes} pass(es), {:.2} s ({:.0} artifacts/s), {commands} Kusto command(s); RSS {rss_before_mb:.0} MB before, peak {peak_rss_mb:.0} MB",
        catch_up.as_secs_f64(),
        backlog as f64 / catch_up.as_secs_f64(),
    );
    println!(
        "check: {}",
        if every_once {
            "every artifact cataloged exactly once"
        } else {
            "FAILED: a catalog differs from what the exports reported"
        }
    );
    support::clean_up(&app).await;
    assert!(every_once, "every artifact cataloged exactly once");
}
