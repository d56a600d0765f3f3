//! Every blob path adx-backup reads or writes, in one place.
//!
//! Inside the configured container and prefix:
//!
//! ```text
//! <prefix>/<database>/<table>/<yyyyMMdd>/<file>.parquet   data, written by Kusto (external table)
//! <prefix>/<database>/<table>/00010101/<file>.parquet     tables without a datetime column
//! <prefix>/$catalog/<database>/<table>/seg-<n>.jsonl      the catalog: append-only segments
//! <prefix>/$schema/<database>/<yyyyMMddTHHmmss.fffffffffZ>-<hash>.kql  schema snapshots, by time
//! <prefix>/$schema/<database>/latest.json                 pointer to the newest snapshot
//! <prefix>/$state/tables/<database>/<table>.json          per-table protection state
//! <prefix>/$state/protect.lock                            one protect run at a time
//! <prefix>/$state/plans/<database>.json                   protect's plan summary of a database
//! <prefix>/$catalog/<database>/<table>/bf-<job>-<batch>.jsonl  a backfill batch's catalog segment
//! <prefix>/$state/backfill/<database>/<table>/<job>.json  a backfill job's plan and batches
//! <prefix>/$state/janitor/<database>.json                 temporary objects the janitor saw
//! <prefix>/$state/check.json                              the last check's findings
//! <prefix>/$state/check/app-<run>                          check's probe of the app's blob rights (deleted at once)
//! <prefix>/$state/check/cluster-<run>/<file>               check's probe of the cluster's write access (deleted at once)
//! <prefix>/$catalog/<database>/<table>/rc-<job>-<batch>.jsonl  a reconcile batch's segment (live only once a supersede record names it)
//! <prefix>/$supersede/<database>/<table>/sup-<yyyyMMdd>-<n>.json  a day's swap to its reconciled set
//! <prefix>/$state/superseded-deleted/<database>/<table>/<yyyyMMdd>-<job>.json  the files that swap superseded are deleted
//! <prefix>/$prune/<database>/<table>/pr-<yyyyMMdd>.json     a day retention pruned (recorded before its blobs go)
//! <prefix>/$prune/<database>/<table>/pr-<yyyyMMdd>.done     its blobs are deleted
//! <prefix>/$state/prune/<database>/<table>.json           the table's last prune, and deletes it deferred
//! <prefix>/$state/restore/<job>/job.json                   a restore job's state and report
//! <prefix>/$state/restore/<job>/chunks/<chunk>.json        one chunk of a restore job
//! <prefix>/$state/ingest-failures/<source id>.json         a queued ingestion's failure report
//! <prefix>/$state/catalog-totals/<database>/<table>.json  running totals of a table's catalog
//! <prefix>/$state/verify/<database>/<table>.json          the last verification of a table
//! ```
//!
//! Two areas ([`Area`]): what adx-backup rewrites or deletes (everything under `$state/`, and
//! the schema pointer `latest.json`) is *state*; everything else is written once and never
//! changed by the app (data files, catalog segments, schema snapshots, supersede and prune
//! records) and is *data*. [`super::blob::BlobStore`] puts each area in its container
//! (`AdxBackup__Container`, `AdxBackup__StateContainer`; the same one by default), so the data
//! container can carry a container-level immutability policy. (Prune deletes data folders,
//! and waits when such a policy refuses: docs/retention.md.)
//!
//! `$` cannot appear in a Kusto name, so metadata folders never collide with a database's
//! data folder. Names are validated ids (letters, digits, `_`, `-`, `.`, space), so they
//! cannot climb out of their folder; the connection string given to Kusto percent-encodes them.

use time::OffsetDateTime;
use url::Url;

use crate::ids::{BatchId, ChunkId, DatabaseName, Day, JobId, TableName};

/// The first characters of every reconcile job's id.
pub const RECONCILE_JOB_PREFIX: &str = "rc-";

/// Kusto writes rows whose partition value is null into this folder.
const KUSTO_DEFAULT_PARTITION: &str = "__DEFAULT_PARTITION__";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    prefix: String,
}

/// Which container a blob belongs in (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// Written once, never overwritten by the app: the data container.
    Data,
    /// Rewritten or deleted by the app: the state container.
    State,
}

