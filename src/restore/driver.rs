//! The job's driver: one bounded step per `RestoreJobV1` message. Accepted → (schema) →
//! Planning (a page of chunks per step, chunks started as room allows) → Ingesting (waiting
//! for the last chunks) → the count and the report.

use std::collections::BTreeMap;

use bytes::Bytes;
use time::OffsetDateTime;

use super::look;
use super::page::{self, Pages};
use super::plan::{self, PlanError};
use super::request::{Mode, RestoreRequestV1, What};
use super::schema::{self, ObjectPlan, Planned, PlannedView, Statement, TableSchema};
use super::state::{
    BlobOutcome, DayCount, FAILED_LISTED, FailedArtifact, JobStatus, JobTable, Report,
    RestoreChunk, RestoreJob, SchemaReport, TableReport,
};
use super::views;
use super::{
    Backup, RestoreError, allowed_endpoints, backup, kusto_err, reject, send_step, storage_err,
    target_client,
};
use crate::app::App;
use crate::check::{self, CheckError, RestoreTarget, RestoredTable};
use crate::ids::{Day, JobId, TableName};
use crate::job::{Change, StepDoc, StepOutcome};
use crate::kusto::command::{
    QueryBuilder, alter_table_ingestiontime_policy, create_merge_table,
    show_table_extents_with_tag, show_table_update_policy, show_tables,
};
use crate::kusto::{Command, KustoClient, Step};
use crate::retry::Retryable;
use crate::storage::catalog_totals;
use crate::task::Task;

/// One step of job `job`, for the driver message of tick `tick` (`redelivered`: the queue
/// delivered this message before). Returns what it did.
pub async fn drive(
    app: &App,
    job: &JobId,
    tick: u64,
    redelivered: bool,
) -> Result<String, RestoreError> {
    let path = app.layout.restore_job(job);
    let doc = StepDoc::load(&app.blobs, &path, || RestoreJob::new(job.clone(), None))
        .await
        .map_err(storage_err(job, "read the job"))?;
    let current = doc.state().clone();
    if redelivered && current.tick == tick + 1 && !current.status.is_final() {
        // This step was taken, perhaps by this very message on an earlier delivery that
        // saved the job and then died or failed to send the next step's message: without
        // it the job would wait forever. Send it again; if the first one went out, one of
        // the two finds its step taken (a first delivery never sends again, so copies end).
        send_step(app, job, current.tick, None).await?;
        return Ok(format!(
            "restore {job}: step {tick} already taken; step {} sent again in case its message was lost",
            current.tick
        ));
    }
    if current.tick != tick || current.status.is_final() {
        return Ok(format!(
            "restore {job}: step {tick} already taken (job at step {}, {:?})",
            current.tick, current.status
        ));
    }
    let Some(request) = current.request.clone() else {
        return Ok(format!("restore {job}: no request to run"));
    };
    if current.status == JobStatus::CreatingViews {
        // Its own writes: only the step that claims a view sends its create.
        return views::step(app, doc, &request).await;
    }
    let mut next = current;
    let again_at_once = step(app, &mut next, &request).await?;
    next.tick += 1;
    let summary = format!("restore {job}: {:?}, step {}", next.status, next.tick);
    let (status, new_tick, idle) = (next.status, next.tick, next.looks.idle);
    let outcome = doc
        .advance(&app.blobs, |s| {
            *s = next;
            Change::Made
        })
        .await
        .map_err(storage_err(job, "save the job"))?;
    if outcome == StepOutcome::Advanced && !status.is_final() {
        let delay = if again_at_once {
            None
        } else {
            // Looks back off while they find nothing new, and the step waits for the next.
            Some(look::look_delay(app.settings.restore.poll, idle))
        };
        send_step(app, job, new_tick, delay).await?;
    }
    Ok(summary)
}

/// Moves the job on by one step; true when the next step should follow at once.
async fn step(
    app: &App,
    job: &mut RestoreJob,
    request: &RestoreRequestV1,
) -> Result<bool, RestoreError> {
    match job.status {
        JobStatus::Accepted => {
            start(app, job, request).await?;
            Ok(true)
        }
        JobStatus::Planning => {
            let src = backup(app, &job.job, request)?;
            plan_next(app, &src, job, request).await?;
            if !request.dry_run {
                look_and_dispatch(app, job, request, false).await?;
            }
            Ok(job.status == JobStatus::Planning)
        }
        JobStatus::Ingesting => {
            look_and_dispatch(app, job, request, true).await?;
            if job.first_open >= job.totals.chunks {
                finalize(app, job, request).await?;
            }
            Ok(false)
        }
        _ => Ok(false),
    }
}

