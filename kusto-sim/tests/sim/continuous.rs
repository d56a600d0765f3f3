//! Continuous export: StartCursor, exactly-once delivery across runs, forcedLatency,
//! artifacts and failures.

use std::time::Duration;

use super::support::{Client, azurite, container, start};

async fn setup(c: &Client, root: &str, latency: &str) {
    c.ok("db", ".create table ['T'] (['a']:datetime, ['b']:long)")
        .await;
    c.ok("db", &format!(".create-or-alter external table ['bk_T'] (['a']:datetime, ['b']:long) kind=storage partition by (['Day']:datetime = startofday(['a'])) pathformat = (datetime_pattern(\"yyyyMMdd\", ['Day'])) dataformat = parquet (h@'{root};managed_identity=system') with (folder='adxbackup', fileExtension='.parquet')")).await;
    c.ok("db", &format!(".create-or-alter continuous-export ['ce_T'] over (['T']) to table ['bk_T'] with (intervalBetweenRuns=5m, forcedLatency={latency}, sizeLimit=104857600) <| ['T']")).await;
}

#[tokio::test]
async fn each_row_is_exported_exactly_once() {
    let Some(endpoint) = azurite() else { return };
    let server = start(&["db"], &endpoint).await;
    let c = Client::new(&server);
    let root = format!("{}/db/T", container(&server, &endpoint, "ce").await);
    setup(&c, &root, "1m").await;
    c.ok(
        "db",
        ".ingest inline into table ['T'] <| 2024-01-01T05:00:00Z,0",
    )
    .await;

    let first = server.state().run_continuous_exports_now().await;
    assert_eq!(first[0].artifacts, 0, "the first run only sets StartCursor");
    let ce = c.ok("db", ".show continuous-export ['ce_T']").await;
    assert_eq!(
        ce.cell(0, "StartCursor").as_str().unwrap(),
        server.state().cursor("db").unwrap()
    );
    assert_eq!(ce.cell(0, "LastRunResult"), "Completed");

    c.ok("db", ".ingest inline into table ['T'] <| 2024-01-15T10:00:00Z,1\n2024-01-16T10:00:00Z,2\n2024-01-16T11:00:00Z,3").await;
    let early = server.state().run_continuous_exports_now().await;
    assert_eq!(
        early[0].records, 0,
        "forcedLatency holds back rows younger than a minute"
    );
    server.state().advance_clock(Duration::from_secs(120));
    let run = server.state().run_continuous_exports_now().await;
    assert_eq!(
        (run[0].artifacts, run[0].records),
        (2, 3),
        "one file per day"
    );
    let again = server.state().run_continuous_exports_now().await;
    assert_eq!(again[0].records, 0);

    c.ok(
        "db",
        ".ingest inline into table ['T'] <| 2024-01-16T12:00:00Z,4",
    )
    .await;
    server.state().advance_clock(Duration::from_secs(120));
    let (status, _) = c
        .post("/sim/continuous-export/run", serde_json::json!({}))
        .await;
    assert_eq!(status, 200);

    let artifacts = c.ok("db", ".show continuous-export ['ce_T'] exported-artifacts | where Timestamp > datetime(2020-01-01T00:00:00.0000000Z)").await;
    assert_eq!(artifacts.rows.len(), 3);
    let total: i64 = artifacts
        .rows
        .iter()
        .map(|r| r[artifacts.col("NumRecords")].as_i64().unwrap())
        .sum();
    assert_eq!(total, 4);
    assert!(
        artifacts
            .rows
            .iter()
            .all(|r| r[2].as_str().unwrap().contains("/2024011"))
    );
    let exported = c
        .query(
            "db",
            "external_table('bk_T') | summarize n = count(), ids = dcount(b)",
        )
        .await;
    assert_eq!(
        (exported.rows[0][0].as_i64(), exported.rows[0][1].as_i64()),
        (Some(4), Some(4))
    );
    let ce = c.ok("db", ".show continuous-export ['ce_T']").await;
    assert!(ce.cell(0, "ExportedTo").is_string());
    assert_eq!(ce.cell(0, "IsRunning"), false);
}

#[tokio::test]
async fn failed_runs_are_reported_and_retried_without_loss() {
    let Some(endpoint) = azurite() else { return };
    let server = start(&["db"], &endpoint).await;
    let c = Client::new(&server);
    let root = format!("{}/db/T", container(&server, &endpoint, "cefail").await);
    setup(&c, &root, "0s").await;
    server.state().run_continuous_exports_now().await;
    c.ok(
        "db",
        ".ingest inline into table ['T'] <| 2024-01-15T10:00:00Z,1",
    )
    .await;
    server.state().set_faults(kusto_sim::FaultConfig {
        fail_continuous_exports: vec!["ce_T".into()],
        ..Default::default()
    });
    let failed = server.state().run_continuous_exports_now().await;
    assert!(failed[0].error.is_some());
    let ce = c.ok("db", ".show continuous-export ['ce_T']").await;
    assert_eq!(ce.cell(0, "LastRunResult"), "Failed");
    let failures = c
        .ok("db", ".show continuous-export ['ce_T'] failures")
        .await;
    assert_eq!(
        (failures.rows.len(), failures.cell(0, "FailureKind")),
        (1, &serde_json::json!("Failure"))
    );

    server.state().set_faults(kusto_sim::FaultConfig::default());
    let run = server.state().run_continuous_exports_now().await;
    assert_eq!(run[0].records, 1);
    c.ok("db", ".disable continuous-export ['ce_T']").await;
    c.ok(
        "db",
        ".ingest inline into table ['T'] <| 2024-01-15T11:00:00Z,2",
    )
    .await;
    assert!(server.state().run_continuous_exports_now().await.is_empty());
    c.ok("db", ".enable continuous-export ['ce_T']").await;
    assert_eq!(
        server.state().run_continuous_exports_now().await[0].records,
        1,
        "re-enabling catches up"
    );
}

#[tokio::test]
async fn the_scheduler_runs_exports_on_their_interval() {
    let Some(endpoint) = azurite() else { return };
    let mut config = super::support::config(&["db"], &endpoint);
    config.scheduler_tick = Some(Duration::from_millis(50));
    let server = kusto_sim::Server::start(config).await.unwrap();
    let c = Client::new(&server);
    let root = format!("{}/db/T", container(&server, &endpoint, "cesched").await);
    setup(&c, &root, "0s").await;
    // A generous bound: the 50 ms tick must fire, however loaded the machine.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let ce = c.ok("db", ".show continuous-export ['ce_T']").await;
        if ce.cell(0, "StartCursor") != "" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the scheduler never ran the export within 30 s");
}
