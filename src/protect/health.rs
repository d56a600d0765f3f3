//! Export health: lag (now − ExportedTo), the last run's result, failures since the previous
//! check, and whether the export is disabled. Kept in the table's state for `status`; a
//! disabled, failing or lagging export is logged at error level with the table, Kusto's
//! message and a stable `event` field (`adxbackup.export_disabled`, `adxbackup.export_failing`,
//! `adxbackup.export_lagging`) that the alert rules match (docs/operations.md#alerts).
//! Kusto disables an export after 7 days of permanent failure; re-enabling it is left to a
//! person unless AdxBackup__ReenableExports allows it.

use time::OffsetDateTime;

use super::ProtectError;
use super::state::{ExportFailure, ExportHealth, TableState};
use crate::app::App;
use crate::ids::TableRef;
use crate::kusto::{ContinuousExportRow, ExportFailureRow, Step, command};

/// How many failures the state keeps; older ones stay in Kusto for 14 days.
const KEEP_FAILURES: usize = 10;

pub async fn check(
    app: &App,
    t: &TableRef,
    export: &ContinuousExportRow,
    state: &mut TableState,
) -> Result<(), ProtectError> {
    let since = state.health.as_ref().map(|h| h.checked_at);
    let now = OffsetDateTime::now_utc();
    let failures = failures_since(app, t, export, since).await?;
    let mut disabled = export.disabled;
    if disabled && app.settings.protect.reenable_exports {
        Step::table(t, "re-enable the continuous export")
            .mgmt(&app.kusto, &command::enable_continuous_export(&export.name))
            .await?;
        tracing::warn!(database = %t.database, table = %t.table, export = %export.name, "re-enabled a disabled continuous export");
        disabled = false;
    }
    let health = ExportHealth {
        checked_at: now,
        lag_seconds: export.exported_to.map(|to| (now - to).whole_seconds()),
        last_run_result: export.last_run_result.clone(),
        last_run_time: export.last_run_time,
        disabled,
        recent_failures: failures,
    };
    report(t, export, &health, app.settings.protect.lag_alert);
    state.health = Some(health);
    Ok(())
}

async fn failures_since(
    app: &App,
    t: &TableRef,
    export: &ContinuousExportRow,
    since: Option<OffsetDateTime>,
) -> Result<Vec<ExportFailure>, ProtectError> {
    let step = Step::table(t, "read the continuous export's failures");
    let tables = step
        .mgmt(
            &app.kusto,
            &command::show_continuous_export_failures(&export.name),
        )
        .await?;
    let rows = ExportFailureRow::all(&tables).map_err(|e| step.error(e))?;
    let mut out: Vec<ExportFailure> = rows
        .into_iter()
        .filter_map(|row| {
            let at = row.at?;
            since.is_none_or(|s| at > s).then_some(ExportFailure {
                at,
                kind: row.kind,
                details: row.details,
            })
        })
        .collect();
    out.sort_by_key(|f| std::cmp::Reverse(f.at));
    out.truncate(KEEP_FAILURES);
    Ok(out)
}

fn report(
    t: &TableRef,
    export: &ContinuousExportRow,
    health: &ExportHealth,
    lag_alert: std::time::Duration,
) {
    if health.disabled {
        tracing::error!(event = "adxbackup.export_disabled", database = %t.database, table = %t.table, export = %export.name,
            "continuous export is DISABLED: new rows are not backed up; fix the cause, then `.enable continuous-export` (or set AdxBackup__ReenableExports=true)");
    }
    for failure in &health.recent_failures {
        tracing::error!(event = "adxbackup.export_failing", database = %t.database, table = %t.table, export = %export.name, kind = %failure.kind, at = %failure.at,
            message = %failure.details, "continuous export run failed");
    }
    if health.last_run_result.as_deref() == Some("Failed") && health.recent_failures.is_empty() {
        tracing::error!(event = "adxbackup.export_failing", database = %t.database, table = %t.table, export = %export.name, "continuous export's last run failed");
    }
    if let Some(lag) = health.lag_seconds.filter(|l| lag_over(*l, lag_alert)) {
        tracing::error!(event = "adxbackup.export_lagging", database = %t.database, table = %t.table, export = %export.name,
            lag_seconds = lag, threshold_seconds = lag_alert.as_secs(),
            "continuous export is lagging: rows ingested since ExportedTo are not backed up yet");
    }
}

/// True when an export's lag passes the alert threshold (`AdxBackup__LagAlertSeconds`).
pub fn lag_over(lag_seconds: i64, threshold: std::time::Duration) -> bool {
    u64::try_from(lag_seconds).is_ok_and(|lag| lag > threshold.as_secs())
}