/// Resolves the tables, checks the target, applies the schema. A request that cannot run is
/// rejected here, before anything in the target changes.
async fn start(
    app: &App,
    job: &mut RestoreJob,
    request: &RestoreRequestV1,
) -> Result<(), RestoreError> {
    let id = job.job.clone();
    let src = match backup(app, &id, request) {
        Ok(src) => src,
        Err(RestoreError::Refused { reason, .. }) => {
            reject(job, "resolve the source", &reason);
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    job.source_database = Some(src.database.clone());
    let Some(snapshot) =
        schema::pick_snapshot(&src.blobs, &src.layout, &src.database, request.as_of)
            .await
            .map_err(storage_err(&id, "list the schema snapshots"))?
    else {
        if request.source.from_listing && request.what == What::DataOnly {
            return start_without_schema(app, job, request, &src).await;
        }
        let when = request
            .as_of
            .map(|t| format!(" taken at or before {t}"))
            .unwrap_or_default();
        let listing = if request.source.from_listing {
            "; without one, a restore from a listing can only add data to tables that already exist in the target: create them there and post the request with \"what\": \"dataOnly\""
        } else {
            ""
        };
        reject(
            job,
            "pick the schema snapshot",
            &format!(
                "the backup holds no schema snapshot of database {}{when} (container {}, {}){listing}",
                src.database,
                src.container,
                src.layout.schema_dir(&src.database)
            ),
        );
        return Ok(());
    };
    let (body, _) = src
        .blobs
        .read(&snapshot)
        .await
        .map_err(storage_err(&id, "read the schema snapshot"))?;
    let script = String::from_utf8_lossy(&body);
    let statements = match schema::statements(&script) {
        Ok(s) => s,
        Err(e) => {
            reject(job, "read the schema snapshot", &format!("{snapshot}: {e}"));
            return Ok(());
        }
    };
    let tables = statements
        .iter()
        .filter_map(|s| match s {
            Statement::Table(t) => Some(t.clone()),
            _ => None,
        })
        .collect();
    let chosen = match choose_tables(app, &src, request, tables) {
        Ok(c) => c,
        Err(reason) => {
            reject(job, "choose the tables", &reason);
            return Ok(());
        }
    };
    if let Err(reason) = request.target.check_allowed(&allowed_endpoints(app)) {
        reject(job, "check the target", &reason);
        return Ok(());
    }
    let target = target_client(app, &id, &request.target.cluster_uri)?;
    let db = &request.target.database;
    let (existing, empty) =
        match check_target(&target, db, chosen.iter().map(|(_, t)| t), request).await {
            Ok(found) => found,
            Err(Refusal::Refused(reason)) => {
                reject(job, "check the target", &reason);
                return Ok(());
            }
            Err(Refusal::Failed(e)) => return Err(kusto_err(&id)(e)),
        };
    let preflight = RestoreTarget {
        client: &target,
        database: db,
        schema: request.what.schema(),
        data: request.what.data(),
        tables: restored_tables(&src, request, &statements, &chosen, &existing).await,
    };
    if !passes_check(job, &preflight).await? {
        return Ok(());
    }
    if request.what.schema() && !request.dry_run {
        for (schema, job_table) in &chosen {
            let step = Step::database(db, "create the table in the target");
            step.mgmt(
                &target,
                &create_merge_table(&job_table.target, &schema.columns),
            )
            .await
            .map_err(kusto_err(&id))?;
            // Restored rows must carry an ingestion time, or database cursors (and so a
            // protect of the restored database) never see them.
            step.mgmt(
                &target,
                &alter_table_ingestiontime_policy(&job_table.target, true),
            )
            .await
            .map_err(kusto_err(&id))?;
        }
        let objects = schema::plan_objects(
            &statements,
            &renames(chosen.iter().map(|(_, t)| t)),
            &app.settings.protect.object_prefix,
            schema::Principals::of(request),
        );
        job.schema = SchemaReport {
            applied: Vec::new(),
            not_applied: objects.not_applied,
        };
        apply_objects(&target, db, &id, &objects.with_tables, &mut job.schema).await?;
        // Without data, nothing can be derived twice: update policies go in at once, and
        // the views next (from whatever the target's tables hold).
        if !request.what.data() {
            apply_objects(&target, db, &id, &objects.after_data, &mut job.schema).await?;
            job.views = views::steps(&objects.views);
        }
    }
    job.schema_snapshot = Some(snapshot);
    job.tables = chosen
        .into_iter()
        .map(|(_, mut t)| {
            t.target_was_empty = !empty.contains(&t.target);
            t
        })
        .collect();
    if request.what.data() {
        job.status = JobStatus::Planning;
    } else if !job.views.is_empty() {
        job.status = JobStatus::CreatingViews;
        job.report = Some(report(job, Vec::new(), Vec::new()));
    } else {
        job.status = JobStatus::Succeeded;
        job.finished_at = Some(OffsetDateTime::now_utc());
        job.report = Some(report(job, Vec::new(), Vec::new()));
    }
    Ok(())
}

/// Runs the check before the restore changes anything in the target; its findings, each
/// with its fix, reject the job. False when rejected.
async fn passes_check(
    job: &mut RestoreJob,
    target: &RestoreTarget<'_>,
) -> Result<bool, RestoreError> {
    let reason = match check::restore_target(target, OffsetDateTime::now_utc()).await {
        Ok(report) if report.findings.is_empty() => {
            for c in &report.capacity {
                tracing::info!(job = %job.job, resource = %c.row.resource, total = c.row.total,
                    consumed = c.row.consumed, remaining = c.row.remaining, "restore target capacity");
            }
            return Ok(true);
        }
        Ok(report) => report
            .findings
            .iter()
            .map(|f| format!("{} (fix: {})", f.problem, f.fix))
            .collect::<Vec<_>>()
            .join("; "),
        Err(CheckError::Kusto(e)) => return Err(kusto_err(&job.job)(e)),
        Err(other) => other.to_string(),
    };
    reject(job, "check the target", &reason);
    Ok(false)
}

/// What the check before the restore needs of each table: whether it exists in the target,
/// the oldest day the restore brings (the catalog's running totals, clamped to the window;
/// unknown without them, e.g. a restore from a listing), and the retention the restore sets.
async fn restored_tables(
    src: &Backup,
    request: &RestoreRequestV1,
    statements: &[Statement],
    chosen: &[(TableSchema, JobTable)],
    existing: &[String],
) -> Vec<RestoredTable> {
    let mut out = Vec::with_capacity(chosen.len());
    for (schema, t) in chosen {
        let totals = catalog_totals::load(&src.blobs, &src.layout, &src.database, &schema.name)
            .await
            .ok()
            .flatten();
        let oldest = totals
            .as_ref()
            .and_then(|x| x.day_range())
            .and_then(|(first, last)| match &request.window {
                None => Some(first),
                Some(w) if last.date() < w.from || first.date() > w.to => None,
                Some(w) => Some(first.max(Day::new(w.from))),
            });
        let sets_soft_delete = request
            .what
            .schema()
            .then(|| {
                statements.iter().find_map(|s| match s {
                    Statement::Retention {
                        table, soft_delete, ..
                    } if *table == schema.name => Some(*soft_delete),
                    _ => None,
                })
            })
            .flatten();
        out.push(RestoredTable {
            table: t.target.clone(),
            exists: existing.iter().any(|e| e == t.target.as_str()),
            oldest_day: oldest,
            sets_soft_delete,
        });
    }
    out
}

/// Source name → target name of every table of the job.
fn renames<'a>(tables: impl Iterator<Item = &'a JobTable>) -> BTreeMap<TableName, TableName> {
    tables
        .map(|t| (t.source.clone(), t.target.clone()))
        .collect()
}

/// Sends each planned command. Kusto refusing one for good is recorded in the report, not
/// fatal: no restored row depends on a function, mapping or policy; a transient failure
/// fails the step, which runs again.
async fn apply_objects(
    target: &KustoClient,
    db: &crate::ids::DatabaseName,
    job: &JobId,
    planned: &[Planned],
    out: &mut SchemaReport,
) -> Result<(), RestoreError> {
    let step = Step::database(db, "restore a function, mapping, policy or external table");
    for p in planned {
        if found(target, db, p.unless_found.as_ref())
            .await
            .map_err(kusto_err(job))?
        {
            out.not_applied.push(left_as_it_is(&p.what));
            continue;
        }
        match step.mgmt(target, &p.command).await {
            Ok(_) => out.applied.push(p.what.clone()),
            Err(e) if e.source.is_transient() => return Err(kusto_err(job)(e)),
            // Refused because the object is there now: a twin of this step made it.
            Err(_)
                if found(target, db, p.unless_found.as_ref())
                    .await
                    .map_err(kusto_err(job))? =>
            {
                out.applied.push(p.what.clone());
            }
            Err(e) => out
                .not_applied
                .push(format!("{}: Kusto refused it: {}", p.what, e.source)),
        }
    }
    Ok(())
}

/// Whether `probe` (a `.show ... | where Name == ...`) answers a row; false without one.
pub(super) async fn found(
    target: &KustoClient,
    db: &crate::ids::DatabaseName,
    probe: Option<&Command>,
) -> Result<bool, crate::kusto::StepError> {
    let Some(probe) = probe else {
        return Ok(false);
    };
    let step = Step::database(db, "look for an object in the target");
    let tables = step.mgmt(target, probe).await?;
    Ok(tables.first().is_some_and(|t| t.rows().next().is_some()))
}

/// The report's line for an object the target already had.
fn left_as_it_is(what: &str) -> String {
    format!(
        "{what}: the target already has one of that name; left as it is, not compared with the backup's"
    )
}

/// The update policies, row-level security, restricted view access and principals, set once
/// every file is in and the counts match: set earlier, an update policy would derive rows a
/// second time from restored rows whose derived rows the backup already holds. Returns the
/// materialized views to create next. When the restore did not succeed they are all
/// reported instead, to be set once the data is complete.
async fn apply_after_data(
    app: &App,
    job: &mut RestoreJob,
    request: &RestoreRequestV1,
    target: &KustoClient,
) -> Result<Vec<PlannedView>, RestoreError> {
    if !request.what.schema() {
        return Ok(Vec::new());
    }
    let objects = match snapshot_objects(app, job, request).await? {
        Some(Ok(objects)) => objects,
        Some(Err(why)) => {
            job.schema.not_applied.push(format!(
                "update policies, security settings and materialized views: {why}"
            ));
            return Ok(Vec::new());
        }
        None => return Ok(Vec::new()),
    };
    if job.status != JobStatus::Succeeded {
        let planned = objects.after_data.iter().map(|p| (&p.what, &p.command));
        let views = objects.views.iter().map(|v| (&v.what, &v.create));
        for (what, command) in planned.chain(views) {
            job.schema.not_applied.push(format!(
                "{what}: not set, the restore did not complete; set it once the data is complete: {}",
                command.first_line()
            ));
        }
        return Ok(Vec::new());
    }
    let db = &request.target.database;
    apply_objects(target, db, &job.job, &objects.after_data, &mut job.schema).await?;
    Ok(objects.views)
}

/// The snapshot's objects as this job restores them, read again from the snapshot it
/// applied; None when it applied none, `Err` (why) when the snapshot can no longer be read.
pub(super) async fn snapshot_objects(
    app: &App,
    job: &RestoreJob,
    request: &RestoreRequestV1,
) -> Result<Option<Result<ObjectPlan, String>>, RestoreError> {
    let Some(path) = job.schema_snapshot.clone() else {
        return Ok(None);
    };
    let id = &job.job;
    let src = backup(app, id, request)?;
    let (body, _) = src
        .blobs
        .read(&path)
        .await
        .map_err(storage_err(id, "read the schema snapshot again"))?;
    let statements = match schema::statements(&String::from_utf8_lossy(&body)) {
        Ok(s) => s,
        Err(e) => return Ok(Some(Err(format!("{path} could not be read again: {e}")))),
    };
    Ok(Some(Ok(schema::plan_objects(
        &statements,
        &renames(job.tables.iter()),
        &app.settings.protect.object_prefix,
        schema::Principals::of(request),
    ))))
}

/// A data-only restore from a listing whose schema snapshot was lost too: the tables are the
/// target's tables whose source name (the rename map read backwards) the request asks for.
/// Their folders in the backup are listed; a table the target lacks is not restored, since
/// nothing says what its columns would be.
async fn start_without_schema(
    app: &App,
    job: &mut RestoreJob,
    request: &RestoreRequestV1,
    src: &Backup,
) -> Result<(), RestoreError> {
    let id = job.job.clone();
    if let Err(reason) = request.target.check_allowed(&allowed_endpoints(app)) {
        reject(job, "check the target", &reason);
        return Ok(());
    }
    let target = target_client(app, &id, &request.target.cluster_uri)?;
    let db = &request.target.database;
    let existing = target_tables(&target, db).await.map_err(kusto_err(&id))?;
    let mut chosen = Vec::new();
    for name in existing {
        let Ok(target_name) = TableName::new(&name) else {
            continue;
        };
        let source = request
            .rename
            .iter()
            .find(|(_, to)| **to == target_name)
            .map_or_else(|| target_name.clone(), |(from, _)| from.clone());
        let asked = request
            .tables
            .iter()
            .any(|p| crate::protect::scope::glob(p, source.as_str()));
        if !asked
            || source
                .as_str()
                .starts_with(app.settings.protect.object_prefix.as_str())
        {
            continue;
        }
        let key = format!("{}/{}", src.database, source);
        chosen.push(JobTable {
            partition_column: app.settings.protect.partition_columns.get(&key).cloned(),
            source,
            target: target_name,
            target_was_empty: true,
            expected: BTreeMap::new(),
        });
    }
    if chosen.is_empty() {
        reject(
            job,
            "choose the tables",
            &format!(
                "the backup holds no schema snapshot of database {} and no table of target database {db} matches {:?}: without a snapshot, a restore from a listing only adds data to tables that already exist in the target",
                src.database, request.tables
            ),
        );
        return Ok(());
    }
    let non_empty = match check_target(&target, db, chosen.iter(), request).await {
        Ok((_, non_empty)) => non_empty,
        Err(Refusal::Refused(reason)) => {
            reject(job, "check the target", &reason);
            return Ok(());
        }
        Err(Refusal::Failed(e)) => return Err(kusto_err(&id)(e)),
    };
    // A listing gives no oldest day before planning: only the roles are checked.
    let preflight = RestoreTarget {
        client: &target,
        database: db,
        schema: false,
        data: true,
        tables: Vec::new(),
    };
    if !passes_check(job, &preflight).await? {
        return Ok(());
    }
    for t in &mut chosen {
        t.target_was_empty = !non_empty.contains(&t.target);
    }
    job.tables = chosen;
    job.status = JobStatus::Planning;
    Ok(())
}

/// The snapshot's tables the request asks for, each with its target name and partition column.
fn choose_tables(
    app: &App,
    src: &Backup,
    request: &RestoreRequestV1,
    tables: Vec<TableSchema>,
) -> Result<Vec<(TableSchema, JobTable)>, String> {
    let prefix = &app.settings.protect.object_prefix;
    let in_scope: Vec<TableSchema> = tables
        .into_iter()
        .filter(|t| !t.name.as_str().starts_with(prefix.as_str()))
        .filter(|t| {
            request
                .tables
                .iter()
                .any(|p| crate::protect::scope::glob(p, t.name.as_str()))
        })
        .collect();
    if in_scope.is_empty() {
        return Err(format!(
            "no table of the backup of {} matches {:?}",
            src.database, request.tables
        ));
    }
    if let Some(unknown) = request
        .rename
        .keys()
        .find(|k| !in_scope.iter().any(|t| &t.name == *k))
    {
        return Err(format!(
            "rename names table {unknown}, which is not among the tables restored"
        ));
    }
    let mut targets = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for schema in in_scope {
        let target = request.target_table(&schema.name);
        if !targets.insert(target.clone()) {
            return Err(format!("two tables would be restored into {target}"));
        }
        let key = format!("{}/{}", src.database, schema.name);
        let partition_column = app
            .settings
            .protect
            .partition_columns
            .get(&key)
            .cloned()
            .or_else(|| schema.first_datetime().cloned());
        let table = JobTable {
            source: schema.name.clone(),
            target,
            partition_column,
            target_was_empty: true,
            expected: BTreeMap::new(),
        };
        out.push((schema, table));
    }
    Ok(out)
}

enum Refusal {
    Refused(String),
    Failed(crate::kusto::StepError),
}

/// The names of the target database's tables.
async fn target_tables(
    target: &KustoClient,
    db: &crate::ids::DatabaseName,
) -> Result<Vec<String>, crate::kusto::StepError> {
    let step = Step::database(db, "list the target's tables");
    let listed = step.mgmt(target, &show_tables()).await?;
    Ok(listed
        .first()
        .into_iter()
        .flat_map(|t| t.rows())
        .filter_map(|r| r.str("TableName").ok().map(str::to_owned))
        .collect())
}

/// Reaches the target and returns its tables and the non-empty ones among ours; refuses
/// those unless the mode is append.
async fn check_target<'a>(
    target: &KustoClient,
    db: &crate::ids::DatabaseName,
    chosen: impl Iterator<Item = &'a JobTable>,
    request: &RestoreRequestV1,
) -> Result<(Vec<String>, Vec<TableName>), Refusal> {
    let chosen: Vec<&JobTable> = chosen.collect();
    let existing = target_tables(target, db).await.map_err(Refusal::Failed)?;
    let mut non_empty = Vec::new();
    if request.what.data() {
        check_update_policies(target, db, &chosen, &existing).await?;
    }
    for t in &chosen {
        if !existing.iter().any(|e| e == t.target.as_str()) {
            continue;
        }
        let step = Step::database(db, "count the target table's rows");
        let q = QueryBuilder::table(&t.target).count();
        let result = target
            .query(db, &q.command())
            .await
            .map_err(|e| Refusal::Failed(step.error(e)))?;
        let count = result
            .primary_table()
            .ok()
            .and_then(|t| t.row(0))
            .and_then(|r| r.i64("Count").ok())
            .unwrap_or(0);
        if count > 0 {
            non_empty.push(t.target.clone());
        }
    }
    if !non_empty.is_empty() && request.mode == Mode::Refuse && request.what.data() {
        let names: Vec<String> = non_empty.iter().map(ToString::to_string).collect();
        return Err(Refusal::Refused(format!(
            "target table(s) {} in database {db} already hold rows; restore refuses to mix them with the backup's (post the request with \"mode\": \"append\" to add to them)",
            names.join(", ")
        )));
    }
    Ok((existing, non_empty))
}

