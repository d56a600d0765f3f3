//! What a parquet file in storage says about itself: its row count, from the footer alone.
//!
//! A parquet file ends with its metadata, then the metadata's length (4 bytes, little
//! endian), then the magic `PAR1`; the metadata holds the file's row count
//! (<https://parquet.apache.org/docs/file-format/>). Reading the tail of the blob is enough,
//! so `verify --files` checks every cataloged file against the catalog at the cost of one
//! small range read per file (two when the metadata is larger than the first read), never
//! the data itself.
//!
//! The metadata is read by [`compact`], a reader of the few fields the row count needs, not
//! by the `parquet` crate. The crate's decoder (57.x) panics on some damaged metadata and,
//! worse, aborts the process on some: it sizes allocations by lengths the file declares, and
//! a failed allocation cannot be caught, so one hostile footer in the backup would stop the
//! worker running `verify --files` (docs/fuzzing.md). This reader allocates nothing sized by
//! its input, and whatever the bytes are, it returns a row count or an error saying why not.

use std::ops::Range;

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

/// The row count parquet metadata (the footer's Thrift `FileMetaData`) declares, once its
/// row groups' counts are found to add up to it.
pub fn decode_metadata(metadata: &[u8]) -> Result<u64, String> {
    compact::num_rows(metadata).map_err(|e| format!("its metadata does not decode: {e}"))
}

/// A reader of parquet's metadata in Thrift's compact protocol
/// (<https://github.com/apache/thrift/blob/master/doc/specs/thrift-compact-protocol.md>)
/// that reads what the row count needs and steps over the rest, with the field ids and types
/// of parquet.thrift
/// (<https://github.com/apache/parquet-format/blob/master/src/main/thrift/parquet.thrift>):
///
/// ```text
/// struct FileMetaData { 1: i32 version; 2: list<SchemaElement> schema; 3: i64 num_rows;
///                       4: list<RowGroup> row_groups; ... }
/// struct SchemaElement { ... 5: optional i32 num_children; ... }
/// struct RowGroup { ... 3: i64 num_rows; ... }
/// ```
///
/// A field it reads must have the wire type parquet.thrift gives it; the required ones must
/// be there, once; the row groups' counts must add up to the file's (a file whose row groups
/// disagree with its total is damaged, whichever is right); and a schema element may not
/// have more children than the schema has elements. Nothing is allocated: every declared
/// length is checked against the bytes left (each element of a collection takes at least
/// one byte, so a collection declaring more fails at once instead of at the end of the
/// bytes), and values nest at most 32 levels, which bounds the stack.
mod compact {
    /// Parquet's metadata nests a few levels (file → row group → column → statistics);
    /// deeper is damage, and would cost stack.
    const MAX_DEPTH: usize = 32;

    /// The compact protocol's type ids used by the fields read here.
    const I32: u8 = 5;
    const I64: u8 = 6;
    const LIST: u8 = 9;
    const STRUCT: u8 = 12;

    /// The row count of the one `FileMetaData` struct `bytes` holds.
    pub fn num_rows(bytes: &[u8]) -> Result<u64, String> {
        Reader { bytes, at: 0 }.file_metadata()
    }

    /// A compact type id as parquet.thrift would name it, for the errors.
    fn type_name(kind: u8) -> String {
        match kind {
            1 | 2 => "a bool".to_owned(),
            3 => "an i8".to_owned(),
            4 => "an i16".to_owned(),
            I32 => "an i32".to_owned(),
            I64 => "an i64".to_owned(),
            7 => "a double".to_owned(),
            8 => "a binary".to_owned(),
            LIST => "a list".to_owned(),
            10 => "a set".to_owned(),
            11 => "a map".to_owned(),
            STRUCT => "a struct".to_owned(),
            13 => "a uuid".to_owned(),
            other => format!("the unknown type {other}"),
        }
    }

