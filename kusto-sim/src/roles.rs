//! Kusto's role model, as far as adx-backup's checks need it: principals per database, the
//! three cluster roles, the documented minimum role of each command, and Kusto's 403 when
//! the caller lacks it.
//!
//! Off until a test names the caller ([`crate::Sim::set_caller`]): every earlier test runs
//! as a principal that may do anything. Once on, every request over HTTP is checked;
//! in-process commands (a test seeding data) are not.
//!
//! Database roles (<https://learn.microsoft.com/en-us/kusto/management/manage-database-security-roles>):
//! admins view and modify everything; users view and create entities; viewers view;
//! ingestors ingest without query access; monitors view metadata. The cluster roles
//! AllDatabasesAdmin/Viewer/Monitor cannot be set by command
//! (<https://learn.microsoft.com/en-us/kusto/management/security-roles>), so tests set them
//! with [`crate::Sim::grant_cluster_role`].
//!
//! Table principals (`.add table T admins|ingestors (...)`) are kept and shown, but grant
//! nothing here: where the docs name a table-level role (Table Admin, Table Ingestor) as
//! enough for a command, kusto-sim asks for the database role above it, never kinder than
//! Kusto.

use crate::error::SimError;
use crate::parse::command::{Command, CreateMode};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DbRole {
    Admin,
    User,
    Viewer,
    /// Views tables even under restricted view access; needs Admin, User or Viewer too.
    UnrestrictedViewer,
    Ingestor,
    Monitor,
}

impl DbRole {
    /// The role of `.add database D <word> (...)`.
    pub fn from_plural(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "admins" => Self::Admin,
            "users" => Self::User,
            "viewers" => Self::Viewer,
            "unrestrictedviewers" => Self::UnrestrictedViewer,
            "ingestors" => Self::Ingestor,
            "monitors" => Self::Monitor,
            _ => return None,
        })
    }

    /// The word `.add database D <word> (...)` takes.
    pub fn plural(self) -> &'static str {
        match self {
            Self::Admin => "admins",
            Self::User => "users",
            Self::Viewer => "viewers",
            Self::UnrestrictedViewer => "unrestrictedviewers",
            Self::Ingestor => "ingestors",
            Self::Monitor => "monitors",
        }
    }

    /// As `.show database D principals` names it: `Database <db> Admin`.
    pub fn title(self) -> &'static str {
        match self {
            Self::Admin => "Admin",
            Self::User => "User",
            Self::Viewer => "Viewer",
            Self::UnrestrictedViewer => "UnrestrictedViewer",
            Self::Ingestor => "Ingestor",
            Self::Monitor => "Monitor",
        }
    }

    /// Holding `self` allows what `needed` allows.
    fn grants(self, needed: DbRole) -> bool {
        match self {
            Self::Admin => true,
            Self::User => matches!(needed, Self::User | Self::Viewer | Self::Monitor),
            Self::Viewer => matches!(needed, Self::Viewer | Self::Monitor),
            Self::UnrestrictedViewer => needed == Self::UnrestrictedViewer,
            Self::Ingestor => needed == Self::Ingestor,
            Self::Monitor => needed == Self::Monitor,
        }
    }
}

/// The roles a table can give
/// (<https://learn.microsoft.com/en-us/kusto/management/manage-table-security-roles>).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TableRole {
    Admin,
    Ingestor,
}

impl TableRole {
    /// The role of `.add table T <word> (...)`.
    pub fn from_plural(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "admins" => Self::Admin,
            "ingestors" => Self::Ingestor,
            _ => return None,
        })
    }

    /// The word `.add table T <word> (...)` takes.
    pub fn plural(self) -> &'static str {
        match self {
            Self::Admin => "admins",
            Self::Ingestor => "ingestors",
        }
    }

    /// As `.show table T principals` names it: `Table <t> Admin`.
    pub fn title(self) -> &'static str {
        match self {
            Self::Admin => "Admin",
            Self::Ingestor => "Ingestor",
        }
    }

    /// The database roles of which a principal needs one to hold `self`: "A principal must
    /// be a Database User in order to be a Table Admin, and a Database User or Database
    /// Ingestor to be a Table Ingestor"
    /// (<https://learn.microsoft.com/en-us/kusto/management/add-security-roles>).
    pub fn prerequisites(self) -> &'static [DbRole] {
        match self {
            Self::Admin => &[DbRole::User],
            Self::Ingestor => &[DbRole::User, DbRole::Ingestor],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterRole {
    AllDatabasesAdmin,
    AllDatabasesViewer,
    AllDatabasesMonitor,
}

impl ClusterRole {
    fn grants_db(self, needed: DbRole) -> bool {
        match self {
            Self::AllDatabasesAdmin => true,
            Self::AllDatabasesViewer => DbRole::Viewer.grants(needed),
            Self::AllDatabasesMonitor => needed == DbRole::Monitor,
        }
    }

    /// Admin covers Viewer, Viewer covers Monitor.
    fn grants(self, needed: ClusterRole) -> bool {
        let rank = |r: ClusterRole| match r {
            Self::AllDatabasesAdmin => 3,
            Self::AllDatabasesViewer => 2,
            Self::AllDatabasesMonitor => 1,
        };
        rank(self) >= rank(needed)
    }
}

/// What a command asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needed {
    Database(DbRole),
    Cluster(ClusterRole),
    /// Any principal with access to the database (e.g. reading one's own roles).
    AnyRole,
}