/// Refuses a data restore into a table whose enabled update policy derives rows from
/// another table this restore writes: the backup holds the derived rows already, so they
/// would arrive twice. (A restore sets update policies only after its own data; this is the
/// target's policy, or one a previous restore set.)
async fn check_update_policies(
    target: &KustoClient,
    db: &crate::ids::DatabaseName,
    chosen: &[&JobTable],
    existing: &[String],
) -> Result<(), Refusal> {
    let restored: Vec<&str> = chosen.iter().map(|t| t.target.as_str()).collect();
    for t in chosen {
        if !existing.iter().any(|e| e == t.target.as_str()) {
            continue;
        }
        let step = Step::database(db, "read the target table's update policy");
        let tables = step
            .mgmt(target, &show_table_update_policy(&t.target))
            .await
            .map_err(Refusal::Failed)?;
        let text = tables
            .first()
            .and_then(|t| t.row(0))
            .and_then(|r| r.opt_str("Policy").ok().flatten().map(str::to_owned))
            .unwrap_or_default();
        let entries = serde_json::from_str::<serde_json::Value>(&text).unwrap_or_default();
        let feeding = entries.as_array().into_iter().flatten().find(|e| {
            e.get("IsEnabled").and_then(|v| v.as_bool()) == Some(true)
                && e.get("Source")
                    .and_then(|v| v.as_str())
                    .is_some_and(|s| restored.contains(&s))
        });
        if let Some(entry) = feeding {
            let source = entry.get("Source").and_then(|v| v.as_str()).unwrap_or("");
            let table = &t.target;
            return Err(Refusal::Refused(format!(
                "target table {table} in database {db} has an enabled update policy from {source}, which this restore also writes: the backup already holds {table}'s derived rows, so they would arrive twice. Disable the policy for the restore (IsEnabled false) and enable it after, or leave {table} out of the restore (the policy derives its rows)"
            )));
        }
    }
    Ok(())
}

