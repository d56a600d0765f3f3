//! Keep a table's external table and continuous export in place and in step with the table.
//!
//! Reads first, writes only on a difference, so a run that finds everything in place sends
//! no command that changes anything. The external table is created with `.create` when
//! missing and changed with `.alter` when it differs, never with `.create-or-alter`: for a
//! table whose connection string uses a managed identity that one needs AllDatabasesAdmin,
//! the other two only Database User and Table Admin (docs/deploy.md). The external table's DocString carries a fingerprint of its
//! definition: a changed table schema (a column added) changes the fingerprint and the
//! external table is altered. The export's query is the whole table, so it follows the
//! table's schema by itself once the external table matches again; until then its runs fail
//! and its cursor stays put, so no row is lost or exported twice.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::ProtectError;
use super::state::{Protection, TableState};
use crate::app::App;
use crate::ids::TableRef;
use crate::ids::{ColumnName, Cursor, ExportName, NameError, TableName};
use crate::kusto::command::{self, ContinuousExportSpec, ExternalTableSpec};
use crate::kusto::types::KustoType;
use crate::kusto::{ContinuousExportRow, Step};

/// Marks objects adx-backup created; what lacks it is never altered.
const DOC_MARKER: &str = "adx-backup:";

/// Result of [`ensure`].
pub struct Ensured {
    pub changes: Vec<String>,
    /// The continuous export as it now stands; None when the table is unprotected.
    pub export: Option<ContinuousExportRow>,
}

/// The names of the objects protecting one table.
pub(super) struct ObjectNames {
    pub external: TableName,
    pub export: ExportName,
}

/// The DocString our external table carries for a protection, as `ensure` writes it; None
/// when the table is not protected.
pub(super) fn expected_doc(protection: &Protection) -> Option<String> {
    match protection {
        Protection::Protected { fingerprint, .. } => Some(format!("{DOC_MARKER}{fingerprint}")),
        Protection::New | Protection::Unprotected { .. } => None,
    }
}

pub async fn ensure(
    app: &App,
    t: &TableRef,
    state: &mut TableState,
) -> Result<Ensured, ProtectError> {
    let mut changes = Vec::new();
    let columns = table_columns(app, t).await?;
    // Before anything is changed on a table continuous export cannot serve.
    if let Some(why) = super::servable::table(app, t).await? {
        return Ok(unprotected(state, why.reason()));
    }
    if !ingestion_time_enabled(app, t).await? {
        if !app.settings.protect.enable_ingestion_time_policy {
            return Ok(unprotected(
                state,
                format!(
                    "the IngestionTime policy is off, and continuous export needs it; run `{}` or set AdxBackup__EnableIngestionTimePolicy=true",
                    command::alter_table_ingestiontime_policy(&t.table, true).as_str()
                ),
            ));
        }
        Step::table(t, "enable the IngestionTime policy")
            .mgmt(
                &app.kusto,
                &command::alter_table_ingestiontime_policy(&t.table, true),
            )
            .await?;
        changes.push("enabled the IngestionTime policy".to_owned());
    }
    let partition = match choose_partition(app, t, &columns) {
        Ok(p) => p,
        Err(reason) => return Ok(unprotected(state, reason)),
    };
    let names = object_names(&app.settings.protect.object_prefix, &t.table)
        .map_err(|e| unexpected(t, format!("cannot name its backup objects: {e}")))?;
    let spec = external_table_spec(app, t, &names, columns, partition.clone());
    let fingerprint = fingerprint(&spec);
    match external_table_doc(app, t, &names.external).await? {
        Some(doc) if !doc.starts_with(DOC_MARKER) => {
            return Ok(unprotected(
                state,
                format!(
                    "an external table named {} exists and was not created by adx-backup; rename it or change AdxBackup__ObjectPrefix",
                    names.external
                ),
            ));
        }
        Some(doc) if doc == format!("{DOC_MARKER}{fingerprint}") => {}
        existing => {
            let spec = ExternalTableSpec {
                doc_string: format!("{DOC_MARKER}{fingerprint}"),
                ..spec
            };
            let (verb, step, cmd) = if existing.is_some() {
                (
                    "updated",
                    "alter the external table",
                    command::alter_external_table(&spec),
                )
            } else {
                (
                    "created",
                    "create the external table",
                    command::create_external_table(&spec),
                )
            };
            Step::table(t, step).mgmt(&app.kusto, &cmd).await?;
            changes.push(format!("{verb} external table {}", names.external));
        }
    }
    let export = ensure_export(app, t, &names, &mut changes).await?;
    if state.start_cursor.is_none() {
        state.start_cursor = export
            .start_cursor
            .clone()
            .filter(|c| !c.is_empty())
            .map(Cursor::new);
    }
    state.protection = Protection::Protected {
        external_table: names.external,
        export: names.export,
        partition_column: partition,
        fingerprint,
    };
    Ok(Ensured {
        changes,
        export: Some(export),
    })
}

