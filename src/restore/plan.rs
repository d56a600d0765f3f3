//! Planning: the catalog (continuous-export and backfill segments alike, as its listing names
//! them), read one segment at a time, cut into chunks of at most N files or B bytes, one
//! table per chunk, keeping only live artifacts (a reconciled day's current set, see
//! `storage::supersede`). A step plans one page (a bounded number of files) and
//! records where it stopped, so a catalog of any size is planned in bounded steps with
//! bounded memory, and a step that is repeated cuts the same chunks again. A step's chunks
//! become one plan page (`page`); a cataloged chunk names its files by catalog line.
//!
//! Without a catalog (`source.fromListing`), the same chunks are cut from a listing of each
//! table's data folder, one listing page per step, resumed from the listing's marker. A
//! listing knows each file's day (its folder) and size, not its rows, and cannot tell a
//! valid file from one a failed export left behind.

use std::sync::Arc;

use futures::StreamExt;
use futures::stream::FuturesOrdered;
use time::OffsetDateTime;

use super::request::RestoreRequestV1;
use super::state::SegmentLines;
use super::state::{BlobOutcome, ChunkBlob, PlanPosition, PlannedChunk, PlannedFiles, RestoreJob};
use crate::ids::{DatabaseName, Day, TableName};
use crate::settings::RestoreSettings;
use crate::storage::catalog::{Artifact, Catalog};
use crate::storage::layout::Layout;
use crate::storage::supersede;
use crate::storage::supersede::LiveSet;
use crate::storage::{BlobItem, BlobStore, ListPage, StorageError};

/// Chunks one plan page holds: the driver reads a page each step it starts chunks, so a
/// page stays small (100 chunks of a catalog name about 10,000 lines).
pub const PAGE_CHUNKS: usize = 100;
/// Pages' worth of files one planning step of a catalog reads at most: 100,000 files at the
/// default chunk size, about a hundred segments, so a catalog of ten million files is planned
/// in about a hundred steps and what each step costs besides the reads (the live set, the
/// listing, the job's save, the driver message) is paid a hundred times, not ten thousand.
/// A step holds only the lines of its chunks.
pub const CATALOG_STEP_PAGES: usize = 10;
/// A step from a listing holds its files themselves (the page writes them out), so it
/// plans one page.
const LISTING_STEP_PAGES: usize = 1;
/// Catalog segments one listing page names.
const LIST_PAGE: u32 = 100;
/// Blobs one listing page of a table's data folder names: the most one List Blobs call
/// returns, so planning from a listing makes as few calls as a bare listing.
const DATA_LIST_PAGE: u32 = crate::storage::blob::MAX_PAGE_SIZE;
/// Catalog segments read at most at once: storage's round trips overlap each other and the
/// decoding. Reads ahead are sized by what the last segment cost, so a step rarely reads a
/// segment it does not use (a read it drops is read again by the next step).
pub const READ_AHEAD: usize = 4;

/// One file to plan, from the catalog or from a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    pub path: String,
    pub day: Day,
    /// None when the file was listed, not cataloged: nothing says how many rows it holds.
    pub rows: Option<u64>,
    pub bytes: Option<u64>,
    /// When the file was written: the catalog's time, or the blob's last modification.
    pub produced_at: OffsetDateTime,
    pub origin: Origin,
}

/// Where a planned file is written down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Line `line` (from 0) of the catalog segment at `segment`.
    Cataloged { segment: Arc<str>, line: u64 },
    /// A blob of a listing.
    Listed,
}

impl PlannedFile {
    /// Artifact `a`, line `line` of the catalog segment at `segment`.
    pub fn cataloged(a: Artifact, segment: &Arc<str>, line: usize) -> Self {
        Self {
            path: a.path,
            day: a.day,
            rows: Some(a.rows),
            bytes: a.bytes,
            produced_at: a.produced_at,
            origin: Origin::Cataloged {
                segment: Arc::clone(segment),
                line: line as u64,
            },
        }
    }

    /// A listed blob, if it is a data file of `table` (its day read from its folder).
    pub fn listed(
        layout: &Layout,
        db: &DatabaseName,
        table: &TableName,
        item: &BlobItem,
    ) -> Option<Self> {
        let a = layout.data_file_from_listing(&item.path, db, table)?;
        Some(Self {
            path: a.path,
            day: a.day,
            rows: None,
            bytes: Some(item.size),
            produced_at: item.last_modified,
            origin: Origin::Listed,
        })
    }
}

