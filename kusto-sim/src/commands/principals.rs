//! Database principals (`.show database D principals`, `.show database D principal roles`,
//! `.add database D <role> (...)`,
//! <https://learn.microsoft.com/en-us/kusto/management/manage-database-security-roles>),
//! table principals (`.show table T principals`, `.add table T <role> (...)`,
//! <https://learn.microsoft.com/en-us/kusto/management/manage-table-security-roles>) and
//! the cluster's managed-identity policy (`.show|.alter|.alter-merge cluster policy
//! managed_identity`,
//! <https://learn.microsoft.com/en-us/kusto/management/alter-merge-cluster-managed-identity-policy-command>).

use serde_json::Value as Json;

use crate::backend::Backend;
use crate::error::SimError;
use crate::roles::{DbRole, TableRole};
use crate::table::ResultTable;
use crate::value::Value;

const PRINCIPALS: &str = "(Role: string, PrincipalType: string, PrincipalDisplayName: string, PrincipalObjectId: string, PrincipalFQN: string, Notes: string)";
const POLICY: &str = "(PolicyName: string, EntityName: string, Policy: string, ChildEntities: string, EntityType: string)";

/// Every principal of `db`, or (`own`) only the caller's.
pub fn show(sim: &Backend, db: &str, own: bool) -> Result<ResultTable, SimError> {
    let cluster = sim.cluster();
    let database = cluster.database(db)?;
    let caller = cluster.principals.caller.clone().unwrap_or_default();
    let mut out = ResultTable::with_schema(PRINCIPALS);
    if own && cluster.principals.caller.is_none() {
        // Roles are off: the caller may do anything, as the database's admin.
        out.push(vec![
            Value::String(format!("Database {} Admin", database.name)),
            Value::String("AAD Application".into()),
            Value::String("kusto-sim caller".into()),
            Value::String(String::new()),
            Value::String("aadapp=kusto-sim".into()),
            Value::String("roles are not checked".into()),
        ]);
        return Ok(out);
    }
    for (role, fqn, notes) in cluster
        .principals
        .databases
        .get(&database.name)
        .into_iter()
        .flatten()
    {
        if own && !fqn.eq_ignore_ascii_case(&caller) {
            continue;
        }
        out.push(principal_row(
            format!("Database {} {}", database.name, role.title()),
            fqn,
            notes,
        ));
    }
    Ok(out)
}

/// `AAD Application` for an `aadapp=` FQN, `AAD Group` for `aadgroup=`, else `AAD User`.
fn principal_type(fqn: &str) -> &'static str {
    let kind = fqn
        .split('=')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match kind.as_str() {
        "aadapp" => "AAD Application",
        "aadgroup" => "AAD Group",
        "msauser" => "MSA User",
        _ => "AAD User",
    }
}

/// One row of `.show database|table X principals`.
fn principal_row(role: String, fqn: &str, notes: &str) -> Vec<Value> {
    vec![
        Value::String(role),
        Value::String(principal_type(fqn).into()),
        Value::String(fqn.to_owned()),
        Value::String(String::new()),
        Value::String(fqn.to_owned()),
        Value::String(notes.to_owned()),
    ]
}

/// Kusto resolves each principal by its kind (referencing-security-principals); kusto-sim,
/// which has no directory, refuses at least a text that names no kind it knows.
fn check_kinds(principals: &[String]) -> Result<(), SimError> {
    const KINDS: [&str; 4] = ["aaduser", "aadgroup", "aadapp", "msauser"];
    for fqn in principals {
        let (kind, id) = fqn.split_once('=').unwrap_or_default();
        if !KINDS.iter().any(|k| k.eq_ignore_ascii_case(kind)) || id.is_empty() {
            return Err(SimError::semantic(format!(
                "Principal '{fqn}' is not aaduser=, aadgroup=, aadapp= or msauser= followed by an identity"
            )));
        }
    }
    Ok(())
}

pub fn add(
    sim: &Backend,
    db: &str,
    role: &str,
    principals: Vec<String>,
    notes: &str,
    skip_results: bool,
) -> Result<ResultTable, SimError> {
    let role = DbRole::from_plural(role).ok_or_else(|| {
        SimError::semantic(format!(
            "'{role}' is not a database role: admins, users, viewers, unrestrictedviewers, ingestors, monitors"
        ))
    })?;
    check_kinds(&principals)?;
    {
        let mut cluster = sim.cluster();
        let name = cluster.database(db)?.name.clone();
        // "The principal must also have admins, viewers or users permissions"
        // (manage-database-security-roles): every one, before any is added.
        if role == DbRole::UnrestrictedViewer
            && let Some(fqn) = principals
                .iter()
                .find(|fqn| !cluster.principals.holds_any(&name, fqn, &[DbRole::Viewer]))
        {
            return Err(SimError::semantic(format!(
                "Principal '{fqn}' must be a viewer, user or admin of database '{name}' to be an unrestricted viewer"
            )));
        }
        let entries = cluster.principals.databases.entry(name).or_default();
        for fqn in principals {
            if !entries
                .iter()
                .any(|(r, f, _)| *r == role && f.eq_ignore_ascii_case(&fqn))
            {
                entries.push((role, fqn, notes.to_owned()));
            }
        }
    }
    if skip_results {
        return Ok(ResultTable::with_schema(PRINCIPALS));
    }
    show(sim, db, false)
}