/// The table's external table as protect defines it now (columns, partition, location),
/// for an export that must write exactly where the continuous export writes.
pub async fn current_external_table(
    app: &App,
    t: &TableRef,
) -> Result<ExternalTableSpec, ProtectError> {
    let columns = table_columns(app, t).await?;
    let partition = choose_partition(app, t, &columns).map_err(|reason| unexpected(t, reason))?;
    let names = object_names(&app.settings.protect.object_prefix, &t.table)
        .map_err(|e| unexpected(t, format!("cannot name its backup objects: {e}")))?;
    Ok(external_table_spec(app, t, &names, columns, partition))
}

fn unprotected(state: &mut TableState, reason: String) -> Ensured {
    super::log_unprotected(&state.database, &state.table, &reason);
    state.protection = Protection::Unprotected { reason };
    Ensured {
        changes: Vec::new(),
        export: None,
    }
}

async fn table_columns(
    app: &App,
    t: &TableRef,
) -> Result<Vec<(ColumnName, KustoType)>, ProtectError> {
    let step = Step::table(t, "read the table schema");
    let tables = step
        .mgmt(&app.kusto, &command::show_table_schema_as_json(&t.table))
        .await?;
    let row = tables
        .first()
        .and_then(|tb| tb.rows().next())
        .ok_or_else(|| unexpected(t, "the table schema came back empty"))?;
    let schema: serde_json::Value =
        serde_json::from_str(row.str("Schema").map_err(|e| step.error(e))?)
            .map_err(|e| unexpected(t, format!("the table schema is not JSON: {e}")))?;
    let mut columns = Vec::new();
    for col in schema["OrderedColumns"].as_array().into_iter().flatten() {
        let name = col["Name"].as_str().unwrap_or_default();
        let ty = col["CslType"].as_str().unwrap_or_default();
        let name = ColumnName::new(name).map_err(|e| unexpected(t, e.to_string()))?;
        let ty = KustoType::parse(ty).ok_or_else(|| {
            unexpected(
                t,
                format!("column {name} has a type adx-backup does not know: {ty}"),
            )
        })?;
        columns.push((name, ty));
    }
    if columns.is_empty() {
        return Err(unexpected(t, "the table has no columns"));
    }
    Ok(columns)
}

fn unexpected(t: &TableRef, message: impl Into<String>) -> ProtectError {
    ProtectError::Unexpected {
        database: t.database.clone(),
        table: t.table.clone(),
        message: message.into(),
    }
}

pub(crate) async fn ingestion_time_enabled(app: &App, t: &TableRef) -> Result<bool, ProtectError> {
    let step = Step::table(t, "read the IngestionTime policy");
    let tables = step
        .mgmt(
            &app.kusto,
            &command::show_table_ingestiontime_policy(&t.table),
        )
        .await?;
    let Some(row) = tables.first().and_then(|tb| tb.rows().next()) else {
        return Ok(false);
    };
    let policy = row.opt_str("Policy").map_err(|e| step.error(e))?;
    policy_enabled(policy).map_err(|e| {
        unexpected(
            t,
            format!("its IngestionTime policy is not the JSON Kusto documents ({e}); check `.show table policy ingestiontime`"),
        )
    })
}

/// No policy (null or empty) is a disabled one; a policy that does not parse is an error,
/// not a silent "disabled" that would make protect alter the table.
fn policy_enabled(policy: Option<&str>) -> Result<bool, serde_json::Error> {
    match policy.map(str::trim).filter(|p| !p.is_empty()) {
        None => Ok(false),
        Some(text) => {
            let parsed: serde_json::Value = serde_json::from_str(text)?;
            Ok(parsed["IsEnabled"].as_bool().unwrap_or(false))
        }
    }
}

