//! The timer's plan for one database, at any number of tables: read the database once, compare
//! with what the plan remembers, and queue work only for the tables that need it.
//!
//! One pass sends four database-wide commands, whatever the number of tables: the schema as
//! JSON (every table and its columns), the schema script (the snapshot), `.show
//! continuous-exports` and `.show external tables`. It compares them with the plan summary
//! (`$state/plans/<db>.json`), one document the plan alone writes, under the run lock, with an
//! ETag condition. A full pass also reads `.show databases` and `.show materialized-views`:
//! a follower database and materialized views are recorded as not protected, with why
//! ([`servable`]). A table gets a task only when:
//!
//! - it is new, its schema or the settings that shape its objects changed, it is not
//!   protected, its external table or export is missing, different, disabled or failing, or
//!   its export reports a StartCursor the table's state has not recorded (the first starts
//!   the history's backfill; a moved one is a gap to record) (a full check, `ProtectTableV1`), or
//! - its export's `ExportedTo` moved since the last harvest (a harvest, `HarvestTableV1`).
//!
//! A queued table is marked in the summary; while its task has neither finished nor failed
//! (seen in the table's state document) and the mark is younger than [`QUEUED_EXPIRES_AFTER`],
//! it is not queued again, so a throttled queue does not grow. A full pass
//! (`AdxBackup__FullPassIntervalSeconds`, daily by default, or `protect --full`) checks every
//! table, which also bounds how long an export's artifacts can go unharvested well inside the
//! 14 days Kusto keeps them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use futures::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use super::ensure::{self, ObjectNames};
use super::state::{Protection, TableState};
use super::{ProtectError, scope, servable};
use crate::app::App;
use crate::ids::{DatabaseName, HarvestRef, TableName, TableRef};
use crate::kusto::{ContinuousExportRow, Step, command};
use crate::storage::StorageError;
use crate::storage::state::Versioned;
use crate::task::Task;

/// How long a queued task may take before the plan queues its table again: the queue may be
/// slow under throttling, but a lost message must not leave a table unchecked for long.
const QUEUED_EXPIRES_AFTER: Duration = Duration::hours(2);

/// How many table states the plan reads at once to see whether queued tasks finished.
const STATE_READS_AT_ONCE: usize = 16;

/// What a table needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Work {
    /// Everything: objects, health, harvest (`ProtectTableV1`).
    Check,
    /// Only the catalog harvest: its export moved, nothing else changed (`HarvestTableV1`).
    Harvest,
}

/// The plan's memory of one database, between passes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct PlanSummary {
    #[serde(with = "time::serde::rfc3339::option")]
    last_full_pass: Option<OffsetDateTime>,
    tables: BTreeMap<TableName, TableEntry>,
    /// The database is a follower (read at each full pass): no table gets a task.
    #[serde(default)]
    follower: bool,
    /// The materialized views in scope recorded unprotected (read at each full pass), so a
    /// view dropped since loses its state document.
    #[serde(default)]
    views: BTreeSet<TableName>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct TableEntry {
    /// What the table looked like when its last task finished; None until one finished, and
    /// after one failed.
    checked: Option<Seen>,
    /// A task queued and not yet seen to finish.
    queued: Option<Queued>,
}

/// What the plan compares between passes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Seen {
    /// Of the table's columns and the settings that shape its objects.
    fingerprint: String,
    /// The export's ExportedTo the task covered.
    #[serde(with = "time::serde::rfc3339::option")]
    exported_to: Option<OffsetDateTime>,
    /// The DocString the table's external table carried; None when not protected.
    doc: Option<String>,
    /// The export was enabled and its last run had not failed: the health the check recorded
    /// is still right while the export stays so.
    export_ok: bool,
    /// The export's StartCursor the table's state recorded (None: none yet). An export that
    /// reports another needs a check: the first one starts the history's backfill, a moved
    /// one is a gap in coverage to record and backfill.
    #[serde(default)]
    start_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Queued {
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    work: Work,
    fingerprint: String,
    #[serde(with = "time::serde::rfc3339::option")]
    exported_to: Option<OffsetDateTime>,
}

