//! reconcile: the backup of every closed day converges to what the source holds.
//!
//! Continuous export only appends, so a `.delete` or `.purge` in the source never reaches the
//! backup, and rows that enter a table by `.move extents` keep their old ingestion time and
//! can be missed by the export. verify finds such days; reconcile repairs them:
//!
//! 1. [`after_verify`] (verify's task, `AdxBackup__Reconcile=apply`): the closed days verify
//!    found drifting, largest drift first, at most `AdxBackup__ReconcileMaxDays`, each sent as
//!    a `ReconcileDayV1` task.
//! 2. [`start`] (`ReconcileDayV1`): a backfill job (`rc-<hash of table, day, the drift found
//!    and the swaps so far>`, so a duplicate message or verification finds the same job) re-exports the day's rows ingested at or
//!    before the export's recorded `ExportedTo`, in bounded batches with the adaptive split,
//!    into reconcile segments that are not live yet.
//! 3. [`finish`] (after the job's last batch, or on any later delivery): the new files' rows
//!    are counted against the source's count for the same bound; equal, one supersede record
//!    swaps the day (`storage::supersede`); different, nothing is swapped and the mismatch is
//!    recorded in the job. At every moment exactly one set of the day is live.
//! 4. [`after_verify`] also deletes the files swaps superseded once a swap is older than
//!    `AdxBackup__ReconcileSupersededRetentionSeconds` ([`superseded`]), whatever the mode.

mod superseded;

use std::collections::BTreeSet;

use futures::TryStreamExt;
use time::OffsetDateTime;

use crate::app::App;
use crate::backfill::{self, BackfillError, BackfillJob, BackfillReport, Bounds, DayScope};
use crate::ids::{Cursor, Day, JobId, TableRef};
use crate::job::StepDoc;
use crate::kusto::{QueryBuilder, Step};
use crate::protect::Protection;
use crate::settings::{ReconcileMode, ReconcileSettings};
use crate::storage::StorageError;
use crate::storage::supersede::{self, Supersede};
pub use crate::task::Drift;
use crate::task::Task;
use crate::verify::{Finding, Verification};
pub use superseded::delete_superseded;

/// Why a reconcile job exists, as its job document says.
const REASON: &str = "reconcile: re-export a closed day verify found drifting";

/// Attempts at writing the swap when another swap of the same day wins the name.
const SWAP_ATTEMPTS: u32 = 4;

/// The job that reconciles `day` of `t` from `drift`, found by a verification made after
/// `swaps` swaps of the day: the same id for the same finding, so a duplicate message, or a
/// second verification that found the same drift before the swap, resumes the job (already
/// swapped: nothing to do) rather than starting another; a drift verified after the swap
/// names a new job.
pub fn job_id(t: &TableRef, day: Day, swaps: usize, drift: Drift) -> Result<JobId, BackfillError> {
    backfill::stable_id(
        t,
        "rc",
        &[
            &day.folder(),
            &swaps.to_string(),
            &drift.backup_rows.to_string(),
            &drift.source_rows.to_string(),
        ],
    )
}

/// True when `day` ended at least the settle time before `now`.
pub fn is_closed(day: Day, now: OffsetDateTime, settings: &ReconcileSettings) -> bool {
    let end = day.date().midnight().assume_utc() + time::Duration::DAY;
    let settle = time::Duration::try_from(settings.settle).unwrap_or(time::Duration::MAX);
    day != Day::UNDATED && end + settle <= now
}

/// The days of `v` to reconcile: closed days with a drift finding, largest drift first, at
/// most `max_days`.
pub fn choose_days(
    v: &Verification,
    now: OffsetDateTime,
    settings: &ReconcileSettings,
) -> Vec<(Day, Drift)> {
    let mut drifting: Vec<(u64, Day, Drift)> = v
        .findings
        .iter()
        .filter_map(|f| match *f {
            Finding::ExtraRows {
                day,
                backup_rows,
                source_rows,
            }
            | Finding::MissingRows {
                day,
                backup_rows,
                source_rows,
            }
            | Finding::MissingDay {
                day,
                backup_rows,
                source_rows,
            } => Some((
                backup_rows.abs_diff(source_rows),
                day,
                Drift {
                    backup_rows,
                    source_rows,
                },
            )),
            _ => None,
        })
        .filter(|(_, day, _)| is_closed(*day, now, settings))
        .collect();
    drifting.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    drifting
        .into_iter()
        .take(settings.max_days)
        .map(|(_, d, drift)| (d, drift))
        .collect()
}

