//! The command forms adx-backup sends, verbatim, must parse.

use super::*;
use crate::value::temporal::parse_span_literal;

fn parse(text: &str) -> Parsed {
    match parse_command(text) {
        Ok(p) => p,
        Err(e) => panic!("{text}: {e}"),
    }
}

#[test]
fn external_table_forms() {
    let text = r#".create-or-alter external table ['bk_T'] (['a']:datetime, ['b']:long) kind=storage partition by (['Day']:datetime = startofday(['a'])) pathformat = (datetime_pattern("yyyyMMdd", ['Day'])) dataformat = parquet (h@'http://127.0.0.1:10000/devstoreaccount1/container/prefix/db/T;managed_identity=system') with (folder='adxbackup', fileExtension='.parquet')"#;
    let Command::CreateOrAlterExternalTable(def) = parse(text).command else {
        panic!("wrong command")
    };
    assert_eq!(def.name, "bk_T");
    assert_eq!(def.columns.len(), 2);
    assert_eq!(
        def.partitions[0].func,
        PartitionFn::StartOf("startofday", "a".into())
    );
    assert_eq!(
        def.path_format,
        Some(vec![PathPart::DatetimePattern(
            "yyyyMMdd".into(),
            "Day".into()
        )])
    );
    assert!(def.connection_strings[0].ends_with(";managed_identity=system"));
    assert_eq!(
        def.props.get_str("FileExtension").as_deref(),
        Some(".parquet")
    );

    let plain = ".create-or-alter external table ['bk_U'] (['x']:string) kind=storage dataformat=parquet (h@'http://h/c/p') with (fileExtension='.parquet')";
    let Command::CreateOrAlterExternalTable(def) = parse(plain).command else {
        panic!("wrong command")
    };
    assert!(def.partitions.is_empty());
}

#[test]
fn drop_external_table_with_and_without_ifexists() {
    for (text, if_exists) in [
        (".drop external table ['bk_T'] ifexists", true),
        (".drop external table ['bk_T']", false),
    ] {
        assert_eq!(
            parse(text).command,
            Command::DropExternalTable {
                name: "bk_T".into(),
                if_exists
            },
            "{text}"
        );
    }
}

#[test]
fn continuous_export_forms() {
    let text = ".create-or-alter continuous-export ['ce_T'] over (['T']) to table ['bk_T'] with (intervalBetweenRuns=5m, forcedLatency=1m, sizeLimit=104857600) <| ['T']";
    let Command::CreateOrAlterContinuousExport {
        name,
        over,
        props,
        query,
        ..
    } = parse(text).command
    else {
        panic!("wrong command")
    };
    assert_eq!(
        (name.as_str(), over, query.as_str()),
        ("ce_T", vec!["T".to_string()], "['T']")
    );
    assert_eq!(
        props.get("intervalbetweenruns"),
        Some(&Value::TimeSpan(parse_span_literal("5m").unwrap()))
    );

    let piped = parse(
        ".show continuous-export ['ce_T'] exported-artifacts | where Timestamp > datetime(2026-01-01T00:00:00.0000000Z)",
    );
    assert!(matches!(
        piped.command,
        Command::ShowContinuousExportArtifacts { .. }
    ));
    assert_eq!(piped.pipe.len(), 1);
    assert!(matches!(
        parse(".disable continuous-export ['ce_T']").command,
        Command::SetContinuousExportDisabled { disabled: true, .. }
    ));
}

