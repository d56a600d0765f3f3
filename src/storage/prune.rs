//! Prune records: how retention removes a day of a table's backup while the catalog stays
//! append-only.
//!
//! Pruning a day is two steps. First one blob, created once (If-None-Match) at
//! `$prune/<db>/<table>/pr-<day>.json`: from then on no artifact of the day is live, for
//! every reader and every `as_of` (the blobs are about to go, so no point in time can be
//! restored from them). Then the day's data folder is emptied and `pr-<day>.done` written. A
//! crash between the two leaves a record without its `.done`: the next prune finishes the
//! deletes. The catalog's lines of the day stay; the record says they are gone. So a
//! cataloged live artifact never lacks its blob.
//!
//! One record per day (not one per prune run): two prunes that decide the same day (the
//! timer's task delivered twice, the CLI beside it) collide on the same name instead of
//! writing two records, each day's deletes are finished and marked on their own, and a
//! reader needs only the listing's names, never the bodies, to know which days are pruned.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::blob::BlobStore;
use super::error::StorageError;
use super::layout::Layout;
use crate::ids::{DatabaseName, Day, TableName};

/// Why and when one day left the backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prune {
    pub day: Day,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The "now" the policy was applied at (the timer's, carried by its task).
    #[serde(with = "time::serde::rfc3339")]
    pub now: OffsetDateTime,
    /// The days the table kept when the day left.
    pub keep_days: u32,
    /// What the catalog counted live for the day just before (for the operator's record).
    pub artifacts: u64,
    pub rows: u64,
    pub bytes: u64,
}

/// The pruned days of a table, each with whether its blobs are deleted yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    days: BTreeMap<Day, bool>,
}

impl Pruned {
    /// Every day with a record: none of its artifacts is live.
    pub fn days(&self) -> BTreeSet<Day> {
        self.days.keys().copied().collect()
    }

    pub fn contains(&self, day: Day) -> bool {
        self.days.contains_key(&day)
    }

    /// Recorded days whose deletes are not finished, oldest first.
    pub fn unfinished(&self) -> Vec<Day> {
        self.days
            .iter()
            .filter(|(_, done)| !**done)
            .map(|(d, _)| *d)
            .collect()
    }
}

/// Which days of a table are pruned: one listing of its prune folder (two short names per
/// pruned day), no bodies read.
pub async fn load(
    blobs: &BlobStore,
    layout: &Layout,
    db: &DatabaseName,
    table: &TableName,
) -> Result<Pruned, StorageError> {
    let paths: Vec<String> = blobs
        .list(&layout.prune_dir(db, table))
        .map_ok(|i| i.path)
        .try_collect()
        .await?;
    let mut pruned = Pruned::default();
    for path in paths {
        if let Some((day, done)) = layout.prune_entry(db, table, &path) {
            let entry = pruned.days.entry(day).or_default();
            *entry |= done;
        }
    }
    Ok(pruned)
}

/// Records that `record.day` leaves the backup, once: false when an earlier prune already
/// recorded it (its record stands).
pub async fn write(
    blobs: &BlobStore,
    layout: &Layout,
    db: &DatabaseName,
    table: &TableName,
    record: &Prune,
) -> Result<bool, StorageError> {
    let path = layout.prune_record(db, table, record.day);
    let body = serde_json::to_vec(record).map_err(|e| StorageError::decode(&path, e))?;
    created(blobs.create_new(&path, Bytes::from(body)).await)
}

/// The record of a pruned day, if there is one (`status` reads it to say what happened).
pub async fn read(
    blobs: &BlobStore,
    layout: &Layout,
    db: &DatabaseName,
    table: &TableName,
    day: Day,
) -> Result<Option<Prune>, StorageError> {
    let path = layout.prune_record(db, table, day);
    match blobs.read_opt(&path).await? {
        Some((body, _)) => serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| StorageError::decode(&path, e)),
        None => Ok(None),
    }
}

/// Marks the day's deletes finished.
pub async fn mark_done(
    blobs: &BlobStore,
    layout: &Layout,
    db: &DatabaseName,
    table: &TableName,
    day: Day,
) -> Result<(), StorageError> {
    let path = layout.prune_done(db, table, day);
    created(blobs.create_new(&path, Bytes::new()).await).map(|_| ())
}

fn created<T>(result: Result<T, StorageError>) -> Result<bool, StorageError> {
    match result {
        Ok(_) => Ok(true),
        Err(e) if e.is_conflict() => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listing_names_say_which_days_are_pruned_and_which_are_finished() {
        let layout = Layout::new("backup");
        let db = DatabaseName::new("Sales").unwrap();
        let t = TableName::new("Orders").unwrap();
        let d1 = Day::parse_folder("20260101").unwrap();
        let d2 = Day::parse_folder("20260102").unwrap();
        let mut pruned = Pruned::default();
        for path in [
            layout.prune_record(&db, &t, d1),
            layout.prune_done(&db, &t, d1),
            layout.prune_record(&db, &t, d2),
            format!("{}stray.txt", layout.prune_dir(&db, &t)),
        ] {
            if let Some((day, done)) = layout.prune_entry(&db, &t, &path) {
                *pruned.days.entry(day).or_default() |= done;
            }
        }
        assert_eq!(pruned.days(), [d1, d2].into());
        assert_eq!(pruned.unfinished(), vec![d2]);
        assert_eq!(
            layout.prune_record(&db, &t, d1),
            "backup/$prune/Sales/Orders/pr-20260101.json"
        );
        let other = TableName::new("Orders2").unwrap();
        assert_eq!(
            layout.prune_entry(&db, &other, &layout.prune_record(&db, &t, d1)),
            None
        );
    }
}
