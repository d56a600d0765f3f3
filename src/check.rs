//! check: what adx-backup needs on the cluster and does not have, each finding with the
//! exact command that fixes it. Read-only: it sends only `.show` commands.
//!
//! Per source database: the app's own roles (`.show database D principal roles`; protect
//! needs Database Admin, docs/deploy.md), and per table in scope its IngestionTime policy
//! (continuous export needs it), row-level security and restricted view access (continuous
//! export cannot export such tables,
//! <https://learn.microsoft.com/en-us/kusto/management/data-export/continuous-data-export>).
//! Once per cluster: the managed-identity policy must let the cluster's identity write
//! exports (`ExternalTable`) and read them back on restore (`NativeIngestion`). Reading it
//! needs AllDatabasesMonitor, which the app need not have: refused, it is reported as not
//! verified, not as a finding.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::ids::{DatabaseName, TableName, TableRef};
use crate::kusto::error::KustoError;
use crate::kusto::{Step, StepError, command};
use crate::protect::{self, ProtectError, scope};
use crate::settings::KustoAuth;
use crate::storage::state::Versioned;

/// The usages the cluster's identity needs: continuous export through the external table,
/// and `.ingest` from the backup on restore.
const USAGES: [&str; 2] = ["ExternalTable", "NativeIngestion"];

