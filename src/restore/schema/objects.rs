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
//! - Materialized views are created last, once every file of their source is in, with
//!   `backfill=true`, so they are built from the restored records (the driver creates them
//!   one at a time, `restore::views`). A view whose source table is not restored, or whose
//!   query names a table the request renames, is reported.
//! - External tables that are not adx-backup's are created with the tables when their
//!   connection strings hold no secret (a managed identity, impersonation, or none): the
//!   snapshot never holds one (Kusto hides credentials in the script). The others are
//!   reported, with what to do. adx-backup's own (the object prefix) are never restored.
//! - Continuous exports are reported, never re-created: one would start exporting the
//!   restored database; adx-backup's own are skipped.
//! - Database and table principals only when the request asks (`principals`): a target in
//!   another tenant must not get the source's identities. With a `principalMapping`, only
//!   the principals it maps are restored, as their target identity; the others are
//!   reported by name. Without one, every principal is restored as the snapshot names it.
//!   They are added last, after the data and after row-level security and restricted view
//!   access: a viewer granted earlier could read rows those policies are about to hide, or
//!   a half-restored table. Database roles go first (admins to monitors, so an unrestricted
//!   viewer already holds its viewer role), then table roles, which Kusto grants only to a
//!   principal with a database role.
//! - Anything else (encoding and other policies, database statements) is reported, not
//!   applied.

use std::collections::BTreeMap;

use super::Statement;
use crate::ids::{DatabaseName, Principal, TableName, ViewName};
use crate::kusto::command::{
    Command, MaterializedViewSpec, StorageExternalTableSpec, add_database_principals,
    add_table_principals, alter_table_caching_policy, alter_table_restricted_view_access,
    alter_table_retention_policy, alter_table_row_level_security, alter_table_update_policy,
    create_materialized_view_backfilled, create_or_alter_function,
    create_or_alter_ingestion_mapping, create_storage_external_table, find_external_table,
    find_materialized_view,
};
use crate::restore::request::RestoreRequestV1;

/// What the restore does with the snapshot's principals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Principals<'a> {
    /// None is restored (the request's default); the report says how many were left.
    Left,
    /// Every one, as the snapshot names it, on target database `database`.
    AsIs { database: &'a DatabaseName },
    /// Only those `mapping` names (source → target), on target database `database`.
    Mapped {
        database: &'a DatabaseName,
        mapping: &'a BTreeMap<Principal, Principal>,
    },
}

impl<'a> Principals<'a> {
    /// What `request` asks for.
    pub fn of(request: &'a RestoreRequestV1) -> Self {
        let database = &request.target.database;
        match (request.principals, request.principal_mapping.is_empty()) {
            (false, _) => Self::Left,
            (true, true) => Self::AsIs { database },
            (true, false) => Self::Mapped {
                database,
                mapping: &request.principal_mapping,
            },
        }
    }
}

/// The principals to add, sorted as the module doc says, and what the plan reports.
#[derive(Default)]
struct Grants {
    /// (0 for the database and its role, or 1 for a table) → what to send.
    planned: Vec<((u8, u8), Planned)>,
    /// Principals in the snapshot that the request left out.
    left: usize,
    /// Mapping keys that matched a principal.
    used: Vec<Principal>,
}