/// Plans one page and writes it (once; a repeated step finds it written).
async fn plan_next(
    app: &App,
    src: &Backup,
    job: &mut RestoreJob,
    request: &RestoreRequestV1,
) -> Result<(), RestoreError> {
    let id = job.job.clone();
    let settings = &app.settings.restore;
    let (blobs, layout) = (&src.blobs, &src.layout);
    let page = if request.source.from_listing {
        plan::plan_listing_page(blobs, layout, &src.database, job, request, settings).await
    } else {
        plan::plan_page(blobs, layout, &src.database, job, request, settings).await
    }
    .map_err(|e| match e {
        PlanError::Storage(s) => storage_err(&id, "read the catalog")(s),
        refused @ PlanError::SupersededDeleted { .. } => RestoreError::Refused {
            job: id.clone(),
            reason: refused.to_string(),
        },
    })?;
    if !request.dry_run {
        page::save(&app.blobs, &app.layout, &id, &page)
            .await
            .map_err(storage_err(&id, "write a plan page"))?;
    }
    job.plan = page.position;
    if job.plan.done {
        if request.dry_run {
            job.status = JobStatus::Planned;
            job.finished_at = Some(OffsetDateTime::now_utc());
            job.report = Some(report(job, Vec::new(), Vec::new()));
        } else {
            job.status = JobStatus::Ingesting;
        }
    }
    Ok(())
}

