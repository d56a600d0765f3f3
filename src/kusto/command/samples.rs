//! Every builder's output, including hostile names, for Microsoft's parser.
//!
//! `ADXBACKUP_KQL_SAMPLES=<file> cargo test -p adx-backup kusto::command::samples` writes one
//! JSON line per sample, `{"endpoint":"mgmt"|"query","db":"Db","csl":"..."}`, which CI runs
//! through `scripts/validate-kql.mjs`. Without the variable the test only checks that every
//! sample is non-empty and on the endpoint its text implies.

use std::time::Duration;

use time::macros::datetime;

use super::export::tests::{export_spec, external_spec};
use super::*;
use crate::ids::{ColumnName, Cursor, Day, ExportName, OperationId, Principal};

const ENV: &str = "ADXBACKUP_KQL_SAMPLES";

/// Raw text no validated name would allow: only `ident`/literal helpers see it directly.
const HOSTILE: &[&str] = &[
    "'); .drop table X",
    "a']b",
    "\"",
    "\\",
    "x\\'",
    "line\nbreak\r\n",
    "tab\t\u{0}\u{7f}\u{2028}",
    "Täbelle 表",
    "emoji 😀",
    "]",
];

fn samples() -> Vec<Command> {
    let t = TableName::new("My Table-1").expect("valid");
    let db = DatabaseName::new("Sales").expect("valid");
    let ce = ExportName::new("ce_My Table-1").expect("valid");
    let col = ColumnName::new("Timestamp").expect("valid");
    let op = OperationId::new("8b1a2c3d-0000-4000-8000-000000000001");
    let batch = QueryBuilder::table(&t)
        .cursor_after(&Cursor::new("638712345678901234"))
        .cursor_before_or_at(&Cursor::new("638712399999999999"))
        .ingestion_time_between(
            datetime!(2024-01-15 00:00 UTC),
            datetime!(2024-01-16 00:00 UTC),
        )
        .build();
    let ingest = IngestProps {
        creation_time: Some(datetime!(2024-01-15 00:00 UTC)),
        tags: vec!["ingest-by:job-1-chunk-2".to_owned()],
        ingest_if_not_exists: vec!["job-1-chunk-2".to_owned()],
    };
    let mut out = vec![
        show_databases(),
        show_tables(),
        show_materialized_views(),
        show_table_cslschema(&t),
        show_table_schema_as_json(&t),
        show_database_schema_csl_script(&db),
        show_database_schema_as_json(&db),
        show_table_ingestiontime_policy(&t),
        alter_table_ingestiontime_policy(&t, true),
        create_external_table(&external_spec(true)),
        create_external_table(&external_spec(false)),
        alter_external_table(&external_spec(true)),
        alter_external_table(&external_spec(false)),
        create_external_table(&ExternalTableSpec {
            name_prefix: Some("bf-0123456789abcdef_b000002-a1".to_owned()),
            ..external_spec(true)
        }),
        drop_external_table(&t),
        show_external_tables(),
        find_external_table(&t),
        find_continuous_export(&ce),
        create_or_alter_continuous_export(&export_spec()),
        show_continuous_exports(),
        show_continuous_export(&ce),
        show_exported_artifacts(&ce, None),
        show_exported_artifacts(&ce, Some(datetime!(2024-01-15 10:00:00.1234567 UTC))),
        show_continuous_export_failures(&ce),
        enable_continuous_export(&ce),
        disable_continuous_export(&ce),
        drop_continuous_export(&ce),
        export_async_to_table(&t, &batch, ExportToTableOptions::default()),
        export_async_to_table(
            &t,
            &batch,
            ExportToTableOptions {
                size_limit: Some(104_857_600),
                parquet_row_group_size: Some(10_000),
            },
        ),
        export_to_table(&t, &QueryBuilder::print_text(&col, "adx-backup check")),
        export_to_table(&t, &QueryBuilder::print_text(&col, HOSTILE[0])),
        show_operations(std::slice::from_ref(&op)).expect("one id"),
        show_operations(&[op.clone(), OperationId::new("not a guid')")]).expect("two ids"),
        show_operation(&op),
        show_operation_details(&op),
        ingest_async(
            &t,
            &["https://a.blob.core.windows.net/c/x.parquet;managed_identity=system"],
            &ingest,
        ),
        show_table_extents_with_tag(&t, "ingest-by:job-1-chunk-2"),
        drop_extents_tagged(&t, "ingest-by:job-1-chunk-2"),
        show_capacity(),
        get_ingestion_resources(),
        get_kusto_identity_token(),
        create_merge_table(
            &t,
            &[
                (col.clone(), crate::kusto::KustoType::DateTime),
                (
                    ColumnName::new("My Col.1").expect("valid"),
                    crate::kusto::KustoType::Decimal,
                ),
            ],
        ),
        show_tables_extents_tagged(
            &[t.clone(), TableName::new("U").expect("valid")],
            "ingest-by:r-1.",
            &[
                "ingest-by:r-1.c-000002.".to_owned(),
                "ingest-by:r-1.c-000003.".to_owned(),
            ],
        ),
        show_tables_extents_tagged(
            std::slice::from_ref(&t),
            "ingest-by:r-1.",
            &HOSTILE.iter().map(|h| (*h).to_owned()).collect::<Vec<_>>(),
        ),
        create_or_alter_function(&super::objects::tests::function_spec("My Function-1")),
        create_or_alter_function(&FunctionSpec {
            view: true,
            params: KqlCode::new("").expect("empty parameters"),
            body: KqlCode::new("['My Table-1'] | take 1 // the last line").expect("a body"),
            ..super::objects::tests::function_spec("F")
        }),
        create_or_alter_ingestion_mapping(
            &t,
            MappingKind::Json,
            "map'1",
            &serde_json::json!([{"column": "Timestamp", "path": "$.ts", "datatype": "datetime"}]),
        ),
        create_or_alter_ingestion_mapping(
            &t,
            MappingKind::Csv,
            "csv",
            &serde_json::json!([{"Column": "Timestamp", "Properties": {"Ordinal": "0"}}]),
        ),
        alter_table_retention_policy(&t, Some(Duration::from_secs(30 * 86_400)), false),
        alter_table_retention_policy(&t, None, true),
        show_table_update_policy(&t),
        show_table_retention_policy(&t),
        show_database_principal_roles(&db),
        add_database_principal(&db, DatabaseRole::Admins, "aadapp=1234;tenant'x"),
        add_database_principals(
            &db,
            DatabaseRole::Viewers,
            &[
                Principal::new("aadapp=4c7e82bd-6adb-46c3-b413-fdd44834c69b;fabrikam.com")
                    .expect("valid"),
                Principal::new("aadgroup=it's \"x\"'); .drop table T;fabrikam.com").expect("valid"),
            ],
            "restored 'from' Sales",
        ),
        add_database_principals(
            &db,
            DatabaseRole::UnrestrictedViewers,
            &[Principal::new("aaduser=u@fabrikam.com").expect("valid")],
            "",
        ),
        add_table_principals(
            &t,
            TableRole::Admins,
            &[Principal::new(
                "aaduser=cd709aed-0000-4000-8000-e3953dec735e;72f988bf-86f1-41af-91ab-2d7cd011db47",
            )
            .expect("valid")],
            "owns it",
        ),
        add_table_principals(
            &t,
            TableRole::Ingestors,
            &[Principal::new("msauser=x@live.com").expect("valid")],
            "",
        ),
        create_materialized_view_backfilled(&super::views::tests::view_spec("Daily-1"), &t),
        create_materialized_view_backfilled(
            &MaterializedViewSpec {
                query: KqlCode::new("['My Table-1'] | summarize arg_max(Timestamp, *) by Id")
                    .expect("a query"),
                lookback: Some(Duration::from_secs(6 * 3600)),
                auto_update_schema: Some(true),
                update_extents_creation_time: Some(true),
                ..super::views::tests::view_spec("Last")
            },
            &t,
        ),
        find_materialized_view(&crate::ids::ViewName::new("Daily-1").expect("valid")),
        create_storage_external_table(&super::external::tests::lake_spec()),
        show_cluster_managed_identity_policy(),
        alter_merge_cluster_managed_identity_policy("system", "ExternalTable, NativeIngestion"),
        show_table_row_level_security_policy(&t),
        show_table_restricted_view_access_policy(&t),
        delete_table_row_level_security_policy(&t),
        alter_table_restricted_view_access(&t, false),
        alter_table_restricted_view_access(&t, true),
        alter_table_row_level_security(
            &t,
            true,
            &KqlCode::new("T | where User == current_principal() and s != 'x\"y'").expect("valid"),
        ),
        alter_table_caching_policy(&t, Duration::from_secs(7 * 86_400)),
        alter_table_caching_policy(&t, Duration::from_secs(90 * 60)),
        alter_table_update_policy(
            &t,
            &serde_json::json!([{"IsEnabled": true, "Source": "Raw", "Query": "Raw | where s == 'x' | project Timestamp", "IsTransactional": false, "PropagateIngestionProperties": false}]),
        ),
        set_or_append(&t, &QueryBuilder::table(&t).build()),
        ingest_inline(
            &t,
            &[vec![
                "2024-01-15T00:00:00Z".to_owned(),
                "a,\"b\"".to_owned(),
            ]],
        ),
        batch.command(),
        QueryBuilder::table(&t)
            .ingestion_time_is_null()
            .count()
            .command(),
        QueryBuilder::table(&t)
            .ingestion_time_bins(Duration::from_secs(3600))
            .command(),
        QueryBuilder::table(&t)
            .cursor_before_or_at(&Cursor::new("638712399999999999"))
            .ingestion_time_bins(Duration::from_micros(1500))
            .command(),
        QueryBuilder::table(&t)
            .cursor_before_or_at(&Cursor::new("638712399999999999"))
            .ingestion_time_summary()
            .command(),
        QueryBuilder::table(&t)
            .cursor_after(&Cursor::new("638712345678901234"))
            .cursor_before_or_at(&Cursor::new("638712399999999999"))
            .ingestion_time_after(datetime!(2024-01-14 23:00:00.5 UTC))
            .ingestion_time_summary()
            .command(),
        QueryBuilder::table(&t)
            .cursor_before_or_at(&Cursor::new("638712399999999999"))
            .ingestion_time_between(
                datetime!(2024-01-15 00:00:00.1234567 UTC),
                datetime!(2024-01-15 00:00:00.1234568 UTC),
            )
            .count()
            .command(),
        QueryBuilder::external_table(&t)
            .count_by_day(&col)
            .command(),
        QueryBuilder::print_cursor_current().command(),
        QueryBuilder::print_text(&col, "adx-backup check").command(),
        QueryBuilder::table(&t)
            .verify_counts(Some(&col), datetime!(2024-01-15 10:00:00.5 UTC))
            .command(),
        QueryBuilder::table(&t)
            .verify_counts(None, datetime!(2024-01-15 10:00:00.5 UTC))
            .command(),
        QueryBuilder::table(&t)
            .cursor_before_or_at(&Cursor::new("638712345678901234"))
            .on_day(&col, Day::parse_folder("20240115").expect("day"))
            .ingestion_time_at_or_before(datetime!(2024-01-15 10:00:00.5 UTC))
            .count()
            .command(),
    ];
    out.extend(HOSTILE.iter().flat_map(|raw| hostile_samples(raw)));
    out
}

