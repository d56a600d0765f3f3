//! kusto-sim's integration tests: one binary, run against the real HTTP server (and
//! Azurite, for storage, via `AZURITE_BLOB_ENDPOINT`).

mod sim {
    pub mod support;

    mod commands;
    mod continuous;
    mod faults;
    mod literals;
    mod protocol;
    mod queued;
    mod roundtrip;
    mod schema_objects;
    mod staging;
    mod storage;
    mod time_limits;
    mod views;
}
