//! What continuous export cannot serve, and what to do about each: protect reports these as
//! not protected, with the reason and the fix, instead of failing or skipping them
//! (<https://learn.microsoft.com/kusto/management/data-export/continuous-data-export#limitations>):
//!
//! - a table with a **row-level security** policy: an export of it needs an external table
//!   with impersonation authentication and a managed identity on the export
//!   (<https://learn.microsoft.com/kusto/management/data-export/continuous-export-with-managed-identity>),
//!   which adx-backup does not set up (its external tables write with the cluster's managed
//!   identity, and an impersonating table would need every caller's own storage rights);
//! - a table with a **restricted view access** policy: continuous export "can't be configured"
//!   on it;
//! - a **materialized view**: continuous export "isn't designed to work over materialized
//!   views", which are updated while exports only append; a view is derived data, rebuilt from
//!   its source table;
//! - a **follower database**: read-only, and continuous export "can't be created on follower
//!   databases"; `.show databases` reports it as `DatabaseAccessMode` `ReadOnlyFollowing`
//!   (<https://learn.microsoft.com/kusto/management/show-databases>).
//!
//! `check` reports the same table findings, from the same functions.

use crate::app::App;
use crate::ids::{DatabaseName, TableName, TableRef};
use crate::kusto::{Step, command};

use super::ProtectError;

/// Why continuous export cannot serve a table, and the fix, as `status` and `check` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unservable {
    pub problem: String,
    pub fix: String,
}

impl Unservable {
    /// One line: the problem, then what to do.
    pub fn reason(&self) -> String {
        format!("{}; {}", self.problem, self.fix)
    }
}

const EXCLUDE: &str = "or exclude it (AdxBackup__ExcludeTables) and back it up another way";

/// The table's row-level security and restricted view access policies (two `.show`
/// commands); None when continuous export can serve it.
pub async fn table(app: &App, t: &TableRef) -> Result<Option<Unservable>, ProtectError> {
    let rls = policy_json(
        app,
        t,
        &command::show_table_row_level_security_policy(&t.table),
    )
    .await?;
    if rls.is_some_and(|p| p["IsEnabled"] == serde_json::Value::Bool(true)) {
        return Ok(Some(Unservable {
            problem: "row-level security: continuous export of such a table needs an external table with impersonation authentication and a managed identity on the export, which adx-backup does not set up".to_owned(),
            fix: format!(
                "disable the policy (`{}`) {EXCLUDE}",
                command::delete_table_row_level_security_policy(&t.table).as_str()
            ),
        }));
    }
    let restricted = policy_json(
        app,
        t,
        &command::show_table_restricted_view_access_policy(&t.table),
    )
    .await?;
    if restricted.is_some_and(|p| p == serde_json::Value::Bool(true)) {
        return Ok(Some(Unservable {
            problem:
                "restricted view access: continuous export can't be configured on such a table"
                    .to_owned(),
            fix: format!(
                "turn the policy off (`{}`) {EXCLUDE}",
                command::alter_table_restricted_view_access(&t.table, false).as_str()
            ),
        }));
    }
    Ok(None)
}

/// A materialized view over `source`.
pub fn materialized_view(source: &str) -> Unservable {
    Unservable {
        problem: format!(
            "a materialized view (over {source}): continuous export isn't designed to work over materialized views, which are updated while exports only append"
        ),
        fix: format!(
            "nothing to back up: protect its source table {source}; a restore that brings {source} back re-creates the view from the schema snapshot once the rows are in, with `backfill=true`, which rebuilds it from them"
        ),
    }
}

/// Every table of a follower database.
pub fn follower(db: &DatabaseName) -> Unservable {
    Unservable {
        problem: format!(
            "{db} is a follower database (read-only, DatabaseAccessMode ReadOnlyFollowing): continuous export can't be created on a follower"
        ),
        fix: "protect the leader database on its own cluster, and remove this database from AdxBackup__Databases".to_owned(),
    }
}

/// Whether `db` is a follower database, from `.show databases` (None: not listed).
pub async fn is_follower(app: &App, db: &DatabaseName) -> Result<bool, ProtectError> {
    let step = Step::database(db, "read the database's access mode");
    let result = step.mgmt(&app.kusto, &command::show_databases()).await?;
    for row in result.first().into_iter().flat_map(|t| t.rows()) {
        if row.str("DatabaseName").map_err(|e| step.error(e))? == db.as_str() {
            let mode = row
                .opt_str("DatabaseAccessMode")
                .map_err(|e| step.error(e))?;
            return Ok(mode == Some("ReadOnlyFollowing"));
        }
    }
    Ok(false)
}

/// The materialized views of `db` and their source tables.
pub async fn materialized_views(
    app: &App,
    db: &DatabaseName,
) -> Result<Vec<(TableName, String)>, ProtectError> {
    let step = Step::database(db, "list materialized views");
    let result = step
        .mgmt(&app.kusto, &command::show_materialized_views())
        .await?;
    let mut out = Vec::new();
    for row in result.first().into_iter().flat_map(|t| t.rows()) {
        let name = row.str("Name").map_err(|e| step.error(e))?;
        let source = row.str("SourceTable").map_err(|e| step.error(e))?;
        let name = TableName::new(name).map_err(|e| ProtectError::BadName {
            database: db.clone(),
            source: e,
        })?;
        out.push((name, source.to_owned()));
    }
    Ok(out)
}

/// The `Policy` column of a `.show table T policy ...`, as JSON (None: no policy).
async fn policy_json(
    app: &App,
    t: &TableRef,
    cmd: &command::Command,
) -> Result<Option<serde_json::Value>, ProtectError> {
    let step = Step::table(t, "read a table policy");
    let tables = step.mgmt(&app.kusto, cmd).await?;
    let Some(row) = tables.first().and_then(|tb| tb.rows().next()) else {
        return Ok(None);
    };
    let Some(text) = row.opt_str("Policy").map_err(|e| step.error(e))? else {
        return Ok(None);
    };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ProtectError::Unexpected {
            database: t.database.clone(),
            table: t.table.clone(),
            message: format!("its policy is not JSON ({e}); check `{}`", cmd.as_str()),
        })?;
    Ok((!value.is_null()).then_some(value))
}
