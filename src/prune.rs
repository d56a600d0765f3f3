//! prune: retention. Each table keeps the days its policy promises (settings:
//! `AdxBackup__RetentionDays`, per-table overrides, month-firsts); older days leave the
//! backup, at most `AdxBackup__PruneMaxDaysPerPass` per table and pass.
//!
//! A day leaves in two steps ([`crate::storage::prune`]): a record, after which no reader
//! (restore planning, verify, catalog totals) counts it, then the deletes of its data folder.
//! A prune first finishes the deletes of days recorded earlier (a crash between the steps),
//! then decides new days from the table's catalog totals. A table that a running restore
//! reads or a running backfill or reconcile writes is skipped until they end.
//!
//! The protect timer queues one `PruneTableV1` task per table, carrying its "now", so a
//! message delivered twice decides the same days; `adx-backup prune` runs them inline, and
//! with `--dry-run` only lists what would go. Which days go is [`decide`], from the catalog
//! totals alone; `status` shows the same decision without running a prune.
//!
//! A delete an immutability policy refuses (a container-level WORM policy on the data
//! container) leaves its day recorded but unfinished: nothing of it is restorable any more,
//! its blobs stay until the policy lets them go, and every later pass tries again. While days
//! wait so, they use up the per-pass bound, so the backlog of recorded-but-kept days never
//! passes it and the days after them stay restorable. Each run's outcome, and why deletes
//! wait, is saved for `status` (`$state/prune/<db>/<table>.json`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::app::App;
use crate::backfill::BackfillJob;
use crate::ids::{DatabaseName, Day, TableName, TableRef};
use crate::restore::state::RestoreJob;
use crate::retry::Retryable;
use crate::settings::Keep;
use crate::storage::catalog_totals::{self, CatalogTotals, DayTotals};
use crate::storage::prune::{self as records, Prune, Pruned};
use crate::storage::{BlobItem, StorageError};
use crate::task::Task;

/// How often a catalog-totals refresh that lost a race is tried again from a fresh read.
const TOTALS_ATTEMPTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error("prune {table}: could not {what}: {source}")]
    Storage {
        table: TableRef,
        what: &'static str,
        #[source]
        source: Box<StorageError>,
    },
    #[error("prune could not list the tables of database {database}: {source}")]
    List {
        database: DatabaseName,
        #[source]
        source: Box<StorageError>,
    },
    #[error(
        "prune could not queue the prune of {table}: {source}; the next protect pass queues it again"
    )]
    Enqueue {
        table: TableRef,
        #[source]
        source: Box<StorageError>,
    },
}

impl Retryable for PruneError {
    fn is_transient(&self) -> bool {
        match self {
            Self::Storage { source, .. }
            | Self::List { source, .. }
            | Self::Enqueue { source, .. } => source.is_transient() || source.is_conflict(),
        }
    }
}

fn storage<'a>(
    t: &'a TableRef,
    what: &'static str,
) -> impl FnOnce(StorageError) -> PruneError + 'a {
    move |e| PruneError::Storage {
        table: t.clone(),
        what,
        source: Box::new(e),
    }
}

/// One day that leaves (or, in a dry run, would leave) the backup, with what the catalog
/// counted live for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayPruned {
    pub day: Day,
    pub files: u64,
    pub rows: u64,
    pub bytes: u64,
}

/// What one prune of one table did (or would do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneReport {
    pub table: TableRef,
    pub dry_run: bool,
    /// The table's policy; None: it keeps everything.
    pub keep_days: Option<u32>,
    /// Days newly recorded as pruned by this run (a dry run: that would be).
    pub days: Vec<DayPruned>,
    /// Days whose deletes this run finished (new ones and ones an earlier run left).
    pub finished: Vec<Day>,
    /// Blobs deleted from the data folders.
    pub blobs_deleted: u64,
    /// Days past the policy left for the next pass (the per-pass bound).
    pub deferred: usize,
    /// Why nothing was done, when something in flight uses the table.
    pub skipped: Option<String>,
    /// Deletes storage refused for now (an immutability policy): their days stay unfinished.
    #[serde(default)]
    pub deletes_deferred: Option<DeletesDeferred>,
}

