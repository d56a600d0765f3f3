//! A catalog segment as read from storage (`parse_segment`). Its artifacts, written again as a
//! segment (one JSON line each, as `Catalog::append` writes), must read back the same.
#![no_main]

use adx_backup::storage::catalog::parse_segment;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let Ok(artifacts) = parse_segment("seg", body) else {
        return;
    };
    let mut written = Vec::new();
    for artifact in &artifacts {
        serde_json::to_writer(&mut written, artifact).expect("an artifact encodes");
        written.push(b'\n');
    }
    assert_eq!(parse_segment("seg", &written).ok(), Some(artifacts));
});
