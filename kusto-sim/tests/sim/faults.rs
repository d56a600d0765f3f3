//! Fault injection: every fault fires as configured, by config and by control endpoint.

use std::time::Duration;

use serde_json::json;

use super::roundtrip::wait_for;
use super::support::{Client, azurite, container, start};
use kusto_sim::FaultConfig;

const NO_STORAGE: &str = "http://127.0.0.1:0/devstoreaccount1";

#[tokio::test]
async fn throttling_and_transient_errors_follow_the_rates() {
    let server = start(&["db"], NO_STORAGE).await;
    let c = Client::new(&server);
    let (status, _) = c.post("/sim/faults", json!({"throttle_rate": 1.0})).await;
    assert_eq!(status, 200);
    let (status, body) = c.mgmt("db", ".show tables").await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["@permanent"], false);
    assert!(
        body["error"]["@message"]
            .as_str()
            .unwrap()
            .contains("aborted due to throttling")
    );
    server.state().set_faults(FaultConfig {
        transient_rate: 1.0,
        ..Default::default()
    });
    assert_eq!(c.query_v2("db", "print 1").await.0, 503);
    server.state().set_faults(FaultConfig {
        seed: 42,
        throttle_rate: 0.5,
        ..Default::default()
    });
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(c.mgmt("db", ".show tables").await.0.as_u16());
    }
    server.state().set_faults(FaultConfig {
        seed: 42,
        throttle_rate: 0.5,
        ..Default::default()
    });
    let mut replay = Vec::new();
    for _ in 0..20 {
        replay.push(c.mgmt("db", ".show tables").await.0.as_u16());
    }
    assert_eq!(statuses, replay, "same seed, same faults");
    assert!(statuses.contains(&429) && statuses.contains(&200));
    let (_, bad) = c.post("/sim/faults", json!({"no_such_fault": 1})).await;
    assert!(bad.is_string());
}

#[tokio::test]
async fn exports_over_the_memory_budget_fail_with_low_memory() {
    let Some(endpoint) = azurite() else { return };
    let server = start(&["db"], &endpoint).await;
    let c = Client::new(&server);
    let root = format!("{}/db/T", container(&server, &endpoint, "lowmem").await);
    c.ok("db", ".create table T (a:datetime, b:long)").await;
    c.ok("db", ".ingest inline into table T <| 2024-01-15T00:00:00Z,1\n2024-01-16T00:00:00Z,2\n2024-01-16T01:00:00Z,3").await;
    c.ok("db", &format!(".create-or-alter external table bk_T (a:datetime, b:long) kind=storage partition by (Day:datetime = startofday(a)) pathformat = (datetime_pattern(\"yyyyMMdd\", Day)) dataformat = parquet (h@'{root};managed_identity=system')")).await;
    server.state().set_faults(FaultConfig {
        export_max_rows: Some(2),
        // Long enough that the check below sees it running even on a loaded machine.
        operation_latency_ms: 2000,
        ..Default::default()
    });
    let id = c
        .ok(
            "db",
            ".export async to table bk_T with (parquetRowGroupSize=1000) <| T",
        )
        .await
        .rows[0][0]
        .as_str()
        .unwrap()
        .to_string();
    let running = c.ok("db", &format!(".show operations {id}")).await;
    assert_eq!(
        running.cell(0, "State"),
        "InProgress",
        "operation latency keeps it running"
    );
    let (status, _) = c.mgmt("db", &format!(".show operation {id} details")).await;
    assert_eq!(status, 400, "no details before completion");
    let op = wait_for(&c, "db", &id).await;
    assert_eq!(op.cell(0, "State"), "Failed");
    assert_eq!(op.cell(0, "ShouldRetry"), true);
    assert!(
        op.cell(0, "Status")
            .as_str()
            .unwrap()
            .contains("(E_LOW_MEMORY_CONDITION)")
    );
    let duration = op.cell(0, "Duration").as_str().unwrap().to_string();
    let seconds = timespan_seconds(&duration);
    assert!(
        (2.0..60.0).contains(&seconds),
        "ran at least the latency, well under a minute: {duration}"
    );
    // The first day's file was written before the budget ran out: a partial export.
    assert_eq!(
        c.query("db", "external_table('bk_T') | count")
            .await
            .single_long(),
        1
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
    server.state().set_faults(FaultConfig::default());
    let id = c
        .ok("db", ".export async to table bk_T <| T | where b == 1")
        .await
        .rows[0][0]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(wait_for(&c, "db", &id).await.cell(0, "State"), "Completed");
}

/// Seconds in a `hh:mm:ss.fffffff` timespan.
fn timespan_seconds(text: &str) -> f64 {
    let parts: Vec<f64> = text
        .split(':')
        .map(|p| p.parse().unwrap_or_else(|e| panic!("{text}: {e}")))
        .collect();
    assert_eq!(parts.len(), 3, "{text}");
    parts[0] * 3600.0 + parts[1] * 60.0 + parts[2]
}