/// What one planning step produced: its chunks, numbered from `first_chunk`, to be written
/// as plan pages of `PAGE_CHUNKS` from page `number` on, and where the next step starts.
#[derive(Debug, Default)]
pub struct Page {
    pub number: u64,
    pub first_chunk: u64,
    pub chunks: Vec<PlannedChunk>,
    pub position: PlanPosition,
}

/// Why a page could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(
        "table {table}, day {day}: the files it held before the reconcile swap of {swap_at} were deleted on {deleted_at} (AdxBackup__ReconcileSupersededRetentionSeconds), so a restore as of an earlier time cannot be exact; ask for asOf at or after {swap_at}, or leave the day out with a window"
    )]
    SupersededDeleted {
        table: TableName,
        day: Day,
        swap_at: OffsetDateTime,
        deleted_at: OffsetDateTime,
    },
}

/// Refuses a plan whose live set, as of its time, names files a later swap's retention
/// deleted on a day the request wants: it would restore less without saying so.
fn refuse_deleted(
    table: &TableName,
    live: &LiveSet,
    request: &RestoreRequestV1,
) -> Result<(), PlanError> {
    match live
        .unavailable()
        .iter()
        .find(|d| request.window.is_none_or(|w| w.contains(d.day)))
    {
        Some(d) => Err(PlanError::SupersededDeleted {
            table: table.clone(),
            day: d.day,
            swap_at: d.swap_at,
            deleted_at: d.deleted_at,
        }),
        None => Ok(()),
    }
}

/// Whether the request wants this file (an empty one never: it has nothing to ingest).
pub fn wanted(request: &RestoreRequestV1, file: &PlannedFile) -> bool {
    file.rows != Some(0)
        && file.bytes != Some(0)
        && request.window.is_none_or(|w| w.contains(file.day))
        && request
            .as_of
            .is_none_or(|t: OffsetDateTime| file.produced_at <= t)
}

/// Plans the next page of `job` from `catalog` (the backup's catalog of `database`), adding
/// what it planned to the job's expected counts and totals. Only live artifacts are planned;
/// without an asOf the plan is pinned to the job's start, so a swap recorded while the job
/// plans cannot mix a day's old and new sets across pages.
pub async fn plan_page(
    blobs: &BlobStore,
    layout: &Layout,
    database: &DatabaseName,
    job: &mut RestoreJob,
    request: &RestoreRequestV1,
    settings: &RestoreSettings,
) -> Result<Page, PlanError> {
    let as_of = request.as_of.unwrap_or(job.created_at);
    let first_step = job.plan.table == 0 && job.plan.marker.is_none() && job.plan.after.is_none();
    if first_step {
        // Before any chunk: a table planned later must not find its files gone after the
        // earlier tables were already sent.
        for t in &job.tables {
            let live = supersede::load(blobs, layout, database, &t.source, Some(as_of)).await?;
            refuse_deleted(&t.source, &live, request)?;
        }
    }
    let mut source = Cataloged {
        catalog: &Catalog::new(blobs, layout),
        blobs,
        layout,
        database,
        as_of,
        request,
        live: None,
    };
    plan_from(&mut source, job, request, settings).await
}

/// Plans the next page of `job` from a listing of each table's data folder in `blobs` (the
/// backup of `database` under `layout`), as [`plan_page`] does from the catalog. Every
/// listed blob counts against the step's budget, wanted or not, so a step's work is bounded
/// however the files are spread.
pub async fn plan_listing_page(
    blobs: &BlobStore,
    layout: &Layout,
    database: &DatabaseName,
    job: &mut RestoreJob,
    request: &RestoreRequestV1,
    settings: &RestoreSettings,
) -> Result<Page, PlanError> {
    let mut source = Listed {
        blobs,
        layout,
        database,
    };
    plan_from(&mut source, job, request, settings).await
}

/// Where a plan's files come from: listing pages per table, each item naming files.
trait FileSource {
    /// Plan pages' worth of files a step reads at most.
    const STEP_PAGES: usize;

