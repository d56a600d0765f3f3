//! The job's last step: the snapshot's materialized views, created once every file of their
//! source tables is in and counted, with `backfill=true`, so Kusto builds each from the
//! restored records (docs/design.md, Restore). One view at a time, one driver message per
//! step: Pending → Sending → Backfilling (Kusto's operation, polled) → Created, or Existed
//! (the target had one) or Failed (Kusto's reason, in the report).
//!
//! Exactly once: a driver message can be delivered twice, and both copies read the same
//! tick, so the tick alone cannot stop both from sending the create. The step that sends it
//! first writes the view as `Sending` into the job document with the ETag it read, and sends
//! only if that write won. The next driver message is queued before the send, so the job goes
//! on if this process dies while sending; a later step that finds the view still `Sending`
//! waits out a Kusto request's timeout, then looks for the view and claims it again only if
//! it is not there. The create itself is `ifnotexists`, so a view the target has is never
//! altered.

use time::OffsetDateTime;

use super::driver::{found, log_end, report, snapshot_objects};
use super::request::RestoreRequestV1;
use super::schema::PlannedView;
use super::state::{JobStatus, RestoreJob, ViewState, ViewStep};
use super::{RestoreError, kusto_err, send_step, storage_err, target_client};
use crate::app::App;
use crate::ids::{JobId, OperationId};
use crate::job::{Change, StepDoc, StepOutcome};
use crate::kusto::command::show_operation;
use crate::kusto::{KustoClient, OperationRow, Step};
use crate::retry::Retryable;

/// The job's views, none sent yet.
pub(super) fn steps(views: &[PlannedView]) -> Vec<ViewStep> {
    views
        .iter()
        .map(|v| ViewStep {
            name: v.name.clone(),
            state: ViewState::Pending,
        })
        .collect()
}

/// When the next driver message runs.
enum Next {
    AtOnce,
    AfterPoll,
}

/// One step of a job in `CreatingViews`, for the driver message its document's tick is at.
pub(super) async fn step(
    app: &App,
    doc: StepDoc<RestoreJob>,
    request: &RestoreRequestV1,
) -> Result<String, RestoreError> {
    let job = doc.state().clone();
    let id = job.job.clone();
    let Some(i) = job.views.iter().position(|v| !v.state.is_final()) else {
        let mut next = job;
        finish(&mut next);
        next.tick += 1;
        let summary = format!("restore {id}: {:?}, step {}", next.status, next.tick);
        let ended = next.clone();
        if save(app, doc, next).await? == StepOutcome::Advanced {
            log_end(&ended);
        }
        return Ok(summary);
    };
    let name = job.views[i].name.clone();
    let Some(planned) = planned(app, &job, request)
        .await?
        .into_iter()
        .find(|v| v.name == name)
    else {
        let mut next = job;
        settle(
            &mut next,
            i,
            ViewState::Failed {
                reason: "the schema snapshot no longer defines it".to_owned(),
            },
            None,
        );
        return advance(app, doc, next, Next::AtOnce).await;
    };
    let target = target_client(app, &id, &request.target.cluster_uri)?;
    let db = &request.target.database;
    match next_move(&job.views[i].state, OffsetDateTime::now_utc(), grace(app)) {
        // The step that claimed it may still be sending: wait for it to record what Kusto
        // said.
        Move::Wait => advance(app, doc, job, Next::AfterPoll).await,
        Move::Look { if_found } => {
            if found(&target, db, Some(&planned.find))
                .await
                .map_err(kusto_err(&id))?
            {
                let mut next = job;
                settle(&mut next, i, if_found, Some(&planned));
                return advance(app, doc, next, Next::AtOnce).await;
            }
            send(app, doc, job, i, &planned, &target, request).await
        }
        Move::Poll(operation) => {
            let now = poll(&target, db, &operation, &planned)
                .await
                .map_err(kusto_err(&id))?;
            let mut next = job;
            let when = match now {
                Some(state) => {
                    settle(&mut next, i, state, Some(&planned));
                    Next::AtOnce
                }
                None => Next::AfterPoll,
            };
            advance(app, doc, next, when).await
        }
        Move::None => Ok(format!("restore {id}: view {name} already settled")),
    }
}

