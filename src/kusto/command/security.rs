//! What `adx-backup check` reads about who may do what: the app's own roles, the cluster's
//! managed-identity policy, a table's row-level security and restricted view access; the
//! commands a finding gives as its fix; and the principals restore brings back.

use super::{Command, KqlCode, ident, string_literal};
use crate::ids::{DatabaseName, Principal, TableName};

/// A database security role, as `.add database D <role> (...)` names it
/// (<https://learn.microsoft.com/en-us/kusto/management/manage-database-security-roles>).
/// Declared in the order restore adds them: an unrestricted viewer must already be an
/// admin, user or viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DatabaseRole {
    Admins,
    Users,
    Viewers,
    UnrestrictedViewers,
    Ingestors,
    Monitors,
}

impl DatabaseRole {
    const ALL: [Self; 6] = [
        Self::Admins,
        Self::Users,
        Self::Viewers,
        Self::UnrestrictedViewers,
        Self::Ingestors,
        Self::Monitors,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admins => "admins",
            Self::Users => "users",
            Self::Viewers => "viewers",
            Self::UnrestrictedViewers => "unrestrictedviewers",
            Self::Ingestors => "ingestors",
            Self::Monitors => "monitors",
        }
    }

    /// The role a word names, in any case.
    pub fn parse(word: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(word))
    }
}

/// A table security role
/// (<https://learn.microsoft.com/en-us/kusto/management/manage-table-security-roles>).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TableRole {
    Admins,
    Ingestors,
}

impl TableRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admins => "admins",
            Self::Ingestors => "ingestors",
        }
    }

    /// The role a word names, in any case.
    pub fn parse(word: &str) -> Option<Self> {
        [Self::Admins, Self::Ingestors]
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(word))
    }
}

/// `('p1', 'p2')`: each principal an escaped string literal.
fn principal_list(principals: &[Principal]) -> String {
    let items: Vec<String> = principals
        .iter()
        .map(|p| string_literal(p.as_str()))
        .collect();
    format!("({})", items.join(", "))
}

/// `.add database ['Db'] <role> ('p', ...) skip-results '<notes>'`: adds the principals to
/// the role, keeping those it has (needs Database Admin; manage-database-security-roles).
pub fn add_database_principals(
    db: &DatabaseName,
    role: DatabaseRole,
    principals: &[Principal],
    notes: &str,
) -> Command {
    Command::mgmt(format!(
        ".add database {} {} {} skip-results {}",
        ident(db.as_str()),
        role.as_str(),
        principal_list(principals),
        string_literal(notes)
    ))
}

/// `.add table ['T'] <role> ('p', ...) skip-results '<notes>'` (needs Database Admin or
/// Table Admin; a table admin must be a database user, a table ingestor a database user or
/// ingestor: manage-table-security-roles, add-security-roles).
pub fn add_table_principals(
    table: &TableName,
    role: TableRole,
    principals: &[Principal],
    notes: &str,
) -> Command {
    Command::mgmt(format!(
        ".add table {} {} {} skip-results {}",
        ident(table.as_str()),
        role.as_str(),
        principal_list(principals),
        string_literal(notes)
    ))
}

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
pub fn add_database_principal(db: &DatabaseName, role: DatabaseRole, principal: &str) -> Command {
    Command::mgmt(format!(
        ".add database {} {} ({}) 'adx-backup'",
        ident(db.as_str()),
        role.as_str(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_are_added_as_escaped_literals() {
        let p = |s: &str| Principal::new(s).unwrap();
        let db = DatabaseName::new("Sales").unwrap();
        assert_eq!(
            add_database_principals(
                &db,
                DatabaseRole::UnrestrictedViewers,
                &[p("aadapp=a;t"), p("aadgroup=it's;t")],
                "from 'src'"
            )
            .as_str(),
            r".add database ['Sales'] unrestrictedviewers ('aadapp=a;t', 'aadgroup=it\'s;t') skip-results 'from \'src\''"
        );
        assert_eq!(
            add_table_principals(
                &TableName::new("My T").unwrap(),
                TableRole::Ingestors,
                &[p("aaduser=u@x.com")],
                ""
            )
            .as_str(),
            ".add table ['My T'] ingestors ('aaduser=u@x.com') skip-results ''"
        );
        assert_eq!(
            DatabaseRole::parse("UnrestrictedViewers"),
            Some(DatabaseRole::UnrestrictedViewers)
        );
        assert_eq!(DatabaseRole::parse("readers"), None);
        assert_eq!(TableRole::parse("Admins"), Some(TableRole::Admins));
        assert_eq!(TableRole::parse("viewers"), None);
    }
}
