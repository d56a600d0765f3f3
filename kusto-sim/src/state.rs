//! The simulated cluster: databases, tables with extents, external tables, continuous
//! exports and async operations. Everything lives behind one mutex in the `Backend`;
//! nothing here does I/O.

pub mod continuous;
pub mod external;
pub mod ingestion;
pub mod merge;
pub mod operation;
pub mod policy;
pub mod update;

use std::collections::BTreeMap;

use uuid::Uuid;

pub use continuous::{Artifact, ContinuousExport, ExportFailure};
pub use external::ExternalTable;
pub use ingestion::{IngestionFailure, IngestionResources};
pub use operation::{Operation, OperationState};
pub use policy::TablePolicies;

use crate::error::SimError;
use crate::table::{Column, RowMeta};
use crate::value::Value;
use crate::value::temporal::DOTNET_EPOCH_OFFSET;

#[derive(Debug, Default)]
pub struct Cluster {
    pub databases: BTreeMap<String, Database>,
    pub operations: Vec<Operation>,
    /// Created by the first `.get ingestion resources`; queued ingestion runs only after.
    pub ingestion_resources: Option<IngestionResources>,
    pub ingestion_failures: Vec<IngestionFailure>,
    /// Principals and roles; checked only once a caller is named.
    pub principals: crate::roles::Principals,
    /// The cluster's managed-identity policy entries (`ObjectId`, `AllowedUsages`).
    pub managed_identity_policy: Vec<serde_json::Value>,
}

impl Cluster {
    pub fn database(&self, name: &str) -> Result<&Database, SimError> {
        self.databases.get(name).ok_or_else(|| SimError::NotFound {
            kind: "Database",
            name: name.to_string(),
        })
    }

    pub fn database_mut(&mut self, name: &str) -> Result<&mut Database, SimError> {
        self.databases
            .get_mut(name)
            .ok_or_else(|| SimError::NotFound {
                kind: "Database",
                name: name.to_string(),
            })
    }

    pub fn operation_mut(&mut self, id: Uuid) -> Option<&mut Operation> {
        self.operations.iter_mut().find(|o| o.id == id)
    }
}

#[derive(Debug, Default)]
pub struct Database {
    pub name: String,
    pub tables: BTreeMap<String, Table>,
    pub external_tables: BTreeMap<String, ExternalTable>,
    pub continuous_exports: BTreeMap<String, ContinuousExport>,
    /// Stored functions by name.
    pub functions: BTreeMap<String, Function>,
    /// The last committed database cursor (0 = nothing ingested yet).
    pub cursor: u64,
    /// Materialized views by name.
    pub materialized_views: BTreeMap<String, MaterializedView>,
    /// Names of views whose backfill (`.create async ... with (backfill=true)`) is running,
    /// with its operation: not a view yet, but the name is taken.
    pub creating_views: BTreeMap<String, Uuid>,
    /// A follower database: attached read-only from a leader cluster, so `.show databases`
    /// reports `ReadOnlyFollowing` and commands that change it are refused
    /// (<https://learn.microsoft.com/azure/data-explorer/follower>).
    pub follower: bool,
}

