//! What a restore costs the target cluster and the task queue, per restored file: every
//! Kusto command kusto-sim received (its own log) and every message sent on the task queue,
//! while N small files (default 2,000) are restored at the default chunk size through
//! kusto-sim's queued ingestion, in process, against Azurite. The one ingestion message per
//! file that the queued-ingestion protocol requires goes to the target's ingestion queue, not
//! the task queue, and is not counted.
//!
//! Time is scaled: `AdxBackup__RestorePollSeconds` is 1 s (30 s by default in production), and
//! the target's ingestion runs every `ingest-every` seconds (default 10: Kusto's default
//! batching time of 5 minutes at the same scale). Every task message is run by
//! `worker::deliver_text`, as the Functions host would, 8 at a time.
//!
//!   scripts/azurite.sh start
//!   cargo bench --bench restore_cost -- [files] [ingest-every-seconds]   (default 2000 10)

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use adx_backup::app::App;
use adx_backup::ids::{DatabaseName, Day, ExportName, JobId, TableName};
use adx_backup::restore;
use adx_backup::settings::{Env, Settings};
use adx_backup::storage::catalog::{Artifact, ArtifactSource, Catalog};
use adx_backup::task::Task;
use adx_backup::worker::{self, Settle};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use kusto_sim::{Config, Server};
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;

const DB: &str = "Sales";
const TABLE: &str = "Events";
const TOKEN: &str = "bench-dev-token";
const ROWS_PER_FILE: i64 = 5;
/// Catalog entries per segment.
const SEGMENT: usize = 500;

/// A small parquet file with `Id:long, Name:string`, `ROWS_PER_FILE` rows starting at `first`.
fn parquet_file(first: i64) -> Vec<u8> {
    let schema = Arc::new(
        parquet::schema::parser::parse_message_type(
            "message schema { REQUIRED INT64 Id; REQUIRED BYTE_ARRAY Name (UTF8); }",
        )
        .expect("schema"),
    );
    let ids: Vec<i64> = (first..first + ROWS_PER_FILE).collect();
    let names: Vec<ByteArray> = ids
        .iter()
        .map(|i| ByteArray::from(format!("name {i}").as_str()))
        .collect();
    let mut out = Vec::new();
    let mut writer = SerializedFileWriter::new(
        &mut out,
        schema,
        Arc::new(WriterProperties::builder().build()),
    )
    .expect("writer");
    let mut group = writer.next_row_group().expect("row group");
    let mut column = 0;
    while let Some(mut w) = group.next_column().expect("column") {
        match column {
            0 => w.typed::<Int64Type>().write_batch(&ids, None, None),
            _ => w.typed::<ByteArrayType>().write_batch(&names, None, None),
        }
        .expect("write");
        w.close().expect("close column");
        column += 1;
    }
    group.close().expect("close row group");
    writer.close().expect("close file");
    out
}

