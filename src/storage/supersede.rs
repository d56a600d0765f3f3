//! Supersede records: how a reconcile swaps one day of a table's backup to a re-exported set
//! of artifacts while the catalog stays append-only.
//!
//! A reconcile catalogs its files in its own segments (`rc-<job>-<batch>.jsonl`), which are
//! not live by themselves. The swap is one blob, created once (If-None-Match) at
//! `$supersede/<db>/<table>/sup-<day>-<n>.json`: from its time `at` on, the day's artifacts
//! the re-export covered (backfill segments and continuous-export segments numbered below
//! `export_segments_before`) are superseded and the reconcile segments it names are live;
//! continuous-export segments cataloged later stay live (rows the export harvested after the
//! reconcile's bound). Before the record exists the old set is live, after it the new one: a
//! crash at any point leaves exactly one live set.
//!
//! Every reader of live artifacts (restore planning, catalog totals for status and verify)
//! asks [`LiveSet::is_live`], built by [`load`] with the reader's `as_of`: a restore as of a
//! time before the swap sees the day as it was. Records are few (one per reconciled day and
//! swap), so a reader loads them all before streaming the catalog page by page.
//!
//! With a retention (`AdxBackup__ReconcileSupersededRetentionSeconds`), the files a swap
//! superseded ([`SupersededBy`]) are deleted once the swap is older than it. A deletion
//! record ([`SupersededDeleted`]) is written before the first file goes, and a live set read
//! as of a time before such a swap lists it as [`LiveSet::unavailable`]: a restore as of then
//! is refused rather than silently restoring less.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::blob::BlobStore;
use super::catalog::Artifact;
use super::error::StorageError;
use super::layout::Layout;
use crate::ids::{DatabaseName, Day, JobId, TableName};

/// One swap of one day to a reconciled set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Supersede {
    pub day: Day,
    /// When the swap was recorded; a reader as of an earlier time ignores the record.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The reconcile job that re-exported the day.
    pub job: JobId,
    /// Continuous-export segments numbered below this were cataloged before the reconcile
    /// read its bound: their artifacts of the day are superseded; later ones stay live.
    pub export_segments_before: u64,
    /// The reconcile segments (blob names, `rc-<job>-<batch>.jsonl`) live for the day.
    pub segments: BTreeSet<String>,
    /// Rows of the new set, counted equal to the source's count before the swap.
    pub rows: u64,
}

/// What kind of catalog segment a blob name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SegmentKind {
    /// `seg-<n>.jsonl`, a harvest of the continuous export.
    Export(u64),
    /// `bf-*.jsonl`, a backfill batch.
    Backfill,
    /// `rc-*.jsonl`, a reconcile batch.
    Reconcile,
}

fn segment_kind(name: &str) -> Option<SegmentKind> {
    if let Some(n) = name
        .strip_prefix("seg-")
        .and_then(|r| r.strip_suffix(".jsonl"))
    {
        return n.parse().ok().map(SegmentKind::Export);
    }
    if name.starts_with("bf-") {
        return Some(SegmentKind::Backfill);
    }
    name.starts_with("rc-").then_some(SegmentKind::Reconcile)
}

/// The files a swap superseded were deleted (or are being: the record comes first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupersededDeleted {
    pub day: Day,
    /// The swap whose superseded files these were.
    pub job: JobId,
    #[serde(with = "time::serde::rfc3339")]
    pub swap_at: OffsetDateTime,
    /// When the deletion started.
    #[serde(with = "time::serde::rfc3339")]
    pub deleted_at: OffsetDateTime,
    /// Every file was deleted; until then the next run deletes again (a gone blob is fine).
    pub done: bool,
}

/// The newest swap of every reconciled day, as of a time: which artifacts are live.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveSet {
    latest: BTreeMap<Day, Supersede>,
    /// Days retention pruned ([`super::prune`]): nothing of them is live, whatever `as_of`.
    pruned: BTreeSet<Day>,
    /// Swaps after the set's time whose superseded files were deleted: the set names files
    /// that are gone.
    unavailable: Vec<SupersededDeleted>,
}

impl LiveSet {
    /// Keeps, per day, the newest record at or before `as_of` (every record without).
    pub fn new(
        records: impl IntoIterator<Item = Supersede>,
        as_of: Option<OffsetDateTime>,
    ) -> Self {
        let mut latest: BTreeMap<Day, Supersede> = BTreeMap::new();
        for r in records
            .into_iter()
            .filter(|r| as_of.is_none_or(|t| r.at <= t))
        {
            match latest.get(&r.day) {
                Some(kept) if kept.at > r.at => {}
                _ => {
                    latest.insert(r.day, r);
                }
            }
        }
        Self {
            latest,
            pruned: BTreeSet::new(),
            unavailable: Vec::new(),
        }
    }