    /// One listing page of `table`'s items, from `marker`.
    async fn page(
        &mut self,
        table: &TableName,
        marker: Option<&str>,
    ) -> Result<ListPage, PlanError>;
    /// The wanted files one item of `table` names, and what reading it costs of a step's
    /// budget.
    async fn files(
        &self,
        table: &TableName,
        item: &BlobItem,
        request: &RestoreRequestV1,
    ) -> Result<(Vec<PlannedFile>, usize), PlanError>;
}

/// The catalog: an item is a segment; each wanted live artifact in it costs one.
struct Cataloged<'a> {
    catalog: &'a Catalog<'a>,
    blobs: &'a BlobStore,
    layout: &'a Layout,
    database: &'a DatabaseName,
    as_of: OffsetDateTime,
    request: &'a RestoreRequestV1,
    /// The live set of the table being planned, loaded once per table and step.
    live: Option<(TableName, LiveSet)>,
}

impl FileSource for Cataloged<'_> {
    const STEP_PAGES: usize = CATALOG_STEP_PAGES;

    async fn page(
        &mut self,
        table: &TableName,
        marker: Option<&str>,
    ) -> Result<ListPage, PlanError> {
        if self.live.as_ref().is_none_or(|(t, _)| t != table) {
            let set = supersede::load(
                self.blobs,
                self.layout,
                self.database,
                table,
                Some(self.as_of),
            )
            .await?;
            refuse_deleted(table, &set, self.request)?;
            self.live = Some((table.clone(), set));
        }
        Ok(self
            .catalog
            .segment_page(self.database, table, marker, LIST_PAGE)
            .await?)
    }

    async fn files(
        &self,
        _table: &TableName,
        item: &BlobItem,
        request: &RestoreRequestV1,
    ) -> Result<(Vec<PlannedFile>, usize), PlanError> {
        let Some((_, live)) = &self.live else {
            return Ok((Vec::new(), 0));
        };
        let segment: Arc<str> = Arc::from(item.path.as_str());
        let files: Vec<PlannedFile> = self
            .catalog
            .read_path(&item.path)
            .await?
            .into_iter()
            .enumerate()
            .filter(|(_, a)| live.is_live(&item.path, a))
            .map(|(line, a)| PlannedFile::cataloged(a, &segment, line))
            .filter(|a| wanted(request, a))
            .collect();
        let cost = files.len();
        Ok((files, cost))
    }
}

/// A listing of a table's data folder: an item is a file, and costs one, wanted or not.
struct Listed<'a> {
    blobs: &'a BlobStore,
    layout: &'a Layout,
    database: &'a DatabaseName,
}

impl FileSource for Listed<'_> {
    const STEP_PAGES: usize = LISTING_STEP_PAGES;

    async fn page(
        &mut self,
        table: &TableName,
        marker: Option<&str>,
    ) -> Result<ListPage, PlanError> {
        let dir = self.layout.table_data_dir(self.database, table);
        Ok(self.blobs.list_page(&dir, marker, DATA_LIST_PAGE).await?)
    }

    async fn files(
        &self,
        table: &TableName,
        item: &BlobItem,
        request: &RestoreRequestV1,
    ) -> Result<(Vec<PlannedFile>, usize), PlanError> {
        let file = PlannedFile::listed(self.layout, self.database, table, item)
            .filter(|f| wanted(request, f));
        Ok((file.into_iter().collect(), 1))
    }
}

