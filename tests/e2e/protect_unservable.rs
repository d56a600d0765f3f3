//! What continuous export cannot serve is reported, not skipped: a database with a normal
//! table, a row-level-security table, a restricted-view table and a materialized view, and a
//! follower database. protect protects the normal table (its rows reach the catalog) and
//! records each of the others as not protected, with the reason and the fix, where `status`
//! shows it; it creates nothing for them (kusto-sim would refuse the exports, as Kusto does).
//! A protected table that gets row-level security later is reported the same way, and what
//! its export wrote before stays cataloged.

use adx_backup::check;
use adx_backup::ids::{DatabaseName, TableName, TableRef};
use adx_backup::protect::{self, Protection};
use adx_backup::status::{self, Filter};

use crate::harness::data::{DB, catalog, ingest, names, table_state};
use crate::harness::stack::Stack;

const FOLLOWER: &str = "Replica";

async fn reason(app: &adx_backup::app::App, db: &str, table: &str) -> String {
    let t = TableRef {
        database: DatabaseName::new(db).unwrap(),
        table: TableName::new(table).unwrap(),
    };
    match protect::load_state(app, &t).await.unwrap().protection {
        Protection::Unprotected { reason } => reason,
        other => panic!("{db}.{table} should be unprotected, is {other:?}"),
    }
}

#[tokio::test]
async fn protect_reports_tables_continuous_export_cannot_serve_and_protects_the_rest() {
    let mut stack = Stack::start(DB).await;
    stack.set("AdxBackup__Databases", &format!("{DB},{FOLLOWER}"));
    for t in ["Plain", "Later", "Rls", "Restricted"] {
        stack
            .kusto(&format!(".create table {t} (At:datetime, Id:long)"))
            .await;
    }
    stack
        .kusto(".alter table Rls policy row_level_security enable \"Rls | where Id > 0\"")
        .await;
    stack
        .kusto(".alter table Restricted policy restricted_view_access true")
        .await;
    stack
        .kusto(
            ".create materialized-view Counts on table Plain { Plain | summarize count() by Id }",
        )
        .await;
    let sim = stack.sim.state();
    sim.create_database(FOLLOWER);
    sim.mgmt(FOLLOWER, ".create table Mirror (At:datetime, Id:long)")
        .await
        .unwrap();
    sim.attach_as_follower(FOLLOWER).unwrap();
    let app = stack.app();

    let report = protect::run_once(&app).await.unwrap();
    // Only the normal table got backup objects.
    let plain = ["adxbk_Later".to_owned(), "adxbk_Plain".to_owned()].into();
    assert_eq!(
        names(&stack, ".show continuous-exports", "Name").await,
        plain,
        "{report}"
    );
    assert_eq!(
        names(&stack, ".show external tables", "TableName").await,
        plain
    );
    assert!(matches!(
        table_state(&app, "Plain").await.unwrap().protection,
        Protection::Protected { .. }
    ));

    let expected = [
        (
            DB,
            "Rls",
            "row-level security",
            "`.delete table ['Rls'] policy row_level_security`",
        ),
        (
            DB,
            "Restricted",
            "restricted view access",
            "`.alter table ['Restricted'] policy restricted_view_access false`",
        ),
        (
            DB,
            "Counts",
            "a materialized view (over Plain)",
            "re-creates the view from the schema snapshot once the rows are in, with `backfill=true`",
        ),
        (
            FOLLOWER,
            "Mirror",
            "Replica is a follower database",
            "protect the leader database",
        ),
    ];
    for (db, table, problem, fix) in expected {
        let why = reason(&app, db, table).await;
        assert!(
            why.contains(problem) && why.contains(fix),
            "{db}.{table}: {why}"
        );
    }
    // check says the same, each finding on its table or database, with its fix.
    let checked = check::check(&app).await.unwrap();
    let found: Vec<(Option<String>, Option<String>, bool)> = checked
        .findings
        .iter()
        .map(|f| {
            (
                f.database.as_ref().map(ToString::to_string),
                f.table.as_ref().map(ToString::to_string),
                !f.fix.is_empty(),
            )
        })
        .collect();
    for (db, table) in [
        (DB, Some("Counts")),
        (DB, Some("Rls")),
        (DB, Some("Restricted")),
        (FOLLOWER, None),
    ] {
        let want = (Some(db.to_owned()), table.map(str::to_owned), true);
        assert!(found.contains(&want), "{want:?} in {checked}");
    }
    assert_eq!(found.len(), 4, "{checked}");
    let status = status::collect(&app, &Filter::default()).await.unwrap();
    assert!(status.needs_attention);
    for (db, table, problem, _) in expected {
        let line = format!("{db}.{table}: not protected: UNPROTECTED: ");
        assert!(
            status
                .attention
                .iter()
                .any(|a| a.starts_with(&line) && a.contains(problem)),
            "{line} in {:?}",
            status.attention
        );
    }
    assert!(
        !status
            .attention
            .iter()
            .any(|a| a.starts_with(&format!("{DB}.Plain: not protected"))),
        "{:?}",
        status.attention
    );

    // The normal tables are backed up end to end while the others stay reported; Later gets
    // row-level security once its rows were exported.
    stack.run_exports().await;
    let rows: Vec<String> = (0..9)
        .map(|n| format!("2026-01-1{}T08:00:00Z,{n}", n % 3))
        .collect();
    ingest(&stack, "Plain", &rows).await;
    ingest(&stack, "Later", &rows[..4]).await;
    for run in stack.run_exports().await {
        assert!(run.error.is_none(), "{run:?}");
    }
    stack
        .kusto(".alter table Later policy row_level_security enable \"Later | where Id > 0\"")
        .await;
    protect::run_full_pass(&app).await.unwrap();
    let cataloged: u64 = catalog(&app, "Plain").await.iter().map(|a| a.rows).sum();
    assert_eq!(cataloged, 9);
    let later: u64 = catalog(&app, "Later").await.iter().map(|a| a.rows).sum();
    assert_eq!(
        later, 4,
        "what Later's export wrote before the policy stays cataloged"
    );
    assert!(
        reason(&app, DB, "Later")
            .await
            .contains("row-level security")
    );
    assert_eq!(
        names(&stack, ".show continuous-exports", "Name").await,
        plain
    );
    for (db, table, problem, _) in expected {
        assert!(
            reason(&app, db, table).await.contains(problem),
            "{db}.{table}"
        );
    }
}
