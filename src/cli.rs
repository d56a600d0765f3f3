//! The command line: each verb decodes its arguments, calls one capability and prints.

use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::app::App;
use crate::backfill;
use crate::handler::local::{self, LocalOptions};
use crate::handler::routes;
use crate::ids::Principal;
use crate::ids::{DatabaseName, TableName, TableRef};
use crate::protect;
use crate::restore::{self, RestoreError};
use crate::retry::RetryPolicy;
use crate::storage::TaskQueue;
use crate::{status, verify};

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
    /// Run the functions without the Functions host: internal timers for protect and verify
    /// and pollers on the task and restore queues. For laptops, containers and VMs.
    RunLocal {
        /// Seconds between protect runs; the first runs at start.
        #[arg(long, default_value_t = 300)]
        protect_every: u64,
        /// Seconds between verify runs (daily, as the verify timer's default schedule); the
        /// first runs one period after start.
        #[arg(long, default_value_t = 86_400)]
        verify_every: u64,
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
    /// Check what adx-backup needs on the cluster and in storage (the app's roles, the
    /// cluster identity's managed-identity policy, per table IngestionTime policy, row-level
    /// security and restricted view access; measured: the app's and the cluster's storage
    /// rights, the export capacity) and print one table of findings, each with the command
    /// that fixes it; exit 0 when there is none. Its probes are removed at once.
    Check,
    /// Post a restore request on the restore queue (the same message `az storage message put`
    /// would post), print its job id, and with --wait follow it to its report. With --undo,
    /// drop every row a finished job wrote.
    Restore(Box<RestoreArgs>),
    /// Show whether every table is protected and current, what the backup holds, the last
    /// verification, and the progress of backfill and restore jobs.
    #[command(after_help = EXIT_CODES)]
    Status {
        /// Print the StatusV1 JSON document (docs/status.md) instead of the table.
        #[arg(long)]
        json: bool,
        #[arg(long)]
        database: Option<DatabaseName>,
        #[arg(long)]
        table: Option<TableName>,
        /// Only this backfill or restore job.
        #[arg(long)]
        job: Option<crate::ids::JobId>,
    },
    /// Apply the retention policy now (the protect timer does it on every pass): record the
    /// days that leave it, then delete their blobs; with --dry-run list the days, files, rows
    /// and bytes it would remove and change nothing.
    Prune {
        #[arg(long)]
        database: Option<DatabaseName>,
        #[arg(long)]
        table: Option<TableName>,
        #[arg(long)]
        dry_run: bool,
    },
    /// Compare the source's row counts per table and day with the catalog's, store the result
    /// (shown by `status`) and print it.
    #[command(after_help = EXIT_CODES)]
    Verify {
        #[arg(long)]
        database: Option<DatabaseName>,
        #[arg(long)]
        table: Option<TableName>,
        /// Also check the parquet in storage: every live cataloged file exists and its footer
        /// declares the rows the catalog counted (lists the data folders, reads each footer).
        #[arg(long)]
        files: bool,
        /// Print the verification documents as a JSON array.
        #[arg(long)]
        json: bool,
    },
}

