//! adx-backup: continuous backup and exactly-once restore for Azure Data Explorer.
//!
//! The modules follow the flow of work, and imports go one way, top to bottom:
//!
//! - `handler` (the Functions custom-handler protocol and `run-local`) and `cli` decode a
//!   request and hand it on;
//! - `worker` runs a delivered task and owns the one failure policy: its verdict (done,
//!   retry later, failed and recorded, poison) is applied by both the Functions queue route
//!   and run-local's poller; it also fans the protect timer's plan out as tasks;
//! - capabilities (`protect`; later `backfill`, `restore`, `verify`) do the work;
//! - `job` holds the mechanics multi-step capabilities share (ETag-guarded steps, delayed
//!   follow-up tasks, recorded failures); `task` is the queue message, vocabulary only, so a
//!   capability can send one; `app` holds the clients and blob layout built once;
//! - `kusto` (client, wire formats, typed rows and operations, the one command builder) and
//!   `storage` (blobs, queues, layout, catalog, job state) talk to the outside world;
//! - `ids`, `retry`, `redact`, `settings` and `telemetry` are the shared vocabulary underneath.
//!
//! Tests only: `mutate` damages valid samples for the decoders' property tests.

pub mod app;
pub mod backfill;
pub mod check;
pub mod cli;
pub mod handler;
pub mod http;
pub mod ids;
pub mod job;
pub mod kusto;
#[cfg(test)]
mod mutate;
pub mod protect;
pub mod prune;
pub mod reconcile;
pub mod redact;
pub mod restore;
pub mod retry;
pub mod settings;
pub mod status;
pub mod storage;
pub mod task;
pub mod telemetry;
pub mod verify;
pub mod worker;
