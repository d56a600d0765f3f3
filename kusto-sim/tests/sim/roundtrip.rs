//! `.export async` from a source cluster → `.ingest async` into a target cluster, through
//! Azurite, keeps every column type and value.

use std::time::Duration;

use serde_json::{Value as Json, json};

use super::support::{Client, azurite, container, start};

const COLUMNS: &str = "(['ts']:datetime, ['i']:int, ['l']:long, ['r']:real, ['d']:decimal, ['s']:string, ['b']:bool, ['t']:timespan, ['g']:guid, ['dy']:dynamic)";

/// Polls `.show operations <id>` until the operation leaves InProgress.
pub async fn wait_for(client: &Client, db: &str, id: &str) -> super::support::Table {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        let t = client.ok(db, &format!(".show operations {id}")).await;
        if t.cell(0, "State") != "InProgress" {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("operation {id} did not finish within 60 s");
}

fn external_table(name: &str, root: &str) -> String {
    format!(
        ".create-or-alter external table ['{name}'] {COLUMNS} kind=storage partition by (['Day']:datetime = startofday(['ts'])) pathformat = (datetime_pattern(\"yyyyMMdd\", ['Day'])) dataformat = parquet (h@'{root};managed_identity=system') with (folder='adxbackup', fileExtension='.parquet', namePrefix='bf-job1-b3')"
    )
}

#[tokio::test]
async fn export_then_ingest_keeps_every_type_and_value() {
    let Some(endpoint) = azurite() else { return };
    let source = start(&["src"], &endpoint).await;
    let target = start(&["dst"], &endpoint).await;
    let (s, t) = (Client::new(&source), Client::new(&target));
    let root = format!("{}/src/T", container(&source, &endpoint, "rt").await);
    s.ok("src", &format!(".create table ['T'] {COLUMNS}")).await;
    s.ok(
        "src",
        ".ingest inline into table ['T'] <| 2024-01-15T10:00:00.1234567Z,-5,9007199254740993,0.25,12345.678901234567890123,\"he said \"\"hi\"\", ok\",true,1.02:03:04.5,123e27de-1e4e-49d9-b579-fe0b331d3642,\"{\"\"a\"\":[1,null,\"\"x\"\"]}\"\n2024-01-16T00:00:00Z,,,,,,,,,\n,1,2,3,4,x,false,-00:00:01,00000000-0000-0000-0000-000000000001,\"\"\"just a string\"\"\"",
    )
    .await;
    s.ok("src", &external_table("bk_T", &root)).await;
    let cursor = source.state().cursor("src").unwrap();
    let started = s
        .ok("src", &format!(".export async to table ['bk_T'] with (sizeLimit=104857600) <| ['T'] | where cursor_before_or_at('{cursor}') | where ingestion_time() >= datetime(2020-01-01) and ingestion_time() < datetime(2100-01-01)"))
        .await;
    let id = started.rows[0][0].as_str().unwrap().to_string();
    let op = wait_for(&s, "src", &id).await;
    assert_eq!(op.cell(0, "State"), "Completed", "{:?}", op.rows);
    assert_eq!(op.cell(0, "Operation"), "TableExport");
    let details = s.ok("src", &format!(".show operation {id} details")).await;
    assert_eq!(
        details.schema(),
        "ExternalTableName:string, Path:string, NumRecords:long"
    );
    let paths: Vec<String> = details
        .rows
        .iter()
        .map(|r| r[1].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        paths.len(),
        3,
        "one file per day partition, nulls in the default partition"
    );
    for p in &paths {
        let name = p.rsplit('/').next().unwrap();
        assert!(
            name.starts_with("bf-job1-b3") && name.ends_with(".parquet"),
            "{p}"
        );
        assert!(
            p.contains("/20240115/")
                || p.contains("/20240116/")
                || p.contains("/__DEFAULT_PARTITION__/"),
            "{p}"
        );
    }
    let rows: i64 = details.rows.iter().map(|r| r[2].as_i64().unwrap()).sum();
    assert_eq!(rows, 3);
    let external = s.query("src", "external_table('bk_T') | count").await;
    assert_eq!(external.single_long(), 3);

    t.ok("dst", &format!(".create table ['T'] {COLUMNS}")).await;
    let uris: Vec<String> = paths
        .iter()
        .map(|p| format!("h'{p};managed_identity=system'"))
        .collect();
    let ingest = format!(
        ".ingest async into table ['T'] ({}) with (format='parquet', creationTime='2024-01-15T00:00:00Z', tags='[\"ingest-by:job-chunk\"]', ingestIfNotExists='[\"job-chunk\"]')",
        uris.join(", ")
    );
    let id = t.ok("dst", &ingest).await.rows[0][0]
        .as_str()
        .unwrap()
        .to_string();
    let op = wait_for(&t, "dst", &id).await;
    assert_eq!(op.cell(0, "State"), "Completed", "{:?}", op.rows);
    let order = "| sort by l asc nulls first | project ts, i, l, r, d, s, b, t, g, dy";
    let before = s.query("src", &format!("['T'] {order}")).await;
    let after = t.query("dst", &format!("['T'] {order}")).await;
    assert_eq!(after.schema(), before.schema());
    let mut expected = before.rows.clone();
    // Parquet keeps microseconds: the 7th fractional digit of a datetime is dropped.
    for row in &mut expected {
        if row[0] == json!("2024-01-15T10:00:00.1234567Z") {
            row[0] = json!("2024-01-15T10:00:00.1234560Z");
        }
    }
    assert_eq!(after.rows, expected);
    assert!(
        after
            .rows
            .iter()
            .any(|r| r[9] == json!({"a": [1, null, "x"]}))
    );
    assert!(
        after
            .rows
            .iter()
            .any(|r| r[9] == Json::String("just a string".into()))
    );

    let extents = t
        .ok(
            "dst",
            ".show table ['T'] extents where tags has 'ingest-by:job-chunk'",
        )
        .await;
    assert_eq!(extents.rows.len(), 3);
    assert_eq!(
        extents.cell(0, "MaxCreatedOn"),
        "2024-01-15T00:00:00.0000000Z"
    );
    let again = t
        .ok("dst", &ingest.replace(".ingest async", ".ingest"))
        .await;
    assert_eq!(
        again.cell(0, "ExtentId"),
        "00000000-0000-0000-0000-000000000000"
    );
    assert_eq!(t.query("dst", "['T'] | count").await.single_long(), 3);
}

#[tokio::test]
async fn unpartitioned_external_tables_and_bad_sources() {
    let Some(endpoint) = azurite() else { return };
    let server = start(&["db"], &endpoint).await;
    let c = Client::new(&server);
    let root = format!("{}/db/U", container(&server, &endpoint, "flat").await);
    c.ok("db", ".create table U (x:string)").await;
    c.ok("db", ".ingest inline into table U <| a\nb").await;
    c.ok("db", &format!(".create-or-alter external table bk_U (x:string) kind=storage dataformat=parquet (h@'{root};managed_identity=system')")).await;
    let out = c.ok("db", ".export to table bk_U <| U").await;
    let path = out.cell(0, "Path").as_str().unwrap().to_string();
    assert!(
        path.starts_with(&format!("{root}/")) && !path[root.len() + 1..].contains('/'),
        "{path}"
    );
    let (status, body) = c
        .mgmt("db", ".export to table bk_U <| U | extend y = 1")
        .await;
    assert_eq!(status, 400, "schema mismatch: {body}");
    let missing = format!("{root}/nothing-here.parquet;managed_identity=system");
    let (status, body) = c
        .mgmt(
            "db",
            &format!(".ingest into table U (h'{missing}') with (format='parquet')"),
        )
        .await;
    assert!(status.is_server_error() || status == 400, "{status} {body}");
}
