//! Each command's result columns as documented, and the table/cursor semantics.

use serde_json::json;

use super::support::{Client, start};

const NO_STORAGE: &str = "http://127.0.0.1:0/devstoreaccount1";

const TABLE_SCHEMA: &str =
    "TableName:string, Schema:string, DatabaseName:string, Folder:string, DocString:string";
const CE_SCHEMA: &str = "Name:string, ExternalTableName:string, Query:string, ForcedLatency:timespan, IntervalBetweenRuns:timespan, CursorScopedTables:string, ExportProperties:string, LastRunTime:datetime, StartCursor:string, IsDisabled:bool, LastRunResult:string, ExportedTo:datetime, IsRunning:bool";

#[tokio::test]
async fn result_columns_follow_the_reference() {
    let server = start(&["db", "other"], NO_STORAGE).await;
    let c = Client::new(&server);
    let cases: &[(&str, &str)] = &[
        (
            ".show databases",
            "DatabaseName:string, PersistentStorage:string, Version:string, IsCurrent:bool, DatabaseAccessMode:string, PrettyName:string, ReservedSlot1:bool, DatabaseId:guid, InTransitionTo:string",
        ),
        (
            ".create table ['T'] (['a']:datetime, ['b']:long)",
            TABLE_SCHEMA,
        ),
        (".create-merge table T (c:string)", TABLE_SCHEMA),
        (
            ".create-merge tables U (x:long), V (y:string)",
            "TableName:string, DatabaseName:string, Folder:string, DocString:string",
        ),
        (".alter-merge table T (d:dynamic)", TABLE_SCHEMA),
        (
            ".show tables",
            "TableName:string, DatabaseName:string, Folder:string, DocString:string",
        ),
        (".show table T cslschema", TABLE_SCHEMA),
        (".show table T schema as json", TABLE_SCHEMA),
        (
            ".show database db schema as csl script",
            "DatabaseSchemaScript:string",
        ),
        (".show database schema as json", "DatabaseSchema:string"),
        (
            ".show table T policy ingestiontime",
            "PolicyName:string, EntityName:string, Policy:string, ChildEntities:string, EntityType:string",
        ),
        (
            ".alter tables (T, U) policy ingestiontime true",
            "PolicyName:string, EntityName:string, Policy:string, ChildEntities:string, EntityType:string",
        ),
        (".ingest inline into table U <| 1", "ExtentId:guid"),
        (
            ".set-or-append W <| U | extend z = x * 2",
            "ExtentId:guid, OriginalSize:long, ExtentSize:long, ColumnSize:long, IndexSize:long, RowCount:long",
        ),
        (
            ".show table U extents",
            "ExtentId:guid, DatabaseName:string, TableName:string, MaxCreatedOn:datetime, OriginalSize:real, ExtentSize:real, CompressedSize:real, IndexSize:real, Blocks:long, Segments:long, ExtentContainerId:string, RowCount:long, MinCreatedOn:datetime, Tags:string, Kind:string, DeletedRowCount:long",
        ),
        (
            ".create-or-alter external table ['bk_T'] (['a']:datetime, ['b']:long, ['c']:string, ['d']:dynamic) kind=storage partition by (['Day']:datetime = startofday(['a'])) pathformat = (datetime_pattern(\"yyyyMMdd\", ['Day'])) dataformat = parquet (h@'http://127.0.0.1:0/devstoreaccount1/c/p;managed_identity=system') with (folder='adxbackup', fileExtension='.parquet')",
            "TableName:string, TableType:string, Folder:string, DocString:string, Schema:string, Properties:string",
        ),
        (
            ".show external tables",
            "TableName:string, TableType:string, Folder:string, DocString:string, Properties:string, ConnectionStrings:dynamic, Partitions:dynamic, PathFormat:string",
        ),
        (
            ".create-or-alter continuous-export ['ce_T'] over (['T']) to table ['bk_T'] with (intervalBetweenRuns=5m, forcedLatency=1m, sizeLimit=104857600) <| ['T']",
            CE_SCHEMA,
        ),
        (".show continuous-exports", CE_SCHEMA),
        (".show continuous-export ['ce_T']", CE_SCHEMA),
        (
            ".show continuous-export ['ce_T'] exported-artifacts",
            "Timestamp:datetime, ExternalTableName:string, Path:string, NumRecords:long, SizeInBytes:long",
        ),
        (
            ".show continuous-export ['ce_T'] failures",
            "Timestamp:datetime, OperationId:string, Name:string, LastSuccessRun:datetime, FailureKind:string, Details:string",
        ),
        (".disable continuous-export ['ce_T']", CE_SCHEMA),
        (".enable continuous-export ['ce_T']", CE_SCHEMA),
        (".drop continuous-export ['ce_T']", CE_SCHEMA),
        (
            ".show operations",
            "OperationId:guid, Operation:string, NodeId:string, StartedOn:datetime, LastUpdatedOn:datetime, Duration:timespan, State:string, Status:string, RootActivityId:guid, ShouldRetry:bool, Database:string, Principal:string, User:string, AdminEpochStartTime:datetime, VirtualCluster:string",
        ),
        (
            ".show capacity",
            "Resource:string, Total:long, Consumed:long, Remaining:long",
        ),
        (
            ".execute database script <| .create table S (s:string)\n.show tables",
            "OperationId:guid, CommandType:string, CommandText:string, Result:string, Reason:string",
        ),
        (
            ".drop extents <| .show table U extents where tags has 'none'",
            "ExtentId:guid, TableName:string, CreatedOn:datetime",
        ),
        (
            ".drop external table ['bk_T']",
            "TableName:string, TableType:string, Folder:string, DocString:string, Properties:string, ConnectionStrings:dynamic, Partitions:dynamic, PathFormat:string",
        ),
        (".drop table W", "TableName:string, DatabaseName:string"),
    ];
    for (csl, schema) in cases {
        let t = c.ok("db", csl).await;
        assert_eq!(t.schema(), *schema, "{csl}");
    }
    let t = c.ok("db", ".show table T cslschema").await;
    assert_eq!(
        t.cell(0, "Schema"),
        "a:datetime, b:long, c:string, d:dynamic"
    );
    let cap = c.ok("db", ".show capacity data-export").await;
    assert_eq!(cap.rows[0][0], "DataExport");
}