    /// The set as of `as_of`, knowing which swaps had their superseded files deleted: those
    /// recorded after `as_of` make the set incomplete (none without `as_of`: the newest swaps
    /// are in force, and only what they superseded is deleted).
    pub fn with_deletions(
        mut self,
        deleted: impl IntoIterator<Item = SupersededDeleted>,
        as_of: Option<OffsetDateTime>,
    ) -> Self {
        self.unavailable = deleted
            .into_iter()
            .filter(|d| as_of.is_some_and(|t| d.swap_at > t))
            .collect();
        self
    }

    /// Days whose files as of this set's time were deleted after a later swap.
    pub fn unavailable(&self) -> &[SupersededDeleted] {
        &self.unavailable
    }

    /// The same set without the days retention pruned.
    pub fn without(mut self, pruned: BTreeSet<Day>) -> Self {
        self.pruned = pruned;
        self
    }

    /// The pruned days this set leaves out.
    pub fn pruned(&self) -> impl Iterator<Item = &Day> {
        self.pruned.iter()
    }

    /// Whether `artifact`, read from the catalog segment named `segment` (a blob path or
    /// name), is live. A reconcile segment no record names is an unfinished attempt: never
    /// live. A segment of unknown kind counts as the export's, as before reconcile existed.
    pub fn is_live(&self, segment: &str, artifact: &Artifact) -> bool {
        let name = segment.rsplit('/').next().unwrap_or(segment);
        let kind = segment_kind(name);
        if self.pruned.contains(&artifact.day) {
            return false;
        }
        match (self.latest.get(&artifact.day), kind) {
            (None, Some(SegmentKind::Reconcile)) => false,
            (None, _) => true,
            (Some(r), Some(SegmentKind::Reconcile)) => r.segments.contains(name),
            (Some(_), Some(SegmentKind::Backfill)) => false,
            (Some(r), Some(SegmentKind::Export(n))) => n >= r.export_segments_before,
            (Some(_), None) => true,
        }
    }

    /// The swaps in force, one per reconciled day.
    pub fn swaps(&self) -> impl Iterator<Item = &Supersede> {
        self.latest.values()
    }
}

/// Every supersede record of a table (few: one per reconciled day and swap), in force as of
/// `as_of` (all without), less the days retention pruned.
pub async fn load(
    blobs: &BlobStore,
    layout: &Layout,
    db: &DatabaseName,
    table: &TableName,
    as_of: Option<OffsetDateTime>,
) -> Result<LiveSet, StorageError> {
    let pruned = super::prune::load(blobs, layout, db, table).await?;
    let set = LiveSet::new(records(blobs, layout, db, table).await?, as_of).without(pruned.days());
    // Deletions only matter to a reader as of a past time (see `with_deletions`), so the
    // readers of the present (catalog totals, after every harvest) list nothing more.
    Ok(match as_of {
        None => set,
        Some(_) => set.with_deletions(deletions(blobs, layout, db, table).await?, as_of),
    })
}

/// The files one swap superseded: of its day, live just before it and not after it (an
/// unfinished attempt's segment was never live, so it is not among them).
#[derive(Debug, Clone)]
pub struct SupersededBy {
    day: Day,
    before: LiveSet,
    after: LiveSet,
}

impl SupersededBy {
    pub fn new(records: &[Supersede], swap: &Supersede) -> Self {
        let of_day = |keep: &dyn Fn(&Supersede) -> bool| {
            LiveSet::new(
                records
                    .iter()
                    .filter(|r| r.day == swap.day && keep(r))
                    .cloned(),
                None,
            )
        };
        Self {
            day: swap.day,
            before: of_day(&|r| r.at < swap.at),
            after: of_day(&|r| r.at <= swap.at),
        }
    }

    pub fn contains(&self, segment: &str, artifact: &Artifact) -> bool {
        artifact.day == self.day
            && self.before.is_live(segment, artifact)
            && !self.after.is_live(segment, artifact)
    }
}

/// Every deletion record of a table.
pub async fn deletions(
    blobs: &BlobStore,
    layout: &Layout,
    db: &DatabaseName,
    table: &TableName,
) -> Result<Vec<SupersededDeleted>, StorageError> {
    let items: Vec<String> = blobs
        .list(&layout.superseded_deletions_dir(db, table))
        .map_ok(|i| i.path)
        .try_collect()
        .await?;
    let mut out = Vec::with_capacity(items.len());
    for path in items {
        let (body, _) = blobs.read(&path).await?;
        out.push(super::state::decode(&path, &body)?);
    }
    Ok(out)
}

