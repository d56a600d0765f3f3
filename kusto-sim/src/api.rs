//! The in-process API of one simulated cluster: what the HTTP server and tests call to run
//! commands and queries, step the clock, set faults and read the command log. It sits above
//! the commands it runs, so nothing below it (commands, engine, state, storage) refers back
//! up to it; they all run against the shared [`Backend`].

use std::sync::Arc;
use std::time::Duration;

use crate::backend::Backend;
use crate::command_log::LoggedCommand;
use crate::commands::{self, MgmtResult};
use crate::config::{Capacity, Config};
use crate::continuous_export::{self, RunReport};
use crate::error::SimError;
use crate::faults::{FaultConfig, Faults};
use crate::protocol::QueryOutcome;
use crate::query_runner::{self, Limits};
use crate::queued_ingestion::{self, IngestionReport};
use crate::roles::ClusterRole;
use crate::state::merge::Merged;
use crate::state::{Database, OperationState};
use crate::table::ResultTable;

/// A handle to one simulated cluster; clones share it.
#[derive(Clone)]
pub struct Sim {
    backend: Arc<Backend>,
}

impl Sim {
    pub fn new(config: Config) -> Self {
        Self {
            backend: Backend::new(config),
        }
    }

    /// What commands run against (the server's and the scheduler's way in).
    pub(crate) fn backend(&self) -> &Arc<Backend> {
        &self.backend
    }

    /// The simulator's clock, in ticks since the Unix epoch.
    pub fn now(&self) -> i64 {
        self.backend.now()
    }

    /// Moves the simulator's clock forward (ingestion times, cursors, export schedules).
    pub fn advance_clock(&self, by: Duration) {
        self.backend.advance_clock(by);
    }

    pub fn create_database(&self, name: &str) {
        self.backend
            .cluster()
            .databases
            .entry(name.to_string())
            .or_insert_with(|| Database::new(name));
    }

    /// Makes database `name` a follower: attached read-only from a leader cluster (no
    /// command can, it is an Azure resource operation), with the tables it holds now.
    pub fn attach_as_follower(&self, name: &str) -> Result<(), SimError> {
        self.backend.cluster().database_mut(name)?.follower = true;
        Ok(())
    }

    /// Requests answered 429 or 503 by injection since the faults were last set.
    pub fn faults_injected(&self) -> u64 {
        self.backend.faults().injected
    }

    pub fn set_faults(&self, config: FaultConfig) {
        self.backend.blob.set_denied(config.deny_storage.clone());
        *self.backend.faults() = Faults::new(config);
    }

    /// Sets the totals `.show capacity` reports and exports are throttled against, as a
    /// cluster of another size (or with another capacity policy) would have them.
    pub fn set_capacity(&self, capacity: Capacity) {
        self.backend.set_capacity(capacity);
    }

    /// Names the principal every HTTP request runs as, which turns role checks on
    /// ([`crate::roles`]); its roles come from `.add database ...` commands and
    /// [`Self::grant_cluster_role`].
    pub fn set_caller(&self, fqn: &str) {
        self.backend.cluster().principals.caller = Some(fqn.to_owned());
    }

    /// Gives `fqn` a cluster role, which no command can (Azure portal or ARM only).
    pub fn grant_cluster_role(&self, role: ClusterRole, fqn: &str) {
        self.backend
            .cluster()
            .principals
            .cluster
            .push((role, fqn.to_owned()));
    }

    pub fn fault_config(&self) -> FaultConfig {
        self.backend.faults().config.clone()
    }

    /// Every command and query text received over HTTP, in order.
    pub fn commands(&self) -> Vec<LoggedCommand> {
        self.backend.commands()
    }

    /// Runs a management command in-process, as `/v1/rest/mgmt` would.
    pub async fn mgmt(&self, db: &str, csl: &str) -> Result<ResultTable, SimError> {
        self.backend
            .record_in_process(LoggedCommand::new("mgmt", db, csl));
        match commands::execute(&self.backend, db, csl).await? {
            MgmtResult::Command(t) => Ok(t),
            MgmtResult::Query(q) => Ok(q.primary),
        }
    }

    /// Runs a query in-process, as `/v2/rest/query` would.
    pub async fn query(&self, db: &str, csl: &str) -> Result<QueryOutcome, SimError> {
        self.backend
            .record_in_process(LoggedCommand::new("query", db, csl));
        query_runner::run(&self.backend, db, csl, &Limits::default()).await
    }

    /// Runs the cluster's extent maintenance once, now: extent-tags retention, then merges
    /// (what the scheduler does every tick).
    pub fn merge_extents_now(&self) -> Vec<Merged> {
        let now = self.backend.now();
        self.backend.cluster().maintain(now)
    }

    /// Runs every enabled continuous export once, now, whatever its schedule.
    pub async fn run_continuous_exports_now(&self) -> Vec<RunReport> {
        continuous_export::run_all(&self.backend, true).await
    }

    /// Runs one continuous export once, now, whatever its schedule: a test can move one
    /// export on while the others stay where they are.
    pub async fn run_continuous_export_now(&self, db: &str, name: &str) -> RunReport {
        continuous_export::run_one(&self.backend, db, name).await
    }

    /// Takes every message off the ingestion queues now and ingests it, as the scheduler
    /// does each tick (a no-op before the first `.get ingestion resources`).
    pub async fn run_queued_ingestion_now(&self) -> IngestionReport {
        queued_ingestion::run_once(&self.backend).await
    }

    /// Puts operation `id` in `state` (e.g. Throttled, Abandoned, Canceled), so a poller
    /// can be tested against every state `.show operations` documents.
    pub fn set_operation_state(
        &self,
        id: uuid::Uuid,
        state: OperationState,
    ) -> Result<(), SimError> {
        let now = self.backend.now();
        let mut cluster = self.backend.cluster();
        let op = cluster
            .operation_mut(id)
            .ok_or_else(|| SimError::NotFound {
                kind: "Operation",
                name: id.to_string(),
            })?;
        op.end(state, op.status.clone(), now);
        Ok(())
    }

    /// Creates the container a storage URL points into, with the configured account key
    /// (a convenience for tests and the demo; Kusto itself never creates containers).
    pub async fn ensure_container(&self, url: &str) -> Result<(), SimError> {
        let loc = self.backend.blob.locate(url)?;
        self.backend.blob.create_container(&loc).await
    }

    /// The current database cursor of `db`.
    pub fn cursor(&self, db: &str) -> Result<String, SimError> {
        Ok(self.backend.cluster().database(db)?.cursor.to_string())
    }
}