/// `.show capacity` reports the totals the cluster was given, and exports are throttled
/// against that total: the cluster a test stands for can be as small as it likes.
#[tokio::test]
async fn capacity_totals_are_configurable_and_throttle_exports() {
    let server = start(&["db"], NO_STORAGE).await;
    let c = Client::new(&server);
    server.state().set_capacity(kusto_sim::Capacity {
        data_export: 1,
        ingestions: 3,
    });
    let cap = c.ok("db", ".show capacity").await;
    let row = |name: &str| {
        cap.rows
            .iter()
            .find(|r| r[0] == name)
            .map(|r| (r[1].clone(), r[2].clone(), r[3].clone()))
            .unwrap()
    };
    assert_eq!(row("DataExport"), (json!(1), json!(0), json!(1)));
    assert_eq!(row("Ingestions"), (json!(3), json!(0), json!(3)));

    // One export at a time: while one runs, the next is throttled as Kusto throttles it.
    server.state().set_faults(kusto_sim::FaultConfig {
        operation_latency_ms: 60_000,
        ..Default::default()
    });
    c.ok("db", ".create table T (a:datetime, b:long)").await;
    c.ok(
        "db",
        ".create external table bk_T (a:datetime, b:long) kind=storage dataformat=parquet (h@'http://127.0.0.1:0/devstoreaccount1/c/p;managed_identity=system')",
    )
    .await;
    c.ok("db", ".export async to table bk_T <| T").await;
    let cap = c.ok("db", ".show capacity data-export").await;
    assert_eq!(
        cap.rows[0][2..],
        [json!(1), json!(0)],
        "consumed, remaining"
    );
    let (status, body) = c.mgmt("db", ".export async to table bk_T <| T").await;
    assert_eq!(status, 429, "{body}");
}

#[tokio::test]
async fn schema_script_recreates_the_tables() {
    let server = start(&["src", "dst"], NO_STORAGE).await;
    let c = Client::new(&server);
    c.ok(
        "src",
        ".create table ['we\\'ird'] (['a b']:long, t:datetime) with (folder='f', docstring='d')",
    )
    .await;
    let script = c.ok("src", ".show database src schema as csl script").await;
    let text: Vec<String> = script
        .rows
        .iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect();
    let run = c
        .ok(
            "dst",
            &format!(".execute database script <|\n{}", text.join("\n")),
        )
        .await;
    assert!(
        run.rows.iter().all(|r| r[3] == "Completed"),
        "{:?}",
        run.rows
    );
    let t = c.ok("dst", ".show table ['we\\'ird'] cslschema").await;
    assert_eq!(t.cell(0, "Schema"), "a b:long, t:datetime");
    assert_eq!(t.cell(0, "Folder"), "f");
}

