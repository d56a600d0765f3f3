//! `adx-backup check` against kusto-sim with Kusto's role model on: a principal missing one
//! role, a table with row-level security and a cluster identity without the
//! `NativeIngestion` usage give exactly those three findings, each with its fix; once the
//! fixes are applied there is none and the verb succeeds. Then, from a stack where
//! everything is in place (no finding), one thing broken at a time gives exactly its
//! finding: the app's identity refused writes on the task queue or on the container (a
//! read-only proxy in front of Azurite), the cluster's identity refused by storage
//! (kusto-sim's `deny_storage`), and a source cluster with fewer export slots than protect
//! runs continuous exports.

use adx_backup::app::App;
use adx_backup::check::{self, CapacityFigure, CheckReport, Finding};
use adx_backup::cli::Command;
use adx_backup::ids::{DatabaseName, TableName};
use adx_backup::kusto::{CapacityRow, KustoError, command};
use adx_backup::status::{self, Filter};
use futures::TryStreamExt;
use kusto_sim::roles::ClusterRole;
use kusto_sim::{Capacity, FaultConfig};

use crate::harness::proxy::ReadOnly;
use crate::harness::stack::{Stack, azurite_blob_endpoint, azurite_queue_endpoint};

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
    // Without Database Admin anywhere, the probe that needs it waits (no finding of its own).
    assert_eq!(
        report.unverified,
        [
            "the cluster identity's write access to the backup container and the source's export capacity: checked once the app is Database Admin on a source database"
        ],
        "{report}"
    );
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
    assert!(report.unverified.is_empty(), "{report}");
    let shown = status::collect(&app, &Filter::default()).await.unwrap();
    assert_eq!(shown.check.map(|c| c.findings.len()), Some(0));
    Command::Check.run(app).await.unwrap();
}

/// Everything check looks at in place: two plain tables, the app Database Admin and allowed
/// to read the cluster policy, which (as `Stack::start` sets it) allows both usages.
async fn in_place() -> Stack {
    let stack = Stack::start(DB).await;
    for t in ["Orders", "Returns"] {
        stack
            .kusto(&format!(".create table {t} (At:datetime, Id:long)"))
            .await;
    }
    stack
        .kusto(&format!(".add database {DB} admins ('{APP}') 'test'"))
        .await;
    let sim = stack.sim.state();
    sim.set_caller(APP);
    sim.grant_cluster_role(ClusterRole::AllDatabasesMonitor, APP);
    stack
}

/// No finding and nothing unverified; the source's export capacity among the figures.
async fn nothing_missing(app: &App) -> CheckReport {
    let report = check::check(app).await.unwrap();
    assert_eq!(report.findings, [], "{report}");
    assert!(report.unverified.is_empty(), "{report}");
    assert_eq!(
        report.capacity,
        [CapacityFigure {
            cluster: "source cluster".into(),
            row: CapacityRow {
                resource: "DataExport".into(),
                total: 4,
                consumed: 0,
                remaining: 4,
            },
        }],
        "kusto-sim's default capacity"
    );
    report
}

