//! Schema snapshots: `.show database D schema as csl script` on every run, stored only when
//! its content changed, named by the time it was taken so a restore can pick the schema that
//! was valid at a point in time. `latest.json` points at the newest one.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::ProtectError;
use crate::app::App;
use crate::ids::DatabaseName;
use crate::kusto::{Step, command};
use crate::storage::state::Versioned;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct LatestSnapshot {
    hash: String,
    path: String,
    #[serde(with = "time::serde::rfc3339::option")]
    taken_at: Option<OffsetDateTime>,
}

/// Takes a snapshot of `db`; true when a new version was stored.
pub async fn snapshot(app: &App, db: &DatabaseName) -> Result<bool, ProtectError> {
    let script = read_script(app, db).await?;
    let hash = hex(&Sha256::digest(script.as_bytes()));
    let layout = &app.layout;
    let latest_path = layout.schema_latest(db);
    let mut latest = Versioned::load_or(&app.blobs, &latest_path, LatestSnapshot::default)
        .await
        .map_err(|e| ProtectError::storage(format!("read the schema pointer of {db}"), e))?;
    if latest.value.hash == hash {
        return Ok(false);
    }
    let taken_at = OffsetDateTime::now_utc();
    let path = layout.schema_snapshot(db, taken_at, &hash);
    // Written once, like everything in the data container: a blob of the same name is this
    // snapshot (the name is its time to the nanosecond and its hash).
    match app.blobs.create_new(&path, Bytes::from(script)).await {
        Ok(_) => {}
        Err(e) if e.is_conflict() => {}
        Err(e) => {
            return Err(ProtectError::storage(
                format!("store the schema snapshot of {db}"),
                e,
            ));
        }
    }
    latest.value = LatestSnapshot {
        hash,
        path: path.clone(),
        taken_at: Some(taken_at),
    };
    match latest.save(&app.blobs, &latest_path).await {
        Ok(()) => {}
        // Another run stored the same change at the same time; its pointer is as good.
        Err(e) if e.is_conflict() => {}
        Err(e) => {
            return Err(ProtectError::storage(
                format!("update the schema pointer of {db}"),
                e,
            ));
        }
    }
    tracing::info!(database = %db, path, "schema snapshot stored");
    Ok(true)
}

async fn read_script(app: &App, db: &DatabaseName) -> Result<String, ProtectError> {
    let step = Step::database(db, "read the database schema script");
    let tables = step
        .mgmt(&app.kusto, &command::show_database_schema_csl_script(db))
        .await?;
    let mut lines = Vec::new();
    for row in tables.first().into_iter().flat_map(|t| t.rows()) {
        lines.push(
            row.str("DatabaseSchemaScript")
                .map_err(|e| step.error(e))?
                .to_owned(),
        );
    }
    Ok(lines.join("\n"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