#[tokio::test]
async fn cursors_give_each_row_exactly_once() {
    let server = start(&["db"], NO_STORAGE).await;
    let c = Client::new(&server);
    c.ok("db", ".create table T (a:long)").await;
    c.ok("db", ".ingest inline into table T <| 1\n2").await;
    let c1 = server.state().cursor("db").unwrap();
    c.ok("db", ".ingest inline into table T <| 3").await;
    let c2 = server.state().cursor("db").unwrap();
    assert!(c2 > c1 && c1.len() == 18);
    let count = |q: String| {
        let c = &c;
        async move { c.query("db", &q).await.single_long() }
    };
    assert_eq!(
        count(format!("T | where cursor_before_or_at('{c1}') | count")).await,
        2
    );
    assert_eq!(
        count(format!("T | where cursor_after('{c1}') | count")).await,
        1
    );
    assert_eq!(
        count(format!("T | where cursor_after('{c2}') | count")).await,
        0
    );
    assert_eq!(count("T | where cursor_after('') | count".into()).await, 3);
    assert_eq!(
        count("T | where cursor_before_or_at('') | count".into()).await,
        0
    );
    let (status, body) = c.query_v2("db", "T | where cursor_after('x1')").await;
    assert_eq!(status, 400, "{body}");
    let t = c.query("db", "print c = cursor_current()").await;
    assert_eq!(t.rows[0][0], json!(c2));
}

