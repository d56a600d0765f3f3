//! Queued ingestion: messages posted to the ingestion queues the way the SDKs' queued
//! clients post them (base64 JSON, Python `ingestion_blob_info.py`), read back by the
//! consumer, reported on the status queues. The queues are read and written here over
//! Azurite's REST API with the SAS URLs `.get ingestion resources` hands out, independently
//! of kusto-sim's own queue client.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value as Json, json};

use kusto_sim::{IngestionReport, Server};

use super::support::{Client, azurite, azurite_queues, container};

/// A simulator with queued ingestion on Azurite; `None` when Azurite is not configured.
async fn start(tick: Option<Duration>) -> Option<(Server, String)> {
    let (blobs, queues) = (azurite()?, azurite_queues()?);
    let mut config = super::support::config(&["db"], &blobs).with_queue_endpoint(&queues);
    config.scheduler_tick = tick;
    let server = Server::start(config).await.expect("start kusto-sim");
    Some((server, blobs))
}

/// `.get ingestion resources`, as ResourceTypeName → StorageRoots.
async fn resources(c: &Client) -> BTreeMap<String, Vec<String>> {
    let t = c.ok("NetDefaultDB", ".get ingestion resources").await;
    assert_eq!(t.schema(), "ResourceTypeName:string, StorageRoot:string");
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &t.rows {
        out.entry(r[0].as_str().expect("a type name").to_string())
            .or_default()
            .push(r[1].as_str().expect("a storage root").to_string());
    }
    out
}

async fn identity_token(c: &Client) -> String {
    let t = c.ok("NetDefaultDB", ".get kusto identity token").await;
    assert_eq!(t.schema(), "AuthorizationContext:string");
    t.rows[0][0].as_str().expect("a token").to_string()
}

/// `https://host/account/queue?sas` → (`.../queue/messages`, `sas`).
fn messages_url(queue_sas_url: &str) -> (String, String) {
    let (url, sas) = queue_sas_url.split_once('?').expect("a SAS URL");
    (format!("{url}/messages"), sas.to_string())
}

/// Azure Queue "Put Message" with `text` as the stored message text.
async fn put_message(queue_sas_url: &str, text: &str) {
    let (url, sas) = messages_url(queue_sas_url);
    let body = format!("<QueueMessage><MessageText>{text}</MessageText></QueueMessage>");
    let resp = reqwest::Client::new()
        .post(format!("{url}?{sas}"))
        .header("x-ms-version", "2021-12-02")
        .body(body)
        .send()
        .await
        .expect("put message");
    assert!(resp.status().is_success(), "{}", resp.status());
}

/// Every message text in a queue, taken off it ("Get Messages", then "Delete Message").
async fn take_messages(queue_sas_url: &str) -> Vec<String> {
    let (url, sas) = messages_url(queue_sas_url);
    let http = reqwest::Client::new();
    let body = http
        .get(format!("{url}?numofmessages=32&{sas}"))
        .header("x-ms-version", "2021-12-02")
        .send()
        .await
        .expect("get messages")
        .text()
        .await
        .expect("a message list");
    let field = |m: &str, tag: &str| {
        let open = format!("<{tag}>");
        let start = m.find(&open).map(|i| i + open.len())?;
        let end = m[start..].find(&format!("</{tag}>"))? + start;
        Some(m[start..end].to_string())
    };
    let mut texts = Vec::new();
    for m in body.split("<QueueMessage>").skip(1) {
        let (id, receipt) = (
            field(m, "MessageId").expect("a message id"),
            field(m, "PopReceipt").expect("a pop receipt"),
        );
        texts.push(field(m, "MessageText").unwrap_or_default());
        let receipt: String = url::form_urlencoded::byte_serialize(receipt.as_bytes()).collect();
        http.delete(format!("{url}/{id}?popreceipt={receipt}&{sas}"))
            .header("x-ms-version", "2021-12-02")
            .send()
            .await
            .expect("delete message");
    }
    texts
}

/// The status messages of a status queue, decoded (they are base64 JSON).
async fn statuses(queue_sas_url: &str) -> Vec<Json> {
    take_messages(queue_sas_url)
        .await
        .iter()
        .map(|t| serde_json::from_slice(&STANDARD.decode(t).expect("base64")).expect("JSON"))
        .collect()
}

