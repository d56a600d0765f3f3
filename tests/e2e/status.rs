//! status and verify end to end on Azurite + kusto-sim: two tables with history (backfilled)
//! and newer rows (continuous export). Verification agrees with the source; a `.delete` in
//! the source shows up as extra rows on exactly that table and day; a deleted parquet file
//! shows up as a missing cataloged file, a replaced or overwritten one by its footer; the status document has its pinned shape, counts
//! what the test ingested, and the CLI renders it and exits 3 while something needs
//! attention; the `status` HTTP function answers the same document through `res`.

use std::process::Command;

use adx_backup::app::App;
use adx_backup::ids::{DatabaseName, Day, TableName, TableRef};
use adx_backup::protect;
use adx_backup::status::{self, Filter};
use adx_backup::storage::catalog::Catalog;
use adx_backup::verify::{self, Finding, Outcome};
use futures::TryStreamExt;
use serde_json::{Value, json};

use crate::harness::host::FunctionsHost;
use crate::harness::parquet::read_backup;
use crate::harness::stack::Stack;
use crate::harness::tasks::drive;

const DB: &str = "Sales";

/// Row `id` of a table: its day is 2026-03-01 + id % 3, so each day gets every third id.
fn row(id: u64) -> String {
    format!("2026-03-0{}T0{}:00:00Z,{id}", 1 + id % 3, id % 10)
}

async fn ingest(stack: &Stack, table: &str, ids: std::ops::Range<u64>) {
    let rows: Vec<String> = ids.map(row).collect();
    stack
        .kusto(&format!(
            ".ingest inline into table {table} <|\n{}",
            rows.join("\n")
        ))
        .await;
}

/// Orders: ids 0..12 of history and 12..18 exported continuously (6 rows a day); Kinds: ids
/// 0..9 of history and 9..12 exported (4 rows a day). Both protected, backfilled, harvested.
/// The backfills protect asked for are still on the task queue. (The test later adds Kinds
/// 12..15, which no export run picks up.)
async fn protected_stack() -> (Stack, App) {
    let mut stack = Stack::start(DB).await;
    stack.set("AdxBackup__Backfill", "on");
    stack.set("AdxBackup__BackfillPollSeconds", "1");
    // kusto-sim's clock is its own; lag is not what this test is about.
    stack.set("AdxBackup__LagAlertSeconds", "315360000");
    for table in ["Orders", "Kinds"] {
        stack
            .kusto(&format!(
                ".create table {table} (Timestamp:datetime, Id:long)"
            ))
            .await;
    }
    ingest(&stack, "Orders", 0..12).await;
    ingest(&stack, "Kinds", 0..9).await;
    let app = stack.app();
    protect::run_once(&app).await.unwrap();
    // The first run records the StartCursor: what came before is history.
    stack.run_exports().await;
    ingest(&stack, "Orders", 12..18).await;
    ingest(&stack, "Kinds", 9..12).await;
    stack.run_exports().await;
    protect::run_full_pass(&app).await.unwrap();
    (stack, app)
}

fn day(folder: &str) -> Day {
    Day::parse_folder(folder).unwrap()
}

fn table_ref(table: &str) -> TableRef {
    TableRef {
        database: DatabaseName::new(DB).unwrap(),
        table: TableName::new(table).unwrap(),
    }
}

/// The JSON's shape: objects keep their keys, arrays the shape of their first element,
/// values become their type.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(a) => Value::Array(a.first().map(shape).into_iter().collect()),
        Value::String(_) => "string".into(),
        Value::Number(_) => "number".into(),
        Value::Bool(_) => "bool".into(),
        Value::Null => "null".into(),
    }
}