/// Deletes an immutability policy refused: the days stay recorded (not restorable), their
/// blobs stay in storage, and every later prune tries again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletesDeferred {
    /// The recorded days whose folders are not empty yet, oldest first.
    pub days: Vec<Day>,
    /// Their blobs not deleted (on a refusal the rest of that day is left for the next pass).
    pub blobs_left: u64,
    /// What storage answered, e.g. `HTTP 409 BlobImmutableDueToPolicy`.
    pub reason: String,
    /// When the youngest refused blob was written: a container policy's interval counts from
    /// a blob's creation, so its delete cannot succeed before that plus the interval (the
    /// interval is a management-plane property the app cannot read).
    #[serde(with = "time::serde::rfc3339")]
    pub youngest_refused_written: OffsetDateTime,
}

impl fmt::Display for DeletesDeferred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let written = self
            .youngest_refused_written
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        write!(
            f,
            "deletes of {} day(s) deferred, {} blob(s) left: storage refused ({}); the days are \
             recorded and out of every restore; each prune pass tries again, and a delete can \
             succeed once the immutability period of its blob has passed (the youngest refused \
             blob was written {written}: not before then plus the policy's interval)",
            self.days.len(),
            self.blobs_left,
            self.reason
        )
    }
}

impl PruneReport {
    fn new(t: &TableRef, dry_run: bool, keep: Option<Keep>) -> Self {
        Self {
            table: t.clone(),
            dry_run,
            keep_days: keep.map(|k| k.days),
            days: Vec::new(),
            finished: Vec::new(),
            blobs_deleted: 0,
            deferred: 0,
            skipped: None,
            deletes_deferred: None,
        }
    }
}

impl fmt::Display for PruneReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.table;
        if let Some(why) = &self.skipped {
            return write!(f, "{t}: prune skipped: {why}");
        }
        let Some(keep) = self.keep_days else {
            return write!(f, "{t}: no retention policy, everything is kept");
        };
        let verb = if self.dry_run {
            "would prune"
        } else {
            "pruned"
        };
        let (files, rows, bytes) = self.days.iter().fold((0, 0, 0), |(f, r, b), d| {
            (f + d.files, r + d.rows, b + d.bytes)
        });
        write!(
            f,
            "{t}: keeps {keep} day(s); {verb} {} day(s), {files} file(s), {rows} row(s), {bytes} byte(s)",
            self.days.len()
        )?;
        if !self.dry_run {
            write!(
                f,
                "; finished {} day(s), {} blob(s) deleted",
                self.finished.len(),
                self.blobs_deleted
            )?;
        }
        if self.deferred > 0 {
            write!(f, "; {} more day(s) on the next pass", self.deferred)?;
        }
        if let Some(d) = &self.deletes_deferred {
            write!(f, "; {d}")?;
        }
        for d in &self.days {
            write!(
                f,
                "\n  {} {} file(s) {} row(s) {} byte(s)",
                d.day, d.files, d.rows, d.bytes
            )?;
        }
        Ok(())
    }
}

/// The oldest day a table keeping `keep` still keeps whole on `today`: today and the
/// `keep.days` days before it stay.
pub fn first_kept(keep: Keep, today: Date) -> Date {
    today.saturating_sub(time::Duration::days(i64::from(keep.days)))
}

/// The days of `days` that leave a table keeping `keep`, oldest first. A day leaves when its
/// date is before [`first_kept`] (so today and the `keep.days` days before it stay),
/// unless it is the first of a month within the `keep.monthly_months` most recent months
/// (the current month counted). Undated rows are no day of history and never leave.
pub fn leaving(days: impl IntoIterator<Item = Day>, keep: Keep, today: Date) -> Vec<Day> {
    let cutoff = first_kept(keep, today);
    let month_index = |d: Date| i64::from(d.year()) * 12 + i64::from(u8::from(d.month()));
    let kept_monthly = |d: Date| {
        d.day() == 1 && month_index(today) - month_index(d) < i64::from(keep.monthly_months)
    };
    let mut out: Vec<Day> = days
        .into_iter()
        .filter(|d| *d != Day::UNDATED)
        .filter(|d| d.date() < cutoff && !kept_monthly(d.date()))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// What the next prune of a table records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Decision {
    /// The days it records, oldest first, with what the catalog counts live for each.
    pub days: Vec<DayPruned>,
    /// Days past the policy beyond the per-pass bound, left for later passes.
    pub more: usize,
}