/// One table as this pass reads it from Kusto.
struct Observed<'a> {
    fingerprint: String,
    external_doc: Option<&'a str>,
    export: Option<&'a ContinuousExportRow>,
    export_matches: bool,
}

/// What became of a queued task, as the table's state shows it.
#[derive(Debug, Clone, PartialEq)]
enum TaskSeen {
    /// It finished; the external table's DocString it left (None: not protected) and
    /// whether the export's health it recorded was good.
    Finished {
        doc: Option<String>,
        export_ok: bool,
        start_cursor: Option<String>,
    },
    Failed,
    Pending,
}

/// Where the picked tables' work goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Sent as tasks on the task queue (the timer), before the plan marks them queued: a
    /// task that could not be sent is not marked, so the next pass picks its table again.
    Queue,
    /// Run by the caller right after the plan (`adx-backup protect`).
    Inline,
}

/// One table the plan picked, with what its task carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Picked {
    Check(TableRef),
    Harvest(HarvestRef),
}

impl Picked {
    fn table(&self) -> &TableName {
        match self {
            Picked::Check(t) => &t.table,
            Picked::Harvest(h) => &h.table,
        }
    }

    fn task(&self) -> Task {
        match self {
            Picked::Check(t) => Task::ProtectTableV1(t.clone()),
            Picked::Harvest(h) => Task::HarvestTableV1(h.clone()),
        }
    }
}

impl fmt::Display for Picked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Picked::Check(t) => t.fmt(f),
            Picked::Harvest(h) => h.table_ref().fmt(f),
        }
    }
}

/// The plan of one database.
#[derive(Debug, Default)]
pub struct DatabasePlan {
    pub work: Vec<Picked>,
    /// In scope, and nothing to do.
    pub unchanged: usize,
    /// Queued earlier and not finished yet; not queued again.
    pub in_flight: usize,
    pub full_pass: bool,
    /// The DocString of every external table carrying the object prefix, by name, as this
    /// pass read them (the janitor looks for leftover batch tables in them).
    pub external_docs: HashMap<String, String>,
}

/// Reads `db` once, decides which tables need work (every table when `force_full`) and
/// delivers it.
pub async fn plan_database(
    app: &App,
    db: &DatabaseName,
    force_full: bool,
    delivery: Delivery,
) -> Result<DatabasePlan, ProtectError> {
    let schemas = table_schemas(app, db).await?;
    let exports = exports(app, db).await?;
    let docs = external_docs(app, db).await?;
    let path = app.layout.plan_summary(db);
    let mut summary = Versioned::load_or(&app.blobs, &path, PlanSummary::default)
        .await
        .map_err(|e| ProtectError::storage(format!("read the plan summary of {db}"), e))?;
    let before = summary.value.clone();
    let now = OffsetDateTime::now_utc();
    let full = force_full
        || summary
            .value
            .last_full_pass
            .is_none_or(|at| now - at >= app.settings.protect.full_pass_interval);
    let settings = settings_text(app);
    let mut plan = DatabasePlan {
        full_pass: full,
        ..DatabasePlan::default()
    };
    if full {
        unservable(app, db, &schemas, &mut summary.value).await?;
    }
    if summary.value.follower {
        // Nothing can be created in a follower: its tables were recorded unprotected.
        summary.value.tables.clear();
        if full {
            summary.value.last_full_pass = Some(now);
        }
        if summary.value != before {
            summary
                .save(&app.blobs, &path)
                .await
                .map_err(|e| ProtectError::storage(format!("save the plan summary of {db}"), e))?;
        }
        plan.external_docs = docs;
        return Ok(plan);
    }
    let tasks = tasks_seen(app, db, &summary.value).await?;
    let mut tables = BTreeMap::new();
    for (table, columns) in &schemas {
        let names =
            ensure::object_names(&app.settings.protect.object_prefix, table).map_err(|e| {
                ProtectError::BadName {
                    database: db.clone(),
                    source: e,
                }
            })?;
        let seen = observe(app, db, table, columns, &settings, &names, &exports, &docs);
        let mut entry = summary.value.tables.remove(table).unwrap_or_default();
        // `protect --full` checks every table, even one whose queued task has not run yet.
        let in_flight = settle(&mut entry, tasks.get(table), now) && !force_full;
        let work = if in_flight {
            plan.in_flight += 1;
            None
        } else {
            decide(&entry, &seen, full)
        };
        match work {
            Some(work) => {
                let exported_to = seen.export.and_then(|e| e.exported_to);
                entry.queued = Some(Queued {
                    at: now,
                    work,
                    fingerprint: seen.fingerprint,
                    exported_to,
                });
                plan.work.push(match work {
                    Work::Check => Picked::Check(TableRef {
                        database: db.clone(),
                        table: table.clone(),
                    }),
                    Work::Harvest => Picked::Harvest(HarvestRef {
                        database: db.clone(),
                        table: table.clone(),
                        exported_to,
                    }),
                });
            }
            None if !in_flight => plan.unchanged += 1,
            None => {}
        }
        tables.insert(table.clone(), entry);
    }
    plan.external_docs = docs;
    let unsent = match delivery {
        Delivery::Queue => send(app, &plan.work).await.err(),
        Delivery::Inline => None,
    };
    if let Some((first_unsent, _)) = &unsent {
        for picked in &plan.work[*first_unsent..] {
            if let Some(entry) = tables.get_mut(picked.table()) {
                entry.queued = None;
            }
        }
    }
    // Tables dropped or out of scope leave the summary; their state and backup stay.
    summary.value.tables = tables;
    if full {
        summary.value.last_full_pass = Some(now);
    }
    if summary.value != before {
        summary
            .save(&app.blobs, &path)
            .await
            .map_err(|e| ProtectError::storage(format!("save the plan summary of {db}"), e))?;
    }
    match unsent {
        None => Ok(plan),
        Some((first_unsent, err)) => Err(ProtectError::storage(
            format!(
                "queue the task of {} ({} of {} queued; the next run queues the rest)",
                plan.work[first_unsent],
                first_unsent,
                plan.work.len()
            ),
            err,
        )),
    }
}

