//! What `adx-backup check` reads about who may do what: the app's own roles, the cluster's
//! managed-identity policy, a table's row-level security and restricted view access; and
//! the commands a finding gives as its fix.

use super::{Command, KqlCode, ident, string_literal};
use crate::ids::{DatabaseName, TableName};

/// `.show database ['Db'] principal roles`: the caller's own roles on the database (Role,
/// e.g. `Database Db Admin`)
/// (<https://learn.microsoft.com/en-us/kusto/management/manage-database-security-roles>).
pub fn show_database_principal_roles(db: &DatabaseName) -> Command {
    Command::mgmt(format!(
        ".show database {} principal roles",
        ident(db.as_str())
    ))
}

/// `.add database ['Db'] <role> ('<principal>') '<notes>'`: a finding's fix, never sent.
pub fn add_database_principal(db: &DatabaseName, role: &str, principal: &str) -> Command {
    Command::mgmt(format!(
        ".add database {} {role} ({}) 'adx-backup'",
        ident(db.as_str()),
        string_literal(principal)
    ))
}

/// `.show cluster policy managed_identity`: one row whose `Policy` is a JSON array of
/// `{ObjectId, AllowedUsages}` (needs AllDatabasesMonitor,
/// <https://learn.microsoft.com/en-us/kusto/management/show-cluster-managed-identity-policy-command>).
pub fn show_cluster_managed_identity_policy() -> Command {
    Command::mgmt(".show cluster policy managed_identity".to_owned())
}

/// `.alter-merge cluster policy managed_identity "[...]"`: a finding's fix, never sent;
/// alter-merge keeps the entries other workloads have.
pub fn alter_merge_cluster_managed_identity_policy(object_id: &str, usages: &str) -> Command {
    let policy = serde_json::json!([{"ObjectId": object_id, "AllowedUsages": usages}]);
    Command::mgmt(format!(
        ".alter-merge cluster policy managed_identity {}",
        string_literal(&policy.to_string())
    ))
}

/// `.show table ['T'] policy row_level_security`
pub fn show_table_row_level_security_policy(table: &TableName) -> Command {
    Command::mgmt(format!(
        ".show table {} policy row_level_security",
        ident(table.as_str())
    ))
}

/// `.show table ['T'] policy restricted_view_access`
pub fn show_table_restricted_view_access_policy(table: &TableName) -> Command {
    Command::mgmt(format!(
        ".show table {} policy restricted_view_access",
        ident(table.as_str())
    ))
}

/// `.delete table ['T'] policy row_level_security`: a finding's fix, never sent.
pub fn delete_table_row_level_security_policy(table: &TableName) -> Command {
    Command::mgmt(format!(
        ".delete table {} policy row_level_security",
        ident(table.as_str())
    ))
}

/// `.alter table ['T'] policy restricted_view_access true|false`: restore sets the source's;
/// `false` is also a check finding's fix.
pub fn alter_table_restricted_view_access(table: &TableName, enabled: bool) -> Command {
    Command::mgmt(format!(
        ".alter table {} policy restricted_view_access {enabled}",
        ident(table.as_str())
    ))
}

/// `.alter table ['T'] policy row_level_security enable|disable '<query>'`
/// (<https://learn.microsoft.com/en-us/kusto/management/alter-table-row-level-security-policy-command>).
/// The query is checked KQL ([`KqlCode`]) sent as an escaped string literal.
pub fn alter_table_row_level_security(
    table: &TableName,
    enabled: bool,
    query: &KqlCode,
) -> Command {
    Command::mgmt(format!(
        ".alter table {} policy row_level_security {} {}",
        ident(table.as_str()),
        if enabled { "enable" } else { "disable" },
        string_literal(query.as_str())
    ))
}
