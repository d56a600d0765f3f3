//! Settings: read once from the environment (Functions app settings arrive as environment
//! variables), validated at start, passed explicitly. A missing or bad setting is an error that
//! names it. Secrets are wrapped in [`Secret`], whose `Debug` and `Display` print `***`.
//!
//! Every key is listed in `local.settings.json.example` and in the README's settings table; a
//! test keeps the three in step.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use url::Url;

use crate::ids::DatabaseName;

mod backfill;
mod kusto;
mod protect;
mod reconcile;
mod restore;
mod retention;
mod storage;

pub use backfill::BackfillSettings;
pub use kusto::{KustoAuth, KustoSettings};
pub use protect::ProtectSettings;
pub use reconcile::{ReconcileMode, ReconcileSettings};
pub use restore::RestoreSettings;
pub use retention::{Keep, Policy, RetentionSettings};
pub use storage::{StorageAuth, StorageSettings};

use backfill::load_backfill;
use kusto::load_kusto;
use protect::load_protect;
use reconcile::load_reconcile;
use restore::load_restore;
use retention::load_retention;
use storage::load_storage;

/// Connection prefix of the backup storage account, in the Functions convention
/// (`BackupStorage=<connection string>` or `BackupStorage__blobServiceUri` etc.). function.json
/// queue triggers name the same prefix as their `connection`.
pub const STORAGE_PREFIX: &str = "BackupStorage";

/// A value that must never be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The only way to read the value; grep for it to audit where secrets go.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A setting that is missing or cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("setting {key} is required: {hint}")]
    Missing { key: String, hint: &'static str },
    #[error("setting {key} is invalid: {reason}")]
    Invalid { key: String, reason: String },
}