/// One planning step over `source`: from where the job stopped, items are read until the
/// step's budget is spent; the position records the listing's marker and the last item
/// planned, so the next step resumes exactly there.
async fn plan_from<S: FileSource>(
    source: &mut S,
    job: &mut RestoreJob,
    request: &RestoreRequestV1,
    settings: &RestoreSettings,
) -> Result<Page, PlanError> {
    let budget = settings.chunk_max_blobs * PAGE_CHUNKS * S::STEP_PAGES;
    let mut pos = job.plan.clone();
    let mut chunks: Vec<PlannedChunk> = Vec::new();
    let mut open: Option<OpenChunk> = None;
    let mut read = 0usize;
    while read < budget {
        let Some(table) = job.tables.get(pos.table).cloned() else {
            pos.done = true;
            break;
        };
        let page = source.page(&table.source, pos.marker.as_deref()).await?;
        let mut page_done = true;
        let done_up_to = pos.after.clone();
        let source = &*source;
        let mut items = page
            .items
            .iter()
            .filter(|i| done_up_to.as_ref().is_none_or(|a| i.path > *a))
            .collect::<Vec<_>>()
            .into_iter();
        let mut reads = FuturesOrdered::new();
        let mut ahead = 1;
        loop {
            if read >= budget {
                page_done = items.len() == 0 && reads.is_empty();
                break;
            }
            while reads.len() < ahead
                && let Some(next) = items.next()
            {
                reads.push_back(files_of(source, &table.source, next, request));
            }
            let Some((item, files)) = reads.next().await else {
                break;
            };
            let (files, cost) = files?;
            read += cost;
            ahead = budget
                .saturating_sub(read)
                .div_ceil(cost.max(1))
                .clamp(1, READ_AHEAD);
            for file in files {
                add(job, &mut chunks, &mut open, pos.table, file, settings);
            }
            pos.after = Some(item.path.clone());
        }
        if !page_done {
            break;
        }
        pos.after = None;
        match page.next_marker {
            Some(m) => pos.marker = Some(m),
            None => {
                chunks.extend(open.take().map(OpenChunk::seal));
                pos.table += 1;
                pos.marker = None;
            }
        }
    }
    chunks.extend(open.take().map(OpenChunk::seal));
    if job.tables.get(pos.table).is_none() {
        pos.done = true;
    }
    let first_chunk = job.totals.chunks;
    job.totals.chunks += chunks.len() as u64;
    let number = job.plan.pages;
    pos.pages = number + chunks.len().div_ceil(PAGE_CHUNKS) as u64;
    Ok(Page {
        number,
        first_chunk,
        chunks,
        position: pos,
    })
}

/// The files `item` names, with the item (for reads kept in flight together).
async fn files_of<'a>(
    source: &impl FileSource,
    table: &TableName,
    item: &'a BlobItem,
    request: &RestoreRequestV1,
) -> (&'a BlobItem, Result<(Vec<PlannedFile>, usize), PlanError>) {
    (item, source.files(table, item, request).await)
}

/// The chunk being filled: its target table and files.
struct OpenChunk {
    target_table: TableName,
    files: Vec<PlannedFile>,
    bytes: u64,
}

impl OpenChunk {
    /// The chunk as its page keeps it: catalog lines, runs of one segment each, when every
    /// file came from the catalog; the files themselves otherwise.
    fn seal(self) -> PlannedChunk {
        let mut segments: Vec<SegmentLines> = Vec::new();
        for f in &self.files {
            let Origin::Cataloged { segment, line } = &f.origin else {
                return self.written_out();
            };
            match segments.last_mut() {
                Some(s) if *s.segment == **segment => s.lines.push(*line),
                _ => segments.push(SegmentLines {
                    segment: segment.to_string(),
                    lines: vec![*line],
                }),
            }
        }
        PlannedChunk {
            target_table: self.target_table,
            files: PlannedFiles::Cataloged { segments },
        }
    }

    fn written_out(self) -> PlannedChunk {
        let blobs = self
            .files
            .into_iter()
            .map(|f| ChunkBlob {
                path: f.path,
                day: f.day,
                rows: f.rows,
                bytes: f.bytes,
                outcome: BlobOutcome::Pending,
            })
            .collect();
        PlannedChunk {
            target_table: self.target_table,
            files: PlannedFiles::Listed { blobs },
        }
    }
}