/// The prune decision, from a table's catalog totals (`days`) alone: the days that left
/// `keep` on `today` and are not `pruned` yet, oldest first, at most `max_days_per_pass`
/// less the `unfinished` days (recorded, deletes not done) the pass finishes first. Pure, so
/// a prune and `status` decide alike.
pub fn decide(
    days: &BTreeMap<Day, DayTotals>,
    pruned: &BTreeSet<Day>,
    unfinished: usize,
    keep: Keep,
    today: Date,
    max_days_per_pass: usize,
) -> Decision {
    let budget = max_days_per_pass.saturating_sub(unfinished);
    let leave: Vec<Day> = leaving(days.keys().copied(), keep, today)
        .into_iter()
        .filter(|d| !pruned.contains(d))
        .collect();
    Decision {
        more: leave.len().saturating_sub(budget),
        days: leave
            .into_iter()
            .take(budget)
            .map(|day| {
                let counted = days.get(&day).copied().unwrap_or_default();
                DayPruned {
                    day,
                    files: counted.artifacts,
                    rows: counted.rows,
                    bytes: counted.bytes,
                }
            })
            .collect(),
    }
}

/// Prunes one table as of `now`: finishes the deletes an earlier run left, records the days
/// that leave the policy (at most the per-pass bound), deletes their blobs, and saves what it
/// did for `status`. With `dry_run`, changes nothing and reports what would go.
pub async fn prune_table(
    app: &App,
    t: &TableRef,
    now: OffsetDateTime,
    dry_run: bool,
) -> Result<PruneReport, PruneError> {
    let (mut report, pruned) = record(app, t, now, dry_run).await?;
    if dry_run {
        return Ok(report);
    }
    let mut unfinished: BTreeSet<Day> = pruned.unfinished().into_iter().collect();
    unfinished.extend(report.days.iter().map(|d| d.day));
    if report.skipped.is_none() {
        delete_recorded(app, t, &unfinished, &mut report).await?;
        // A restore that began planning between the check and the records read the days
        // as live: `delete_recorded` left them for the next pass.
    }
    for day in &report.finished {
        unfinished.remove(day);
    }
    // Nothing to tell `status` when a table without a policy has nothing left to finish, or
    // when something in flight held the table before anything was recorded.
    let held = report.skipped.is_some() && report.days.is_empty();
    let idle = report.keep_days.is_none() && report.finished.is_empty() && unfinished.is_empty();
    if !held && !idle {
        save_run(app, t, now, &report, unfinished.into_iter().collect()).await?;
    }
    tracing::info!(database = %t.database, table = %t.table, days = report.days.len(),
        finished = report.finished.len(), blobs = report.blobs_deleted, deferred = report.deferred,
        deletes_deferred = report.deletes_deferred.as_ref().map_or(0, |d| d.days.len()), "prune done");
    Ok(report)
}

/// Deletes the blobs of the recorded days `todo`, oldest first, and marks each day done; a
/// day whose delete an immutability policy refuses stays unfinished (`deletes_deferred`).
async fn delete_recorded(
    app: &App,
    t: &TableRef,
    todo: &BTreeSet<Day>,
    report: &mut PruneReport,
) -> Result<(), PruneError> {
    if let Some(why) = in_use(app, t).await? {
        report.skipped = Some(format!("records written, deletes deferred: {why}"));
        return Ok(());
    }
    for day in todo.iter().copied() {
        match delete_day(app, t, day).await? {
            Deleted::All(n) => {
                report.blobs_deleted += n;
                records::mark_done(&app.blobs, &app.layout, &t.database, &t.table, day)
                    .await
                    .map_err(storage(t, "mark a pruned day's deletes done"))?;
                report.finished.push(day);
            }
            Deleted::Refused {
                deleted,
                left,
                reason,
                written,
            } => {
                report.blobs_deleted += deleted;
                let d = report
                    .deletes_deferred
                    .get_or_insert_with(|| DeletesDeferred {
                        days: Vec::new(),
                        blobs_left: 0,
                        reason,
                        youngest_refused_written: written,
                    });
                d.days.push(day);
                d.blobs_left += left;
                d.youngest_refused_written = d.youngest_refused_written.max(written);
            }
        }
    }
    if let Some(d) = &report.deletes_deferred {
        tracing::warn!(database = %t.database, table = %t.table, days = d.days.len(),
            blobs = d.blobs_left, reason = %d.reason,
            "pruned days kept in storage for now: an immutability policy refuses their deletes; the next prune tries again");
    }
    Ok(())
}

