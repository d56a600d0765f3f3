//! adx-backup: continuous backup and exactly-once restore for Azure Data Explorer.
//!
//! The modules follow the flow of work, and imports go one way, top to bottom:
//!
//! - `handler` (the Functions custom-handler protocol) and `cli` decode a request and call one
//!   capability; `task` is the typed queue message both of them dispatch;
//! - capabilities (`protect`; later `backfill`, `restore`, `verify`) do the work;
//! - `kusto` (client, wire formats, the one command builder) and `storage` (blobs, queues,
//!   layout, catalog, job state) talk to the outside world;
//! - `ids`, `retry`, `settings` and `telemetry` are the shared vocabulary underneath.

pub mod app;
pub mod cli;
pub mod handler;
pub mod ids;
pub mod job;
pub mod kusto;
pub mod protect;
pub mod redact;
pub mod retry;
pub mod settings;
pub mod storage;
pub mod task;
pub mod telemetry;
pub mod worker;