/// One thing missing, and the command or role assignment that fixes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub database: Option<DatabaseName>,
    pub table: Option<TableName>,
    pub problem: String,
    pub fix: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    pub findings: Vec<Finding>,
    /// What could not be read, and why; not findings.
    pub unverified: Vec<String>,
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "database | table | finding | fix")?;
        for x in &self.findings {
            let name = |n: Option<String>| n.unwrap_or_else(|| "-".to_owned());
            writeln!(
                f,
                "{} | {} | {} | {}",
                name(x.database.as_ref().map(ToString::to_string)),
                name(x.table.as_ref().map(ToString::to_string)),
                x.problem,
                x.fix
            )?;
        }
        for u in &self.unverified {
            writeln!(f, "not verified: {u}")?;
        }
        write!(f, "{} finding(s)", self.findings.len())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("check {0}")]
    Kusto(#[from] StepError),
    #[error("check: {0}")]
    Protect(#[from] ProtectError),
    #[error("check: {what}: {message}")]
    Unexpected { what: String, message: String },
    #[error("check could not {what}: {source}")]
    Storage {
        what: String,
        #[source]
        source: Box<crate::storage::StorageError>,
    },
}

/// Every source database and its tables in scope, and the cluster's managed-identity
/// policy; the report is also kept in `$state/check.json`.
pub async fn check(app: &App) -> Result<CheckReport, CheckError> {
    run(app, true).await
}

/// What protect's pass runs before it changes anything: the app's roles on every source
/// database and the cluster's managed-identity policy (one command per database, one per
/// cluster), without the per-table part.
pub async fn access(app: &App) -> Result<CheckReport, CheckError> {
    run(app, false).await
}

async fn run(app: &App, per_table: bool) -> Result<CheckReport, CheckError> {
    let mut report = CheckReport::default();
    for db in &app.settings.databases {
        if roles(app, db, &mut report).await? && per_table {
            tables(app, db, &mut report).await?;
        }
    }
    if let Some(db) = app.settings.databases.first() {
        identity_policy(app, db, &mut report).await?;
    }
    record(app, &report).await?;
    Ok(report)
}

/// Keeps the report where `status` reads it, when it changed.
async fn record(app: &App, report: &CheckReport) -> Result<(), CheckError> {
    let path = app.layout.check_report();
    let storage = |e| CheckError::Storage {
        what: format!("keep its report in {path}"),
        source: Box::new(e),
    };
    app.ensure_storage().await.map_err(storage)?;
    let mut doc = Versioned::load_or(&app.blobs, &path, CheckReport::default)
        .await
        .map_err(storage)?;
    // Written once even when empty, so status can tell "nothing missing" from "never ran".
    if doc.etag.is_none() || &doc.value != report {
        doc.value = report.clone();
        doc.save(&app.blobs, &path).await.map_err(storage)?;
    }
    Ok(())
}

/// The app's principal as `.add database` takes it.
fn app_principal(app: &App) -> String {
    match &app.settings.kusto.auth {
        KustoAuth::ManagedIdentity {
            client_id: Some(id),
        } => format!("aadapp={id};<tenant id>"),
        _ => "aadapp=<app client id>;<tenant id>".to_owned(),
    }
}

fn is_forbidden(e: &StepError) -> bool {
    matches!(*e.source, KustoError::Forbidden { .. })
}

/// The app's roles on `db`; false when it has none (nothing else there can be read).
async fn roles(app: &App, db: &DatabaseName, r: &mut CheckReport) -> Result<bool, CheckError> {
    let step = Step::database(db, "read the app's roles");
    let fix = command::add_database_principal(db, "admins", &app_principal(app))
        .as_str()
        .to_owned();
    let tables = match step
        .mgmt(&app.kusto, &command::show_database_principal_roles(db))
        .await
    {
        Ok(t) => t,
        Err(e) if is_forbidden(&e) => {
            r.findings.push(Finding {
                database: Some(db.clone()),
                table: None,
                problem: "the app has no role on the database".to_owned(),
                fix,
            });
            return Ok(false);
        }
        Err(e) => return Err(e.into()),
    };
    let mut held = Vec::new();
    for row in tables.first().into_iter().flat_map(|t| t.rows()) {
        held.push(row.str("Role").map_err(|e| step.error(e))?.to_owned());
    }
    // Roles read "Database <db> Admin"; protect creates continuous exports, which only
    // Database Admin may.
    if !held.iter().any(|role| role.ends_with(" Admin")) {
        r.findings.push(Finding {
            database: Some(db.clone()),
            table: None,
            problem: format!(
                "the app is {} but protect needs Database Admin (continuous exports)",
                if held.is_empty() {
                    "nothing".to_owned()
                } else {
                    held.join(", ")
                }
            ),
            fix,
        });
    }
    Ok(true)
}

/// Per table in scope: IngestionTime policy, row-level security, restricted view access.
async fn tables(app: &App, db: &DatabaseName, r: &mut CheckReport) -> Result<(), CheckError> {
    let step = Step::database(db, "list tables");
    let listed = step.mgmt(&app.kusto, &command::show_tables()).await?;
    let mut names = Vec::new();
    for row in listed.first().into_iter().flat_map(|t| t.rows()) {
        let name = row.str("TableName").map_err(|e| step.error(e))?;
        let name = TableName::new(name).map_err(|e| CheckError::Unexpected {
            what: format!("database {db} lists table {name:?}"),
            message: e.to_string(),
        })?;
        if scope::in_scope(&app.settings.protect, db, &name) {
            names.push(name);
        }
    }
    for table in names {
        let t = TableRef {
            database: db.clone(),
            table,
        };
        let mut found = |problem: &str, fix: String| {
            r.findings.push(Finding {
                database: Some(db.clone()),
                table: Some(t.table.clone()),
                problem: problem.to_owned(),
                fix,
            })
        };
        if !app.settings.protect.enable_ingestion_time_policy
            && !protect::ingestion_time_enabled(app, &t).await?
        {
            found(
                "IngestionTime policy off: continuous export needs it",
                command::alter_table_ingestiontime_policy(&t.table, true)
                    .as_str()
                    .to_owned(),
            );
        }
        if policy_json(
            app,
            &t,
            &command::show_table_row_level_security_policy(&t.table),
        )
        .await?
        .is_some_and(|p| p["IsEnabled"] == serde_json::Value::Bool(true))
        {
            found(
                "row-level security: continuous export cannot export the table",
                format!(
                    "{} (or exclude the table: AdxBackup__ExcludeTables)",
                    command::delete_table_row_level_security_policy(&t.table).as_str()
                ),
            );
        }
        if policy_json(
            app,
            &t,
            &command::show_table_restricted_view_access_policy(&t.table),
        )
        .await?
        .is_some_and(|p| p == serde_json::Value::Bool(true))
        {
            found(
                "restricted view access: continuous export cannot export the table",
                format!(
                    "{} (or exclude the table: AdxBackup__ExcludeTables)",
                    command::alter_table_restricted_view_access(&t.table, false).as_str()
                ),
            );
        }
    }
    Ok(())
}

/// The `Policy` column of a `.show table T policy ...`, as JSON (None: no policy).
async fn policy_json(
    app: &App,
    t: &TableRef,
    cmd: &command::Command,
) -> Result<Option<serde_json::Value>, CheckError> {
    let step = Step::table(t, "read a table policy");
    let tables = step.mgmt(&app.kusto, cmd).await?;
    let Some(row) = tables.first().and_then(|tb| tb.rows().next()) else {
        return Ok(None);
    };
    let Some(text) = row.opt_str("Policy").map_err(|e| step.error(e))? else {
        return Ok(None);
    };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| CheckError::Unexpected {
            what: format!("{t}'s policy"),
            message: e.to_string(),
        })?;
    Ok((!value.is_null()).then_some(value))
}

