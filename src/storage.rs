//! Storage: Blob and Queue Storage access, the blob layout, catalog and job state.
//!
//! Built on Microsoft's official `azure_storage_blob` / `azure_storage_queue` crates:
//! - [`blob::BlobStore`]: the backup container: read, write, conditional writes (ETag), paged
//!   streaming listing;
//! - [`queue::TaskQueue`]: a queue whose messages the Functions queue trigger can read (base64);
//! - [`parquet_footer`]: a stored parquet file's row count from its footer (verify);
//! - `auth`: managed identity in Azure, an in-process account SAS for Azurite;
//! - [`error::StorageError`]: every failure classified once (conflict, not found, transient,
//!   permanent, decode); [`crate::retry::RetryPolicy`] retries the transient ones, the SDK's own
//!   retries are off.
//!
//! Invariants: constructing clients does no network I/O (the handler must start while storage
//! is unreachable; `ensure_container` / `ensure_exists` create what is missing once it is
//! reachable); no SAS or key ever reaches a log line or an error message.

mod auth;
pub mod blob;
pub mod catalog;
pub mod catalog_totals;
pub mod error;
pub mod layout;
pub mod parquet_footer;
pub mod queue;
pub mod state;
pub mod supersede;

use crate::retry::RetryPolicy;
use crate::settings::StorageSettings;

pub use blob::{BlobItem, BlobStore, ETag, ListPage};
pub use error::StorageError;
pub use queue::{ReceivedMessage, TaskQueue, UndecodableMessage};

/// Builds the backup container's store and the task queue from settings, retrying transient
/// failures under the default policy. No network I/O; creating the container and queue when
/// missing is `ensure_container` / `ensure_exists`, once storage is reachable.
pub fn connect(settings: &StorageSettings) -> Result<(BlobStore, TaskQueue), StorageError> {
    let retry = RetryPolicy::default();
    Ok((
        BlobStore::new(settings, retry)?,
        TaskQueue::new(settings, retry)?,
    ))
}
