//! The command line: each verb decodes its arguments, calls one capability and prints.

use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::app::App;
use crate::handler::local::{self, LocalOptions};
use crate::handler::routes;
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
    /// Run one protect pass now, including the step of every table that needs one, without
    /// the task queue, and exit (the timer schedule lives in functions/protect).
    Protect {
        /// Accepted for scripts written for earlier versions; `protect` always runs once.
        #[arg(long, hide = true)]
        once: bool,
        /// Check every table in scope, changed or not (the timer does so once a day).
        #[arg(long)]
        full: bool,
    },
}

/// A verb failed; main prints it and exits non-zero.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot serve: {0}")]
    Serve(#[from] std::io::Error),
    #[error(transparent)]
    Protect(#[from] protect::ProtectError),
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
            Command::Protect { full, .. } => {
                let report = if full {
                    protect::run_full_pass(&app).await?
                } else {
                    protect::run_once(&app).await?
                };
                println!("{report}");
            }
        }
        Ok(())
    }
}
