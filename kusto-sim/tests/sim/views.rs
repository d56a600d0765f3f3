//! Materialized views over HTTP: what `.create [async] materialized-view` accepts and
//! refuses, what a view holds with and without backfill, and how `.show materialized-views`
//! and the schema script show it.

use kusto_sim::FaultConfig;
use reqwest::StatusCode;

use super::roundtrip::wait_for;
use super::support::{Client, Table, start};

const NO_STORAGE: &str = "http://127.0.0.1:9/devstoreaccount1";

const DAILY: &str = "T | summarize Rows = count(), Total = sum(n) by Day = bin(ts, 1d)";

/// A view's rows, each as its JSON text, sorted.
async fn rows(c: &Client, csl: &str) -> Vec<String> {
    let t = c.query("db", csl).await;
    let mut out: Vec<String> = t
        .rows
        .iter()
        .map(|r| serde_json::to_string(r).expect("a row is JSON"))
        .collect();
    out.sort();
    out
}

async fn ingest(c: &Client, rows: &str) {
    c.ok("db", &format!(".ingest inline into table T <| {rows}"))
        .await;
}

/// The operation id a `.create async` answered with.
fn operation(t: &Table) -> String {
    t.cell(0, "OperationId")
        .as_str()
        .expect("an operation id")
        .to_owned()
}

async fn refused(c: &Client, csl: &str) -> String {
    let (status, body) = c.mgmt("db", csl).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{csl}: {body}");
    body.to_string()
}

#[tokio::test]
async fn a_backfilled_view_holds_every_source_record_and_one_without_only_new_ones() {
    let server = start(&["db"], NO_STORAGE).await;
    let c = Client::new(&server);
    c.ok("db", ".create table T (ts:datetime, n:long)").await;
    ingest(
        &c,
        "2026-03-01T10:00:00Z,1\n2026-03-01T11:00:00Z,2\n2026-03-02T10:00:00Z,5",
    )
    .await;
    server.state().set_faults(FaultConfig {
        // Long enough that the checks below see the backfill running.
        operation_latency_ms: 1500,
        ..Default::default()
    });
    let started = c
        .ok(
            "db",
            &format!(
                ".create async materialized-view with (backfill=true, folder='Views', docString='daily') Daily on table T {{ {DAILY} }}"
            ),
        )
        .await;
    let id = operation(&started);
    let running = c.ok("db", &format!(".show operations {id}")).await;
    assert_eq!(running.cell(0, "State"), "InProgress");
    assert_eq!(running.cell(0, "Operation"), "MaterializedViewCreate");
    // Not available until the backfill ends: not listed, not queryable, and its name taken.
    assert!(c.ok("db", ".show materialized-views").await.rows.is_empty());
    let (status, _) = c.query_v2("db", "Daily").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    refused(
        &c,
        &format!(".create async ifnotexists materialized-view with (backfill=true) Daily on table T {{ {DAILY} }}"),
    )
    .await;
    assert_eq!(wait_for(&c, "db", &id).await.cell(0, "State"), "Completed");

    // The backfill took every record; a record ingested later is the view's too.
    ingest(&c, "2026-03-02T12:00:00Z,10").await;
    assert_eq!(rows(&c, "Daily").await, rows(&c, DAILY).await);
    assert_eq!(
        rows(&c, "Daily | project Day, Rows, Total").await,
        [
            r#"["2026-03-01T00:00:00.0000000Z",2,3]"#,
            r#"["2026-03-02T00:00:00.0000000Z",2,15]"#
        ]
    );
    let views = c.ok("db", ".show materialized-views").await;
    assert_eq!(
        (
            views.cell(0, "Name"),
            views.cell(0, "SourceTable"),
            views.cell(0, "Query"),
            views.cell(0, "Folder"),
            views.cell(0, "DocString")
        ),
        (
            &serde_json::json!("Daily"),
            &serde_json::json!("T"),
            &serde_json::json!(DAILY),
            &serde_json::json!("Views"),
            &serde_json::json!("daily")
        )
    );
    // Records dropped from the source stay in the view once materialized (the query above
    // materialized them).
    c.ok("db", ".drop extents <| .show table T extents").await;
    assert_eq!(rows(&c, "T | count").await, ["[0]"]);
    assert_eq!(rows(&c, "Daily | summarize sum(Rows)").await, ["[4]"]);

    // Without backfill, created empty: only records ingested after it count.
    c.ok(
        "db",
        ".create materialized-view Fresh on table T { T | summarize Rows = count() by n }",
    )
    .await;
    assert_eq!(rows(&c, "Fresh").await, Vec::<String>::new());
    ingest(&c, "2026-03-03T10:00:00Z,7").await;
    assert_eq!(rows(&c, "Fresh").await, ["[7,1]"]);
}

