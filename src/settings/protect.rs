//! Settings of the protect capability: scope, names, export interval and what it may fix.

use std::collections::HashMap;
use std::time::Duration;

use url::Url;

use super::storage::StorageSettings;
use super::{
    Env, KEY_CLUSTER_STORAGE_AUTH, KEY_CLUSTER_STORAGE_URI, KEY_ENABLE_INGESTION_TIME, KEY_EXCLUDE,
    KEY_EXPORT_INTERVAL, KEY_FULL_PASS_INTERVAL, KEY_INCLUDE, KEY_LAG_ALERT, KEY_OBJECT_PREFIX,
    KEY_PARTITION_COLUMNS, KEY_REENABLE_EXPORTS, SettingsError, invalid, parse_service_url,
};
use crate::ids::ColumnName;

/// The longest `AdxBackup__FullPassIntervalSeconds` allowed: 7 days.
const MAX_FULL_PASS_INTERVAL: Duration = Duration::from_secs(7 * 86_400);

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
    /// How often the timer's plan re-checks every table, changed or not; in between it
    /// queues only the tables whose schema, objects or export moved.
    pub full_pass_interval: Duration,
    /// An export lagging more than this (now − ExportedTo) is logged as an alert and makes
    /// `status` ask for attention.
    pub lag_alert: Duration,
    /// The blob endpoint as the cluster sees it, for external-table connection strings.
    pub cluster_storage_uri: Url,
    /// How the cluster authenticates to storage, appended to the connection string.
    pub cluster_storage_auth: String,
}

pub(super) fn load_protect(
    env: &Env,
    storage: &StorageSettings,
) -> Result<ProtectSettings, SettingsError> {
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
    let full_pass_interval = full_pass_interval(env)?;
    // Kusto keeps `exported-artifacts` 14 days; the full pass is the backstop that harvests
    // every table, so it must come well inside that.
    if full_pass_interval > MAX_FULL_PASS_INTERVAL {
        return Err(invalid(
            KEY_FULL_PASS_INTERVAL,
            "must be at most 604800 (7 days), well inside the 14 days Kusto keeps exported-artifacts",
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
        full_pass_interval,
        lag_alert: env.duration_secs(KEY_LAG_ALERT, 3600)?,
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

/// Seconds; 0 makes every pass a full pass (every table checked every run).
fn full_pass_interval(env: &Env) -> Result<Duration, SettingsError> {
    match env.get(KEY_FULL_PASS_INTERVAL) {
        None => Ok(Duration::from_secs(86_400)),
        Some(raw) => raw.parse::<u64>().map(Duration::from_secs).map_err(|_| {
            invalid(
                KEY_FULL_PASS_INTERVAL,
                format!("expected a number of seconds (0: every pass), got {raw:?}"),
            )
        }),
    }
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
