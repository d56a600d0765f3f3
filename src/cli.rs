//! The command line: each verb decodes its arguments, calls one capability and prints.

use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::app::App;
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
    /// Run one protect pass now, including every table's step, without the task queue.
    Protect {
        /// Run once and exit (the only mode; the timer schedule lives in functions/protect).
        #[arg(long, required = true)]
        once: bool,
    },
}

/// A verb failed; main prints it and exits non-zero.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot serve: {0}")]
    Serve(#[from] std::io::Error),
    #[error(transparent)]
    Protect(#[from] protect::ProtectError),
}

impl Command {
    pub async fn run(self, app: App) -> Result<(), CliError> {
        match self {
            Command::Serve { port } => routes::serve(Arc::new(app), port).await?,
            Command::Protect { .. } => {
                let report = protect::run_once(&app).await?;
                println!("{report}");
            }
        }
        Ok(())
    }
}