/// Looks at the open chunks if a look is due, then moves the window on. A step that waited
/// its delay always looks; planning steps, which follow one another at once, look only once
/// the last look's back-off has passed. A look that moved no chunk on, when no chunk was
/// started either, doubles the wait before the next (`look::look_delay`); any progress
/// brings it back to one poll interval.
async fn look_and_dispatch(
    app: &App,
    job: &mut RestoreJob,
    request: &RestoreRequestV1,
    waited: bool,
) -> Result<(), RestoreError> {
    let now = OffsetDateTime::now_utc();
    let due = waited || job.looks.next_at.is_none_or(|at| now >= at);
    if !due {
        return dispatch(app, job, request).await;
    }
    let looked = look::look(app, job, request).await?;
    let window = (job.first_open, job.next_to_start);
    dispatch(app, job, request).await?;
    let moved = looked != Some(false) || window != (job.first_open, job.next_to_start);
    job.looks.idle = if moved {
        0
    } else {
        job.looks.idle.saturating_add(1)
    };
    job.looks.next_at = Some(now + look::look_delay(app.settings.restore.poll, job.looks.idle));
    Ok(())
}

/// Takes finished chunks off the front of the window, counts them into the job, and starts
/// chunks until `ChunksInFlight` are open.
async fn dispatch(
    app: &App,
    job: &mut RestoreJob,
    request: &RestoreRequestV1,
) -> Result<(), RestoreError> {
    let id = job.job.clone();
    while job.first_open < job.next_to_start {
        let chunk_id = RestoreChunk::id(job.first_open)?;
        let path = app.layout.restore_chunk(&id, &chunk_id);
        let Some((body, _)) = app
            .blobs
            .read_opt(&path)
            .await
            .map_err(storage_err(&id, "read a chunk"))?
        else {
            break;
        };
        let chunk: RestoreChunk = crate::storage::state::decode(&path, &body)
            .map_err(storage_err(&id, "read a chunk"))?;
        if !chunk.state.is_final() {
            break;
        }
        count_in(job, &chunk);
        job.first_open += 1;
    }
    let limit = app.settings.restore.chunks_in_flight as u64;
    let src = backup(app, &id, request)?;
    let mut pages = Pages::new(&app.blobs, &app.layout, &id, &src.blobs, &src.layout);
    while job.next_to_start < job.totals.chunks && job.next_to_start - job.first_open < limit {
        // Jobs planned before plan pages had every chunk document written by the planner.
        if job.plan.pages > 0 {
            write_chunk(app, &mut pages, job).await?;
        }
        let task = Task::RestoreChunkV1 {
            job: id.clone(),
            chunk: RestoreChunk::id(job.next_to_start)?,
            poll: 0,
        };
        app.tasks
            .send(&task.to_json(), None)
            .await
            .map_err(storage_err(&id, "start a chunk"))?;
        job.next_to_start += 1;
    }
    Ok(())
}

