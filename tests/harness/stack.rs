//! The local stack for end-to-end tests: Azurite (started by `make test` / `.ci/run`) and an
//! in-process kusto-sim on an ephemeral port, plus the app settings that point adx-backup at
//! both. Every stack gets its own container, prefix and task queue, so tests run in parallel
//! against one Azurite without seeing each other.
//!
//! When `KUSTO_SIM_COMMAND_LOG_DIR` is set, every command kusto-sim receives is logged there,
//! and `make test` runs Microsoft's Kusto parser over all of them.

use std::path::PathBuf;

use adx_backup::app::App;
use adx_backup::settings::{Env, Settings};
use kusto_sim::{Config, Server};

pub const DEV_TOKEN: &str = "e2e-dev-token";

pub struct Stack {
    pub sim: Server,
    pub database: String,
    pub settings: Vec<(String, String)>,
}

pub fn azurite_blob_endpoint() -> String {
    std::env::var("AZURITE_BLOB_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:10000/devstoreaccount1".into())
}

pub fn azurite_queue_endpoint() -> String {
    std::env::var("AZURITE_QUEUE_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:10001/devstoreaccount1".into())
}

/// Azurite's development account with its blob service at `blob_endpoint`.
fn connection_via(blob_endpoint: &str) -> String {
    format!(
        "AccountName={};AccountKey={};BlobEndpoint={blob_endpoint};QueueEndpoint={}",
        kusto_sim::config::AZURITE_ACCOUNT,
        kusto_sim::config::AZURITE_KEY,
        azurite_queue_endpoint()
    )
}

fn azurite_connection() -> String {
    std::env::var("AZURITE_CONNECTION_STRING")
        .unwrap_or_else(|_| "UseDevelopmentStorage=true".into())
}

impl Stack {
    /// A fresh kusto-sim with one empty database, and settings for a fresh container/queue.
    /// Continuous exports run only when a test asks (`run_exports`), so tests are exact.
    pub async fn start(database: &str) -> Stack {
        Self::start_at(database, &azurite_blob_endpoint()).await
    }

    /// Like [`Stack::start`], with the app and kusto-sim reaching blob storage at
    /// `blob_endpoint`: a proxy in front of Azurite's (e.g.
    /// [`crate::harness::blob_proxy::BlobProxy`]).
    pub async fn start_at(database: &str, blob_endpoint: &str) -> Stack {
        let mut config = Config::new(&[database], blob_endpoint);
        config.scheduler_tick = None;
        config.required_token = Some(DEV_TOKEN.into());
        if let Some(dir) = std::env::var_os("KUSTO_SIM_COMMAND_LOG_DIR") {
            config.command_log = Some(
                PathBuf::from(dir).join(format!("e2e-{}.jsonl", uuid::Uuid::new_v4().simple())),
            );
        }
        let sim = Server::start(config).await.expect("start kusto-sim");
        allow_cluster_identity(&sim, database).await;
        let mut stack = Stack::over(sim, database);
        if blob_endpoint != azurite_blob_endpoint() {
            stack.set("BackupStorage", &connection_via(blob_endpoint));
        }
        stack
    }

    /// Settings for a fresh container/queue that protect the database `database` of a
    /// cluster already running (a restore's target, protected again).
    pub fn over(sim: Server, database: &str) -> Stack {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let settings = [
            ("AdxBackup__ClusterUri", sim.url()),
            ("AdxBackup__KustoCredential", "devtoken".into()),
            ("AdxBackup__KustoDevToken", DEV_TOKEN.into()),
            ("AdxBackup__Databases", database.into()),
            ("BackupStorage", azurite_connection()),
            ("AdxBackup__Container", format!("e2e-{}", &id[..20])),
            ("AdxBackup__TaskQueue", format!("e2e-tasks-{}", &id[..20])),
            ("AdxBackup__Prefix", "backup".into()),
            ("AdxBackup__ExcludeTables", "Temp*".into()),
            // Each test area sees only its own tasks; the backfill tests turn it on.
            ("AdxBackup__Backfill", "off".into()),
            ("AdxBackup__LogFormat", "text".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Stack {
            sim,
            database: database.to_owned(),
            settings,
        }
    }

    /// A second cluster with one empty database, serving queued ingestion from Azurite's
    /// queues (its consumer runs when a test calls `run_queued_ingestion_now`): a restore
    /// target.
    pub async fn target_cluster(database: &str) -> Server {
        Self::target_cluster_queues_at(database, &azurite_queue_endpoint()).await
    }

    /// A target cluster whose ingestion queues are reached through `queue_endpoint` (a proxy
    /// in front of Azurite's queue service, e.g. [`crate::harness::gate::QueueGate`]).
    pub async fn target_cluster_queues_at(database: &str, queue_endpoint: &str) -> Server {
        Self::target_cluster_at(database, &azurite_blob_endpoint(), queue_endpoint).await
    }

    /// A target cluster reading blobs at `blob_endpoint` and its ingestion queues at
    /// `queue_endpoint`.
    pub async fn target_cluster_at(
        database: &str,
        blob_endpoint: &str,
        queue_endpoint: &str,
    ) -> Server {
        let mut config =
            Config::new(&[database], blob_endpoint).with_queue_endpoint(queue_endpoint);
        config.scheduler_tick = None;
        config.required_token = Some(DEV_TOKEN.into());
        if let Some(dir) = std::env::var_os("KUSTO_SIM_COMMAND_LOG_DIR") {
            config.command_log = Some(
                PathBuf::from(dir).join(format!("e2e-{}.jsonl", uuid::Uuid::new_v4().simple())),
            );
        }
        let sim = Server::start(config)
            .await
            .expect("start the target kusto-sim");
        allow_cluster_identity(&sim, database).await;
        sim
    }

    /// Sets (or replaces) one app setting.
    pub fn set(&mut self, key: &str, value: &str) {
        self.settings.retain(|(k, _)| k != key);
        self.settings.push((key.to_owned(), value.to_owned()));
    }

    pub fn app(&self) -> App {
        let settings = Settings::load(&Env::from_pairs(self.settings.clone())).expect("settings");
        App::new(settings).expect("app")
    }

    /// Runs a management command on the source database directly in kusto-sim (seeding and
    /// inspecting, not through the product).
    pub async fn kusto(&self, csl: &str) -> kusto_sim::table::ResultTable {
        self.sim
            .state()
            .mgmt(&self.database, csl)
            .await
            .unwrap_or_else(|e| panic!("{csl}: {e}"))
    }

    /// Every command the product sent so far.
    pub fn commands(&self) -> Vec<String> {
        self.sim
            .state()
            .commands()
            .into_iter()
            .map(|c| c.csl)
            .collect()
    }

    /// Runs every continuous export once, as its interval would.
    pub async fn run_exports(&self) -> Vec<kusto_sim::RunReport> {
        self.sim.state().run_continuous_exports_now().await
    }
}

/// What infra/adx-setup.kql sets on every cluster: the cluster's identity may write exports
/// and ingest from the backup.
async fn allow_cluster_identity(sim: &Server, database: &str) {
    sim.state()
        .mgmt(
            database,
            ".alter-merge cluster policy managed_identity \"[{'ObjectId':'system','AllowedUsages':'ExternalTable, NativeIngestion'}]\"",
        )
        .await
        .expect("set the cluster's managed-identity policy");
}