/// After a verification: deletes the files of swaps older than the retention, and in apply
/// mode sends one `ReconcileDayV1` per chosen day. Returns how many were sent.
pub async fn after_verify(
    app: &App,
    t: &TableRef,
    v: &Verification,
) -> Result<usize, StorageError> {
    delete_superseded(app, t, OffsetDateTime::now_utc()).await?;
    if app.settings.reconcile.mode != ReconcileMode::Apply {
        return Ok(0);
    }
    let days = choose_days(v, OffsetDateTime::now_utc(), &app.settings.reconcile);
    for (day, drift) in &days {
        let task = Task::ReconcileDayV1 {
            table: t.clone(),
            day: *day,
            drift: *drift,
            verified_at: v.verified_at,
        };
        app.tasks.send(&task.to_json(), None).await?;
    }
    if !days.is_empty() {
        tracing::info!(database = %t.database, table = %t.table, days = days.len(), "reconcile days queued");
    }
    Ok(days.len())
}

/// `ReconcileDayV1`: starts (or resumes) the reconcile job of `day`, and swaps the day in
/// when the job is done.
pub async fn start(
    app: &App,
    t: &TableRef,
    day: Day,
    drift: Drift,
    verified_at: OffsetDateTime,
) -> Result<BackfillReport, BackfillError> {
    let refuse = |reason: &str| BackfillError::NotReconcilable {
        table: t.clone(),
        day,
        reason: reason.to_owned(),
    };
    if app.settings.reconcile.mode != ReconcileMode::Apply {
        return Err(refuse("AdxBackup__Reconcile is not apply"));
    }
    if !is_closed(day, OffsetDateTime::now_utc(), &app.settings.reconcile) {
        return Err(refuse(
            "the day is not closed yet (AdxBackup__ReconcileSettleDays)",
        ));
    }
    let swaps = supersede::records(&app.blobs, &app.layout, &t.database, &t.table)
        .await
        .map_err(|e| BackfillError::storage(format!("read the supersede records of {t}"), e))?
        .iter()
        .filter(|r| r.day == day && r.at < verified_at)
        .count();
    let job = job_id(t, day, swaps, drift)?;
    let path = app.layout.backfill_job(&t.database, &t.table, &job);
    let planned = StepDoc::<BackfillJob>::load_existing(&app.blobs, &path)
        .await
        .map_err(|e| BackfillError::storage(format!("read reconcile job {job}"), e))?
        .is_some();
    let bounds = if planned {
        None
    } else {
        Some(bounds(app, t, day).await?)
    };
    let report = match bounds {
        // Resumed: start_job finds the plan and only dispatches.
        None => backfill::resume_job(app, t, job.clone()).await?,
        Some(b) => backfill::start_job(app, t, job.clone(), b, REASON, false).await?,
    };
    finish(app, t, &job).await?;
    Ok(report)
}

/// The bound of a new reconcile of `day`: the day's rows committed by now and ingested at or
/// before the `ExportedTo` the table's state recorded, with the export segments cataloged by
/// then (the ones the swap supersedes).
async fn bounds(app: &App, t: &TableRef, day: Day) -> Result<Bounds, BackfillError> {
    let refuse = |reason: &str| BackfillError::NotReconcilable {
        table: t.clone(),
        day,
        reason: reason.to_owned(),
    };
    let state = crate::protect::load_state(app, t)
        .await
        .map_err(|e| BackfillError::storage(format!("read the protection state of {t}"), e))?;
    let Protection::Protected {
        partition_column: Some(column),
        ..
    } = &state.protection
    else {
        return Err(refuse(
            "only protected tables with a partition column are reconciled by day",
        ));
    };
    let Some(ingested_until) = state.export_exported_to else {
        return Err(refuse("the continuous export has not exported yet"));
    };
    let step = Step::table(t, "read the cluster's current cursor");
    let result = app
        .kusto
        .query(&t.database, &QueryBuilder::print_cursor_current().command())
        .await
        .map_err(|e| step.error(e))?;
    let table = result.primary_table().map_err(|e| step.error(e))?;
    let cursor = table
        .rows()
        .next()
        .map(|r| r.str("Cursor").map(str::to_owned))
        .transpose()
        .map_err(|e| step.error(e))?
        .ok_or_else(|| BackfillError::Unexpected {
            table: t.clone(),
            message: "`print cursor_current()` answered no row".to_owned(),
        })?;
    Ok(Bounds {
        until: Cursor::new(cursor),
        after: None,
        ingested_after: None,
        day: Some(DayScope {
            column: column.clone(),
            day,
            ingested_until,
            export_segments_before: state.harvest.next_segment,
        }),
    })
}

