//! Running totals of a table's catalog (`$state/catalog-totals/<db>/<table>.json`): per day,
//! the artifacts, rows and bytes cataloged, so `status` and `verify` never read the catalog
//! itself. A refresh reads only what was appended since the last one: continuous-export
//! segments from the next `seg-<n>` not yet counted, and backfill segments (`bf-*`, one per
//! batch, so few) not in the counted set. Only live artifacts count: a day a reconcile swapped
//! (`supersede`) is counted again from its new set once, when the refresh first sees the swap. Saved with an ETag condition like every state
//! document; two refreshes that race lose nothing, the loser is retried from a fresh read.

use std::collections::{BTreeMap, BTreeSet};

use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::blob::BlobStore;
use super::catalog::{Artifact, Catalog};
use super::error::StorageError;
use super::layout::Layout;
use super::state::Versioned;
use super::supersede::{LiveSet, Supersede};
use crate::ids::{DatabaseName, Day, TableName};

/// What the catalog holds for one day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayTotals {
    pub artifacts: u64,
    pub rows: u64,
    pub bytes: u64,
}

/// The totals document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogTotals {
    /// The continuous-export segment (`seg-<n>`) the next refresh reads first.
    pub next_segment: u64,
    /// Backfill segments already counted, by blob name (`bf-<job>-<batch>.jsonl`).
    pub backfill_segments: BTreeSet<String>,
    pub days: BTreeMap<Day, DayTotals>,
    /// Per reconciled day, the time of the swap its totals reflect (see `supersede`).
    #[serde(default)]
    pub swaps: BTreeMap<Day, String>,
    /// How many days retention pruned, and the newest, as the last refresh saw their prune
    /// records (`status` compares the newest with what the policy keeps).
    #[serde(default)]
    pub pruned_days: u64,
    #[serde(default)]
    pub newest_pruned: Option<Day>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub updated_at: Option<OffsetDateTime>,
}

impl CatalogTotals {
    pub fn total(&self) -> DayTotals {
        self.days
            .values()
            .fold(DayTotals::default(), |a, d| DayTotals {
                artifacts: a.artifacts + d.artifacts,
                rows: a.rows + d.rows,
                bytes: a.bytes + d.bytes,
            })
    }

    /// The oldest and newest dated day (rows without a date are not a day of history).
    pub fn day_range(&self) -> Option<(Day, Day)> {
        let mut dated = self.days.keys().copied().filter(|d| *d != Day::UNDATED);
        let first = dated.next()?;
        Some((first, dated.next_back().unwrap_or(first)))
    }

    fn add<'a>(&mut self, artifacts: impl IntoIterator<Item = &'a Artifact>) {
        for a in artifacts {
            let day = self.days.entry(a.day).or_default();
            day.artifacts += 1;
            day.rows += a.rows;
            day.bytes += a.bytes.unwrap_or(0);
        }
    }
}

/// Reads the totals as last saved (empty when never refreshed).
pub async fn load(
    blobs: &BlobStore,
    layout: &Layout,
    db: &DatabaseName,
    table: &TableName,
) -> Result<Option<CatalogTotals>, StorageError> {
    let path = layout.catalog_totals(db, table);
    match blobs.read_opt(&path).await? {
        Some((body, _)) => super::state::decode(&path, &body).map(Some),
        None => Ok(None),
    }
}

/// Brings the table's totals up to date after its catalog grew (a harvest, a backfill batch),
/// so `status` shows the new files at once. A failure only delays them (the next refresh
/// reads every segment since), so it is logged, not raised.
pub async fn refresh_after_append(
    blobs: &BlobStore,
    layout: &Layout,
    db: &DatabaseName,
    table: &TableName,
) {
    if let Err(err) = refresh(blobs, layout, db, table).await {
        tracing::warn!(database = %db, table = %table, error = %err,
            "catalog totals not refreshed; the next harvest, backfill batch or verification catches up");
    }
}

/// How often [`refresh`] starts again after another refresh saved first.
const REFRESH_ATTEMPTS: usize = 4;

/// Counts what was appended to the table's catalog since the last refresh, saves, and returns
/// the totals. When another refresh saved first (a twin delivery, a harvest beside a
/// verification), it starts again from what that one saved; `StorageError::Conflict` comes
/// back only if that keeps happening.
pub async fn refresh(
    blobs: &BlobStore,
    layout: &Layout,
    db: &DatabaseName,
    table: &TableName,
) -> Result<CatalogTotals, StorageError> {
    let mut attempt = 1;
    loop {
        match refresh_once(blobs, layout, db, table).await {
            Err(e) if e.is_conflict() && attempt < REFRESH_ATTEMPTS => attempt += 1,
            done => return done,
        }
    }
}