/// What continuous export cannot serve at the database level ([`servable`]), read at each
/// full pass (two commands): a follower database has every table in scope recorded
/// unprotected; each materialized view in scope gets a state document saying it is not
/// protected and why, and a view dropped since loses its document.
async fn unservable(
    app: &App,
    db: &DatabaseName,
    schemas: &BTreeMap<TableName, String>,
    summary: &mut PlanSummary,
) -> Result<(), ProtectError> {
    summary.follower = servable::is_follower(app, db).await?;
    if summary.follower {
        let why = servable::follower(db).reason();
        for table in schemas.keys() {
            record_unprotected(app, db, table, &why).await?;
        }
        return Ok(());
    }
    let mut views = BTreeSet::new();
    for (view, source) in servable::materialized_views(app, db).await? {
        if scope::in_scope(&app.settings.protect, db, &view) {
            let why = servable::materialized_view(&source).reason();
            record_unprotected(app, db, &view, &why).await?;
            views.insert(view);
        }
    }
    for gone in summary.views.difference(&views) {
        let path = app.layout.table_state(db, gone);
        app.blobs.delete(&path).await.map_err(|e| {
            ProtectError::storage(format!("remove the state of dropped view {db}.{gone}"), e)
        })?;
    }
    summary.views = views;
    Ok(())
}

/// Records `table` (a table or a view) as not protected with `why`, where `status` shows
/// it, unless its state says so already; logged once, when it changes.
async fn record_unprotected(
    app: &App,
    db: &DatabaseName,
    table: &TableName,
    why: &str,
) -> Result<(), ProtectError> {
    let t = TableRef {
        database: db.clone(),
        table: table.clone(),
    };
    let path = app.layout.table_state(db, table);
    let mut state = Versioned::load_or(&app.blobs, &path, || TableState::new(&t))
        .await
        .map_err(|e| ProtectError::storage(format!("read the state of {t}"), e))?;
    let protection = Protection::Unprotected {
        reason: why.to_owned(),
    };
    if state.value.protection == protection {
        return Ok(());
    }
    super::log_unprotected(db, table, why);
    state.value.protection = protection;
    state.value.updated_at = Some(OffsetDateTime::now_utc());
    state
        .save(&app.blobs, &path)
        .await
        .map_err(|e| ProtectError::storage(format!("save the state of {t}"), e))
}