/// What the probes left under `$state/check/`: nothing, once they are done.
async fn probe_leftovers(app: &App) -> Vec<String> {
    app.blobs
        .list(&app.layout.check_probes_dir())
        .map_ok(|b| b.path)
        .try_collect()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_app_identity_refused_writes_on_the_task_queue_is_one_finding_naming_the_step() {
    let mut stack = in_place().await;
    nothing_missing(&stack.app()).await;

    // The app's queue requests go through a proxy that answers every write as storage
    // answers an identity with a reader role only.
    let proxy = ReadOnly::start(&azurite_queue_endpoint()).await;
    stack.set(
        "BackupStorage",
        &format!(
            "AccountName=devstoreaccount1;AccountKey={};BlobEndpoint={};QueueEndpoint={}",
            kusto_sim::config::AZURITE_KEY,
            azurite_blob_endpoint(),
            proxy.endpoint()
        ),
    );
    let app = stack.app();
    let queue = app.tasks.name().to_owned();
    let report = check::check(&app).await.unwrap();
    assert_eq!(
        report.findings,
        [Finding {
            database: None,
            table: None,
            problem: format!(
                "backup storage refused the app's identity: create queue {queue} (if missing) failed with HTTP 403 AuthorizationPermissionMismatch; the app needs Storage Queue Data Contributor on storage account devstoreaccount1"
            ),
            fix: "az role assignment create --assignee-object-id <principal id of the app's managed identity> --assignee-principal-type ServicePrincipal --role \"Storage Queue Data Contributor\" --scope \"<resource id of storage account devstoreaccount1>\"".to_owned(),
        }],
        "{report}"
    );
    assert!(report.unverified.is_empty(), "{report}");
    // status shows it (the blob side still works, so the report was kept).
    let shown = status::collect(&app, &Filter::default()).await.unwrap();
    let kept = shown.check.expect("status shows the last check");
    assert_eq!(
        kept.findings,
        [format!(
            "cluster: {}; fix: {}",
            report.findings[0].problem, report.findings[0].fix
        )]
    );
    assert!(Command::Check.run(app).await.is_err());
}

#[tokio::test]
async fn an_app_identity_refused_blob_writes_is_one_finding_and_the_report_is_not_kept() {
    let mut stack = in_place().await;
    let app = stack.app();
    nothing_missing(&app).await;
    let (before, _) = app.blobs.read(&app.layout.check_report()).await.unwrap();

    let proxy = ReadOnly::start(&azurite_blob_endpoint()).await;
    stack.set(
        "BackupStorage",
        &format!(
            "AccountName=devstoreaccount1;AccountKey={};BlobEndpoint={};QueueEndpoint={}",
            kusto_sim::config::AZURITE_KEY,
            proxy.endpoint(),
            azurite_queue_endpoint()
        ),
    );
    let app = stack.app();
    let container = app.blobs.container_name().to_owned();
    let report = check::check(&app).await.unwrap();
    assert_eq!(
        report.findings,
        [Finding {
            database: None,
            table: None,
            problem: format!(
                "backup storage refused the app's identity: create container {container} (if missing) failed with HTTP 403 AuthorizationPermissionMismatch; the app needs Storage Blob Data Contributor on storage account devstoreaccount1"
            ),
            fix: "az role assignment create --assignee-object-id <principal id of the app's managed identity> --assignee-principal-type ServicePrincipal --role \"Storage Blob Data Contributor\" --scope \"<resource id of storage account devstoreaccount1>\"".to_owned(),
        }],
        "{report}"
    );
    let path = app.layout.check_report();
    assert_eq!(
        report.unverified,
        [
            "the cluster identity's write access to the backup container: checked once the app may write and delete blobs there (it removes the probe's file)".to_owned(),
            format!("the report is not kept in {path}: storage refused the app (HTTP 403 AuthorizationPermissionMismatch)"),
        ],
        "{report}"
    );
    let (after, _) = app.blobs.read(&path).await.unwrap();
    assert_eq!(after, before, "the last kept report stays as it was");
    assert!(Command::Check.run(app).await.is_err());
}

#[tokio::test]
async fn a_cluster_identity_refused_by_storage_is_one_finding_with_its_role_assignment() {
    let stack = in_place().await;
    let app = stack.app();
    nothing_missing(&app).await;
    assert!(
        stack
            .commands()
            .iter()
            .any(|c| c.starts_with(".export to table ['adxbk_check_")),
        "the cluster probe exported through its external table"
    );
    assert_eq!(probe_leftovers(&app).await, Vec::<String>::new());

    let container = app.blobs.container_name().to_owned();
    stack.sim.state().set_faults(FaultConfig {
        deny_storage: vec![format!("{}/{container}", azurite_blob_endpoint())],
        ..FaultConfig::default()
    });
    let report = check::check(&app).await.unwrap();
    assert_eq!(
        report.findings,
        [Finding {
            database: None,
            table: None,
            problem: format!(
                "backup storage refused the cluster's identity (managed_identity=system): exporting one row into container {container} failed, so continuous exports fail the same way (Service request failed.\nStatus: 403 (This request is not authorized to perform this operation using this permission.)\nErrorCode: AuthorizationPermissionMismatch)"
            ),
            fix: format!(
                "az role assignment create --assignee-object-id <principal id of the cluster's identity: az kusto cluster show -g <rg> -n <cluster> --query identity.principalId> --assignee-principal-type ServicePrincipal --role \"Storage Blob Data Contributor\" --scope \"<resource id of storage account devstoreaccount1>/blobServices/default/containers/{container}\""
            ),
        }],
        "{report}"
    );
    // The probe's external table is gone again, refused or not.
    let external = stack.kusto(".show external tables").await;
    assert_eq!(external.rows.len(), 0, "{:?}", external.rows);
    assert_eq!(probe_leftovers(&app).await, Vec::<String>::new());
    assert!(Command::Check.run(app).await.is_err());
}

#[tokio::test]
async fn fewer_export_slots_than_continuous_exports_is_one_finding() {
    let stack = in_place().await;
    let app = stack.app();
    nothing_missing(&app).await;

    // One export at a time for two tables' continuous exports, every 300 s.
    stack.sim.state().set_capacity(Capacity {
        data_export: 1,
        ingestions: 8,
    });
    let report = check::check(&app).await.unwrap();
    assert_eq!(report.findings.len(), 1, "{report}");
    let f = &report.findings[0];
    assert_eq!((&f.database, &f.table), (&None, &None));
    assert_eq!(
        f.problem,
        "protect runs 2 continuous exports, all due every 300 s, but the source cluster runs at most 1 at once (`.show capacity`: DataExport total 1): they take 2 turns per interval and keep up only while a run takes under 150 s"
    );
    assert!(f.fix.contains("ExportCapacity"), "{}", f.fix);
    assert_eq!(report.capacity, [], "a finding, not a figure");
    assert!(Command::Check.run(app).await.is_err());
}