/// The exit codes of `status` and `verify`, for scripts.
const EXIT_CODES: &str = "Exit codes: 0 nothing needs attention; 1 the command could not run \
(settings, storage or Kusto unreachable: see the error); 2 bad arguments; 3 something needs \
attention (status: an unprotected table, a disabled or failing export, lag over \
AdxBackup__LagAlertSeconds, verification drift, a failed job; verify: drift or a failed \
verification).";

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// Target cluster's engine URL, e.g. https://dr.westeurope.kusto.windows.net.
    #[arg(long, required_unless_present = "undo")]
    pub target_cluster: Option<String>,
    /// Target database.
    #[arg(long, required_unless_present = "undo")]
    pub target_database: Option<String>,
    /// The target's ingest endpoint (default: its `ingest-` endpoint).
    #[arg(long)]
    pub ingest_uri: Option<String>,
    /// The backed-up database (default: the app's only one).
    #[arg(long)]
    pub source_database: Option<String>,
    /// Table patterns (`*`, `?`), comma-separated or repeated; default every table.
    #[arg(long = "tables", value_delimiter = ',')]
    pub tables: Vec<String>,
    /// `Source=Target`, repeated: restore a table under another name.
    #[arg(long)]
    pub rename: Vec<String>,
    /// schemaAndData (default), schemaOnly or dataOnly.
    #[arg(long)]
    pub what: Option<String>,
    /// First and last data day to restore, `yyyy-mm-dd`.
    #[arg(long, requires = "to_day")]
    pub from_day: Option<String>,
    #[arg(long, requires = "from_day")]
    pub to_day: Option<String>,
    /// Only files exported at or before this time (RFC 3339), with the schema valid then.
    #[arg(long)]
    pub as_of: Option<String>,
    /// Plan from a listing of the backup's parquet files, for a backup whose catalog was
    /// lost (the report then says files of failed exports may be included).
    #[arg(long)]
    pub from_listing: bool,
    /// Plan and report only; the target is not touched.
    #[arg(long)]
    pub dry_run: bool,
    /// Add to target tables that already hold rows (default: refuse).
    #[arg(long)]
    pub append: bool,
    /// Restore the database and table principals of the schema snapshot (default: none).
    #[arg(long)]
    pub principals: bool,
    /// `SourcePrincipal=TargetPrincipal`, repeated, e.g.
    /// `aadapp=<app>;<src tenant>=aadapp=<app>;<dr tenant>`: restore only the mapped
    /// principals, as their targets.
    #[arg(long, requires = "principals", value_name = "SRC=DST")]
    pub principal_map: Vec<String>,
    /// The job's id (default: generated).
    #[arg(long)]
    pub job: Option<String>,
    /// Follow the job until it ends and print its report.
    #[arg(long)]
    pub wait: bool,
    /// Undo job JOB: drop the rows it wrote.
    #[arg(long, value_name = "JOB", conflicts_with_all = ["target_cluster", "wait", "dry_run"])]
    pub undo: Option<String>,
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
    #[error(transparent)]
    Restore(#[from] RestoreError),
    #[error("{0}")]
    RestoreRequest(String),
    #[error(transparent)]
    Check(#[from] crate::check::CheckError),
    #[error("check found {0} thing(s) to fix (the table above gives each fix)")]
    CheckFound(usize),
    #[error("restore job {job} ended {status}")]
    RestoreEnded { job: String, status: String },
    #[error(transparent)]
    Status(#[from] crate::status::StatusError),
    #[error(transparent)]
    Verify(#[from] crate::verify::VerifyError),
    #[error(transparent)]
    Prune(#[from] crate::prune::PruneError),
    #[error("{0}")]
    NeedsAttention(String),
}

impl CliError {
    /// The process exit code (see `EXIT_CODES`).
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::NeedsAttention(_) => 3,
            _ => 1,
        }
    }
}

impl Command {
    /// Where the verb's log lines go: stdout is the report of `status` and `verify`.
    pub fn log_sink(&self) -> crate::telemetry::Sink {
        match self {
            Command::Status { .. } | Command::Verify { .. } => crate::telemetry::Sink::Stderr,
            _ => crate::telemetry::Sink::Host,
        }
    }

    pub async fn run(self, app: App) -> Result<(), CliError> {
        match self {
            Command::Serve { port } => routes::serve(Arc::new(app), port).await?,
            Command::RunLocal {
                protect_every,
                verify_every,
                retry_after,
            } => {
                let opts = LocalOptions {
                    protect_every: Duration::from_secs(protect_every.max(1)),
                    verify_every: Duration::from_secs(verify_every.max(1)),
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
            Command::Backfill {
                database,
                table,
                dry_run,
            } => {
                let t = TableRef { database, table };
                println!("{}", backfill::start(&app, &t, dry_run).await?);
            }
            Command::Restore(args) => run_restore(&app, *args).await?,
            Command::Status {
                json,
                database,
                table,
                job,
            } => {
                let filter = status::Filter {
                    database,
                    table,
                    job,
                };
                let s = status::collect(&app, &filter).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
                } else {
                    print!("{}", status::render(&s, terminal_colour()));
                }
                if s.needs_attention {
                    return Err(CliError::NeedsAttention(format!(
                        "{} item(s) need attention",
                        s.attention.len()
                    )));
                }
            }
            Command::Verify {
                database,
                table,
                files,
                json,
            } => run_verify(&app, database.as_ref(), table.as_ref(), files, json).await?,
            Command::Prune {
                database,
                table,
                dry_run,
            } => {
                let now = time::OffsetDateTime::now_utc();
                for report in
                    crate::prune::run_inline(&app, database.as_ref(), table.as_ref(), now, dry_run)
                        .await?
                {
                    println!("{report}");
                }
            }
            Command::Check => {
                let report = crate::check::check(&app).await?;
                println!("{report}");
                if !report.findings.is_empty() {
                    return Err(CliError::CheckFound(report.findings.len()));
                }
            }
        }
        Ok(())
    }
}

/// Colours only when stdout is a terminal and `NO_COLOR` is unset (https://no-color.org).
fn terminal_colour() -> status::Colour {
    use std::io::IsTerminal;
    if std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none() {
        status::Colour::On
    } else {
        status::Colour::Off
    }
}

async fn run_verify(
    app: &App,
    database: Option<&DatabaseName>,
    table: Option<&TableName>,
    files: bool,
    json: bool,
) -> Result<(), CliError> {
    use crate::verify::Outcome;
    let results = verify::run_inline(app, database, table, files).await?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&results).unwrap_or_default()
        );
    } else {
        for v in &results {
            println!("{}.{}: {}", v.database, v.table, v.outcome);
            for line in v.behind.iter().chain(
                &v.findings
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
            ) {
                println!("  - {line}");
            }
            if let Some(f) = &v.files {
                println!(
                    "  files: {} live cataloged ({} rows in their footers), {} missing from storage, {} with other rows than cataloged, {} not readable parquet, {} in storage but not cataloged",
                    f.cataloged,
                    f.rows_in_files,
                    f.missing,
                    f.wrong_rows,
                    f.unreadable,
                    f.uncataloged
                );
            }
        }
    }
    let bad = results
        .iter()
        .filter(|v| matches!(v.outcome, Outcome::Drift | Outcome::Failed))
        .count();
    if bad > 0 {
        return Err(CliError::NeedsAttention(format!(
            "{bad} table(s) drifted from the source or could not be verified"
        )));
    }
    Ok(())
}