// Multi-threaded: the CLI runs as a child process the test waits for, while kusto-sim answers
// it from this runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_a_delete_and_a_lost_file_and_status_shows_them() {
    let (stack, app) = protected_stack().await;

    // 0. Before the history is backfilled the backup is behind, which is not drift: only the
    // continuous export's 2 rows a day are in it.
    let early = verify::verify_table(&app, &table_ref("Orders"), false)
        .await
        .unwrap();
    assert_eq!(early.outcome, Outcome::Behind, "{early:#?}");
    assert!(
        early.behind.iter().any(|why| why.contains("backfill")),
        "{early:#?}"
    );
    let behind: Vec<Finding> = ["20260301", "20260302", "20260303"]
        .map(|d| Finding::Behind {
            day: day(d),
            backup_rows: 2,
            source_rows: 6,
        })
        .into();
    assert_eq!(early.findings, behind);
    assert!(
        drive(&app, false).await > 0,
        "protect asked for no backfill"
    );

    // 1. Everything agrees, also with rows the export has not exported yet (one a day): they
    // are not counted against the backup.
    ingest(&stack, "Kinds", 12..15).await;
    let all = verify::run_inline(&app, None, None, true).await.unwrap();
    assert_eq!(all.len(), 2);
    for v in &all {
        assert_eq!(v.outcome, Outcome::Ok, "{v:#?}");
        assert_eq!(v.days_compared, 3, "{v:#?}");
        assert!(v.findings.is_empty(), "{v:#?}");
        let files = v.files.unwrap();
        assert_eq!((files.missing, files.uncataloged), (0, 0), "{v:#?}");
    }

    // 2. A `.delete` of one row of Orders on 2026-03-02 (id 4): extra rows there, nowhere else.
    stack
        .kusto(".delete table Orders records <| Orders | where Id == 4")
        .await;
    // 3. One parquet file of Kinds is lost from storage.
    let catalog = Catalog::new(&app.blobs, &app.layout);
    let kinds: Vec<_> = catalog
        .stream(&table_ref("Kinds").database, &table_ref("Kinds").table)
        .try_collect()
        .await
        .unwrap();
    let lost = kinds
        .iter()
        .find(|a| a.day == day("20260303"))
        .unwrap()
        .clone();
    app.blobs.delete(&lost.path).await.unwrap();

    let all = verify::run_inline(&app, None, None, true).await.unwrap();
    let orders = all.iter().find(|v| v.table.as_str() == "Orders").unwrap();
    let kinds = all.iter().find(|v| v.table.as_str() == "Kinds").unwrap();
    assert_eq!(orders.outcome, Outcome::Drift);
    assert_eq!(
        orders.findings,
        [Finding::ExtraRows {
            day: day("20260302"),
            backup_rows: 6,
            source_rows: 5
        }]
    );
    assert_eq!(kinds.outcome, Outcome::Drift);
    assert_eq!(
        kinds.findings,
        [Finding::MissingFile {
            path: lost.path.clone(),
            day: day("20260303"),
            rows: lost.rows
        }]
    );
    // Without --files the lost file is not looked for: the counts still agree.
    let counts_only = verify::verify_table(&app, &table_ref("Kinds"), false)
        .await
        .unwrap();
    assert_eq!(counts_only.outcome, Outcome::Ok, "{counts_only:#?}");
    verify::verify_table(&app, &table_ref("Kinds"), true)
        .await
        .unwrap();

    // 4. status: the pinned shape, the counts the test ingested, what needs attention. A
    // timer pass first, so the check report and the janitor's count are there too.
    protect::plan(&app, false, protect::Delivery::Inline)
        .await
        .unwrap();
    let s = status::collect(&app, &Filter::default()).await.unwrap();
    let doc = serde_json::to_value(&s).unwrap();
    assert_eq!(shape(&doc), expected_shape(), "{doc:#}");
    assert_eq!(doc["version"], 1);
    let tables = &doc["databases"][0]["tables"];
    let by_name = |name: &str| {
        tables
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["table"] == name)
            .unwrap()
            .clone()
    };
    let (o, k) = (by_name("Orders"), by_name("Kinds"));
    assert_eq!(o["catalog"]["rows"], 18);
    assert_eq!(k["catalog"]["rows"], 12);
    assert_eq!(o["catalog"]["days"], 3);
    assert_eq!(o["catalog"]["oldest_day"], "20260301");
    assert_eq!(o["catalog"]["newest_day"], "20260303");
    assert_eq!(o["backfill"]["rows_exported"], 12);
    assert_eq!(k["backfill"]["rows_exported"], 9);
    assert_eq!(o["backfill"]["complete"], true);
    assert_eq!(k["verification"]["missing_files"], 1);
    assert_eq!(s.attention.len(), 2, "{:#?}", s.attention);
    assert!(
        s.attention[0].starts_with(
            "Sales.Kinds: verification found drift: cataloged file missing from storage"
        ),
        "{:#?}",
        s.attention
    );
    assert!(
        s.attention[1].starts_with(
            "Sales.Orders: verification found drift: 20260302: backup holds 6 rows, the source 5"
        ),
        "{:#?}",
        s.attention
    );

    // 5. The CLI: a readable table without colours (not a terminal), exit code 3.
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_adx-backup"))
            .args(args)
            .env_clear()
            .envs(stack.settings.iter().cloned())
            .output()
            .expect("run adx-backup")
    };
    let out = cli(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains('\x1b'), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[2].starts_with("TABLE         PROTECTED  LAG"),
        "{text}"
    );
    assert!(lines[3].starts_with("Sales.Kinds   yes"), "{text}");
    assert!(
        lines[3].contains("12    ") && lines[3].ends_with("drift"),
        "{text}"
    );
    assert!(lines[4].starts_with("Sales.Orders  yes"), "{text}");
    assert!(text.contains("NEEDS ATTENTION (2):"), "{text}");
    let one = cli(&["status", "--json", "--table", "Kinds"]);
    let json: Value = serde_json::from_slice(&one.stdout).unwrap();
    assert_eq!(json["databases"][0]["tables"].as_array().unwrap().len(), 1);
    assert_eq!(one.status.code(), Some(3));
    // Every table (Kinds, checked without --files, is ok again and logs at info): stdout is
    // still nothing but the JSON report.
    let verified = cli(&["verify", "--json"]);
    let report: Value = serde_json::from_slice(&verified.stdout)
        .expect("stdout is the JSON report, logs go to stderr");
    let outcomes: Vec<&Value> = report
        .as_array()
        .unwrap()
        .iter()
        .map(|v| &v["outcome"])
        .collect();
    assert_eq!(outcomes, ["ok", "drift"]);
    let verified = cli(&["verify", "--table", "Orders"]);
    let said = format!(
        "{}\n{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    assert_eq!(verified.status.code(), Some(3), "{said}");
    assert!(said.contains("Sales.Orders: drift"), "{said}");

    // 6. The HTTP function, as the host invokes it.
    let host = FunctionsHost::start(&stack.settings).await;
    let req = json!({"Data": {"req": {
        "Url": "https://app.azurewebsites.net/api/status?table=Orders",
        "Method": "GET",
        "Query": json!({"table": "Orders"}).to_string(),
        "Headers": {}, "Params": {}, "Body": null}},
        "Metadata": {}});
    let verdict = host.post("status", req.to_string().into_bytes()).await;
    assert!(verdict.succeeded(), "{}", verdict.raw);
    let res = &verdict.body.as_ref().unwrap()["Outputs"]["res"];
    assert_eq!(res["statusCode"], 200);
    let body: Value = serde_json::from_str(res["body"].as_str().unwrap()).unwrap();
    let tables = body["databases"][0]["tables"].as_array().unwrap();
    assert_eq!(tables.len(), 1);
    assert_eq!(tables[0]["table"], "Orders");
}

