//! What a restore makes of a snapshot's statements besides its tables: the commands to send
//! (with the tables, or after the data) and the statements it leaves out, each with why and
//! what to do (docs/design.md, Restore).
//!
//! - Retention and caching policies and ingestion mappings of restored tables are set with
//!   the tables, under their target names. Retention first matters: the target then refuses
//!   a file older than the soft-delete period, as the source would have dropped its rows.
//! - Functions are created or altered with the tables. A function whose parameters or body
//!   name a table the request renames is left out: rewriting KQL is not safe (the name may
//!   be a column or a string too), and the old name would point at nothing, or at something
//!   else. The report says to re-create it with the new name.
//! - Update policies are set after the data: restored rows of their source tables must not
//!   derive rows a second time, since the backup already holds the derived table's rows. An
//!   update policy whose source table is not restored, or whose query names a renamed
//!   table, is left out and reported.
//! - Materialized views are not restored: they hold derived data and are re-created with
//!   backfill from their restored source. External tables and continuous exports point at
//!   the source's storage; adx-backup's own are never restored, others are reported.
//! - Anything else (security, encoding and other policies, database statements) is
//!   reported, not applied.

use std::collections::BTreeMap;

use super::Statement;
use crate::ids::TableName;
use crate::kusto::command::{
    Command, alter_table_caching_policy, alter_table_restricted_view_access,
    alter_table_retention_policy, alter_table_row_level_security, alter_table_update_policy,
    create_or_alter_function, create_or_alter_ingestion_mapping,
};

/// A command with what it does, in words, for the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub what: String,
    pub command: Command,
}

/// The snapshot's statements besides tables, sorted by when they apply.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectPlan {
    /// With the tables, before any data.
    pub with_tables: Vec<Planned>,
    /// After the last file is in: update policies.
    pub after_data: Vec<Planned>,
    /// Left out, each with why and what to do.
    pub not_applied: Vec<String>,
}

/// The plan for `statements`, restoring the tables `tables` (source name → target name);
/// objects whose name starts with `object_prefix` are adx-backup's own and never restored.
pub fn plan(
    statements: &[Statement],
    tables: &BTreeMap<TableName, TableName>,
    object_prefix: &str,
) -> ObjectPlan {
    let mut out = ObjectPlan::default();
    let renamed: Vec<(&TableName, &TableName)> = tables.iter().filter(|(s, t)| s != t).collect();
    for statement in statements {
        match statement {
            Statement::Table(_) | Statement::IngestionTime => {}
            Statement::Retention {
                table,
                soft_delete,
                recoverability,
            } => {
                if let Some(target) = tables.get(table) {
                    out.with_tables.push(Planned {
                        what: format!("retention policy of {target}"),
                        command: alter_table_retention_policy(
                            target,
                            *soft_delete,
                            *recoverability,
                        ),
                    });
                }
            }
            Statement::Caching { table, hot } => {
                if let Some(target) = tables.get(table) {
                    out.with_tables.push(Planned {
                        what: format!("caching policy of {target}"),
                        command: alter_table_caching_policy(target, *hot),
                    });
                }
            }
            Statement::Mapping {
                table,
                kind,
                name,
                mapping,
            } => {
                if let Some(target) = tables.get(table) {
                    out.with_tables.push(Planned {
                        what: format!("{} ingestion mapping {name:?} of {target}", kind.as_str()),
                        command: create_or_alter_ingestion_mapping(target, *kind, name, mapping),
                    });
                }
            }
            Statement::Function(f) => {
                let names = renamed
                    .iter()
                    .find(|(s, _)| f.body.mentions(s.as_str()) || f.params.mentions(s.as_str()));
                match names {
                    Some((source, target)) => out.not_applied.push(format!(
                        "function {}: not restored, its body names table {source}, which this restore renames to {target}; re-create it with the new name",
                        f.name
                    )),
                    None => out.with_tables.push(Planned {
                        what: format!("function {}", f.name),
                        command: create_or_alter_function(f),
                    }),
                }
            }
            Statement::UpdatePolicy { table, entries } => {
                if let Some(target) = tables.get(table) {
                    match update_policy(entries, tables, &renamed) {
                        Ok(policy) => out.after_data.push(Planned {
                            what: format!("update policy of {target} (set after the data)"),
                            command: alter_table_update_policy(target, &policy),
                        }),
                        Err(why) => out.not_applied.push(format!(
                            "update policy of {target}: not restored, {why}"
                        )),
                    }
                }
            }
            Statement::RowLevelSecurity {
                table,
                enabled,
                query,
            } => {
                if let Some(target) = tables.get(table) {
                    match renamed.iter().find(|(s, _)| query.mentions(s.as_str())) {
                        Some((source, new)) => out.not_applied.push(format!(
                            "row-level security policy of {target}: not restored, its query names table {source}, which this restore renames to {new}; set it again with the new name"
                        )),
                        // After the data: it filters what the restore's own counts see.
                        None => out.after_data.push(Planned {
                            what: format!("row-level security policy of {target} (set after the data)"),
                            command: alter_table_row_level_security(target, *enabled, query),
                        }),
                    }
                }
            }
            Statement::RestrictedViewAccess { table, enabled } => {
                if let Some(target) = tables.get(table) {
                    out.after_data.push(Planned {
                        what: format!("restricted view access of {target} (set after the data)"),
                        command: alter_table_restricted_view_access(target, *enabled),
                    });
                }
            }
            Statement::MaterializedView { name } => out.not_applied.push(format!(
                "materialized view {name}: not restored, its rows are derived; re-create it after the restore with `.create materialized-view with (backfill=true) {name} on table ...` so it is built from the restored source"
            )),
            Statement::ExternalTable { name } | Statement::ContinuousExport { name }
                if name.starts_with(object_prefix) => {}
            Statement::ExternalTable { name } => out.not_applied.push(format!(
                "external table {name}: not restored, it points at the source's storage; re-create it with its connection string"
            )),
            Statement::ContinuousExport { name } => out.not_applied.push(format!(
                "continuous export {name}: not restored, it would export from the restored database; re-create it if wanted"
            )),
            Statement::Other { table, text, why } => {
                if table.as_ref().is_none_or(|t| tables.contains_key(t)) {
                    out.not_applied.push(format!("{text}: not applied, {why}"));
                }
            }
        }
    }
    out
}