impl Grants {
    /// The principals of one statement as `principals` restores them: the targets, or
    /// None (each one left out is reported in `not_applied`).
    fn targets(
        &mut self,
        what: &str,
        sources: &[Principal],
        principals: Principals,
        not_applied: &mut Vec<String>,
    ) -> Option<Vec<Principal>> {
        let mapping = match principals {
            Principals::Left => {
                self.left += sources.len();
                return None;
            }
            Principals::AsIs { .. } => return Some(sources.to_vec()),
            Principals::Mapped { mapping, .. } => mapping,
        };
        let mut out = Vec::new();
        for source in sources {
            match mapping.iter().find(|(from, _)| from.same_as(source)) {
                Some((from, to)) => {
                    self.used.push(from.clone());
                    if !out.iter().any(|p: &Principal| p.same_as(to)) {
                        out.push(to.clone());
                    }
                }
                None => not_applied.push(format!(
                    "{what} principal {source}: not restored, principalMapping has no entry for it; add one to restore it"
                )),
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// Notes for the target: the source's when restored as is; a mapped principal is
    /// another identity, which the source's notes do not describe.
    fn notes(principals: Principals, source: &str) -> String {
        match principals {
            Principals::Mapped { .. } => "restored by adx-backup (principalMapping)".to_owned(),
            _ => source.to_owned(),
        }
    }

    /// The sorted commands, and the lines to report.
    fn finish(mut self, principals: Principals, out: &mut ObjectPlan) {
        self.planned.sort_by_key(|(key, _)| *key);
        out.after_data
            .extend(self.planned.into_iter().map(|(_, planned)| planned));
        if self.left > 0 {
            out.not_applied.push(format!(
                "database and table principals ({}): not restored, the request does not ask for them; set \"principals\": true (CLI --principals), with a \"principalMapping\" when the target is in another tenant",
                self.left
            ));
        }
        if let Principals::Mapped { mapping, .. } = principals {
            for from in mapping.keys().filter(|k| !self.used.contains(k)) {
                out.not_applied.push(format!(
                    "principalMapping entry {from}: no restored principal is {from}; nothing was added for it"
                ));
            }
        }
    }
}

/// A command with what it does, in words, for the report.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub what: String,
    pub command: Command,
    /// For a create that fails on an existing object: a command whose answer has a row
    /// when the object is already in the target, which then is left as it is.
    pub unless_found: Option<Command>,
}

impl Planned {
    fn new(what: String, command: Command) -> Self {
        Self {
            what,
            command,
            unless_found: None,
        }
    }
}

/// A materialized view to create once its source's rows are in.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedView {
    pub name: ViewName,
    /// What it is, in words, for the report.
    pub what: String,
    /// `.create async ifnotexists materialized-view with (backfill=true, ...)`.
    pub create: Command,
    /// `.show materialized-views | where Name == ...`.
    pub find: Command,
}

/// The snapshot's statements besides tables, sorted by when they apply.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectPlan {
    /// With the tables, before any data.
    pub with_tables: Vec<Planned>,
    /// After the last file is in: update policies.
    pub after_data: Vec<Planned>,
    /// Last, one at a time: materialized views, backfilled from their restored source.
    pub views: Vec<PlannedView>,
    /// Left out, each with why and what to do.
    pub not_applied: Vec<String>,
}