/// The message the Python SDK's `IngestionBlobInfo` writes for one blob.
fn sdk_message(id: &str, blob: &str, table: &str, token: &str, extra: Json) -> Json {
    let mut props = json!({"authorizationContext": token, "format": "parquet"});
    if let (Some(p), Some(e)) = (props.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    json!({
        "BlobPath": blob,
        "RawDataSize": 1024,
        "DatabaseName": "db",
        "TableName": table,
        "RetainBlobOnSuccess": true,
        "FlushImmediately": false,
        "IgnoreSizeLimit": false,
        "ReportLevel": 2,
        "ReportMethod": 0,
        "SourceMessageCreationTime": "2024-03-01T10:00:00.123456",
        "Id": id,
        "ApplicationForTracing": "kusto-sim-tests",
        "ClientVersionForTracing": null,
        "AdditionalProperties": props
    })
}

fn encoded(message: &Json) -> String {
    STANDARD.encode(message.to_string())
}

/// Writes `rows` (CSV lines of `a:long, s:string`) as one parquet file in Azurite with
/// kusto-sim's own export, and returns its URL for the cluster's managed identity.
async fn parquet_blob(server: &Server, c: &Client, blobs: &str, name: &str, rows: &str) -> String {
    let root = container(server, blobs, "qi").await;
    c.ok(
        "db",
        &format!(".create table ['{name}'] (['a']:long, ['s']:string)"),
    )
    .await;
    c.ok(
        "db",
        &format!(".ingest inline into table ['{name}'] <| {rows}"),
    )
    .await;
    c.ok("db", &format!(".create-or-alter external table ['x{name}'] (['a']:long, ['s']:string) kind=storage dataformat = parquet (h@'{root};managed_identity=system')")).await;
    let details = c
        .ok("db", &format!(".export to table ['x{name}'] <| ['{name}']"))
        .await;
    assert_eq!(details.rows.len(), 1, "one parquet file");
    format!(
        "{};managed_identity=system",
        details.cell(0, "Path").as_str().expect("a path")
    )
}

async fn count(c: &Client, table: &str) -> i64 {
    c.query("db", &format!("['{table}'] | count"))
        .await
        .single_long()
}

#[tokio::test]
async fn the_service_hands_out_queues_a_container_and_a_token() {
    let Some((server, _)) = start(None).await else {
        return;
    };
    let c = Client::new(&server);
    let r = resources(&c).await;
    assert_eq!(
        r.keys().map(String::as_str).collect::<Vec<_>>(),
        vec![
            "FailedIngestionsQueue",
            "SecuredReadyForAggregationQueue",
            "SuccessfulIngestionsQueue",
            "TempStorage"
        ]
    );
    assert_eq!(r["SecuredReadyForAggregationQueue"].len(), 2);
    assert!(r.values().flatten().all(|u| u.contains("sig=")), "{r:?}");
    assert_eq!(resources(&c).await, r, "the same resources on every call");
    assert_eq!(identity_token(&c).await, identity_token(&c).await);
    assert_eq!(
        server.state().run_queued_ingestion_now().await,
        IngestionReport::default(),
        "empty queues"
    );
}

#[tokio::test]
async fn a_blob_sent_twice_with_ingest_if_not_exists_lands_once_and_reports_skipped() {
    let Some((server, blobs)) = start(None).await else {
        return;
    };
    let c = Client::new(&server);
    let blob = parquet_blob(&server, &c, &blobs, "Src", "1,a\n2,b\n3,c").await;
    c.ok("db", ".create table ['T'] (['a']:long, ['s']:string)")
        .await;
    let r = resources(&c).await;
    let token = identity_token(&c).await;
    let dedupe = json!({"tags": "[\"ingest-by:part-1\"]", "ingestIfNotExists": "[\"part-1\"]"});
    let ready = &r["SecuredReadyForAggregationQueue"];
    let (first, second) = (
        "6a0f3c36-2f5e-4d6e-9d1b-000000000001",
        "6a0f3c36-2f5e-4d6e-9d1b-000000000002",
    );
    put_message(
        &ready[0],
        &encoded(&sdk_message(first, &blob, "T", &token, dedupe.clone())),
    )
    .await;
    put_message(
        &ready[1],
        &encoded(&sdk_message(second, &blob, "T", &token, dedupe)),
    )
    .await;

    let report = server.state().run_queued_ingestion_now().await;
    assert_eq!(
        (
            report.messages,
            report.succeeded,
            report.skipped,
            report.failed
        ),
        (2, 1, 1, 0)
    );
    assert_eq!(count(&c, "T").await, 3, "the rows landed once");
    let extents = c.ok("db", ".show table ['T'] extents").await;
    assert_eq!(extents.cell(0, "Tags"), "ingest-by:part-1");

    let succeeded = statuses(&r["SuccessfulIngestionsQueue"][0]).await;
    assert_eq!(succeeded.len(), 1, "{succeeded:?}");
    let s = &succeeded[0];
    let keys: Vec<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        vec![
            "Database",
            "IngestionSourceId",
            "IngestionSourcePath",
            "OperationId",
            "RootActivityId",
            "SucceededOn",
            "Table"
        ]
    );
    assert_eq!(
        (s["Database"].as_str(), s["Table"].as_str()),
        (Some("db"), Some("T"))
    );
    assert_eq!(s["IngestionSourcePath"], blob.as_str());
    let winner = s["IngestionSourceId"].as_str().unwrap();
    assert!(winner == first || winner == second);

    let failed = statuses(&r["FailedIngestionsQueue"][0]).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    let f = &failed[0];
    assert_eq!(f["ErrorCode"], "Skipped_IngestByTagAlreadyExists");
    assert_eq!(
        (f["FailureStatus"].as_str(), f["ShouldRetry"].as_bool()),
        (Some("Permanent"), Some(false))
    );
    assert_ne!(f["IngestionSourceId"].as_str(), Some(winner));
    let skipped_op = f["OperationId"].as_str().unwrap();
    let op = c
        .ok("db", &format!(".show operations ({skipped_op})"))
        .await;
    assert_eq!(op.cell(0, "State"), "Skipped");
    assert_eq!(op.cell(0, "Operation"), "DataIngestPull");

    for q in ready {
        assert!(
            take_messages(q).await.is_empty(),
            "the consumer deleted its messages"
        );
    }
    assert_eq!(server.state().run_queued_ingestion_now().await.messages, 0);
}

