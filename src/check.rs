//! check: what adx-backup needs on the cluster and does not have, each finding with the
//! exact command that fixes it. It changes nothing but its own probes (below), which it
//! removes at once; protect's cheaper pass ([`access`]) sends only `.show` commands.
//!
//! Per source database: the app's own roles (`.show database D principal roles`; protect
//! needs Database Admin, docs/deploy.md), whether it is a follower (read-only), its
//! materialized views (not exportable), and per table in scope its IngestionTime policy
//! (continuous export needs it), row-level security and restricted view access (continuous
//! export cannot export such tables,
//! <https://learn.microsoft.com/en-us/kusto/management/data-export/continuous-data-export>).
//! Once per cluster: the managed-identity policy must let the cluster's identity write
//! exports (`ExternalTable`) and read them back on restore (`NativeIngestion`). Reading it
//! needs AllDatabasesMonitor, which the app need not have: refused, it is reported as not
//! verified, not as a finding.
//!
//! `adx-backup check` also measures what no Kusto command can read: the app's rights on the
//! backup storage (a probe blob and a probe message, [`storage`]), whether the cluster's
//! identity may write there (one row exported through a probe external table), and the
//! source cluster's export capacity against the continuous exports protect runs
//! ([`capacity`]).
//!
//! Before a restore changes anything, [`restore_target`] checks its target: the app's role
//! there, whether the target's retention would refuse the oldest days, and its free
//! ingestion capacity.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

mod capacity;
mod storage;

use crate::app::App;
use crate::ids::{DatabaseName, Day, TableName, TableRef};
use crate::kusto::command::DatabaseRole;
use crate::kusto::error::KustoError;
use crate::kusto::{CapacityRow, KustoClient, Step, StepError, command};
use crate::protect::{self, ProtectError, scope};
use crate::settings::KustoAuth;
use crate::storage::state::Versioned;

/// The usages the cluster's identity needs: continuous export through the external table
/// (first), and `.ingest` from the backup on restore.
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
    /// The capacity figures read (`.show capacity`), where they are not a finding.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capacity: Vec<CapacityFigure>,
}

/// One resource of `.show capacity` on one cluster, as the check read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapacityFigure {
    /// `source` or `restore target`.
    pub cluster: String,
    #[serde(flatten)]
    pub row: CapacityRow,
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
        for c in &self.capacity {
            writeln!(
                f,
                "capacity of the {}: {} {} at once, {} in use, {} free",
                c.cluster, c.row.resource, c.row.total, c.row.consumed, c.row.remaining
            )?;
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
    // The continuous exports protect runs, and a database where the app may create the
    // cluster probe's external table and read the capacity.
    let mut exports = 0;
    let mut admin_of = None;
    for db in &app.settings.databases {
        let held = roles(app, db, &mut report).await?;
        if held != Held::Nothing && per_table {
            exports += tables(app, db, &mut report).await?;
        }
        if held == Held::Admin && admin_of.is_none() {
            admin_of = Some(db);
        }
    }
    let mut external_tables_allowed = true;
    if let Some(db) = app.settings.databases.first() {
        external_tables_allowed = identity_policy(app, db, &mut report).await?;
    }
    if per_table {
        let blobs_ok = storage::app_rights(app, &mut report).await?;
        match admin_of {
            Some(db) => {
                if !blobs_ok {
                    report.unverified.push(
                        "the cluster identity's write access to the backup container: checked once the app may write and delete blobs there (it removes the probe's file)".to_owned(),
                    );
                } else if external_tables_allowed {
                    storage::cluster_write(app, db, &mut report).await?;
                }
                capacity::source(app, db, exports, &mut report).await?;
            }
            None => report.unverified.push(
                "the cluster identity's write access to the backup container and the source's export capacity: checked once the app is Database Admin on a source database".to_owned(),
            ),
        }
    } else {
        app.ensure_storage()
            .await
            .map_err(|e| CheckError::Storage {
                what: "create the backup container and the task queue".to_owned(),
                source: Box::new(e),
            })?;
    }
    record(app, &mut report).await?;
    Ok(report)
}