/// The first step alone: decide the days that leave and write their records (a dry run
/// writes nothing). Returns the report and the table's pruned days as they were before.
/// The e2e tests call it alone to stand for a crash before the deletes.
pub async fn record(
    app: &App,
    t: &TableRef,
    now: OffsetDateTime,
    dry_run: bool,
) -> Result<(PruneReport, Pruned), PruneError> {
    let keep = app.settings.retention.keep(t);
    let mut report = PruneReport::new(t, dry_run, keep);
    let pruned = records::load(&app.blobs, &app.layout, &t.database, &t.table)
        .await
        .map_err(storage(t, "list its prune records"))?;
    if keep.is_none() && pruned.unfinished().is_empty() {
        return Ok((report, pruned));
    }
    if let Some(why) = in_use(app, t).await? {
        report.skipped = Some(why);
        return Ok((report, pruned));
    }
    let Some(keep) = keep else {
        return Ok((report, pruned));
    };
    let totals = totals_refreshed(app, t).await?;
    let decision = decide(
        &totals.days,
        &pruned.days(),
        pruned.unfinished().len(),
        keep,
        now.date(),
        app.settings.retention.max_days_per_pass,
    );
    report.deferred = decision.more;
    for day in decision.days {
        if !dry_run {
            let record = prune_record(&day, now, keep);
            records::write(&app.blobs, &app.layout, &t.database, &t.table, &record)
                .await
                .map_err(storage(t, "record a pruned day"))?;
        }
        report.days.push(day);
    }
    if !dry_run && !report.days.is_empty() {
        // The records took the days out of what is restorable; the totals follow at once.
        totals_refreshed(app, t).await?;
    }
    Ok((report, pruned))
}

fn prune_record(day: &DayPruned, now: OffsetDateTime, keep: Keep) -> Prune {
    Prune {
        day: day.day,
        at: OffsetDateTime::now_utc(),
        now,
        keep_days: keep.days,
        artifacts: day.files,
        rows: day.rows,
        bytes: day.bytes,
    }
}

/// The table's catalog totals, brought up to date: the days the policy is applied to.
async fn totals_refreshed(app: &App, t: &TableRef) -> Result<CatalogTotals, PruneError> {
    let mut attempt = 1;
    loop {
        match catalog_totals::refresh(&app.blobs, &app.layout, &t.database, &t.table).await {
            Err(e) if e.is_conflict() && attempt < TOTALS_ATTEMPTS => attempt += 1,
            done => return done.map_err(storage(t, "refresh its catalog totals")),
        }
    }
}

/// What deleting a pruned day's folder did.
enum Deleted {
    /// Every blob (this many) is gone.
    All(u64),
    /// An immutability policy refused a delete; the rest of the day waits for the next pass.
    Refused {
        deleted: u64,
        left: u64,
        reason: String,
        /// When the refused blob was last written (its creation: such a blob is never
        /// rewritten).
        written: OffsetDateTime,
    },
}

/// Deletes every blob of the day's data folder (live, superseded and stray files alike), and
/// stops at the first one an immutability policy holds.
async fn delete_day(app: &App, t: &TableRef, day: Day) -> Result<Deleted, PruneError> {
    let items: Vec<BlobItem> = app
        .blobs
        .list(&app.layout.day_data_dir(&t.database, &t.table, day))
        .try_collect()
        .await
        .map_err(storage(t, "list a pruned day's data folder"))?;
    for (i, item) in items.iter().enumerate() {
        match app.blobs.delete(&item.path).await {
            Ok(()) => {}
            Err(StorageError::Immutable { code, .. }) => {
                return Ok(Deleted::Refused {
                    deleted: i as u64,
                    left: (items.len() - i) as u64,
                    reason: format!("HTTP 409 {code} on {}", item.path),
                    written: item.last_modified,
                });
            }
            Err(e) => return Err(storage(t, "delete a pruned day's blob")(e)),
        }
    }
    Ok(Deleted::All(items.len() as u64))
}