/// Swaps the day of reconcile job `job` in, once its batches are all cataloged and their rows
/// equal the source's count for the job's bound. Does nothing for a job still running, a
/// backfill job, or a job already swapped. Returns the swap in force for the job, if any.
pub async fn finish(
    app: &App,
    t: &TableRef,
    job: &JobId,
) -> Result<Option<Supersede>, BackfillError> {
    let path = app.layout.backfill_job(&t.database, &t.table, job);
    let Some(doc) = StepDoc::<BackfillJob>::load_existing(&app.blobs, &path)
        .await
        .map_err(|e| BackfillError::storage(format!("read reconcile job {job}"), e))?
    else {
        return Ok(None);
    };
    let j = doc.state();
    let Some(scope) = j.day.clone() else {
        return Ok(None);
    };
    let p = &j.progress;
    if p.batches_planned > p.batches_done + p.batches_split || p.batches_failed > 0 {
        return Ok(None);
    }
    let read = |what: &str| {
        let what = format!("{what} of reconcile job {job}");
        move |e| BackfillError::storage(what, e)
    };
    let records = supersede::records(&app.blobs, &app.layout, &t.database, &t.table)
        .await
        .map_err(read("read the supersede records"))?;
    if let Some(done) = records.iter().find(|r| r.job == *job) {
        return Ok(Some(done.clone()));
    }
    let (segments, exported) = new_set(app, t, job)
        .await
        .map_err(read("read the new set"))?;
    let source_rows = source_count(app, t, &j.bounds()).await?;
    if exported != source_rows {
        let err = BackfillError::CountMismatch {
            table: t.clone(),
            day: scope.day,
            job: job.clone(),
            exported,
            source_rows,
        };
        tracing::error!(event = "adxbackup.reconcile_mismatch", database = %t.database, table = %t.table, day = %scope.day, job = %job, exported, source_rows, "reconcile counts differ; no swap");
        backfill::record_failure(app, t, job, "count the reconciled day", &err).await?;
        return Err(err);
    }
    let record = Supersede {
        day: scope.day,
        at: OffsetDateTime::now_utc(),
        job: job.clone(),
        export_segments_before: scope.export_segments_before,
        segments,
        rows: exported,
    };
    let mut n = records.iter().filter(|r| r.day == scope.day).count() as u32;
    for _ in 0..SWAP_ATTEMPTS {
        match supersede::write(&app.blobs, &app.layout, &t.database, &t.table, n, &record).await {
            Ok(()) => {
                tracing::info!(database = %t.database, table = %t.table, day = %scope.day, job = %job, rows = exported, "reconcile swapped the day to its new set");
                return Ok(Some(record));
            }
            Err(e) if e.is_conflict() => {
                // Another delivery of this job, or another job of the day, took swap n.
                let now = supersede::records(&app.blobs, &app.layout, &t.database, &t.table)
                    .await
                    .map_err(read("read the supersede records"))?;
                if let Some(done) = now.iter().find(|r| r.job == *job) {
                    return Ok(Some(done.clone()));
                }
                n += 1;
            }
            Err(e) => return Err(read("record the swap")(e)),
        }
    }
    Err(BackfillError::Contended { path })
}

/// The reconcile segments of `job` (blob names) and the rows they hold.
async fn new_set(
    app: &App,
    t: &TableRef,
    job: &JobId,
) -> Result<(BTreeSet<String>, u64), StorageError> {
    let prefix = app
        .layout
        .reconcile_job_segments(&t.database, &t.table, job);
    let paths: Vec<String> = app
        .blobs
        .list(&prefix)
        .map_ok(|i| i.path)
        .try_collect()
        .await?;
    let catalog = crate::storage::catalog::Catalog::new(&app.blobs, &app.layout);
    let mut names = BTreeSet::new();
    let mut rows = 0;
    for path in paths {
        rows += catalog
            .read_path(&path)
            .await?
            .iter()
            .map(|a| a.rows)
            .sum::<u64>();
        names.insert(path.rsplit('/').next().unwrap_or(&path).to_owned());
    }
    Ok((names, rows))
}

