//! What reaches storage and what doesn't: failed continuous-export runs that leave files
//! behind, `.export to table` properties, and a cluster whose identity storage refuses.

use serde_json::json;

use super::support::{Client, azurite, container, start};
use kusto_sim::FaultConfig;

/// Table `T`, external table `bk_T` at `root` (partitioned by day) and export `ce_T`.
async fn setup(c: &Client, root: &str) {
    c.ok("db", ".create table ['T'] (['a']:datetime, ['b']:long)")
        .await;
    c.ok("db", &format!(".create-or-alter external table ['bk_T'] (['a']:datetime, ['b']:long) kind=storage partition by (['Day']:datetime = startofday(['a'])) pathformat = (datetime_pattern(\"yyyyMMdd\", ['Day'])) dataformat = parquet (h@'{root};managed_identity=system') with (namePrefix='bk', fileExtension='.parquet')")).await;
    c.ok("db", ".create-or-alter continuous-export ['ce_T'] over (['T']) to table ['bk_T'] with (intervalBetweenRuns=5m, forcedLatency=0s) <| ['T']").await;
}

#[tokio::test]
async fn a_failed_run_leaves_unlisted_files_behind() {
    let Some(endpoint) = azurite() else { return };
    let server = start(&["db"], &endpoint).await;
    let c = Client::new(&server);
    let root = format!("{}/db/T", container(&server, &endpoint, "leftover").await);
    setup(&c, &root).await;
    server.state().run_continuous_exports_now().await;
    c.ok(
        "db",
        ".ingest inline into table ['T'] <| 2024-01-15T10:00:00Z,1\n2024-01-16T10:00:00Z,2",
    )
    .await;
    server.state().set_faults(FaultConfig {
        fail_continuous_exports_after_write: vec!["ce_T".into()],
        ..Default::default()
    });
    let failed = server.state().run_continuous_exports_now().await;
    assert!(failed[0].error.is_some(), "{failed:?}");
    let artifacts = c
        .ok("db", ".show continuous-export ['ce_T'] exported-artifacts")
        .await;
    assert!(artifacts.rows.is_empty(), "a failed run lists nothing");
    assert_eq!(
        c.ok("db", ".show continuous-export ['ce_T'] failures")
            .await
            .rows
            .len(),
        1
    );
    // The run's files are in storage all the same: the external table reads them.
    assert_eq!(
        c.query("db", "external_table('bk_T') | count")
            .await
            .single_long(),
        2
    );

    // The next run exports the same rows again (the cursor did not move) and lists only
    // its own files: storage now holds each row twice, the artifacts once.
    server.state().set_faults(FaultConfig::default());
    let run = server.state().run_continuous_exports_now().await;
    assert_eq!((run[0].records, run[0].error.as_deref()), (2, None));
    let artifacts = c
        .ok("db", ".show continuous-export ['ce_T'] exported-artifacts")
        .await;
    assert_eq!(artifacts.rows.len(), 2);
    assert_eq!(
        c.query("db", "external_table('bk_T') | count")
            .await
            .single_long(),
        4
    );
    for row in &artifacts.rows {
        let path = row[artifacts.col("Path")].as_str().unwrap();
        let name = path.rsplit('/').next().unwrap();
        assert!(
            name.starts_with("bk_") && name.ends_with(".parquet"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn name_prefix_is_not_a_property_of_export_to_table() {
    let Some(endpoint) = azurite() else { return };
    let server = start(&["db"], &endpoint).await;
    let c = Client::new(&server);
    let root = format!("{}/db/T", container(&server, &endpoint, "noprefix").await);
    setup(&c, &root).await;
    c.ok(
        "db",
        ".ingest inline into table ['T'] <| 2024-01-15T10:00:00Z,1",
    )
    .await;
    let (status, body) = c
        .mgmt(
            "db",
            ".export async to table ['bk_T'] with (namePrefix='b1', sizeLimit=104857600) <| ['T']",
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["@message"].as_str().unwrap();
    assert!(message.contains("'nameprefix'"), "{message}");
    assert_eq!(body["error"]["@permanent"], true);
    assert_eq!(
        c.query("db", "external_table('bk_T') | count")
            .await
            .single_long(),
        0,
        "nothing was written"
    );
    for props in [
        "sizeLimit=104857600, parquetRowGroupSize=1000",
        "distributed=false, concurrency=2, spread=1",
        "distribution='per_node', distributionKind='uniform'",
    ] {
        c.ok(
            "db",
            &format!(".export to table ['bk_T'] with ({props}) <| ['T']"),
        )
        .await;
    }
}

#[tokio::test]
async fn a_denied_container_fails_exports_reads_and_runs() {
    let Some(endpoint) = azurite() else { return };
    let server = start(&["db"], &endpoint).await;
    let c = Client::new(&server);
    let container_url = container(&server, &endpoint, "denied").await;
    let root = format!("{container_url}/db/T");
    setup(&c, &root).await;
    server.state().run_continuous_exports_now().await;
    c.ok(
        "db",
        ".ingest inline into table ['T'] <| 2024-01-15T10:00:00Z,1",
    )
    .await;
    let (status, _) = c
        .post("/sim/faults", json!({"deny_storage": [container_url]}))
        .await;
    assert_eq!(status, 200);

    // Kusto passes storage's 403 on as a bad request carrying the storage client's text
    // (azure-kusto-python#556): not its own 403, which would blame the caller's role.
    let (status, body) = c.mgmt("db", ".export to table ['bk_T'] <| ['T']").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "General_BadRequest");
    assert_eq!(body["error"]["@permanent"], true);
    assert_eq!(
        body["error"]["@message"],
        "Service request failed.\nStatus: 403 (This request is not authorized to perform this operation using this permission.)\nErrorCode: AuthorizationPermissionMismatch"
    );
    let (status, _) = c.query_v2("db", "external_table('bk_T') | count").await;
    assert_eq!(status, 400);
    let run = server.state().run_continuous_exports_now().await;
    assert!(
        run[0]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("Status: 403")),
        "{run:?}"
    );
    let failures = c
        .ok("db", ".show continuous-export ['ce_T'] failures")
        .await;
    assert_eq!(failures.rows.len(), 1);

    // Access granted again: the next run catches up, nothing lost.
    server.state().set_faults(FaultConfig::default());
    let run = server.state().run_continuous_exports_now().await;
    assert_eq!((run[0].records, run[0].error.as_deref()), (1, None));
}