/// Writes the document of chunk `next_to_start` from its plan page, once: a step repeated
/// after a crash finds it written (and perhaps already moved on by its chunk message).
async fn write_chunk(
    app: &App,
    pages: &mut Pages<'_>,
    job: &mut RestoreJob,
) -> Result<(), RestoreError> {
    let id = job.job.clone();
    let chunk = pages
        .chunk(&mut job.start_page, job.next_to_start)
        .await
        .map_err(storage_err(&id, "read the plan page of a chunk"))?;
    let path = app.layout.restore_chunk(&id, &chunk.chunk);
    let body = serde_json::to_vec(&chunk)
        .map_err(|e| crate::storage::StorageError::decode(&path, e))
        .map_err(storage_err(&id, "write a chunk"))?;
    match app.blobs.create_new(&path, Bytes::from(body)).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_conflict() => Ok(()),
        Err(e) => Err(storage_err(&id, "write a chunk")(e)),
    }
}

fn count_in(job: &mut RestoreJob, chunk: &RestoreChunk) {
    for b in &chunk.blobs {
        match &b.outcome {
            BlobOutcome::Ingested => job.totals.ingested_artifacts += 1,
            BlobOutcome::Failed { reason } => {
                job.totals.failed_artifacts += 1;
                if job.failed.len() < FAILED_LISTED {
                    job.failed.push(FailedArtifact {
                        table: chunk.target_table.clone(),
                        path: b.path.clone(),
                        rows: b.rows,
                        reason: reason.clone(),
                    });
                }
            }
            BlobOutcome::Pending => {}
        }
    }
}