/// `.show table T extents where ...` → `.show table extents`: commands grouped by kind.
/// (A table name with spaces would split differently; the bench's table has none.)
fn kind_of(csl: &str) -> String {
    let words: Vec<&str> = csl.split_whitespace().collect();
    match words.as_slice() {
        [".show", "table", _, "extents", ..] => ".show table extents".to_owned(),
        [".show", "tables", rest @ ..] if rest.contains(&"extents") => {
            ".show tables (..) extents".to_owned()
        }
        [".create-merge", "table", ..] => ".create-merge table".to_owned(),
        [".alter", "table", _, "policy", p, ..] => format!(".alter table policy {p}"),
        [first, ..] if !first.starts_with('.') => "query".to_owned(),
        other => other.iter().take(3).copied().collect::<Vec<_>>().join(" "),
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let files = args.first().copied().unwrap_or(2000) as usize;
    let ingest_every = Duration::from_secs(args.get(1).copied().unwrap_or(10));
    let blob_endpoint = std::env::var("AZURITE_BLOB_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:10000/devstoreaccount1".into());
    let queue_endpoint = std::env::var("AZURITE_QUEUE_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:10001/devstoreaccount1".into());
    let conn = std::env::var("AZURITE_CONNECTION_STRING")
        .unwrap_or_else(|_| "UseDevelopmentStorage=true".into());

    let mut config = Config::new(&[DB], &blob_endpoint).with_queue_endpoint(&queue_endpoint);
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
        ("AdxBackup__Container", format!("bench-cost-{}", &id[..20])),
        ("AdxBackup__TaskQueue", format!("bench-cost-{}", &id[..20])),
        ("AdxBackup__Prefix", "backup".into()),
        ("AdxBackup__RestorePollSeconds", "1".into()),
        ("AdxBackup__LogFormat", "text".into()),
    ]);
    let app = App::new(Settings::load(&env).expect("settings")).expect("app");
    app.ensure_storage()
        .await
        .expect("is Azurite running? scripts/azurite.sh start");

    // The backup: N files, their catalog, a schema snapshot.
    let (db, table) = (
        DatabaseName::new(DB).expect("db"),
        TableName::new(TABLE).expect("table"),
    );
    let written = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let artifacts: Vec<Artifact> = stream::iter(0..files)
        .map(|i| {
            let app = &app;
            async move {
                let body = parquet_file(i as i64 * ROWS_PER_FILE);
                let path = format!("backup/{DB}/{TABLE}/00010101/part-{i:06}.parquet");
                let bytes = body.len() as u64;
                app.blobs.write(&path, Bytes::from(body)).await?;
                Ok::<_, adx_backup::storage::StorageError>(Artifact {
                    path,
                    day: Day::UNDATED,
                    rows: ROWS_PER_FILE as u64,
                    bytes: Some(bytes),
                    source: ArtifactSource::ContinuousExport {
                        export: ExportName::new("adxbk_Events").expect("export"),
                    },
                    produced_at: written,
                })
            }
        })
        .buffered(16)
        .try_collect()
        .await
        .expect("upload the files");
    let catalog = Catalog::new(&app.blobs, &app.layout);
    for (seq, segment) in artifacts.chunks(SEGMENT).enumerate() {
        catalog
            .append(&db, &table, seq as u64, segment)
            .await
            .expect("catalog");
    }
    app.blobs
        .write(
            &app.layout.schema_snapshot(&db, written, "0123456789abcdef"),
            Bytes::from_static(b".create-merge table Events (Id:long, Name:string)\n"),
        )
        .await
        .expect("schema snapshot");

    let before = sim.state().commands().len();
    let job = JobId::new("r-cost").expect("job");
    let request = serde_json::json!({
        "version": 1,
        "jobId": job.as_str(),
        "target": {"clusterUri": sim.url(), "database": DB},
    });
    restore::accept(&app, &request, None).await.expect("accept");
    let started = Instant::now();
    let mut last_ingest = Instant::now();
    let mut messages: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut redelivered = 0usize;
    let state = loop {
        let batch = app
            .tasks
            .receive(32, Duration::from_secs(60))
            .await
            .expect("receive");
        for msg in &batch {
            let text = msg.text.as_ref().expect("a task");
            let task = Task::decode_text(text).expect("a task");
            if msg.dequeue_count == 1 {
                *messages.entry(task.kind()).or_default() += 1;
            } else {
                redelivered += 1;
            }
        }
        stream::iter(batch)
            .for_each_concurrent(8, |msg| {
                let app = &app;
                async move {
                    let text = msg.text.as_ref().expect("a task");
                    let verdict =
                        worker::deliver_text(app, text, Some(u64::from(msg.dequeue_count))).await;
                    match verdict.settle(u64::from(msg.dequeue_count)) {
                        Settle::Delete => app.tasks.delete(&msg.id, &msg.pop_receipt).await,
                        Settle::Redeliver => app
                            .tasks
                            .update_visibility(&msg.id, &msg.pop_receipt, Duration::ZERO)
                            .await
                            .map(|_| ()),
                        Settle::Poison => panic!("poisoned: {verdict}"),
                    }
                    .expect("settle");
                }
            })
            .await;
        if last_ingest.elapsed() >= ingest_every {
            sim.state().run_queued_ingestion_now().await;
            last_ingest = Instant::now();
        }
        let state = restore::load_job(&app, &job).await.expect("job");
        if state.status.is_final() {
            break state;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let took = started.elapsed();
    let commands: Vec<String> = sim.state().commands()[before..]
        .iter()
        .map(|c| c.csl.clone())
        .collect();
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    for c in &commands {
        *by_kind.entry(kind_of(c)).or_default() += 1;
    }
    let restored = sim
        .state()
        .query(DB, &format!("{TABLE} | count"))
        .await
        .expect("count");
    println!(
        "restore cost: {files} files of {ROWS_PER_FILE} rows, target ingests every {} s, poll 1 s",
        ingest_every.as_secs()
    );
    println!(
        "job {:?} in {:.0} s: {} chunks, {} files in, {} failed; target holds {:?}",
        state.status,
        took.as_secs_f64(),
        state.totals.chunks,
        state.totals.ingested_artifacts,
        state.totals.failed_artifacts,
        restored.primary.rows.first()
    );
    let sent: usize = messages.values().sum();
    println!("kusto commands: {} {by_kind:?}", commands.len());
    println!("task messages: {sent} {messages:?} (+{redelivered} redeliveries)");
    println!(
        "per restored file: {:.4} (commands {:.4} + task messages {:.4})",
        (commands.len() + sent) as f64 / files as f64,
        commands.len() as f64 / files as f64,
        sent as f64 / files as f64
    );
    assert_eq!(
        state.status,
        restore::state::JobStatus::Succeeded,
        "{state:#?}"
    );
    app.blobs.delete_container().await.expect("clean up");
    app.tasks.delete_queue().await.expect("clean up");
}