/// Keeps the report where `status` reads it, when it changed. Storage that refuses the
/// app (already a finding of the probe) leaves the report printed but not kept.
async fn record(app: &App, report: &mut CheckReport) -> Result<(), CheckError> {
    let path = app.layout.check_report();
    let kept: Result<(), crate::storage::StorageError> = async {
        let mut doc = Versioned::load_or(&app.blobs, &path, CheckReport::default).await?;
        // Written once even when empty, so status can tell "nothing missing" from "never ran".
        if doc.etag.is_none() || doc.value != *report {
            doc.value = report.clone();
            doc.save(&app.blobs, &path).await?;
        }
        Ok(())
    }
    .await;
    match kept {
        Ok(()) => Ok(()),
        Err(e) => match e.refused_rights() {
            Some(answer) => {
                report.unverified.push(format!(
                    "the report is not kept in {path}: storage refused the app ({answer})"
                ));
                Ok(())
            }
            None => Err(CheckError::Storage {
                what: format!("keep its report in {path}"),
                source: Box::new(e),
            }),
        },
    }
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

/// What the app holds on a source database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    /// No role: nothing else there can be read.
    Nothing,
    /// A role below Database Admin.
    Some,
    Admin,
}

/// The app's roles on `db`, with a finding unless it is Database Admin.
async fn roles(app: &App, db: &DatabaseName, r: &mut CheckReport) -> Result<Held, CheckError> {
    let step = Step::database(db, "read the app's roles");
    let fix = command::add_database_principal(db, DatabaseRole::Admins, &app_principal(app))
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
            return Ok(Held::Nothing);
        }
        Err(e) => return Err(e.into()),
    };
    let mut held = Vec::new();
    for row in tables.first().into_iter().flat_map(|t| t.rows()) {
        held.push(row.str("Role").map_err(|e| step.error(e))?.to_owned());
    }
    // Roles read "Database <db> Admin"; protect creates continuous exports, which only
    // Database Admin may.
    if held.iter().any(|role| role.ends_with(" Admin")) {
        return Ok(Held::Admin);
    }
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
    Ok(Held::Some)
}