impl Database {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            ..Self::default()
        }
    }

    pub fn table(&self, name: &str) -> Result<&Table, SimError> {
        self.tables.get(name).ok_or_else(|| SimError::NotFound {
            kind: "Table",
            name: name.to_string(),
        })
    }

    pub fn table_mut(&mut self, name: &str) -> Result<&mut Table, SimError> {
        self.tables.get_mut(name).ok_or_else(|| SimError::NotFound {
            kind: "Table",
            name: name.to_string(),
        })
    }

    pub fn external_table(&self, name: &str) -> Result<&ExternalTable, SimError> {
        self.external_tables
            .get(name)
            .ok_or_else(|| SimError::NotFound {
                kind: "External table",
                name: name.to_string(),
            })
    }

    pub fn continuous_export_mut(&mut self, name: &str) -> Result<&mut ContinuousExport, SimError> {
        self.continuous_exports
            .get_mut(name)
            .ok_or_else(|| SimError::NotFound {
                kind: "Continuous export",
                name: name.to_string(),
            })
    }

    /// Commits one ingestion: the cursor moves to the commit time in .NET ticks (so cursors
    /// look like Kusto's ~18-digit values), strictly increasing even within one tick.
    pub fn commit_cursor(&mut self, now_ticks: i64) -> u64 {
        let at_now = u64::try_from(now_ticks + DOTNET_EPOCH_OFFSET).unwrap_or(0);
        self.cursor = at_now.max(self.cursor + 1);
        self.cursor
    }

    /// Appends extents to `table` as one ingestion commit (one cursor); returns their ids.
    /// A `creationTime` older than the table's soft-delete period fails the whole commit,
    /// as Kusto refuses data its retention would delete at once. The update policies whose
    /// source is `table` then ingest what their queries make of these rows.
    pub fn ingest(
        &mut self,
        table: &str,
        extents: Vec<(Vec<Vec<Value>>, ExtentProps)>,
        now_ticks: i64,
    ) -> Result<Vec<Uuid>, SimError> {
        let policies = &self.table(table)?.policies;
        for (_, props) in &extents {
            if let Some(created) = props.creation_time {
                policies.check_creation_time(table, created, now_ticks)?;
            }
        }
        let derived = self.run_update_policies(table, &extents, now_ticks)?;
        let meta = self.commit_meta(table, now_ticks)?;
        let t = self.table_mut(table)?;
        let mut ids = Vec::new();
        for (rows, props) in extents {
            let extent = Extent::new(rows, props, meta, now_ticks);
            ids.push(extent.id);
            t.extents.push(extent);
        }
        for (target, rows) in derived {
            if !rows.is_empty() {
                self.ingest(&target, vec![(rows, ExtentProps::default())], now_ticks)?;
            }
        }
        Ok(ids)
    }

    /// The rows each enabled update policy with source `table` derives from `extents`. A
    /// failing transactional policy fails the ingestion; a failing other one derives nothing
    /// (Kusto records it as an ingestion failure of the target).
    fn run_update_policies(
        &self,
        table: &str,
        extents: &[(Vec<Vec<Value>>, ExtentProps)],
        now_ticks: i64,
    ) -> Result<Vec<Derived>, SimError> {
        let mut out = Vec::new();
        let source = self.table(table)?;
        for (name, target) in &self.tables {
            for rule in &target.policies.update {
                if rule.source != table || !rule.enabled {
                    continue;
                }
                let rows = extents
                    .iter()
                    .flat_map(|(r, _)| r.iter().cloned())
                    .collect();
                match update::derive(rule, &source.columns, rows, self.cursor, now_ticks) {
                    Ok(result) => out.push((name.clone(), result.rows)),
                    Err(e) if rule.transactional => return Err(e),
                    Err(_) => {}
                }
            }
        }
        Ok(out)
    }

    /// A new commit's cursor, and its ingestion time when `table` has the policy on.
    pub fn commit_meta(&mut self, table: &str, now_ticks: i64) -> Result<RowMeta, SimError> {
        let policy_on = self.table(table)?.ingestion_time_policy;
        let cursor = self.commit_cursor(now_ticks);
        Ok(RowMeta {
            ingestion_time: policy_on.then(|| cursor as i64 - DOTNET_EPOCH_OFFSET),
            cursor,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub columns: Vec<Column>,
    pub folder: String,
    pub docstring: String,
    pub ingestion_time_policy: bool,
    pub policies: TablePolicies,
    pub mappings: Vec<Mapping>,
    pub extents: Vec<Extent>,
    /// Table-level principals: role, principal FQN, notes.
    pub principals: Vec<(crate::roles::TableRole, String, String)>,
}

/// A stored function: its parameter list and body as written (without the enclosing
/// parentheses and braces).
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    pub name: String,
    pub params: String,
    pub body: String,
    pub folder: String,
    pub docstring: String,
}

/// A materialized view: its definition, as `.show materialized-views` lists it, and the
/// source records it has materialized.
///
/// A view's query answers over every source record it has taken in (Kusto combines the
/// materialized part with the delta not yet materialized, so a query always sees them all:
/// <https://learn.microsoft.com/kusto/management/materialized-views/materialized-view-overview#how-materialized-views-work>).
/// kusto-sim keeps the materialized records themselves and runs the view's query over them
/// and the delta when the view is queried, which also materializes the delta (Kusto does so
/// in the background, at times of its own). A materialized record stays when the source
/// loses it: "records that are removed from the source table ... aren't removed from the
/// view" (materialized-views-limitations).
#[derive(Debug, Clone, PartialEq)]
pub struct MaterializedView {
    pub name: String,
    pub source_table: String,
    pub query: String,
    pub folder: String,
    pub docstring: String,
    /// `effectiveDateTime`: the backfill took only records ingested after it.
    pub effective_date_time: Option<i64>,
    /// The source records materialized so far (the backfill's, then the deltas').
    pub records: crate::table::ResultTable,
    /// The database cursor up to which source records are materialized: the source's
    /// records committed after it are the delta.
    pub materialized_to: u64,
}

/// An ingestion mapping of a table: its kind (`csv`, `json`, ...), name and JSON text.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    pub kind: String,
    pub name: String,
    pub mapping: String,
}

