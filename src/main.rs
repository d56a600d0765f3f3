//! The `adx-backup` binary: parse the command line, load settings, build the app, run a verb.

use anyhow::Context;
use clap::Parser;

use adx_backup::app::App;
use adx_backup::cli::{Cli, CliError};
use adx_backup::settings::{Env, Settings};
use adx_backup::telemetry;

/// Exit codes: 0 success, 1 failure (the error is printed), 2 bad arguments (clap), 3 the
/// command ran and found something that needs attention (`status`, `verify`).
#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // The cause chain on one line; never a backtrace (RUST_BACKTRACE may be set in the
            // environment), which says nothing to an operator.
            eprintln!("error: {err:#}");
            let code = err
                .downcast_ref::<CliError>()
                .map_or(1, CliError::exit_code);
            std::process::ExitCode::from(code)
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(&Env::from_process()).context(
        "adx-backup cannot start; set the named setting (see local.settings.json.example)",
    )?;
    telemetry::init(&settings.log_format, cli.command.log_sink());
    let app = App::new(settings)?;
    cli.command.run(app).await?;
    Ok(())
}
