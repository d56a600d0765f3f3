//! A stored file's footer (`read_tail`, `decode_metadata`), as `verify --files` reads it. The
//! input is the whole file; its first byte says how much of it the first read got (all, or a
//! tail whose metadata may start before it), and the same bytes go in as bare metadata.
//! Any panic is a crash: the footer reader is the project's own and catches none.
#![no_main]

use adx_backup::storage::parquet_footer::{Tail, decode_metadata, read_tail};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|file: &[u8]| {
    let _ = decode_metadata(file);
    let size = file.len() as u64;
    let cut = usize::from(file.first().copied().unwrap_or(0)).min(file.len());
    if let Ok(Tail::Metadata(range)) = read_tail(&file[cut..], size) {
        let metadata = usize::try_from(range.start)
            .ok()
            .zip(usize::try_from(range.end).ok())
            .and_then(|(start, end)| file.get(start..end))
            .expect("the metadata range lies inside the file");
        let _ = decode_metadata(metadata);
    }
    // A listing that names a size the blob no longer has.
    let _ = read_tail(file, size.saturating_sub(cut as u64));
    let _ = read_tail(file, size + cut as u64);
});