/// The policy's entries with their `Source` renamed; an error says why it cannot be set.
fn update_policy(
    entries: &[serde_json::Value],
    tables: &BTreeMap<TableName, TableName>,
    renamed: &[(&TableName, &TableName)],
) -> Result<serde_json::Value, String> {
    let mut out = Vec::new();
    for entry in entries {
        let source = entry
            .get("Source")
            .and_then(|s| s.as_str())
            .unwrap_or_default();
        let query = entry
            .get("Query")
            .and_then(|s| s.as_str())
            .unwrap_or_default();
        let Some(target_source) = tables.iter().find(|(s, _)| s.as_str() == source) else {
            return Err(format!(
                "its source table {source} is not part of this restore"
            ));
        };
        let code = crate::kusto::command::KqlCode::new(query)
            .map_err(|e| format!("its query is not readable: {e}"))?;
        if let Some((s, t)) = renamed.iter().find(|(s, _)| code.mentions(s.as_str())) {
            return Err(format!(
                "its query names table {s}, which this restore renames to {t}; set it again with the new name"
            ));
        }
        let mut entry = entry.clone();
        entry["Source"] = serde_json::Value::String(target_source.1.to_string());
        out.push(entry);
    }
    Ok(serde_json::Value::Array(out))
}

#[cfg(test)]
mod tests {
    use super::super::statements;
    use super::*;

    const SCRIPT: &str = r#".create-merge table Raw (Timestamp:datetime, Line:string)
.create-merge table Parsed (Timestamp:datetime, Word:string)
.create-merge table Other (a:long)
.alter-merge table Raw policy retention softdelete = 30d recoverability = disabled
.alter table Raw policy caching hot = 7d
.alter table Other policy caching hot = 1d
.create-or-alter table Raw ingestion json mapping "m" "[{\"column\":\"Line\"}]"
.create-or-alter function with (folder = "", docstring = "") ReadsRaw() { Raw | take 1 }
.create-or-alter function with (folder = "", docstring = "") ReadsParsed() { Parsed | take 1 }
.alter table Parsed policy update "[{\"IsEnabled\":true,\"Source\":\"Raw\",\"Query\":\"Raw | project Timestamp, Word = Line\"}]"
.alter table Other policy update "[{\"IsEnabled\":true,\"Source\":\"Missing\",\"Query\":\"Missing\"}]"
.create materialized-view Daily on table Raw { Raw | count }
.create-or-alter external table ['adxbk_Raw'] (a:long) kind = storage dataformat = parquet ("x")
.create-or-alter external table Lake (a:long) kind = storage dataformat = parquet ("x")
.alter table Other policy row_level_security enable "Other"
.alter table Raw policy row_level_security enable "Raw""#;

    fn tables(pairs: &[(&str, &str)]) -> BTreeMap<TableName, TableName> {
        pairs
            .iter()
            .map(|(s, t)| (TableName::new(*s).unwrap(), TableName::new(*t).unwrap()))
            .collect()
    }

    fn texts(planned: &[Planned]) -> Vec<&str> {
        planned.iter().map(|p| p.command.as_str()).collect()
    }