impl Table {
    pub fn new(name: &str, columns: Vec<Column>) -> Self {
        Self {
            name: name.to_string(),
            columns,
            folder: String::new(),
            docstring: String::new(),
            // On by default for new tables, as in Kusto.
            ingestion_time_policy: true,
            policies: TablePolicies::default(),
            mappings: Vec::new(),
            extents: Vec::new(),
            principals: Vec::new(),
        }
    }

    /// `a:long, b:string` as `cslschema` prints it.
    pub fn csl_schema(&self) -> String {
        csl_schema(&self.columns)
    }

    /// Adds the columns not present yet (by name); a type conflict fails the whole call.
    pub fn merge_columns(&mut self, columns: &[Column]) -> Result<(), SimError> {
        for c in columns {
            if let Some(existing) = self.columns.iter().find(|e| e.name == c.name)
                && existing.ty != c.ty
            {
                return Err(SimError::semantic(format!(
                    "Column '{}' of table '{}' has type '{}', the command asks for '{}'",
                    c.name,
                    self.name,
                    existing.ty.kusto_name(),
                    c.ty.kusto_name()
                )));
            }
        }
        for c in columns {
            if !self.columns.iter().any(|e| e.name == c.name) {
                self.columns.push(c.clone());
                for extent in &mut self.extents {
                    extent.rows.iter_mut().for_each(|r| r.push(Value::Null));
                }
            }
        }
        Ok(())
    }
}

pub fn csl_schema(columns: &[Column]) -> String {
    columns
        .iter()
        .map(|c| format!("{}:{}", c.name, c.ty.kusto_name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rows an update policy derived, and the table they go to.
type Derived = (String, Vec<Vec<Value>>);

/// What an ingestion says about the extent it creates.
#[derive(Debug, Clone, Default)]
pub struct ExtentProps {
    pub creation_time: Option<i64>,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Extent {
    pub id: Uuid,
    pub rows: Vec<Vec<Value>>,
    /// Soft-deleted rows (`.delete table records`); same length as `rows`.
    pub deleted: Vec<bool>,
    /// Each row's ingestion time and cursor; same length as `rows`. Per row, because a
    /// merged extent holds rows of several commits and each keeps its own.
    pub metas: Vec<RowMeta>,
    /// Creation time range: one value for an ingested extent, the sources' range once merged.
    pub min_created_on: i64,
    pub max_created_on: i64,
    pub tags: Vec<String>,
    pub original_size: u64,
}

impl Extent {
    fn new(rows: Vec<Vec<Value>>, props: ExtentProps, meta: RowMeta, now: i64) -> Self {
        let original_size = rows.iter().flatten().map(value_size).sum();
        let created_on = props.creation_time.unwrap_or(now);
        Self {
            id: Uuid::new_v4(),
            deleted: vec![false; rows.len()],
            metas: vec![meta; rows.len()],
            rows,
            min_created_on: created_on,
            max_created_on: created_on,
            tags: props.tags,
            original_size,
        }
    }

    pub fn live_rows(&self) -> usize {
        self.deleted.iter().filter(|d| !**d).count()
    }
}

/// A rough uncompressed size, for `OriginalSize` and export size limits.
pub fn value_size(v: &Value) -> u64 {
    match v {
        Value::Null => 1,
        Value::Bool(_) => 1,
        Value::Int(_) => 4,
        Value::String(s) => s.len() as u64,
        Value::Dynamic(j) => j.to_string().len() as u64,
        Value::Decimal(_) | Value::Guid(_) => 16,
        _ => 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::ColumnType;

    #[test]
    fn cursors_strictly_increase_and_match_ingestion_time() {
        let mut db = Database::new("db");
        db.tables.insert(
            "T".into(),
            Table::new("T", vec![Column::new("a", ColumnType::Long)]),
        );
        let now = 1_700_000_000 * 10_000_000;
        let one = |v| vec![(vec![vec![Value::Long(v)]], ExtentProps::default())];
        db.ingest("T", one(1), now).unwrap();
        db.ingest("T", one(2), now).unwrap();
        let t = db.table("T").unwrap();
        assert!(t.extents[1].metas[0].cursor > t.extents[0].metas[0].cursor);
        assert_eq!(t.extents[0].metas[0].ingestion_time, Some(now));
        assert_eq!(db.cursor.to_string().len(), 18);
    }

    #[test]
    fn merge_adds_columns_and_rejects_conflicts() {
        let mut t = Table::new("T", vec![Column::new("a", ColumnType::Long)]);
        t.merge_columns(&[Column::new("b", ColumnType::String)])
            .unwrap();
        assert_eq!(t.csl_schema(), "a:long, b:string");
        assert!(
            t.merge_columns(&[Column::new("a", ColumnType::String)])
                .is_err()
        );
    }
}