/// Counts what arrived, per table and day, and ends the job.
async fn finalize(
    app: &App,
    job: &mut RestoreJob,
    request: &RestoreRequestV1,
) -> Result<(), RestoreError> {
    let id = job.job.clone();
    let target = target_client(app, &id, &request.target.cluster_uri)?;
    let db = &request.target.database;
    let mut tables = Vec::new();
    let mut missing = Vec::new();
    // A listing knows no row counts: what arrived is reported, and cannot be checked.
    let listed = request.source.from_listing;
    for t in &job.tables {
        let found_rows = tagged_rows(&target, db, &t.target, &job.drop_by())
            .await
            .map_err(kusto_err(&id))?;
        let expected_rows: u64 = t.expected.values().sum();
        let mut mismatched_days = Vec::new();
        if t.target_was_empty && !listed {
            let found = rows_per_day(&target, db, t).await.map_err(kusto_err(&id))?;
            let days: std::collections::BTreeSet<Day> =
                t.expected.keys().chain(found.keys()).copied().collect();
            for day in days {
                let expected = t.expected.get(&day).copied().unwrap_or(0);
                let got = found.get(&day).copied().unwrap_or(0);
                if expected != got {
                    missing.push(format!(
                        "{}: day {day}: expected {expected} rows, found {got}",
                        t.target
                    ));
                    mismatched_days.push(DayCount {
                        day,
                        expected,
                        found: got,
                    });
                }
            }
        }
        if !listed && found_rows != expected_rows && mismatched_days.is_empty() {
            missing.push(format!(
                "{}: expected {expected_rows} rows, found {found_rows} in the job's extents",
                t.target
            ));
        }
        tables.push(TableReport {
            source: t.source.clone(),
            target: t.target.clone(),
            expected_rows: (!listed).then_some(expected_rows),
            found_rows,
            mismatched_days,
        });
    }
    if listed && job.totals.artifacts == 0 {
        missing.push(
            "the listing found no data file of the tables restored under the backup's prefix"
                .to_owned(),
        );
    }
    if job.totals.failed_artifacts > 0 {
        missing.push(format!(
            "{} file(s) could not be ingested (the first {} are listed with Kusto's reason)",
            job.totals.failed_artifacts,
            job.failed.len()
        ));
    }
    let restored_any = tables.iter().any(|t| t.found_rows > 0);
    job.status = if missing.is_empty() {
        JobStatus::Succeeded
    } else if restored_any {
        JobStatus::PartiallySucceeded
    } else {
        JobStatus::Failed
    };
    let views = apply_after_data(app, job, request, &target).await?;
    if !views.is_empty() {
        // The data is complete: the views are built from it, one step at a time.
        job.views = views::steps(&views);
        job.status = JobStatus::CreatingViews;
        job.report = Some(report(job, tables, missing));
        return Ok(());
    }
    job.finished_at = Some(OffsetDateTime::now_utc());
    job.report = Some(report(job, tables, missing));
    log_end(job);
    Ok(())
}

