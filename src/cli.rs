//! The command line: each verb decodes its arguments, calls one capability and prints.

use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::app::App;
use crate::backfill;
use crate::handler::local::{self, LocalOptions};
use crate::handler::routes;
use crate::ids::{DatabaseName, TableName, TableRef};
use crate::protect;

/// Backup and restore for Azure Data Explorer.
#[derive(Debug, Parser)]
#[command(name = "adx-backup", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the Azure Functions custom handler on 127.0.0.1:$FUNCTIONS_CUSTOMHANDLER_PORT.
    Serve {
        /// Port to listen on; defaults to FUNCTIONS_CUSTOMHANDLER_PORT.
        #[arg(long, env = "FUNCTIONS_CUSTOMHANDLER_PORT")]
        port: u16,
    },
    /// Run the functions without the Functions host: an internal timer for protect and a
    /// poller on the task queue. For laptops, containers and VMs.
    RunLocal {
        /// Seconds between protect runs; the first runs at start.
        #[arg(long, default_value_t = 300)]
        protect_every: u64,
        /// Seconds a failed task message stays hidden before it is tried again.
        #[arg(long, default_value_t = 30)]
        retry_after: u64,
    },
    /// Run one protect pass now, including every table's step, without the task queue, and
    /// exit (the timer schedule lives in functions/protect).
    Protect {
        /// Accepted for scripts written for earlier versions; `protect` always runs once.
        #[arg(long, hide = true)]
        once: bool,
    },
    /// Back up a protected table's history (the rows before its continuous export started)
    /// in bounded batches over the task queue, or show the plan.
    Backfill {
        #[arg(long)]
        database: DatabaseName,
        #[arg(long)]
        table: TableName,
        /// Show the batches it would run, start nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// A verb failed; main prints it and exits non-zero.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot serve: {0}")]
    Serve(#[from] std::io::Error),
    #[error(transparent)]
    Protect(#[from] protect::ProtectError),
    #[error(transparent)]
    Backfill(#[from] backfill::BackfillError),
    #[error("run-local cannot reach its queues: {0}")]
    RunLocal(#[from] crate::storage::StorageError),
}

impl Command {
    pub async fn run(self, app: App) -> Result<(), CliError> {
        match self {
            Command::Serve { port } => routes::serve(Arc::new(app), port).await?,
            Command::RunLocal {
                protect_every,
                retry_after,
            } => {
                let opts = LocalOptions {
                    protect_every: Duration::from_secs(protect_every.max(1)),
                    retry_after: Duration::from_secs(retry_after),
                };
                local::run(Arc::new(app), opts).await?;
            }
            Command::Protect { .. } => {
                let report = protect::run_once(&app).await?;
                println!("{report}");
            }
            Command::Backfill {
                database,
                table,
                dry_run,
            } => {
                let t = TableRef { database, table };
                println!("{}", backfill::start(&app, &t, dry_run).await?);
            }
        }
        Ok(())
    }
}