async fn refresh_once(
    blobs: &BlobStore,
    layout: &Layout,
    db: &DatabaseName,
    table: &TableName,
) -> Result<CatalogTotals, StorageError> {
    let path = layout.catalog_totals(db, table);
    let mut doc = Versioned::load_or(blobs, &path, CatalogTotals::default).await?;
    let catalog = Catalog::new(blobs, layout);
    let live = super::supersede::load(blobs, layout, db, table, None).await?;
    let mut changed = false;
    while let Some(segment) = catalog
        .read_segment(db, table, doc.value.next_segment)
        .await?
    {
        let name = layout.catalog_segment(db, table, doc.value.next_segment);
        doc.value
            .add(segment.iter().filter(|a| live.is_live(&name, a)));
        doc.value.next_segment += 1;
        changed = true;
    }
    let backfill: Vec<String> = blobs
        .list(&layout.backfill_catalog_prefix(db, table))
        .map_ok(|item| item.path)
        .try_collect()
        .await?;
    for segment_path in backfill {
        let name = segment_path
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        if doc.value.backfill_segments.contains(&name) {
            continue;
        }
        let artifacts = catalog.read_path(&segment_path).await?;
        doc.value
            .add(artifacts.iter().filter(|a| live.is_live(&name, a)));
        doc.value.backfill_segments.insert(name);
        changed = true;
    }
    for swap in live.swaps() {
        let at = swap
            .at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        if doc.value.swaps.get(&swap.day) == Some(&at) {
            continue;
        }
        recount_day(&catalog, layout, db, table, &live, swap, &mut doc.value).await?;
        doc.value.swaps.insert(swap.day, at);
        changed = true;
    }
    // A pruned day is not restorable: it leaves the totals (its lines stay in the catalog).
    for day in live.pruned() {
        changed |= doc.value.days.remove(day).is_some();
    }
    let (count, newest) = (live.pruned().count() as u64, live.pruned().max().copied());
    if (count, newest) != (doc.value.pruned_days, doc.value.newest_pruned) {
        (doc.value.pruned_days, doc.value.newest_pruned) = (count, newest);
        changed = true;
    }
    if changed || doc.etag.is_none() {
        doc.value.updated_at = Some(OffsetDateTime::now_utc());
        doc.save(blobs, &path).await?;
    }
    Ok(doc.value)
}

/// Counts a newly swapped day again from its live set: the reconcile segments the swap names
/// and the export segments harvested since its bound (few), never the whole catalog.
async fn recount_day(
    catalog: &Catalog<'_>,
    layout: &Layout,
    db: &DatabaseName,
    table: &TableName,
    live: &LiveSet,
    swap: &Supersede,
    totals: &mut CatalogTotals,
) -> Result<(), StorageError> {
    totals.days.remove(&swap.day);
    let mut paths: Vec<String> = swap
        .segments
        .iter()
        .map(|name| format!("{}{name}", layout.catalog_dir(db, table)))
        .collect();
    paths.extend(
        (swap.export_segments_before..totals.next_segment)
            .map(|n| layout.catalog_segment(db, table, n)),
    );
    for path in paths {
        let artifacts = catalog.read_path(&path).await?;
        totals.add(
            artifacts
                .iter()
                .filter(|a| a.day == swap.day && live.is_live(&path, a)),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::catalog::ArtifactSource;

    fn artifact(day: &str, rows: u64, bytes: Option<u64>) -> Artifact {
        Artifact {
            path: format!("b/{day}/x.parquet"),
            day: Day::parse_folder(day).unwrap(),
            rows,
            bytes,
            source: ArtifactSource::ContinuousExport {
                export: crate::ids::ExportName::new("e").unwrap(),
            },
            produced_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn totals_add_up_per_day_and_the_range_skips_undated_rows() {
        let mut t = CatalogTotals::default();
        t.add(&[
            artifact("20240115", 10, Some(100)),
            artifact("20240115", 5, None),
            artifact("00010101", 7, Some(1)),
            artifact("20240117", 1, Some(2)),
        ]);
        let day = t.days[&Day::parse_folder("20240115").unwrap()];
        assert_eq!((day.artifacts, day.rows, day.bytes), (2, 15, 100));
        let all = t.total();
        assert_eq!((all.artifacts, all.rows, all.bytes), (4, 23, 103));
        let (first, last) = t.day_range().unwrap();
        assert_eq!(
            (first.folder(), last.folder()),
            ("20240115".into(), "20240117".into())
        );
        assert_eq!(CatalogTotals::default().day_range(), None);
        let json = serde_json::to_string(&t).unwrap();
        assert!(
            json.contains(r#""20240115":{"artifacts":2,"rows":15,"bytes":100}"#),
            "{json}"
        );
    }

    #[test]
    fn damaged_totals_are_errors_not_panics() {
        let mut t = CatalogTotals {
            next_segment: 7,
            backfill_segments: ["bf-bf-1-b000001.jsonl".to_owned()].into(),
            updated_at: Some(OffsetDateTime::UNIX_EPOCH),
            ..CatalogTotals::default()
        };
        t.add(&[
            artifact("20240115", 10, Some(100)),
            artifact("00010101", 7, None),
            artifact("20240117", 1, Some(2)),
        ]);
        t.swaps.insert(
            Day::parse_folder("20240115").unwrap(),
            "2024-01-20T00:00:00Z".into(),
        );
        let sample = serde_json::to_vec(&t).unwrap();
        crate::mutate::check(0x7074, &[&sample], |body| {
            let totals: CatalogTotals = super::super::state::decode("totals", body)?;
            let _ = (totals.total(), totals.day_range());
            Ok::<_, StorageError>(())
        });
    }
}
