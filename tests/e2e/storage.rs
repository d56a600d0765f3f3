//! The storage layer against Azurite: paged listing past one page, ETag conflicts, and queue
//! messages as the Functions host reads them.
//!
//! Settings come from `AZURITE_CONNECTION_STRING` when set, else `UseDevelopmentStorage=true`,
//! through the product's own settings parser. Each test works in its own container or queue
//! (uuid-suffixed) and deletes it at the end. Azurite must be running; these tests never skip.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use adx_backup::ids::{DatabaseName, Day, ExportName, TableName};
use adx_backup::retry::RetryPolicy;
use adx_backup::settings::{Env, Settings, StorageAuth, StorageSettings};
use adx_backup::storage::catalog::{Artifact, ArtifactSource, Catalog};
use adx_backup::storage::layout::Layout;
use adx_backup::storage::state::Versioned;
use adx_backup::storage::{BlobStore, StorageError, TaskQueue, connect};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const AZURITE_HINT: &str = "is Azurite running? (node node_modules/azurite/dist/src/azurite.js \
    --silent --disableTelemetry --skipApiVersionCheck --inMemoryPersistence, from the repo root)";

fn settings_from(connection_string: &str) -> StorageSettings {
    let env = Env::from_pairs([
        ("BackupStorage", connection_string),
        ("AdxBackup__ClusterUri", "http://127.0.0.1:0"),
        ("AdxBackup__Databases", "db"),
    ]);
    Settings::load(&env).expect("storage settings").storage
}

fn settings() -> StorageSettings {
    let conn = std::env::var("AZURITE_CONNECTION_STRING")
        .unwrap_or_else(|_| "UseDevelopmentStorage=true".to_owned());
    settings_from(&conn)
}

fn unique(tag: &str) -> String {
    format!("e2e-{tag}-{}", uuid::Uuid::new_v4().simple())
}

async fn fresh_container(tag: &str) -> BlobStore {
    let store = BlobStore::for_container(&settings(), &unique(tag), RetryPolicy::fast(3))
        .expect("blob store");
    store.ensure_container().await.expect(AZURITE_HINT);
    store
}

