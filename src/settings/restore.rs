//! Settings of the restore capability: its request queue, how it cuts a backup into chunks,
//! how many chunks it keeps in flight, and how it paces its polls.

use std::time::Duration;

use url::Url;

use super::{
    Env, KEY_RESTORE_CHUNK_BLOBS, KEY_RESTORE_CHUNK_BYTES, KEY_RESTORE_CHUNKS_IN_FLIGHT,
    KEY_RESTORE_INGEST_TIMEOUT, KEY_RESTORE_POLL, KEY_RESTORE_QUEUE, KEY_RESTORE_TARGETS,
    SettingsError, invalid, parse_service_url,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreSettings {
    /// The queue restore requests are posted to (the `restore` function's trigger).
    pub request_queue: String,
    /// A chunk closes at this many blobs...
    pub chunk_max_blobs: usize,
    /// ...or at this many bytes, whichever comes first.
    pub chunk_max_bytes: u64,
    /// Chunks being ingested at once, per job: bounds the target's ingestion queue and the
    /// task queue.
    pub chunks_in_flight: usize,
    /// Delay of the follow-up message that looks at a job or chunk again.
    pub poll: Duration,
    /// How long a blob may be neither ingested nor reported failed before it is reported lost.
    pub ingest_timeout: Duration,
    /// Clusters a restore may write to besides the source cluster. A request names its target,
    /// and the app sends its own token there: without this list, whoever can post to the
    /// restore queue could send that token to any host.
    pub extra_targets: Vec<Url>,
}

pub(super) fn load_restore(env: &Env) -> Result<RestoreSettings, SettingsError> {
    Ok(RestoreSettings {
        request_queue: env
            .get(KEY_RESTORE_QUEUE)
            .unwrap_or("adxbackup-restore")
            .to_owned(),
        chunk_max_blobs: positive(env, KEY_RESTORE_CHUNK_BLOBS, 100)?,
        chunk_max_bytes: positive(env, KEY_RESTORE_CHUNK_BYTES, 1 << 30)?,
        chunks_in_flight: positive(env, KEY_RESTORE_CHUNKS_IN_FLIGHT, 20)?,
        poll: env.duration_secs(KEY_RESTORE_POLL, 30)?,
        ingest_timeout: env.duration_secs(KEY_RESTORE_INGEST_TIMEOUT, 6 * 3600)?,
        extra_targets: env
            .get(KEY_RESTORE_TARGETS)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|raw| !raw.is_empty())
            .map(|raw| parse_service_url(KEY_RESTORE_TARGETS, raw))
            .collect::<Result<_, _>>()?,
    })
}

fn positive<T: TryFrom<u64>>(env: &Env, key: &str, default: T) -> Result<T, SettingsError> {
    match env.get(key) {
        None => Ok(default),
        Some(raw) => raw
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .and_then(|n| T::try_from(n).ok())
            .ok_or_else(|| {
                invalid(
                    key,
                    format!("expected a positive whole number, got {raw:?}"),
                )
            }),
    }
}