/// The documented minimum role of `command` (doc pages cited in docs/deploy.md).
pub fn needed(command: &Command) -> Needed {
    use Command::*;
    use DbRole::*;
    Needed::Database(match command {
        ShowPrincipalRoles => return Needed::AnyRole,
        // `.show cluster policy managed_identity`: AllDatabasesMonitor
        // (<https://learn.microsoft.com/en-us/kusto/management/show-cluster-managed-identity-policy-command>);
        // altering it: AllDatabasesAdmin.
        ShowClusterManagedIdentityPolicy => {
            return Needed::Cluster(ClusterRole::AllDatabasesMonitor);
        }
        AlterClusterManagedIdentityPolicy { .. } => {
            return Needed::Cluster(ClusterRole::AllDatabasesAdmin);
        }
        // `.show capacity`: Database User (show-capacity-command).
        ShowCapacity { .. } => User,
        // `.create table`, `.create-merge table`, `.create function`, `.create external
        // table`: Database User (the creator becomes the object's admin). Altering an
        // existing one needs its admin role: Admin here.
        CreateTable { .. } | CreateTableBasedOn { .. } | CreateMergeTables { .. } => User,
        CreateFunction { .. } => User,
        CreateOrAlterExternalTable(def) if def.mode == CreateMode::Create => User,
        // Ingestion and ingestion mappings: Table Ingestor, so Database Ingestor here.
        Ingest { .. } | IngestInline { .. } | CreateIngestionMapping { .. } => Ingestor,
        GetIngestionResources | GetKustoIdentityToken => Ingestor,
        ShowOperations { .. } | ShowOperationDetails { .. } => Viewer,
        c if crate::parse::command::is_show(c) => Viewer,
        // Everything else changes a table, export or the database: Table Admin or Database
        // Admin in the docs.
        _ => Admin,
    })
}

/// [`needed`], raised to Admin where the command would change an object that already
/// exists: altering a function needs its Function Admin, `.create-merge` of an existing
/// table its Table Admin (create-alter-function, create-merge-table-command Permissions);
/// kusto-sim has no object principals, so Database Admin.
pub(crate) fn needed_in(command: &Command, db: Option<&crate::state::Database>) -> Needed {
    let base = needed(command);
    let Some(db) = db else {
        return base;
    };
    let existing = match command {
        Command::CreateFunction { name, .. } => db.functions.contains_key(name),
        Command::CreateMergeTables { tables, .. } => {
            tables.iter().any(|(name, _)| db.table(name).is_ok())
        }
        _ => false,
    };
    if existing {
        Needed::Database(DbRole::Admin)
    } else {
        base
    }
}

/// Who may do what on the simulated cluster.
#[derive(Debug, Clone, Default)]
pub struct Principals {
    /// The principal every HTTP request runs as; `None`: roles are not checked.
    pub caller: Option<String>,
    /// Per database (as named in the cluster): role, principal FQN, notes.
    pub databases: std::collections::BTreeMap<String, Vec<(DbRole, String, String)>>,
    pub cluster: Vec<(ClusterRole, String)>,
}

impl Principals {
    /// The database roles `fqn` holds on `db`.
    pub fn roles_of(&self, db: &str, fqn: &str) -> Vec<DbRole> {
        self.databases
            .get(db)
            .into_iter()
            .flatten()
            .filter(|(_, who, _)| who.eq_ignore_ascii_case(fqn))
            .map(|(role, _, _)| *role)
            .collect()
    }

    /// Whether `fqn` holds, on `db`, a role that grants one of `roles` (a database role or a
    /// cluster role).
    pub fn holds_any(&self, db: &str, fqn: &str, roles: &[DbRole]) -> bool {
        let mine = self.roles_of(db, fqn);
        roles.iter().any(|needed| {
            mine.iter().any(|r| r.grants(*needed))
                || self
                    .cluster
                    .iter()
                    .any(|(c, who)| who.eq_ignore_ascii_case(fqn) && c.grants_db(*needed))
        })
    }

