//! What a parquet file in storage says about itself: its row count, from the footer alone.
//!
//! A parquet file ends with its metadata, then the metadata's length (4 bytes, little
//! endian), then the magic `PAR1`; the metadata holds the file's row count
//! (<https://parquet.apache.org/docs/file-format/>). Reading the tail of the blob is enough,
//! so `verify --files` checks every cataloged file against the catalog at the cost of one
//! small range read per file (two when the metadata is larger than the first read), never
//! the data itself.

use std::ops::Range;

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
    let tail = blobs
        .read_range(path, size.saturating_sub(FIRST_READ)..size)
        .await?;
    match read_tail(&tail, size).map_err(bad)? {
        Tail::Rows(rows) => Ok(rows),
        Tail::Metadata(range) => {
            let metadata = blobs.read_range(path, range).await?;
            decode_metadata(&metadata).map_err(bad)
        }
    }
}

/// What the end of a file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tail {
    /// The metadata was all in the bytes read: the file's row count.
    Rows(u64),
    /// The metadata starts before the bytes read: read this range of the file and decode it
    /// with [`decode_metadata`].
    Metadata(Range<u64>),
}

/// Reads the footer from `tail`, the last bytes of a file of `size` bytes. Every position
/// comes from the file, so each is checked before it is used: a damaged or hostile file is
/// an error saying why, never a panic.
pub fn read_tail(tail: &[u8], size: u64) -> Result<Tail, String> {
    let read = tail.len() as u64;
    if read > size {
        return Err(format!(
            "{read} bytes were read from a file listed at {size}"
        ));
    }
    let metadata_len = metadata_len(tail)?;
    if size < SMALLEST_FILE || metadata_len + TAIL > size - 4 {
        return Err(format!(
            "its footer claims {metadata_len} bytes of metadata in a file of {size}"
        ));
    }
    let metadata_start = size - TAIL - metadata_len;
    let tail_start = size - read;
    if metadata_start < tail_start {
        return Ok(Tail::Metadata(metadata_start..size - TAIL));
    }
    let from = (metadata_start - tail_start) as usize;
    decode_metadata(&tail[from..tail.len() - TAIL as usize]).map(Tail::Rows)
}

/// The row count parquet metadata (the footer's Thrift `FileMetaData`) declares.
///
/// The `parquet` crate's decoder (57.x, the latest of the line the workspace's arrow needs)
/// panics on some damaged metadata: a Thrift boolean field sent with another wire type
/// unwraps a `None`, a schema element with a negative child count overflows a `Vec`'s
/// capacity (both return an error from parquet 58 on). A damaged file must be a finding of
/// `verify --files`, not a dead worker, so such a panic is caught here and reported like any
/// other metadata that does not decode. A third kind cannot be caught: a list whose declared
/// length is huge makes the decoder reserve that much memory, and a failed allocation aborts
/// the process. So [`compact::check`] walks the metadata first and refuses any length larger
/// than the bytes that follow it.
pub fn decode_metadata(metadata: &[u8]) -> Result<u64, String> {
    compact::check(metadata)
        .map_err(|e| format!("its metadata does not decode: {e} (checked before decoding)"))?;
    let decoded = std::panic::catch_unwind(|| ParquetMetaDataReader::decode_metadata(metadata))
        .map_err(|_| "its metadata does not decode (the parquet reader gave up on it)".to_owned())?
        .map_err(|e| format!("its metadata does not decode: {e}"))?;
    u64::try_from(decoded.file_metadata().num_rows())
        .map_err(|_| "it declares a negative row count".to_owned())
}

/// A walk over Thrift's compact protocol (the encoding of parquet's metadata:
/// <https://github.com/apache/thrift/blob/master/doc/specs/thrift-compact-protocol.md>) that
/// decodes nothing and checks what the `parquet` crate sizes allocations by before it can
/// check them: every declared length of a string, list, set or map fits in the bytes left
/// (each element takes at least one byte), structures nest no deeper than parquet's, and
/// each schema element's `num_children` is no larger than the schema itself.
mod compact {
    /// Parquet's metadata nests a few levels (file → row group → column → statistics);
    /// deeper is damage, and would cost stack.
    const MAX_DEPTH: usize = 32;
    /// `FileMetaData.schema` (field 2), a list of `SchemaElement`, and its field 5,
    /// `num_children` (parquet.thrift).
    const SCHEMA: &[i16] = &[2];
    const SCHEMA_CHILDREN: &[i16] = &[2, 5];

