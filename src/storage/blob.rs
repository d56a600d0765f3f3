//! Blob access for the backup's containers named in the settings: the data container and the
//! state container (the same one unless `AdxBackup__StateContainer` says otherwise).
//!
//! Paths are blob names relative to the container; the layout module decides what they are,
//! and which container each belongs in ([`Layout::area`]): every call picks the container from
//! the path, so no caller names one. A listing whose prefix spans both areas (only `""` or the
//! prefix itself, in tests) lists the data container, then the state container.
//! Every call goes through [`RetryPolicy`] (SDK retries are off) and returns a classified
//! [`StorageError`].
//!
//! Conditional writes are how concurrent workers agree: [`BlobStore::write_if_match`] and
//! [`BlobStore::create_new`] return [`StorageError::Conflict`] when someone else won. A retried
//! conditional write can meet its own earlier attempt, whose answer was lost; it then reads
//! the blob back, and identical content counts as our write having landed.
//!
//! Listing streams page by page ([`BlobStore::list_pages`], [`BlobStore::list`]) and never
//! holds more than one page; [`BlobStore::list_page`] exposes the marker for callers that
//! checkpoint.

use std::ops::Range;
use std::sync::Arc;

use azure_storage_blob::models::{
    BlobClientDownloadOptions, BlobClientUploadOptions, BlobContainerClientListBlobsOptions,
    BlobItem as SdkBlobItem, HttpRange,
};
use azure_storage_blob::{BlobContainerClient, BlobContainerClientOptions};
use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt, stream};
use time::OffsetDateTime;

use crate::retry::RetryPolicy;
use crate::settings::StorageSettings;

use super::auth::{Service, ServiceAccess};
use super::error::{ATTEMPT_TIMEOUT, StorageError, error_code};
use super::layout::{Area, Layout};

/// The most blobs the service returns in one listing page.
pub const MAX_PAGE_SIZE: u32 = 5000;

/// A blob version as the service names it; the token for conditional writes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ETag(String);

impl ETag {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ETag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<azure_core::http::Etag> for ETag {
    fn from(etag: azure_core::http::Etag) -> Self {
        Self(etag.to_string())
    }
}

/// One listed blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobItem {
    pub path: String,
    pub size: u64,
    pub etag: ETag,
    pub last_modified: OffsetDateTime,
}

/// One listing page and the marker to continue from (`None` at the end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    pub items: Vec<BlobItem>,
    pub next_marker: Option<String>,
}

/// What a write requires of the blob's current state.
#[derive(Debug, Clone)]
enum Condition {
    None,
    IfMatch(ETag),
    IfAbsent,
}

impl Condition {
    fn upload_options(&self) -> BlobClientUploadOptions<'static> {
        let options = BlobClientUploadOptions::default();
        match self {
            Self::None => options,
            Self::IfMatch(etag) => BlobClientUploadOptions {
                if_match: Some(etag.as_str().into()),
                ..options
            },
            Self::IfAbsent => options.if_not_exists(),
        }
    }
}

/// One container's client and name.
#[derive(Clone)]
struct Container {
    client: Arc<BlobContainerClient>,
    name: String,
}

impl Container {
    fn connect(settings: &StorageSettings, name: &str) -> Result<Self, StorageError> {
        let access = ServiceAccess::new(&settings.blob_service_uri, &settings.auth, Service::Blob)?;
        let mut options = BlobContainerClientOptions {
            client_options: access.client_options()?,
            ..Default::default()
        };
        if let Some(version) = access.api_version() {
            options.version = version;
        }
        let client = BlobContainerClient::new(
            access.resource_url(name),
            access.credential(),
            Some(options),
        )
        .map_err(|e| StorageError::from_sdk("connect", &access.display_url(name), &e))?;
        tracing::debug!(
            container = %access.display_url(name),
            auth = access.mode(),
            "blob store configured"
        );
        Ok(Self {
            client: Arc::new(client),
            name: name.to_owned(),
        })
    }
}

/// The backup's containers. Cheap to clone; clones share one connection pool.
#[derive(Clone)]
pub struct BlobStore {
    data: Container,
    /// None: state lives in the data container.
    state: Option<Container>,
    /// Decides each path's area, hence its container.
    layout: Layout,
    retry: RetryPolicy,
}

impl BlobStore {
    /// Builds the clients of the data and state containers without touching the network.
    pub fn new(settings: &StorageSettings, retry: RetryPolicy) -> Result<Self, StorageError> {
        let data = Container::connect(settings, &settings.container)?;
        let state = (settings.state_container != settings.container)
            .then(|| Container::connect(settings, &settings.state_container))
            .transpose()?;
        Ok(Self {
            data,
            state,
            layout: Layout::new(&settings.prefix),
            retry,
        })
    }

