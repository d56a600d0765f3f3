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

use crate::ids::{ColumnName, DatabaseName};

/// Connection prefix of the backup storage account, in the Functions convention
/// (`BackupStorage=<connection string>` or `BackupStorage__blobServiceUri` etc.). function.json
/// queue triggers name the same prefix as their `connection`.
pub const STORAGE_PREFIX: &str = "BackupStorage";

/// The well-known Azurite account key, public by design; only ever used for loopback endpoints.
const DEV_ACCOUNT: &str = "devstoreaccount1";
const DEV_ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

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

/// How the product authenticates to Kusto.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KustoAuth {
    /// Managed identity: system-assigned (`client_id` None) or user-assigned by client id.
    ManagedIdentity { client_id: Option<String> },
    /// The developer's `az` / `azd` login, for laptops.
    DeveloperTools,
    /// A fixed bearer token, for kusto-sim only.
    StaticToken(Secret),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KustoSettings {
    /// The engine endpoint, e.g. `https://mycluster.westeurope.kusto.windows.net`.
    pub cluster_uri: Url,
    /// OAuth scope for tokens; defaults to `<cluster_uri>/.default`.
    pub token_scope: String,
    pub auth: KustoAuth,
    /// Sent as `x-ms-app` and as the prefix of `x-ms-client-request-id`.
    pub app_name: String,
    /// Per-request timeout, also sent as the `servertimeout` option.
    pub request_timeout: Duration,
}