/// The override if set (it must name a datetime column), else the first datetime column,
/// else None: such a table is still protected, all its files under `00010101`.
fn choose_partition(
    app: &App,
    t: &TableRef,
    columns: &[(ColumnName, KustoType)],
) -> Result<Option<ColumnName>, String> {
    let key = format!("{}/{}", t.database, t.table);
    match app.settings.protect.partition_columns.get(&key) {
        Some(wanted) => match columns.iter().find(|(c, _)| c == wanted) {
            Some((c, KustoType::DateTime)) => Ok(Some(c.clone())),
            Some((c, ty)) => Err(format!(
                "partition column override {c} is of type {}, not datetime; fix AdxBackup__PartitionColumns",
                ty.as_str()
            )),
            None => Err(format!(
                "partition column override {wanted} is not a column of the table; fix AdxBackup__PartitionColumns"
            )),
        },
        None => Ok(columns
            .iter()
            .find(|(_, ty)| *ty == KustoType::DateTime)
            .map(|(c, _)| c.clone())),
    }
}

/// `<prefix><table>`, cut to Kusto's 1024 characters with a hash of the full name when too
/// long, so two tables never share an object.
pub(super) fn object_names(prefix: &str, table: &TableName) -> Result<ObjectNames, NameError> {
    let full = format!("{prefix}{table}");
    let name = if full.chars().count() <= 1024 {
        full
    } else {
        let hash = hex(&Sha256::digest(table.as_str().as_bytes()))[..12].to_owned();
        let keep: String = full.chars().take(1024 - hash.len() - 1).collect();
        format!("{keep}_{hash}")
    };
    Ok(ObjectNames {
        external: TableName::new(name.clone())?,
        export: ExportName::new(name)?,
    })
}

fn external_table_spec(
    app: &App,
    t: &TableRef,
    names: &ObjectNames,
    columns: Vec<(ColumnName, KustoType)>,
    partition: Option<ColumnName>,
) -> ExternalTableSpec {
    let s = &app.settings;
    let url = app.layout.table_data_url(
        &s.protect.cluster_storage_uri,
        &s.storage.container,
        &t.database,
        &t.table,
        partition.is_some(),
    );
    ExternalTableSpec {
        name: names.external.clone(),
        columns,
        partition,
        storage_uri: format!("{url};{}", s.protect.cluster_storage_auth),
        folder: "adx-backup".to_owned(),
        file_extension: ".parquet".to_owned(),
        doc_string: String::new(),
        name_prefix: None,
    }
}

/// What the fingerprint covers, serialized as JSON with fields in this order: a stable text
/// that no change to a type's `Debug` output can alter.
#[derive(Serialize)]
struct FingerprintInput<'a> {
    columns: Vec<(&'a str, &'a str)>,
    partition: Option<&'a str>,
    storage_uri: &'a str,
}

