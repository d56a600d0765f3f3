//! The time limits of a real cluster, on the simulator's clock: exported artifacts and
//! continuous-export failures are kept 14 days; `.show operations (id)` answers for 6 hours
//! after an operation's last update, the history form `.show operations` for two weeks.

use std::time::Duration;

use kusto_sim::{FaultConfig, OperationState};

use super::roundtrip::wait_for;
use super::support::{Client, azurite, container, start};

const DAY: Duration = Duration::from_secs(86_400);
const HOUR: Duration = Duration::from_secs(3_600);

#[tokio::test]
async fn exported_artifacts_and_failures_disappear_after_14_days() {
    let Some(endpoint) = azurite() else { return };
    let server = start(&["db"], &endpoint).await;
    let c = Client::new(&server);
    let root = container(&server, &endpoint, "aged").await;
    c.ok("db", ".create table ['T'] (['a']:long)").await;
    c.ok("db", &format!(".create-or-alter external table ['bk_T'] (['a']:long) kind=storage dataformat = parquet (h@'{root};managed_identity=system')")).await;
    c.ok("db", ".create-or-alter continuous-export ['ce_T'] over (['T']) to table ['bk_T'] with (intervalBetweenRuns=5m, forcedLatency=0s) <| ['T']").await;
    let sim = server.state();
    sim.run_continuous_exports_now().await;
    c.ok("db", ".ingest inline into table ['T'] <| 1").await;
    assert_eq!(sim.run_continuous_exports_now().await[0].artifacts, 1);
    sim.set_faults(FaultConfig {
        fail_continuous_exports: vec!["ce_T".into()],
        ..FaultConfig::default()
    });
    c.ok("db", ".ingest inline into table ['T'] <| 2").await;
    assert!(sim.run_continuous_exports_now().await[0].error.is_some());
    let shown = |what: &'static str| {
        let c = &c;
        async move {
            c.ok("db", &format!(".show continuous-export ['ce_T'] {what}"))
                .await
                .rows
                .len()
        }
    };
    assert_eq!(
        (shown("exported-artifacts").await, shown("failures").await),
        (1, 1)
    );

    sim.advance_clock(13 * DAY);
    assert_eq!(
        (shown("exported-artifacts").await, shown("failures").await),
        (1, 1),
        "13 days on, both are still kept"
    );
    sim.advance_clock(DAY + HOUR);
    assert_eq!(
        (shown("exported-artifacts").await, shown("failures").await),
        (0, 0),
        "past 14 days, both are gone"
    );
}

#[tokio::test]
async fn an_operation_older_than_6_hours_is_gone_by_id_but_kept_in_history() {
    let Some(endpoint) = azurite() else { return };
    let server = start(&["db"], &endpoint).await;
    let c = Client::new(&server);
    let root = container(&server, &endpoint, "ops").await;
    c.ok("db", ".create table ['T'] (['a']:long)").await;
    // An ingestion of a blob that doesn't exist: an operation that ends (Failed) quickly.
    let started = c
        .ok("db", &format!(".ingest async into table ['T'] (h'{root}/none.parquet;managed_identity=system') with (format='parquet')"))
        .await;
    let id = started.rows[0][0].as_str().unwrap().to_string();
    assert_eq!(wait_for(&c, "db", &id).await.cell(0, "State"), "Failed");
    let by_id = || {
        let (c, id) = (&c, &id);
        async move {
            c.ok("db", &format!(".show operations ({id})"))
                .await
                .rows
                .len()
        }
    };
    let in_history = || {
        let (c, id) = (&c, &id);
        async move {
            let all = c.ok("db", ".show operations").await;
            (0..all.rows.len()).any(|i| all.cell(i, "OperationId") == id.as_str())
        }
    };

    server
        .state()
        .advance_clock(5 * HOUR + Duration::from_secs(59 * 60));
    assert_eq!(
        by_id().await,
        1,
        "5h59m after its last update it is still there"
    );
    server.state().advance_clock(2 * Duration::from_secs(60));
    assert_eq!(
        by_id().await,
        0,
        "6 hours on, .show operations (id) no longer has it"
    );
    assert!(in_history().await, "the history form keeps two weeks");
    server.state().advance_clock(14 * DAY);
    assert!(!in_history().await, "and then it is gone");
}

#[tokio::test]
async fn every_documented_operation_state_reaches_the_wire() {
    let Some(endpoint) = azurite() else { return };
    let server = start(&["db"], &endpoint).await;
    let c = Client::new(&server);
    let root = container(&server, &endpoint, "states").await;
    c.ok("db", ".create table ['T'] (['a']:long)").await;
    let started = c
        .ok("db", &format!(".ingest async into table ['T'] (h'{root}/none.parquet;managed_identity=system') with (format='parquet')"))
        .await;
    let id = started.rows[0][0].as_str().unwrap().to_string();
    wait_for(&c, "db", &id).await;
    // The names of the `.show operations` page's state table.
    for (state, name) in [
        (OperationState::PartiallySucceeded, "PartiallySucceeded"),
        (OperationState::Abandoned, "Abandoned"),
        (OperationState::BadInput, "BadInput"),
        (OperationState::Scheduled, "Scheduled"),
        (OperationState::Throttled, "Throttled"),
        (OperationState::Canceled, "Canceled"),
        (OperationState::Skipped, "Skipped"),
    ] {
        server
            .state()
            .set_operation_state(id.parse().unwrap(), state)
            .unwrap();
        let shown = c.ok("db", &format!(".show operations {id}")).await;
        assert_eq!(shown.cell(0, "State"), name);
    }
}