/// The plan for `statements`, restoring the tables `tables` (source name → target name)
/// and `principals`; objects whose name starts with `object_prefix` are adx-backup's own
/// and never restored.
pub fn plan(
    statements: &[Statement],
    tables: &BTreeMap<TableName, TableName>,
    object_prefix: &str,
    principals: Principals,
) -> ObjectPlan {
    let mut out = ObjectPlan::default();
    let mut grants = Grants::default();
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
                    out.with_tables.push(Planned::new(
                        format!("retention policy of {target}"),
                        alter_table_retention_policy(target, *soft_delete, *recoverability),
                    ));
                }
            }
            Statement::Caching { table, hot } => {
                if let Some(target) = tables.get(table) {
                    out.with_tables.push(Planned::new(
                        format!("caching policy of {target}"),
                        alter_table_caching_policy(target, *hot),
                    ));
                }
            }
            Statement::Mapping {
                table,
                kind,
                name,
                mapping,
            } => {
                if let Some(target) = tables.get(table) {
                    out.with_tables.push(Planned::new(
                        format!("{} ingestion mapping {name:?} of {target}", kind.as_str()),
                        create_or_alter_ingestion_mapping(target, *kind, name, mapping),
                    ));
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
                    None => out.with_tables.push(Planned::new(
                        format!("function {}", f.name),
                        create_or_alter_function(f),
                    )),
                }
            }
            Statement::UpdatePolicy { table, entries } => {
                if let Some(target) = tables.get(table) {
                    match update_policy(entries, tables, &renamed) {
                        Ok(policy) => out.after_data.push(Planned::new(
                            format!("update policy of {target} (set after the data)"),
                            alter_table_update_policy(target, &policy),
                        )),
                        Err(why) => out
                            .not_applied
                            .push(format!("update policy of {target}: not restored, {why}")),
                    }
                }
            }
            Statement::RowLevelSecurity {
                table,
                enabled,
                query,
            } => {
                if let Some(target) = tables.get(table) {
                    let what =
                        format!("row-level security policy of {target} (set after the data)");
                    match renamed.iter().find(|(s, _)| query.mentions(s.as_str())) {
                        Some((source, new)) => out.not_applied.push(format!(
                            "row-level security policy of {target}: not restored, its query names table {source}, which this restore renames to {new}; set it again with the new name"
                        )),
                        // After the data: it filters what the restore's own counts see.
                        None => {
                            let command = alter_table_row_level_security(target, *enabled, query);
                            out.after_data.push(Planned::new(what, command));
                        }
                    }
                }
            }
            Statement::RestrictedViewAccess { table, enabled } => {
                if let Some(target) = tables.get(table) {
                    out.after_data.push(Planned::new(
                        format!("restricted view access of {target} (set after the data)"),
                        alter_table_restricted_view_access(target, *enabled),
                    ));
                }
            }
            Statement::MaterializedView { name, source, view } => {
                match view_plan(name, source.as_ref(), view, tables, &renamed) {
                    Ok(view) => out.views.push(view),
                    Err(why) => out.not_applied.extend(why),
                }
            }
            Statement::ExternalTable { name, .. } | Statement::ContinuousExport { name }
                if name.starts_with(object_prefix) => {}
            Statement::ExternalTable { name, table } => match external_table(table) {
                Ok(planned) => out.with_tables.push(planned),
                Err(why) => out
                    .not_applied
                    .push(format!("external table {name}: not restored, {why}")),
            },
            Statement::ContinuousExport { name } => out.not_applied.push(format!(
                "continuous export {name}: not restored, it would export from the restored database; re-create it if wanted"
            )),
            Statement::DatabasePrincipals {
                role,
                principals: sources,
                notes,
            } => {
                let what = format!("database {}", role.as_str());
                if let Some(targets) =
                    grants.targets(&what, sources, principals, &mut out.not_applied)
                    && let Principals::AsIs { database } | Principals::Mapped { database, .. } =
                        principals
                {
                    grants.planned.push((
                        (0, *role as u8),
                        Planned::new(
                            format!("{what}: {} (set after the data)", list(&targets)),
                            add_database_principals(
                                database,
                                *role,
                                &targets,
                                &Grants::notes(principals, notes),
                            ),
                        ),
                    ));
                }
            }
            Statement::TablePrincipals {
                table,
                role,
                principals: sources,
                notes,
            } => {
                let Some(target) = tables.get(table) else {
                    continue;
                };
                let what = format!("table {target} {}", role.as_str());
                if let Some(targets) =
                    grants.targets(&what, sources, principals, &mut out.not_applied)
                {
                    grants.planned.push((
                        (1, 0),
                        Planned::new(
                            format!("{what}: {} (set after the data)", list(&targets)),
                            add_table_principals(
                                target,
                                *role,
                                &targets,
                                &Grants::notes(principals, notes),
                            ),
                        ),
                    ));
                }
            }
            Statement::Other { table, text, why } => {
                if table.as_ref().is_none_or(|t| tables.contains_key(t)) {
                    out.not_applied.push(format!("{text}: not applied, {why}"));
                }
            }
        }
    }
    grants.finish(principals, &mut out);
    out
}

/// A materialized view of the snapshot as this restore creates it: over its restored source
/// table, backfilled. Otherwise the lines that say why not (none for a view whose source
/// table this restore leaves out and whose definition could not be read).
fn view_plan(
    name: &str,
    source: Option<&TableName>,
    view: &Result<MaterializedViewSpec, String>,
    tables: &BTreeMap<TableName, TableName>,
    renamed: &[(&TableName, &TableName)],
) -> Result<PlannedView, Vec<String>> {
    let not = |why: String| vec![format!("materialized view {name}: not restored, {why}")];
    let (view, target) = match (view, source, source.and_then(|s| tables.get(s))) {
        (Ok(view), _, Some(target)) => (view, target),
        (_, Some(s), None) => {
            return Err(not(format!(
                "its source table {s} is not part of this restore; restore {s} with it, or create the view by hand once {s} is back"
            )));
        }
        (Err(why), _, _) => return Err(not(why.clone())),
        // A readable view always has its source table.
        (Ok(_), None, _) => return Err(Vec::new()),
    };
    // Rewriting the query is not safe (the name may be a column or a string too), and under
    // the old name it would read nothing, or something else.
    if let Some((s, t)) = renamed
        .iter()
        .find(|(s, _)| view.query.mentions(s.as_str()))
    {
        return Err(not(format!(
            "its query names table {s}, which this restore renames to {t}; create it by hand with the new name"
        )));
    }
    Ok(PlannedView {
        name: view.name.clone(),
        what: format!(
            "materialized view {} on {target} (backfilled from the restored rows)",
            view.name
        ),
        create: create_materialized_view_backfilled(view, target),
        find: find_materialized_view(&view.name),
    })
}