    /// Ok when the caller may run a command that asks for `needed` on `db`; otherwise
    /// Kusto's 403.
    pub fn authorize(&self, db: &str, needed: Needed, operation: &str) -> Result<(), SimError> {
        let Some(caller) = &self.caller else {
            return Ok(());
        };
        let cluster: Vec<ClusterRole> = self
            .cluster
            .iter()
            .filter(|(_, who)| who.eq_ignore_ascii_case(caller))
            .map(|(r, _)| *r)
            .collect();
        let mine = self.roles_of(db, caller);
        let allowed = match needed {
            Needed::AnyRole => !mine.is_empty() || !cluster.is_empty(),
            Needed::Database(role) => {
                mine.iter().any(|r| r.grants(role)) || cluster.iter().any(|c| c.grants_db(role))
            }
            Needed::Cluster(role) => cluster.iter().any(|c| c.grants(role)),
        };
        if allowed {
            return Ok(());
        }
        Err(SimError::Forbidden {
            principal: caller.clone(),
            operation: operation.to_owned(),
            database: db.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::command::parse_command;

    fn need(csl: &str) -> Needed {
        needed(&parse_command(csl).unwrap().command)
    }

    #[test]
    fn commands_ask_for_their_documented_role() {
        assert_eq!(need(".show tables"), Needed::Database(DbRole::Viewer));
        assert_eq!(
            need(".create-or-alter continuous-export E to table X <| T"),
            Needed::Database(DbRole::Admin)
        );
        assert_eq!(
            need(".show cluster policy managed_identity"),
            Needed::Cluster(ClusterRole::AllDatabasesMonitor)
        );
        assert_eq!(need(".show database D principal roles"), Needed::AnyRole);
        assert_eq!(
            need(".alter table T policy row_level_security enable \"T | where true\""),
            Needed::Database(DbRole::Admin)
        );
        assert_eq!(
            need(".show table T policy row_level_security"),
            Needed::Database(DbRole::Viewer)
        );
        assert_eq!(
            need(".add database D admins ('aadapp=x;t') 'why'"),
            Needed::Database(DbRole::Admin)
        );
        // Table Admin in the docs (manage-table-security-roles); kusto-sim's table roles
        // grant nothing, so Database Admin.
        assert_eq!(
            need(".add table T ingestors ('aadapp=x;t') skip-results 'why'"),
            Needed::Database(DbRole::Admin)
        );
        assert_eq!(
            need(
                ".alter-merge cluster policy managed_identity \"[{'ObjectId':'system','AllowedUsages':'ExternalTable'}]\""
            ),
            Needed::Cluster(ClusterRole::AllDatabasesAdmin)
        );
        assert_eq!(
            need(".ingest inline into table T <| 1"),
            Needed::Database(DbRole::Ingestor)
        );
        // show-capacity-command: "at least Database User".
        assert_eq!(need(".show capacity"), Needed::Database(DbRole::User));
        assert_eq!(
            need(".show capacity data-export"),
            Needed::Database(DbRole::User)
        );
    }

    #[test]
    fn changing_an_existing_function_asks_for_admin() {
        let csl = ".create-or-alter function F() { print 1 }";
        let command = parse_command(csl).unwrap().command;
        let mut db = crate::state::Database::new("Sales");
        assert_eq!(
            needed_in(&command, Some(&db)),
            Needed::Database(DbRole::User)
        );
        db.functions.insert(
            "F".into(),
            crate::state::Function {
                name: "F".into(),
                params: String::new(),
                body: "print 1".into(),
                folder: String::new(),
                docstring: String::new(),
            },
        );
        assert_eq!(
            needed_in(&command, Some(&db)),
            Needed::Database(DbRole::Admin)
        );
    }

    #[test]
    fn a_missing_role_is_refused_with_kustos_403() {
        let mut p = Principals {
            caller: Some("aadapp=app".into()),
            ..Principals::default()
        };
        p.databases.insert(
            "Sales".into(),
            vec![(DbRole::Viewer, "aadapp=app".into(), String::new())],
        );
        assert!(
            p.authorize("Sales", Needed::Database(DbRole::Viewer), "x")
                .is_ok()
        );
        let err = p
            .authorize("Sales", Needed::Database(DbRole::Admin), "TableAlterPolicy")
            .unwrap_err();
        assert_eq!(err.http_status(), 403);
        assert!(
            err.to_string()
                .contains("Principal 'aadapp=app' is not authorized")
        );
        assert!(
            p.authorize("Other", Needed::AnyRole, "x").is_err(),
            "no role on the database"
        );
        p.cluster
            .push((ClusterRole::AllDatabasesMonitor, "aadapp=app".into()));
        assert!(
            p.authorize(
                "Sales",
                Needed::Cluster(ClusterRole::AllDatabasesMonitor),
                "x"
            )
            .is_ok()
        );
        assert!(
            p.authorize(
                "Sales",
                Needed::Cluster(ClusterRole::AllDatabasesAdmin),
                "x"
            )
            .is_err()
        );
    }
}
