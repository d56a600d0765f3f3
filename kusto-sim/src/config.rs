//! kusto-sim's configuration: one value, built in code by tests or from flags/env by the
//! binary.

use std::path::PathBuf;
use std::time::Duration;

use crate::faults::FaultConfig;

/// Azurite's well-known development account.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
pub const AZURITE_ENDPOINT: &str = "http://127.0.0.1:10000/devstoreaccount1";
pub const AZURITE_QUEUE_ENDPOINT: &str = "http://127.0.0.1:10001/devstoreaccount1";

/// A storage account whose key kusto-sim uses for `;managed_identity=...` URLs, standing in
/// for the cluster's managed identity.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageAccount {
    pub name: String,
    pub key: String,
    /// e.g. `http://127.0.0.1:10000/devstoreaccount1` or `https://acct.blob.core.windows.net`.
    pub blob_endpoint: String,
    /// The account's queue service (e.g. `http://127.0.0.1:10001/devstoreaccount1`): where
    /// queued ingestion's queues live. `None` = no queued ingestion.
    pub queue_endpoint: Option<String>,
}

impl StorageAccount {
    /// The Azurite development account at `blob_endpoint`.
    pub fn azurite(blob_endpoint: &str) -> Self {
        Self {
            name: AZURITE_ACCOUNT.to_string(),
            key: AZURITE_KEY.to_string(),
            blob_endpoint: blob_endpoint.trim_end_matches('/').to_string(),
            queue_endpoint: None,
        }
    }
}

/// The totals `.show capacity` reports (its `Total` column), which throttle what they
/// count: a cluster's export capacity is min(ClusterMaximumConcurrentOperations, nodes ×
/// max(1, cores per node × CoreUtilizationCoefficient)), 100 and 0.25 by default
/// (<https://learn.microsoft.com/kusto/management/capacity-policy>), so a test sets what
/// the cluster it stands for would report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// `DataExport`: exports (`.export`, continuous export runs) at once.
    pub data_export: i64,
    /// `Ingestions`: ingestion operations at once.
    pub ingestions: i64,
}

impl Default for Capacity {
    /// A small cluster's figures, the ones kusto-sim has always reported.
    fn default() -> Self {
        Self {
            data_export: 4,
            ingestions: 8,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Databases that exist at start.
    pub databases: Vec<String>,
    pub storage_accounts: Vec<StorageAccount>,
    /// When set, only this bearer token is accepted; otherwise any token is.
    pub required_token: Option<String>,
    /// Append one JSON line per request here; defaults to `$KUSTO_SIM_COMMAND_LOG`, so a
    /// CI run can collect every command the product's tests sent.
    pub command_log: Option<PathBuf>,
    pub faults: FaultConfig,
    /// How often the scheduler checks whether a continuous export is due. `None` disables
    /// scheduled runs (tests then run them on demand).
    pub scheduler_tick: Option<Duration>,
    /// What `.show capacity` reports; [`crate::Sim::set_capacity`] changes it at run time.
    pub capacity: Capacity,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            databases: Vec::new(),
            storage_accounts: vec![StorageAccount {
                queue_endpoint: Some(AZURITE_QUEUE_ENDPOINT.to_string()),
                ..StorageAccount::azurite(AZURITE_ENDPOINT)
            }],
            required_token: None,
            command_log: std::env::var_os("KUSTO_SIM_COMMAND_LOG")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            faults: FaultConfig::default(),
            scheduler_tick: Some(Duration::from_secs(1)),
            capacity: Capacity::default(),
        }
    }
}

impl Config {
    /// A config with these databases and Azurite at `blob_endpoint`.
    pub fn new(databases: &[&str], blob_endpoint: &str) -> Self {
        Self {
            databases: databases.iter().map(|d| (*d).to_string()).collect(),
            storage_accounts: vec![StorageAccount::azurite(blob_endpoint)],
            ..Self::default()
        }
    }

    /// Serves queued ingestion from queues at `queue_endpoint`, in the first storage account.
    pub fn with_queue_endpoint(mut self, queue_endpoint: &str) -> Self {
        if let Some(account) = self.storage_accounts.first_mut() {
            account.queue_endpoint = Some(queue_endpoint.trim_end_matches('/').to_string());
        }
        self
    }

    /// The account that holds the ingestion queues, if any.
    pub(crate) fn queue_account(&self) -> Option<&StorageAccount> {
        self.storage_accounts
            .iter()
            .find(|a| a.queue_endpoint.is_some())
    }
}