#[tokio::test]
async fn blobs_for_one_table_share_an_extent_and_handed_over_blobs_are_deleted() {
    let Some((server, blobs)) = start(None).await else {
        return;
    };
    let c = Client::new(&server);
    let one = parquet_blob(&server, &c, &blobs, "One", "1,a\n2,b").await;
    let two = parquet_blob(&server, &c, &blobs, "Two", "3,c").await;
    c.ok("db", ".create table ['T'] (['a']:long, ['s']:string)")
        .await;
    let r = resources(&c).await;
    let token = identity_token(&c).await;
    // The first is handed over (RetainBlobOnSuccess false: the service deletes it), the
    // second is kept, as the SDKs always ask.
    for (i, (blob, retain)) in [(&one, false), (&two, true)].into_iter().enumerate() {
        let mut m = sdk_message(
            &format!("00000000-0000-4000-8000-00000000000{i}"),
            blob,
            "T",
            &token,
            json!({}),
        );
        m["ReportLevel"] = json!(0);
        m["RetainBlobOnSuccess"] = json!(retain);
        put_message(&r["SecuredReadyForAggregationQueue"][0], &encoded(&m)).await;
    }
    let report = server.state().run_queued_ingestion_now().await;
    assert_eq!((report.succeeded, report.failed), (2, 0));
    assert_eq!(count(&c, "T").await, 3);
    let extents = c.ok("db", ".show table ['T'] extents").await;
    assert_eq!(extents.rows.len(), 1, "one batch, one extent");
    assert!(
        statuses(&r["SuccessfulIngestionsQueue"][0])
            .await
            .is_empty(),
        "ReportLevel 0 reports failures only"
    );
}

