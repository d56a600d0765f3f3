//! Schema snapshots: `.show database D schema as csl script` on every run, stored only when
//! its content changed, named by the time it was taken so a restore can pick the schema that
//! was valid at a point in time. `latest.json` points at the newest one.
//!
//! adx-backup's own external tables and continuous exports (named with the object prefix)
//! are left out: a restore never re-creates them, and a backfill's batch tables, which come
//! and go, would otherwise store a new snapshot on every pass.

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
    let prefix = &app.settings.protect.object_prefix;
    let mut lines = Vec::new();
    for row in tables.first().into_iter().flat_map(|t| t.rows()) {
        let line = row.str("DatabaseSchemaScript").map_err(|e| step.error(e))?;
        if !is_own_object(line, prefix) {
            lines.push(line.to_owned());
        }
    }
    Ok(lines.join("\n"))
}

/// Whether a script row creates one of adx-backup's own external tables or continuous
/// exports: `.create[-or-alter] external table <name>` or `.create[-or-alter]
/// continuous-export <name>`, the name bare or `['..']` / `[".."]`, starting with `prefix`.
fn is_own_object(row: &str, prefix: &str) -> bool {
    let words: Vec<&str> = row.split_whitespace().take(4).collect();
    let name = match words.as_slice() {
        [".create" | ".create-or-alter", "external", "table", name] => *name,
        [
            ".create" | ".create-or-alter",
            "continuous-export",
            name,
            ..,
        ] => *name,
        _ => return false,
    };
    let bare = name
        .strip_prefix("['")
        .or_else(|| name.strip_prefix("[\""))
        .unwrap_or(name);
    !prefix.is_empty() && bare.starts_with(prefix)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::is_own_object;

    #[test]
    fn only_rows_creating_the_apps_own_objects_are_left_out() {
        for own in [
            ".create-or-alter external table ['adxbk_Raw'] (a:long) kind = storage dataformat = parquet (h@\"x\")",
            ".create external table [\"adxbk_Raw 2\"] (a:long) kind=storage dataformat=parquet ('x')",
            ".create-or-alter external table adxbk_Raw (a:long) kind=storage dataformat=parquet ('x')",
            ".create-or-alter continuous-export ['adxbk_Raw'] over (Raw) to table ['adxbk_Raw'] <| Raw",
        ] {
            assert!(is_own_object(own, "adxbk_"), "{own}");
        }
        for theirs in [
            ".create-or-alter external table ['Lake'] (a:long) kind=storage dataformat=parquet ('x')",
            ".create-or-alter continuous-export ToLake over (Raw) to table ['adxbk_Raw'] <| Raw",
            ".create-merge table ['adxbk_Raw'] (a:long)",
            ".create-or-alter function adxbk_F() { T }",
            ".create materialized-view adxbk_V on table T { T | summarize count() }",
        ] {
            assert!(!is_own_object(theirs, "adxbk_"), "{theirs}");
        }
        assert!(!is_own_object(
            ".create external table ['x'] (a:long) kind=storage dataformat=parquet ('x')",
            ""
        ));
    }
}
