//! kusto-sim: a wire-compatible Azure Data Explorer stand-in for adx-backup's tests and demo.
//!
//! It speaks the Kusto REST protocol (V1 for `/v1/rest/mgmt` and `/v1/rest/query`, V2
//! frames for `/v2/rest/query`, OneAPI errors), keeps typed tables with extents, ingestion
//! times and database cursors, exports real parquet to Blob Storage and ingests it back.
//! Anything outside the supported subset is answered with a 400 "not supported by
//! kusto-sim: ...". See `README.md` for the supported commands.
//!
//! Adding a command, one place per layer:
//! - parser: a `Command` variant in `parse/command.rs`, parsed in `parse/command/ddl.rs`
//!   (schema), `parse/command/policy.rs` (table policies) or `parse/command/data.rs` (data
//!   movement, extents, operations);
//! - command: a match arm in `commands::run` and its `command_type`, the execution in the
//!   `commands/` module of its concern;
//! - state: what it keeps in `state` (the cluster behind the `Backend`'s one mutex); no I/O
//!   there, storage goes through `blob` / `export_writer` / `storage_reader`.
//!
//! Layers, each importing only from its own layer or those below (no import loop except the
//! evaluator's own `engine::expr` ↔ `engine::functions`):
//! 1. `server` (HTTP) and [`Server`];
//! 2. `api`: [`Sim`], the in-process API (`mgmt`, `query`, `run_continuous_exports_now`, ...);
//! 3. `commands` (one module per concern), `continuous_export` (runs and scheduler) and
//!    `queued_ingestion` (the queue consumer);
//! 4. `query_runner`, `export_writer`, `storage_reader`: running queries, writing and reading
//!    parquet in storage;
//! 5. `backend`: what all of those run against (state, storage client, faults, log, clock);
//! 6. `state` (the cluster), `engine` (operators), `blob` / `queue` / `parquet_io` (storage),
//!    `faults`, `config`, `command_log`;
//! 7. `parse` + `lexer` (the text), `protocol` (wire shapes), `table`, `value`, `error`.

mod api;
mod backend;
mod blob;
mod command_log;
mod commands;
pub mod config;
mod continuous_export;
mod engine;
pub mod error;
mod export_writer;
pub mod faults;
mod lexer;
mod parquet_io;
pub mod parse;
mod protocol;
mod query_runner;
mod queue;
mod queued_ingestion;
pub mod roles;
mod server;
mod state;
mod storage_reader;
pub mod table;
pub mod value;

use std::net::SocketAddr;

pub use api::Sim;
pub use command_log::LoggedCommand;
pub use config::{Capacity, Config, StorageAccount};
pub use continuous_export::RunReport;
pub use error::SimError;
pub use faults::FaultConfig;
pub use protocol::QueryOutcome;
pub use queued_ingestion::IngestionReport;
pub use state::OperationState;
pub use state::merge::Merged;

/// A running kusto-sim: an HTTP server plus its scheduler, stopped when dropped.
pub struct Server {
    addr: SocketAddr,
    sim: Sim,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Starts on `127.0.0.1` with an ephemeral port.
    pub async fn start(config: Config) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        Self::serve(config, listener)
    }

    /// Serves on an already bound listener (the binary's `--listen`).
    pub fn serve(config: Config, listener: tokio::net::TcpListener) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let tick = config.scheduler_tick;
        let sim = Sim::new(config);
        let app = server::router(sim.clone());
        let mut tasks = vec![tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "kusto-sim stopped serving");
            }
        })];
        if let Some(tick) = tick {
            tasks.push(continuous_export::spawn_scheduler(sim.backend(), tick));
            tasks.push(queued_ingestion::spawn_consumer(sim.backend(), tick));
        }
        Ok(Self { addr, sim, tasks })
    }

    /// `http://127.0.0.1:PORT`, the cluster URL to give a Kusto client.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The simulator behind the server: seed data, run exports, set faults, read the log.
    pub fn state(&self) -> &Sim {
        &self.sim
    }

    /// Runs until the server task ends (the binary's main loop).
    pub async fn wait(mut self) {
        if let Some(first) = self.tasks.first_mut() {
            let _ = first.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.tasks.iter().for_each(|t| t.abort());
    }
}