/// The StatusV1 document's shape (docs/status.md), for a status with tables, backfills and
/// no restore job.
fn expected_shape() -> Value {
    json!({
        "version": "number",
        "generated_at": "string",
        "lag_alert_seconds": "number",
        "needs_attention": "bool",
        "attention": ["string"],
        "databases": [{
            "database": "string",
            "tables": [{
                "table": "string",
                "protected": "bool",
                "protection": "string",
                "export": {
                    "name": "string",
                    "lag_seconds": "number",
                    "last_run_result": "string",
                    "last_run_time": "string",
                    "disabled": "bool",
                    "recent_failures": "number",
                    "checked_at": "string"
                },
                "backfill": {
                    "jobs": "number",
                    "complete": "bool",
                    "batches_done": "number",
                    "batches_total": "number",
                    "batches_failed": "number",
                    "rows_exported": "number",
                    "rows_planned": "number",
                    "gaps": "number"
                },
                "catalog": {
                    "artifacts": "number",
                    "rows": "number",
                    "bytes": "number",
                    "days": "number",
                    "oldest_day": "string",
                    "newest_day": "string",
                    "updated_at": "string"
                },
                "verification": {
                    "verified_at": "string",
                    "outcome": "string",
                    "days_compared": "number",
                    "findings": ["string"],
                    "behind": [],
                    "missing_files": "number",
                    "bad_files": "number"
                },
                "retention": {
                    "policy": "string",
                    "keep_days": "null",
                    "monthly_months": "number",
                    "first_kept_day": "null",
                    "next_prune": "null",
                    "bytes_kept": "number",
                    "pruned_days": "number",
                    "newest_pruned_day": "null",
                    "last_prune": "null"
                },
                "last_error": "null",
                "attention": ["string"]
            }],
            "temporary_objects": {
                "count": "number",
                "orphans_waiting": "number",
                "dropped": "number"
            }
        }],
        "backfills": [{
            "job": "string",
            "database": "string",
            "table": "string",
            "reason": "string",
            "state": "string",
            "batches_done": "number",
            "batches_total": "number",
            "rows_exported": "number",
            "rows_planned": "number",
            "rows_per_second": "number",
            "eta_seconds": "null",
            "started_at": "string",
            "updated_at": "string",
            "errors": []
        }],
        "restores": [],
        "check": {
            "findings": [],
            "unverified": []
        }
    })
}

