//! A `/v1/rest/mgmt` response body (`parse_v1`), then every table read as the product reads it.
#![no_main]

use adx_backup::kusto::frames::{DecodeError, parse_v1};
use adx_backup_fuzz::read_tables;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    match parse_v1(body) {
        Ok(tables) => read_tables(&tables),
        Err(DecodeError::Partial(errors)) => errors.iter().for_each(|e| drop(e.summary())),
        Err(DecodeError::Malformed { .. }) => {}
    }
});
