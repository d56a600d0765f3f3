//! The one shared harness of the end-to-end tests: a Functions host emulator, a replay server
//! for canned Kusto payloads, the local stack (Azurite + kusto-sim), and an independent reader
//! of the backup's parquet files.

pub mod host;
pub mod parquet;
pub mod replay;
pub mod stack;