/// `verify --files` reads every live cataloged file's footer: a file replaced by another of
/// other rows and a file overwritten with text are each found on their path; the source
/// counts alone still agree, and the footers of the intact files add up to the rows the
/// test ingested.
#[tokio::test]
async fn verify_files_reads_every_footer_and_finds_replaced_and_broken_files() {
    let (_stack, app) = protected_stack().await;
    assert!(
        drive(&app, false).await > 0,
        "protect asked for no backfill"
    );
    let orders = table_ref("Orders");
    let clean = verify::verify_table(&app, &orders, true).await.unwrap();
    assert_eq!(clean.outcome, Outcome::Ok, "{clean:#?}");
    let files = clean.files.unwrap();
    // Orders: ids 0..18 were ingested, each is in exactly one file.
    assert_eq!(files.rows_in_files, 18, "{files:?}");
    assert_eq!(
        (files.missing, files.wrong_rows, files.unreadable),
        (0, 0, 0)
    );

    // Rows per file as the parquet crate reads them, not as the catalog says.
    let backup = read_backup(&app, DB, "Orders").await;
    let rows = |i: usize| backup[i].file.rows.len() as u64;
    let replaced = (1..backup.len())
        .find(|&i| rows(i) != rows(0))
        .expect("two files with different row counts");
    let broken = (1..backup.len())
        .find(|&i| i != replaced)
        .expect("a third file");
    let (donor, _) = app.blobs.read(&backup[0].artifact.path).await.unwrap();
    let replaced_path = backup[replaced].artifact.path.clone();
    let broken_path = backup[broken].artifact.path.clone();
    app.blobs.write(&replaced_path, donor).await.unwrap();
    app.blobs
        .write(
            &broken_path,
            bytes::Bytes::from_static(b"this is not parquet"),
        )
        .await
        .unwrap();

    let v = verify::verify_table(&app, &orders, true).await.unwrap();
    assert_eq!(v.outcome, Outcome::Drift, "{v:#?}");
    let files = v.files.unwrap();
    assert_eq!(
        (files.missing, files.wrong_rows, files.unreadable),
        (0, 1, 1)
    );
    assert_eq!(
        files.rows_in_files,
        18 - rows(replaced) + rows(0) - rows(broken),
        "{files:?}"
    );
    assert_eq!(v.findings.len(), 2, "{v:#?}");
    assert!(v.findings.contains(&Finding::FileRows {
        path: replaced_path,
        day: backup[replaced].artifact.day,
        cataloged_rows: rows(replaced),
        file_rows: rows(0),
    }));
    assert!(
        v.findings.iter().any(|f| matches!(f,
            Finding::UnreadableFile { path, reason, .. } if *path == broken_path && reason.contains("PAR1"))),
        "{v:#?}"
    );
    // The source's counts against the catalog see nothing: only the files tell.
    let counts_only = verify::verify_table(&app, &orders, false).await.unwrap();
    assert_eq!(counts_only.outcome, Outcome::Ok, "{counts_only:#?}");
}