#[test]
fn export_and_ingest_forms() {
    let text = ".export async to table ['bk_T'] with (parquetRowGroupSize=1000, sizeLimit=104857600) <| ['T'] | where cursor_before_or_at('123') | where ingestion_time() >= datetime(2024-01-01) and ingestion_time() < datetime(2024-01-02)";
    let Command::ExportToTable {
        is_async,
        props,
        query,
        ..
    } = parse(text).command
    else {
        panic!("wrong command")
    };
    assert!(is_async);
    assert_eq!(
        props.get_str("parquetrowgroupsize").as_deref(),
        Some("1000")
    );
    assert!(query.starts_with("['T'] | where"));

    let text = r#".ingest async into table ['T'] (h'http://127.0.0.1:10000/devstoreaccount1/c/p/x.parquet;managed_identity=system', h'http://h/c/y.parquet?sv=1&sig=2') with (format='parquet', creationTime='2024-01-15T00:00:00Z', tags='["ingest-by:job-chunk"]', ingestIfNotExists='["job-chunk"]')"#;
    let Command::Ingest { uris, props, .. } = parse(text).command else {
        panic!("wrong command")
    };
    assert_eq!(uris.len(), 2);
    assert_eq!(
        props.get_str("tags").as_deref(),
        Some(r#"["ingest-by:job-chunk"]"#)
    );
}

#[test]
fn extents_and_operations() {
    let c = parse(".show table ['T'] extents where tags has 'ingest-by:x' and tags !contains 'y'")
        .command;
    let Command::ShowExtents(sel) = c else {
        panic!("wrong command")
    };
    assert_eq!(sel.tags.len(), 2);
    assert!(sel.tags[1].negated && sel.tags[1].contains);
    let c = parse(".drop extents <| .show table T extents where tags has 'a'").command;
    assert!(matches!(c, Command::DropExtents(_)));
    let c = parse(".show operations 3b4c0ab2-180e-46d8-b97e-593e6aea1e7a").command;
    assert!(matches!(c, Command::ShowOperations { ids } if ids.len() == 1));
    let c = parse(".show operation '3b4c0ab2-180e-46d8-b97e-593e6aea1e7a' details").command;
    assert!(matches!(c, Command::ShowOperationDetails { .. }));
    let c = parse(".show capacity data-export").command;
    assert_eq!(
        c,
        Command::ShowCapacity {
            resource: Some("data-export".into())
        }
    );
}

#[test]
fn unsupported_commands_name_their_first_words() {
    let err = parse_command(".purge table T records in database D <| where x == 1").unwrap_err();
    assert_eq!(
        err.to_string(),
        "not supported by kusto-sim: .purge table T records"
    );
    assert!(parse_command(".create table T (a:long) | where x").is_err());
    assert!(parse_command("").is_err());
    assert!(parse_command(".").is_err());
}

#[test]
fn queued_ingestion_commands() {
    assert_eq!(
        parse(".get ingestion resources").command,
        Command::GetIngestionResources
    );
    assert_eq!(
        parse(".get kusto identity token").command,
        Command::GetKustoIdentityToken
    );
    assert_eq!(
        parse(".show ingestion failures").command,
        Command::ShowIngestionFailures { operation_id: None }
    );
    let id = "3b4c0ab2-180e-46d8-b97e-593e6aea1e7a";
    for text in [
        format!(".show ingestion failures with (OperationId = '{id}')"),
        format!(".show ingestion failures with (OperationId={id})"),
    ] {
        assert_eq!(
            parse(&text).command,
            Command::ShowIngestionFailures {
                operation_id: Uuid::parse_str(id).ok()
            }
        );
    }
    assert_eq!(
        parse(".show ingestion failures | where Table == 'T'")
            .pipe
            .len(),
        1
    );
    for bad in [
        ".get ingestion",
        ".get kusto identity",
        ".show ingestion failures with (Table = 'T')",
    ] {
        assert!(parse_command(bad).is_err(), "{bad}");
    }
}

#[test]
fn staging_and_policy_forms() {
    let Command::MoveExtents {
        is_async,
        from,
        props,
        ..
    } = parse(".move async extents from table ['S'] to table ['T'] with (setNewIngestionTime=true) (3b4c0ab2-180e-46d8-b97e-593e6aea1e7a)").command
    else {
        panic!("wrong command")
    };
    assert!(is_async && from.ids.len() == 1 && from.table == "S");
    assert_eq!(props.get_bool("setnewingestiontime"), Some(true));
    assert_eq!(
        parse(".drop table ['T'] extent tags ('ingest-by:a', 'drop-by:b')").command,
        Command::DropExtentTags {
            table: "T".into(),
            tags: vec!["ingest-by:a".into(), "drop-by:b".into()],
        }
    );
    assert_eq!(
        parse(".alter-merge table T policy retention softdelete = 10d").command,
        Command::AlterTablePolicy {
            table: "T".into(),
            change: PolicyChange::Retention {
                soft_delete: parse_span_literal("10d"),
                recoverability: None,
            },
        }
    );
    let Command::MoveExtents { from, props, .. } =
        parse(".move extents all from table S to table T with (setNewIngestionTime=true)").command
    else {
        panic!("wrong command")
    };
    assert!(from.ids.is_empty() && props.get_bool("setNewIngestionTime") == Some(true));
    assert!(matches!(
        parse(".create table S based-on T ifnotexists with (folder='f')").command,
        Command::CreateTableBasedOn {
            if_not_exists: true,
            ..
        }
    ));
    for bad in [
        ".alter-merge table T policy retention",
        ".alter table T policy restricted_view_access maybe",
        ".alter-merge table T policy restricted_view_access true",
    ] {
        assert!(parse_command(bad).is_err(), "{bad} must not parse");
    }
}

#[test]
fn the_ingestion_time_policy_is_altered_to_true_and_deleted_to_turn_it_off() {
    assert_eq!(
        parse(".alter tables (T, U) policy ingestiontime true").command,
        Command::AlterIngestionTimePolicy {
            tables: vec!["T".into(), "U".into()],
            enabled: true,
        }
    );
    assert_eq!(
        parse(".delete table T policy ingestiontime").command,
        Command::AlterIngestionTimePolicy {
            tables: vec!["T".into()],
            enabled: false,
        }
    );
    // Kusto.Language rejects `false` here ("Expected: true"); kusto-sim must not accept it.
    assert!(matches!(
        parse_command(".alter table T policy ingestiontime false"),
        Err(SimError::Syntax(_))
    ));
}