#[tokio::test]
async fn bad_messages_are_reported_with_reasons_and_the_consumer_keeps_going() {
    let Some((server, blobs)) = start(None).await else {
        return;
    };
    let c = Client::new(&server);
    let good = parquet_blob(&server, &c, &blobs, "Src", "7,x").await;
    c.ok("db", ".create table ['T'] (['a']:long, ['s']:string)")
        .await;
    let r = resources(&c).await;
    let token = identity_token(&c).await;
    // A blob that is not parquet, uploaded to the service's temp container.
    let (temp, temp_sas) = r["TempStorage"][0].split_once('?').unwrap();
    let not_parquet = format!("{temp}/db__T__notparquet.csv");
    let put = reqwest::Client::new()
        .put(format!("{not_parquet}?{temp_sas}"))
        .header("x-ms-version", "2021-12-02")
        .header("x-ms-blob-type", "BlockBlob")
        .body("a,s\n1,x\n")
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    let missing = good.replace(".parquet", "-missing.parquet");
    let msg = |id: &str, blob: &str, table: &str, tok: &str| {
        encoded(&sdk_message(id, blob, table, tok, json!({})))
    };
    let ready = &r["SecuredReadyForAggregationQueue"][0];
    for text in [
        "this is not base64!".to_string(),
        STANDARD.encode("{not json"),
        msg(
            "00000000-0000-4000-8000-0000000000a1",
            &good,
            "T",
            "a-stolen-token",
        ),
        msg(
            "00000000-0000-4000-8000-0000000000a2",
            &good,
            "NoSuchTable",
            &token,
        ),
        msg(
            "00000000-0000-4000-8000-0000000000a3",
            &missing,
            "T",
            &token,
        ),
        msg(
            "00000000-0000-4000-8000-0000000000a4",
            &format!("{not_parquet}?{temp_sas}"),
            "T",
            &token,
        ),
        msg("00000000-0000-4000-8000-0000000000a5", &good, "T", &token),
    ] {
        put_message(ready, &text).await;
    }

    let report = server.state().run_queued_ingestion_now().await;
    assert_eq!(
        (report.messages, report.succeeded, report.failed),
        (7, 1, 6)
    );
    assert_eq!(count(&c, "T").await, 1, "the good message landed");

    let failed = statuses(&r["FailedIngestionsQueue"][0]).await;
    let mut codes: Vec<&str> = failed
        .iter()
        .map(|f| f["ErrorCode"].as_str().unwrap())
        .collect();
    codes.sort_unstable();
    assert_eq!(
        codes,
        vec![
            "BadRequest_CorruptedMessage",
            "BadRequest_CorruptedMessage",
            "BadRequest_InvalidBlob",
            "BadRequest_InvalidKustoIdentityToken",
            "BadRequest_TableNotExist",
            "Download_SourceNotFound",
        ]
    );
    for f in &failed {
        for field in [
            "OperationId",
            "Database",
            "Table",
            "IngestionSourceId",
            "IngestionSourcePath",
            "RootActivityId",
            "FailedOn",
            "Details",
            "ErrorCode",
            "FailureStatus",
            "ShouldRetry",
        ] {
            assert!(f.get(field).is_some(), "{field} missing in {f}");
        }
        assert!(!f["Details"].as_str().unwrap().is_empty(), "{f}");
    }
    let by_source = |id: &str| {
        failed
            .iter()
            .find(|f| f["IngestionSourceId"] == id)
            .unwrap()
    };
    assert!(
        by_source("00000000-0000-4000-8000-0000000000a2")["Details"]
            .as_str()
            .unwrap()
            .contains("NoSuchTable")
    );

    // Only what reached the engine is in its failure log; a message the data-management
    // service rejected never became an ingestion command.
    let shown = c.ok("db", ".show ingestion failures").await;
    let mut engine: Vec<(String, String, String)> = shown
        .rows
        .iter()
        .enumerate()
        .map(|(i, _)| {
            (
                shown.cell(i, "ErrorCode").as_str().unwrap().to_string(),
                shown.cell(i, "Table").as_str().unwrap().to_string(),
                shown.cell(i, "FailureKind").as_str().unwrap().to_string(),
            )
        })
        .collect();
    engine.sort();
    assert_eq!(
        engine,
        vec![
            (
                "BadRequest_InvalidBlob".into(),
                "T".into(),
                "Permanent".into()
            ),
            (
                "BadRequest_TableNotExist".into(),
                "NoSuchTable".into(),
                "Permanent".into()
            ),
            (
                "Download_SourceNotFound".into(),
                "T".into(),
                "Permanent".into()
            ),
        ]
    );
    let one_op = shown.cell(0, "OperationId").as_str().unwrap().to_string();
    let filtered = c
        .ok(
            "db",
            &format!(".show ingestion failures with (OperationId = '{one_op}')"),
        )
        .await;
    assert!(!filtered.rows.is_empty() && filtered.rows.len() < 3);
    server
        .state()
        .advance_clock(Duration::from_secs(15 * 86_400));
    let aged = c.ok("db", ".show ingestion failures").await;
    assert!(aged.rows.is_empty(), "ingestion failures are kept 14 days");
}

#[tokio::test]
async fn the_scheduler_drains_the_queues_on_its_own() {
    let Some((server, blobs)) = start(Some(Duration::from_millis(100))).await else {
        return;
    };
    let c = Client::new(&server);
    let blob = parquet_blob(&server, &c, &blobs, "Src", "1,a\n2,b").await;
    c.ok("db", ".create table ['T'] (['a']:long, ['s']:string)")
        .await;
    let r = resources(&c).await;
    let token = identity_token(&c).await;
    put_message(
        &r["SecuredReadyForAggregationQueue"][1],
        &encoded(&sdk_message(
            "00000000-0000-4000-8000-0000000000b1",
            &blob,
            "T",
            &token,
            json!({}),
        )),
    )
    .await;
    for _ in 0..100 {
        if count(&c, "T").await == 2 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the scheduled consumer never ingested the message");
}
