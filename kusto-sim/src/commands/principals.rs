//! Database principals (`.show database D principals`, `.show database D principal roles`,
//! `.add database D <role> (...)`,
//! <https://learn.microsoft.com/en-us/kusto/management/manage-database-security-roles>) and
//! the cluster's managed-identity policy (`.show|.alter|.alter-merge cluster policy
//! managed_identity`,
//! <https://learn.microsoft.com/en-us/kusto/management/alter-merge-cluster-managed-identity-policy-command>).

use serde_json::Value as Json;

use crate::backend::Backend;
use crate::error::SimError;
use crate::roles::DbRole;
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
        let kind = if fqn.starts_with("aadapp=") {
            "AAD Application"
        } else {
            "AAD User"
        };
        out.push(vec![
            Value::String(format!("Database {} {}", database.name, role.title())),
            Value::String(kind.into()),
            Value::String(fqn.clone()),
            Value::String(String::new()),
            Value::String(fqn.clone()),
            Value::String(notes.clone()),
        ]);
    }
    Ok(out)
}

pub fn add(
    sim: &Backend,
    db: &str,
    role: &str,
    principals: Vec<String>,
    notes: &str,
) -> Result<ResultTable, SimError> {
    let role = DbRole::from_plural(role).ok_or_else(|| {
        SimError::semantic(format!(
            "'{role}' is not a database role: admins, users, viewers, ingestors, monitors"
        ))
    })?;
    {
        let mut cluster = sim.cluster();
        let name = cluster.database(db)?.name.clone();
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
    show(sim, db, false)
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