/// How the product authenticates to Blob and Queue Storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageAuth {
    ManagedIdentity {
        client_id: Option<String>,
    },
    /// An account key, accepted only for loopback endpoints (Azurite).
    SharedKey {
        account: String,
        key: Secret,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageSettings {
    /// Blob service URL without a trailing slash (Azurite rejects `//container`).
    pub blob_service_uri: Url,
    pub queue_service_uri: Url,
    pub auth: StorageAuth,
    /// The container holding backup data, catalog and job state.
    pub container: String,
    /// Path prefix inside the container.
    pub prefix: String,
    /// The internal task queue (fan-out steps).
    pub task_queue: String,
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
    pub log_format: LogFormat,
}

/// What `protect` covers and how it names and configures what it creates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectSettings {
    /// Glob patterns (`*`, `?`) over table names, or `Database/Table` for one database.
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    /// Partition-column overrides, keyed `Database/Table`.
    pub partition_columns: HashMap<String, ColumnName>,
    /// Prefix of every external table and continuous export adx-backup creates; only objects
    /// carrying it are ever altered.
    pub object_prefix: String,
    pub export_interval: Duration,
    /// Turn the IngestionTime policy on where it is off (otherwise the table is reported
    /// unprotected).
    pub enable_ingestion_time_policy: bool,
    /// Re-enable a continuous export found disabled (otherwise it is reported).
    pub reenable_exports: bool,
    /// The blob endpoint as the cluster sees it, for external-table connection strings.
    pub cluster_storage_uri: Url,
    /// How the cluster authenticates to storage, appended to the connection string.
    pub cluster_storage_auth: String,
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

fn parse_service_url(key: &str, raw: &str) -> Result<Url, SettingsError> {
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
pub const KEY_CLUSTER_STORAGE_URI: &str = "AdxBackup__ClusterStorageUri";
pub const KEY_CLUSTER_STORAGE_AUTH: &str = "AdxBackup__ClusterStorageAuth";
/// Read by functions/protect/function.json (the timer's NCRONTAB), not by the binary.
pub const KEY_PROTECT_SCHEDULE: &str = "AdxBackup__ProtectSchedule";

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
    KEY_CLUSTER_STORAGE_URI,
    KEY_CLUSTER_STORAGE_AUTH,
    KEY_PROTECT_SCHEDULE,
    STORAGE_PREFIX,
];

impl Settings {
    pub fn load(env: &Env) -> Result<Self, SettingsError> {
        let storage = load_storage(env)?;
        Ok(Self {
            kusto: load_kusto(env)?,
            protect: load_protect(env, &storage)?,
            storage,
            databases: load_databases(env)?,
            log_format: load_log_format(env)?,
        })
    }
}

fn load_kusto(env: &Env) -> Result<KustoSettings, SettingsError> {
    let cluster_uri = env.url(
        KEY_CLUSTER_URI,
        "the Kusto engine URL, e.g. https://mycluster.westeurope.kusto.windows.net",
    )?;
    let token_scope = env
        .get(KEY_TOKEN_SCOPE)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{}/.default", cluster_uri.as_str().trim_end_matches('/')));
    let client_id = env.get(KEY_KUSTO_CLIENT_ID).map(str::to_owned);
    let auth = match env.get(KEY_KUSTO_CREDENTIAL).unwrap_or("managedidentity") {
        c if c.eq_ignore_ascii_case("managedidentity") => KustoAuth::ManagedIdentity { client_id },
        c if c.eq_ignore_ascii_case("developertools") => KustoAuth::DeveloperTools,
        c if c.eq_ignore_ascii_case("devtoken") => {
            if !is_loopback(&cluster_uri) {
                return Err(invalid(
                    KEY_KUSTO_CREDENTIAL,
                    "devtoken is only for a local kusto-sim on a loopback address; use managedidentity",
                ));
            }
            KustoAuth::StaticToken(Secret::new(env.require(
                KEY_KUSTO_DEV_TOKEN,
                "the bearer token kusto-sim accepts (any text unless kusto-sim is configured otherwise)",
            )?))
        }
        other => {
            return Err(invalid(
                KEY_KUSTO_CREDENTIAL,
                format!("{other:?} is not one of managedidentity, developertools, devtoken"),
            ));
        }
    };
    Ok(KustoSettings {
        cluster_uri,
        token_scope,
        auth,
        app_name: env.get(KEY_APP_NAME).unwrap_or("adxbackup").to_owned(),
        request_timeout: env.duration_secs(KEY_KUSTO_TIMEOUT, 120)?,
    })
}

fn load_storage(env: &Env) -> Result<StorageSettings, SettingsError> {
    let (blob_service_uri, queue_service_uri, auth) = match env.get(STORAGE_PREFIX) {
        Some(conn) => parse_connection_string(conn)?,
        None => identity_storage(env)?,
    };
    let container = env.get(KEY_CONTAINER).unwrap_or("adx-backup").to_owned();
    validate_container(&container)?;
    Ok(StorageSettings {
        blob_service_uri,
        queue_service_uri,
        auth,
        container,
        prefix: env
            .get(KEY_PREFIX)
            .unwrap_or("backup")
            .trim_matches('/')
            .to_owned(),
        task_queue: env
            .get(KEY_TASK_QUEUE)
            .unwrap_or("adxbackup-tasks")
            .to_owned(),
    })
}

fn identity_storage(env: &Env) -> Result<(Url, Url, StorageAuth), SettingsError> {
    let blob_key = format!("{STORAGE_PREFIX}__blobServiceUri");
    let queue_key = format!("{STORAGE_PREFIX}__queueServiceUri");
    let hint = "the backup storage account's service URL (or set BackupStorage to a connection string for Azurite)";
    let blob = env.url(&blob_key, hint)?;
    let queue = env.url(&queue_key, hint)?;
    let cred_key = format!("{STORAGE_PREFIX}__credential");
    match env.get(&cred_key).unwrap_or("managedidentity") {
        c if c.eq_ignore_ascii_case("managedidentity") => {}
        other => {
            return Err(invalid(
                &cred_key,
                format!("{other:?}: only managedidentity is supported"),
            ));
        }
    }
    let client_id = env
        .get(&format!("{STORAGE_PREFIX}__clientId"))
        .map(str::to_owned);
    Ok((blob, queue, StorageAuth::ManagedIdentity { client_id }))
}

/// Parses `UseDevelopmentStorage=true` or an explicit Azurite connection string
/// (`AccountName=..;AccountKey=..;BlobEndpoint=..;QueueEndpoint=..`). Account keys are
/// refused for anything but loopback endpoints: production uses managed identity.
fn parse_connection_string(conn: &str) -> Result<(Url, Url, StorageAuth), SettingsError> {
    let key = STORAGE_PREFIX;
    let parts: HashMap<String, String> = conn
        .split(';')
        .filter(|p| !p.trim().is_empty())
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    if parts
        .get("usedevelopmentstorage")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        let blob = parse_service_url(key, "http://127.0.0.1:10000/devstoreaccount1")?;
        let queue = parse_service_url(key, "http://127.0.0.1:10001/devstoreaccount1")?;
        let auth = StorageAuth::SharedKey {
            account: DEV_ACCOUNT.to_owned(),
            key: Secret::new(DEV_ACCOUNT_KEY),
        };
        return Ok((blob, queue, auth));
    }
    let get = |name: &str| {
        parts
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| invalid(key, format!("connection string has no {name}")))
    };
    let blob = parse_service_url(key, get("blobendpoint")?)?;
    let queue = parse_service_url(key, get("queueendpoint")?)?;
    if !is_loopback(&blob) || !is_loopback(&queue) {
        return Err(invalid(
            key,
            "account keys are accepted only for a local emulator on loopback; in Azure set BackupStorage__blobServiceUri, __queueServiceUri and __credential=managedidentity",
        ));
    }
    let auth = StorageAuth::SharedKey {
        account: get("accountname")?.to_owned(),
        key: Secret::new(get("accountkey")?),
    };
    Ok((blob, queue, auth))
}

