//! Settings of the backup storage account: managed identity in Azure, an Azurite connection
//! string (keys accepted for loopback endpoints only) on a laptop and in tests.

use std::collections::HashMap;

use url::Url;

use super::{
    Env, KEY_CONTAINER, KEY_PREFIX, KEY_STATE_CONTAINER, KEY_TASK_QUEUE, STORAGE_PREFIX, Secret,
    SettingsError, invalid, is_loopback, parse_service_url,
};

/// The well-known Azurite account key, public by design; only ever used for loopback endpoints.
const DEV_ACCOUNT: &str = "devstoreaccount1";
pub(super) const DEV_ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

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
    /// The container holding backup data, catalog, schema snapshots, supersede and prune
    /// records: blobs written once, so it may carry a container-level immutability policy.
    pub container: String,
    /// The container of the documents adx-backup rewrites or deletes (`$state/`, the schema
    /// pointer); the data container unless set (docs/retention.md, "Immutability").
    pub state_container: String,
    /// Path prefix inside the container.
    pub prefix: String,
    /// The internal task queue (fan-out steps).
    pub task_queue: String,
}

pub(super) fn load_storage(env: &Env) -> Result<StorageSettings, SettingsError> {
    let (blob_service_uri, queue_service_uri, auth) = match env.get(STORAGE_PREFIX) {
        Some(conn) => parse_connection_string(conn)?,
        None => identity_storage(env)?,
    };
    let container = env.get(KEY_CONTAINER).unwrap_or("adx-backup").to_owned();
    validate_container(KEY_CONTAINER, &container)?;
    let state_container = env
        .get(KEY_STATE_CONTAINER)
        .filter(|c| !c.is_empty())
        .unwrap_or(&container)
        .to_owned();
    validate_container(KEY_STATE_CONTAINER, &state_container)?;
    Ok(StorageSettings {
        blob_service_uri,
        queue_service_uri,
        auth,
        container,
        state_container,
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
fn validate_container(key: &str, name: &str) -> Result<(), SettingsError> {
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
            key,
            format!(
                "{name:?} is not a valid blob container name (3-63 lowercase letters, digits, single dashes)"
            ),
        ))
    }
}
