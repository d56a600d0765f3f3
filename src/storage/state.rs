//! Job and protection state: small JSON documents written with ETag conditions, so two
//! workers that race on the same document cannot both win. The loser gets
//! `StorageError::Conflict` and retries from a fresh read.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::blob::{BlobStore, ETag};
use super::error::StorageError;

/// Reads a state document's body as read from `path`. A body that is not the document
/// (damaged, or of a shape this version does not know) is `StorageError::Decode` naming the
/// blob, never a panic: documents are outside input once stored.
pub fn decode<T: DeserializeOwned>(path: &str, body: &[u8]) -> Result<T, StorageError> {
    serde_json::from_slice(body).map_err(|e| StorageError::decode(path, e))
}

/// A document as read, with the version a conditional write must match.
#[derive(Debug, Clone)]
pub struct Versioned<T> {
    pub value: T,
    /// None for a document that does not exist yet: saving it creates it (If-None-Match).
    pub etag: Option<ETag>,
}

impl<T: Serialize + DeserializeOwned> Versioned<T> {
    /// Reads `path`, or starts from `default` when it does not exist.
    pub async fn load_or(
        blobs: &BlobStore,
        path: &str,
        default: impl FnOnce() -> T,
    ) -> Result<Self, StorageError> {
        match blobs.read_opt(path).await? {
            Some((body, etag)) => Ok(Self {
                value: decode(path, &body)?,
                etag: Some(etag),
            }),
            None => Ok(Self {
                value: default(),
                etag: None,
            }),
        }
    }

    /// Writes the document if nobody changed it since it was read; updates the ETag.
    pub async fn save(&mut self, blobs: &BlobStore, path: &str) -> Result<(), StorageError> {
        let body = Bytes::from(
            serde_json::to_vec_pretty(&self.value).map_err(|e| StorageError::decode(path, e))?,
        );
        let etag = match &self.etag {
            Some(etag) => blobs.write_if_match(path, body, etag).await?,
            None => blobs.create_new(path, body).await?,
        };
        self.etag = Some(etag);
        Ok(())
    }
}