async fn run_restore(app: &App, args: RestoreArgs) -> Result<(), CliError> {
    if let Some(job) = &args.undo {
        let job = crate::ids::JobId::new(job.as_str())
            .map_err(|e| CliError::RestoreRequest(e.to_string()))?;
        let undone = restore::undo(app, &job).await?;
        let tables: Vec<String> = undone.tables.iter().map(ToString::to_string).collect();
        println!(
            "restore {job} undone: dropped its extents in {}",
            tables.join(", ")
        );
        return Ok(());
    }
    let text = restore_request(&args)?;
    let request = restore::request::RestoreRequestV1::parse(&text)
        .map_err(|e| CliError::RestoreRequest(e.to_string()))?;
    let job = request
        .job_id
        .clone()
        .ok_or_else(|| CliError::RestoreRequest("no job id".to_owned()))?;
    let queue = TaskQueue::named(
        &app.settings.storage,
        &app.settings.restore.request_queue,
        RetryPolicy::default(),
    )?;
    queue.ensure_exists().await?;
    queue.send(&text, None).await?;
    println!("{job}");
    if args.wait {
        wait_for(app, &job).await?;
    }
    Ok(())
}

/// The request as JSON, exactly what the README's `az storage message put` posts.
fn restore_request(args: &RestoreArgs) -> Result<String, CliError> {
    let job = args.job.clone().unwrap_or_else(|| {
        let now = time::OffsetDateTime::now_utc();
        format!(
            "r-{:04}{:02}{:02}-{:02}{:02}{:02}-{}",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second(),
            &uuid::Uuid::new_v4().simple().to_string()[..6]
        )
    });
    let mut target = serde_json::json!({
        "clusterUri": args.target_cluster,
        "database": args.target_database,
    });
    if let Some(ingest) = &args.ingest_uri {
        target["ingestUri"] = ingest.as_str().into();
    }
    let mut request = serde_json::json!({"version": 1, "jobId": job, "target": target});
    let mut source = serde_json::Map::new();
    if let Some(db) = &args.source_database {
        source.insert("database".to_owned(), db.as_str().into());
    }
    if args.from_listing {
        source.insert("fromListing".to_owned(), true.into());
    }
    if !source.is_empty() {
        request["source"] = source.into();
    }
    if !args.tables.is_empty() {
        request["tables"] = args.tables.clone().into();
    }
    if !args.rename.is_empty() {
        let mut map = serde_json::Map::new();
        for pair in &args.rename {
            let (from, to) = pair.split_once('=').ok_or_else(|| {
                CliError::RestoreRequest(format!("--rename {pair:?}: expected Source=Target"))
            })?;
            map.insert(from.to_owned(), to.into());
        }
        request["rename"] = map.into();
    }
    if let Some(what) = &args.what {
        request["what"] = what.as_str().into();
    }
    if let (Some(from), Some(to)) = (&args.from_day, &args.to_day) {
        request["window"] = serde_json::json!({"from": from, "to": to});
    }
    if let Some(as_of) = &args.as_of {
        request["asOf"] = as_of.as_str().into();
    }
    if args.dry_run {
        request["dryRun"] = true.into();
    }
    if args.append {
        request["mode"] = "append".into();
    }
    if args.principals {
        request["principals"] = true.into();
    }
    if !args.principal_map.is_empty() {
        let mut map = serde_json::Map::new();
        for pair in &args.principal_map {
            let at = Principal::pair_separator(pair).ok_or_else(|| {
                CliError::RestoreRequest(format!(
                    "--principal-map {pair:?}: expected SourcePrincipal=TargetPrincipal, each `<kind>=<id>[;<tenant>]`"
                ))
            })?;
            map.insert(pair[..at].to_owned(), pair[at + 1..].into());
        }
        request["principalMapping"] = map.into();
    }
    Ok(request.to_string())
}

