//! What a parquet file in storage says about itself: its row count, from the footer alone.
//!
//! A parquet file ends with its metadata, then the metadata's length (4 bytes, little
//! endian), then the magic `PAR1`; the metadata holds the file's row count
//! (<https://parquet.apache.org/docs/file-format/>). Reading the tail of the blob is enough,
//! so `verify --files` checks every cataloged file against the catalog at the cost of one
//! small range read per file (two when the metadata is larger than the first read), never
//! the data itself.

use parquet::file::metadata::ParquetMetaDataReader;

use super::blob::BlobStore;
use super::error::StorageError;

/// The tail read first: the footers of the exports' files fit in it (one row group per
/// file and a few dozen columns take a few KiB); a larger footer costs a second read.
const FIRST_READ: u64 = 64 * 1024;
/// The magic, the length and the magic again: the smallest file that can be parquet.
const SMALLEST_FILE: u64 = 12;
/// Length + magic at the very end.
const TAIL: u64 = 8;

/// Why a file's row count could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FooterError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{path} is not a readable parquet file ({reason}); a restore would fail on it")]
    NotParquet { path: String, reason: String },
}

/// The number of rows the parquet file at `path` (of `size` bytes, as listed) declares.
pub async fn row_count(blobs: &BlobStore, path: &str, size: u64) -> Result<u64, FooterError> {
    let bad = |reason: String| FooterError::NotParquet {
        path: path.to_owned(),
        reason,
    };
    if size < SMALLEST_FILE {
        return Err(bad(format!("{size} bytes")));
    }
    let start = size.saturating_sub(FIRST_READ);
    let tail = blobs.read_range(path, start..size).await?;
    let metadata_len = metadata_len(&tail).map_err(bad)?;
    if metadata_len + TAIL > size - 4 {
        return Err(bad(format!(
            "its footer claims {metadata_len} bytes of metadata in a file of {size}"
        )));
    }
    let metadata_start = size - TAIL - metadata_len;
    let metadata = if metadata_start >= start {
        let from = (metadata_start - start) as usize;
        tail.slice(from..tail.len() - TAIL as usize)
    } else {
        blobs.read_range(path, metadata_start..size - TAIL).await?
    };
    let decoded = ParquetMetaDataReader::decode_metadata(&metadata)
        .map_err(|e| bad(format!("its metadata does not decode: {e}")))?;
    u64::try_from(decoded.file_metadata().num_rows())
        .map_err(|_| bad("it declares a negative row count".to_owned()))
}

/// The metadata length stated by the last 8 bytes of `tail`, which must end with `PAR1`.
fn metadata_len(tail: &[u8]) -> Result<u64, String> {
    let Some(last) = tail.len().checked_sub(TAIL as usize).map(|at| &tail[at..]) else {
        return Err("the blob is shorter than a parquet footer".to_owned());
    };
    if &last[4..] != b"PAR1" {
        return Err(
            "it does not end with the parquet magic PAR1 (truncated or not parquet)".to_owned(),
        );
    }
    let len = u32::from_le_bytes([last[0], last[1], last[2], last[3]]);
    Ok(u64::from(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_length_comes_from_the_tail_and_the_magic_is_required() {
        let mut tail = b"....".to_vec();
        tail.extend_from_slice(&300u32.to_le_bytes());
        tail.extend_from_slice(b"PAR1");
        assert_eq!(metadata_len(&tail), Ok(300));
        tail.truncate(tail.len() - 1);
        tail.push(b'0');
        assert!(metadata_len(&tail).unwrap_err().contains("PAR1"));
        assert!(metadata_len(b"PAR1").is_err());
    }
}
