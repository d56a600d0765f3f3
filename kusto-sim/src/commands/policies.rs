//! Table policies other than IngestionTime: merge, retention, extent-tags retention,
//! partitioning, restricted view access, caching and update
//! (`.show|.alter|.alter-merge|.delete table T policy`).

use serde_json::{Value as Json, json};

use crate::backend::Backend;
use crate::error::SimError;
use crate::parse::command::{PolicyChange, PolicyKind};
use crate::state::policy::{self, Retention};
use crate::state::update;
use crate::state::{Database, Table};
use crate::table::ResultTable;
use crate::value::Value;
use crate::value::temporal::format_timespan;

const POLICY: &str = "(PolicyName: string, EntityName: string, Policy: string, ChildEntities: string, EntityType: string)";

pub fn show(
    sim: &Backend,
    db: &str,
    table: &str,
    kind: PolicyKind,
) -> Result<ResultTable, SimError> {
    let cluster = sim.cluster();
    let database = cluster.database(db)?;
    Ok(policy_table(database, database.table(table)?, kind))
}

pub fn alter(
    sim: &Backend,
    db: &str,
    table: &str,
    change: PolicyChange,
) -> Result<ResultTable, SimError> {
    let mut cluster = sim.cluster();
    let database = cluster.database_mut(db)?;
    let rules = match &change {
        PolicyChange::Json {
            kind: PolicyKind::Update,
            merge: false,
            policy: text,
        } => Some(update_rules(database, table, text)?),
        _ => None,
    };
    let policies = &mut database.table_mut(table)?.policies;
    if let (Some(rules), PolicyChange::Json { policy: text, .. }) = (rules, &change) {
        policies.update_json = Some(serde_json::from_str(text).unwrap_or(Json::Null));
        policies.update = rules;
        return Ok(policy_table(
            database,
            database.table(table)?,
            PolicyKind::Update,
        ));
    }
    let kind = match change {
        PolicyChange::Caching { hot } => {
            policies.caching_hot = Some(hot);
            PolicyKind::Caching
        }
        PolicyChange::RowLevelSecurity { enabled, query } => {
            policies.row_level_security = Some((enabled, query));
            PolicyKind::RowLevelSecurity
        }
        PolicyChange::RestrictedViewAccess(enabled) => {
            policies.restricted_view_access = enabled;
            PolicyKind::RestrictedViewAccess
        }
        PolicyChange::Retention {
            soft_delete,
            recoverability,
        } => {
            let mut r = policies.retention.unwrap_or(Retention {
                soft_delete: None,
                recoverability: true,
            });
            if soft_delete.is_some() {
                r.soft_delete = soft_delete;
            }
            if let Some(word) = recoverability {
                r.recoverability = policy::recoverability(&word)?;
            }
            policies.retention = Some(r);
            PolicyKind::Retention
        }
        PolicyChange::Json {
            kind,
            merge,
            policy: text,
        } => {
            set_json(policies, kind, merge, &text)?;
            kind
        }
    };
    Ok(policy_table(database, database.table(table)?, kind))
}

fn set_json(
    policies: &mut policy::TablePolicies,
    kind: PolicyKind,
    merge: bool,
    text: &str,
) -> Result<(), SimError> {
    match kind {
        PolicyKind::Merge => {
            let changes = policy::parse_object("merge", text)?;
            let base = if merge { policies.merge.as_ref() } else { None };
            policies.merge = Some(policy::merged(base, changes));
        }
        PolicyKind::Retention => {
            let changes = policy::parse_object("retention", text)?;
            let base = if merge { policies.retention } else { None };
            policies.retention = Some(Retention::from_json(&changes, base)?);
        }
        PolicyKind::ExtentTagsRetention => {
            policies.extent_tags_retention = Some(policy::parse_tag_retention(text)?);
        }
        PolicyKind::Partitioning => {
            let changes = policy::parse_object("partitioning", text)?;
            let base = if merge {
                policies.partitioning.as_ref()
            } else {
                None
            };
            policies.partitioning = Some(policy::merged(base, changes));
        }
        PolicyKind::RestrictedViewAccess | PolicyKind::Caching | PolicyKind::RowLevelSecurity => {
            return Err(SimError::semantic(
                "The restricted_view_access policy is set with true or false, the caching policy with hot = <timespan>, the row_level_security policy with enable|disable \"<query>\"",
            ));
        }
        PolicyKind::Update => {
            return Err(SimError::semantic(
                "The update policy is set with .alter table T policy update, not .alter-merge",
            ));
        }
    }
    Ok(())
}

