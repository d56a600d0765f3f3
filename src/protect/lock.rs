//! One protect run at a time. Two timers can fire together (two instances, a manual run); the
//! lock is a small blob taken with an ETag condition and held until released or expired, so
//! a run that died does not block the next one for longer than a function can run.

use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::ProtectError;
use crate::app::App;
use crate::storage::blob::ETag;

/// As long as the Functions host lets one invocation run (host.json functionTimeout).
const HOLD_FOR: Duration = Duration::from_secs(600);

#[derive(Debug, Serialize, Deserialize)]
struct LockDoc {
    holder: String,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
}

/// A held lock; release it when done.
pub struct RunLock {
    path: String,
    holder: String,
    etag: ETag,
}

impl RunLock {
    /// Takes the lock, or returns None when another live run holds it.
    pub async fn acquire(app: &App) -> Result<Option<RunLock>, ProtectError> {
        let path = app.layout.protect_lock();
        let holder = uuid::Uuid::new_v4().to_string();
        let body = doc(&holder, OffsetDateTime::now_utc() + HOLD_FOR);
        let current = app
            .blobs
            .read_opt(&path)
            .await
            .map_err(|e| ProtectError::storage("read the protect lock", e))?;
        let written = match current {
            None => app.blobs.create_new(&path, body).await,
            Some((raw, etag)) => {
                // Not a lock this version wrote: taking it over could run two protects at once,
                // so stop and say which blob to look at.
                let held: LockDoc = crate::storage::state::decode(&path, &raw).map_err(|e| {
                    ProtectError::storage(
                        "read the protect run lock (delete the blob if no protect run is going on)",
                        e,
                    )
                })?;
                if held.expires_at > OffsetDateTime::now_utc() {
                    tracing::info!(holder = %held.holder, expires_at = %held.expires_at, "protect lock is held; skipping this run");
                    return Ok(None);
                }
                app.blobs.write_if_match(&path, body, &etag).await
            }
        };
        match written {
            Ok(etag) => Ok(Some(RunLock { path, holder, etag })),
            Err(e) if e.is_conflict() => Ok(None),
            Err(e) => Err(ProtectError::storage("take the protect lock", e)),
        }
    }

    /// Lets the next run start at once. Losing the lock meanwhile (it expired and another
    /// run took it) is not an error.
    pub async fn release(self, app: &App) -> Result<(), ProtectError> {
        let body = doc(&self.holder, OffsetDateTime::now_utc());
        match app.blobs.write_if_match(&self.path, body, &self.etag).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_conflict() => Ok(()),
            Err(e) => Err(ProtectError::storage("release the protect lock", e)),
        }
    }
}

fn doc(holder: &str, expires_at: OffsetDateTime) -> Bytes {
    let doc = LockDoc {
        holder: holder.to_owned(),
        expires_at,
    };
    Bytes::from(serde_json::to_vec(&doc).unwrap_or_default())
}