#[tokio::test]
async fn create_keeps_the_documented_rules() {
    let server = start(&["db"], NO_STORAGE).await;
    let c = Client::new(&server);
    c.ok("db", ".create table T (ts:datetime, n:long)").await;
    c.ok("db", ".create table NoIt (ts:datetime, n:long)").await;
    c.ok("db", ".delete table NoIt policy ingestiontime").await;
    c.ok("db", ".create table Rva (ts:datetime, n:long)").await;
    c.ok("db", ".alter table Rva policy restricted_view_access true")
        .await;
    c.ok("db", ".create function F() { T }").await;
    let view = |name: &str, source: &str, query: &str| {
        format!(".create materialized-view {name} on table {source} {{ {query} }}")
    };
    for (csl, why) in [
        (
            format!(
                ".create materialized-view with (backfill=true) V on table T {{ {DAILY} }}"
            ),
            "async",
        ),
        (view("V", "Missing", "Missing | summarize count()"), "Missing"),
        (
            view("V", "NoIt", "NoIt | summarize count()"),
            "IngestionTime",
        ),
        (
            view("V", "Rva", "Rva | summarize count()"),
            "restricted view access",
        ),
        (view("V", "T", "T | take 1"), "summarize"),
        (
            view("V", "T", "T | summarize c = count() by n | sort by c"),
            "sort or top",
        ),
        (view("V", "T", "NoIt | summarize count()"), "source table"),
        (view("V", "T", "T | summarize sum(Absent)"), "Absent"),
        (view("T", "T", "T | summarize count()"), "already exists"),
        (view("F", "T", "T | summarize count()"), "already exists"),
        (view("['a;b']", "T", "T | summarize count()"), "not a valid"),
        (
            ".create materialized-view with (effectiveDateTime=datetime(2026-01-01)) V on table T { T | summarize count() }".to_owned(),
            "backfill",
        ),
        (
            ".create materialized-view with (lookback=6h) V on table T { T | summarize count() }"
                .to_owned(),
            "lookback",
        ),
    ] {
        let body = refused(&c, &csl).await;
        assert!(body.contains(why), "{csl}: {body}");
    }
    assert!(c.ok("db", ".show materialized-views").await.rows.is_empty());

    // An existing view: an error, or with ifnotexists a no-op that keeps the old definition.
    c.ok("db", &view("V", "T", "T | summarize count()")).await;
    refused(&c, &view("V", "T", "T | summarize count()")).await;
    c.ok(
        "db",
        ".create ifnotexists materialized-view V on table T { T | summarize sum(n) }",
    )
    .await;
    let id = operation(
        &c.ok(
            "db",
            ".create async ifnotexists materialized-view with (backfill=true) V on table T { T | summarize sum(n) }",
        )
        .await,
    );
    assert_eq!(wait_for(&c, "db", &id).await.cell(0, "State"), "Completed");
    let views = c.ok("db", ".show materialized-views").await;
    assert_eq!(views.rows.len(), 1);
    assert_eq!(views.cell(0, "Query"), "T | summarize count()");
}

#[tokio::test]
async fn effective_date_time_backfills_only_records_ingested_after_it() {
    let server = start(&["db"], NO_STORAGE).await;
    let c = Client::new(&server);
    c.ok("db", ".create table T (ts:datetime, n:long)").await;
    ingest(&c, "2026-03-01T10:00:00Z,1").await;
    server
        .state()
        .advance_clock(std::time::Duration::from_secs(3600));
    let later = c.query("db", "print now()").await;
    let cut = later.rows[0][0].as_str().expect("a datetime").to_owned();
    server
        .state()
        .advance_clock(std::time::Duration::from_secs(3600));
    ingest(&c, "2026-03-01T11:00:00Z,2").await;
    let id = operation(
        &c.ok(
            "db",
            &format!(
                ".create async materialized-view with (backfill=true, effectiveDateTime=datetime({cut})) V on table T {{ T | summarize sum(n) }}"
            ),
        )
        .await,
    );
    assert_eq!(wait_for(&c, "db", &id).await.cell(0, "State"), "Completed");
    assert_eq!(rows(&c, "V").await, ["[2]"]);
}

#[tokio::test]
async fn the_schema_script_shows_views_and_external_tables_without_secrets() {
    let server = start(&["db"], NO_STORAGE).await;
    let c = Client::new(&server);
    c.ok("db", ".create table T (ts:datetime, n:long)").await;
    c.ok(
        "db",
        &format!(".create materialized-view with (folder='F', docString=\"it's\") V on table T {{ {DAILY} }}"),
    )
    .await;
    for (name, root) in [
        (
            "Mi",
            "https://lake.blob.core.windows.net/c/mi;managed_identity=system",
        ),
        (
            "Imp",
            "https://lake.blob.core.windows.net/c/imp;impersonate",
        ),
        (
            "Key",
            "https://lake.blob.core.windows.net/c/key;SECRETKEY==",
        ),
        (
            "Sas",
            "https://lake.blob.core.windows.net/c/sas?sv=1&sig=SECRET",
        ),
    ] {
        c.ok(
            "db",
            &format!(
                ".create external table {name} (ts:datetime, n:long) kind=storage partition by (Day:datetime = startofday(ts)) pathformat = (datetime_pattern('yyyyMMdd', Day)) dataformat=parquet (h@'{root}') with (folder='Lake', docString='lake {name}')"
            ),
        )
        .await;
    }
    let t = c.ok("db", ".show database db schema as csl script").await;
    let script: Vec<String> = (0..t.rows.len())
        .map(|i| {
            t.cell(i, "DatabaseSchemaScript")
                .as_str()
                .expect("a script row is a string")
                .to_owned()
        })
        .collect();
    let text = script.join("\n");
    assert!(!text.contains("SECRET"), "{text}");
    assert!(
        script.contains(&format!(
            ".create-or-alter materialized-view with (folder = \"F\", docString = \"it's\") ['V'] on table ['T'] {{ {DAILY} }}"
        )),
        "{text}"
    );
    for (name, root) in [
        ("Mi", "c/mi;managed_identity=system"),
        ("Imp", "c/imp;impersonate"),
        ("Key", "c/key;*****"),
        ("Sas", "c/sas?*****"),
    ] {
        let row = format!(
            ".create-or-alter external table ['{name}'] (['ts']:datetime, ['n']:long) kind = storage partition by (['Day']:datetime = startofday(['ts'])) pathformat = (datetime_pattern(\"yyyyMMdd\", Day)) dataformat = parquet (h@\"https://lake.blob.core.windows.net/{root}\") with (docstring = \"lake {name}\", folder = \"Lake\")"
        );
        assert!(script.contains(&row), "{row}\n{text}");
    }
}