/// What the last prune of a table did, for `status` (`$state/prune/<db>/<table>.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneRun {
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The "now" the policy was applied at.
    #[serde(with = "time::serde::rfc3339")]
    pub now: OffsetDateTime,
    pub recorded: Vec<Day>,
    pub finished: Vec<Day>,
    pub blobs_deleted: u64,
    /// Recorded days whose blobs are not all deleted yet (none of them is restorable).
    pub unfinished: Vec<Day>,
    pub skipped: Option<String>,
    pub deletes_deferred: Option<DeletesDeferred>,
}

async fn save_run(
    app: &App,
    t: &TableRef,
    now: OffsetDateTime,
    report: &PruneReport,
    unfinished: Vec<Day>,
) -> Result<(), PruneError> {
    let run = PruneRun {
        at: OffsetDateTime::now_utc(),
        now,
        recorded: report.days.iter().map(|d| d.day).collect(),
        finished: report.finished.clone(),
        blobs_deleted: report.blobs_deleted,
        unfinished,
        skipped: report.skipped.clone(),
        deletes_deferred: report.deletes_deferred.clone(),
    };
    let path = app.layout.prune_state(&t.database, &t.table);
    let body = serde_json::to_vec(&run)
        .map_err(|e| StorageError::decode(&path, e))
        .map_err(storage(t, "save what the prune did"))?;
    app.blobs
        .write(&path, body.into())
        .await
        .map_err(storage(t, "save what the prune did"))?;
    Ok(())
}

/// The table's last prune, as saved (None before its first).
pub async fn last_run(app: &App, t: &TableRef) -> Result<Option<PruneRun>, StorageError> {
    let path = app.layout.prune_state(&t.database, &t.table);
    match app.blobs.read_opt(&path).await? {
        Some((body, _)) => serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| StorageError::decode(&path, e)),
        None => Ok(None),
    }
}

/// Why the table may not be pruned now: a restore job that is not finished reads this
/// backup's database (and this table, once its tables are known), or a backfill or
/// reconcile job of the table still has batches to export.
async fn in_use(app: &App, t: &TableRef) -> Result<Option<String>, PruneError> {
    let restores: Vec<RestoreJob> = docs(app, t, &app.layout.restore_jobs_dir(), |p| {
        app.layout.is_restore_job(p)
    })
    .await?;
    if let Some(job) = restores.iter().find(|j| restore_reads(j, t)) {
        return Ok(Some(format!(
            "restore job {} ({:?}) reads it; the next pass prunes once it has ended",
            job.job, job.status
        )));
    }
    let backfills: Vec<BackfillJob> = docs(
        app,
        t,
        &app.layout.backfill_jobs_of(&t.database, &t.table),
        |_| true,
    )
    .await?;
    if let Some(job) = backfills
        .iter()
        .find(|j| j.batches.values().any(|b| !b.state.is_final()))
    {
        return Ok(Some(format!(
            "backfill job {} still exports into it; the next pass prunes once it has ended",
            job.job
        )));
    }
    Ok(None)
}

fn restore_reads(job: &RestoreJob, t: &TableRef) -> bool {
    !job.status.is_final()
        && job
            .source_database
            .as_ref()
            .is_none_or(|db| *db == t.database)
        && (job.tables.is_empty() || job.tables.iter().any(|x| x.source == t.table))
}

async fn docs<T: serde::de::DeserializeOwned>(
    app: &App,
    t: &TableRef,
    prefix: &str,
    keep: impl Fn(&str) -> bool,
) -> Result<Vec<T>, PruneError> {
    let paths: Vec<String> = app
        .blobs
        .list(prefix)
        .map_ok(|i| i.path)
        .try_collect()
        .await
        .map_err(storage(t, "list the jobs that may use it"))?;
    let mut out = Vec::new();
    for path in paths.iter().filter(|p| keep(p)) {
        let (body, _) = app
            .blobs
            .read(path)
            .await
            .map_err(storage(t, "read a job that may use it"))?;
        let doc = crate::storage::state::decode(path, &body)
            .map_err(storage(t, "read a job that may use it"))?;
        out.push(doc);
    }
    Ok(out)
}

/// The tables to prune: every table with a state document, narrowed to `database` and
/// `table` when given.
pub async fn tables(
    app: &App,
    database: Option<&DatabaseName>,
    table: Option<&TableName>,
) -> Result<Vec<TableRef>, PruneError> {
    crate::protect::selected_tables(app, database, table)
        .await
        .map_err(|e| PruneError::List {
            database: e.database,
            source: Box::new(e.source),
        })
}

