//! Backfill planning at scale, without a cluster: 100,000 ingestion-time bins (one per
//! extent-sized slice of history) holding one billion rows are grouped into batches of the
//! default 5,000,000 rows, and the job document is built and serialized as it is written
//! before anything fans out. Prints planning time and the process's peak memory.
//!
//!   cargo bench --bench backfill_plan -- [bins] [rows-per-bin]   (default 100000 10000)

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use adx_backup::backfill::plan::{self, Bin};
use adx_backup::backfill::{BackfillJob, Batch, Progress};
use adx_backup::ids::{Cursor, DatabaseName, JobId, TableName};
use time::OffsetDateTime;

/// Target from issue 9: planning a billion rows takes under a second and under 50 MB.
const TARGET: Duration = Duration::from_secs(1);
const TARGET_MB: f64 = 50.0;

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let bins = args.first().copied().unwrap_or(100_000);
    let per_bin = args.get(1).copied().unwrap_or(10_000);
    let max_rows = 5_000_000;
    let start = time::macros::datetime!(2020-01-01 00:00 UTC);
    let before = peak_rss_mb();

    let timer = Instant::now();
    // What the bins query answers: one row per bin, in no particular order.
    let input: Vec<Bin> = (0..bins)
        .rev()
        .map(|i| {
            let min = start + time::Duration::minutes(i as i64 * 30);
            Bin {
                min,
                max: min + time::Duration::minutes(29),
                rows: per_bin + i % 7,
            }
        })
        .collect();
    let total: u64 = input.iter().map(|b| b.rows).sum();
    let ranges = plan::batches(input, max_rows);
    let mut job = BackfillJob {
        job: JobId::new("bf-0123456789abcdef").expect("id"),
        database: DatabaseName::new("Sales").expect("name"),
        table: TableName::new("Events").expect("name"),
        start_cursor: Cursor::new("638712345678901234"),
        after_cursor: None,
        ingested_after: None,
        day: None,
        reason: "history before the continuous export's StartCursor".into(),
        created_at: OffsetDateTime::now_utc(),
        planned_rows: total,
        uncovered: None,
        next_batch: 0,
        batches: BTreeMap::new(),
        progress: Progress::default(),
        failure: None,
    };
    for range in &ranges {
        let id = job.new_batch_id().expect("id");
        job.batches.insert(id, Batch::planned(*range, None));
    }
    job.recount();
    let doc = serde_json::to_vec_pretty(&job).expect("json");
    let elapsed = timer.elapsed();
    let peak = peak_rss_mb();

    assert_eq!(job.progress.rows_planned, total);
    assert_eq!(
        job.batches.values().map(|b| b.rows).sum::<u64>(),
        total,
        "every row in exactly one batch"
    );
    println!(
        "backfill plan: {bins} bins, {total} rows -> {} batches of at most {max_rows} rows; job document {} KB",
        ranges.len(),
        doc.len() / 1024
    );
    println!(
        "planning time {:.1} ms (target < {} ms); peak RSS {peak:.1} MB, {before:.1} MB before planning (target < {TARGET_MB} MB)",
        elapsed.as_secs_f64() * 1000.0,
        TARGET.as_millis()
    );
    if elapsed > TARGET || peak > TARGET_MB {
        eprintln!("backfill plan: OVER TARGET");
        std::process::exit(1);
    }
}