/// The cluster identity's object id, from `AdxBackup__ClusterStorageAuth`
/// (`managed_identity=system` or `managed_identity=<object id>`); None for other auth.
fn cluster_identity(app: &App) -> Option<&str> {
    app.settings
        .protect
        .cluster_storage_auth
        .trim_start_matches(';')
        .strip_prefix("managed_identity=")
}

async fn identity_policy(
    app: &App,
    db: &DatabaseName,
    r: &mut CheckReport,
) -> Result<(), CheckError> {
    let Some(identity) = cluster_identity(app) else {
        return Ok(());
    };
    let step = Step::database(db, "read the cluster's managed-identity policy");
    let tables = match step
        .mgmt(&app.kusto, &command::show_cluster_managed_identity_policy())
        .await
    {
        Ok(t) => t,
        Err(e) if is_forbidden(&e) => {
            r.unverified.push(format!(
                "the cluster's managed-identity policy (reading it needs AllDatabasesMonitor); an AllDatabasesAdmin can check it with `{}`",
                command::show_cluster_managed_identity_policy().as_str()
            ));
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let mut entries = Vec::new();
    for row in tables.first().into_iter().flat_map(|t| t.rows()) {
        let text = row.opt_str("Policy").map_err(|e| step.error(e))?;
        if let Some(text) = text {
            let v: serde_json::Value =
                serde_json::from_str(text).map_err(|e| CheckError::Unexpected {
                    what: "the cluster's managed-identity policy".to_owned(),
                    message: e.to_string(),
                })?;
            entries.extend(v.as_array().cloned().unwrap_or_default());
        }
    }
    let usages: Vec<String> = entries
        .iter()
        .filter(|e| {
            e["ObjectId"]
                .as_str()
                .is_some_and(|id| id.eq_ignore_ascii_case(identity))
        })
        .flat_map(|e| {
            e["AllowedUsages"]
                .as_str()
                .unwrap_or_default()
                .split(',')
                .map(|u| u.trim().to_owned())
                .collect::<Vec<_>>()
        })
        .filter(|u| !u.is_empty())
        .collect();
    let missing: Vec<&str> = USAGES
        .into_iter()
        .filter(|need| !usages.iter().any(|u| u.eq_ignore_ascii_case(need)))
        .collect();
    if !missing.is_empty() {
        let mut all = usages.clone();
        all.extend(missing.iter().map(|m| (*m).to_owned()));
        r.findings.push(Finding {
            database: None,
            table: None,
            problem: format!(
                "the cluster's managed-identity policy does not allow {} for identity {identity}",
                missing.join(", ")
            ),
            fix: command::alter_merge_cluster_managed_identity_policy(identity, &all.join(", "))
                .as_str()
                .to_owned(),
        });
    }
    Ok(())
}