fn fingerprint(spec: &ExternalTableSpec) -> String {
    let input = FingerprintInput {
        columns: spec
            .columns
            .iter()
            .map(|(c, ty)| (c.as_str(), ty.as_str()))
            .collect(),
        partition: spec.partition.as_ref().map(ColumnName::as_str),
        storage_uri: &spec.storage_uri,
    };
    // Serializing strings and tuples cannot fail; an empty text would only cost one alter.
    let text = serde_json::to_vec(&input).unwrap_or_default();
    hex(&Sha256::digest(&text))[..16].to_owned()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The DocString of our external table, if it exists.
async fn external_table_doc(
    app: &App,
    t: &TableRef,
    name: &TableName,
) -> Result<Option<String>, ProtectError> {
    let step = Step::table(t, "list external tables");
    let tables = step
        .mgmt(&app.kusto, &command::find_external_table(name))
        .await?;
    for row in tables.first().into_iter().flat_map(|tb| tb.rows()) {
        if row.str("TableName").map_err(|e| step.error(e))? == name.as_str() {
            let doc = row.opt_str("DocString").map_err(|e| step.error(e))?;
            return Ok(Some(doc.unwrap_or_default().to_owned()));
        }
    }
    Ok(None)
}

async fn ensure_export(
    app: &App,
    t: &TableRef,
    names: &ObjectNames,
    changes: &mut Vec<String>,
) -> Result<ContinuousExportRow, ProtectError> {
    let read = Step::table(t, "read the continuous export");
    let current = read
        .mgmt(&app.kusto, &command::find_continuous_export(&names.export))
        .await?;
    let existing = ContinuousExportRow::find(&current, &names.export).map_err(|e| read.error(e))?;
    let interval = app.settings.protect.export_interval;
    if let Some(row) = existing.filter(|r| export_matches(r, names, &t.table, interval)) {
        return Ok(row);
    }
    let spec = ContinuousExportSpec {
        name: names.export.clone(),
        table: t.table.clone(),
        external_table: names.external.clone(),
        interval,
        forced_latency: None,
        size_limit: None,
    };
    let create = Step::table(t, "create the continuous export");
    let created = create
        .mgmt(
            &app.kusto,
            &command::create_or_alter_continuous_export(&spec),
        )
        .await?;
    changes.push(format!(
        "created or updated continuous export {}",
        names.export
    ));
    let listed = ContinuousExportRow::find(&created, &names.export).map_err(|e| read.error(e))?;
    listed.ok_or_else(|| {
        unexpected(
            t,
            format!(
                "continuous export {} was not listed after it was created",
                names.export
            ),
        )
    })
}

/// Whether an existing export is the one `ensure` would create: into our external table,
/// of the whole table, at the configured interval.
pub(super) fn export_matches(
    row: &ContinuousExportRow,
    names: &ObjectNames,
    table: &TableName,
    interval: std::time::Duration,
) -> bool {
    row.external_table == names.external.as_str()
        && query_is_table(&row.query, table)
        && row.interval == Some(interval)
}

/// Whether an export's query is exactly the table, as we create it (`['T']` or `T`).
fn query_is_table(query: &str, table: &TableName) -> bool {
    let q = query.trim();
    let bare = q
        .strip_prefix("['")
        .and_then(|s| s.strip_suffix("']"))
        .or_else(|| q.strip_prefix("[\"").and_then(|s| s.strip_suffix("\"]")))
        .unwrap_or(q);
    bare == table.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_stay_within_kusto_limits_and_distinct() {
        let a = TableName::new("a".repeat(1024)).unwrap();
        let b = TableName::new(format!("{}b", "a".repeat(1023))).unwrap();
        let na = object_names("adxbk_", &a).unwrap();
        let nb = object_names("adxbk_", &b).unwrap();
        assert!(na.external.as_str().chars().count() <= 1024);
        assert_ne!(na.external, nb.external);
        assert_eq!(
            object_names("adxbk_", &TableName::new("T").unwrap())
                .unwrap()
                .export
                .as_str(),
            "adxbk_T"
        );
    }

    #[test]
    fn export_query_match() {
        let t = TableName::new("My Table").unwrap();
        assert!(query_is_table("['My Table']", &t));
        assert!(query_is_table(" ['My Table'] ", &t));
        assert!(!query_is_table("['My Table'] | where x > 1", &t));
    }

    #[test]
    fn fingerprint_is_pinned() {
        let spec = ExternalTableSpec {
            name: TableName::new("adxbk_Events").unwrap(),
            columns: vec![
                (ColumnName::new("Timestamp").unwrap(), KustoType::DateTime),
                (ColumnName::new("Id").unwrap(), KustoType::Long),
            ],
            partition: Some(ColumnName::new("Timestamp").unwrap()),
            storage_uri: "https://acct.blob.core.windows.net/backup/data/Sales/Events;managed_identity=system".into(),
            folder: "adx-backup".into(),
            file_extension: ".parquet".into(),
            doc_string: String::new(),
            name_prefix: None,
        };
        // The first 16 hex digits of the sha256 of this JSON text, computed outside this code:
        // {"columns":[["Timestamp","datetime"],["Id","long"]],"partition":"Timestamp","storage_uri":"https://acct.blob.core.windows.net/backup/data/Sales/Events;managed_identity=system"}
        // computed outside this code; a change here re-alters every external table on upgrade.
        assert_eq!(fingerprint(&spec), "2aefd526d59d0b8c");
        let unpartitioned = ExternalTableSpec {
            partition: None,
            ..spec.clone()
        };
        assert_ne!(fingerprint(&unpartitioned), fingerprint(&spec));
    }

    #[test]
    fn policy_json() {
        assert!(!policy_enabled(None).unwrap());
        assert!(!policy_enabled(Some("")).unwrap());
        assert!(!policy_enabled(Some("null")).unwrap());
        assert!(policy_enabled(Some(r#"{"IsEnabled":true}"#)).unwrap());
        assert!(!policy_enabled(Some(r#"{"IsEnabled":false}"#)).unwrap());
        assert!(policy_enabled(Some("{not json")).is_err());
    }
}