/// What a step does with a view that is not settled.
#[derive(Debug, PartialEq)]
enum Move {
    /// A claim may still be sending: wait.
    Wait,
    /// Look for the view in the target: if there, it becomes `if_found`; if not, claim it
    /// and send the create.
    Look { if_found: ViewState },
    /// Look at the backfill.
    Poll(OperationId),
    /// Nothing: the view is settled.
    None,
}

/// The move for a view in `state` at `now`; a claim older than `grace` is over.
fn next_move(state: &ViewState, now: OffsetDateTime, grace: std::time::Duration) -> Move {
    match state {
        ViewState::Sending { at } if now - *at < grace => Move::Wait,
        // A claim nobody recorded: if the view is there, it is the one this job sent.
        ViewState::Sending { .. } => Move::Look {
            if_found: ViewState::Created,
        },
        // Before any claim, a view of that name is the target's own.
        ViewState::Pending => Move::Look {
            if_found: ViewState::Existed,
        },
        ViewState::Backfilling { operation } => Move::Poll(operation.clone()),
        ViewState::Created | ViewState::Existed | ViewState::Failed { .. } => Move::None,
    }
}

/// Claims view `i` (writes it `Sending`), queues the next driver message, sends the create,
/// and records what Kusto answered, unless the claim was lost to a twin of this step.
async fn send(
    app: &App,
    doc: StepDoc<RestoreJob>,
    job: RestoreJob,
    i: usize,
    planned: &PlannedView,
    target: &KustoClient,
    request: &RestoreRequestV1,
) -> Result<String, RestoreError> {
    let id = job.job.clone();
    let at = OffsetDateTime::now_utc();
    let mut claimed = job;
    claimed.views[i].state = ViewState::Sending { at };
    claimed.tick += 1;
    let tick = claimed.tick;
    if save(app, doc, claimed).await? != StepOutcome::Advanced {
        return Ok(format!(
            "restore {id}: view {} claimed by another step",
            planned.name
        ));
    }
    follow(app, &id, tick, Next::AfterPoll).await?;
    let db = &request.target.database;
    let step = Step::database(db, "create a materialized view");
    let answer = step.mgmt(target, &planned.create).await;
    let now = match answer {
        Ok(tables) => match tables
            .first()
            .and_then(|t| t.rows().next())
            .and_then(|r| r.str("OperationId").ok().map(OperationId::new))
        {
            Some(operation) => ViewState::Backfilling { operation },
            None => ViewState::Failed {
                reason: "Kusto answered the create without an operation id".to_owned(),
            },
        },
        // Sent again by the next step.
        Err(e) if e.source.is_transient() => ViewState::Pending,
        Err(e) => ViewState::Failed {
            reason: e.source.to_string(),
        },
    };
    record(app, &id, i, at, now, planned).await?;
    Ok(format!("restore {id}: view {} sent", planned.name))
}

/// Records what the create of view `i`, claimed at `at`, came to, if the view is still the
/// one claimed then (a step that waited on it does not change it; one that found it created
/// does, and wins).
async fn record(
    app: &App,
    id: &JobId,
    i: usize,
    at: OffsetDateTime,
    now: ViewState,
    planned: &PlannedView,
) -> Result<(), RestoreError> {
    let path = app.layout.restore_job(id);
    for _ in 0..3 {
        let doc = StepDoc::load(&app.blobs, &path, || RestoreJob::new(id.clone(), None))
            .await
            .map_err(storage_err(id, "read the job"))?;
        let outcome = doc
            .advance(&app.blobs, |j| match j.views.get(i).map(|v| &v.state) {
                Some(ViewState::Sending { at: claimed }) if *claimed == at => {
                    settle(j, i, now.clone(), Some(planned));
                    Change::Made
                }
                _ => Change::AlreadyDone,
            })
            .await
            .map_err(storage_err(id, "record the view's create"))?;
        if outcome != StepOutcome::LostRace {
            return Ok(());
        }
    }
    // The next step finds the view Sending, waits, and looks for it.
    Ok(())
}

