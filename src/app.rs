//! The long-lived clients every invocation shares, built once from settings. Building them does
//! no I/O, so the handler answers readiness even while Kusto or storage are unreachable.

use tokio::sync::OnceCell;

use crate::kusto::KustoClient;
use crate::settings::Settings;
use crate::storage::layout::Layout;
use crate::storage::{self, BlobStore, TaskQueue};

/// What a capability needs to do its work.
pub struct App {
    pub settings: Settings,
    pub kusto: KustoClient,
    pub blobs: BlobStore,
    pub tasks: TaskQueue,
    /// Where everything lives in the backup container, under the configured prefix.
    pub layout: Layout,
    storage_ready: OnceCell<()>,
}

/// A client could not be built from the settings.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("cannot build the Kusto client")]
    Kusto(#[source] Box<crate::kusto::KustoError>),
    #[error("cannot build the storage clients")]
    Storage(#[source] Box<storage::StorageError>),
}

impl App {
    pub fn new(settings: Settings) -> Result<Self, AppError> {
        let kusto = KustoClient::new(&settings.kusto).map_err(|e| AppError::Kusto(Box::new(e)))?;
        let (blobs, tasks) =
            storage::connect(&settings.storage).map_err(|e| AppError::Storage(Box::new(e)))?;
        Ok(Self {
            layout: Layout::new(&settings.storage.prefix),
            settings,
            kusto,
            blobs,
            tasks,
            storage_ready: OnceCell::new(),
        })
    }

    /// Creates the backup container and the task queue if they are missing, once per
    /// process: the first invocation after deployment may be any function.
    pub async fn ensure_storage(&self) -> Result<(), storage::StorageError> {
        self.storage_ready
            .get_or_try_init(|| async {
                self.blobs.ensure_container().await?;
                self.tasks.ensure_exists().await
            })
            .await
            .map(|_| ())
    }
}