/// Each hostile text as a table name, a column name, a string and a connection string.
fn hostile_samples(raw: &str) -> [Command; 3] {
    [
        Command::mgmt(format!(".show table {} cslschema", ident(raw))),
        Command::query(format!(
            "datatable({}:string)[{}] | where {} == {}",
            ident(raw),
            string_literal(raw),
            ident(raw),
            string_literal(raw)
        )),
        Command::mgmt(format!(
            ".show table {} extents where tags has {} | project h={}",
            ident(raw),
            string_literal(raw),
            obfuscated_string_literal(raw)
        )),
    ]
}

#[test]
fn every_builder_has_a_sample() {
    let all = samples();
    for cmd in &all {
        assert!(!cmd.as_str().is_empty());
        let expected = if cmd.as_str().starts_with('.') {
            CommandKind::Management
        } else {
            CommandKind::Query
        };
        assert_eq!(cmd.kind(), expected, "{}", cmd.as_str());
    }
    if let Some(path) = std::env::var_os(ENV) {
        let lines: String = all.iter().map(|cmd| sample_line(cmd) + "\n").collect();
        std::fs::write(&path, lines).expect("write KQL samples");
    }
}

fn sample_line(cmd: &Command) -> String {
    let endpoint = match cmd.kind() {
        CommandKind::Management => "mgmt",
        CommandKind::Query => "query",
    };
    serde_json::json!({"endpoint": endpoint, "db": "Sales", "csl": cmd.as_str()}).to_string()
}
