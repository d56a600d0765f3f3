//! Extent merges, table policies and the staging commands copy tools use, over HTTP.

use serde_json::{Value as Json, json};

use super::roundtrip::wait_for;
use super::support::{Client, Table, start};

const NO_STORAGE: &str = "http://127.0.0.1:9/devstoreaccount1";

/// Every extent's tags, sorted (each extent's own list sorted too).
fn tag_sets(extents: &Table) -> Vec<Vec<String>> {
    let mut sets: Vec<Vec<String>> = extents
        .rows
        .iter()
        .map(|r| {
            let text = r[extents.col("Tags")].as_str().unwrap_or_default();
            let mut tags: Vec<String> = text
                .split("\r\n")
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect();
            tags.sort();
            tags
        })
        .collect();
    sets.sort();
    sets
}

async fn ingest_tagged(c: &Client, table: &str, tags: &str, rows: &str) {
    c.ok(
        "db",
        &format!(".ingest inline into table {table} with (tags='{tags}') <| {rows}"),
    )
    .await;
}

#[tokio::test]
async fn a_merge_unions_tags_and_keeps_drop_by_tags_apart() {
    let server = start(&["db"], NO_STORAGE).await;
    let c = Client::new(&server);
    c.ok("db", ".create table T (a:long)").await;
    ingest_tagged(&c, "T", r#"["ingest-by:a"]"#, "1\n2").await;
    ingest_tagged(&c, "T", r#"["ingest-by:b"]"#, "3").await;
    ingest_tagged(&c, "T", r#"["drop-by:x"]"#, "4").await;
    ingest_tagged(&c, "T", r#"["drop-by:y"]"#, "5").await;
    let cursor = server.state().cursor("db").unwrap();

    let (status, merges) = c.post("/sim/extents/merge", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(merges.as_array().map(Vec::len), Some(1), "{merges}");
    let extents = c.ok("db", ".show table T extents").await;
    assert_eq!(
        tag_sets(&extents),
        vec![
            vec!["drop-by:x".to_string()],
            vec!["drop-by:y".to_string()],
            vec!["ingest-by:a".to_string(), "ingest-by:b".to_string()],
        ]
    );
    // Rows keep their own ingestion commit through the merge.
    let before = c
        .query(
            "db",
            &format!("T | where cursor_before_or_at('{cursor}') | count"),
        )
        .await;
    assert_eq!(before.single_long(), 5);

    // The hazard the merge brings: dropping by one ingestion's tag takes the other's rows.
    c.ok(
        "db",
        ".drop extents <| .show table T extents where tags has 'ingest-by:a'",
    )
    .await;
    let left = c.query("db", "T | summarize n = count(), s = sum(a)").await;
    assert_eq!(
        (left.rows[0][0].as_i64(), left.rows[0][1].as_i64()),
        (Some(2), Some(9))
    );
}

#[tokio::test]
async fn allow_merge_false_stops_merging_for_the_table() {
    let server = start(&["db"], NO_STORAGE).await;
    let c = Client::new(&server);
    c.ok("db", ".create table U (a:long)").await;
    let set = c
        .ok(
            "db",
            r#".alter table U policy merge @'{"AllowMerge": false, "AllowRebuild": false}'"#,
        )
        .await;
    assert_eq!(set.cell(0, "PolicyName"), "ExtentsMergePolicy");
    c.ok(
        "db",
        r#".alter-merge table U policy merge '{"MaxRangeInHours": 48}'"#,
    )
    .await;
    let shown = c.ok("db", ".show table U policy merge").await;
    let policy: Json = serde_json::from_str(shown.cell(0, "Policy").as_str().unwrap()).unwrap();
    assert_eq!(
        policy,
        json!({"AllowMerge": false, "AllowRebuild": false, "MaxRangeInHours": 48})
    );
    ingest_tagged(&c, "U", r#"["ingest-by:a"]"#, "1").await;
    ingest_tagged(&c, "U", r#"["ingest-by:b"]"#, "2").await;
    assert!(server.state().merge_extents_now().is_empty());
    assert_eq!(c.ok("db", ".show table U extents").await.rows.len(), 2);
    c.ok("db", ".delete table U policy merge").await;
    assert_eq!(server.state().merge_extents_now().len(), 1);
    assert_eq!(c.ok("db", ".show table U extents").await.rows.len(), 1);
}

#[tokio::test]
async fn a_staging_table_is_filled_checked_and_moved() {
    let server = start(&["db"], NO_STORAGE).await;
    let c = Client::new(&server);
    c.ok("db", ".create table T (a:long, s:string)").await;
    let created = c
        .ok(
            "db",
            ".create table ['tmp_T'] based-on ['T'] with (folder='staging')",
        )
        .await;
    assert_eq!(
        (created.cell(0, "Schema"), created.cell(0, "Folder")),
        (&json!("a:long, s:string"), &json!("staging"))
    );
    let (status, _) = c.mgmt("db", ".create table ['tmp_T'] based-on ['T']").await;
    assert_eq!(status, 400, "it exists");
    c.ok("db", ".create table ['tmp_T'] based-on ['T'] ifnotexists")
        .await;
    for command in [
        ".delete table ['tmp_T'] policy extent_tags_retention",
        ".delete table ['tmp_T'] policy partitioning",
        r#".alter table ['tmp_T'] policy merge '{"AllowRebuild": false, "AllowMerge": false}'"#,
        ".alter table ['tmp_T'] policy restricted_view_access true",
    ] {
        c.ok("db", command).await;
    }
    let rva = c
        .ok(
            "db",
            ".alter table ['tmp_T'] policy restricted_view_access false",
        )
        .await;
    assert_eq!(rva.cell(0, "Policy"), "false");

    ingest_tagged(&c, "['tmp_T']", r#"["drop-by:b1"]"#, "1,x\n2,y").await;
    ingest_tagged(&c, "['tmp_T']", r#"["drop-by:b2"]"#, "3,z").await;
    let counts = c
        .ok(
            "db",
            ".show table ['tmp_T'] extents | summarize RowCount = sum(RowCount) by Tags | sort by Tags asc",
        )
        .await;
    assert_eq!(
        counts.rows,
        vec![
            vec![json!("drop-by:b1"), json!(2)],
            vec![json!("drop-by:b2"), json!(1)]
        ]
    );
    let b1: Vec<String> = c
        .ok(
            "db",
            ".show table ['tmp_T'] extents where tags has 'drop-by:b1'",
        )
        .await
        .rows
        .iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect();
    let cursor = server.state().cursor("db").unwrap();
    let op = c
        .ok(
            "db",
            &format!(
                ".move async extents from table ['tmp_T'] to table ['T'] with (setNewIngestionTime=true) ({})",
                b1.join(", ")
            ),
        )
        .await;
    let id = op.cell(0, "OperationId").as_str().unwrap().to_string();
    let state = wait_for(&c, "db", &id).await;
    assert_eq!(state.cell(0, "State"), "Completed");
    let details = c.ok("db", &format!(".show operation {id} details")).await;
    assert_eq!(
        details.schema(),
        "OriginalExtentId:string, ResultExtentId:string, Details:string"
    );
    assert_eq!(details.rows.len(), 1);
    // A new ingestion time means a new cursor: a continuous export will see the rows.
    let after = c
        .query("db", &format!("T | where cursor_after('{cursor}') | count"))
        .await;
    assert_eq!(after.single_long(), 2);

    // The query form picks extents by tag.
    ingest_tagged(&c, "['tmp_T']", r#"["drop-by:b3"]"#, "4,w").await;
    let cursor = server.state().cursor("db").unwrap();
    let moved = c
        .ok(
            "db",
            ".move extents to table ['T'] with (setNewIngestionTime=true) <| .show table ['tmp_T'] extents where tags has 'drop-by:b2'",
        )
        .await;
    assert_eq!(moved.rows.len(), 1);
    let after = c
        .query("db", &format!("T | where cursor_after('{cursor}') | count"))
        .await;
    assert_eq!(after.single_long(), 1);

    // Without setNewIngestionTime the rows keep their old cursor and are behind it.
    let cursor = server.state().cursor("db").unwrap();
    c.ok(
        "db",
        ".move extents all from table ['tmp_T'] to table ['T']",
    )
    .await;
    assert_eq!(c.query("db", "T | count").await.single_long(), 4);
    let after = c
        .query("db", &format!("T | where cursor_after('{cursor}') | count"))
        .await;
    assert_eq!(after.single_long(), 0);
    assert_eq!(c.query("db", "['tmp_T'] | count").await.single_long(), 0);

    let dropped = c
        .ok("db", ".drop table ['T'] extent tags ('drop-by:b2')")
        .await;
    assert_eq!(dropped.rows.len(), 1);
    let tagged = c
        .ok(
            "db",
            ".show table ['T'] extents where tags has 'drop-by:b2'",
        )
        .await;
    assert!(tagged.rows.is_empty());
    assert_eq!(c.query("db", "T | count").await.single_long(), 4);
}

#[tokio::test]
async fn moving_extents_of_another_table_is_refused() {
    let server = start(&["db"], NO_STORAGE).await;
    let c = Client::new(&server);
    c.ok("db", ".create table A (a:long)").await;
    c.ok("db", ".create table B (a:long)").await;
    let (status, body) = c
        .mgmt(
            "db",
            ".move extents from table A to table B (3b4c0ab2-180e-46d8-b97e-593e6aea1e7a)",
        )
        .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn a_creation_time_older_than_the_soft_delete_period_is_refused() {
    let server = start(&["db"], NO_STORAGE).await;
    let c = Client::new(&server);
    c.ok("db", ".create table T (a:long)").await;
    let set = c
        .ok(
            "db",
            ".alter-merge table T policy retention softdelete = 10d recoverability = disabled",
        )
        .await;
    assert_eq!(set.cell(0, "PolicyName"), "RetentionPolicy");
    let shown = c.ok("db", ".show table T policy retention").await;
    let policy: Json = serde_json::from_str(shown.cell(0, "Policy").as_str().unwrap()).unwrap();
    assert_eq!(
        policy,
        json!({"SoftDeletePeriod": "10.00:00:00", "Recoverability": "Disabled"})
    );

    let (status, body) = c
        .mgmt(
            "db",
            ".ingest inline into table T with (creationTime='2020-01-01T00:00:00Z') <| 1",
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"]["code"],
        "BadRequest_CreationTimeEarlierThanSoftDeletePeriod"
    );
    assert_eq!(body["error"]["@permanent"], true);
    assert_eq!(c.query("db", "T | count").await.single_long(), 0);

    let yesterday = c.query("db", "print t = ago(1d)").await;
    let recent = yesterday.rows[0][0].as_str().unwrap().to_string();
    c.ok(
        "db",
        &format!(".ingest inline into table T with (creationTime='{recent}') <| 1"),
    )
    .await;
    assert_eq!(c.query("db", "T | count").await.single_long(), 1);

    // A JSON policy replaces; without a soft-delete period everything is accepted again.
    c.ok(
        "db",
        r#".alter table T policy retention '{"SoftDeletePeriod": null, "Recoverability": "Enabled"}'"#,
    )
    .await;
    c.ok(
        "db",
        ".ingest inline into table T with (creationTime='2020-01-01T00:00:00Z') <| 2",
    )
    .await;
    assert_eq!(c.query("db", "T | count").await.single_long(), 2);
}

#[tokio::test]
async fn extent_tags_retention_removes_old_tags() {
    let server = start(&["db"], NO_STORAGE).await;
    let c = Client::new(&server);
    c.ok("db", ".create table T (a:long)").await;
    c.ok(
        "db",
        r#".alter table T policy extent_tags_retention '[{"TagPrefix": "ingest-by:", "RetentionPeriod": "1.00:00:00"}]'"#,
    )
    .await;
    ingest_tagged(&c, "T", r#"["ingest-by:a","keep"]"#, "1").await;
    server.state().merge_extents_now();
    assert_eq!(
        tag_sets(&c.ok("db", ".show table T extents").await),
        vec![vec!["ingest-by:a".to_string(), "keep".to_string()]]
    );
    server
        .state()
        .advance_clock(std::time::Duration::from_secs(2 * 86_400));
    server.state().merge_extents_now();
    assert_eq!(
        tag_sets(&c.ok("db", ".show table T extents").await),
        vec![vec!["keep".to_string()]]
    );
}

#[tokio::test]
async fn a_continuous_export_over_a_restricted_table_fails_its_runs() {
    let server = start(&["db"], NO_STORAGE).await;
    let c = Client::new(&server);
    c.ok("db", ".create table T (a:long)").await;
    c.ok("db", &format!(".create-or-alter external table bk_T (a:long) kind=storage dataformat=parquet (h@'{NO_STORAGE}/c/T;managed_identity=system')")).await;
    c.ok(
        "db",
        ".create-or-alter continuous-export ce_T over (T) to table bk_T with (intervalBetweenRuns=5m) <| T",
    )
    .await;
    server.state().run_continuous_exports_now().await;
    c.ok("db", ".alter table T policy restricted_view_access true")
        .await;
    c.ok("db", ".ingest inline into table T <| 1").await;
    let run = server.state().run_continuous_exports_now().await;
    let error = run[0].error.as_deref().unwrap_or_default();
    assert!(error.contains("restricted view access"), "{run:?}");
    let failures = c.ok("db", ".show continuous-export ce_T failures").await;
    assert_eq!(failures.rows.len(), 1);
}

/// Kusto's limitations on continuous export
/// (<https://learn.microsoft.com/kusto/management/data-export/continuous-data-export#limitations>):
/// a restricted-view table is refused; a row-level-security table only with an impersonating
/// external table and a managed identity on the export.
#[tokio::test]
async fn continuous_export_refuses_tables_it_cannot_serve() {
    let server = start(&["db"], NO_STORAGE).await;
    let c = Client::new(&server);
    for t in ["Plain", "Rls", "Restricted"] {
        c.ok("db", &format!(".create table {t} (a:long)")).await;
        for (ext, auth) in [("mi", "managed_identity=system"), ("imp", "impersonate")] {
            c.ok("db", &format!(".create-or-alter external table {ext}_{t} (a:long) kind=storage dataformat=parquet (h@'{NO_STORAGE}/c/{t};{auth}')")).await;
        }
    }
    c.ok(
        "db",
        ".alter table Rls policy row_level_security enable \"Rls | where a > 0\"",
    )
    .await;
    c.ok(
        "db",
        ".alter table Restricted policy restricted_view_access true",
    )
    .await;
    let export = |t: &str, ext: &str, props: &str| {
        format!(
            ".create-or-alter continuous-export ce_{t} to table {ext}_{t} with (intervalBetweenRuns=5m{props}) <| {t}"
        )
    };
    c.ok("db", &export("Plain", "mi", "")).await;
    for (t, ext, props, why) in [
        ("Rls", "mi", "", "row level security"),
        ("Rls", "imp", "", "row level security"),
        (
            "Rls",
            "mi",
            ", managedIdentity='system'",
            "row level security",
        ),
        (
            "Restricted",
            "imp",
            ", managedIdentity='system'",
            "restricted view access",
        ),
    ] {
        let (status, body) = c.mgmt("db", &export(t, ext, props)).await;
        assert_eq!(
            status,
            reqwest::StatusCode::BAD_REQUEST,
            "{t} {ext} {props}: {body}"
        );
        assert!(body.to_string().contains(why), "{body}");
    }
    c.ok("db", &export("Rls", "imp", ", managedIdentity='system'"))
        .await;
    let listed = c.ok("db", ".show continuous-exports").await;
    assert_eq!(listed.rows.len(), 2, "ce_Plain and ce_Rls only");
}

#[tokio::test]
async fn a_follower_database_is_read_only_and_says_so() {
    let server = start(&["db", "f"], NO_STORAGE).await;
    let c = Client::new(&server);
    c.ok("f", ".create table T (a:long)").await;
    server.state().attach_as_follower("f").unwrap();
    let dbs = c.ok("db", ".show databases").await;
    let mode = |name: &str| {
        let row = dbs
            .rows
            .iter()
            .position(|r| r[dbs.col("DatabaseName")] == name)
            .unwrap();
        dbs.cell(row, "DatabaseAccessMode")
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        (mode("db"), mode("f")),
        ("ReadWrite".into(), "ReadOnlyFollowing".into())
    );
    c.ok("f", ".show tables").await;
    c.ok("f", ".alter table T policy caching hot = 7d").await;
    for write in [
        format!(
            ".create-or-alter external table bk_T (a:long) kind=storage dataformat=parquet (h@'{NO_STORAGE}/c/T;managed_identity=system')"
        ),
        ".ingest inline into table T <| 1".to_owned(),
        ".create table U (a:long)".to_owned(),
    ] {
        let (status, body) = c.mgmt("f", &write).await;
        assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{write}: {body}");
        assert!(body.to_string().contains("read-only follower"), "{body}");
    }
}