async fn fresh_queue(tag: &str) -> TaskQueue {
    let queue = TaskQueue::named(&settings(), &unique(tag), RetryPolicy::fast(3)).expect("queue");
    queue.ensure_exists().await.expect(AZURITE_HINT);
    queue
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_lists_2600_blobs_across_pages() {
    const COUNT: usize = 2600;
    let store = fresh_container("list").await;
    store
        .ensure_container()
        .await
        .expect("ensure_container is idempotent");

    let started = Instant::now();
    let uploads = stream::iter(0..COUNT).map(|i| {
        let store = store.clone();
        async move {
            // Nested names, as the layout writes them: '/' must survive the URL encoding.
            let path = format!("db/t/2026010{}/part-{i:05}.parquet", i % 3);
            store.write(&path, Bytes::from(format!("blob {i}"))).await
        }
    });
    let written: Vec<_> = uploads
        .buffer_unordered(32)
        .try_collect()
        .await
        .expect("uploads");
    assert_eq!(written.len(), COUNT);
    store
        .write("elsewhere/outside.json", Bytes::from_static(b"{}"))
        .await
        .expect("write");
    let uploaded_in = started.elapsed();

    let started = Instant::now();
    let mut pages = 0;
    let mut seen = HashSet::new();
    let mut listing = Box::pin(store.list_pages("db/", 1000));
    while let Some(page) = listing.try_next().await.expect("list page") {
        pages += 1;
        assert!(page.len() <= 1000, "page of {}", page.len());
        for item in page {
            assert!(item.path.starts_with("db/t/2026010"), "{}", item.path);
            assert_eq!(
                item.size,
                format!("blob {}", index_of(&item.path)).len() as u64
            );
            assert!(seen.insert(item.path.clone()), "{} listed twice", item.path);
        }
    }
    let listed_in = started.elapsed();
    assert_eq!(seen.len(), COUNT);
    assert_eq!(pages, 3, "2,600 blobs in pages of 1,000");

    let all: Vec<_> = store.list("").try_collect().await.expect("list all");
    assert_eq!(all.len(), COUNT + 1);
    let first = store
        .list_page("db/", None, 1000)
        .await
        .expect("first page");
    let second = store
        .list_page("db/", first.next_marker.as_deref(), 1000)
        .await
        .expect("second page");
    assert_eq!(second.items.len(), 1000);
    assert!(first.items.last().map(|i| &i.path) < second.items.first().map(|i| &i.path));

    eprintln!(
        "uploaded {COUNT} blobs (32 concurrent) in {uploaded_in:?}; listed in {pages} pages in {listed_in:?}"
    );
    store.delete_container().await.expect("delete container");
}

fn index_of(path: &str) -> usize {
    let (_, file) = path.rsplit_once("part-").expect("part file");
    file.trim_end_matches(".parquet").parse().expect("index")
}

#[tokio::test]
async fn storage_conditional_writes_detect_conflicts() {
    let store = fresh_container("etag").await;
    let path = "jobs/restore-1/state.json";

    let v1 = store
        .create_new(path, Bytes::from_static(b"v1"))
        .await
        .expect("create");
    let again = store.create_new(path, Bytes::from_static(b"other")).await;
    assert!(
        matches!(again, Err(StorageError::Conflict { .. })),
        "{again:?}"
    );

    let v2 = store
        .write_if_match(path, Bytes::from_static(b"v2"), &v1)
        .await
        .expect("current etag wins");
    assert_ne!(v1, v2);
    let stale = store
        .write_if_match(path, Bytes::from_static(b"v3"), &v1)
        .await;
    let err = stale.expect_err("stale etag must lose");
    assert!(err.is_conflict(), "{err:?}");
    assert!(err.to_string().contains(path), "{err}");

    let (body, etag) = store.read(path).await.expect("read");
    assert_eq!((&body[..], &etag), (&b"v2"[..], &v2));
    assert!(store.exists(path).await.expect("exists"));

    let missing = store.read("jobs/none.json").await;
    assert!(
        matches!(missing, Err(StorageError::NotFound { .. })),
        "{missing:?}"
    );
    assert_eq!(
        store.read_opt("jobs/none.json").await.expect("read_opt"),
        None
    );

    store.delete(path).await.expect("delete");
    store
        .delete(path)
        .await
        .expect("deleting a missing blob is fine");
    assert!(!store.exists(path).await.expect("exists"));
    store.delete_container().await.expect("delete container");
}

/// `Versioned::save` refuses a write based on a stale read, for an existing document
/// (If-Match) and for one two writers both found missing (If-None-Match), and the winner's
/// content stays.
#[tokio::test]
async fn storage_versioned_save_refuses_a_stale_etag() {
    let store = fresh_container("versioned").await;
    let path = "$state/tables/db/t.json";
    let load = || Versioned::load_or(&store, path, || vec!["new".to_owned()]);

    let (mut first, mut second) = (load().await.expect("load"), load().await.expect("load"));
    assert_eq!(first.etag, None, "a missing document has no version yet");
    first.value.push("first".into());
    first
        .save(&store, path)
        .await
        .expect("creates the document");
    second.value.push("second".into());
    let err = second
        .save(&store, path)
        .await
        .expect_err("a second create of the same document must lose");
    assert!(err.is_conflict(), "{err:?}");

    let (mut current, mut stale) = (load().await.expect("load"), load().await.expect("load"));
    current.value.push("current".into());
    current
        .save(&store, path)
        .await
        .expect("the current read wins");
    stale.value.push("stale".into());
    let err = stale
        .save(&store, path)
        .await
        .expect_err("a save based on an older read must lose");
    assert!(err.is_conflict(), "{err:?}");
    assert_eq!(
        load().await.expect("load").value,
        ["new", "first", "current"],
        "the winner's document is kept whole"
    );
    current.value.push("again".into());
    current
        .save(&store, path)
        .await
        .expect("a save updates the version it holds");
    store.delete_container().await.expect("delete container");
}

/// A catalog segment is written once: a second append of the same number (another worker,
/// or a retry that does not know the first landed) is a conflict and the first stays whole.
#[tokio::test]
async fn storage_catalog_segments_are_written_once() {
    let store = fresh_container("catalog").await;
    let layout = Layout::new("backup");
    let catalog = Catalog::new(&store, &layout);
    let (db, table) = (
        DatabaseName::new("db").unwrap(),
        TableName::new("t").unwrap(),
    );
    let artifact = |name: &str, rows: u64| Artifact {
        path: format!("backup/db/t/20260101/{name}.parquet"),
        day: Day::parse_folder("20260101").unwrap(),
        rows,
        bytes: Some(10),
        source: ArtifactSource::ContinuousExport {
            export: ExportName::new("adxbk_t").unwrap(),
        },
        produced_at: time::macros::datetime!(2026-01-01 10:00 UTC),
    };
    let first = vec![artifact("a", 1), artifact("b", 2)];
    catalog
        .append(&db, &table, 0, &first)
        .await
        .expect("append");
    let err = catalog
        .append(&db, &table, 0, &[artifact("c", 3)])
        .await
        .expect_err("segment 0 exists");
    assert!(err.is_conflict(), "{err:?}");
    assert_eq!(
        catalog.read_segment(&db, &table, 0).await.expect("read"),
        Some(first.clone())
    );
    catalog
        .append(&db, &table, 1, &[artifact("c", 3)])
        .await
        .expect("the next segment");
    let all: Vec<Artifact> = catalog.stream(&db, &table).try_collect().await.unwrap();
    assert_eq!(all, [first, vec![artifact("c", 3)]].concat());
    store.delete_container().await.expect("delete container");
}

#[tokio::test]
async fn storage_queue_messages_are_functions_base64() {
    let queue = fresh_queue("b64").await;
    let json = r#"{"type":"ExportBatchV1","table":"Événements","batch":7}"#;
    queue.send(json, None).await.expect("send");

    // Read it the way the Functions host does: raw text from the service, base64-decoded.
    let raw = RawQueue::new(&settings(), queue.name());
    let texts = raw.peek_texts().await;
    assert_eq!(texts.len(), 1, "{texts:?}");
    let decoded = STANDARD
        .decode(&texts[0])
        .expect("the host's base64 decoding");
    assert_eq!(String::from_utf8(decoded).expect("utf-8"), json);

    // A message that is not base64 comes back flagged, next to a good one.
    raw.post_text("not base64 {!}").await;
    let received = queue
        .receive(32, Duration::from_secs(30))
        .await
        .expect("receive");
    assert_eq!(received.len(), 2);
    let good = received
        .iter()
        .find(|m| m.text.is_ok())
        .expect("good message");
    assert_eq!(good.text.as_deref(), Ok(json));
    let bad = received
        .iter()
        .find(|m| m.text.is_err())
        .expect("flagged message");
    let undecodable = bad.text.clone().expect_err("flagged");
    assert_eq!(undecodable.raw, "not base64 {!}");

    assert_eq!(
        queue.poison_queue_name(),
        format!("{}-poison", queue.name())
    );
    let poison = queue.poison_queue().expect("poison queue");
    poison.ensure_exists().await.expect("create poison");
    poison
        .send(&undecodable.raw, None)
        .await
        .expect("move to poison");
    queue
        .delete(&bad.id, &bad.pop_receipt)
        .await
        .expect("delete bad");
    assert_eq!(poison.approximate_count().await.expect("count"), 1);

    poison.delete_queue().await.expect("delete poison");
    queue.delete_queue().await.expect("delete queue");
}

#[tokio::test]
async fn storage_queue_receive_update_delete_round_trip() {
    let queue = fresh_queue("rt").await;
    queue
        .send(r#"{"type":"PollV1"}"#, None)
        .await
        .expect("send");

    let first = queue
        .receive(1, Duration::from_secs(30))
        .await
        .expect("receive");
    let [m1] = first.as_slice() else {
        panic!("one message, got {first:?}")
    };
    assert_eq!(m1.dequeue_count, 1);
    assert_eq!(m1.text.as_deref(), Ok(r#"{"type":"PollV1"}"#));
    assert!(
        queue
            .receive(1, Duration::from_secs(30))
            .await
            .expect("receive")
            .is_empty()
    );

    // Visible again at once, as the host does for a failed invocation.
    let pop = queue
        .update_visibility(&m1.id, &m1.pop_receipt, Duration::ZERO)
        .await
        .expect("update");
    assert_ne!(pop, m1.pop_receipt);
    let second = queue
        .receive(1, Duration::from_secs(30))
        .await
        .expect("receive");
    let [m2] = second.as_slice() else {
        panic!("one message, got {second:?}")
    };
    assert_eq!((m2.id.as_str(), m2.dequeue_count), (m1.id.as_str(), 2));

    let stale = queue.delete(&m1.id, &pop).await;
    assert!(
        matches!(stale, Err(StorageError::Conflict { .. })),
        "{stale:?}"
    );
    let pop = queue
        .update_visibility(&m2.id, &m2.pop_receipt, Duration::from_secs(60))
        .await
        .expect("extend");
    queue.delete(&m2.id, &pop).await.expect("delete");
    queue
        .delete(&m2.id, &pop)
        .await
        .expect("deleting a deleted message is fine");
    assert_eq!(queue.approximate_count().await.expect("count"), 0);
    queue.delete_queue().await.expect("delete queue");
}

#[tokio::test]
async fn storage_queue_delayed_message_is_hidden_until_due() {
    let queue = fresh_queue("delay").await;
    // Generous bounds both ways: hidden for the first seconds of a 5 s delay (a slow machine
    // has 5 s to look), then delivered within 30 s.
    let delay = Duration::from_secs(5);
    queue
        .send(r#"{"type":"PollV1"}"#, Some(delay))
        .await
        .expect("send");
    assert!(
        queue
            .receive(32, Duration::from_secs(30))
            .await
            .expect("receive")
            .is_empty()
    );
    assert_eq!(queue.approximate_count().await.expect("count"), 1);

    let deadline = Instant::now() + delay + Duration::from_secs(30);
    let due = loop {
        let due = queue
            .receive(32, Duration::from_secs(30))
            .await
            .expect("receive");
        if !due.is_empty() || Instant::now() > deadline {
            break due;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(due.len(), 1, "{due:?}");
    queue.delete_queue().await.expect("delete queue");
}

#[tokio::test]
async fn storage_clients_build_offline_and_fail_transiently_without_leaking_the_sas() {
    let settings = settings_from(
        "AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:0/devstoreaccount1;QueueEndpoint=http://127.0.0.1:0/devstoreaccount1",
    );
    connect(&settings).expect("building clients needs no network");
    let store = BlobStore::new(&settings, RetryPolicy::fast(2)).expect("blob store");
    let err = store
        .read("x.json")
        .await
        .expect_err("nothing can listen on port 0");
    assert!(adx_backup::retry::Retryable::is_transient(&err), "{err:?}");
    let queue = TaskQueue::new(&settings, RetryPolicy::fast(1)).expect("queue");
    let queue_err = queue
        .send("{}", None)
        .await
        .expect_err("nothing can listen on port 0");
    let oversized = queue.send(&"x".repeat(50_000), None).await;
    assert!(
        matches!(oversized, Err(StorageError::Permanent { status: None, .. })),
        "refused before sending: {oversized:?}"
    );
    for text in [
        format!("{err} {err:?}"),
        format!("{queue_err} {queue_err:?}"),
    ] {
        assert!(!text.contains("sig="), "SAS leaked: {text}");
    }
}

/// A bare REST client for the queue, independent of the product's code, authenticated with its
/// own account SAS: what any other reader of the queue sees.
struct RawQueue {
    http: reqwest::Client,
    messages_url: String,
}

impl RawQueue {
    fn new(settings: &StorageSettings, queue: &str) -> Self {
        let StorageAuth::SharedKey { account, key } = &settings.auth else {
            panic!("Azurite settings use an account key")
        };
        let expiry = "2099-01-01T00:00:00Z";
        let to_sign = format!("{account}\nraup\nq\nsco\n\n{expiry}\n\n\n2022-11-02\n\n");
        let key = STANDARD.decode(key.expose()).expect("key");
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("hmac");
        mac.update(to_sign.as_bytes());
        let sig = STANDARD.encode(mac.finalize().into_bytes());
        let sas = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("sv", "2022-11-02")
            .append_pair("ss", "q")
            .append_pair("srt", "sco")
            .append_pair("sp", "raup")
            .append_pair("se", expiry)
            .append_pair("sig", &sig)
            .finish();
        let base = settings.queue_service_uri.as_str().trim_end_matches('/');
        Self {
            http: reqwest::Client::new(),
            messages_url: format!("{base}/{queue}/messages?{sas}"),
        }
    }

    async fn peek_texts(&self) -> Vec<String> {
        let url = format!("{}&peekonly=true&numofmessages=32", self.messages_url);
        let body = self.call(self.http.get(url)).await;
        body.split("<MessageText>")
            .skip(1)
            .filter_map(|rest| rest.split_once("</MessageText>"))
            .map(|(text, _)| text.to_owned())
            .collect()
    }

    async fn post_text(&self, text: &str) {
        let body = format!("<QueueMessage><MessageText>{text}</MessageText></QueueMessage>");
        self.call(self.http.post(&self.messages_url).body(body))
            .await;
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> String {
        let response = request
            .header("x-ms-version", "2022-11-02")
            .send()
            .await
            .expect("raw queue request");
        let status = response.status();
        let body = response.text().await.expect("body");
        assert!(status.is_success(), "raw queue request: {status} {body}");
        body
    }
}

/// A restore planned over many plan pages (one file a chunk, so a hundred chunks a page)
/// names every wanted cataloged file once, and the chunks the driver makes from the pages,
/// read in order by readers that stop and resume from the job's cursor as driver steps do,
/// hold exactly the catalog's wanted files, in order. A repeated step finds its page written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_made_from_plan_pages_hold_every_wanted_cataloged_file_once_in_order() {
    use adx_backup::ids::JobId;
    use adx_backup::restore::page::{self, Pages};
    use adx_backup::restore::plan::plan_page;
    use adx_backup::restore::request::RestoreRequestV1;
    use adx_backup::restore::state::{JobStatus, JobTable, PageCursor, RestoreJob};

    let blobs = fresh_container("plan-pages").await;
    let layout = Layout::new("backup");
    let catalog = Catalog::new(&blobs, &layout);
    let (db, table) = (
        DatabaseName::new("Sales").unwrap(),
        TableName::new("Events").unwrap(),
    );
    let day = Day::parse_folder("20260301").unwrap();
    let mut wanted = Vec::new();
    for seq in 0..7u64 {
        let segment: Vec<Artifact> = (0..60u64)
            .map(|i| Artifact {
                path: format!("backup/Sales/Events/20260301/s{seq}-{i}.parquet"),
                day,
                // Every ninth file is empty: no plan takes it.
                rows: (seq * 60 + i) % 9,
                bytes: Some(100),
                source: ArtifactSource::ContinuousExport {
                    export: ExportName::new("adxbk_Events").unwrap(),
                },
                produced_at: time::OffsetDateTime::UNIX_EPOCH,
            })
            .collect();
        wanted.extend(
            segment
                .iter()
                .filter(|a| a.rows > 0)
                .map(|a| a.path.clone()),
        );
        catalog.append(&db, &table, seq, &segment).await.unwrap();
    }
    let env = Env::from_pairs([
        ("BackupStorage", "UseDevelopmentStorage=true"),
        ("AdxBackup__ClusterUri", "http://127.0.0.1:0"),
        ("AdxBackup__Databases", "Sales"),
        ("AdxBackup__RestoreChunkBlobs", "1"),
    ]);
    let settings = Settings::load(&env).unwrap().restore;
    let request = RestoreRequestV1::parse(
        r#"{"version":1,"target":{"clusterUri":"https://dr.kusto.windows.net","database":"DR"}}"#,
    )
    .unwrap();
    let id = JobId::new("r-pages").unwrap();
    let mut job = RestoreJob::new(id.clone(), Some(request.clone()));
    job.status = JobStatus::Planning;
    job.tables = vec![JobTable {
        source: table.clone(),
        target: table.clone(),
        partition_column: None,
        target_was_empty: true,
        expected: Default::default(),
    }];
    while !job.plan.done {
        let mut twin = job.clone();
        let page = plan_page(&blobs, &layout, &db, &mut job, &request, &settings)
            .await
            .unwrap();
        page::save(&blobs, &layout, &id, &page).await.unwrap();
        let again = plan_page(&blobs, &layout, &db, &mut twin, &request, &settings)
            .await
            .unwrap();
        page::save(&blobs, &layout, &id, &again).await.unwrap();
        job.plan = page.position;
    }
    assert_eq!(job.totals.chunks, wanted.len() as u64);
    assert!(job.plan.pages > 2, "pages: {}", job.plan.pages);

    let mut cursor = PageCursor::default();
    let mut made = Vec::new();
    for step in (0..job.totals.chunks).collect::<Vec<_>>().chunks(30) {
        // Each driver step reads with a new reader, from the cursor the last one saved.
        let mut pages = Pages::new(&blobs, &layout, &id, &blobs, &layout);
        for n in step {
            let chunk = pages.chunk(&mut cursor, *n).await.unwrap();
            assert_eq!(chunk.chunk.as_str(), format!("c-{n:06}"));
            made.extend(chunk.blobs.iter().map(|b| b.path.clone()));
        }
    }
    assert_eq!(made, wanted);
    blobs.delete_container().await.unwrap();
}
