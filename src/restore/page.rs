//! Plan pages: each planning step writes the chunks it cut as one document, and the driver
//! makes each chunk's own document from its page as it starts the chunk. Planning a catalog
//! of ten million files then writes about a thousand small pages instead of a hundred
//! thousand chunk documents, and a cataloged chunk names its files by catalog line, so the
//! plan never copies the catalog.

use std::sync::Arc;

use bytes::Bytes;

use super::plan::{PAGE_CHUNKS, Page};
use super::state::{BlobOutcome, ChunkBlob, ChunkState, PageCursor, PlanPage, PlannedFiles};
use super::state::{PlannedChunk, RestoreChunk};
use crate::ids::JobId;
use crate::storage::catalog::{Artifact, Catalog};
use crate::storage::layout::Layout;
use crate::storage::{BlobStore, StorageError};

/// Writes a planning step's chunks as plan pages of `PAGE_CHUNKS` each, once: a repeated
/// step cuts the same chunks and finds its pages written. A step that cut no chunk writes
/// nothing.
pub async fn save(
    blobs: &BlobStore,
    layout: &Layout,
    job: &JobId,
    step: &Page,
) -> Result<(), StorageError> {
    for (i, chunks) in step.chunks.chunks(PAGE_CHUNKS).enumerate() {
        let path = layout.restore_plan_page(job, step.number + i as u64);
        let doc = PlanPage {
            job: job.clone(),
            first_chunk: step.first_chunk + (i * PAGE_CHUNKS) as u64,
            chunks: chunks.to_vec(),
        };
        let body = serde_json::to_vec(&doc).map_err(|e| StorageError::decode(&path, e))?;
        match blobs.create_new(&path, Bytes::from(body)).await {
            Ok(_) => {}
            Err(e) if e.is_conflict() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads chunks out of a job's plan pages in order, keeping the page and the catalog
/// segment last read (consecutive chunks share them).
pub struct Pages<'a> {
    /// Where the job's documents are.
    state: &'a BlobStore,
    state_layout: &'a Layout,
    job: &'a JobId,
    /// The backup whose catalog the pages name.
    catalog: Catalog<'a>,
    page: Option<(u64, Arc<PlanPage>)>,
    segment: Option<(String, Arc<Vec<Artifact>>)>,
}

impl<'a> Pages<'a> {
    pub fn new(
        state: &'a BlobStore,
        state_layout: &'a Layout,
        job: &'a JobId,
        backup: &'a BlobStore,
        backup_layout: &'a Layout,
    ) -> Self {
        Self {
            state,
            state_layout,
            job,
            catalog: Catalog::new(backup, backup_layout),
            page: None,
            segment: None,
        }
    }

    /// Chunk `n`'s document as planned, moving `cursor` on to the page that holds it
    /// (chunks are started in order, so the cursor only moves forward).
    pub async fn chunk(
        &mut self,
        cursor: &mut PageCursor,
        n: u64,
    ) -> Result<RestoreChunk, StorageError> {
        loop {
            let page = self.page(cursor.page).await?;
            let index = n.checked_sub(page.first_chunk).ok_or_else(|| {
                StorageError::decode(
                    &self.state_layout.restore_plan_page(self.job, cursor.page),
                    format!("chunk {n} is before the page's first, {}", page.first_chunk),
                )
            })?;
            match page.chunks.get(index as usize).cloned() {
                Some(planned) => return self.document(n, planned).await,
                None => {
                    cursor.first_chunk = page.first_chunk + page.chunks.len() as u64;
                    cursor.page += 1;
                }
            }
        }
    }

    async fn page(&mut self, number: u64) -> Result<Arc<PlanPage>, StorageError> {
        if let Some((n, doc)) = &self.page
            && *n == number
        {
            return Ok(Arc::clone(doc));
        }
        let path = self.state_layout.restore_plan_page(self.job, number);
        let (body, _) = self.state.read(&path).await?;
        let doc: Arc<PlanPage> = Arc::new(crate::storage::state::decode(&path, &body)?);
        self.page = Some((number, Arc::clone(&doc)));
        Ok(doc)
    }

    async fn document(
        &mut self,
        n: u64,
        planned: PlannedChunk,
    ) -> Result<RestoreChunk, StorageError> {
        let blobs = match planned.files {
            PlannedFiles::Listed { blobs } => blobs,
            PlannedFiles::Cataloged { segments } => {
                let mut blobs = Vec::new();
                for s in segments {
                    let artifacts = self.segment(&s.segment).await?;
                    for line in s.lines {
                        let a = artifacts.get(line as usize).ok_or_else(|| {
                            StorageError::decode(
                                &s.segment,
                                format!(
                                    "the plan of restore {} takes its line {line}, it has {}: the catalog changed under the restore; start it again",
                                    self.job,
                                    artifacts.len()
                                ),
                            )
                        })?;
                        blobs.push(ChunkBlob {
                            path: a.path.clone(),
                            day: a.day,
                            rows: Some(a.rows),
                            bytes: a.bytes,
                            outcome: BlobOutcome::Pending,
                        });
                    }
                }
                blobs
            }
        };
        Ok(RestoreChunk {
            job: self.job.clone(),
            chunk: RestoreChunk::id(n).map_err(|e| StorageError::decode("chunk id", e))?,
            target_table: planned.target_table,
            state: ChunkState::Planned,
            blobs,
            sent_at: None,
            poll: 0,
            error: None,
        })
    }

    async fn segment(&mut self, path: &str) -> Result<Arc<Vec<Artifact>>, StorageError> {
        if let Some((p, artifacts)) = &self.segment
            && p == path
        {
            return Ok(Arc::clone(artifacts));
        }
        let artifacts = Arc::new(self.catalog.read_path(path).await?);
        self.segment = Some((path.to_owned(), Arc::clone(&artifacts)));
        Ok(artifacts)
    }
}