/// A follower database (nothing in it can be protected), then its materialized views, then
/// per table in scope: IngestionTime policy, row-level security, restricted view access.
/// Returns how many tables protect would give a continuous export (those without a finding).
async fn tables(app: &App, db: &DatabaseName, r: &mut CheckReport) -> Result<usize, CheckError> {
    if protect::servable::is_follower(app, db).await? {
        let why = protect::servable::follower(db);
        r.findings.push(Finding {
            database: Some(db.clone()),
            table: None,
            problem: why.problem,
            fix: why.fix,
        });
        return Ok(0);
    }
    for (view, source) in protect::servable::materialized_views(app, db).await? {
        let why = protect::servable::materialized_view(&source);
        r.findings.push(Finding {
            database: Some(db.clone()),
            table: Some(view),
            problem: why.problem,
            fix: why.fix,
        });
    }
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
    let mut exported = 0;
    for table in names {
        let t = TableRef {
            database: db.clone(),
            table,
        };
        let before = r.findings.len();
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
        if let Some(why) = protect::servable::table(app, &t).await? {
            found(&why.problem, why.fix);
        }
        if r.findings.len() == before {
            exported += 1;
        }
    }
    Ok(exported)
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

/// Reports the usages the cluster identity lacks; false when the policy is known not to
/// allow `ExternalTable` (then the cluster cannot write through an external table at all,
/// and the storage probe would only report the same thing again).
async fn identity_policy(
    app: &App,
    db: &DatabaseName,
    r: &mut CheckReport,
) -> Result<bool, CheckError> {
    let Some(identity) = cluster_identity(app) else {
        return Ok(true);
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
            return Ok(true);
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
    Ok(!missing.contains(&USAGES[0]))
}

/// What a restore is about to write into its target, as the check before it needs it.
pub struct RestoreTarget<'a> {
    pub client: &'a KustoClient,
    pub database: &'a DatabaseName,
    /// The restore creates tables and other objects, not only rows.
    pub schema: bool,
    /// The restore ingests rows.
    pub data: bool,
    pub tables: Vec<RestoredTable>,
}

/// One table the restore writes, under its target name.
pub struct RestoredTable {
    pub table: TableName,
    /// It already exists in the target (its own retention policy then applies, unless the
    /// restore sets one).
    pub exists: bool,
    /// The oldest dated day the restore brings (the catalog's, clamped to the window).
    pub oldest_day: Option<Day>,
    /// The soft-delete period the restore itself sets from the schema snapshot (`Some(None)`:
    /// keep forever); `None` when it sets no retention policy.
    pub sets_soft_delete: Option<Option<Duration>>,
}

/// The check before a restore changes anything in its target: the app's role on the target
/// database, its free ingestion capacity, and per table whether the target's retention
/// would refuse the oldest days.
/// Kusto refuses a file whose creation time (restore sets the day's midnight) its retention
/// already expired (`BadRequest_CreationTimeEarlierThanSoftDeletePeriod`,
/// <https://learn.microsoft.com/en-us/kusto/management/retention-policy>), so those days
/// could not come back. The database's own retention policy is not read (kusto-sim does not
/// model it): a table inheriting a short one fails those files, which the report lists.
pub async fn restore_target(
    t: &RestoreTarget<'_>,
    now: OffsetDateTime,
) -> Result<CheckReport, CheckError> {
    let mut report = CheckReport::default();
    if !target_roles(t, &mut report).await? {
        return Ok(report);
    }
    if t.data {
        capacity::target(t.client, t.database, &mut report).await?;
        for table in &t.tables {
            let Some(oldest) = table.oldest_day else {
                continue;
            };
            let (period, from_snapshot) = match table.sets_soft_delete {
                Some(period) => (period, true),
                None if table.exists => (target_soft_delete(t, &table.table).await?, false),
                None => (None, false),
            };
            if let Some(f) = too_old(t.database, &table.table, oldest, period, from_snapshot, now) {
                report.findings.push(f);
            }
        }
    }
    Ok(report)
}

/// The app's roles on the target (docs/deploy.md): Database Admin to create tables and
/// objects; to ingest only, Database Ingestor plus Table Admin on the tables it writes
/// (counting them, and dropping a failed attempt's extents by tag). Table roles are not in
/// the database's role list, so without Database Admin they are reported as not verified.
async fn target_roles(t: &RestoreTarget<'_>, r: &mut CheckReport) -> Result<bool, CheckError> {
    let step = Step::database(t.database, "read the app's roles on the restore target");
    let grant = |role: DatabaseRole| {
        command::add_database_principal(t.database, role, "aadapp=<app client id>;<tenant id>")
            .as_str()
            .to_owned()
    };
    let finding = |problem: String, fix: String| Finding {
        database: Some(t.database.clone()),
        table: None,
        problem,
        fix,
    };
    let tables = match step
        .mgmt(
            t.client,
            &command::show_database_principal_roles(t.database),
        )
        .await
    {
        Ok(tables) => tables,
        Err(e) if is_forbidden(&e) => {
            r.findings.push(finding(
                "the app has no role on the restore target".to_owned(),
                grant(DatabaseRole::Admins),
            ));
            return Ok(false);
        }
        Err(e) => return Err(e.into()),
    };
    let mut held = Vec::new();
    for row in tables.first().into_iter().flat_map(|t| t.rows()) {
        held.push(row.str("Role").map_err(|e| step.error(e))?.to_owned());
    }
    let has = |role: &str| held.iter().any(|h| h.ends_with(&format!(" {role}")));
    let admin = has("Admin");
    let ingests = admin || has("Ingestor");
    let holds = if held.is_empty() {
        "nothing".to_owned()
    } else {
        held.join(", ")
    };
    if t.schema && !admin {
        r.findings.push(finding(
            format!("the app is {holds} on the restore target but creating its tables, functions and policies needs Database Admin"),
            grant(DatabaseRole::Admins),
        ));
    } else if t.data && !ingests {
        r.findings.push(finding(
            format!("the app is {holds} on the restore target but ingesting the rows needs Database Ingestor (and Table Admin on the tables restored)"),
            grant(DatabaseRole::Ingestors),
        ));
    } else if t.data && !admin {
        r.unverified.push(format!(
            "Table Admin of the app on the tables restored into {} (needed to count them and to drop a failed attempt's extents; table roles are not in the database's role list)",
            t.database
        ));
    }
    Ok(true)
}

/// The target table's own soft-delete period (None: none of its own, or keep forever).
async fn target_soft_delete(
    t: &RestoreTarget<'_>,
    table: &TableName,
) -> Result<Option<Duration>, CheckError> {
    let step = Step::database(t.database, "read the target table's retention policy");
    let tables = step
        .mgmt(t.client, &command::show_table_retention_policy(table))
        .await?;
    let Some(text) = tables
        .first()
        .and_then(|tb| tb.row(0))
        .and_then(|r| r.opt_str("Policy").ok().flatten().map(str::to_owned))
    else {
        return Ok(None);
    };
    let policy: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| CheckError::Unexpected {
            what: format!("the retention policy of {table} in the restore target"),
            message: e.to_string(),
        })?;
    match policy.get("SoftDeletePeriod").and_then(|v| v.as_str()) {
        Some(span) => parse_timespan(span)
            .map(Some)
            .ok_or_else(|| CheckError::Unexpected {
                what: format!("the retention policy of {table} in the restore target"),
                message: format!("SoftDeletePeriod {span:?} is not a timespan"),
            }),
        None => Ok(None),
    }
}

