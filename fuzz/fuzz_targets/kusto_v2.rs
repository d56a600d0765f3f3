//! A `/v2/rest/query` response body (`parse_v2`), then every table read as the product reads it.
#![no_main]

use adx_backup::kusto::frames::{DecodeError, parse_v2};
use adx_backup_fuzz::read_tables;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    match parse_v2(body) {
        Ok(result) => read_tables(&result.tables),
        Err(DecodeError::Partial(errors)) => errors.iter().for_each(|e| drop(e.summary())),
        Err(DecodeError::Malformed { .. }) => {}
    }
});