/// What the backfill `operation` of `planned` came to: None while it runs.
async fn poll(
    target: &KustoClient,
    db: &crate::ids::DatabaseName,
    operation: &OperationId,
    planned: &PlannedView,
) -> Result<Option<ViewState>, crate::kusto::StepError> {
    let step = Step::database(db, "look at a materialized view's backfill");
    let tables = step.mgmt(target, &show_operation(operation)).await?;
    let rows = OperationRow::all(&tables).map_err(|e| step.error(e))?;
    let ended = match rows.into_iter().next() {
        Some(op) if !op.state.is_final() => return Ok(None),
        Some(op) => op.failure().map(|f| f.message),
        // Kusto lists an operation by id for 6 hours after its last update.
        None => None,
    };
    if found(target, db, Some(&planned.find)).await? {
        return Ok(Some(ViewState::Created));
    }
    Ok(Some(ViewState::Failed {
        reason: ended.unwrap_or_else(|| {
            format!("its backfill (operation {operation}) ended, or is no longer listed, and the view is not in the target")
        }),
    }))
}

/// Puts view `i` in `state` and, when it is final, says so in the job's schema report.
fn settle(job: &mut RestoreJob, i: usize, state: ViewState, planned: Option<&PlannedView>) {
    let name = job.views[i].name.clone();
    let what = planned.map_or_else(|| format!("materialized view {name}"), |p| p.what.clone());
    match &state {
        ViewState::Created => job.schema.applied.push(what),
        ViewState::Existed => job.schema.not_applied.push(format!(
            "materialized view {name}: the target already has a view of that name; left as it is, not compared with the backup's"
        )),
        ViewState::Failed { reason } => {
            let how = planned.map_or_else(String::new, |p| {
                format!("; create it with: {}", p.create.first_line())
            });
            job.schema.not_applied.push(format!(
                "materialized view {name}: not created, {reason}{how}"
            ));
        }
        _ => {}
    }
    job.views[i].state = state;
}

/// Ends the job once every view is settled: the data's verdict stands (a view never
/// decides whether the rows came back), the report gains what the views came to.
fn finish(job: &mut RestoreJob) {
    job.status = JobStatus::Succeeded;
    job.finished_at = Some(OffsetDateTime::now_utc());
    let mut done = job
        .report
        .take()
        .unwrap_or_else(|| report(job, Vec::new(), Vec::new()));
    done.schema = job.schema.clone();
    let end = job.finished_at.unwrap_or_else(OffsetDateTime::now_utc);
    done.duration_seconds = (end - job.created_at).whole_seconds();
    job.report = Some(done);
}

/// The views this job creates, planned from its snapshot again.
async fn planned(
    app: &App,
    job: &RestoreJob,
    request: &RestoreRequestV1,
) -> Result<Vec<PlannedView>, RestoreError> {
    Ok(match snapshot_objects(app, job, request).await? {
        Some(Ok(objects)) => objects.views,
        _ => Vec::new(),
    })
}

/// How long a claim may be in flight: a create that has not answered by then never will.
fn grace(app: &App) -> std::time::Duration {
    app.settings.kusto.request_timeout + std::time::Duration::from_secs(30)
}

/// Bumps the tick, saves `next` and, if this step's write won, queues the next step.
async fn advance(
    app: &App,
    doc: StepDoc<RestoreJob>,
    mut next: RestoreJob,
    when: Next,
) -> Result<String, RestoreError> {
    let id = next.job.clone();
    next.tick += 1;
    let tick = next.tick;
    let summary = format!("restore {id}: {:?}, step {tick}", next.status);
    if save(app, doc, next).await? == StepOutcome::Advanced {
        follow(app, &id, tick, when).await?;
    }
    Ok(summary)
}