/// A Kusto timespan as policies print it: `[d.]hh:mm:ss[.fffffff]`.
fn parse_timespan(text: &str) -> Option<Duration> {
    let (days, clock) = match text.split_once('.') {
        Some((d, rest)) if !d.contains(':') => (d.parse::<u64>().ok()?, rest),
        _ => (0, text),
    };
    let clock = clock.split('.').next()?;
    let mut parts = clock.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
    Some(Duration::from_secs(((days * 24 + h) * 60 + m) * 60 + s))
}

/// The finding when `oldest`'s midnight is older than `period` before `now`.
fn too_old(
    db: &DatabaseName,
    table: &TableName,
    oldest: Day,
    period: Option<Duration>,
    from_snapshot: bool,
    now: OffsetDateTime,
) -> Option<Finding> {
    let period = period?;
    let created = oldest.date().midnight().assume_utc();
    let cutoff = now - period;
    if created >= cutoff {
        return None;
    }
    let days = period.as_secs() / 86_400;
    // A day of margin: the restore takes time, and the cutoff moves with it.
    let first_kept = (cutoff + time::Duration::days(1)).date();
    let needed = (now - created).whole_days() + 2;
    let longer = command::alter_table_retention_policy(
        table,
        Some(Duration::from_secs(
            u64::try_from(needed).unwrap_or(0) * 86_400,
        )),
        true,
    );
    let (whose, fix) = if from_snapshot {
        (
            "the snapshot's retention policy, which the restore sets",
            format!(
                "restore with \"window\": {{\"from\": \"{first_kept}\", ...}}, or restore \"what\": \"schemaOnly\", run `{}` and restore \"dataOnly\"",
                longer.as_str()
            ),
        )
    } else {
        (
            "the target table's retention policy",
            format!(
                "run `{}` before the restore, or restore with \"window\": {{\"from\": \"{first_kept}\", ...}}",
                longer.as_str()
            ),
        )
    };
    Some(Finding {
        database: Some(db.clone()),
        table: Some(table.clone()),
        problem: format!(
            "the restore brings days from {} on, but {whose} keeps {days} days: Kusto refuses the files of days before {first_kept}",
            oldest.date()
        ),
        fix,
    })
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;

    #[test]
    fn policy_timespans() {
        let day = 86_400;
        assert_eq!(
            parse_timespan("10.00:00:00"),
            Some(Duration::from_secs(10 * day))
        );
        assert_eq!(
            parse_timespan("3650.00:00:00.0000000"),
            Some(Duration::from_secs(3650 * day))
        );
        assert_eq!(parse_timespan("01:30:00"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_timespan("ten days"), None);
    }

    #[test]
    fn a_day_is_too_old_once_its_midnight_leaves_the_soft_delete_period() {
        let (db, t) = (
            DatabaseName::new("DR").unwrap(),
            TableName::new("T").unwrap(),
        );
        let now = datetime!(2026-12-02 12:00 UTC);
        let ten = Some(Duration::from_secs(10 * 86_400));
        let old = |day, period, snapshot| too_old(&db, &t, Day::new(day), period, snapshot, now);
        assert_eq!(old(date!(2026 - 11 - 23), ten, false), None, "inside");
        assert_eq!(
            old(date!(2020 - 01 - 01), None, false),
            None,
            "kept forever"
        );
        let f = old(date!(2026 - 11 - 22), ten, false).expect("its midnight is 10.5 days back");
        assert!(
            f.problem.contains("days before 2026-11-23"),
            "{}",
            f.problem
        );
        assert!(
            f.problem
                .contains("the target table's retention policy keeps 10 days")
        );
        assert!(
            f.fix
                .starts_with("run `.alter table ['T'] policy retention"),
            "{}",
            f.fix
        );
        assert!(
            f.fix.contains(r#""SoftDeletePeriod":"12.00:00:00"#),
            "{}",
            f.fix
        );
        let s = old(date!(2026 - 11 - 22), ten, true).unwrap();
        assert!(
            s.problem.contains("the snapshot's retention policy"),
            "{}",
            s.problem
        );
        assert!(s.fix.contains("\"what\": \"schemaOnly\""), "{}", s.fix);
    }
}
