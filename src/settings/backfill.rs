//! Settings of the backfill capability: whether protect starts one, how big a batch may be,
//! how many run at once, where splitting stops, how often a running batch is polled and how
//! long the janitor waits before it drops a leftover batch table.

use std::time::Duration;

use super::{
    Env, KEY_BACKFILL, KEY_BACKFILL_BATCH_MAX_ROWS, KEY_BACKFILL_MAX_CONCURRENT,
    KEY_BACKFILL_POLL_SECONDS, KEY_BACKFILL_SPLIT_FLOOR_ROWS, KEY_JANITOR_GRACE_SECONDS,
    SettingsError, invalid,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillSettings {
    /// protect starts a backfill for every table it newly protects.
    pub enabled: bool,
    /// A batch is planned with at most this many rows (one ingestion-time bin may hold more;
    /// the adaptive split takes care of it).
    pub batch_max_rows: u64,
    /// At most this many batches export at once (and never more than the cluster's free
    /// export capacity).
    pub max_concurrent_batches: u32,
    /// A batch of this many rows or fewer is not split again: it is failed with Kusto's
    /// message instead.
    pub split_floor_rows: u64,
    /// How long a started export is left alone before it is polled.
    pub poll_interval: Duration,
    /// How long a temporary object of a finished or unknown job is left alone after the
    /// janitor first sees it, before it is dropped.
    pub janitor_grace: Duration,
}

pub(super) fn load_backfill(env: &Env) -> Result<BackfillSettings, SettingsError> {
    let enabled = match env.get(KEY_BACKFILL) {
        None => true,
        Some(v) if v.eq_ignore_ascii_case("on") => true,
        Some(v) if v.eq_ignore_ascii_case("off") => false,
        Some(v) => {
            return Err(invalid(
                KEY_BACKFILL,
                format!("expected on or off, got {v:?}"),
            ));
        }
    };
    let batch_max_rows = positive(env, KEY_BACKFILL_BATCH_MAX_ROWS, 5_000_000)?;
    let split_floor_rows = positive(env, KEY_BACKFILL_SPLIT_FLOOR_ROWS, 10_000)?;
    if split_floor_rows >= batch_max_rows {
        return Err(invalid(
            KEY_BACKFILL_SPLIT_FLOOR_ROWS,
            format!("must be below {KEY_BACKFILL_BATCH_MAX_ROWS} ({batch_max_rows})"),
        ));
    }
    let max_concurrent = positive(env, KEY_BACKFILL_MAX_CONCURRENT, 2)?;
    Ok(BackfillSettings {
        enabled,
        batch_max_rows,
        max_concurrent_batches: u32::try_from(max_concurrent)
            .map_err(|_| invalid(KEY_BACKFILL_MAX_CONCURRENT, "too large"))?,
        split_floor_rows,
        poll_interval: env.duration_secs(KEY_BACKFILL_POLL_SECONDS, 30)?,
        janitor_grace: env.duration_secs(KEY_JANITOR_GRACE_SECONDS, 3600)?,
    })
}

fn positive(env: &Env, key: &str, default: u64) -> Result<u64, SettingsError> {
    match env.get(key) {
        None => Ok(default),
        Some(raw) => raw.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            invalid(
                key,
                format!("expected a positive whole number, got {raw:?}"),
            )
        }),
    }
}