/// The protect timer's share: one `PruneTableV1` task per table with a policy, all with the
/// same `now`. Nothing is queued when no table has a policy.
pub async fn fan_out(app: &App, now: OffsetDateTime) -> Result<usize, PruneError> {
    if !app.settings.retention.any() {
        return Ok(0);
    }
    let tables = tables(app, None, None).await?;
    let mut queued = 0;
    for t in tables
        .iter()
        .filter(|t| app.settings.retention.keep(t).is_some())
    {
        let task = Task::PruneTableV1 {
            table: t.clone(),
            now,
        };
        app.tasks
            .send(&task.to_json(), None)
            .await
            .map_err(|e| PruneError::Enqueue {
                table: t.clone(),
                source: Box::new(e),
            })?;
        queued += 1;
    }
    Ok(queued)
}

/// `adx-backup prune`: the selected tables, pruned inline (or only listed, `dry_run`).
pub async fn run_inline(
    app: &App,
    database: Option<&DatabaseName>,
    table: Option<&TableName>,
    now: OffsetDateTime,
    dry_run: bool,
) -> Result<Vec<PruneReport>, PruneError> {
    let mut out = Vec::new();
    for t in tables(app, database, table).await? {
        out.push(prune_table(app, &t, now, dry_run).await?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn days(from: Date, n: i64) -> Vec<Day> {
        (0..n)
            .map(|i| Day::new(from + time::Duration::days(i)))
            .collect()
    }

    fn keep(days: u32, monthly_months: u32) -> Keep {
        Keep {
            days,
            monthly_months,
        }
    }

    #[test]
    fn thirty_days_kept_of_sixty_prunes_the_thirty_oldest() {
        // 2026-01-01 .. 2026-03-01 (60 days); today is the day after the last.
        let all = days(date!(2026 - 01 - 01), 60);
        let today = date!(2026 - 03 - 02);
        let out = leaving(all.clone(), keep(30, 0), today);
        assert_eq!(out, all[..30].to_vec());
        assert_eq!(out.last().unwrap().date(), date!(2026 - 01 - 30));
    }

    #[test]
    fn the_boundary_day_is_kept_and_the_one_before_leaves() {
        let today = date!(2026 - 03 - 10);
        let at = |d: Date| leaving([Day::new(d)], keep(7, 0), today);
        assert_eq!(at(date!(2026 - 03 - 03)), vec![]);
        assert_eq!(
            at(date!(2026 - 03 - 02)),
            vec![Day::new(date!(2026 - 03 - 02))]
        );
        assert_eq!(at(today), vec![]);
        assert_eq!(at(date!(2026 - 04 - 01)), vec![]);
    }

    #[test]
    fn month_firsts_stay_for_their_months_the_current_one_counted() {
        let today = date!(2026 - 06 - 15);
        let firsts: Vec<Day> = [
            date!(2025 - 12 - 01),
            date!(2026 - 01 - 01),
            date!(2026 - 02 - 01),
            date!(2026 - 03 - 01),
        ]
        .into_iter()
        .map(Day::new)
        .collect();
        let mut all = firsts.clone();
        all.push(Day::new(date!(2026 - 03 - 02)));
        // 6 months: June back to January.
        assert_eq!(
            leaving(all.clone(), keep(10, 6), today),
            vec![firsts[0], Day::new(date!(2026 - 03 - 02))]
        );
        assert_eq!(leaving(all.clone(), keep(10, 0), today), all);
        // Across a year: 7 months from June reaches December.
        assert_eq!(
            leaving(all, keep(10, 7), today),
            vec![Day::new(date!(2026 - 03 - 02))]
        );
    }

    #[test]
    fn undated_rows_never_leave_and_the_result_is_sorted() {
        let today = date!(2026 - 06 - 15);
        let out = leaving(
            [
                Day::new(date!(2026 - 01 - 05)),
                Day::UNDATED,
                Day::new(date!(2026 - 01 - 02)),
                Day::new(date!(2026 - 01 - 05)),
            ],
            keep(1, 0),
            today,
        );
        assert_eq!(
            out,
            vec![
                Day::new(date!(2026 - 01 - 02)),
                Day::new(date!(2026 - 01 - 05))
            ]
        );
    }

    #[test]
    fn a_restore_that_is_not_finished_holds_its_tables_and_an_unresolved_one_holds_all() {
        use crate::restore::state::{JobStatus, JobTable};
        let t = TableRef {
            database: DatabaseName::new("Sales").unwrap(),
            table: TableName::new("Orders").unwrap(),
        };
        let mut job = RestoreJob::new(crate::ids::JobId::new("r-1").unwrap(), None);
        // Accepted: neither its database nor its tables are known yet.
        assert!(restore_reads(&job, &t));
        job.status = JobStatus::Planning;
        job.source_database = Some(DatabaseName::new("Ops").unwrap());
        assert!(!restore_reads(&job, &t));
        job.source_database = Some(t.database.clone());
        assert!(restore_reads(&job, &t));
        let table = |name: &str| JobTable {
            source: TableName::new(name).unwrap(),
            target: TableName::new(name).unwrap(),
            partition_column: None,
            target_was_empty: true,
            expected: Default::default(),
        };
        job.tables = vec![table("Other")];
        assert!(!restore_reads(&job, &t));
        job.tables.push(table("Orders"));
        job.status = JobStatus::Ingesting;
        assert!(restore_reads(&job, &t));
        for done in [JobStatus::Succeeded, JobStatus::Failed, JobStatus::Planned] {
            job.status = done;
            assert!(!restore_reads(&job, &t), "{done:?}");
        }
    }

    #[test]
    fn the_decision_skips_pruned_days_counts_the_catalog_and_keeps_to_the_bound() {
        let today = date!(2026 - 03 - 02);
        let all = days(date!(2026 - 01 - 01), 60);
        let totals: BTreeMap<Day, DayTotals> = all
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let n = i as u64 + 1;
                let t = DayTotals {
                    artifacts: n,
                    rows: 10 * n,
                    bytes: 100 * n,
                };
                (*d, t)
            })
            .collect();
        let pruned: BTreeSet<Day> = all[..5].iter().copied().collect();
        let d = decide(&totals, &pruned, 0, keep(30, 0), today, 31);
        assert_eq!(d.days.first().unwrap().day, all[5]);
        assert_eq!(d.days.len(), 25);
        assert_eq!(d.more, 0);
        assert_eq!(
            d.days[0],
            DayPruned {
                day: all[5],
                files: 6,
                rows: 60,
                bytes: 600
            }
        );
        // 28 unfinished days leave room for 3 new ones this pass.
        let d = decide(&totals, &BTreeSet::new(), 28, keep(30, 0), today, 31);
        assert_eq!((d.days.len(), d.more), (3, 27));
        let d = decide(&totals, &BTreeSet::new(), 40, keep(30, 0), today, 31);
        assert_eq!((d.days.len(), d.more), (0, 30));
    }

    #[test]
    fn deferred_deletes_say_why_and_from_when_they_can_succeed() {
        let d = DeletesDeferred {
            days: vec![Day::new(date!(2026 - 01 - 01))],
            blobs_left: 3,
            reason: "HTTP 409 BlobImmutableDueToPolicy on x".into(),
            youngest_refused_written: time::macros::datetime!(2026-01-02 03:04:05 UTC),
        };
        let text = d.to_string();
        assert!(
            text.contains("deletes of 1 day(s) deferred, 3 blob(s) left")
                && text.contains("BlobImmutableDueToPolicy")
                && text.contains("2026-01-02T03:04:05Z"),
            "{text}"
        );
    }

    #[test]
    fn the_report_lists_what_a_dry_run_would_remove() {
        let t = TableRef {
            database: DatabaseName::new("Sales").unwrap(),
            table: TableName::new("Orders").unwrap(),
        };
        let mut r = PruneReport::new(&t, true, Some(keep(30, 0)));
        r.days.push(DayPruned {
            day: Day::new(date!(2026 - 01 - 01)),
            files: 2,
            rows: 10,
            bytes: 300,
        });
        let text = r.to_string();
        assert!(
            text.contains("would prune 1 day(s), 2 file(s), 10 row(s), 300 byte(s)"),
            "{text}"
        );
        assert!(!text.contains("blob(s) deleted"), "{text}");
    }
}
