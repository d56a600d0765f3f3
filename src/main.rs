//! The `adx-backup` binary: parse the command line, load settings, build the app, run a verb.

use anyhow::Context;
use clap::Parser;

use adx_backup::app::App;
use adx_backup::cli::Cli;
use adx_backup::settings::{Env, Settings};
use adx_backup::telemetry;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(&Env::from_process()).context(
        "adx-backup cannot start; set the named setting (see local.settings.json.example)",
    )?;
    telemetry::init(&settings.log_format);
    let app = App::new(settings)?;
    cli.command.run(app).await?;
    Ok(())
}
