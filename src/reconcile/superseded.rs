//! Deleting the files a swap superseded, once the swap is older than
//! `AdxBackup__ReconcileSupersededRetentionSeconds` (unset or 0: never; the storage
//! lifecycle policy removes them with the rest of the old data).
//!
//! Run after each verification of a table (the verify timer's task), the flow that already
//! runs reconcile, so it costs one listing of the table's supersede records per table and
//! day when nothing is due. For each swap older than the retention whose files are not all
//! deleted yet:
//!
//! 1. a deletion record is written first: from then on a restore `asOf` before the swap is
//!    refused ([`crate::storage::supersede::LiveSet::unavailable`]), before any file goes;
//! 2. one pass over the table's catalog finds, for the swaps' days, the files live now
//!    (never touched) and the files each swap superseded (live just before it, not after:
//!    [`SupersededBy`]); a path in both is kept;
//! 3. each superseded file is deleted (a blob already gone is fine, so a crash or a retry
//!    just deletes again), then the record is marked done.
//!
//! Never before the swap is recorded: only files a recorded swap superseded are candidates;
//! an unfinished attempt's segment was never live, so it is not among them (the next attempt
//! removes its files).

use std::collections::{BTreeSet, HashSet};

use futures::TryStreamExt;
use time::OffsetDateTime;

use crate::app::App;
use crate::ids::{Day, TableRef};
use crate::storage::StorageError;
use crate::storage::catalog::Catalog;
use crate::storage::supersede::{self, LiveSet, Supersede, SupersededBy, SupersededDeleted};

/// Deletes the files superseded by swaps of `t` recorded at least the retention before `now`;
/// returns how many files it deleted (or found gone).
pub async fn delete_superseded(
    app: &App,
    t: &TableRef,
    now: OffsetDateTime,
) -> Result<usize, StorageError> {
    let Some(retention) = app.settings.reconcile.superseded_retention else {
        return Ok(0);
    };
    let cutoff = now - time::Duration::try_from(retention).unwrap_or(time::Duration::MAX);
    let (db, table) = (&t.database, &t.table);
    let records = supersede::records(&app.blobs, &app.layout, db, table).await?;
    if !records.iter().any(|r| r.at <= cutoff) {
        return Ok(0);
    }
    let marked = supersede::deletions(&app.blobs, &app.layout, db, table).await?;
    let due: Vec<&Supersede> = records
        .iter()
        .filter(|r| r.at <= cutoff)
        .filter(|r| {
            !marked
                .iter()
                .any(|m| m.job == r.job && m.day == r.day && m.done)
        })
        .collect();
    if due.is_empty() {
        return Ok(0);
    }
    let mut marks = Vec::new();
    for r in &due {
        let mark = marked
            .iter()
            .find(|m| m.job == r.job && m.day == r.day)
            .cloned()
            .unwrap_or(SupersededDeleted {
                day: r.day,
                job: r.job.clone(),
                swap_at: r.at,
                deleted_at: now,
                done: false,
            });
        supersede::record_deletion(&app.blobs, &app.layout, db, table, &mark).await?;
        marks.push(mark);
    }
    let doomed = doomed(app, t, &records, &due).await?;
    for path in &doomed {
        app.blobs.delete(path).await?;
    }
    for mut mark in marks {
        mark.done = true;
        supersede::record_deletion(&app.blobs, &app.layout, db, table, &mark).await?;
    }
    tracing::info!(database = %db, table = %table, swaps = due.len(), files = doomed.len(),
        "deleted the files reconcile swaps superseded (AdxBackup__ReconcileSupersededRetentionSeconds)");
    Ok(doomed.len())
}

/// The paths `due` superseded and no live artifact uses, from one pass over the catalog
/// (only the artifacts of the swaps' days are kept in memory).
async fn doomed(
    app: &App,
    t: &TableRef,
    records: &[Supersede],
    due: &[&Supersede],
) -> Result<BTreeSet<String>, StorageError> {
    let days: BTreeSet<Day> = due.iter().map(|r| r.day).collect();
    let now_live = LiveSet::new(records.iter().cloned(), None);
    let superseded: Vec<SupersededBy> = due.iter().map(|r| SupersededBy::new(records, r)).collect();
    let segments: Vec<String> = app
        .blobs
        .list(&app.layout.catalog_dir(&t.database, &t.table))
        .map_ok(|i| i.path)
        .try_collect()
        .await?;
    let catalog = Catalog::new(&app.blobs, &app.layout);
    let mut live = HashSet::new();
    let mut doomed = BTreeSet::new();
    for segment in &segments {
        for a in catalog.read_path(segment).await? {
            if !days.contains(&a.day) {
                continue;
            }
            if now_live.is_live(segment, &a) {
                live.insert(a.path);
            } else if superseded.iter().any(|s| s.contains(segment, &a)) {
                doomed.insert(a.path);
            }
        }
    }
    doomed.retain(|p| !live.contains(p));
    Ok(doomed)
}