/// Writes (or overwrites: it only ever goes from not done to done) a deletion record.
pub async fn record_deletion(
    blobs: &BlobStore,
    layout: &Layout,
    db: &DatabaseName,
    table: &TableName,
    record: &SupersededDeleted,
) -> Result<(), StorageError> {
    let path = layout.superseded_deletion(db, table, record.day, &record.job);
    let body = serde_json::to_vec(record).map_err(|e| StorageError::decode(&path, e))?;
    blobs.write(&path, Bytes::from(body)).await.map(|_| ())
}

/// Every supersede record of a table, in listing order (by day, then swap).
pub async fn records(
    blobs: &BlobStore,
    layout: &Layout,
    db: &DatabaseName,
    table: &TableName,
) -> Result<Vec<Supersede>, StorageError> {
    let items: Vec<String> = blobs
        .list(&layout.supersede_dir(db, table))
        .map_ok(|i| i.path)
        .try_collect()
        .await?;
    let mut out = Vec::with_capacity(items.len());
    for path in items {
        let (body, _) = blobs.read(&path).await?;
        out.push(super::state::decode(&path, &body)?);
    }
    Ok(out)
}

/// Records swap `n` of `record.day`, once: `StorageError::Conflict` means it exists (an
/// earlier delivery of the same job wrote it; read it back with [`records`]).
pub async fn write(
    blobs: &BlobStore,
    layout: &Layout,
    db: &DatabaseName,
    table: &TableName,
    n: u32,
    record: &Supersede,
) -> Result<(), StorageError> {
    let path = layout.supersede_record(db, table, record.day, n);
    let body = serde_json::to_vec(record).map_err(|e| StorageError::decode(&path, e))?;
    blobs.create_new(&path, Bytes::from(body)).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::catalog::ArtifactSource;
    use time::macros::datetime;

    fn artifact(day: &str) -> Artifact {
        Artifact {
            path: format!("b/{day}/x.parquet"),
            day: Day::parse_folder(day).unwrap(),
            rows: 1,
            bytes: None,
            source: ArtifactSource::ContinuousExport {
                export: crate::ids::ExportName::new("e").unwrap(),
            },
            produced_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn swap(day: &str, at: OffsetDateTime, before: u64, segment: &str) -> Supersede {
        Supersede {
            day: Day::parse_folder(day).unwrap(),
            at,
            job: JobId::new("rc-1").unwrap(),
            export_segments_before: before,
            segments: [segment.to_owned()].into(),
            rows: 1,
        }
    }

    #[test]
    fn without_records_everything_but_reconcile_segments_is_live() {
        let live = LiveSet::new([], None);
        let a = artifact("20240115");
        assert!(live.is_live("p/$catalog/D/T/seg-000000000003.jsonl", &a));
        assert!(live.is_live("bf-bf-1-b000001.jsonl", &a));
        assert!(!live.is_live("rc-rc-1-b000001.jsonl", &a));
    }

    #[test]
    fn a_swap_replaces_only_its_day_and_only_what_its_bound_covered() {
        let live = LiveSet::new(
            [swap(
                "20240115",
                datetime!(2024-01-20 00:00 UTC),
                5,
                "rc-rc-1-b000001.jsonl",
            )],
            None,
        );
        let day = artifact("20240115");
        let other = artifact("20240116");
        assert!(!live.is_live("x/seg-000000000004.jsonl", &day));
        assert!(live.is_live("x/seg-000000000005.jsonl", &day));
        assert!(!live.is_live("x/bf-bf-1-b000001.jsonl", &day));
        assert!(live.is_live("x/rc-rc-1-b000001.jsonl", &day));
        assert!(!live.is_live("x/rc-rc-1-b000002.jsonl", &day));
        assert!(live.is_live("x/seg-000000000004.jsonl", &other));
        assert!(live.is_live("x/bf-bf-1-b000001.jsonl", &other));
    }

    #[test]
    fn as_of_before_a_swap_sees_the_day_as_it_was_and_the_newest_swap_wins() {
        let first = swap(
            "20240115",
            datetime!(2024-01-20 00:00 UTC),
            5,
            "rc-a-b000001.jsonl",
        );
        let second = swap(
            "20240115",
            datetime!(2024-02-01 00:00 UTC),
            9,
            "rc-b-b000001.jsonl",
        );
        let records = [second.clone(), first.clone()];
        let day = artifact("20240115");
        let before = LiveSet::new(records.clone(), Some(datetime!(2024-01-19 00:00 UTC)));
        assert!(before.is_live("seg-000000000001.jsonl", &day));
        assert!(!before.is_live("rc-a-b000001.jsonl", &day));
        let between = LiveSet::new(records.clone(), Some(datetime!(2024-01-25 00:00 UTC)));
        assert!(between.is_live("rc-a-b000001.jsonl", &day));
        assert!(!between.is_live("rc-b-b000001.jsonl", &day));
        let now = LiveSet::new(records, None);
        assert!(!now.is_live("rc-a-b000001.jsonl", &day));
        assert!(now.is_live("rc-b-b000001.jsonl", &day));
        assert!(!now.is_live("seg-000000000008.jsonl", &day));
        assert_eq!(now.swaps().collect::<Vec<_>>(), vec![&second]);
    }

    #[test]
    fn a_swap_supersedes_what_was_live_just_before_it_and_nothing_it_did_not_replace() {
        let first = swap(
            "20240115",
            datetime!(2024-01-20 00:00 UTC),
            5,
            "rc-a-b000001.jsonl",
        );
        let second = swap(
            "20240115",
            datetime!(2024-02-01 00:00 UTC),
            9,
            "rc-b-b000001.jsonl",
        );
        let records = [first.clone(), second.clone()];
        let day = artifact("20240115");
        let by_first = SupersededBy::new(&records, &first);
        assert!(by_first.contains("seg-000000000004.jsonl", &day));
        assert!(by_first.contains("bf-bf-1-b000001.jsonl", &day));
        assert!(
            !by_first.contains("seg-000000000005.jsonl", &day),
            "after its bound"
        );
        assert!(
            !by_first.contains("rc-a-b000001.jsonl", &day),
            "its own set"
        );
        assert!(!by_first.contains("rc-x-b000001.jsonl", &day), "never live");
        assert!(!by_first.contains("seg-000000000004.jsonl", &artifact("20240116")));
        let by_second = SupersededBy::new(&records, &second);
        assert!(by_second.contains("rc-a-b000001.jsonl", &day));
        assert!(by_second.contains("seg-000000000008.jsonl", &day));
        assert!(
            !by_second.contains("seg-000000000004.jsonl", &day),
            "gone with the first"
        );
        assert!(!by_second.contains("rc-b-b000001.jsonl", &day));
    }

    #[test]
    fn a_set_before_a_swap_whose_files_were_deleted_is_unavailable() {
        let gone = SupersededDeleted {
            day: Day::parse_folder("20240115").unwrap(),
            job: JobId::new("rc-1").unwrap(),
            swap_at: datetime!(2024-01-20 00:00 UTC),
            deleted_at: datetime!(2024-01-28 00:00 UTC),
            done: true,
        };
        let at = |t| LiveSet::new([], t).with_deletions([gone.clone()], t);
        assert_eq!(
            at(Some(datetime!(2024-01-19 00:00 UTC))).unavailable(),
            std::slice::from_ref(&gone)
        );
        assert!(
            at(Some(datetime!(2024-01-20 00:00 UTC)))
                .unavailable()
                .is_empty()
        );
        assert!(at(None).unavailable().is_empty());
    }

    #[test]
    fn records_round_trip() {
        let r = swap(
            "20240115",
            datetime!(2024-01-20 00:00 UTC),
            5,
            "rc-a-b000001.jsonl",
        );
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains(r#""day":"20240115""#), "{json}");
        assert_eq!(serde_json::from_str::<Supersede>(&json).unwrap(), r);
    }

    #[test]
    fn a_pruned_day_is_live_in_no_segment_and_at_no_time() {
        let records = [swap(
            "20240115",
            datetime!(2024-01-20 00:00 UTC),
            5,
            "rc-a-b000001.jsonl",
        )];
        let pruned: BTreeSet<Day> = [Day::parse_folder("20240115").unwrap()].into();
        let day = artifact("20240115");
        for as_of in [None, Some(datetime!(2024-01-19 00:00 UTC))] {
            let live = LiveSet::new(records.clone(), as_of).without(pruned.clone());
            for segment in [
                "seg-000000000009.jsonl",
                "bf-bf-1-b000001.jsonl",
                "rc-a-b000001.jsonl",
            ] {
                assert!(!live.is_live(segment, &day), "{segment} {as_of:?}");
            }
            assert!(live.is_live("seg-000000000009.jsonl", &artifact("20240116")));
        }
    }
}