/// An external table of the snapshot, created unless the target has one of that name; or
/// why it cannot be. Only a connection string that holds no secret can be re-created: the
/// snapshot never holds one (Kusto hides credentials in `.show database schema as csl
/// script` unless asked with `ShowObfuscatedStrings`, which protect does not ask).
fn external_table(table: &Result<StorageExternalTableSpec, String>) -> Result<Planned, String> {
    let table = table.as_ref().map_err(Clone::clone)?;
    let mut auths = Vec::new();
    for (i, c) in table.connection_strings.iter().enumerate() {
        match storage_auth(c) {
            Ok(auth) => auths.push(auth),
            Err(why) => {
                return Err(format!(
                    "its connection string {} {why}, which the backup does not hold; create it by hand with its credential, or better with a managed identity (`;managed_identity=...`) that the target cluster's managed identity policy allows for ExternalTable",
                    i + 1
                ));
            }
        }
    }
    auths.dedup();
    Ok(Planned {
        what: format!("external table {} ({})", table.name, auths.join(", ")),
        command: create_storage_external_table(table),
        unless_found: Some(find_external_table(&table.name)),
    })
}

/// How a connection string authenticates, in words, when it holds no secret
/// (<https://learn.microsoft.com/kusto/api/connection-strings/storage-connection-strings#storage-authentication-methods>);
/// otherwise what it holds. The secret itself is never repeated.
fn storage_auth(connection: &str) -> Result<String, &'static str> {
    let (root, auth) = match connection.split_once(';') {
        Some((root, auth)) => (root, Some(auth)),
        None => (connection, None),
    };
    if connection.contains('*') {
        return Err("carries a credential the snapshot hides");
    }
    if root.contains('?') {
        return Err("carries a SAS token");
    }
    match auth.map(str::to_ascii_lowercase).as_deref() {
        None => Ok("no credential".to_owned()),
        Some("impersonate") => {
            Ok("impersonation: each caller's own access to the storage".to_owned())
        }
        Some(a) if a.starts_with("managed_identity=") => {
            let identity = &a["managed_identity=".len()..];
            Ok(format!(
                "managed identity {identity}: the target cluster needs it, a managed identity policy allowing ExternalTable, and read access to the storage"
            ))
        }
        Some(_) => Err("carries a credential (an account key or a token)"),
    }
}