/// Every principal of table `table`.
pub fn show_table(sim: &Backend, db: &str, table: &str) -> Result<ResultTable, SimError> {
    let cluster = sim.cluster();
    let t = cluster.database(db)?.table(table)?;
    let mut out = ResultTable::with_schema(PRINCIPALS);
    for (role, fqn, notes) in &t.principals {
        out.push(principal_row(
            format!("Table {} {}", t.name, role.title()),
            fqn,
            notes,
        ));
    }
    Ok(out)
}

/// `.add table T <role> (...)`: each principal needs its database prerequisite
/// ([`TableRole::prerequisites`]); one that lacks it fails the command, nothing added.
pub fn add_table(
    sim: &Backend,
    db: &str,
    table: &str,
    role: &str,
    principals: Vec<String>,
    notes: &str,
    skip_results: bool,
) -> Result<ResultTable, SimError> {
    let role = TableRole::from_plural(role).ok_or_else(|| {
        SimError::semantic(format!("'{role}' is not a table role: admins, ingestors"))
    })?;
    check_kinds(&principals)?;
    {
        let mut cluster = sim.cluster();
        let db_name = cluster.database(db)?.name.clone();
        cluster.database(db)?.table(table)?;
        if let Some(fqn) = principals.iter().find(|fqn| {
            !cluster
                .principals
                .holds_any(&db_name, fqn, role.prerequisites())
        }) {
            return Err(SimError::semantic(format!(
                "Principal '{fqn}' has no access to database '{db_name}' that allows it to be a table {}: add it to the database first",
                role.title().to_ascii_lowercase()
            )));
        }
        let t = cluster.database_mut(db)?.table_mut(table)?;
        for fqn in principals {
            if !t
                .principals
                .iter()
                .any(|(r, f, _)| *r == role && f.eq_ignore_ascii_case(&fqn))
            {
                t.principals.push((role, fqn, notes.to_owned()));
            }
        }
    }
    if skip_results {
        return Ok(ResultTable::with_schema(PRINCIPALS));
    }
    show_table(sim, db, table)
}

pub fn show_identity_policy(sim: &Backend) -> ResultTable {
    let cluster = sim.cluster();
    let mut out = ResultTable::with_schema(POLICY);
    out.push(vec![
        Value::String("ManagedIdentityPolicy".into()),
        Value::String(String::new()),
        Value::String(Json::Array(cluster.managed_identity_policy.clone()).to_string()),
        Value::String(String::new()),
        Value::String("Cluster".into()),
    ]);
    out
}

/// `.alter` replaces the entries; `.alter-merge` replaces those with the same ObjectId and
/// keeps the others.
pub fn alter_identity_policy(
    sim: &Backend,
    merge: bool,
    text: &str,
) -> Result<ResultTable, SimError> {
    // Kusto reads policies with a lenient JSON parser: the docs' own example quotes with
    // `'` (`"[{'ObjectId':'<id>','AllowedUsages':'NativeIngestion'}]"`, alter-merge page).
    let entries: Vec<Json> = serde_json::from_str(text)
        .or_else(|_| serde_json::from_str(&text.replace('\'', "\"")))
        .map_err(|e| {
            SimError::semantic(format!(
                "The managed_identity policy is not a JSON array: {e}"
            ))
        })?;
    for e in &entries {
        if e.get("ObjectId").and_then(Json::as_str).is_none()
            || e.get("AllowedUsages").and_then(Json::as_str).is_none()
        {
            return Err(SimError::semantic(
                "Each managed_identity policy entry needs ObjectId and AllowedUsages",
            ));
        }
    }
    {
        let mut cluster = sim.cluster();
        if merge {
            let id = |e: &Json| e.get("ObjectId").and_then(Json::as_str).map(str::to_owned);
            cluster
                .managed_identity_policy
                .retain(|old| !entries.iter().any(|e| id(e) == id(old)));
            cluster.managed_identity_policy.extend(entries);
        } else {
            cluster.managed_identity_policy = entries;
        }
    }
    Ok(show_identity_policy(sim))
}