fn invalid(key: &str, reason: impl Into<String>) -> SettingsError {
    SettingsError::Invalid {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// Everything the binary reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub kusto: KustoSettings,
    pub storage: StorageSettings,
    /// Source databases to protect.
    pub databases: Vec<DatabaseName>,
    pub protect: ProtectSettings,
    pub backfill: BackfillSettings,
    pub reconcile: ReconcileSettings,
    pub restore: RestoreSettings,
    pub retention: RetentionSettings,
    pub log_format: LogFormat,
}

/// A view over key/value pairs, so tests can load settings without touching process env.
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    pub fn from_process() -> Self {
        Self::from_pairs(std::env::vars())
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    fn require(&self, key: &str, hint: &'static str) -> Result<&str, SettingsError> {
        self.get(key).ok_or_else(|| SettingsError::Missing {
            key: key.to_owned(),
            hint,
        })
    }

    fn url(&self, key: &str, hint: &'static str) -> Result<Url, SettingsError> {
        let raw = self.require(key, hint)?;
        parse_service_url(key, raw)
    }

    fn bool(&self, key: &str) -> Result<bool, SettingsError> {
        match self.get(key) {
            None => Ok(false),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
            Some(v) => Err(invalid(key, format!("expected true or false, got {v:?}"))),
        }
    }

    fn duration_secs(&self, key: &str, default: u64) -> Result<Duration, SettingsError> {
        match self.get(key) {
            None => Ok(Duration::from_secs(default)),
            Some(raw) => raw
                .parse::<u64>()
                .ok()
                .filter(|s| *s > 0)
                .map(Duration::from_secs)
                .ok_or_else(|| {
                    invalid(
                        key,
                        format!("expected a positive number of seconds, got {raw:?}"),
                    )
                }),
        }
    }
}

pub(crate) fn parse_service_url(key: &str, raw: &str) -> Result<Url, SettingsError> {
    let url = Url::parse(raw.trim_end_matches('/'))
        .map_err(|e| invalid(key, format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(key, "must be an http(s) URL"));
    }
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

pub const KEY_CLUSTER_URI: &str = "AdxBackup__ClusterUri";
pub const KEY_TOKEN_SCOPE: &str = "AdxBackup__TokenScope";
pub const KEY_KUSTO_CREDENTIAL: &str = "AdxBackup__KustoCredential";
pub const KEY_KUSTO_CLIENT_ID: &str = "AdxBackup__KustoClientId";
pub const KEY_KUSTO_DEV_TOKEN: &str = "AdxBackup__KustoDevToken";
pub const KEY_KUSTO_TIMEOUT: &str = "AdxBackup__KustoTimeoutSeconds";
pub const KEY_DATABASES: &str = "AdxBackup__Databases";
pub const KEY_CONTAINER: &str = "AdxBackup__Container";
pub const KEY_STATE_CONTAINER: &str = "AdxBackup__StateContainer";
pub const KEY_PREFIX: &str = "AdxBackup__Prefix";
pub const KEY_TASK_QUEUE: &str = "AdxBackup__TaskQueue";
pub const KEY_LOG_FORMAT: &str = "AdxBackup__LogFormat";
pub const KEY_APP_NAME: &str = "AdxBackup__AppName";
pub const KEY_INCLUDE: &str = "AdxBackup__IncludeTables";
pub const KEY_EXCLUDE: &str = "AdxBackup__ExcludeTables";
pub const KEY_PARTITION_COLUMNS: &str = "AdxBackup__PartitionColumns";
pub const KEY_OBJECT_PREFIX: &str = "AdxBackup__ObjectPrefix";
pub const KEY_EXPORT_INTERVAL: &str = "AdxBackup__ExportIntervalSeconds";
pub const KEY_ENABLE_INGESTION_TIME: &str = "AdxBackup__EnableIngestionTimePolicy";
pub const KEY_REENABLE_EXPORTS: &str = "AdxBackup__ReenableExports";
pub const KEY_FULL_PASS_INTERVAL: &str = "AdxBackup__FullPassIntervalSeconds";
pub const KEY_CLUSTER_STORAGE_URI: &str = "AdxBackup__ClusterStorageUri";
pub const KEY_CLUSTER_STORAGE_AUTH: &str = "AdxBackup__ClusterStorageAuth";
pub const KEY_BACKFILL: &str = "AdxBackup__Backfill";
pub const KEY_BACKFILL_BATCH_MAX_ROWS: &str = "AdxBackup__BackfillBatchMaxRows";
pub const KEY_BACKFILL_MAX_CONCURRENT: &str = "AdxBackup__BackfillMaxConcurrentBatches";
pub const KEY_BACKFILL_SPLIT_FLOOR_ROWS: &str = "AdxBackup__BackfillSplitFloorRows";
pub const KEY_BACKFILL_POLL_SECONDS: &str = "AdxBackup__BackfillPollSeconds";
pub const KEY_JANITOR_GRACE_SECONDS: &str = "AdxBackup__JanitorGraceSeconds";
pub const KEY_RECONCILE: &str = "AdxBackup__Reconcile";
pub const KEY_RECONCILE_SETTLE_DAYS: &str = "AdxBackup__ReconcileSettleDays";
pub const KEY_RECONCILE_MAX_DAYS: &str = "AdxBackup__ReconcileMaxDays";
pub const KEY_RECONCILE_SUPERSEDED_RETENTION: &str =
    "AdxBackup__ReconcileSupersededRetentionSeconds";
pub const KEY_RETENTION_DAYS: &str = "AdxBackup__RetentionDays";
pub const KEY_RETENTION_MONTHLY: &str = "AdxBackup__RetentionMonthlyMonths";
pub const KEY_RETENTION_OVERRIDES: &str = "AdxBackup__RetentionOverrides";
pub const KEY_PRUNE_MAX_DAYS: &str = "AdxBackup__PruneMaxDaysPerPass";
// Restore.
pub const KEY_RESTORE_QUEUE: &str = "AdxBackup__RestoreQueue";
pub const KEY_RESTORE_CHUNK_BLOBS: &str = "AdxBackup__RestoreChunkBlobs";
pub const KEY_RESTORE_CHUNK_BYTES: &str = "AdxBackup__RestoreChunkBytes";
pub const KEY_RESTORE_CHUNKS_IN_FLIGHT: &str = "AdxBackup__RestoreChunksInFlight";
pub const KEY_RESTORE_POLL: &str = "AdxBackup__RestorePollSeconds";
pub const KEY_RESTORE_INGEST_TIMEOUT: &str = "AdxBackup__RestoreIngestTimeoutSeconds";
pub const KEY_RESTORE_TARGETS: &str = "AdxBackup__RestoreTargets";
/// Read by functions/protect/function.json (the timer's NCRONTAB), not by the binary.
pub const KEY_PROTECT_SCHEDULE: &str = "AdxBackup__ProtectSchedule";
/// Read by functions/verify/function.json (the verify timer's NCRONTAB), not by the binary.
pub const KEY_VERIFY_SCHEDULE: &str = "AdxBackup__VerifySchedule";
pub const KEY_LAG_ALERT: &str = "AdxBackup__LagAlertSeconds";

/// Every key this module reads, for the drift test against local.settings.json.example.
pub const ALL_KEYS: &[&str] = &[
    KEY_CLUSTER_URI,
    KEY_TOKEN_SCOPE,
    KEY_KUSTO_CREDENTIAL,
    KEY_KUSTO_CLIENT_ID,
    KEY_KUSTO_DEV_TOKEN,
    KEY_KUSTO_TIMEOUT,
    KEY_DATABASES,
    KEY_CONTAINER,
    KEY_STATE_CONTAINER,
    KEY_PREFIX,
    KEY_TASK_QUEUE,
    KEY_LOG_FORMAT,
    KEY_APP_NAME,
    KEY_INCLUDE,
    KEY_EXCLUDE,
    KEY_PARTITION_COLUMNS,
    KEY_OBJECT_PREFIX,
    KEY_EXPORT_INTERVAL,
    KEY_ENABLE_INGESTION_TIME,
    KEY_REENABLE_EXPORTS,
    KEY_FULL_PASS_INTERVAL,
    KEY_CLUSTER_STORAGE_URI,
    KEY_CLUSTER_STORAGE_AUTH,
    KEY_PROTECT_SCHEDULE,
    KEY_VERIFY_SCHEDULE,
    KEY_LAG_ALERT,
    KEY_RECONCILE,
    KEY_RECONCILE_SETTLE_DAYS,
    KEY_RECONCILE_MAX_DAYS,
    KEY_RECONCILE_SUPERSEDED_RETENTION,
    KEY_RETENTION_DAYS,
    KEY_RETENTION_MONTHLY,
    KEY_RETENTION_OVERRIDES,
    KEY_PRUNE_MAX_DAYS,
    KEY_BACKFILL,
    KEY_BACKFILL_BATCH_MAX_ROWS,
    KEY_BACKFILL_MAX_CONCURRENT,
    KEY_BACKFILL_SPLIT_FLOOR_ROWS,
    KEY_BACKFILL_POLL_SECONDS,
    KEY_JANITOR_GRACE_SECONDS,
    STORAGE_PREFIX,
    // Restore.
    KEY_RESTORE_QUEUE,
    KEY_RESTORE_CHUNK_BLOBS,
    KEY_RESTORE_CHUNK_BYTES,
    KEY_RESTORE_CHUNKS_IN_FLIGHT,
    KEY_RESTORE_POLL,
    KEY_RESTORE_INGEST_TIMEOUT,
    KEY_RESTORE_TARGETS,
];

impl Settings {
    pub fn load(env: &Env) -> Result<Self, SettingsError> {
        let storage = load_storage(env)?;
        Ok(Self {
            kusto: load_kusto(env)?,
            protect: load_protect(env, &storage)?,
            backfill: load_backfill(env)?,
            reconcile: load_reconcile(env)?,
            restore: load_restore(env)?,
            retention: load_retention(env)?,
            storage,
            databases: load_databases(env)?,
            log_format: load_log_format(env)?,
        })
    }
}

fn load_databases(env: &Env) -> Result<Vec<DatabaseName>, SettingsError> {
    let raw = env.require(
        KEY_DATABASES,
        "comma-separated source database names to protect",
    )?;
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| DatabaseName::new(s).map_err(|e| invalid(KEY_DATABASES, e.to_string())))
        .collect()
}

fn load_log_format(env: &Env) -> Result<LogFormat, SettingsError> {
    match env.get(KEY_LOG_FORMAT) {
        // Under the Functions host stdout goes to Application Insights: JSON lines there.
        None if env.get("FUNCTIONS_CUSTOMHANDLER_PORT").is_some() => Ok(LogFormat::Json),
        None => Ok(LogFormat::Text),
        Some(v) if v.eq_ignore_ascii_case("json") => Ok(LogFormat::Json),
        Some(v) if v.eq_ignore_ascii_case("text") => Ok(LogFormat::Text),
        Some(v) => Err(invalid(
            KEY_LOG_FORMAT,
            format!("{v:?} is not json or text"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> Vec<(&'static str, &'static str)> {
        vec![
            (KEY_CLUSTER_URI, "http://127.0.0.1:8082"),
            (KEY_KUSTO_CREDENTIAL, "devtoken"),
            (KEY_KUSTO_DEV_TOKEN, "dev-token"),
            (KEY_DATABASES, "Sales, Telemetry"),
            (STORAGE_PREFIX, "UseDevelopmentStorage=true"),
        ]
    }

    #[test]
    fn loads_local_settings() {
        let s = Settings::load(&Env::from_pairs(local())).unwrap();
        assert_eq!(s.databases.len(), 2);
        assert_eq!(s.kusto.token_scope, "http://127.0.0.1:8082/.default");
        assert_eq!(s.storage.container, "adx-backup");
        assert_eq!(
            s.storage.state_container, "adx-backup",
            "state beside the data"
        );
        assert!(matches!(s.storage.auth, StorageAuth::SharedKey { .. }));
        assert_eq!(s.protect.include, vec!["*"]);
        assert!(s.protect.exclude.is_empty());
        assert_eq!(s.protect.export_interval, Duration::from_secs(300));
        assert_eq!(s.protect.full_pass_interval, Duration::from_secs(86_400));
        assert_eq!(s.protect.cluster_storage_uri, s.storage.blob_service_uri);
        assert!(s.backfill.enabled, "backfill is on by default");
        assert_eq!(s.backfill.batch_max_rows, 5_000_000);
        assert_eq!(s.backfill.janitor_grace, Duration::from_secs(3600));
    }

    #[test]
    fn protect_overrides() {
        let mut env = local();
        env.push((
            KEY_PARTITION_COLUMNS,
            "Sales/Orders=OrderDate, Sales/Lines = Shipped",
        ));
        env.push((KEY_EXCLUDE, "Temp*, Sales/Staging"));
        let s = Settings::load(&Env::from_pairs(env)).unwrap();
        assert_eq!(
            s.protect.partition_columns["Sales/Lines"].as_str(),
            "Shipped"
        );
        assert_eq!(s.protect.exclude, vec!["Temp*", "Sales/Staging"]);
    }

    #[test]
    fn missing_setting_is_named() {
        let env: Vec<_> = local()
            .into_iter()
            .filter(|(k, _)| *k != KEY_DATABASES)
            .collect();
        let err = Settings::load(&Env::from_pairs(env)).unwrap_err();
        assert!(err.to_string().contains(KEY_DATABASES), "{err}");
    }

    #[test]
    fn bad_values_are_named() {
        for (key, value) in [
            (KEY_CLUSTER_URI, "not a url"),
            (KEY_KUSTO_CREDENTIAL, "password"),
            (KEY_CONTAINER, "Bad_Container"),
            (KEY_STATE_CONTAINER, "x"),
            (KEY_DATABASES, "ok, bad'name"),
            (KEY_KUSTO_TIMEOUT, "-3"),
            (KEY_EXPORT_INTERVAL, "60"),
            (KEY_PARTITION_COLUMNS, "Orders=OrderDate"),
            (KEY_OBJECT_PREFIX, "bad'prefix"),
            (KEY_REENABLE_EXPORTS, "yes"),
            (KEY_FULL_PASS_INTERVAL, "-1"),
            (KEY_FULL_PASS_INTERVAL, "1209600"),
            (KEY_BACKFILL, "maybe"),
            (KEY_BACKFILL_BATCH_MAX_ROWS, "0"),
            (KEY_BACKFILL_MAX_CONCURRENT, "two"),
            (KEY_BACKFILL_SPLIT_FLOOR_ROWS, "99999999999"),
            (KEY_BACKFILL_POLL_SECONDS, "0"),
        ] {
            let mut env = local();
            env.retain(|(k, _)| *k != key);
            env.push((key, value));
            let err = Settings::load(&Env::from_pairs(env)).unwrap_err();
            assert!(err.to_string().contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn keys_refused_off_loopback_and_never_printed() {
        let mut env = local();
        env.retain(|(k, _)| *k != STORAGE_PREFIX);
        env.push((
            STORAGE_PREFIX,
            "AccountName=prod;AccountKey=c2VjcmV0;BlobEndpoint=https://prod.blob.core.windows.net;QueueEndpoint=https://prod.queue.core.windows.net",
        ));
        let err = Settings::load(&Env::from_pairs(env))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("loopback") && !err.contains("c2VjcmV0"),
            "{err}"
        );

        let s = Settings::load(&Env::from_pairs(local())).unwrap();
        assert!(!format!("{s:?}").contains(storage::DEV_ACCOUNT_KEY));
    }

    #[test]
    fn devtoken_refused_for_real_clusters() {
        let mut env = local();
        env.retain(|(k, _)| *k != KEY_CLUSTER_URI);
        env.push((
            KEY_CLUSTER_URI,
            "https://mycluster.westeurope.kusto.windows.net",
        ));
        let err = Settings::load(&Env::from_pairs(env)).unwrap_err();
        assert!(err.to_string().contains(KEY_KUSTO_CREDENTIAL));
    }

    #[test]
    fn managed_identity_storage() {
        let mut env = local();
        env.retain(|(k, _)| *k != STORAGE_PREFIX);
        env.push((
            "BackupStorage__blobServiceUri",
            "https://acct.blob.core.windows.net/",
        ));
        env.push((
            "BackupStorage__queueServiceUri",
            "https://acct.queue.core.windows.net",
        ));
        env.push(("BackupStorage__clientId", "1111"));
        let s = Settings::load(&Env::from_pairs(env)).unwrap();
        assert_eq!(
            s.storage.auth,
            StorageAuth::ManagedIdentity {
                client_id: Some("1111".into())
            }
        );
        assert_eq!(
            s.storage.blob_service_uri.as_str(),
            "https://acct.blob.core.windows.net/"
        );
    }
}
