//! Catalog at scale against Azurite: append N segments of M artifacts, then stream the whole
//! catalog back, printing throughput and the process's peak memory. Proves the catalog is
//! read as a stream: peak memory stays flat however many artifacts there are.
//!
//!   scripts/azurite.sh start
//!   cargo bench --bench catalog -- [segments] [artifacts-per-segment]   (default 1000 1000)

use std::time::Instant;

use adx_backup::ids::{DatabaseName, Day, ExportName, TableName};
use adx_backup::retry::RetryPolicy;
use adx_backup::settings::{Env, Settings};
use adx_backup::storage::BlobStore;
use adx_backup::storage::catalog::{Artifact, ArtifactSource, Catalog};
use adx_backup::storage::layout::Layout;
use futures::{StreamExt, TryStreamExt, stream};

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

fn artifact(seq: u64, i: u64) -> Artifact {
    let day = time::Date::from_ordinal_date(2026, 1 + (seq % 365) as u16).expect("day");
    Artifact {
        path: format!(
            "backup/Sales/Events/{}/part-{seq:06}-{i:06}-0f8b2c1e-5d2a-4c3b-9e7f-1a2b3c4d5e6f.parquet",
            Day::new(day)
        ),
        day: Day::new(day),
        rows: 100_000 + i,
        bytes: Some(12_345_678),
        source: ArtifactSource::ContinuousExport {
            export: ExportName::new("adxbk_Events").expect("name"),
        },
        produced_at: time::OffsetDateTime::now_utc(),
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let segments = args.first().copied().unwrap_or(1000);
    let per_segment = args.get(1).copied().unwrap_or(1000);
    let conn = std::env::var("AZURITE_CONNECTION_STRING")
        .unwrap_or_else(|_| "UseDevelopmentStorage=true".into());
    let env = Env::from_pairs([
        ("BackupStorage", conn.as_str()),
        ("AdxBackup__ClusterUri", "http://127.0.0.1:9"),
        ("AdxBackup__Databases", "Sales"),
    ]);
    let settings = Settings::load(&env).expect("settings");
    let container = format!("bench-catalog-{}", uuid::Uuid::new_v4().simple());
    let blobs = BlobStore::for_container(&settings.storage, &container, RetryPolicy::default())
        .expect("store");
    blobs
        .ensure_container()
        .await
        .expect("is Azurite running? scripts/azurite.sh start");
    let layout = Layout::new("backup");
    let catalog = Catalog::new(&blobs, &layout);
    let (db, table) = (
        DatabaseName::new("Sales").expect("db"),
        TableName::new("Events").expect("table"),
    );

    let started = Instant::now();
    stream::iter(0..segments)
        .map(|seq| {
            let (catalog, db, table) = (&catalog, &db, &table);
            async move {
                let batch: Vec<Artifact> = (0..per_segment).map(|i| artifact(seq, i)).collect();
                catalog.append(db, table, seq, &batch).await
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await
        .expect("append");
    let wrote = started.elapsed();
    let rss_after_write = peak_rss_mb();

    let started = Instant::now();
    let (count, rows) = catalog
        .stream(&db, &table)
        .try_fold(
            (0u64, 0u64),
            |(n, r), a| async move { Ok((n + 1, r + a.rows)) },
        )
        .await
        .expect("stream");
    let read = started.elapsed();
    assert_eq!(
        count,
        segments * per_segment,
        "every artifact read back once"
    );
    let total = count as f64;
    println!(
        "catalog: {segments} segments x {per_segment} artifacts = {count} artifacts ({rows} rows)"
    );
    println!(
        "append:  {:.1} s ({:.0} artifacts/s, 16 segments in flight)",
        wrote.as_secs_f64(),
        total / wrote.as_secs_f64()
    );
    println!(
        "stream:  {:.1} s ({:.0} artifacts/s)",
        read.as_secs_f64(),
        total / read.as_secs_f64()
    );
    println!(
        "peak RSS: {rss_after_write:.0} MB after writing, {:.0} MB after streaming everything",
        peak_rss_mb()
    );
    blobs.delete_container().await.expect("clean up");
}