    /// A store of one other container of the same account, state and data alike (a restore
    /// from another backup; tests use throwaway containers).
    pub fn for_container(
        settings: &StorageSettings,
        container: &str,
        retry: RetryPolicy,
    ) -> Result<Self, StorageError> {
        Ok(Self {
            data: Container::connect(settings, container)?,
            state: None,
            layout: Layout::new(&settings.prefix),
            retry,
        })
    }

    /// The data container (the one Kusto writes into and reads from).
    pub fn container_name(&self) -> &str {
        &self.data.name
    }

    /// The container of the state documents.
    pub fn state_container_name(&self) -> &str {
        self.state.as_ref().unwrap_or(&self.data).name.as_str()
    }

    /// The container `path` belongs in.
    fn container(&self, path: &str) -> &Container {
        match (&self.state, self.layout.area(path)) {
            (Some(state), Area::State) => state,
            _ => &self.data,
        }
    }

    /// The containers a listing of `prefix` reads, data first.
    fn containers_under(&self, prefix: &str) -> Vec<&Container> {
        let Some(state) = &self.state else {
            return vec![&self.data];
        };
        let (data, in_state) = self.layout.areas_under(prefix);
        [(data, &self.data), (in_state, state)]
            .into_iter()
            .filter_map(|(wanted, c)| wanted.then_some(c))
            .collect()
    }

    fn all(&self) -> impl Iterator<Item = &Container> {
        std::iter::once(&self.data).chain(self.state.as_ref())
    }

    /// Creates the containers if they do not exist yet; safe to call on every start.
    pub async fn ensure_container(&self) -> Result<(), StorageError> {
        for c in self.all() {
            let target = format!("container {}", c.name);
            self.retry
                .run_bounded(
                    "container.create",
                    ATTEMPT_TIMEOUT,
                    || StorageError::timeout("container.create", &target),
                    || async {
                        match c.client.create(None).await {
                            Ok(_) => Ok(()),
                            Err(e) if error_code(&e) == Some("ContainerAlreadyExists") => Ok(()),
                            Err(e) => Err(StorageError::from_sdk("container.create", &target, &e)),
                        }
                    },
                )
                .await?;
        }
        Ok(())
    }

    /// Deletes the containers and everything in them; missing is fine.
    pub async fn delete_container(&self) -> Result<(), StorageError> {
        for c in self.all() {
            let target = format!("container {}", c.name);
            self.retry
                .run_bounded(
                    "container.delete",
                    ATTEMPT_TIMEOUT,
                    || StorageError::timeout("container.delete", &target),
                    || async {
                        match c.client.delete(None).await {
                            Ok(_) => Ok(()),
                            Err(e) if error_code(&e) == Some("ContainerNotFound") => Ok(()),
                            Err(e) => Err(StorageError::from_sdk("container.delete", &target, &e)),
                        }
                    },
                )
                .await?;
        }
        Ok(())
    }

    /// The blob's content and current ETag.
    pub async fn read(&self, path: &str) -> Result<(Bytes, ETag), StorageError> {
        let target = self.target(path);
        self.retry
            .run_bounded(
                "blob.read",
                ATTEMPT_TIMEOUT,
                || StorageError::timeout("blob.read", &target),
                || self.read_once(path, &target, None),
            )
            .await
    }

    /// Bytes `range` of the blob (a parquet footer: verify reads files without their data).
    pub async fn read_range(&self, path: &str, range: Range<u64>) -> Result<Bytes, StorageError> {
        let target = self.target(path);
        let (body, _) = self
            .retry
            .run_bounded(
                "blob.read_range",
                ATTEMPT_TIMEOUT,
                || StorageError::timeout("blob.read_range", &target),
                || self.read_once(path, &target, Some(HttpRange::from(range.clone()))),
            )
            .await?;
        Ok(body)
    }