/// Blob container names: 3-63 lowercase letters, digits and single dashes.
fn validate_container(name: &str) -> Result<(), SettingsError> {
    let ok = (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err(invalid(
            KEY_CONTAINER,
            format!(
                "{name:?} is not a valid blob container name (3-63 lowercase letters, digits, single dashes)"
            ),
        ))
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

fn load_protect(env: &Env, storage: &StorageSettings) -> Result<ProtectSettings, SettingsError> {
    let list = |key: &str, default: &str| -> Vec<String> {
        env.get(key)
            .unwrap_or(default)
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let object_prefix = env.get(KEY_OBJECT_PREFIX).unwrap_or("adxbk_").to_owned();
    crate::ids::TableName::new(format!("{object_prefix}x"))
        .map_err(|e| invalid(KEY_OBJECT_PREFIX, e.to_string()))?;
    let export_interval = env.duration_secs(KEY_EXPORT_INTERVAL, 300)?;
    // The create-continuous-export page: the interval "must be greater than 1 minute".
    if export_interval <= Duration::from_secs(60) {
        return Err(invalid(
            KEY_EXPORT_INTERVAL,
            "must be more than 60 seconds (Kusto's minimum)",
        ));
    }
    Ok(ProtectSettings {
        include: list(KEY_INCLUDE, "*"),
        exclude: list(KEY_EXCLUDE, ""),
        partition_columns: parse_partition_columns(env.get(KEY_PARTITION_COLUMNS).unwrap_or(""))?,
        object_prefix,
        export_interval,
        enable_ingestion_time_policy: env.bool(KEY_ENABLE_INGESTION_TIME)?,
        reenable_exports: env.bool(KEY_REENABLE_EXPORTS)?,
        cluster_storage_uri: match env.get(KEY_CLUSTER_STORAGE_URI) {
            Some(raw) => parse_service_url(KEY_CLUSTER_STORAGE_URI, raw)?,
            None => storage.blob_service_uri.clone(),
        },
        cluster_storage_auth: env
            .get(KEY_CLUSTER_STORAGE_AUTH)
            .unwrap_or("managed_identity=system")
            .to_owned(),
    })
}

/// `Db/Table=Column,Db/Table2=Column2`.
fn parse_partition_columns(raw: &str) -> Result<HashMap<String, ColumnName>, SettingsError> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let (table, column) = item
                .split_once('=')
                .filter(|(t, _)| t.contains('/'))
                .ok_or_else(|| {
                    invalid(
                        KEY_PARTITION_COLUMNS,
                        format!("{item:?} is not Database/Table=Column"),
                    )
                })?;
            let column = ColumnName::new(column.trim())
                .map_err(|e| invalid(KEY_PARTITION_COLUMNS, e.to_string()))?;
            Ok((table.trim().to_owned(), column))
        })
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
        assert!(matches!(s.storage.auth, StorageAuth::SharedKey { .. }));
        assert_eq!(s.protect.include, vec!["*"]);
        assert!(s.protect.exclude.is_empty());
        assert_eq!(s.protect.export_interval, Duration::from_secs(300));
        assert_eq!(s.protect.cluster_storage_uri, s.storage.blob_service_uri);
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
            (KEY_DATABASES, "ok, bad'name"),
            (KEY_KUSTO_TIMEOUT, "-3"),
            (KEY_EXPORT_INTERVAL, "60"),
            (KEY_PARTITION_COLUMNS, "Orders=OrderDate"),
            (KEY_OBJECT_PREFIX, "bad'prefix"),
            (KEY_REENABLE_EXPORTS, "yes"),
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
        assert!(!format!("{s:?}").contains(DEV_ACCOUNT_KEY));
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
