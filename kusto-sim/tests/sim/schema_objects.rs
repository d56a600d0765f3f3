//! Functions, ingestion mappings, caching and update policies over HTTP: what Kusto
//! accepts, what it refuses, and how the schema script shows them.

use super::support::{Client, start};

const NO_STORAGE: &str = "http://127.0.0.1:9/devstoreaccount1";

async fn script(c: &Client) -> Vec<String> {
    let t = c.ok("db", ".show database db schema as csl script").await;
    (0..t.rows.len())
        .map(|i| {
            t.cell(i, "DatabaseSchemaScript")
                .as_str()
                .expect("a script row is a string")
                .to_string()
        })
        .collect()
}

#[tokio::test]
async fn functions_are_created_validated_and_shown() {
    let server = start(&["db"], NO_STORAGE).await;
    let c = Client::new(&server);
    c.ok("db", ".create table T (a:long, s:string)").await;
    c.ok(
        "db",
        ".create-or-alter function with (folder = 'f', docstring = 'd') ['Big A'](x:long) {\n    T\n    | where a > x\n}",
    )
    .await;
    let shown = c.ok("db", ".show function ['Big A']").await;
    assert_eq!(shown.cell(0, "Parameters"), "(x:long)");
    assert_eq!(shown.cell(0, "Body"), "{ T\n    | where a > x }");
    assert_eq!(shown.cell(0, "Folder"), "f");
    // Create (not or-alter) on an existing name fails unless ifnotexists.
    let (status, _) = c.mgmt("db", ".create function ['Big A']() { T }").await;
    assert!(!status.is_success());
    c.ok("db", ".create function ifnotexists ['Big A']() { T }")
        .await;
    assert_eq!(
        c.ok("db", ".show function ['Big A']")
            .await
            .cell(0, "Parameters"),
        "(x:long)",
        "ifnotexists leaves the function alone"
    );
    // A missing table is refused unless skipvalidation; an unknown property always.
    for bad in [
        ".create-or-alter function G() { Missing | take 1 }",
        ".create-or-alter function with (bogus = 1) G() { T }",
        ".create-or-alter function G() { }",
        ".create-or-alter function G() { T | where (a > 1 }",
        ".create-or-alter function T() { T }",
    ] {
        let (status, body) = c.mgmt("db", bad).await;
        assert!(!status.is_success(), "{bad}: {body}");
    }
    c.ok(
        "db",
        ".create-or-alter function with (skipvalidation = 'true') G() { Missing | take 1 }",
    )
    .await;
    assert_eq!(c.ok("db", ".show functions").await.rows.len(), 2);
    let rows = script(&c).await;
    assert!(
        rows.contains(
            &".create-or-alter function with (folder = \"f\", docstring = \"d\", skipvalidation = \"true\") ['Big A'](x:long) { T\n    | where a > x }".to_string()
        ),
        "{rows:#?}"
    );
}

#[tokio::test]
async fn mappings_and_caching_are_set_and_scripted() {
    let server = start(&["db"], NO_STORAGE).await;
    let c = Client::new(&server);
    c.ok("db", ".create table T (a:long, s:string)").await;
    let json = r#"[{"column":"a","path":"$.a","datatype":"long"}]"#;
    c.ok(
        "db",
        &format!(".create table T ingestion json mapping 'm1' '{json}'"),
    )
    .await;
    let (status, _) = c
        .mgmt(
            "db",
            &format!(".create table T ingestion json mapping 'm1' '{json}'"),
        )
        .await;
    assert!(!status.is_success(), "create twice fails");
    c.ok(
        "db",
        &format!(".create-or-alter table T ingestion json mapping 'm1' '{json}'"),
    )
    .await;
    for bad in [
        r#".create-or-alter table T ingestion json mapping 'm2' '[{"column":"nope"}]'"#,
        r#".create-or-alter table T ingestion json mapping 'm2' '{}'"#,
        r#".create-or-alter table T ingestion yaml mapping 'm2' '[]'"#,
        r#".create-or-alter table Missing ingestion json mapping 'm2' '[]'"#,
    ] {
        let (status, body) = c.mgmt("db", bad).await;
        assert!(!status.is_success(), "{bad}: {body}");
    }
    let shown = c.ok("db", ".show table T ingestion json mappings").await;
    assert_eq!(shown.rows.len(), 1);
    assert_eq!(shown.cell(0, "Mapping"), json);

    c.ok("db", ".alter table T policy caching hot = 7d").await;
    let caching = c.ok("db", ".show table T policy caching").await;
    assert!(
        caching
            .cell(0, "Policy")
            .as_str()
            .unwrap()
            .contains("7.00:00:00"),
        "{caching:?}"
    );
    c.ok(
        "db",
        ".alter-merge table T policy retention softdelete = 30d recoverability = disabled",
    )
    .await;
    let rows = script(&c).await;
    for expected in [
        ".alter table ['T'] policy caching hot = 7d",
        ".alter-merge table ['T'] policy retention softdelete = 30d recoverability = disabled",
        &format!(
            ".create-or-alter table ['T'] ingestion json mapping \"m1\" \"{}\"",
            json.replace('"', "\\\"")
        ),
    ] {
        assert!(rows.iter().any(|r| r == expected), "{expected}: {rows:#?}");
    }
}