    /// Like [`BlobStore::read`], with a missing blob as `None`.
    pub async fn read_opt(&self, path: &str) -> Result<Option<(Bytes, ETag)>, StorageError> {
        match self.read(path).await {
            Ok(found) => Ok(Some(found)),
            Err(StorageError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Writes the blob whatever is there.
    pub async fn write(&self, path: &str, body: Bytes) -> Result<ETag, StorageError> {
        self.write_with("blob.write", path, body, Condition::None)
            .await
    }

    /// Replaces the blob only if it is still at `etag`; [`StorageError::Conflict`] otherwise.
    pub async fn write_if_match(
        &self,
        path: &str,
        body: Bytes,
        etag: &ETag,
    ) -> Result<ETag, StorageError> {
        let condition = Condition::IfMatch(etag.clone());
        self.write_with("blob.write_if_match", path, body, condition)
            .await
    }

    /// Creates the blob only if it does not exist; [`StorageError::Conflict`] otherwise.
    pub async fn create_new(&self, path: &str, body: Bytes) -> Result<ETag, StorageError> {
        self.write_with("blob.create_new", path, body, Condition::IfAbsent)
            .await
    }

    /// Deletes the blob; a blob that is already gone is fine.
    pub async fn delete(&self, path: &str) -> Result<(), StorageError> {
        let target = self.target(path);
        let deleted = self
            .retry
            .run_bounded(
                "blob.delete",
                ATTEMPT_TIMEOUT,
                || StorageError::timeout("blob.delete", &target),
                || async {
                    self.container(path)
                        .client
                        .blob_client(path)
                        .delete(None)
                        .await
                        .map(|_| ())
                        .map_err(|e| StorageError::from_sdk("blob.delete", &target, &e))
                },
            )
            .await;
        match deleted {
            Err(StorageError::NotFound { .. }) => Ok(()),
            other => other,
        }
    }

    pub async fn exists(&self, path: &str) -> Result<bool, StorageError> {
        let target = self.target(path);
        self.retry
            .run_bounded(
                "blob.exists",
                ATTEMPT_TIMEOUT,
                || StorageError::timeout("blob.exists", &target),
                || async {
                    self.container(path)
                        .client
                        .blob_client(path)
                        .exists()
                        .await
                        .map_err(|e| StorageError::from_sdk("blob.exists", &target, &e))
                },
            )
            .await
    }

    /// One page of blobs under `prefix`, starting at `marker` (`None` for the first page). A
    /// marker belongs to one container: a prefix spanning the data and the state container
    /// (with a separate state container) is refused; [`BlobStore::list_pages`] takes it.
    pub async fn list_page(
        &self,
        prefix: &str,
        marker: Option<&str>,
        page_size: u32,
    ) -> Result<ListPage, StorageError> {
        match self.containers_under(prefix).as_slice() {
            [one] => self.list_page_in(one, prefix, marker, page_size).await,
            _ => Err(StorageError::refused(
                "blob.list",
                &format!("prefix {prefix:?}"),
                "the prefix spans the data and the state container".to_owned(),
                "page through one area's prefix (a table's data or catalog folder, $state/...)",
            )),
        }
    }

    async fn list_page_in(
        &self,
        c: &Container,
        prefix: &str,
        marker: Option<&str>,
        page_size: u32,
    ) -> Result<ListPage, StorageError> {
        let target = format!("container {} prefix {prefix:?}", c.name);
        self.retry
            .run_bounded(
                "blob.list",
                ATTEMPT_TIMEOUT,
                || StorageError::timeout("blob.list", &target),
                || self.list_page_once(c, prefix, marker, page_size, &target),
            )
            .await
    }

    /// Every blob under `prefix`, page by page (pages of `page_size`, at most 5000); a prefix
    /// that spans both containers yields the data container's pages, then the state's.
    pub fn list_pages(
        &self,
        prefix: &str,
        page_size: u32,
    ) -> impl Stream<Item = Result<Vec<BlobItem>, StorageError>> + Send + 'static {
        let containers: Vec<Container> =
            self.containers_under(prefix).into_iter().cloned().collect();
        let pages: Vec<_> = containers
            .into_iter()
            .map(|c| {
                let store = self.clone();
                let prefix = prefix.to_owned();
                // State: `Some(marker)` while there is a page to fetch, `None` once done.
                stream::try_unfold(Some(None::<String>), move |state| {
                    let (store, prefix, c) = (store.clone(), prefix.clone(), c.clone());
                    async move {
                        let Some(marker) = state else {
                            return Ok(None);
                        };
                        let page = store
                            .list_page_in(&c, &prefix, marker.as_deref(), page_size)
                            .await?;
                        Ok(Some((page.items, page.next_marker.map(Some))))
                    }
                })
            })
            .collect();
        StreamExt::flatten(stream::iter(pages))
    }

    /// Every blob under `prefix`, one at a time, fetched in pages of 5000.
    pub fn list(
        &self,
        prefix: &str,
    ) -> impl Stream<Item = Result<BlobItem, StorageError>> + Send + 'static {
        self.list_pages(prefix, MAX_PAGE_SIZE)
            .map_ok(|items| stream::iter(items.into_iter().map(Ok)))
            .try_flatten()
    }

    fn target(&self, path: &str) -> String {
        format!("blob {}/{path}", self.container(path).name)
    }

    async fn read_once(
        &self,
        path: &str,
        target: &str,
        range: Option<HttpRange>,
    ) -> Result<(Bytes, ETag), StorageError> {
        let sdk = |e: azure_core::Error| StorageError::from_sdk("blob.read", target, &e);
        let options = BlobClientDownloadOptions {
            range,
            ..Default::default()
        };
        let download = self
            .container(path)
            .client
            .blob_client(path)
            .download(Some(options))
            .await
            .map_err(sdk)?;
        let etag = download.properties.etag.clone().ok_or_else(|| {
            StorageError::bad_answer("blob.read", target, "no ETag in the answer")
        })?;
        let body = download.body.collect().await.map_err(sdk)?;
        Ok((body, etag.into()))
    }

    async fn write_with(
        &self,
        op: &'static str,
        path: &str,
        body: Bytes,
        condition: Condition,
    ) -> Result<ETag, StorageError> {
        let target = self.target(path);
        let mut attempts = 0u32;
        let written = self
            .retry
            .run_bounded(
                op,
                ATTEMPT_TIMEOUT,
                || StorageError::timeout(op, &target),
                || {
                    attempts += 1;
                    self.upload_once(op, path, &target, body.clone(), &condition)
                },
            )
            .await;
        let written = match (written, &condition) {
            // Under an immutability policy the service may answer a create over an existing
            // blob as immutable rather than as existing; either way the blob is there.
            (Err(StorageError::Immutable { target, source, .. }), Condition::IfAbsent) => {
                Err(StorageError::Conflict { target, source })
            }
            (other, _) => other,
        };
        match written {
            Err(conflict @ StorageError::Conflict { .. }) if attempts > 1 => {
                self.landed_earlier(path, &body).await?.ok_or(conflict)
            }
            other => other,
        }
    }

    /// After a retried conditional write lost: did an earlier attempt of ours land?
    async fn landed_earlier(&self, path: &str, body: &Bytes) -> Result<Option<ETag>, StorageError> {
        let ours = self
            .read_opt(path)
            .await?
            .filter(|(content, _)| content == body)
            .map(|(_, etag)| etag);
        if ours.is_some() {
            let blob = self.target(path);
            tracing::debug!(%blob, "conditional write had landed on an earlier attempt");
        }
        Ok(ours)
    }

    async fn upload_once(
        &self,
        op: &'static str,
        path: &str,
        target: &str,
        body: Bytes,
        condition: &Condition,
    ) -> Result<ETag, StorageError> {
        let uploaded = self
            .container(path)
            .client
            .blob_client(path)
            .upload(body.into(), Some(condition.upload_options()))
            .await
            .map_err(|e| StorageError::from_sdk(op, target, &e))?;
        uploaded
            .etag
            .map(ETag::from)
            .ok_or_else(|| StorageError::bad_answer(op, target, "no ETag in the answer"))
    }

    async fn list_page_once(
        &self,
        c: &Container,
        prefix: &str,
        marker: Option<&str>,
        page_size: u32,
        target: &str,
    ) -> Result<ListPage, StorageError> {
        let sdk = |e: azure_core::Error| StorageError::from_sdk("blob.list", target, &e);
        let options = BlobContainerClientListBlobsOptions {
            prefix: (!prefix.is_empty()).then(|| prefix.to_owned()),
            marker: marker.map(str::to_owned),
            maxresults: Some(page_size.clamp(1, MAX_PAGE_SIZE) as i32),
            ..Default::default()
        };
        let mut pages = c
            .client
            .list_blobs(Some(options))
            .map_err(sdk)?
            .into_pages();
        let Some(page) = pages.try_next().await.map_err(sdk)? else {
            return Err(StorageError::bad_answer(
                "blob.list",
                target,
                "no page in the answer",
            ));
        };
        let page = page.into_model().map_err(sdk)?;
        let items = page
            .blob_items
            .into_iter()
            .map(|item| blob_item(item, target))
            .collect::<Result<_, _>>()?;
        Ok(ListPage {
            items,
            // Azurite ends a listing with an empty marker rather than none.
            next_marker: page.next_marker.filter(|m| !m.is_empty()),
        })
    }
}

fn blob_item(item: SdkBlobItem, target: &str) -> Result<BlobItem, StorageError> {
    let missing = |what: &str| {
        StorageError::bad_answer("blob.list", target, format!("a listed blob has no {what}"))
    };
    let properties = item.properties.ok_or_else(|| missing("properties"))?;
    Ok(BlobItem {
        path: item.name.ok_or_else(|| missing("name"))?,
        size: properties
            .content_length
            .ok_or_else(|| missing("Content-Length"))?,
        etag: properties.etag.ok_or_else(|| missing("ETag"))?.into(),
        last_modified: properties
            .last_modified
            .ok_or_else(|| missing("Last-Modified"))?,
    })
}