    #[test]
    fn objects_of_restored_tables_apply_and_update_policies_wait_for_the_data() {
        let all = statements(SCRIPT).unwrap();
        let plan = plan(
            &all,
            &tables(&[("Raw", "Raw"), ("Parsed", "Parsed")]),
            "adxbk_",
        );
        assert_eq!(
            texts(&plan.with_tables),
            [
                r#".alter table ['Raw'] policy retention '{"Recoverability":"Disabled","SoftDeletePeriod":"30.00:00:00.0000000"}'"#,
                ".alter table ['Raw'] policy caching hot = 7d",
                r#".create-or-alter table ['Raw'] ingestion json mapping 'm' '[{"column":"Line"}]'"#,
                ".create-or-alter function with (folder = '', docstring = '', skipvalidation = 'true') ['ReadsRaw']() { Raw | take 1 }",
                ".create-or-alter function with (folder = '', docstring = '', skipvalidation = 'true') ['ReadsParsed']() { Parsed | take 1 }",
            ]
        );
        assert_eq!(
            texts(&plan.after_data),
            [
                r#".alter table ['Parsed'] policy update '[{"IsEnabled":true,"Query":"Raw | project Timestamp, Word = Line","Source":"Raw"}]'"#,
                ".alter table ['Raw'] policy row_level_security enable 'Raw'",
            ]
        );
        // Other's statements are out of scope; the rest is reported.
        assert_eq!(plan.not_applied.len(), 2, "{:#?}", plan.not_applied);
        assert!(plan.not_applied[0].starts_with("materialized view Daily: not restored"));
        assert!(plan.not_applied[1].starts_with("external table Lake"));
    }

    #[test]
    fn a_rename_moves_objects_and_reports_code_that_names_the_old_table() {
        let all = statements(SCRIPT).unwrap();
        let plan = plan(
            &all,
            &tables(&[("Raw", "Raw2"), ("Parsed", "Parsed"), ("Other", "Other")]),
            "adxbk_",
        );
        let with = texts(&plan.with_tables);
        assert!(with.contains(&".alter table ['Raw2'] policy caching hot = 7d"));
        assert!(with.iter().any(|c| c.contains("['ReadsParsed']")));
        assert!(!with.iter().any(|c| c.contains("['ReadsRaw']")));
        assert_eq!(
            texts(&plan.after_data),
            [".alter table ['Other'] policy row_level_security enable 'Other'"]
        );
        let report = plan.not_applied.join("\n");
        for expected in [
            "function ReadsRaw: not restored, its body names table Raw, which this restore renames to Raw2",
            "row-level security policy of Raw2: not restored, its query names table Raw",
            "update policy of Parsed: not restored, its query names table Raw",
            "update policy of Other: not restored, its source table Missing is not part of this restore",
        ] {
            assert!(report.contains(expected), "{expected}\n{report}");
        }
    }

    #[test]
    fn an_update_policy_source_is_renamed_when_its_query_does_not_name_it() {
        let script = r#".alter table Parsed policy update "[{\"IsEnabled\":true,\"Source\":\"Raw\",\"Query\":\"ParseRaw()\"}]""#;
        let plan = plan(
            &statements(script).unwrap(),
            &tables(&[("Raw", "Raw2"), ("Parsed", "Parsed")]),
            "adxbk_",
        );
        assert_eq!(
            texts(&plan.after_data),
            [
                r#".alter table ['Parsed'] policy update '[{"IsEnabled":true,"Query":"ParseRaw()","Source":"Raw2"}]'"#
            ]
        );
    }

    #[test]
    fn row_level_security_and_restricted_view_access_come_back_after_the_data() {
        let script = r#".alter table Raw policy row_level_security enable "Raw | where Line != 'secret'"
.alter table Parsed policy row_level_security enable "Raw | take 0"
.alter table Parsed policy restricted_view_access true
.alter table Gone policy restricted_view_access true"#;
        let kept = plan(
            &statements(script).unwrap(),
            &tables(&[("Raw", "Raw"), ("Parsed", "Parsed2")]),
            "adxbk_",
        );
        assert!(kept.with_tables.is_empty());
        assert_eq!(
            texts(&kept.after_data),
            [
                r#".alter table ['Raw'] policy row_level_security enable 'Raw | where Line != \'secret\''"#,
                ".alter table ['Parsed2'] policy row_level_security enable 'Raw | take 0'",
                ".alter table ['Parsed2'] policy restricted_view_access true",
            ]
        );
        let renamed = plan(
            &statements(script).unwrap(),
            &tables(&[("Raw", "Raw2"), ("Parsed", "Parsed")]),
            "adxbk_",
        );
        assert_eq!(
            texts(&renamed.after_data),
            [".alter table ['Parsed'] policy restricted_view_access true"]
        );
        assert!(
            renamed
                .not_applied
                .iter()
                .any(|n| n.contains("row-level security policy of Raw2")
                    && n.contains("names table Raw")),
            "{:?}",
            renamed.not_applied
        );
    }
}