#[tokio::test]
async fn ingestion_time_filters_and_summaries() {
    let server = start(&["db"], NO_STORAGE).await;
    let c = Client::new(&server);
    c.ok("db", ".create table T (ts:datetime, id:long, v:real)")
        .await;
    c.ok("db", ".ingest inline into table T <| 2024-01-15T01:00:00Z,1,1.5\n2024-01-15T23:00:00Z,2,2.5\n2024-01-16T00:00:00Z,2,\n,3,4").await;
    let t = c
        .query("db", "T | where ingestion_time() between (ago(1h) .. now()) | summarize Rows=count(), Ids=dcount(id), S=sum(v), Lo=min(ts), Hi=max(ts) by Day=startofday(ts) | sort by Day asc")
        .await;
    assert_eq!(
        t.schema(),
        "Day:datetime, Rows:long, Ids:long, S:real, Lo:datetime, Hi:datetime"
    );
    assert_eq!(t.rows.len(), 3);
    assert_eq!(t.rows[0][0], serde_json::Value::Null);
    assert_eq!(t.rows[1][1], 2);
    assert_eq!(t.rows[1][3], 4.0);
    let t = c
        .query(
            "db",
            "T | where isnull(ts) or id in (2) | project id, twice = id * 2 | take 10",
        )
        .await;
    assert_eq!(t.rows.len(), 3);
    let t = c
        .query(
            "db",
            "T | summarize count(), hash = sum(hash(tostring(pack_all()))) by bin(ts, 1d)",
        )
        .await;
    assert_eq!(t.schema(), "ts:datetime, count_:long, hash:long");
    let (status, _) = c.query_v2("db", "T | where id == 'x'").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn soft_delete_and_extent_tags() {
    let server = start(&["db"], NO_STORAGE).await;
    let c = Client::new(&server);
    c.ok("db", ".create table T (a:long)").await;
    c.ok(
        "db",
        ".ingest inline into table T with (tags='[\"ingest-by:x\", \"keep\"]') <| 1\n2\n3",
    )
    .await;
    c.ok(
        "db",
        ".ingest inline into table T with (tags='[\"ingest-by:y\"]') <| 4",
    )
    .await;
    let deleted = c
        .ok("db", ".delete table T records <| T | where a > 2")
        .await;
    assert_eq!(deleted.rows.len(), 2);
    assert_eq!(c.query("db", "T | count").await.single_long(), 2);
    let x = c
        .ok("db", ".show table T extents where tags has 'ingest-by:x'")
        .await;
    assert_eq!(
        (
            x.rows.len(),
            x.cell(0, "RowCount"),
            x.cell(0, "DeletedRowCount")
        ),
        (1, &json!(3), &json!(1))
    );
    assert_eq!(x.cell(0, "Tags"), "ingest-by:x\r\nkeep");
    c.ok(
        "db",
        ".drop extents <| .show table T extents where tags has 'ingest-by:x'",
    )
    .await;
    assert_eq!(c.query("db", "T | count").await.single_long(), 0);
    c.ok("db", ".create table S (a:long)").await;
    c.ok("db", ".ingest inline into table S <| 9").await;
    c.ok("db", ".move extents all from table S to table T")
        .await;
    assert_eq!(c.query("db", "T | count").await.single_long(), 1);
}

/// `.show tables (T1, T2) extents where tags ...` (the show-extents doc's second table-scope
/// form): every listed table's extents in one result, filtered like `.show table T extents`,
/// and a pipe runs over them; a missing table fails the command, as for one table.
#[tokio::test]
async fn extents_of_several_tables_in_one_command() {
    let server = start(&["db"], NO_STORAGE).await;
    let c = Client::new(&server);
    c.ok("db", ".create table T (a:long)").await;
    c.ok("db", ".create table ['U 2'] (a:long)").await;
    c.ok("db", ".create table V (a:long)").await;
    for (table, tag, rows) in [
        ("T", "ingest-by:j.c-1.0", "1\n2"),
        ("T", "ingest-by:j.c-2.0", "3"),
        ("['U 2']", "ingest-by:j.c-3.0", "4\n5\n6"),
        ("V", "ingest-by:j.c-4.0", "7"),
        ("T", "ingest-by:other.c-1.0", "8"),
    ] {
        c.ok(
            "db",
            &format!(".ingest inline into table {table} with (tags='[\"{tag}\"]') <| {rows}"),
        )
        .await;
    }
    let all = c
        .ok(
            "db",
            ".show tables (T, ['U 2']) extents where tags contains 'ingest-by:j.'",
        )
        .await;
    let mut rows: Vec<(String, i64)> = (0..all.rows.len())
        .map(|i| {
            (
                all.cell(i, "Tags").as_str().unwrap().to_owned(),
                all.cell(i, "RowCount").as_i64().unwrap(),
            )
        })
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            ("ingest-by:j.c-1.0".to_owned(), 2),
            ("ingest-by:j.c-2.0".to_owned(), 1),
            ("ingest-by:j.c-3.0".to_owned(), 3)
        ]
    );
    let open = c
        .ok(
            "db",
            ".show tables (T, ['U 2']) extents where tags contains 'ingest-by:j.' | where Tags contains 'ingest-by:j.c-2.' or Tags contains 'ingest-by:j.c-3.' | project RowCount, Tags",
        )
        .await;
    assert_eq!(open.rows.len(), 2);
    assert_eq!(open.columns.len(), 2);
    let (status, _) = c.mgmt("db", ".show tables (T, Missing) extents").await;
    assert!(!status.is_success(), "a missing table fails the command");
}

/// The external-tables doc: `.create` fails when the table exists, `.alter` when it is missing;
/// `.alter` replaces the definition. adx-backup sends these two, never `.create-or-alter`.
#[tokio::test]
async fn create_and_alter_external_table_keep_their_preconditions() {
    let server = start(&["db"], NO_STORAGE).await;
    let c = Client::new(&server);
    let def = |verb: &str, doc: &str| {
        format!(
            "{verb} external table ['bk_T'] (['a']:long) kind=storage dataformat=parquet (h@'{NO_STORAGE}/c/T;managed_identity=system') with (docString='{doc}')"
        )
    };
    let (status, body) = c.mgmt("db", &def(".alter", "v0")).await;
    assert_eq!(status, 400, "alter of a missing table: {body}");
    assert!(body.to_string().contains("EntityNotFound"), "{body}");
    c.ok("db", &def(".create", "v1")).await;
    let (status, body) = c.mgmt("db", &def(".create", "v2")).await;
    assert_eq!(status, 400, "create of an existing table: {body}");
    assert!(body.to_string().contains("EntityAlreadyExists"), "{body}");
    c.ok("db", &def(".alter", "v3")).await;
    let shown = c
        .ok("db", ".show external tables | where TableName == 'bk_T'")
        .await;
    assert_eq!(shown.cell(0, "DocString"), "v3");
}