/// Adds one file to the open chunk of table `table`, closing it first when it is full.
fn add(
    job: &mut RestoreJob,
    chunks: &mut Vec<PlannedChunk>,
    open: &mut Option<OpenChunk>,
    table: usize,
    a: PlannedFile,
    settings: &RestoreSettings,
) {
    let size = a.bytes.unwrap_or(0);
    let full = open.as_ref().is_some_and(|c| {
        c.files.len() >= settings.chunk_max_blobs
            || !c.files.is_empty() && c.bytes + size > settings.chunk_max_bytes
    });
    if full {
        chunks.extend(open.take().map(OpenChunk::seal));
    }
    let Some(t) = job.tables.get_mut(table) else {
        return;
    };
    let chunk = open.get_or_insert_with(|| OpenChunk {
        target_table: t.target.clone(),
        files: Vec::new(),
        bytes: 0,
    });
    if let Some(rows) = a.rows {
        *t.expected.entry(a.day).or_default() += rows;
    }
    job.totals.artifacts += 1;
    job.totals.rows += a.rows.unwrap_or(0);
    job.totals.bytes += size;
    chunk.bytes += size;
    chunk.files.push(a);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::ids::{ExportName, JobId};
    use crate::restore::state::{JobStatus, JobTable};
    use crate::storage::catalog::ArtifactSource;

    /// Catalog segments in memory, per table: the rows of each artifact (0: an empty file,
    /// which no plan takes), listed `page_size` segments a page.
    struct Segments {
        tables: BTreeMap<TableName, Vec<Vec<u64>>>,
        page_size: usize,
    }

    fn day() -> Day {
        Day::parse_folder("20260301").unwrap()
    }

    impl FileSource for Segments {
        const STEP_PAGES: usize = 1;

        async fn page(
            &mut self,
            table: &TableName,
            marker: Option<&str>,
        ) -> Result<ListPage, PlanError> {
            let from: usize = marker.map_or(0, |m| m.parse().unwrap());
            let n = self.tables[table].len();
            let to = n.min(from + self.page_size);
            let items = (from..to)
                .map(|i| BlobItem {
                    path: format!("{table}/seg-{i:04}"),
                    size: 1,
                    etag: azure_core::http::Etag::from("e").into(),
                    last_modified: OffsetDateTime::UNIX_EPOCH,
                })
                .collect();
            Ok(ListPage {
                items,
                next_marker: (to < n).then(|| to.to_string()),
            })
        }

        async fn files(
            &self,
            table: &TableName,
            item: &BlobItem,
            request: &RestoreRequestV1,
        ) -> Result<(Vec<PlannedFile>, usize), PlanError> {
            let i: usize = item.path.rsplit('-').next().unwrap().parse().unwrap();
            let segment: Arc<str> = Arc::from(item.path.as_str());
            let files: Vec<PlannedFile> = self.tables[table][i]
                .iter()
                .enumerate()
                .map(|(line, rows)| {
                    let a = Artifact {
                        path: format!("{}/{line}", item.path),
                        day: day(),
                        rows: *rows,
                        bytes: Some(10),
                        source: ArtifactSource::ContinuousExport {
                            export: ExportName::new("adxbk_T").unwrap(),
                        },
                        produced_at: OffsetDateTime::UNIX_EPOCH,
                    };
                    PlannedFile::cataloged(a, &segment, line)
                })
                .filter(|f| wanted(request, f))
                .collect();
            let cost = files.len();
            Ok((files, cost))
        }
    }

    fn setup() -> (Segments, RestoreJob, RestoreRequestV1, RestoreSettings) {
        let request = RestoreRequestV1::parse(
            r#"{"version":1,"target":{"clusterUri":"https://dr.kusto.windows.net","database":"DR"}}"#,
        )
        .unwrap();
        let mut tables = BTreeMap::new();
        let mut job = RestoreJob::new(JobId::new("r-1").unwrap(), Some(request.clone()));
        job.status = JobStatus::Planning;
        for (name, segments) in [("A", 40usize), ("B", 9)] {
            let table = TableName::new(name).unwrap();
            // Every seventh file is empty: planned by no one, yet read.
            let rows = (0..segments)
                .map(|s| (0..25u64).map(|l| (s as u64 * 25 + l) % 7).collect())
                .collect();
            tables.insert(table.clone(), rows);
            job.tables.push(JobTable {
                source: table.clone(),
                target: table,
                partition_column: None,
                target_was_empty: true,
                expected: BTreeMap::new(),
            });
        }
        let env = crate::settings::Env::from_pairs([
            ("BackupStorage", "UseDevelopmentStorage=true"),
            ("AdxBackup__ClusterUri", "http://127.0.0.1:9"),
            ("AdxBackup__Databases", "Sales"),
            ("AdxBackup__RestoreChunkBlobs", "3"),
        ]);
        let settings = crate::settings::Settings::load(&env).unwrap().restore;
        let source = Segments {
            tables,
            page_size: 7,
        };
        (source, job, request, settings)
    }

    /// Every line a page names, in order, as (table, segment, line).
    fn lines(page: &Page) -> Vec<(TableName, String, u64)> {
        let mut out = Vec::new();
        for c in &page.chunks {
            let PlannedFiles::Cataloged { segments } = &c.files else {
                panic!("a cataloged chunk written out: {c:?}");
            };
            for s in segments {
                for l in &s.lines {
                    out.push((c.target_table.clone(), s.segment.clone(), *l));
                }
            }
        }
        out
    }

    #[test]
    fn steps_with_read_ahead_plan_every_wanted_file_once_in_order_and_a_repeated_step_cuts_the_same_page()
     {
        let (mut source, mut job, request, settings) = setup();
        let mut planned = Vec::new();
        let mut next_chunk = 0;
        let mut steps = 0;
        while !job.plan.done {
            let before = job.clone();
            let page =
                futures::executor::block_on(plan_from(&mut source, &mut job, &request, &settings))
                    .unwrap();
            let mut again = before;
            let repeat = futures::executor::block_on(plan_from(
                &mut source,
                &mut again,
                &request,
                &settings,
            ))
            .unwrap();
            assert_eq!(
                (&repeat.chunks, &repeat.position),
                (&page.chunks, &page.position)
            );
            assert_eq!(
                (page.number, page.first_chunk),
                (job.plan.pages, next_chunk)
            );
            for c in &page.chunks {
                let n: usize = match &c.files {
                    PlannedFiles::Cataloged { segments } => {
                        segments.iter().map(|s| s.lines.len()).sum()
                    }
                    PlannedFiles::Listed { blobs } => blobs.len(),
                };
                assert!((1..=3).contains(&n), "{c:?}");
            }
            next_chunk += page.chunks.len() as u64;
            planned.extend(lines(&page));
            job.plan = page.position;
            steps += 1;
        }
        let mut wanted = Vec::new();
        for (table, segments) in &source.tables {
            for (s, rows) in segments.iter().enumerate() {
                for (l, r) in rows.iter().enumerate() {
                    if *r > 0 {
                        wanted.push((table.clone(), format!("{table}/seg-{s:04}"), l as u64));
                    }
                }
            }
        }
        assert!(steps > 3, "the budget ends steps mid-page: {steps}");
        assert_eq!(planned, wanted);
        assert_eq!(job.totals.chunks, next_chunk);
        assert_eq!(job.totals.artifacts, wanted.len() as u64);
        let rows: u64 = source.tables.values().flatten().flatten().sum();
        assert_eq!(job.totals.rows, rows);
        assert_eq!(
            job.tables.iter().map(|t| t.expected[&day()]).sum::<u64>(),
            rows
        );
    }

    #[test]
    fn a_listed_file_writes_its_chunk_out_and_catalog_runs_group_by_segment() {
        let a = |segment: &str, line: usize| {
            let artifact = Artifact {
                path: format!("{segment}/{line}"),
                day: day(),
                rows: 1,
                bytes: Some(1),
                source: ArtifactSource::ContinuousExport {
                    export: ExportName::new("adxbk_T").unwrap(),
                },
                produced_at: OffsetDateTime::UNIX_EPOCH,
            };
            PlannedFile::cataloged(artifact, &Arc::from(segment), line)
        };
        let chunk = |files: Vec<PlannedFile>| OpenChunk {
            target_table: TableName::new("T").unwrap(),
            files,
            bytes: 0,
        };
        let sealed = chunk(vec![a("s1", 4), a("s1", 5), a("s2", 0), a("s1", 9)]).seal();
        let PlannedFiles::Cataloged { segments } = sealed.files else {
            panic!("{sealed:?}");
        };
        let runs: Vec<(&str, &[u64])> = segments
            .iter()
            .map(|s| (s.segment.as_str(), s.lines.as_slice()))
            .collect();
        assert_eq!(
            runs,
            [("s1", &[4, 5][..]), ("s2", &[0][..]), ("s1", &[9][..])]
        );
        let mut listed = a("s3", 1);
        listed.origin = Origin::Listed;
        let sealed = chunk(vec![a("s1", 0), listed]).seal();
        let PlannedFiles::Listed { blobs } = sealed.files else {
            panic!("{sealed:?}");
        };
        let paths: Vec<&str> = blobs.iter().map(|b| b.path.as_str()).collect();
        assert_eq!(paths, ["s1/0", "s3/1"]);
    }
}
