//! Restore planning at scale against Azurite: a catalog of N segments x M artifacts, planned
//! step by step exactly as the restore driver does (`restore::plan::plan_page`, each step's
//! plan page written once, and the job document saved after each step as the driver saves
//! it), printing planning throughput and the process's resident memory as planning proceeds,
//! which stays flat however large the catalog is. Then the first chunks' documents are made
//! from the pages as the driver makes them when it starts chunks, and checked against the
//! catalog.
//!
//!   scripts/azurite.sh start
//!   cargo bench --bench restore_plan -- [segments] [artifacts-per-segment]   (default 1000 1000)

use std::collections::BTreeMap;
use std::time::Instant;

use adx_backup::ids::{DatabaseName, Day, ExportName, JobId, TableName};
use adx_backup::restore::page::{self, Pages};
use adx_backup::restore::plan::{READ_AHEAD, plan_page};
use adx_backup::restore::request::RestoreRequestV1;
use adx_backup::restore::state::{JobStatus, JobTable, PageCursor, RestoreJob};
use adx_backup::retry::RetryPolicy;
use adx_backup::settings::{Env, Settings};
use adx_backup::storage::BlobStore;
use adx_backup::storage::catalog::{Artifact, ArtifactSource, Catalog, parse_segment};
use adx_backup::storage::layout::Layout;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};

/// (current, peak) resident memory in MB.
fn rss_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmRSS"), field("VmHWM"))
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

/// Lists the table's catalog and reads and parses every segment, as many at a time as
/// planning reads, doing nothing else: what storage allows, for comparison with planning
/// (which reads the same bytes).
async fn bare_read(
    blobs: &BlobStore,
    layout: &Layout,
    db: &DatabaseName,
    table: &TableName,
) -> std::time::Duration {
    let started = Instant::now();
    let artifacts: usize = blobs
        .list(&layout.catalog_dir(db, table))
        .map_ok(|item| async move {
            let (body, _) = blobs.read(&item.path).await?;
            parse_segment(&item.path, &body).map(|a| a.len())
        })
        .try_buffered(READ_AHEAD)
        .try_fold(0, |sum, n| async move { Ok(sum + n) })
        .await
        .expect("bare read");
    std::hint::black_box(artifacts);
    started.elapsed()
}

/// Makes the first chunks' documents from the pages as the driver does when it starts them,
/// and checks that they hold the catalog's artifacts in order (a bench that plans the wrong
/// files must not print a figure).
async fn start_chunks(
    blobs: &BlobStore,
    layout: &Layout,
    job: &JobId,
    catalog: &Catalog<'_>,
    db: &DatabaseName,
    table: &TableName,
    chunks: u64,
) {
    let n = chunks.min(2_000);
    let mut pages = Pages::new(blobs, layout, job, blobs, layout);
    let mut cursor = PageCursor::default();
    let mut expected = std::pin::pin!(catalog.stream(db, table));
    let started = Instant::now();
    let mut files = 0u64;
    for c in 0..n {
        let chunk = pages.chunk(&mut cursor, c).await.expect("chunk");
        for blob in &chunk.blobs {
            let a = expected.next().await.expect("catalog").expect("artifact");
            assert_eq!((&blob.path, blob.rows), (&a.path, Some(a.rows)));
            files += 1;
        }
    }
    let took = started.elapsed();
    println!(
        "chunk documents made from pages: {n} chunks, {files} files in {:.2} s ({:.1} ms per chunk), each equal to the catalog",
        took.as_secs_f64(),
        took.as_secs_f64() * 1000.0 / n.max(1) as f64
    );
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
    let container = format!("bench-restore-{}", uuid::Uuid::new_v4().simple());
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

    let request = RestoreRequestV1::parse(
        r#"{"version":1,"target":{"clusterUri":"https://dr.kusto.windows.net","database":"DR"}}"#,
    )
    .expect("request");
    let job_id = JobId::new("r-bench").expect("job");
    let mut job = RestoreJob::new(job_id.clone(), Some(request.clone()));
    job.status = JobStatus::Planning;
    job.tables = vec![JobTable {
        source: table.clone(),
        target: table.clone(),
        partition_column: None,
        target_was_empty: true,
        expected: BTreeMap::new(),
    }];
    let bare = bare_read(&blobs, &layout, &db, &table).await;
    let (rss_before, _) = rss_mb();
    let mut rss_max = rss_before;
    let mut steps = 0u64;
    let started = Instant::now();
    let job_doc = layout.restore_job(&job_id);
    while !job.plan.done {
        let page = plan_page(&blobs, &layout, &db, &mut job, &request, &settings.restore)
            .await
            .expect("plan");
        page::save(&blobs, &layout, &job_id, &page)
            .await
            .expect("page");
        job.plan = page.position;
        let body = serde_json::to_vec(&job).expect("json");
        blobs.write(&job_doc, Bytes::from(body)).await.expect("job");
        steps += 1;
        rss_max = rss_max.max(rss_mb().0);
    }
    let took = started.elapsed();
    assert_eq!(
        job.totals.artifacts,
        segments * per_segment,
        "every artifact planned once"
    );
    let total = job.totals.artifacts as f64;
    println!(
        "restore plan: {} artifacts ({} rows) -> {} chunks in {steps} steps",
        job.totals.artifacts, job.totals.rows, job.totals.chunks
    );
    println!(
        "planning: {:.1} s ({:.0} artifacts/s, a plan page and the job document written per step)",
        took.as_secs_f64(),
        total / took.as_secs_f64()
    );
    println!(
        "resident memory: {rss_before:.0} MB before planning, at most {rss_max:.0} MB while planning"
    );
    println!("plan pages written: {}", job.plan.pages);
    println!(
        "bare read of the same catalog (list, then read and parse every segment, {READ_AHEAD} at a time): {:.1} s; planning took {:.2}x as long",
        bare.as_secs_f64(),
        took.as_secs_f64() / bare.as_secs_f64()
    );
    start_chunks(
        &blobs,
        &layout,
        &job_id,
        &catalog,
        &db,
        &table,
        job.totals.chunks,
    )
    .await;
    blobs.delete_container().await.expect("clean up");
}
