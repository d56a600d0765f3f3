//! `adx-backup check` against kusto-sim with Kusto's role model on: a principal missing one
//! role, a table with row-level security and a cluster identity without the
//! `NativeIngestion` usage give exactly those three findings, each with its fix; once the
//! fixes are applied there is none and the verb succeeds.

use adx_backup::check::{self, Finding};
use adx_backup::cli::Command;
use adx_backup::ids::{DatabaseName, TableName};
use adx_backup::kusto::{KustoError, command};
use adx_backup::status::{self, Filter};
use kusto_sim::roles::ClusterRole;

use crate::harness::stack::Stack;

const DB: &str = "Sales";
const APP: &str = "aadapp=adxbackup-app;tenant";

#[tokio::test]
async fn check_reports_exactly_what_is_missing_with_its_fix_and_nothing_once_fixed() {
    let mut stack = Stack::start(DB).await;
    stack.set("AdxBackup__KustoCredential", "devtoken");
    for t in ["Orders", "Secret"] {
        stack
            .kusto(&format!(".create table {t} (At:datetime, Id:long)"))
            .await;
    }
    stack
        .kusto(".alter table Secret policy row_level_security enable \"Secret | where Id > 0\"")
        .await;
    // The app is a viewer only; it may read the cluster policy (AllDatabasesMonitor), which
    // lets the cluster's identity export but not ingest.
    stack
        .kusto(&format!(".add database {DB} viewers ('{APP}') 'test'"))
        .await;
    stack
        .kusto(".alter-merge cluster policy managed_identity \"[{'ObjectId':'system','AllowedUsages':'ExternalTable'}]\"")
        .await;
    let sim = stack.sim.state();
    sim.set_caller(APP);
    sim.grant_cluster_role(ClusterRole::AllDatabasesMonitor, APP);
    let app = stack.app();
    let db = DatabaseName::new(DB).unwrap();

    // The role model refuses: a viewer may not change a table.
    let refused = app
        .kusto
        .mgmt(
            &db,
            &command::alter_table_ingestiontime_policy(&TableName::new("Orders").unwrap(), true),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(refused, KustoError::Forbidden { .. }),
        "403 for a missing role: {refused}"
    );

    let report = check::check(&app).await.unwrap();
    let expected = vec![
        Finding {
            database: Some(db.clone()),
            table: None,
            problem: format!(
                "the app is Database {DB} Viewer but protect needs Database Admin (continuous exports)"
            ),
            fix: ".add database ['Sales'] admins ('aadapp=<app client id>;<tenant id>') 'adx-backup'"
                .to_owned(),
        },
        Finding {
            database: Some(db.clone()),
            table: Some(TableName::new("Secret").unwrap()),
            problem: "row-level security: continuous export of such a table needs an external table with impersonation authentication and a managed identity on the export, which adx-backup does not set up".to_owned(),
            fix: "disable the policy (`.delete table ['Secret'] policy row_level_security`) or exclude it (AdxBackup__ExcludeTables) and back it up another way".to_owned(),
        },
        Finding {
            database: None,
            table: None,
            problem: "the cluster's managed-identity policy does not allow NativeIngestion for identity system".to_owned(),
            fix: r#".alter-merge cluster policy managed_identity '[{"AllowedUsages":"ExternalTable, NativeIngestion","ObjectId":"system"}]'"#.to_owned(),
        },
    ];
    assert_eq!(report.findings, expected, "{report}");
    assert!(report.unverified.is_empty(), "{report}");
    // protect's pass runs the cheap part first and keeps it for status: the role and the
    // identity policy, not the per-table finding.
    let plan = adx_backup::protect::plan(&app, false, adx_backup::protect::Delivery::Inline)
        .await
        .unwrap();
    assert_eq!(plan.check_findings, 2, "{plan}");
    let (body, _) = app.blobs.read(&app.layout.check_report()).await.unwrap();
    let kept: check::CheckReport = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        kept.findings,
        vec![expected[0].clone(), expected[2].clone()]
    );
    // status shows them, each with its fix, and needs attention for them.
    let shown = status::collect(&app, &Filter::default()).await.unwrap();
    let check = shown.check.clone().expect("status shows the last check");
    assert_eq!(
        check.findings,
        [
            format!("{DB}: {}; fix: {}", expected[0].problem, expected[0].fix),
            format!("cluster: {}; fix: {}", expected[2].problem, expected[2].fix),
        ]
    );
    assert!(shown.needs_attention, "{shown:#?}");
    assert_eq!(
        shown
            .attention
            .iter()
            .filter(|a| a.starts_with("check: "))
            .count(),
        2,
        "{:#?}",
        shown.attention
    );
    assert!(
        Command::Check.run(stack.app()).await.is_err(),
        "the verb fails while something is missing"
    );

    // Apply the fixes as an administrator would (in-process: not as the app).
    stack
        .kusto(&format!(".add database {DB} admins ('{APP}') 'test'"))
        .await;
    stack
        .kusto(".delete table Secret policy row_level_security")
        .await;
    stack.kusto(&expected[2].fix).await;
    let report = check::check(&app).await.unwrap();
    assert!(report.findings.is_empty(), "{report}");
    let shown = status::collect(&app, &Filter::default()).await.unwrap();
    assert_eq!(shown.check.map(|c| c.findings.len()), Some(0));
    Command::Check.run(app).await.unwrap();
}