/// The one rewritten document outside `$state/`: `$schema/<db>/latest.json`.
const SCHEMA_POINTER: &str = "latest.json";

/// A data file of a table, relative to the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactPath {
    pub path: String,
    pub day: Day,
}

impl Layout {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.trim_matches('/').to_owned(),
        }
    }

    fn join(&self, rest: &str) -> String {
        if self.prefix.is_empty() {
            rest.to_owned()
        } else {
            format!("{}/{rest}", self.prefix)
        }
    }

    /// The area of the blob at `path` (container-relative). Paths outside this layout's prefix
    /// are data.
    pub fn area(&self, path: &str) -> Area {
        let state = path.starts_with(&self.join("$state/"))
            || path
                .strip_prefix(&self.join("$schema/"))
                .and_then(|rest| rest.split_once('/'))
                .is_some_and(|(db, name)| !db.is_empty() && name == SCHEMA_POINTER);
        if state { Area::State } else { Area::Data }
    }

    /// Whether a listing of `prefix` can find blobs of each area: `(data, state)`.
    pub fn areas_under(&self, prefix: &str) -> (bool, bool) {
        let state_root = self.join("$state/");
        let schema_root = self.join("$schema/");
        let could_name_pointer = |rest: &str| match rest.split_once('/') {
            None => true,
            Some((_, name)) => SCHEMA_POINTER.starts_with(name),
        };
        let state = state_root.starts_with(prefix)
            || prefix.starts_with(&state_root)
            || schema_root.starts_with(prefix)
            || prefix
                .strip_prefix(&schema_root)
                .is_some_and(could_name_pointer);
        (self.area(prefix) == Area::Data, state)
    }

    /// The folder an external table writes into (no trailing slash).
    pub fn table_data_root(&self, db: &DatabaseName, table: &TableName) -> String {
        self.join(&format!("{db}/{table}"))
    }

    /// A table's data folder with its trailing slash: the prefix a listing of its files uses
    /// (the slash keeps table `T` from listing table `T2`'s files).
    pub fn table_data_dir(&self, db: &DatabaseName, table: &TableName) -> String {
        format!("{}/", self.table_data_root(db, table))
    }

    /// A listed blob that is one of the parquet files Kusto wrote for `table` (in a day
    /// folder, the undated folder or `__DEFAULT_PARTITION__`), with its day; None for
    /// anything else found under the table's folder. Metadata (`$catalog`, `$schema`,
    /// `$state`) never lies under a table's folder.
    pub fn data_file_from_listing(
        &self,
        path: &str,
        db: &DatabaseName,
        table: &TableName,
    ) -> Option<ArtifactPath> {
        path.ends_with(".parquet")
            .then(|| self.artifact_from_path(path, db, table))
            .flatten()
    }

    /// The connection-string URL of a table's data root as the cluster sees the account.
    /// Tables without a partition column write straight into the undated day folder.
    pub fn table_data_url(
        &self,
        account: &Url,
        container: &str,
        db: &DatabaseName,
        table: &TableName,
        partitioned: bool,
    ) -> Url {
        let mut url = account.clone();
        url.set_query(None);
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push(container);
            for part in self.prefix.split('/').filter(|p| !p.is_empty()) {
                segments.push(part);
            }
            segments.push(db.as_str()).push(table.as_str());
            if !partitioned {
                segments.push(&Day::UNDATED.folder());
            }
        }
        url
    }

    /// Maps an artifact URL reported by Kusto back to a container-relative path under the
    /// table's root, with the day its folder names. None if it lies elsewhere.
    pub fn artifact_from_url(
        &self,
        url: &str,
        container: &str,
        db: &DatabaseName,
        table: &TableName,
    ) -> Option<ArtifactPath> {
        let parsed = Url::parse(url).ok()?;
        let decoded: Vec<String> = parsed
            .path_segments()?
            .map(percent_decode)
            .collect::<Option<_>>()?;
        let start = decoded.iter().position(|s| s == container)?;
        let path = decoded[start + 1..].join("/");
        self.artifact_from_path(&path, db, table)
    }

    /// Checks a container-relative path is a data file of `table` and reads its day.
    pub fn artifact_from_path(
        &self,
        path: &str,
        db: &DatabaseName,
        table: &TableName,
    ) -> Option<ArtifactPath> {
        let root = format!("{}/", self.table_data_root(db, table));
        let rest = path.strip_prefix(&root)?;
        let (folder, file) = rest.split_once('/')?;
        if file.is_empty() || file.contains('/') {
            return None;
        }
        let day = if folder == KUSTO_DEFAULT_PARTITION {
            Day::UNDATED
        } else {
            Day::parse_folder(folder)?
        };
        Some(ArtifactPath {
            path: path.to_owned(),
            day,
        })
    }

    /// The folder of a table's catalog segments (with trailing slash, for listing).
    pub fn catalog_dir(&self, db: &DatabaseName, table: &TableName) -> String {
        self.join(&format!("$catalog/{db}/{table}/"))
    }

    /// Segment `seq` of a table's catalog. Zero-padded so listing order is append order.
    pub fn catalog_segment(&self, db: &DatabaseName, table: &TableName, seq: u64) -> String {
        format!("{}seg-{seq:012}.jsonl", self.catalog_dir(db, table))
    }

    pub fn schema_dir(&self, db: &DatabaseName) -> String {
        self.join(&format!("$schema/{db}/"))
    }

    /// A schema snapshot, named by the time it was taken to the nanosecond: two snapshots
    /// in one second still order by time, and a restore `asOf` a moment within a second
    /// does not take the snapshot that came after it.
    pub fn schema_snapshot(&self, db: &DatabaseName, taken: OffsetDateTime, hash: &str) -> String {
        let t = taken.to_offset(time::UtcOffset::UTC);
        format!(
            "{}{:04}{:02}{:02}T{:02}{:02}{:02}.{:09}Z-{}.kql",
            self.schema_dir(db),
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.nanosecond(),
            &hash[..hash.len().min(16)]
        )
    }

    /// When the snapshot at `path` was taken, from its name (`<yyyyMMddTHHmmss.fffffffffZ>-`,
    /// or `<yyyyMMddTHHmmssZ>-` as snapshots were named before); None for other blobs.
    pub fn schema_snapshot_time(path: &str) -> Option<OffsetDateTime> {
        let name = path.rsplit('/').next()?.strip_suffix(".kql")?;
        let stamp = name.split('-').next()?;
        let precise = time::macros::format_description!(
            "[year][month][day]T[hour][minute][second].[subsecond digits:9]Z"
        );
        let seconds =
            time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
        time::PrimitiveDateTime::parse(stamp, precise)
            .or_else(|_| time::PrimitiveDateTime::parse(stamp, seconds))
            .ok()
            .map(time::PrimitiveDateTime::assume_utc)
    }

    pub fn schema_latest(&self, db: &DatabaseName) -> String {
        format!("{}latest.json", self.schema_dir(db))
    }

    pub fn table_state(&self, db: &DatabaseName, table: &TableName) -> String {
        self.join(&format!("$state/tables/{db}/{table}.json"))
    }

    pub fn table_state_dir(&self) -> String {
        self.join("$state/tables/")
    }

    pub fn protect_lock(&self) -> String {
        self.join("$state/protect.lock")
    }

    /// What protect's plan knows of every table of `db`, so a pass reads one document
    /// rather than one state per table.
    pub fn plan_summary(&self, db: &DatabaseName) -> String {
        self.join(&format!("$state/plans/{db}.json"))
    }

    /// Every table state document of `db` (with trailing slash, for listing).
    pub fn table_states_of(&self, db: &DatabaseName) -> String {
        self.join(&format!("$state/tables/{db}/"))
    }

    /// The table whose state document is at `path`, if it is one.
    pub fn table_of_state(&self, db: &DatabaseName, path: &str) -> Option<TableName> {
        let name = path
            .strip_prefix(&self.table_states_of(db))?
            .strip_suffix(".json")?;
        TableName::new(name).ok()
    }

    /// A table's catalog totals: per day, the artifacts, rows and bytes of every segment
    /// counted so far, and which segments those were. `status` reads this, never the catalog.
    pub fn catalog_totals(&self, db: &DatabaseName, table: &TableName) -> String {
        self.join(&format!("$state/catalog-totals/{db}/{table}.json"))
    }

    /// The prefix every backfill segment of a table's catalog starts with.
    pub fn backfill_catalog_prefix(&self, db: &DatabaseName, table: &TableName) -> String {
        format!("{}bf-", self.catalog_dir(db, table))
    }

    /// The catalog segment of one reconcile batch. Its artifacts are live only once a
    /// supersede record names the segment, so an unfinished reconcile adds nothing.
    pub fn reconcile_catalog_segment(
        &self,
        db: &DatabaseName,
        table: &TableName,
        job: &JobId,
        batch: &BatchId,
    ) -> String {
        format!("{}rc-{job}-{batch}.jsonl", self.catalog_dir(db, table))
    }

    /// The folder of a table's supersede records (with trailing slash, for listing). Beside
    /// the catalog, not in it, so readers of segments never mistake one for a segment.
    pub fn supersede_dir(&self, db: &DatabaseName, table: &TableName) -> String {
        self.join(&format!("$supersede/{db}/{table}/"))
    }

    /// Supersede record `n` of `day`: the n-th reconcile swap of that day, zero-padded so a
    /// listing sorts by day, then swap.
    pub fn supersede_record(
        &self,
        db: &DatabaseName,
        table: &TableName,
        day: Day,
        n: u32,
    ) -> String {
        format!(
            "{}sup-{}-{n:06}.json",
            self.supersede_dir(db, table),
            day.folder()
        )
    }

    /// The folder of a table's deletion records (with trailing slash, for listing).
    pub fn superseded_deletions_dir(&self, db: &DatabaseName, table: &TableName) -> String {
        self.join(&format!("$state/superseded-deleted/{db}/{table}/"))
    }

    /// The record that the files superseded by reconcile `job`'s swap of `day` are (being)
    /// deleted after the retention: written before the first file goes.
    pub fn superseded_deletion(
        &self,
        db: &DatabaseName,
        table: &TableName,
        day: Day,
        job: &JobId,
    ) -> String {
        format!(
            "{}{}-{job}.json",
            self.superseded_deletions_dir(db, table),
            day.folder()
        )
    }

    /// A table's data folder of one day (with trailing slash, for listing): every file Kusto
    /// wrote for that day, cataloged or not, lives here.
    pub fn day_data_dir(&self, db: &DatabaseName, table: &TableName, day: Day) -> String {
        format!("{}/{}/", self.table_data_root(db, table), day.folder())
    }

    /// The folder of a table's prune records (with trailing slash, for listing). Beside the
    /// catalog, like supersede records, so no reader mistakes one for a segment.
    pub fn prune_dir(&self, db: &DatabaseName, table: &TableName) -> String {
        self.join(&format!("$prune/{db}/{table}/"))
    }

    /// The record that `day` left the retention policy: from its creation on, no artifact of
    /// the day is restorable. One per day, so two prunes that decide the same day collide.
    pub fn prune_record(&self, db: &DatabaseName, table: &TableName, day: Day) -> String {
        format!("{}pr-{}.json", self.prune_dir(db, table), day.folder())
    }

    /// Written once the pruned day's blobs are deleted; a record without it is unfinished.
    pub fn prune_done(&self, db: &DatabaseName, table: &TableName, day: Day) -> String {
        format!("{}pr-{}.done", self.prune_dir(db, table), day.folder())
    }

    /// The day a prune-folder blob names, and whether it is the done marker (None for any
    /// other name).
    pub fn prune_entry(
        &self,
        db: &DatabaseName,
        table: &TableName,
        path: &str,
    ) -> Option<(Day, bool)> {
        let name = path
            .strip_prefix(&self.prune_dir(db, table))?
            .strip_prefix("pr-")?;
        let (day, done) = match name.strip_suffix(".json") {
            Some(day) => (day, false),
            None => (name.strip_suffix(".done")?, true),
        };
        Some((Day::parse_folder(day)?, done))
    }

    /// What the last prune of a table did and left to do (deletes it could not finish, and
    /// why): `status` reads it.
    pub fn prune_state(&self, db: &DatabaseName, table: &TableName) -> String {
        self.join(&format!("$state/prune/{db}/{table}.json"))
    }

    /// The last verification of a table: source row counts against the catalog.
    pub fn verification(&self, db: &DatabaseName, table: &TableName) -> String {
        self.join(&format!("$state/verify/{db}/{table}.json"))
    }

    /// The folder of every backfill job of a table (with trailing slash, for listing).
    pub fn backfill_jobs_of(&self, db: &DatabaseName, table: &TableName) -> String {
        self.join(&format!("$state/backfill/{db}/{table}/"))
    }

    /// The folder of every backfill job of a database (with trailing slash, for listing).
    pub fn backfill_jobs_dir(&self, db: &DatabaseName) -> String {
        self.join(&format!("$state/backfill/{db}/"))
    }

    /// The folder of every restore job (with trailing slash, for listing; chunks are below).
    pub fn restore_jobs_dir(&self) -> String {
        self.join("$state/restore/")
    }

    /// True when `path` is a restore job's own document, not one of its chunks.
    pub fn is_restore_job(&self, path: &str) -> bool {
        path.strip_prefix(&self.restore_jobs_dir())
            .and_then(|rest| rest.strip_suffix("/job.json"))
            .is_some_and(|job| !job.contains('/'))
    }

    /// A backfill job's state: its plan, batches and progress.
    pub fn backfill_job(&self, db: &DatabaseName, table: &TableName, job: &JobId) -> String {
        self.join(&format!("$state/backfill/{db}/{table}/{job}.json"))
    }

    /// The job a backfill job state path names (the inverse of [`Self::backfill_job`]);
    /// None for any other path.
    pub fn backfill_job_of(&self, path: &str, db: &DatabaseName) -> Option<JobId> {
        let rest = path.strip_prefix(&self.backfill_jobs_dir(db))?;
        let (table, file) = rest.split_once('/')?;
        TableName::new(table).ok()?;
        JobId::new(file.strip_suffix(".json")?).ok()
    }

    /// The last check's findings (protect's pass, `adx-backup check`), for `status`.
    pub fn check_report(&self) -> String {
        self.join("$state/check.json")
    }

    /// Where `check` puts its probes (with trailing slash, for listing); empty between runs.
    pub fn check_probes_dir(&self) -> String {
        self.join("$state/check/")
    }

    /// The blob `check` creates, reads, lists and deletes to measure the app's own rights
    /// on the container; one per run, so a leftover (delete refused) never blocks the next.
    pub fn check_app_probe(&self, run: &str) -> String {
        format!("{}app-{run}", self.check_probes_dir())
    }

    /// The folder `check` has the cluster export one row into, through an external table
    /// with the cluster's storage auth (no trailing slash: an external table's root).
    pub fn check_cluster_probe_root(&self, run: &str) -> String {
        format!("{}cluster-{run}", self.check_probes_dir())
    }

    /// What the janitor knows of `db`'s temporary objects between protect passes.
    pub fn janitor_state(&self, db: &DatabaseName) -> String {
        self.join(&format!("$state/janitor/{db}.json"))
    }

    /// The catalog segment of one backfill batch. Named by the batch, so the batch is
    /// cataloged at most once however often its completion is seen; `bf-` sorts before
    /// `seg-`, so readers list it like any other segment. A reconcile job (its id starts with
    /// `rc-`, see `reconcile::job_id`) runs on the same machinery but catalogs into
    /// [`Self::reconcile_catalog_segment`], live only once its day is swapped.
    pub fn backfill_catalog_segment(
        &self,
        db: &DatabaseName,
        table: &TableName,
        job: &JobId,
        batch: &BatchId,
    ) -> String {
        if job.as_str().starts_with(RECONCILE_JOB_PREFIX) {
            return self.reconcile_catalog_segment(db, table, job, batch);
        }
        format!("{}bf-{job}-{batch}.jsonl", self.catalog_dir(db, table))
    }

    /// The prefix of every catalog segment of reconcile job `job`.
    pub fn reconcile_job_segments(
        &self,
        db: &DatabaseName,
        table: &TableName,
        job: &JobId,
    ) -> String {
        format!("{}rc-{job}-", self.catalog_dir(db, table))
    }

    /// The file-name prefix of one export attempt of a backfill batch (the `namePrefix` of
    /// its external table). The attempt is zero-padded, so no prefix is the start of another.
    pub fn backfill_name_prefix(job: &JobId, batch: &BatchId, attempt: u32) -> String {
        format!("{job}_{batch}_a{attempt:03}")
    }

    /// True when `path` (container-relative) is a data file of `table` whose name starts
    /// with `name_prefix`: a file one backfill attempt wrote, in whichever day folder.
    pub fn is_attempt_file(
        &self,
        path: &str,
        db: &DatabaseName,
        table: &TableName,
        name_prefix: &str,
    ) -> bool {
        self.artifact_from_path(path, db, table).is_some()
            && path
                .rsplit('/')
                .next()
                .is_some_and(|file| file.starts_with(name_prefix))
    }

    /// The URL of a container-relative blob as the cluster sees the account, for ingestion.
    pub fn blob_url(&self, account: &Url, container: &str, path: &str) -> Url {
        let mut url = account.clone();
        url.set_query(None);
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push(container);
            for part in path.split('/').filter(|p| !p.is_empty()) {
                segments.push(part);
            }
        }
        url
    }

    /// A restore job's state document.
    pub fn restore_job(&self, job: &JobId) -> String {
        self.join(&format!("$state/restore/{job}/job.json"))
    }

    /// The chunks one planning step of a restore job cut (page `page`, from 0).
    pub fn restore_plan_page(&self, job: &JobId, page: u64) -> String {
        self.join(&format!("$state/restore/{job}/pages/p-{page:06}.json"))
    }

    /// One chunk of a restore job.
    pub fn restore_chunk(&self, job: &JobId, chunk: &ChunkId) -> String {
        self.join(&format!("$state/restore/{job}/chunks/{chunk}.json"))
    }

    /// The failure report of one queued ingestion, by the source id its message carried.
    /// Status queues are shared by every client of a cluster, so reports are kept by source
    /// id, not by job: whoever reads the queue files them, the chunk that sent it finds it.
    pub fn ingest_failure(&self, source_id: &uuid::Uuid) -> String {
        self.join(&format!("$state/ingest-failures/{source_id}.json"))
    }
}

