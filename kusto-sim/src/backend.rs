//! What every command runs against: the cluster state, the storage client, faults, the
//! command log and the clock. It knows nothing of commands; [`crate::Sim`] (in `api`) is the
//! in-process API that runs them against a backend.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use crate::blob::BlobClient;
use crate::command_log::{CommandLog, LoggedCommand};
use crate::config::{Capacity, Config};
use crate::error::SimError;
use crate::faults::Faults;
use crate::queue::QueueClient;
use crate::state::{Cluster, Database};
use crate::value::temporal::now_ticks;

/// One simulated cluster's shared parts, held by [`crate::Sim`] and passed to every command.
pub struct Backend {
    cluster: Mutex<Cluster>,
    faults: Mutex<Faults>,
    /// What `.show capacity` reports and exports are throttled against.
    capacity: Mutex<Capacity>,
    pub(crate) blob: BlobClient,
    /// The queue service of the account that holds the ingestion queues, if configured.
    pub(crate) queues: Option<QueueClient>,
    /// Held while queued-ingestion resources are created or a consumer pass runs, so two
    /// passes never take the same messages.
    pub(crate) queued_ingestion: tokio::sync::Mutex<()>,
    log: CommandLog,
    /// Added to the real clock; lets tests step past `forcedLatency` or intervals.
    clock_offset: Mutex<i64>,
    pub(crate) config: Config,
    /// Lets commands hand an owned handle to the tasks they spawn (async operations).
    me: Weak<Backend>,
}

impl Backend {
    pub(crate) fn new(config: Config) -> Arc<Self> {
        let mut cluster = Cluster::default();
        for name in &config.databases {
            cluster.databases.insert(name.clone(), Database::new(name));
        }
        Arc::new_cyclic(|me| Self {
            cluster: Mutex::new(cluster),
            faults: Mutex::new(Faults::new(config.faults.clone())),
            capacity: Mutex::new(config.capacity),
            blob: BlobClient::new(
                config.storage_accounts.clone(),
                config.faults.deny_storage.clone(),
            ),
            queues: config.queue_account().and_then(QueueClient::new),
            queued_ingestion: tokio::sync::Mutex::new(()),
            log: CommandLog::new(config.command_log.clone()),
            clock_offset: Mutex::new(0),
            config,
            me: me.clone(),
        })
    }

    /// An owned handle to this backend, for spawned tasks.
    pub(crate) fn handle(&self) -> Result<Arc<Backend>, SimError> {
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

    pub(crate) fn capacity(&self) -> Capacity {
        *self.capacity.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn set_capacity(&self, capacity: Capacity) {
        *self.capacity.lock().unwrap_or_else(|p| p.into_inner()) = capacity;
    }

    /// The simulator's clock, in ticks since the Unix epoch.
    pub(crate) fn now(&self) -> i64 {
        now_ticks() + *self.clock_offset.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves the simulator's clock forward (ingestion times, cursors, export schedules).
    pub(crate) fn advance_clock(&self, by: Duration) {
        let ticks = i64::try_from(by.as_nanos() / 100).unwrap_or(i64::MAX);
        let mut offset = self.clock_offset.lock().unwrap_or_else(|p| p.into_inner());
        *offset = offset.saturating_add(ticks);
    }

    /// Every command and query text received over HTTP, in order.
    pub(crate) fn commands(&self) -> Vec<LoggedCommand> {
        self.log.entries()
    }

    pub(crate) fn record(&self, entry: LoggedCommand) {
        self.log.record(entry);
    }

    /// Logs a text run in-process (not a request) to the command-log file only.
    pub(crate) fn record_in_process(&self, entry: LoggedCommand) {
        self.log.record_in_process(entry);
    }

    pub(crate) fn operation_latency(&self) -> Duration {
        Duration::from_millis(self.faults().config.operation_latency_ms)
    }
}