#[tokio::test]
async fn an_update_policy_derives_rows_from_each_ingestion_into_its_source_only() {
    let server = start(&["db"], NO_STORAGE).await;
    let c = Client::new(&server);
    c.ok("db", ".create table Raw (a:long, s:string)").await;
    c.ok("db", ".create table Big (a:long)").await;
    let policy = r#"[{"IsEnabled": true, "Source": "Raw", "Query": "Raw | where a > 1 | project a", "IsTransactional": false, "PropagateIngestionProperties": false}]"#;
    for bad in [
        // The query's output does not have Big's schema.
        r#"[{"IsEnabled": true, "Source": "Raw", "Query": "Raw", "IsTransactional": false}]"#,
        r#"[{"IsEnabled": true, "Source": "Missing", "Query": "Missing | project a"}]"#,
        "not json",
    ] {
        let (status, body) = c
            .mgmt("db", &format!(".alter table Big policy update '{bad}'"))
            .await;
        assert!(!status.is_success(), "{bad}: {body}");
    }
    c.ok("db", &format!(".alter table Big policy update '{policy}'"))
        .await;
    c.ok("db", ".ingest inline into table Raw <| 1,x\n2,y\n3,z")
        .await;
    assert_eq!(c.query("db", "Big | count").await.single_long(), 2);
    // Rows ingested into Big itself derive nothing more.
    c.ok("db", ".ingest inline into table Big <| 10").await;
    assert_eq!(c.query("db", "Big | count").await.single_long(), 3);
    let rows = script(&c).await;
    assert!(
        rows.iter()
            .any(|r| r.starts_with(".alter table ['Big'] policy update \"[{")),
        "{rows:#?}"
    );
    // Disabled: nothing derived.
    let off = policy.replace("\"IsEnabled\": true", "\"IsEnabled\": false");
    c.ok("db", &format!(".alter table Big policy update '{off}'"))
        .await;
    c.ok("db", ".ingest inline into table Raw <| 5,w").await;
    assert_eq!(c.query("db", "Big | count").await.single_long(), 3);
}

#[tokio::test]
async fn principals_are_added_refused_without_their_prerequisite_and_scripted() {
    let server = start(&["db"], NO_STORAGE).await;
    let c = Client::new(&server);
    c.ok("db", ".create table T (a:long)").await;
    let app = "aadapp=0f4a2c1e-0000-4000-8000-000000000001;72f988bf-86f1-41af-91ab-2d7cd011db47";
    let user = "aaduser=5b2c7d11-0000-4000-8000-000000000002;72f988bf-86f1-41af-91ab-2d7cd011db47";
    // A table admin must be a database user first (add-security-roles); nothing is added.
    let (status, body) = c
        .mgmt("db", &format!(".add table T admins ('{user}')"))
        .await;
    assert!(!status.is_success(), "{body}");
    assert!(
        body.to_string().contains("add it to the database first"),
        "{body}"
    );
    // An unrestricted viewer must be a viewer, user or admin too.
    let (status, body) = c
        .mgmt(
            "db",
            &format!(".add database db unrestrictedviewers ('{app}')"),
        )
        .await;
    assert!(!status.is_success(), "{body}");
    let added = c
        .ok(
            "db",
            &format!(".add database db viewers ('{app}') 'reader app'"),
        )
        .await;
    assert_eq!(added.rows.len(), 1);
    assert_eq!(added.cell(0, "Role"), "Database db Viewer");
    assert_eq!(added.cell(0, "PrincipalType"), "AAD Application");
    let skipped = c
        .ok(
            "db",
            &format!(".add database ['db'] users (@'{user}') skip-results 'a user'"),
        )
        .await;
    assert_eq!(skipped.rows.len(), 0, "skip-results returns no rows");
    let table = c
        .ok(
            "db",
            &format!(".add table ['T'] admins (\"{user}\") \"owns T\""),
        )
        .await;
    assert_eq!(table.cell(0, "Role"), "Table T Admin");
    assert_eq!(table.cell(0, "PrincipalFQN"), user);
    assert_eq!(table.cell(0, "Notes"), "owns T");
    for bad in [
        ".add table T viewers ('aaduser=x@y.com')",
        ".add table Missing admins ('aaduser=x@y.com')",
        ".add database db readers ('aaduser=x@y.com')",
        ".add database db viewers ('x@y.com')",
        ".add database db viewers ('aadrole=x')",
    ] {
        let (status, body) = c.mgmt("db", bad).await;
        assert!(!status.is_success(), "{bad}: {body}");
    }
    assert_eq!(c.ok("db", ".show table T principals").await.rows.len(), 1);

    let rows = script(&c).await;
    let principals: Vec<&String> = rows.iter().filter(|r| r.starts_with(".add ")).collect();
    assert_eq!(
        principals,
        [
            &format!(".add database ['db'] viewers (\"{app}\") \"reader app\""),
            &format!(".add database ['db'] users (\"{user}\") \"a user\""),
            &format!(".add table ['T'] admins (\"{user}\") \"owns T\""),
        ]
    );
    // IncludeSecuritySettings = false leaves them out.
    let t = c
        .ok(
            "db",
            ".show database db schema as csl script with (IncludeSecuritySettings = false)",
        )
        .await;
    assert!(
        (0..t.rows.len()).all(|i| !t
            .cell(i, "DatabaseSchemaScript")
            .as_str()
            .unwrap()
            .starts_with(".add ")),
        "no principals"
    );
}