fn list(principals: &[Principal]) -> String {
    principals
        .iter()
        .map(Principal::as_str)
        .collect::<Vec<_>>()
        .join(", ")
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
.create materialized-view Daily on table Raw { Raw | summarize count() by bin(Timestamp, 1d) }
.create-or-alter external table ['adxbk_Raw'] (a:long) kind = storage dataformat = parquet (h@"https://bk/c;managed_identity=system")
.create-or-alter external table Lake (a:long) kind = storage dataformat = parquet (h@"https://lake/c;managed_identity=system")
.create-or-alter external table Locked (a:long) kind = storage dataformat = parquet (h@"https://lake/c;*****")
.create-or-alter continuous-export ['adxbk_Raw'] over (Raw) to table ['adxbk_Raw'] with (intervalBetweenRuns=5m) <| Raw
.create-or-alter continuous-export ToLake over (Raw) to table Lake with (intervalBetweenRuns=1h) <| Raw
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
            Principals::Left,
        );
        assert_eq!(
            texts(&plan.with_tables),
            [
                r#".alter table ['Raw'] policy retention '{"Recoverability":"Disabled","SoftDeletePeriod":"30.00:00:00.0000000"}'"#,
                ".alter table ['Raw'] policy caching hot = 7d",
                r#".create-or-alter table ['Raw'] ingestion json mapping 'm' '[{"column":"Line"}]'"#,
                ".create-or-alter function with (folder = '', docstring = '', skipvalidation = 'true') ['ReadsRaw']() { Raw | take 1 }",
                ".create-or-alter function with (folder = '', docstring = '', skipvalidation = 'true') ['ReadsParsed']() { Parsed | take 1 }",
                ".create external table ['Lake'] (['a']:long) kind=storage dataformat=parquet (h'https://lake/c;managed_identity=system')",
            ]
        );
        let lake = &plan.with_tables[5];
        assert_eq!(
            lake.what,
            "external table Lake (managed identity system: the target cluster needs it, a managed identity policy allowing ExternalTable, and read access to the storage)"
        );
        assert_eq!(
            lake.unless_found.as_ref().map(Command::as_str),
            Some(".show external tables | where TableName == 'Lake'")
        );
        assert!(
            plan.with_tables[..5]
                .iter()
                .all(|p| p.unless_found.is_none())
        );
        assert_eq!(
            texts(&plan.after_data),
            [
                r#".alter table ['Parsed'] policy update '[{"IsEnabled":true,"Query":"Raw | project Timestamp, Word = Line","Source":"Raw"}]'"#,
                ".alter table ['Raw'] policy row_level_security enable 'Raw'",
            ]
        );
        // The view waits for its source's rows, and is built from them.
        assert_eq!(plan.views.len(), 1);
        assert_eq!(
            plan.views[0].create.as_str(),
            ".create async ifnotexists materialized-view with (backfill=true, folder='', docString='') ['Daily'] on table ['Raw'] { Raw | summarize count() by bin(Timestamp, 1d) }"
        );
        assert_eq!(
            plan.views[0].find.as_str(),
            ".show materialized-views | where Name == 'Daily'"
        );
        assert_eq!(
            plan.views[0].what,
            "materialized view Daily on Raw (backfilled from the restored rows)"
        );
        // Other's statements are out of scope; adx-backup's own objects are skipped; the
        // rest is reported.
        assert_eq!(
            plan.not_applied,
            [
                "external table Locked: not restored, its connection string 1 carries a credential the snapshot hides, which the backup does not hold; create it by hand with its credential, or better with a managed identity (`;managed_identity=...`) that the target cluster's managed identity policy allows for ExternalTable",
                "continuous export ToLake: not restored, it would export from the restored database; re-create it if wanted",
            ]
        );
    }

    #[test]
    fn a_view_comes_back_only_with_its_source_table_under_its_own_name() {
        let all = statements(SCRIPT).unwrap();
        let without_raw = plan(
            &all,
            &tables(&[("Parsed", "Parsed")]),
            "adxbk_",
            Principals::Left,
        );
        assert!(without_raw.views.is_empty());
        assert!(
            without_raw.not_applied.contains(&"materialized view Daily: not restored, its source table Raw is not part of this restore; restore Raw with it, or create the view by hand once Raw is back".to_owned()),
            "{:#?}",
            without_raw.not_applied
        );
        let renamed = plan(
            &all,
            &tables(&[("Raw", "Raw2")]),
            "adxbk_",
            Principals::Left,
        );
        assert!(renamed.views.is_empty());
        assert!(
            renamed.not_applied.contains(&"materialized view Daily: not restored, its query names table Raw, which this restore renames to Raw2; create it by hand with the new name".to_owned()),
            "{:#?}",
            renamed.not_applied
        );
        // A view this build cannot re-create is reported with why, when its source is restored.
        let script = ".create async materialized-view with (backfill=true, effectiveDateTime=datetime(2026-01-01)) Recent on table Raw { Raw | summarize count() }
.create materialized-view OnView on materialized-view Daily { Daily | summarize count() }
.create materialized-view with (dimensionTables = dynamic(['Dim'])) Joined on table Raw { Raw | summarize count() }
.create materialized-view with (lookback_column = 'Ts') Keyed on table Raw { Raw | summarize take_any(*) by Id }
.create materialized-view Elsewhere on table Gone { Gone | summarize count() }";
        let odd = plan(
            &statements(script).unwrap(),
            &tables(&[("Raw", "Raw")]),
            "adxbk_",
            Principals::Left,
        );
        assert!(odd.views.is_empty());
        let report = odd.not_applied.join("\n");
        for expected in [
            "materialized view Recent: not restored, it was backfilled only from records ingested after its effectiveDateTime",
            "materialized view OnView: not restored, it is defined on materialized-view Daily, not on a table",
            "materialized view Joined: not restored, its property dimensionTables is not one this restore re-creates",
            "materialized view Keyed: not restored, its property lookback_column is not one this restore re-creates",
            "materialized view Elsewhere: not restored, its source table Gone is not part of this restore",
        ] {
            assert!(report.contains(expected), "{expected}\n{report}");
        }
        assert_eq!(odd.not_applied.len(), 5, "{report}");
    }

    #[test]
    fn an_external_table_comes_back_only_without_a_secret_and_never_repeats_one() {
        let script = r#".create-or-alter external table Imp (a:long) kind = storage partition by (D:datetime = startofday(a)) pathformat = ("d=" datetime_pattern("yyyyMMdd", D)) dataformat = csv (h@"https://lake/imp;impersonate") with (folder = "Lake", docString = "it's", includeHeaders = "All", dryRun = true)
.create-or-alter external table Open (a:long) kind = storage dataformat = parquet ("https://lake/open")
.create-or-alter external table Sas (a:long) kind = storage dataformat = parquet (h@"https://lake/sas?sv=1&sig=TOPSECRET")
.create-or-alter external table Key (a:long) kind = storage dataformat = parquet (h@"https://lake/key;TOPSECRET==")
.create-or-alter external table Token (a:long) kind = storage dataformat = parquet (h@"https://lake/ok;managed_identity=system", h@"https://lake/tok;token=TOPSECRET")
.create external table Sql (a:long) kind = sql table = T (h@"Server=x")"#;
        let plan = plan(
            &statements(script).unwrap(),
            &tables(&[]),
            "adxbk_",
            Principals::Left,
        );
        assert_eq!(
            texts(&plan.with_tables),
            [
                ".create external table ['Imp'] (['a']:long) kind=storage partition by (D:datetime = startofday(a)) pathformat = (\"d=\" datetime_pattern(\"yyyyMMdd\", D)) dataformat=csv (h'https://lake/imp;impersonate') with (folder='Lake', docString='it\\'s', includeHeaders='All')",
                ".create external table ['Open'] (['a']:long) kind=storage dataformat=parquet (h'https://lake/open')",
            ]
        );
        assert_eq!(
            plan.with_tables[1].what,
            "external table Open (no credential)"
        );
        let report = plan.not_applied.join("\n");
        assert!(!report.contains("TOPSECRET"), "{report}");
        for expected in [
            "external table Sas: not restored, its connection string 1 carries a SAS token",
            "external table Key: not restored, its connection string 1 carries a credential (an account key or a token)",
            "external table Token: not restored, its connection string 2 carries a credential (an account key or a token)",
            "external table Sql: not restored, it is an external table of kind sql",
        ] {
            assert!(report.contains(expected), "{expected}\n{report}");
        }
        assert_eq!(plan.not_applied.len(), 4, "{report}");
    }

    #[test]
    fn a_rename_moves_objects_and_reports_code_that_names_the_old_table() {
        let all = statements(SCRIPT).unwrap();
        let plan = plan(
            &all,
            &tables(&[("Raw", "Raw2"), ("Parsed", "Parsed"), ("Other", "Other")]),
            "adxbk_",
            Principals::Left,
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
            Principals::Left,
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
            Principals::Left,
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
            Principals::Left,
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

    const PRINCIPALS: &str = r#".create-merge table Raw (Timestamp:datetime, Line:string)
.alter table Raw policy row_level_security enable "RawFilter()"
.add table ['Raw'] admins ("aaduser=owner@src.com") "owns Raw"
.add database ['Src'] viewers ("aadapp=reader;src-tenant", "aadgroup=analysts;src-tenant") "readers"
.add database ['Src'] unrestrictedviewers ("aadapp=reader;src-tenant") ""
.add database ['Src'] admins ("aaduser=owner@src.com") "dba"
.add table ['Gone'] ingestors ("aadapp=loader;src-tenant") """#;

    fn principal(s: &str) -> Principal {
        Principal::new(s).unwrap()
    }

    #[test]
    fn principals_are_left_unless_asked_and_counted_in_the_report() {
        let plan = plan(
            &statements(PRINCIPALS).unwrap(),
            &tables(&[("Raw", "Raw")]),
            "adxbk_",
            Principals::Left,
        );
        assert_eq!(
            texts(&plan.after_data),
            [".alter table ['Raw'] policy row_level_security enable 'RawFilter()'"]
        );
        // Gone's principal is out of scope: 1 table + 4 database principals.
        assert_eq!(
            plan.not_applied,
            [
                "database and table principals (5): not restored, the request does not ask for them; set \"principals\": true (CLI --principals), with a \"principalMapping\" when the target is in another tenant"
            ]
        );
    }

    #[test]
    fn asked_without_a_mapping_every_principal_comes_back_last_database_roles_first() {
        let db = DatabaseName::new("Dr").unwrap();
        let plan = plan(
            &statements(PRINCIPALS).unwrap(),
            &tables(&[("Raw", "Raw2")]),
            "adxbk_",
            Principals::AsIs { database: &db },
        );
        assert_eq!(
            texts(&plan.after_data),
            [
                ".alter table ['Raw2'] policy row_level_security enable 'RawFilter()'",
                ".add database ['Dr'] admins ('aaduser=owner@src.com') skip-results 'dba'",
                ".add database ['Dr'] viewers ('aadapp=reader;src-tenant', 'aadgroup=analysts;src-tenant') skip-results 'readers'",
                ".add database ['Dr'] unrestrictedviewers ('aadapp=reader;src-tenant') skip-results ''",
                ".add table ['Raw2'] admins ('aaduser=owner@src.com') skip-results 'owns Raw'",
            ]
        );
        assert_eq!(
            plan.after_data[4].what,
            "table Raw2 admins: aaduser=owner@src.com (set after the data)"
        );
        assert_eq!(plan.not_applied, Vec::<String>::new());
    }

    #[test]
    fn with_a_mapping_only_mapped_principals_come_back_and_the_rest_is_reported() {
        let db = DatabaseName::new("Dr").unwrap();
        let mapping: BTreeMap<Principal, Principal> = [
            ("AADAPP=reader;src-tenant", "aadapp=dr-reader;dr-tenant"),
            ("aaduser=owner@src.com", "aaduser=owner@dr.com"),
            ("aaduser=typo@src.com", "aaduser=x@dr.com"),
            ("aadapp=loader;src-tenant", "aadapp=dr-loader;dr-tenant"),
        ]
        .into_iter()
        .map(|(s, t)| (principal(s), principal(t)))
        .collect();
        let plan = plan(
            &statements(PRINCIPALS).unwrap(),
            &tables(&[("Raw", "Raw2")]),
            "adxbk_",
            Principals::Mapped {
                database: &db,
                mapping: &mapping,
            },
        );
        let notes = "'restored by adx-backup (principalMapping)'";
        assert_eq!(
            texts(&plan.after_data)[1..],
            [
                format!(
                    ".add database ['Dr'] admins ('aaduser=owner@dr.com') skip-results {notes}"
                ),
                format!(
                    ".add database ['Dr'] viewers ('aadapp=dr-reader;dr-tenant') skip-results {notes}"
                ),
                format!(
                    ".add database ['Dr'] unrestrictedviewers ('aadapp=dr-reader;dr-tenant') skip-results {notes}"
                ),
                format!(".add table ['Raw2'] admins ('aaduser=owner@dr.com') skip-results {notes}"),
            ]
        );
        assert!(
            !plan
                .after_data
                .iter()
                .any(|p| p.command.as_str().contains("src")),
            "no source identity reaches the target"
        );
        assert_eq!(
            plan.not_applied,
            [
                "database viewers principal aadgroup=analysts;src-tenant: not restored, principalMapping has no entry for it; add one to restore it",
                "principalMapping entry aadapp=loader;src-tenant: no restored principal is aadapp=loader;src-tenant; nothing was added for it",
                "principalMapping entry aaduser=typo@src.com: no restored principal is aaduser=typo@src.com; nothing was added for it",
            ]
        );
    }
}
