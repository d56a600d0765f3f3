//! The one shared harness of the end-to-end tests: a Functions host emulator, a replay server
//! for canned Kusto payloads, the local stack (Azurite + kusto-sim), a proxy that plays
//! storage behaviour Azurite lacks (an immutability policy), an independent reader of
//! the backup's parquet files, a restore runner (and a queue gate to kill it mid-step), and
//! the seed data and readers the protect, backfill and restore tests share, a driver of
//! the task queue, and a proxy that refuses writes as a reader-only identity is refused.

pub mod blob_proxy;
pub mod data;
pub mod gate;
pub mod host;
pub mod parquet;
pub mod proxy;
pub mod replay;
pub mod restore;
pub mod stack;
pub mod tasks;