/// Sends one task per picked table; on a failure, the index of the first table not sent.
async fn send(app: &App, work: &[Picked]) -> Result<(), (usize, StorageError)> {
    for (i, picked) in work.iter().enumerate() {
        app.tasks
            .send(&picked.task().to_json(), None)
            .await
            .map_err(|e| (i, e))?;
    }
    Ok(())
}

/// The columns (as Kusto lists them, JSON) of every table of `db` in scope.
async fn table_schemas(
    app: &App,
    db: &DatabaseName,
) -> Result<BTreeMap<TableName, String>, ProtectError> {
    let step = Step::database(db, "read the database schema");
    let result = step
        .mgmt(&app.kusto, &command::show_database_schema_as_json(db))
        .await?;
    let text = result
        .first()
        .and_then(|t| t.rows().next())
        .map(|row| row.str("DatabaseSchema").map(str::to_owned))
        .transpose()
        .map_err(|e| step.error(e))?
        .unwrap_or_default();
    let doc: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| ProtectError::DatabaseSchema {
            database: db.clone(),
            message: format!("`.show database schema as json` did not return JSON: {e}"),
        })?;
    // Keyed by the database's name; it is the only database in the answer.
    let tables = doc["Databases"]
        .as_object()
        .and_then(|dbs| dbs.values().next())
        .and_then(|d| d["Tables"].as_object());
    let mut out = BTreeMap::new();
    for (name, table) in tables.into_iter().flatten() {
        let table_name = TableName::new(name.as_str()).map_err(|e| ProtectError::BadName {
            database: db.clone(),
            source: e,
        })?;
        if scope::in_scope(&app.settings.protect, db, &table_name) {
            out.insert(table_name, table["OrderedColumns"].to_string());
        } else {
            tracing::debug!(database = %db, table = name, "out of scope");
        }
    }
    Ok(out)
}

async fn exports(
    app: &App,
    db: &DatabaseName,
) -> Result<HashMap<String, ContinuousExportRow>, ProtectError> {
    let step = Step::database(db, "list continuous exports");
    let result = step
        .mgmt(&app.kusto, &command::show_continuous_exports())
        .await?;
    let rows = ContinuousExportRow::all(&result).map_err(|e| step.error(e))?;
    let prefix = &app.settings.protect.object_prefix;
    Ok(rows
        .into_iter()
        .filter(|r| r.name.as_str().starts_with(prefix.as_str()))
        .map(|r| (r.name.as_str().to_owned(), r))
        .collect())
}

/// The DocString of every external table carrying the object prefix.
async fn external_docs(
    app: &App,
    db: &DatabaseName,
) -> Result<HashMap<String, String>, ProtectError> {
    let step = Step::database(db, "list external tables");
    let result = step
        .mgmt(&app.kusto, &command::show_external_tables())
        .await?;
    let prefix = &app.settings.protect.object_prefix;
    let mut out = HashMap::new();
    for row in result.first().into_iter().flat_map(|t| t.rows()) {
        let name = row.str("TableName").map_err(|e| step.error(e))?;
        if name.starts_with(prefix.as_str()) {
            let doc = row.opt_str("DocString").map_err(|e| step.error(e))?;
            out.insert(name.to_owned(), doc.unwrap_or_default().to_owned());
        }
    }
    Ok(out)
}

/// The settings every table's objects depend on, and whether backfill is on (a table's check
/// asks for its backfill); a change re-checks every table once.
fn settings_text(app: &App) -> String {
    let p = &app.settings.protect;
    serde_json::json!({
        "prefix": p.object_prefix,
        "interval": p.export_interval.as_secs(),
        "enable_ingestion_time": p.enable_ingestion_time_policy,
        "reenable": p.reenable_exports,
        "storage": p.cluster_storage_uri.as_str(),
        "auth": p.cluster_storage_auth,
        "backfill": app.settings.backfill.enabled,
    })
    .to_string()
}