/// Decodes `%XX` escapes of one URL path segment; None if it is not valid UTF-8.
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> (DatabaseName, TableName) {
        (
            DatabaseName::new("Sales").unwrap(),
            TableName::new("Order Lines").unwrap(),
        )
    }

    #[test]
    fn only_state_and_the_schema_pointer_are_in_the_state_area() {
        let (db, t) = names();
        let layout = Layout::new("backup");
        let job = JobId::new("r-1").unwrap();
        let day = Day::parse_folder("20240115").unwrap();
        let at = time::macros::datetime!(2026-11-25 10:05:03 UTC);
        for state in [
            layout.table_state(&db, &t),
            layout.protect_lock(),
            layout.plan_summary(&db),
            layout.catalog_totals(&db, &t),
            layout.verification(&db, &t),
            layout.restore_job(&job),
            layout.restore_chunk(&job, &ChunkId::new("c-000001").unwrap()),
            layout.restore_plan_page(&job, 7),
            layout.check_report(),
            layout.janitor_state(&db),
            layout.superseded_deletion(&db, &t, day, &job),
            layout.backfill_job(&db, &t, &job),
            layout.prune_state(&db, &t),
            layout.schema_latest(&db),
        ] {
            assert_eq!(layout.area(&state), Area::State, "{state}");
        }
        for data in [
            format!("{}x.parquet", layout.day_data_dir(&db, &t, day)),
            layout.catalog_segment(&db, &t, 3),
            layout.backfill_catalog_segment(&db, &t, &job, &BatchId::new("b1").unwrap()),
            layout.schema_snapshot(&db, at, "abcdef"),
            layout.supersede_record(&db, &t, day, 1),
            layout.prune_record(&db, &t, day),
            layout.prune_done(&db, &t, day),
            // Another prefix's backup keeps its state beside its data.
            "other/$state/tables/Sales/T.json".to_owned(),
            "backup/$schema/latest.json".to_owned(),
        ] {
            assert_eq!(layout.area(&data), Area::Data, "{data}");
        }
        assert_eq!(layout.areas_under(""), (true, true));
        assert_eq!(layout.areas_under("backup/"), (true, true));
        assert_eq!(layout.areas_under("backup/$state/restore/"), (false, true));
        assert_eq!(layout.areas_under(&layout.schema_dir(&db)), (true, true));
        assert_eq!(
            layout.areas_under(&layout.schema_latest(&db)),
            (false, true)
        );
        assert_eq!(
            layout.areas_under(&layout.catalog_dir(&db, &t)),
            (true, false)
        );
        assert_eq!(
            layout.areas_under(&layout.table_data_dir(&db, &t)),
            (true, false)
        );
        assert_eq!(
            layout.areas_under(&layout.prune_dir(&db, &t)),
            (true, false)
        );
    }

    #[test]
    fn data_url_encodes_names_and_round_trips() {
        let (db, t) = names();
        let layout = Layout::new("backup/");
        let account = Url::parse("http://127.0.0.1:10000/devstoreaccount1").unwrap();
        let url = layout.table_data_url(&account, "c", &db, &t, true);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:10000/devstoreaccount1/c/backup/Sales/Order%20Lines"
        );
        let file = format!("{url}/20240115/part-1.parquet");
        let a = layout.artifact_from_url(&file, "c", &db, &t).unwrap();
        assert_eq!(a.path, "backup/Sales/Order Lines/20240115/part-1.parquet");
        assert_eq!(a.day.folder(), "20240115");

        let azure = Url::parse("https://acct.blob.core.windows.net/").unwrap();
        let url = layout.table_data_url(&azure, "c", &db, &t, false);
        assert_eq!(
            url.as_str(),
            "https://acct.blob.core.windows.net/c/backup/Sales/Order%20Lines/00010101"
        );
    }

    #[test]
    fn artifacts_outside_the_table_are_refused() {
        let (db, t) = names();
        let layout = Layout::new("backup");
        for path in [
            "backup/Sales/Other/20240115/x.parquet",
            "backup/Sales/Order Lines/x.parquet",
            "backup/Sales/Order Lines/2024/x.parquet",
            "backup/Sales/Order Lines/20240115/",
            "backup/Sales/Order Lines/20240115/a/b.parquet",
            "other/Sales/Order Lines/20240115/x.parquet",
        ] {
            assert!(layout.artifact_from_path(path, &db, &t).is_none(), "{path}");
        }
        let undated = layout
            .artifact_from_path(
                "backup/Sales/Order Lines/__DEFAULT_PARTITION__/x.parquet",
                &db,
                &t,
            )
            .unwrap();
        assert_eq!(undated.day, Day::UNDATED);
    }

    #[test]
    fn a_listing_yields_only_the_tables_parquet_files() {
        let (db, t) = names();
        let layout = Layout::new("backup");
        assert_eq!(layout.table_data_dir(&db, &t), "backup/Sales/Order Lines/");
        let day = |p: &str| layout.data_file_from_listing(p, &db, &t).map(|a| a.day);
        assert_eq!(
            day("backup/Sales/Order Lines/20240115/x.parquet").map(|d| d.folder()),
            Some("20240115".to_owned())
        );
        assert_eq!(
            day("backup/Sales/Order Lines/__DEFAULT_PARTITION__/x.parquet"),
            Some(Day::UNDATED)
        );
        assert_eq!(
            day("backup/Sales/Order Lines/00010101/x.parquet"),
            Some(Day::UNDATED)
        );
        for other in [
            "backup/Sales/Order Lines/20240115/x.csv",
            "backup/Sales/Order Lines/20240115/sub/x.parquet",
            "backup/Sales/Order Lines/x.parquet",
            "backup/Sales/Order Lines2/20240115/x.parquet",
            "backup/$catalog/Sales/Order Lines/seg-000000000000.jsonl",
        ] {
            assert_eq!(day(other), None, "{other}");
        }
    }

    #[test]
    fn metadata_paths_sort_by_sequence_and_time() {
        let (db, t) = names();
        let layout = Layout::new("");
        assert!(layout.catalog_segment(&db, &t, 9) < layout.catalog_segment(&db, &t, 10));
        let at = time::macros::datetime!(2026-11-25 10:05:03.25 UTC);
        let snapshot = layout.schema_snapshot(&db, at, "abcdef0123456789ffff");
        assert_eq!(
            snapshot,
            "$schema/Sales/20261125T100503.250000000Z-abcdef0123456789.kql"
        );
        assert_eq!(Layout::schema_snapshot_time(&snapshot), Some(at));
        let later = layout.schema_snapshot(&db, at + time::Duration::nanoseconds(1), "00");
        assert!(Layout::schema_snapshot_time(&later) > Some(at));
        assert_eq!(
            Layout::schema_snapshot_time("backup/$schema/Sales/20261125T100000Z-0a1b2c3d.kql"),
            Some(time::macros::datetime!(2026-11-25 10:00 UTC)),
            "names of the seconds-only form still read"
        );
        assert_eq!(
            Layout::schema_snapshot_time("backup/$schema/Sales/latest.json"),
            None
        );
        assert_eq!(
            layout.table_state(&db, &t),
            "$state/tables/Sales/Order Lines.json"
        );
        assert_eq!(layout.plan_summary(&db), "$state/plans/Sales.json");
    }

    #[test]
    fn status_paths() {
        let (db, t) = names();
        let layout = Layout::new("backup");
        assert_eq!(
            layout.catalog_totals(&db, &t),
            "backup/$state/catalog-totals/Sales/Order Lines.json"
        );
        assert_eq!(
            layout.verification(&db, &t),
            "backup/$state/verify/Sales/Order Lines.json"
        );
        assert_eq!(
            layout.table_of_state(&db, &layout.table_state(&db, &t)),
            Some(t.clone())
        );
        assert_eq!(
            layout.table_of_state(&db, "backup/$state/tables/Other/x.json"),
            None
        );
        assert!(layout.is_restore_job("backup/$state/restore/r-1/job.json"));
        assert!(!layout.is_restore_job("backup/$state/restore/r-1/chunks/c-000001.json"));
        assert!(!layout.is_restore_job(&layout.restore_plan_page(&JobId::new("r-1").unwrap(), 0)));
        assert!(
            layout
                .backfill_catalog_segment(
                    &db,
                    &t,
                    &JobId::new("bf-1").unwrap(),
                    &BatchId::new("b1").unwrap()
                )
                .starts_with(&layout.backfill_catalog_prefix(&db, &t))
        );
    }

    #[test]
    fn backfill_paths_and_attempt_files() {
        let (db, t) = names();
        let layout = Layout::new("backup");
        let job = JobId::new("bf-0123456789abcdef").unwrap();
        let batch = BatchId::new("b000007").unwrap();
        assert_eq!(
            layout.backfill_job(&db, &t, &job),
            "backup/$state/backfill/Sales/Order Lines/bf-0123456789abcdef.json"
        );
        let path = layout.backfill_job(&db, &t, &job);
        assert_eq!(layout.backfill_job_of(&path, &db), Some(job.clone()));
        let other = DatabaseName::new("Other").unwrap();
        assert_eq!(layout.backfill_job_of(&path, &other), None);
        assert_eq!(
            layout.backfill_job_of("backup/$state/backfill/Sales/x.json", &db),
            None,
            "a job is always under its table's folder"
        );
        assert_eq!(
            layout.janitor_state(&db),
            "backup/$state/janitor/Sales.json"
        );
        assert_eq!(layout.check_app_probe("r1"), "backup/$state/check/app-r1");
        let root = layout.check_cluster_probe_root("r1");
        assert_eq!(root, "backup/$state/check/cluster-r1");
        assert!(root.starts_with(&layout.check_probes_dir()));
        assert!(
            !layout
                .check_report()
                .starts_with(&layout.check_probes_dir())
        );
        let segment = layout.backfill_catalog_segment(&db, &t, &job, &batch);
        assert_eq!(
            segment,
            "backup/$catalog/Sales/Order Lines/bf-bf-0123456789abcdef-b000007.jsonl"
        );
        assert!(segment < layout.catalog_segment(&db, &t, 0));
        let prefix = Layout::backfill_name_prefix(&job, &batch, 1);
        assert_eq!(prefix, "bf-0123456789abcdef_b000007_a001");
        let file = |name: &str| format!("backup/Sales/Order Lines/20240115/{name}");
        assert!(layout.is_attempt_file(
            &file(&format!("{prefix}_x_0_y.parquet")),
            &db,
            &t,
            &prefix
        ));
        let later = Layout::backfill_name_prefix(&job, &batch, 10);
        assert!(!layout.is_attempt_file(&file(&format!("{later}_x.parquet")), &db, &t, &prefix));
        assert!(!layout.is_attempt_file(&file("other_x.parquet"), &db, &t, &prefix));
        assert!(!layout.is_attempt_file(
            &format!("backup/Sales/Other/20240115/{prefix}_x.parquet"),
            &db,
            &t,
            &prefix
        ));
    }
}