async fn save(
    app: &App,
    doc: StepDoc<RestoreJob>,
    next: RestoreJob,
) -> Result<StepOutcome, RestoreError> {
    let id = next.job.clone();
    doc.advance(&app.blobs, |s| {
        *s = next;
        Change::Made
    })
    .await
    .map_err(storage_err(&id, "save the job"))
}

async fn follow(app: &App, id: &JobId, tick: u64, when: Next) -> Result<(), RestoreError> {
    let delay = match when {
        Next::AtOnce => None,
        Next::AfterPoll => Some(app.settings.restore.poll),
    };
    send_step(app, id, tick, delay).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restore::state::{Report, SchemaReport, TableReport, Totals};
    use std::time::Duration;
    use time::macros::datetime;

    #[test]
    fn a_claim_is_waited_out_then_looked_for_and_a_view_found_before_any_claim_is_not_ours() {
        let at = datetime!(2026-12-01 10:00 UTC);
        let grace = Duration::from_secs(150);
        let sending = ViewState::Sending { at };
        assert_eq!(
            next_move(&sending, at + Duration::from_secs(149), grace),
            Move::Wait
        );
        assert_eq!(
            next_move(&sending, at + Duration::from_secs(150), grace),
            Move::Look {
                if_found: ViewState::Created
            }
        );
        assert_eq!(
            next_move(&ViewState::Pending, at, grace),
            Move::Look {
                if_found: ViewState::Existed
            }
        );
        let op = OperationId::new("8b1a2c3d-0000-4000-8000-000000000001");
        assert_eq!(
            next_move(
                &ViewState::Backfilling {
                    operation: op.clone()
                },
                at,
                grace
            ),
            Move::Poll(op)
        );
        for settled in [
            ViewState::Created,
            ViewState::Existed,
            ViewState::Failed { reason: "x".into() },
        ] {
            assert!(settled.is_final());
            assert_eq!(next_move(&settled, at, grace), Move::None);
        }
    }

    fn job_with_views() -> RestoreJob {
        let mut job = RestoreJob::new(JobId::new("r-1").unwrap(), None);
        job.views = ["A", "B", "C"]
            .iter()
            .map(|n| ViewStep {
                name: crate::ids::ViewName::new(*n).unwrap(),
                state: ViewState::Pending,
            })
            .collect();
        job
    }

    #[test]
    fn each_view_says_what_it_came_to_and_the_job_keeps_its_count() {
        let mut job = job_with_views();
        job.status = JobStatus::CreatingViews;
        let table = TableReport {
            source: crate::ids::TableName::new("Raw").unwrap(),
            target: crate::ids::TableName::new("Raw").unwrap(),
            expected_rows: Some(7),
            found_rows: 7,
            mismatched_days: Vec::new(),
        };
        job.report = Some(Report {
            tables: vec![table.clone()],
            totals: Totals::default(),
            failed: Vec::new(),
            missing: Vec::new(),
            caveats: Vec::new(),
            duration_seconds: 0,
            schema: SchemaReport::default(),
        });
        settle(&mut job, 0, ViewState::Created, None);
        settle(&mut job, 1, ViewState::Existed, None);
        settle(
            &mut job,
            2,
            ViewState::Failed {
                reason: "Kusto said no".into(),
            },
            None,
        );
        finish(&mut job);
        assert_eq!(job.status, JobStatus::Succeeded);
        assert!(job.finished_at.is_some());
        let report = job.report.unwrap();
        assert_eq!(report.tables, [table]);
        assert_eq!(report.schema.applied, ["materialized view A"]);
        assert_eq!(
            report.schema.not_applied,
            [
                "materialized view B: the target already has a view of that name; left as it is, not compared with the backup's",
                "materialized view C: not created, Kusto said no",
            ]
        );
    }
}