#[allow(clippy::too_many_arguments)]
fn observe<'a>(
    app: &App,
    db: &DatabaseName,
    table: &TableName,
    columns: &str,
    settings: &str,
    names: &ObjectNames,
    exports: &'a HashMap<String, ContinuousExportRow>,
    docs: &'a HashMap<String, String>,
) -> Observed<'a> {
    let partition = app
        .settings
        .protect
        .partition_columns
        .get(&format!("{db}/{table}"))
        .map(|c| c.as_str().to_owned());
    let text =
        serde_json::json!({"columns": columns, "settings": settings, "partition": partition})
            .to_string();
    let export = exports.get(names.export.as_str());
    Observed {
        fingerprint: hex(&Sha256::digest(text.as_bytes()))[..16].to_owned(),
        external_doc: docs.get(names.external.as_str()).map(String::as_str),
        export_matches: export.is_some_and(|e| {
            ensure::export_matches(e, names, table, app.settings.protect.export_interval)
        }),
        export,
    }
}

/// Reads the state of every table with a queued task: did the task finish, fail, or not yet?
async fn tasks_seen(
    app: &App,
    db: &DatabaseName,
    summary: &PlanSummary,
) -> Result<HashMap<TableName, TaskSeen>, ProtectError> {
    let queued: Vec<(TableName, OffsetDateTime)> = summary
        .tables
        .iter()
        .filter_map(|(t, e)| e.queued.as_ref().map(|q| (t.clone(), q.at)))
        .collect();
    stream::iter(queued)
        .map(|(table, at)| async move {
            let path = app.layout.table_state(db, &table);
            let state = Versioned::<Option<TableState>>::load_or(&app.blobs, &path, || None)
                .await
                .map_err(|e| ProtectError::storage(format!("read the state of {db}.{table}"), e))?
                .value;
            Ok((table, task_seen(state.as_ref(), at)))
        })
        .buffer_unordered(STATE_READS_AT_ONCE)
        .try_collect()
        .await
}

fn task_seen(state: Option<&TableState>, queued_at: OffsetDateTime) -> TaskSeen {
    let Some(state) = state else {
        return TaskSeen::Pending;
    };
    if state.last_error.as_ref().is_some_and(|e| e.at >= queued_at) {
        TaskSeen::Failed
    } else if state.updated_at.is_some_and(|at| at >= queued_at) {
        TaskSeen::Finished {
            doc: ensure::expected_doc(&state.protection),
            export_ok: state
                .health
                .as_ref()
                .is_some_and(|h| !h.disabled && h.last_run_result.as_deref() != Some("Failed")),
            start_cursor: state
                .export_start_cursor
                .as_ref()
                .map(|c| c.as_str().to_owned()),
        }
    } else {
        TaskSeen::Pending
    }
}

/// Applies what became of the entry's queued task; true while it is still in flight.
fn settle(entry: &mut TableEntry, seen: Option<&TaskSeen>, now: OffsetDateTime) -> bool {
    let Some(queued) = entry.queued.take() else {
        return false;
    };
    match seen {
        Some(TaskSeen::Finished {
            doc,
            export_ok,
            start_cursor,
        }) => {
            entry.checked = Some(Seen {
                fingerprint: queued.fingerprint,
                exported_to: queued.exported_to,
                doc: doc.clone(),
                export_ok: *export_ok,
                start_cursor: start_cursor.clone(),
            });
            false
        }
        Some(TaskSeen::Failed) => {
            entry.checked = None;
            false
        }
        Some(TaskSeen::Pending) | None if now - queued.at < QUEUED_EXPIRES_AFTER => {
            entry.queued = Some(queued);
            true
        }
        Some(TaskSeen::Pending) | None => false,
    }
}