/// Logs the end of the job, and an alert when it did not do everything it promised.
pub(super) fn log_end(job: &RestoreJob) {
    let id = &job.job;
    tracing::info!(job = %id, status = ?job.status, "restore finished");
    if job.status != JobStatus::Succeeded {
        tracing::error!(event = "adxbackup.job_failed", job = %id, status = ?job.status,
            "restore finished without everything it promised; the job's report says what is missing");
    }
}

pub(super) fn report(job: &RestoreJob, tables: Vec<TableReport>, missing: Vec<String>) -> Report {
    let end = job.finished_at.unwrap_or_else(OffsetDateTime::now_utc);
    Report {
        tables,
        totals: job.totals.clone(),
        failed: job.failed.clone(),
        missing,
        caveats: caveats(job),
        duration_seconds: (end - job.created_at).whole_seconds(),
        schema: job.schema.clone(),
    }
}

/// What a job planned from a listing cannot prove, said in its report.
fn caveats(job: &RestoreJob) -> Vec<String> {
    if !job.request.as_ref().is_some_and(|r| r.source.from_listing) {
        return Vec::new();
    }
    let mut out = vec![
        format!(
            "planned from a listing of the backup's files, not from its catalog: {} file(s) were listed, and files of failed exports may be among them (a failed or retried export can leave files the catalog never listed); they were restored like the others",
            job.totals.artifacts
        ),
        "expected rows were unknown: without the catalog nothing records how many rows each file holds, so the rows found are what arrived, not checked against the backup".to_owned(),
    ];
    if job.schema_snapshot.is_none() {
        out.push("no schema snapshot was found: data was added to the target's existing tables, and no schema was applied".to_owned());
    }
    out
}

/// Rows in the extents carrying `tag` (deleted rows excluded).
async fn tagged_rows(
    target: &KustoClient,
    db: &crate::ids::DatabaseName,
    table: &TableName,
    tag: &str,
) -> Result<u64, crate::kusto::StepError> {
    let step = Step::database(db, "read the job's extents");
    let tables = step
        .mgmt(target, &show_table_extents_with_tag(table, tag))
        .await?;
    let mut rows = 0i64;
    for row in tables.first().into_iter().flat_map(|t| t.rows()) {
        rows += row.i64("RowCount").map_err(|e| step.error(e))?;
        rows -= row.opt_i64("DeletedRowCount").ok().flatten().unwrap_or(0);
    }
    Ok(rows.max(0) as u64)
}

/// The target table's rows per day of its partition column (null days and tables without
/// one count as the undated day).
async fn rows_per_day(
    target: &KustoClient,
    db: &crate::ids::DatabaseName,
    t: &JobTable,
) -> Result<BTreeMap<Day, u64>, crate::kusto::StepError> {
    let step = Step::database(db, "count the restored rows per day");
    let mut out = BTreeMap::new();
    let q = match &t.partition_column {
        Some(c) => QueryBuilder::table(&t.target).count_by_day(c),
        None => QueryBuilder::table(&t.target).count(),
    };
    let result = target
        .query(db, &q.command())
        .await
        .map_err(|e| step.error(e))?;
    let table = result.primary_table().map_err(|e| step.error(e))?;
    for row in table.rows() {
        let (day, count) = match &t.partition_column {
            Some(_) => (
                row.opt_datetime("Day")
                    .map_err(|e| step.error(e))?
                    .map_or(Day::UNDATED, |d| Day::new(d.date())),
                row.i64("RowCount").map_err(|e| step.error(e))?,
            ),
            None => (Day::UNDATED, row.i64("Count").map_err(|e| step.error(e))?),
        };
        *out.entry(day).or_default() += count.max(0) as u64;
    }
    Ok(out)
}