/// Kusto checks an update policy when it is set: every source table exists and every
/// query's output has the table's schema.
fn update_rules(
    database: &Database,
    table: &str,
    text: &str,
) -> Result<Vec<update::UpdateRule>, SimError> {
    let target = database.table(table)?;
    let rules = update::parse_rules(text)?;
    for rule in &rules {
        let source = database.table(&rule.source)?;
        update::check_schema(rule, &source.columns, table, &target.columns)?;
    }
    Ok(rules)
}

/// Deleting a policy the table doesn't have is fine, as in Kusto.
pub fn delete(
    sim: &Backend,
    db: &str,
    table: &str,
    kind: PolicyKind,
) -> Result<ResultTable, SimError> {
    let mut cluster = sim.cluster();
    let database = cluster.database_mut(db)?;
    let policies = &mut database.table_mut(table)?.policies;
    match kind {
        PolicyKind::Merge => policies.merge = None,
        PolicyKind::Retention => policies.retention = None,
        PolicyKind::ExtentTagsRetention => policies.extent_tags_retention = None,
        PolicyKind::Partitioning => policies.partitioning = None,
        PolicyKind::RestrictedViewAccess => policies.restricted_view_access = false,
        PolicyKind::Caching => policies.caching_hot = None,
        PolicyKind::RowLevelSecurity => policies.row_level_security = None,
        PolicyKind::Update => {
            policies.update.clear();
            policies.update_json = None;
        }
    }
    Ok(policy_table(database, database.table(table)?, kind))
}

fn policy_table(db: &Database, t: &Table, kind: PolicyKind) -> ResultTable {
    let p = &t.policies;
    let (name, policy): (&str, Json) = match kind {
        PolicyKind::Merge => ("ExtentsMergePolicy", p.merge.clone().unwrap_or(Json::Null)),
        PolicyKind::Retention => (
            "RetentionPolicy",
            p.retention.map_or(Json::Null, Retention::to_json),
        ),
        PolicyKind::ExtentTagsRetention => (
            "ExtentTagsRetentionPolicy",
            p.extent_tags_retention.clone().unwrap_or(Json::Null),
        ),
        PolicyKind::Partitioning => (
            "PartitioningPolicy",
            p.partitioning.clone().unwrap_or(Json::Null),
        ),
        PolicyKind::RestrictedViewAccess => (
            "RestrictedViewAccessPolicy",
            json!(p.restricted_view_access),
        ),
        PolicyKind::Caching => (
            "CachingPolicy",
            p.caching_hot.map_or(Json::Null, |hot| {
                json!({"DataHotSpan": format_timespan(hot), "IndexHotSpan": format_timespan(hot)})
            }),
        ),
        PolicyKind::Update => ("UpdatePolicy", p.update_json.clone().unwrap_or(Json::Null)),
        PolicyKind::RowLevelSecurity => (
            "RowLevelSecurityPolicy",
            p.row_level_security
                .as_ref()
                .map_or(Json::Null, |(on, q)| json!({"IsEnabled": on, "Query": q})),
        ),
    };
    let mut out = ResultTable::with_schema(POLICY);
    out.push(vec![
        Value::String(name.into()),
        Value::String(format!("[{}].[{}]", db.name, t.name)),
        Value::String(policy.to_string()),
        Value::String(String::new()),
        Value::String("Table".into()),
    ]);
    out
}