/// Prints the job's progress whenever it changes, then its report.
async fn wait_for(app: &App, job: &crate::ids::JobId) -> Result<(), CliError> {
    use crate::restore::state::JobStatus;
    let mut last = String::new();
    loop {
        let state = match restore::load_job(app, job).await {
            Ok(state) => state,
            // The function has not picked the request up yet.
            Err(RestoreError::NoSuchJob { .. }) => {
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let line = progress_line(&state);
        if line != last {
            eprintln!("{line}");
            last = line;
        }
        if state.status.is_final() {
            let report = serde_json::to_string_pretty(&state.report).unwrap_or_default();
            println!("{report}");
            if let Some(error) = &state.error {
                println!("error: {}", error.message);
            }
            return match state.status {
                JobStatus::Succeeded | JobStatus::Planned | JobStatus::Undone => Ok(()),
                other => Err(CliError::RestoreEnded {
                    job: job.to_string(),
                    status: format!("{other:?}"),
                }),
            };
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// `[#######.............] 7/20 chunks, 690/2000 files in, 0 failed (Planning)`
fn progress_line(state: &restore::state::RestoreJob) -> String {
    const WIDTH: u64 = 20;
    let t = &state.totals;
    let filled = (state.first_open * WIDTH)
        .checked_div(t.chunks)
        .unwrap_or(0)
        .min(WIDTH) as usize;
    format!(
        "[{}{}] {}/{} chunks, {}/{} files in, {} failed ({:?})",
        "#".repeat(filled),
        ".".repeat(WIDTH as usize - filled),
        state.first_open,
        t.chunks,
        t.ingested_artifacts,
        t.artifacts,
        t.failed_artifacts,
        state.status
    )
}

#[cfg(test)]
mod restore_tests {
    use super::*;

    fn args(argv: &[&str]) -> RestoreArgs {
        let mut full = vec!["adx-backup", "restore"];
        full.extend_from_slice(argv);
        match Cli::try_parse_from(full).unwrap().command {
            Command::Restore(args) => *args,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_verb_posts_the_same_request_the_queue_takes() {
        let a = args(&[
            "--target-cluster",
            "https://dr.kusto.windows.net",
            "--target-database",
            "DR",
            "--tables",
            "Orders,Kinds",
            "--rename",
            "Kinds=Kinds2",
            "--from-day",
            "2026-03-01",
            "--to-day",
            "2026-03-02",
            "--dry-run",
            "--append",
            "--from-listing",
            "--source-database",
            "Sales",
            "--job",
            "r-cli",
        ]);
        let text = restore_request(&a).unwrap();
        let r = restore::request::RestoreRequestV1::parse(&text).unwrap();
        assert_eq!(r.job_id.unwrap().as_str(), "r-cli");
        assert_eq!(r.tables, ["Orders", "Kinds"]);
        assert_eq!(r.rename.len(), 1);
        assert!(r.dry_run);
        assert_eq!(r.mode, restore::request::Mode::Append);
        assert!(r.window.is_some());
        assert!(r.source.from_listing);
        assert_eq!(r.source.database.unwrap().as_str(), "Sales");
        let generated = restore_request(&args(&[
            "--target-cluster",
            "https://dr.kusto.windows.net",
            "--target-database",
            "DR",
        ]))
        .unwrap();
        let generated = restore::request::RestoreRequestV1::parse(&generated).unwrap();
        assert!(generated.job_id.is_some());
        assert!(!generated.source.from_listing);
        assert!(!generated.principals && generated.principal_mapping.is_empty());
        assert!(Cli::try_parse_from(["adx-backup", "restore", "--undo", "r-1"]).is_ok());
        assert!(Cli::try_parse_from(["adx-backup", "restore", "--wait"]).is_err());
    }

    #[test]
    fn principals_and_their_mapping_become_the_request_fields() {
        let base = [
            "--target-cluster",
            "https://dr.kusto.windows.net",
            "--target-database",
            "DR",
            "--principals",
        ];
        let with = |extra: &[&str]| {
            let mut argv = base.to_vec();
            argv.extend_from_slice(extra);
            restore_request(&args(&argv))
        };
        let r = restore::request::RestoreRequestV1::parse(
            &with(&[
                "--principal-map",
                "aadapp=a;src-tenant=aadapp=b;dr-tenant",
                "--principal-map",
                "aaduser=u@src.com=AADGROUP=g;dr.com",
            ])
            .unwrap(),
        )
        .unwrap();
        assert!(r.principals);
        let pairs: Vec<(&str, &str)> = r
            .principal_mapping
            .iter()
            .map(|(s, t)| (s.as_str(), t.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("aadapp=a;src-tenant", "aadapp=b;dr-tenant"),
                ("aaduser=u@src.com", "AADGROUP=g;dr.com")
            ]
        );
        let err = with(&["--principal-map", "aadapp=a;t"]).unwrap_err();
        assert!(
            err.to_string().contains("SourcePrincipal=TargetPrincipal"),
            "{err}"
        );
        assert!(
            Cli::try_parse_from([
                "adx-backup",
                "restore",
                "--target-cluster",
                "https://dr.kusto.windows.net",
                "--target-database",
                "DR",
                "--principal-map",
                "aadapp=a;t=aadapp=b;t",
            ])
            .is_err(),
            "a mapping without --principals"
        );
    }
}
