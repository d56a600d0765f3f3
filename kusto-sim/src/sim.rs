//! One simulated cluster: its state, storage client, faults, command log and clock. The
//! HTTP server and tests both drive it through [`Sim`].

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use crate::blob::BlobClient;
use crate::command_log::{CommandLog, LoggedCommand};
use crate::config::Config;
use crate::error::SimError;
use crate::faults::{FaultConfig, Faults};
use crate::protocol::QueryOutcome;
use crate::state::{Cluster, Database};
use crate::table::ResultTable;
use crate::value::temporal::now_ticks;

pub struct Sim {
    cluster: Mutex<Cluster>,
    faults: Mutex<Faults>,
    pub(crate) blob: BlobClient,
    log: CommandLog,
    /// Added to the real clock; lets tests step past `forcedLatency` or intervals.
    clock_offset: Mutex<i64>,
    pub(crate) config: Config,
    /// Lets commands hand an owned handle to the tasks they spawn (async operations).
    me: Weak<Sim>,
}

impl Sim {
    pub fn new(config: Config) -> Arc<Self> {
        let mut cluster = Cluster::default();
        for name in &config.databases {
            cluster.databases.insert(name.clone(), Database::new(name));
        }
        Arc::new_cyclic(|me| Self {
            cluster: Mutex::new(cluster),
            faults: Mutex::new(Faults::new(config.faults.clone())),
            blob: BlobClient::new(config.storage_accounts.clone()),
            log: CommandLog::new(config.command_log.clone()),
            clock_offset: Mutex::new(0),
            config,
            me: me.clone(),
        })
    }

    /// An owned handle to this simulator, for spawned tasks.
    pub(crate) fn handle(&self) -> Result<Arc<Sim>, SimError> {
        self.me
            .upgrade()
            .ok_or_else(|| SimError::Storage("the simulator is shutting down".into()))
    }

    /// The cluster state. A poisoned lock only means another request panicked mid-way;
    /// the state is still the best there is, so it is used rather than propagated.
    pub(crate) fn cluster(&self) -> MutexGuard<'_, Cluster> {
        self.cluster.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The simulator's clock, in ticks since the Unix epoch.
    pub fn now(&self) -> i64 {
        now_ticks() + *self.clock_offset.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves the simulator's clock forward (ingestion times, cursors, export schedules).
    pub fn advance_clock(&self, by: Duration) {
        let ticks = i64::try_from(by.as_nanos() / 100).unwrap_or(i64::MAX);
        let mut offset = self.clock_offset.lock().unwrap_or_else(|p| p.into_inner());
        *offset = offset.saturating_add(ticks);
    }

    pub fn create_database(&self, name: &str) {
        self.cluster()
            .databases
            .entry(name.to_string())
            .or_insert_with(|| Database::new(name));
    }

    pub fn set_faults(&self, config: FaultConfig) {
        *self.faults() = Faults::new(config);
    }

    pub fn fault_config(&self) -> FaultConfig {
        self.faults().config.clone()
    }

    /// Every command and query text received over HTTP, in order.
    pub fn commands(&self) -> Vec<LoggedCommand> {
        self.log.entries()
    }

    pub(crate) fn record(&self, entry: LoggedCommand) {
        self.log.record(entry);
    }

    /// Runs a management command in-process, as `/v1/rest/mgmt` would.
    pub async fn mgmt(&self, db: &str, csl: &str) -> Result<ResultTable, SimError> {
        match crate::commands::execute(self, db, csl).await? {
            crate::commands::MgmtResult::Command(t) => Ok(t),
            crate::commands::MgmtResult::Query(q) => Ok(q.primary),
        }
    }

    /// Runs a query in-process, as `/v2/rest/query` would.
    pub async fn query(&self, db: &str, csl: &str) -> Result<QueryOutcome, SimError> {
        crate::query::run(self, db, csl, &crate::query::Limits::default()).await
    }

    /// Runs every enabled continuous export once, now, whatever its schedule.
    pub async fn run_continuous_exports_now(&self) -> Vec<crate::continuous_export::RunReport> {
        crate::continuous_export::run_all(self, true).await
    }

    /// Creates the container a storage URL points into, with the configured account key
    /// (a convenience for tests and the demo; Kusto itself never creates containers).
    pub async fn ensure_container(&self, url: &str) -> Result<(), SimError> {
        let loc = self.blob.locate(url)?;
        self.blob.create_container(&loc).await
    }

    /// The current database cursor of `db`.
    pub fn cursor(&self, db: &str) -> Result<String, SimError> {
        Ok(self.cluster().database(db)?.cursor.to_string())
    }

    pub(crate) fn operation_latency(&self) -> Duration {
        Duration::from_millis(self.faults().config.operation_latency_ms)
    }
}