    struct Walk<'a> {
        bytes: &'a [u8],
        at: usize,
        /// The field ids from the outer struct down to the value being read.
        path: Vec<i16>,
        /// Elements in the schema list, once read.
        schema_len: u64,
    }

    /// Checks the one struct (`FileMetaData`) `bytes` holds.
    pub fn check(bytes: &[u8]) -> Result<(), String> {
        Walk {
            bytes,
            at: 0,
            path: Vec::new(),
            schema_len: 0,
        }
        .value(12)
    }

    impl Walk<'_> {
        fn left(&self) -> u64 {
            (self.bytes.len() - self.at) as u64
        }

        fn byte(&mut self) -> Result<u8, String> {
            let b = *self
                .bytes
                .get(self.at)
                .ok_or_else(|| format!("it ends inside a value at byte {}", self.at))?;
            self.at += 1;
            Ok(b)
        }

        fn skip(&mut self, n: u64) -> Result<(), String> {
            if n > self.left() {
                return Err(format!(
                    "a value at byte {} declares {n} bytes, {} are left",
                    self.at,
                    self.left()
                ));
            }
            self.at += n as usize;
            Ok(())
        }

        fn varint(&mut self) -> Result<u64, String> {
            let mut value = 0u64;
            for shift in (0..70).step_by(7) {
                let b = self.byte()?;
                value |= u64::from(b & 0x7f).checked_shl(shift).unwrap_or(0);
                if b & 0x80 == 0 {
                    return Ok(value);
                }
            }
            Err(format!("a varint longer than 10 bytes at byte {}", self.at))
        }

        /// A zigzag-encoded signed varint.
        fn signed(&mut self) -> Result<i64, String> {
            let n = self.varint()?;
            Ok((n >> 1) as i64 ^ -((n & 1) as i64))
        }

        /// A count of elements that each take at least one byte.
        fn count(&mut self, n: u64) -> Result<u64, String> {
            if n > self.left() {
                return Err(format!(
                    "a collection at byte {} declares {n} elements, {} bytes are left",
                    self.at,
                    self.left()
                ));
            }
            Ok(n)
        }

        /// One value of compact type `kind`, at `self.path`.
        fn value(&mut self, kind: u8) -> Result<(), String> {
            if self.path.len() > MAX_DEPTH {
                return Err(format!("values nest deeper than {MAX_DEPTH} levels"));
            }
            match kind {
                // Booleans in a list or map take a byte; as a field they are in its header.
                1..=3 => self.skip(1),
                5 if self.path == SCHEMA_CHILDREN => {
                    let children = self.signed()?;
                    if !(0..=self.schema_len as i64).contains(&children) {
                        return Err(format!(
                            "a schema element declares {children} children in a schema of {}",
                            self.schema_len
                        ));
                    }
                    Ok(())
                }
                4..=6 => self.varint().map(drop),
                7 => self.skip(8),
                8 => {
                    let len = self.varint()?;
                    self.skip(len)
                }
                9 | 10 => {
                    let header = self.byte()?;
                    let short = u64::from(header >> 4);
                    let declared = if short == 15 { self.varint()? } else { short };
                    let n = self.count(declared)?;
                    if self.path == SCHEMA {
                        self.schema_len = n;
                    }
                    for _ in 0..n {
                        self.value(header & 0x0f)?;
                    }
                    Ok(())
                }
                11 => {
                    let n = self.varint()?;
                    if n == 0 {
                        return Ok(());
                    }
                    let kinds = self.byte()?;
                    for _ in 0..self.count(n)? {
                        self.value(kinds >> 4)?;
                        self.value(kinds & 0x0f)?;
                    }
                    Ok(())
                }
                12 => self.fields(),
                13 => self.skip(16),
                other => Err(format!(
                    "an unknown Thrift type {other} at byte {}",
                    self.at
                )),
            }
        }

        /// A struct's fields up to its stop byte; each field's id is the last one's plus the
        /// header's delta, or given in full after a zero delta.
        fn fields(&mut self) -> Result<(), String> {
            let mut last = 0i16;
            loop {
                let header = self.byte()?;
                let kind = header & 0x0f;
                if kind == 0 {
                    return Ok(());
                }
                let delta = i16::from(header >> 4);
                last = if delta == 0 {
                    i16::try_from(self.signed()?).unwrap_or(i16::MIN)
                } else {
                    last.wrapping_add(delta)
                };
                if !matches!(kind, 1 | 2) {
                    self.path.push(last);
                    let read = self.value(kind);
                    self.path.pop();
                    read?;
                }
            }
        }
    }
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
    use std::sync::Arc;

    use parquet::data_type::Int64Type;
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;

    use super::*;

    /// A parquet file of one int64 column holding `values`, written by the `parquet` crate.
    fn file(values: &[i64]) -> Vec<u8> {
        let schema = Arc::new(parse_message_type("message t { required int64 x; }").unwrap());
        let mut out = Vec::new();
        let props = Arc::new(WriterProperties::builder().build());
        let mut writer = SerializedFileWriter::new(&mut out, schema, props).unwrap();
        let mut group = writer.next_row_group().unwrap();
        let mut column = group.next_column().unwrap().unwrap();
        column
            .typed::<Int64Type>()
            .write_batch(values, None, None)
            .unwrap();
        column.close().unwrap();
        group.close().unwrap();
        writer.close().unwrap();
        out
    }

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

    #[test]
    fn a_whole_footer_gives_the_row_count_and_a_short_tail_asks_for_the_rest() {
        let f = file(&[1, 2, 3]);
        let size = f.len() as u64;
        assert_eq!(read_tail(&f, size), Ok(Tail::Rows(3)));
        let stated = u32::from_le_bytes(f[f.len() - 8..f.len() - 4].try_into().unwrap());
        let metadata = size - 8 - u64::from(stated)..size - 8;
        assert_eq!(
            read_tail(&f[f.len() - 10..], size),
            Ok(Tail::Metadata(metadata.clone()))
        );
        let range = metadata.start as usize..metadata.end as usize;
        assert_eq!(decode_metadata(&f[range]), Ok(3));
    }

    #[test]
    fn footers_that_do_not_add_up_are_errors() {
        let f = file(&[1]);
        let size = f.len() as u64;
        assert!(read_tail(&f, size - 1).unwrap_err().contains("were read"));
        let mut huge = f.clone();
        let at = huge.len() - 8;
        huge[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(read_tail(&huge, size).unwrap_err().contains("claims"));
        let mut garbled = f.clone();
        let end = garbled.len() - 8;
        garbled[end - 12..end].fill(0xff);
        assert!(
            read_tail(&garbled, size)
                .unwrap_err()
                .contains("does not decode")
        );
    }

    /// Found by the mutator (`damaged_files_are_errors_not_panics`), shrunk: metadata whose
    /// column statistics carry a boolean field with another wire type. parquet 57.3.2
    /// unwraps a `None` on it.
    const STATISTICS_BOOLEAN_OF_ANOTHER_TYPE: &[u8] = &[
        21, 0, 25, 44, 72, 1, 0, 21, 2, 0, 21, 0, 37, 0, 24, 1, 0, 0, 22, 0, 25, 28, 25, 28, 38, 0,
        28, 21, 0, 25, 53, 0, 0, 0, 24, 1, 0, 21, 0, 22, 0, 22, 0, 22, 0, 38, 0, 38, 0, 28, 24, 7,
        0, 0, 0, 0, 0, 0, 0, 24, 7, 0, 0, 0, 0, 0, 0, 0, 22, 0, 40, 7, 0, 0, 0, 0, 0, 0, 0, 21, 2,
        0, 0, 22,
    ];

    /// Found by the fuzz target `parquet_footer`, shrunk: a schema element with a negative
    /// child count, which parquet 57.3.2 turns into a `Vec` capacity overflow.
    const SCHEMA_WITH_NEGATIVE_CHILDREN: &[u8] = &[
        21, 0, 25, 188, 72, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 20, 21, 0, 21, 0, 37, 0, 24, 9,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 37, 0, 76, 140, 17, 28, 44, 0, 0, 0, 0, 0, 21, 0, 37, 0, 24, 0,
        0, 21, 0, 37, 0, 24, 0, 0, 21, 0, 39, 0, 24, 0, 0, 21, 0, 37, 0, 24, 0, 0, 21, 0, 21, 0,
        21, 0, 24, 0, 37, 0, 21, 0, 21, 0, 44, 76, 0, 0, 0, 21, 0, 37, 0, 24, 0, 0, 21, 0, 37, 0,
        24, 0, 0, 21, 0, 37, 0, 24, 0, 0, 21, 0, 37, 0, 24, 0, 0,
    ];

    /// Found by the fuzz target `parquet_footer` (its 25 bytes as found): a list declaring
    /// about a billion elements. parquet 57.3.2 reserves memory for all of them (about
    /// 100 GB) and the process aborts.
    const LIST_OF_A_BILLION: &[u8] = &[
        0x28, 0xf3, 0xf3, 0xf3, 0xf3, 0xf3, 0xf3, 0xf3, 0x19, 0xf3, 0xf3, 0xf3, 0xf3, 0xf3, 0xf3,
        0xf3, 0xf3, 0xf3, 0xf3, 0xe5, 0x65, 0x00, 0x00, 0x00, 0x19,
    ];

    #[test]
    fn metadata_the_parquet_reader_panics_on_is_an_error() {
        for metadata in [
            STATISTICS_BOOLEAN_OF_ANOTHER_TYPE,
            SCHEMA_WITH_NEGATIVE_CHILDREN,
            LIST_OF_A_BILLION,
        ] {
            let err = decode_metadata(metadata).unwrap_err();
            assert!(err.contains("does not decode"), "{err}");
        }
        let err = decode_metadata(LIST_OF_A_BILLION).unwrap_err();
        assert!(err.contains("checked before decoding"), "{err}");
    }

    #[test]
    fn the_walk_accepts_what_parquet_writes_and_refuses_lengths_past_the_end() {
        let f = file(&(0..50).collect::<Vec<_>>());
        let stated = u32::from_le_bytes(f[f.len() - 8..f.len() - 4].try_into().unwrap());
        let metadata = &f[f.len() - 8 - stated as usize..f.len() - 8];
        assert_eq!(compact::check(metadata), Ok(()));
        // A binary field (type 8) declaring 100 bytes with 2 left; a list (type 9) of 200
        // i32s with 1 byte left; nesting past the bound.
        assert!(
            compact::check(&[0x18, 100, 1, 2])
                .unwrap_err()
                .contains("100 bytes")
        );
        assert!(
            compact::check(&[0x19, 0xf5, 200, 1, 0])
                .unwrap_err()
                .contains("200 elements")
        );
        assert!(compact::check(&[0x1c; 64]).unwrap_err().contains("nest"));
        // A schema of one element (field 2: a list of one struct) whose `num_children`
        // (field 5, an i32) is 2,147,483,647.
        let children = [
            0x29, 0x1c, 0x48, 1, b'a', 0x15, 0xfe, 0xff, 0xff, 0xff, 0x0f, 0, 0,
        ];
        let err = compact::check(&children).unwrap_err();
        assert!(
            err.contains("2147483647 children in a schema of 1"),
            "{err}"
        );
    }

    #[test]
    fn damaged_files_are_errors_not_panics() {
        let (small, larger) = (file(&[7]), file(&(0..500).collect::<Vec<_>>()));
        crate::mutate::check(0x9a27, &[&small, &larger], |bytes| {
            match read_tail(bytes, bytes.len() as u64)? {
                Tail::Rows(_) => Ok(()),
                Tail::Metadata(range) => Err(format!("whole file, yet {range:?} unread")),
            }
        });
    }
}
