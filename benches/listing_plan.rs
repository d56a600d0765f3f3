//! `--from-listing` planning at scale against Azurite: N real blobs (default 40,000) in one
//! table's day folders, listed bare (List Blobs pages of 5,000 through the same client,
//! nothing else done) and then planned exactly as the restore driver plans from a listing,
//! one step at a time (`restore::plan::plan_listing_page`, a plan page and the job document written per step),
//! in the same run. Prints the time and the process's resident memory of both.
//!
//!   scripts/azurite.sh start
//!   cargo bench --bench listing_plan -- [blobs] [days]   (default 40000 40)
//!
//! Uploading is hopeless past some 40,000 blobs (every write to LokiJS Azurite scans the
//! account: 28 minutes for 40,000), so `scripts/bench-listing.sh` preloads an Azurite data
//! folder with exactly these blobs (`scripts/azurite-preload.mjs`) and runs this with
//! `LISTING_PRELOADED=<container>`: no upload, and the container is kept.

use std::collections::BTreeMap;
use std::time::Instant;

use adx_backup::ids::{DatabaseName, JobId, TableName};
use adx_backup::restore::page;
use adx_backup::restore::plan::plan_listing_page;
use adx_backup::restore::request::RestoreRequestV1;
use adx_backup::restore::state::{JobStatus, JobTable, RestoreJob};
use adx_backup::retry::RetryPolicy;
use adx_backup::settings::{Env, Settings};
use adx_backup::storage::BlobStore;
use adx_backup::storage::blob::MAX_PAGE_SIZE;
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

#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let blobs_n = args.first().copied().unwrap_or(40_000);
    let days = args.get(1).copied().unwrap_or(40).max(1);
    let conn = std::env::var("AZURITE_CONNECTION_STRING")
        .unwrap_or_else(|_| "UseDevelopmentStorage=true".into());
    let env = Env::from_pairs([
        ("BackupStorage", conn.as_str()),
        ("AdxBackup__ClusterUri", "http://127.0.0.1:9"),
        ("AdxBackup__Databases", "Sales"),
    ]);
    let settings = Settings::load(&env).expect("settings");
    let preloaded = std::env::var("LISTING_PRELOADED").ok();
    let container = preloaded
        .clone()
        .unwrap_or_else(|| format!("bench-listing-{}", uuid::Uuid::new_v4().simple()));
    let blobs = BlobStore::for_container(&settings.storage, &container, RetryPolicy::default())
        .expect("store");
    let layout = Layout::new("backup");
    let (db, table) = (
        DatabaseName::new("Sales").expect("db"),
        TableName::new("Events").expect("table"),
    );
    let root = layout.table_data_dir(&db, &table);
    if preloaded.is_some() {
        println!(
            "listing plan: {blobs_n} blobs in {days} day folders preloaded in container {container}, upload skipped"
        );
    } else {
        blobs
            .ensure_container()
            .await
            .expect("is Azurite running? scripts/azurite.sh start");
        // scripts/azurite-preload.mjs writes the same names and body: keep the two in step.
        let body = Bytes::from_static(b"PAR1 not read by planning PAR1");
        let started = Instant::now();
        stream::iter(0..blobs_n)
            .map(|i| {
                let (blobs, root, body) = (&blobs, &root, body.clone());
                async move {
                    let day =
                        time::Date::from_ordinal_date(2026, 1 + (i % days) as u16).expect("day");
                    let folder = adx_backup::ids::Day::new(day).folder();
                    let path = format!(
                        "{root}{folder}/part-{i:08}-0f8b2c1e-5d2a-4c3b-9e7f-1a2b3c4d5e6f.parquet"
                    );
                    blobs.write(&path, body).await
                }
            })
            .buffer_unordered(32)
            .try_collect::<Vec<_>>()
            .await
            .expect("upload");
        println!(
            "listing plan: {blobs_n} blobs in {days} day folders uploaded in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }

    let (rss_before, _) = rss_mb();
    let started = Instant::now();
    let mut listed = 0u64;
    let mut pages = 0u64;
    let mut rss_max = rss_before;
    let mut listing = std::pin::pin!(blobs.list_pages(&root, MAX_PAGE_SIZE));
    while let Some(page) = listing.next().await {
        listed += page.expect("list").len() as u64;
        pages += 1;
        rss_max = rss_max.max(rss_mb().0);
    }
    let bare = started.elapsed();
    assert_eq!(
        listed, blobs_n,
        "the bare listing sees every blob (a preloaded container must hold exactly [blobs])"
    );
    println!(
        "bare listing: {listed} blobs in {pages} pages in {:.2} s ({:.0} blobs/s); resident memory {rss_before:.0} -> at most {rss_max:.0} MB",
        bare.as_secs_f64(),
        listed as f64 / bare.as_secs_f64()
    );

    let request = RestoreRequestV1::parse(
        r#"{"version":1,"source":{"fromListing":true},"target":{"clusterUri":"https://dr.kusto.windows.net","database":"DR"}}"#,
    )
    .expect("request");
    // A new job each run: a preloaded container outlives the run, and its chunk documents
    // with it, which a second run's create-only writes under the same job would trip over.
    let job_id =
        JobId::new(format!("r-bench-listing-{}", uuid::Uuid::new_v4().simple())).expect("job");
    let mut job = RestoreJob::new(job_id.clone(), Some(request.clone()));
    job.status = JobStatus::Planning;
    job.tables = vec![JobTable {
        source: table.clone(),
        target: table.clone(),
        partition_column: None,
        target_was_empty: true,
        expected: BTreeMap::new(),
    }];
    let (rss_before, _) = rss_mb();
    let mut rss_max = rss_before;
    let mut steps = 0u64;
    let job_doc = layout.restore_job(&job_id);
    let started = Instant::now();
    while !job.plan.done {
        let page = plan_listing_page(&blobs, &layout, &db, &mut job, &request, &settings.restore)
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
    assert_eq!(job.totals.artifacts, blobs_n, "every blob planned once");
    println!(
        "planning from the listing: {} files -> {} chunks in {steps} steps in {:.2} s ({:.0} files/s, a plan page and the job document written per step); resident memory {rss_before:.0} -> at most {rss_max:.0} MB",
        job.totals.artifacts,
        job.totals.chunks,
        took.as_secs_f64(),
        job.totals.artifacts as f64 / took.as_secs_f64()
    );
    // A preloaded container belongs to its Azurite folder, not to this run: kept, so the bench
    // can run again against the same Azurite.
    if preloaded.is_none() {
        blobs.delete_container().await.expect("clean up");
    }
}
