//! A restore request as delivered (`RestoreRequestV1::parse`, `from_message`, `job_id_in`). A
//! valid request is kept in the job document and read back: it must come back the same, and
//! what the job derives from it (endpoints, target names) must not panic.
#![no_main]

use adx_backup::ids::TableName;
use adx_backup::restore::request::{RestoreRequestV1, allowed_endpoints, job_id_in};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = job_id_in(&Value::String(text.to_owned()));
    let parsed = RestoreRequestV1::parse(text);
    assert_eq!(
        RestoreRequestV1::from_message(&Value::String(text.to_owned())),
        parsed
    );
    let Ok(request) = parsed else {
        return;
    };
    let json = serde_json::to_string(&request).expect("a request encodes");
    assert_eq!(
        RestoreRequestV1::parse(&json).as_ref(),
        Ok(&request),
        "{json}"
    );
    let endpoints = allowed_endpoints(&[request.target.cluster_uri.clone()]);
    let _ = request.target.check_allowed(&endpoints);
    for source in request.rename.keys() {
        let _ = request.target_table(source);
    }
    if let Ok(t) = TableName::new("T") {
        let _ = request.target_table(&t);
    }
});
