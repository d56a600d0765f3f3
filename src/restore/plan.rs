//! Planning: the catalog (continuous-export and backfill segments alike, as its listing names
//! them), read one segment at a time, cut into chunks of at most N files or B bytes, one
//! table per chunk, keeping only live artifacts (a reconciled day's current set, see
//! `storage::supersede`). A step plans one page (a bounded number of files) and
//! records where it stopped, so a catalog of any size is planned in bounded steps with
//! bounded memory, and a step that is repeated cuts the same chunks again.
//!
//! Without a catalog (`source.fromListing`), the same chunks are cut from a listing of each
//! table's data folder, one listing page per step, resumed from the listing's marker. A
//! listing knows each file's day (its folder) and size, not its rows, and cannot tell a
//! valid file from one a failed export left behind.

use time::OffsetDateTime;

use super::request::RestoreRequestV1;
use super::state::{BlobOutcome, ChunkBlob, ChunkState, PlanPosition, RestoreChunk, RestoreJob};
use crate::ids::{DatabaseName, Day, IdError, TableName};
use crate::settings::RestoreSettings;
use crate::storage::catalog::{Artifact, Catalog};
use crate::storage::layout::Layout;
use crate::storage::supersede;
use crate::storage::supersede::LiveSet;
use crate::storage::{BlobItem, BlobStore, ListPage, StorageError};

/// Chunks' worth of files one planning step reads at most.
pub const PAGE_CHUNKS: usize = 10;
/// Catalog segments one listing page names.
const LIST_PAGE: u32 = 100;
/// Blobs one listing page of a table's data folder names (a step reads about one page).
const DATA_LIST_PAGE: u32 = 1000;

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
}

impl From<Artifact> for PlannedFile {
    fn from(a: Artifact) -> Self {
        Self {
            path: a.path,
            day: a.day,
            rows: Some(a.rows),
            bytes: a.bytes,
            produced_at: a.produced_at,
        }
    }
}

impl PlannedFile {
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
        })
    }
}

/// What one planning step produced.
#[derive(Debug, Default)]
pub struct Page {
    pub chunks: Vec<RestoreChunk>,
    pub position: PlanPosition,
}

/// Why a page could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Id(#[from] IdError),
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
        let files: Vec<PlannedFile> = self
            .catalog
            .read_path(&item.path)
            .await?
            .into_iter()
            .filter(|a| live.is_live(&item.path, a))
            .map(PlannedFile::from)
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
async fn plan_from(
    source: &mut impl FileSource,
    job: &mut RestoreJob,
    request: &RestoreRequestV1,
    settings: &RestoreSettings,
) -> Result<Page, PlanError> {
    let budget = settings.chunk_max_blobs * PAGE_CHUNKS;
    let mut pos = job.plan.clone();
    let mut chunks: Vec<RestoreChunk> = Vec::new();
    let mut open: Option<RestoreChunk> = None;
    let mut read = 0usize;
    while read < budget {
        let Some(table) = job.tables.get(pos.table).cloned() else {
            pos.done = true;
            break;
        };
        let page = source.page(&table.source, pos.marker.as_deref()).await?;
        let mut page_done = true;
        let done_up_to = pos.after.clone();
        for item in page
            .items
            .iter()
            .filter(|i| done_up_to.as_ref().is_none_or(|a| i.path > *a))
        {
            if read >= budget {
                page_done = false;
                break;
            }
            let (files, cost) = source.files(&table.source, item, request).await?;
            read += cost;
            for file in files {
                add(job, &mut chunks, &mut open, pos.table, file, settings)?;
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
                chunks.extend(open.take());
                pos.table += 1;
                pos.marker = None;
            }
        }
    }
    chunks.extend(open.take());
    if job.tables.get(pos.table).is_none() {
        pos.done = true;
    }
    job.totals.chunks += chunks.len() as u64;
    Ok(Page {
        chunks,
        position: pos,
    })
}

/// Adds one file to the open chunk of table `table`, closing it first when it is full.
fn add(
    job: &mut RestoreJob,
    chunks: &mut Vec<RestoreChunk>,
    open: &mut Option<RestoreChunk>,
    table: usize,
    a: PlannedFile,
    settings: &RestoreSettings,
) -> Result<(), IdError> {
    let full = open.as_ref().is_some_and(|c| {
        c.blobs.len() >= settings.chunk_max_blobs
            || !c.blobs.is_empty() && bytes(c) + a.bytes.unwrap_or(0) > settings.chunk_max_bytes
    });
    if full {
        chunks.extend(open.take());
    }
    let chunk = match open {
        Some(c) => c,
        None => {
            let n = job.totals.chunks + chunks.len() as u64;
            let target = job.tables.get(table).map(|t| t.target.clone());
            let Some(target_table) = target else {
                return Ok(());
            };
            open.insert(RestoreChunk {
                job: job.job.clone(),
                chunk: RestoreChunk::id(n)?,
                target_table,
                state: ChunkState::Planned,
                blobs: Vec::new(),
                sent_at: None,
                poll: 0,
                error: None,
            })
        }
    };
    if let (Some(t), Some(rows)) = (job.tables.get_mut(table), a.rows) {
        *t.expected.entry(a.day).or_default() += rows;
    }
    job.totals.artifacts += 1;
    job.totals.rows += a.rows.unwrap_or(0);
    job.totals.bytes += a.bytes.unwrap_or(0);
    chunk.blobs.push(ChunkBlob {
        path: a.path,
        day: a.day,
        rows: a.rows,
        bytes: a.bytes,
        outcome: BlobOutcome::Pending,
    });
    Ok(())
}

fn bytes(c: &RestoreChunk) -> u64 {
    c.blobs.iter().map(|b| b.bytes.unwrap_or(0)).sum()
}