/// The work a table needs, or None when nothing moved since its last task finished.
fn decide(entry: &TableEntry, now: &Observed<'_>, full: bool) -> Option<Work> {
    let Some(last) = entry.checked.as_ref().filter(|_| !full) else {
        return Some(Work::Check);
    };
    let healthy = |e: &ContinuousExportRow| {
        now.export_matches && !e.disabled && e.last_run_result.as_deref() != Some("Failed")
    };
    let Some(export) = now.export.filter(|e| healthy(e)) else {
        return Some(Work::Check);
    };
    let new_start_cursor = export
        .start_cursor
        .as_deref()
        .is_some_and(|c| !c.is_empty() && last.start_cursor.as_deref() != Some(c));
    if last.fingerprint != now.fingerprint
        || !last.export_ok
        || new_start_cursor
        || last.doc.is_none()
        || last.doc.as_deref() != now.external_doc
    {
        return Some(Work::Check);
    }
    (export.exported_to != last.exported_to).then_some(Work::Harvest)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration as StdDuration;

    use time::macros::datetime;

    use super::*;
    use crate::ids::ExportName;
    use crate::protect::state::{ExportHealth, RecordedError};

    const T0: OffsetDateTime = datetime!(2026-11-25 10:00 UTC);

    fn export(exported_to: Option<OffsetDateTime>) -> ContinuousExportRow {
        ContinuousExportRow {
            name: ExportName::new("adxbk_T").unwrap(),
            external_table: "adxbk_T".into(),
            query: "['T']".into(),
            interval: Some(StdDuration::from_secs(300)),
            disabled: false,
            last_run_result: Some("Completed".into()),
            last_run_time: Some(T0),
            exported_to,
            start_cursor: Some("1".into()),
        }
    }

    fn observed(export: Option<&ContinuousExportRow>) -> Observed<'_> {
        Observed {
            fingerprint: "f1".into(),
            external_doc: Some("adx-backup:abc"),
            export,
            export_matches: export.is_some(),
        }
    }

    fn checked(exported_to: Option<OffsetDateTime>) -> TableEntry {
        TableEntry {
            checked: Some(Seen {
                fingerprint: "f1".into(),
                exported_to,
                doc: Some("adx-backup:abc".into()),
                export_ok: true,
                start_cursor: Some("1".into()),
            }),
            queued: None,
        }
    }

    #[test]
    fn an_unchanged_table_needs_nothing_and_a_moved_export_only_a_harvest() {
        let e = export(Some(T0));
        assert_eq!(decide(&checked(Some(T0)), &observed(Some(&e)), false), None);
        assert_eq!(
            decide(&checked(Some(T0)), &observed(Some(&e)), true),
            Some(Work::Check),
            "a full pass checks every table"
        );
        let moved = export(Some(T0 + Duration::minutes(5)));
        assert_eq!(
            decide(&checked(Some(T0)), &observed(Some(&moved)), false),
            Some(Work::Harvest)
        );
        assert_eq!(
            decide(&checked(None), &observed(Some(&e)), false),
            Some(Work::Harvest),
            "first export run after the check"
        );
    }

    #[test]
    fn anything_but_a_moved_export_needs_a_full_check() {
        let e = export(Some(T0));
        let check = Some(Work::Check);
        assert_eq!(
            decide(&TableEntry::default(), &observed(Some(&e)), false),
            check,
            "never checked"
        );
        let schema_changed = Observed {
            fingerprint: "f2".into(),
            ..observed(Some(&e))
        };
        assert_eq!(decide(&checked(Some(T0)), &schema_changed, false), check);
        let foreign_doc = Observed {
            external_doc: Some("made by hand"),
            ..observed(Some(&e))
        };
        assert_eq!(decide(&checked(Some(T0)), &foreign_doc, false), check);
        let dropped = Observed {
            external_doc: None,
            ..observed(Some(&e))
        };
        assert_eq!(decide(&checked(Some(T0)), &dropped, false), check);
        assert_eq!(decide(&checked(Some(T0)), &observed(None), false), check);
        let altered = Observed {
            export_matches: false,
            ..observed(Some(&e))
        };
        assert_eq!(decide(&checked(Some(T0)), &altered, false), check);
        let disabled = ContinuousExportRow {
            disabled: true,
            ..e.clone()
        };
        assert_eq!(
            decide(&checked(Some(T0)), &observed(Some(&disabled)), false),
            check
        );
        let failing = ContinuousExportRow {
            last_run_result: Some("Failed".into()),
            ..e.clone()
        };
        assert_eq!(
            decide(&checked(Some(T0)), &observed(Some(&failing)), false),
            check
        );
        let mut was_failing = checked(Some(T0));
        if let Some(seen) = was_failing.checked.as_mut() {
            seen.export_ok = false;
        }
        assert_eq!(
            decide(&was_failing, &observed(Some(&e)), false),
            check,
            "a recovered export gets its health recorded"
        );
        let mut cursor_unknown = checked(Some(T0));
        if let Some(seen) = cursor_unknown.checked.as_mut() {
            seen.start_cursor = None;
        }
        assert_eq!(
            decide(&cursor_unknown, &observed(Some(&e)), false),
            check,
            "the export's first run reported its StartCursor"
        );
        let recreated = ContinuousExportRow {
            start_cursor: Some("2".into()),
            ..e.clone()
        };
        assert_eq!(
            decide(&checked(Some(T0)), &observed(Some(&recreated)), false),
            check,
            "the export's StartCursor moved: a gap to record"
        );
        let no_cursor_yet = ContinuousExportRow {
            start_cursor: Some(String::new()),
            ..e.clone()
        };
        assert_eq!(
            decide(&cursor_unknown, &observed(Some(&no_cursor_yet)), false),
            None
        );
        let mut unprotected = checked(Some(T0));
        if let Some(seen) = unprotected.checked.as_mut() {
            seen.doc = None;
        }
        assert_eq!(decide(&unprotected, &observed(Some(&e)), false), check);
    }

    fn queued_entry(at: OffsetDateTime) -> TableEntry {
        TableEntry {
            checked: None,
            queued: Some(Queued {
                at,
                work: Work::Check,
                fingerprint: "f1".into(),
                exported_to: Some(T0),
            }),
        }
    }

    #[test]
    fn a_queued_task_is_not_queued_again_until_it_ends_or_its_mark_expires() {
        let mut entry = queued_entry(T0);
        assert!(settle(
            &mut entry,
            Some(&TaskSeen::Pending),
            T0 + Duration::minutes(5)
        ));
        assert!(entry.queued.is_some(), "the mark stays");
        let expired = T0 + QUEUED_EXPIRES_AFTER;
        assert!(!settle(&mut entry, Some(&TaskSeen::Pending), expired));
        assert_eq!(entry, TableEntry::default(), "a stale mark is dropped");

        let mut entry = queued_entry(T0);
        let finished = TaskSeen::Finished {
            doc: Some("adx-backup:abc".into()),
            export_ok: true,
            start_cursor: Some("1".into()),
        };
        assert!(!settle(&mut entry, Some(&finished), T0));
        assert_eq!(entry, checked(Some(T0)), "what was queued is now checked");

        let mut entry = checked(Some(T0));
        entry.queued = queued_entry(T0).queued;
        assert!(!settle(&mut entry, Some(&TaskSeen::Failed), T0));
        assert_eq!(entry, TableEntry::default(), "a failed task is re-checked");
    }

    #[test]
    fn the_table_state_tells_whether_a_queued_task_ended() {
        let t = TableRef {
            database: DatabaseName::new("Sales").unwrap(),
            table: TableName::new("T").unwrap(),
        };
        let mut state = TableState::new(&t);
        assert_eq!(task_seen(None, T0), TaskSeen::Pending);
        state.updated_at = Some(T0 - Duration::seconds(1));
        assert_eq!(task_seen(Some(&state), T0), TaskSeen::Pending, "older run");
        state.updated_at = Some(T0 + Duration::seconds(1));
        assert_eq!(
            task_seen(Some(&state), T0),
            TaskSeen::Finished {
                doc: None,
                export_ok: false,
                start_cursor: None
            }
        );
        state.export_start_cursor = Some(crate::ids::Cursor::new("638"));
        state.health = Some(ExportHealth {
            checked_at: T0,
            lag_seconds: None,
            last_run_result: Some("Completed".into()),
            last_run_time: None,
            disabled: false,
            recent_failures: Vec::new(),
        });
        assert_eq!(
            task_seen(Some(&state), T0),
            TaskSeen::Finished {
                doc: None,
                export_ok: true,
                start_cursor: Some("638".into())
            }
        );
        state.last_error = Some(RecordedError {
            at: T0 + Duration::seconds(2),
            message: "boom".into(),
        });
        assert_eq!(task_seen(Some(&state), T0), TaskSeen::Failed);
    }
}