/// The source's rows within the job's bound.
async fn source_count(app: &App, t: &TableRef, bounds: &Bounds) -> Result<u64, BackfillError> {
    let step = Step::table(t, "count the source's rows of the reconciled day");
    let result = app
        .kusto
        .query(&t.database, &bounds.rows(&t.table).count().command())
        .await
        .map_err(|e| step.error(e))?;
    let table = result.primary_table().map_err(|e| step.error(e))?;
    match table.rows().next() {
        Some(row) => Ok(u64::try_from(row.i64("Count").map_err(|e| step.error(e))?).unwrap_or(0)),
        None => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{DatabaseName, TableName};
    use crate::verify::Outcome;
    use std::time::Duration;
    use time::macros::datetime;

    fn day(s: &str) -> Day {
        Day::parse_folder(s).unwrap()
    }

    fn settings(max_days: usize) -> ReconcileSettings {
        ReconcileSettings {
            mode: ReconcileMode::Apply,
            settle: Duration::from_secs(2 * 86_400),
            max_days,
            superseded_retention: None,
        }
    }

    fn verification(findings: Vec<Finding>) -> Verification {
        Verification {
            version: 1,
            database: DatabaseName::new("Sales").unwrap(),
            table: TableName::new("T").unwrap(),
            verified_at: datetime!(2024-01-20 00:00 UTC),
            outcome: Outcome::Drift,
            comparable_until: None,
            behind: vec![],
            days_compared: 0,
            findings,
            files: None,
        }
    }

    #[test]
    fn a_day_closes_the_settle_time_after_it_ends() {
        let s = settings(10);
        assert!(!is_closed(
            day("20240115"),
            datetime!(2024-01-17 23:59 UTC),
            &s
        ));
        assert!(is_closed(
            day("20240115"),
            datetime!(2024-01-18 00:00 UTC),
            &s
        ));
        assert!(!is_closed(
            Day::UNDATED,
            datetime!(2030-01-01 00:00 UTC),
            &s
        ));
    }

    #[test]
    fn closed_drifting_days_largest_drift_first_at_most_n() {
        let v = verification(vec![
            Finding::ExtraRows {
                day: day("20240110"),
                backup_rows: 10,
                source_rows: 8,
            },
            Finding::MissingRows {
                day: day("20240111"),
                backup_rows: 1,
                source_rows: 9,
            },
            Finding::MissingDay {
                day: day("20240112"),
                backup_rows: 0,
                source_rows: 5,
            },
            Finding::Behind {
                day: day("20240113"),
                backup_rows: 0,
                source_rows: 100,
            },
            // Open: within the settle time.
            Finding::ExtraRows {
                day: day("20240119"),
                backup_rows: 1000,
                source_rows: 0,
            },
        ]);
        let now = datetime!(2024-01-20 12:00 UTC);
        let chosen: Vec<Day> = choose_days(&v, now, &settings(2))
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        assert_eq!(chosen, vec![day("20240111"), day("20240112")]);
        assert_eq!(choose_days(&v, now, &settings(10)).len(), 3);
    }

    #[test]
    fn job_ids_are_stable_per_day_drift_and_swap() {
        let t = TableRef {
            database: DatabaseName::new("Sales").unwrap(),
            table: TableName::new("T").unwrap(),
        };
        let d = Drift {
            backup_rows: 6,
            source_rows: 5,
        };
        let a = job_id(&t, day("20240115"), 0, d).unwrap();
        assert_eq!(a, job_id(&t, day("20240115"), 0, d).unwrap());
        assert_ne!(a, job_id(&t, day("20240116"), 0, d).unwrap());
        assert_ne!(a, job_id(&t, day("20240115"), 1, d).unwrap());
        let other = Drift {
            source_rows: 4,
            ..d
        };
        assert_ne!(a, job_id(&t, day("20240115"), 0, other).unwrap());
        assert!(
            a.as_str()
                .starts_with(crate::storage::layout::RECONCILE_JOB_PREFIX)
        );
    }
}