    struct Reader<'a> {
        bytes: &'a [u8],
        at: usize,
    }

    impl Reader<'_> {
        fn file_metadata(&mut self) -> Result<u64, String> {
            let mut schema_len = None;
            let mut num_rows = None;
            let mut row_groups = None;
            self.fields(0, |r, id, kind| {
                match id {
                    1 => {
                        r.expect("FileMetaData.version (field 1)", kind, I32)?;
                        r.varint()?;
                    }
                    2 => {
                        let name = "FileMetaData.schema (field 2)";
                        once(name, schema_len)?;
                        r.expect(name, kind, LIST)?;
                        let n = r.list_of_structs(name)?;
                        schema_len = Some(n);
                        for _ in 0..n {
                            r.schema_element(n)?;
                        }
                    }
                    3 => {
                        let name = "FileMetaData.num_rows (field 3)";
                        once(name, num_rows)?;
                        r.expect(name, kind, I64)?;
                        num_rows = Some(r.count_of_rows(name)?);
                    }
                    4 => {
                        let name = "FileMetaData.row_groups (field 4)";
                        once(name, row_groups)?;
                        r.expect(name, kind, LIST)?;
                        let mut sum = 0u64;
                        for group in 0..r.list_of_structs(name)? {
                            let rows = r
                                .row_group()
                                .map_err(|e| format!("row group {group}: {e}"))?;
                            sum = sum.checked_add(rows).ok_or_else(|| {
                                format!("row group {group}: the row counts add up past 2^64")
                            })?;
                        }
                        row_groups = Some(sum);
                    }
                    _ => r.skip_field(kind, 1)?,
                }
                Ok(())
            })?;
            required("FileMetaData.schema (field 2)", schema_len)?;
            let num_rows = required("FileMetaData.num_rows (field 3)", num_rows)?;
            let in_groups = required("FileMetaData.row_groups (field 4)", row_groups)?;
            if in_groups != num_rows {
                return Err(format!(
                    "it declares {num_rows} rows and its row groups {in_groups} (the file is damaged)"
                ));
            }
            Ok(num_rows)
        }

        /// One `SchemaElement` of a schema of `schema_len` elements.
        fn schema_element(&mut self, schema_len: u64) -> Result<(), String> {
            self.fields(2, |r, id, kind| {
                if id != 5 {
                    return r.skip_field(kind, 3);
                }
                r.expect("SchemaElement.num_children (field 5)", kind, I32)?;
                let children = r.signed()?;
                if !u64::try_from(children).is_ok_and(|c| c <= schema_len) {
                    return Err(format!(
                        "a schema element declares {children} children in a schema of {schema_len}"
                    ));
                }
                Ok(())
            })
        }

        /// The `num_rows` of a `RowGroup`.
        fn row_group(&mut self) -> Result<u64, String> {
            let name = "RowGroup.num_rows (field 3)";
            let mut num_rows = None;
            self.fields(2, |r, id, kind| {
                if id != 3 {
                    return r.skip_field(kind, 3);
                }
                once(name, num_rows)?;
                r.expect(name, kind, I64)?;
                num_rows = Some(r.count_of_rows(name)?);
                Ok(())
            })?;
            required(name, num_rows)
        }

        /// A row count, an i64 that may not be negative.
        fn count_of_rows(&mut self, name: &str) -> Result<u64, String> {
            let rows = self.signed()?;
            u64::try_from(rows).map_err(|_| format!("{name} is negative: {rows}"))
        }

        /// The header of a list that parquet.thrift declares a list of structs: its length.
        fn list_of_structs(&mut self, name: &str) -> Result<u64, String> {
            let (kind, n) = self.collection()?;
            if kind != STRUCT && n > 0 {
                return Err(format!(
                    "{name} is a list of {}, parquet.thrift declares a list of structs",
                    type_name(kind)
                ));
            }
            Ok(n)
        }

        fn expect(&self, name: &str, kind: u8, wanted: u8) -> Result<(), String> {
            if kind == wanted {
                return Ok(());
            }
            Err(format!(
                "{name} is {}, parquet.thrift declares {}",
                type_name(kind),
                type_name(wanted)
            ))
        }

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
            let start = self.at;
            let mut value = 0u64;
            for shift in (0..64).step_by(7) {
                let b = self.byte()?;
                let bits = u64::from(b & 0x7f);
                if shift == 63 && bits > 1 {
                    return Err(format!("a varint at byte {start} overflows 64 bits"));
                }
                value |= bits << shift;
                if b & 0x80 == 0 {
                    return Ok(value);
                }
            }
            Err(format!("a varint longer than 10 bytes at byte {start}"))
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

        /// A list's or set's header: its elements' type and their number.
        fn collection(&mut self) -> Result<(u8, u64), String> {
            let header = self.byte()?;
            let short = u64::from(header >> 4);
            let declared = if short == 15 { self.varint()? } else { short };
            Ok((header & 0x0f, self.count(declared)?))
        }

        /// A struct's fields up to its stop byte, each handed to `each` with its id and type;
        /// `depth` is the struct's own. A field's id is the last one's plus the header's
        /// delta, or given in full after a zero delta.
        fn fields(
            &mut self,
            depth: usize,
            mut each: impl FnMut(&mut Self, i16, u8) -> Result<(), String>,
        ) -> Result<(), String> {
            if depth > MAX_DEPTH {
                return Err(format!("values nest deeper than {MAX_DEPTH} levels"));
            }
            let mut last = 0i16;
            loop {
                let header = self.byte()?;
                let kind = header & 0x0f;
                if kind == 0 {
                    return Ok(());
                }
                let delta = i16::from(header >> 4);
                last = if delta == 0 {
                    let id = self.signed()?;
                    i16::try_from(id)
                        .map_err(|_| format!("a field id {id} at byte {} is not an i16", self.at))?
                } else {
                    last.wrapping_add(delta)
                };
                each(self, last, kind)?;
            }
        }

        /// A field not read, of type `kind`, at `depth`: a bool field's value is in its header.
        fn skip_field(&mut self, kind: u8, depth: usize) -> Result<(), String> {
            match kind {
                1 | 2 => Ok(()),
                _ => self.skip_value(kind, depth),
            }
        }

        /// A value not read, of type `kind`, at `depth`.
        fn skip_value(&mut self, kind: u8, depth: usize) -> Result<(), String> {
            if depth > MAX_DEPTH {
                return Err(format!("values nest deeper than {MAX_DEPTH} levels"));
            }
            match kind {
                // Booleans in a list or map take a byte; as a field they are in its header.
                1..=3 => self.skip(1),
                4..=6 => self.varint().map(drop),
                7 => self.skip(8),
                8 => {
                    let len = self.varint()?;
                    self.skip(len)
                }
                9 | 10 => {
                    let (elements, n) = self.collection()?;
                    for _ in 0..n {
                        self.skip_value(elements, depth + 1)?;
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
                        self.skip_value(kinds >> 4, depth + 1)?;
                        self.skip_value(kinds & 0x0f, depth + 1)?;
                    }
                    Ok(())
                }
                STRUCT => self.fields(depth, |r, _, kind| r.skip_field(kind, depth + 1)),
                13 => self.skip(16),
                other => Err(format!(
                    "an unknown Thrift type {other} at byte {}",
                    self.at
                )),
            }
        }
    }

    /// Refuses a second copy of a field already read.
    fn once<T>(name: &str, read: Option<T>) -> Result<(), String> {
        match read {
            Some(_) => Err(format!("{name} appears twice")),
            None => Ok(()),
        }
    }

    fn required<T>(name: &str, read: Option<T>) -> Result<T, String> {
        read.ok_or_else(|| format!("{name} is missing; parquet.thrift requires it"))
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
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;

    use super::*;

    /// A parquet file of one int64 column, one row group per slice of `groups`, written by
    /// the `parquet` crate.
    fn file_of_groups(groups: &[&[i64]]) -> Vec<u8> {
        let schema = Arc::new(parse_message_type("message t { required int64 x; }").unwrap());
        let mut out = Vec::new();
        let props = Arc::new(WriterProperties::builder().build());
        let mut writer = SerializedFileWriter::new(&mut out, schema, props).unwrap();
        for values in groups {
            let mut group = writer.next_row_group().unwrap();
            let mut column = group.next_column().unwrap().unwrap();
            column
                .typed::<Int64Type>()
                .write_batch(values, None, None)
                .unwrap();
            column.close().unwrap();
            group.close().unwrap();
        }
        writer.close().unwrap();
        out
    }

    fn file(values: &[i64]) -> Vec<u8> {
        file_of_groups(&[values])
    }

    /// The metadata bytes of a whole file.
    fn metadata_of(f: &[u8]) -> &[u8] {
        let stated = u32::from_le_bytes(f[f.len() - 8..f.len() - 4].try_into().unwrap());
        &f[f.len() - 8 - stated as usize..f.len() - 8]
    }

    fn varint(mut n: u64, out: &mut Vec<u8>) {
        while n >= 0x80 {
            out.push(n as u8 | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }

    fn zigzag(n: i64, out: &mut Vec<u8>) {
        varint(((n << 1) ^ (n >> 63)) as u64, out);
    }

    /// A field header with the id in full (a zero delta), so fields can be left out freely.
    fn field(kind: u8, id: i16, out: &mut Vec<u8>) {
        out.push(kind);
        zigzag(id.into(), out);
    }

    /// `FileMetaData` in the compact protocol, by hand: version 1, a schema of one element,
    /// `num_rows` (its wire type and value; `None` leaves the field out) and one `RowGroup`
    /// per entry of `groups` declaring that many rows.
    fn metadata(num_rows: Option<(u8, i64)>, groups: &[i64]) -> Vec<u8> {
        let mut m = Vec::new();
        field(5, 1, &mut m);
        zigzag(1, &mut m);
        field(9, 2, &mut m);
        // One struct: field 4 (name), a binary of one byte; stop.
        m.extend([0x1c, 0x48, 1, b'x', 0]);
        if let Some((kind, n)) = num_rows {
            field(kind, 3, &mut m);
            zigzag(n, &mut m);
        }
        field(9, 4, &mut m);
        m.push(0xfc);
        varint(groups.len() as u64, &mut m);
        for &rows in groups {
            // Field 1 (columns), an empty list of structs; field 2 (total_byte_size) 0;
            // field 3 (num_rows); stop.
            m.extend([0x19, 0x0c, 0x16, 0x00, 0x16]);
            zigzag(rows, &mut m);
            m.push(0);
        }
        m.push(0);
        m
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

    /// The `parquet` crate writes the files and reads them back: its count is the reference.
    #[test]
    fn files_the_parquet_crate_writes_read_as_it_reads_them() {
        let many: Vec<i64> = (0..5000).collect();
        for groups in [
            &[][..],
            &[&[][..]][..],
            &[&[7][..], &[1, 2][..], &many[..]][..],
            &[&many[..]; 20][..],
        ] {
            let f = file_of_groups(groups);
            let theirs = SerializedFileReader::new(bytes::Bytes::from(f.clone()))
                .unwrap()
                .metadata()
                .file_metadata()
                .num_rows();
            assert_eq!(decode_metadata(metadata_of(&f)), Ok(theirs as u64));
        }
    }

    #[test]
    fn the_row_count_is_the_files_once_its_row_groups_agree() {
        assert_eq!(decode_metadata(&metadata(Some((6, 5)), &[2, 3])), Ok(5));
        assert_eq!(decode_metadata(&metadata(Some((6, 0)), &[])), Ok(0));
        let err = decode_metadata(&metadata(Some((6, 6)), &[2, 3])).unwrap_err();
        assert!(
            err.contains("declares 6 rows and its row groups 5"),
            "{err}"
        );
        // Counts that would agree if a negative one were allowed to subtract.
        let err = decode_metadata(&metadata(Some((6, 1)), &[-1, 2])).unwrap_err();
        assert!(
            err.contains("row group 0: RowGroup.num_rows (field 3) is negative: -1"),
            "{err}"
        );
        let err = decode_metadata(&metadata(Some((6, -3)), &[])).unwrap_err();
        assert!(
            err.contains("FileMetaData.num_rows (field 3) is negative"),
            "{err}"
        );
        let err = decode_metadata(&metadata(Some((6, i64::MAX)), &[i64::MAX; 3])).unwrap_err();
        assert!(
            err.contains("row group 2: the row counts add up past 2^64"),
            "{err}"
        );
    }

    #[test]
    fn required_fields_must_be_there_once_with_their_types() {
        let err = decode_metadata(&metadata(None, &[1])).unwrap_err();
        assert!(
            err.contains("FileMetaData.num_rows (field 3) is missing"),
            "{err}"
        );
        let err = decode_metadata(&metadata(Some((5, 1)), &[1])).unwrap_err();
        assert!(
            err.contains(
                "FileMetaData.num_rows (field 3) is an i32, parquet.thrift declares an i64"
            ),
            "{err}"
        );
        // A second num_rows after the row groups.
        let mut twice = metadata(Some((6, 1)), &[1]);
        twice.pop();
        field(6, 3, &mut twice);
        zigzag(1, &mut twice);
        twice.push(0);
        let err = decode_metadata(&twice).unwrap_err();
        assert!(err.contains("num_rows (field 3) appears twice"), "{err}");
        // A row group whose num_rows is a binary: the bytes after its header are not an i64.
        let mut group = metadata(Some((6, 1)), &[1]);
        let at = group.len() - 4;
        assert_eq!(group[at], 0x16);
        group[at] = 0x18;
        let err = decode_metadata(&group).unwrap_err();
        assert!(
            err.contains("row group 0: RowGroup.num_rows (field 3) is a binary"),
            "{err}"
        );
        // A schema that is a list of i32.
        let err = decode_metadata(&[0x29, 0x15, 0]).unwrap_err();
        assert!(
            err.contains("schema (field 2) is a list of an i32"),
            "{err}"
        );
        let err = decode_metadata(&[0x15, 0x02, 0x26, 0x02, 0]).unwrap_err();
        assert!(err.contains("schema (field 2) is missing"), "{err}");
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

    /// Found by the fuzz target `parquet_footer` (its 150 bytes as found): fields whose
    /// declared wire types differ from parquet.thrift's. parquet 57.3.2 reads each field by
    /// its id's type without comparing, takes a length from bytes declared as something
    /// else, reserves memory for it and the process aborts.
    const FIELDS_OF_ANOTHER_TYPE: &[u8] = &[
        0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x02, 0x0a, 0x0a,
        0x0a, 0x0a, 0xf6, 0x99, 0x99, 0x99, 0x99, 0x14, 0x00, 0x00, 0x00, 0x0a, 0x0a, 0x0a, 0x0a,
        0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x30, 0x0a, 0x0a, 0x41, 0x41, 0x3e, 0x41, 0x41, 0x0a, 0x0a,
        0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0xcd, 0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0a, 0x0a,
        0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x29, 0x50, 0x0a, 0x0a, 0x0a, 0x0a, 0x99, 0x0a, 0x0a,
    ];

    #[test]
    fn metadata_the_parquet_crate_panicked_or_aborted_on_is_an_error() {
        for (metadata, why) in [
            (STATISTICS_BOOLEAN_OF_ANOTHER_TYPE, "ends inside a value"),
            (
                SCHEMA_WITH_NEGATIVE_CHILDREN,
                "SchemaElement.num_children (field 5) is an i16",
            ),
            (
                LIST_OF_A_BILLION,
                "FileMetaData.schema (field 2) is a binary",
            ),
            (
                FIELDS_OF_ANOTHER_TYPE,
                "FileMetaData.schema (field 2) is missing",
            ),
        ] {
            let err = decode_metadata(metadata).unwrap_err();
            assert!(err.starts_with("its metadata does not decode: "), "{err}");
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn the_reader_accepts_what_parquet_writes_and_refuses_lengths_past_the_end() {
        let f = file(&(0..50).collect::<Vec<_>>());
        assert_eq!(decode_metadata(metadata_of(&f)), Ok(50));
        // In fields the reader steps over (id 15): a binary declaring 100 bytes with 2 left;
        // a list of 200 i32s with 1 byte left; structs nested past the bound.
        let err = decode_metadata(&[0xf8, 100, 1, 2]).unwrap_err();
        assert!(err.contains("100 bytes, 2 are left"), "{err}");
        let err = decode_metadata(&[0xf9, 0xf5, 200, 1, 0]).unwrap_err();
        assert!(err.contains("declares 200 elements"), "{err}");
        let err = decode_metadata(&[0xfc; 64]).unwrap_err();
        assert!(err.contains("nest deeper than 32"), "{err}");
        // A schema of one element (field 2: a list of one struct) whose `num_children`
        // (field 5, an i32) is 2,147,483,647.
        let children = [
            0x29, 0x1c, 0x48, 1, b'a', 0x15, 0xfe, 0xff, 0xff, 0xff, 0x0f, 0, 0,
        ];
        let err = decode_metadata(&children).unwrap_err();
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
