//! Capacity, from `.show capacity` (Database User,
//! <https://learn.microsoft.com/kusto/management/show-capacity-command>).
//!
//! Source: every continuous export run is an export operation and takes one of the
//! cluster's `DataExport` slots while it runs; "if the database doesn't have sufficient
//! capacity to handle all continuous exports, some start lagging behind"
//! (<https://learn.microsoft.com/kusto/management/data-export/continuous-data-export>,
//! Resource consumption). protect gives every table the same interval and creates their
//! exports in the same pass, so they fall due together: with `Total` slots, `N` exports run
//! in ceil(N / Total) turns, and keep up only while a run takes under interval / turns.
//! N ≤ Total holds for any run that keeps up on its own (under one interval); N > Total is a
//! finding, with the run time that still fits. No slot free right now is a finding too.
//!
//! Restore target: no `Ingestions` slot free is a finding; the figures are kept otherwise.

use std::time::Duration;

use super::{CapacityFigure, CheckError, CheckReport, Finding, is_forbidden};
use crate::app::App;
use crate::ids::DatabaseName;
use crate::kusto::{CapacityRow, KustoClient, Step, command};

const SOURCE: &str = "source cluster";
const TARGET: &str = "restore target";

/// What raises the export capacity (capacity-policy: ExportCapacity's formula).
const RAISE_EXPORT_CAPACITY: &str = "give the source cluster more export slots: scale it out or up, or raise ExportCapacity in its capacity policy (`.alter-merge cluster policy capacity`, AllDatabasesAdmin; slots = min(ClusterMaximumConcurrentOperations, nodes × max(1, cores per node × CoreUtilizationCoefficient))); or lengthen AdxBackup__ExportIntervalSeconds, or protect fewer tables (AdxBackup__ExcludeTables)";

/// The source's export capacity against the `exports` continuous exports protect runs.
pub(super) async fn source(
    app: &App,
    db: &DatabaseName,
    exports: usize,
    r: &mut CheckReport,
) -> Result<(), CheckError> {
    let Some(row) = read(&app.kusto, db, CapacityRow::DATA_EXPORT, SOURCE, r).await? else {
        return Ok(());
    };
    let found = export_findings(&row, exports, app.settings.protect.export_interval);
    if found.is_empty() {
        r.capacity.push(figure(SOURCE, row));
    }
    r.findings.extend(found);
    Ok(())
}

/// The restore target's free ingestion capacity.
pub(super) async fn target(
    client: &KustoClient,
    db: &DatabaseName,
    r: &mut CheckReport,
) -> Result<(), CheckError> {
    let Some(row) = read(client, db, CapacityRow::INGESTIONS, TARGET, r).await? else {
        return Ok(());
    };
    match ingestion_finding(db, &row) {
        Some(f) => r.findings.push(f),
        None => r.capacity.push(figure(TARGET, row)),
    }
    Ok(())
}

/// `resource`'s row of `.show capacity` on `db`'s cluster; None (and a line in
/// `unverified`) when the app may not read it or the cluster does not list it.
async fn read(
    client: &KustoClient,
    db: &DatabaseName,
    resource: &str,
    cluster: &str,
    r: &mut CheckReport,
) -> Result<Option<CapacityRow>, CheckError> {
    let step = Step::database(db, "read the cluster's capacity");
    let tables = match step.mgmt(client, &command::show_capacity()).await {
        Ok(tables) => tables,
        Err(e) if is_forbidden(&e) => {
            r.unverified.push(format!(
                "the {cluster}'s {resource} capacity: `.show capacity` needs Database User on {db}"
            ));
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let row = CapacityRow::find(&tables, resource).map_err(|e| step.error(e))?;
    if row.is_none() {
        r.unverified.push(format!(
            "the {cluster}'s {resource} capacity: `.show capacity` does not list it"
        ));
    }
    Ok(row)
}

fn figure(cluster: &str, row: CapacityRow) -> CapacityFigure {
    CapacityFigure {
        cluster: cluster.to_owned(),
        row,
    }
}

/// Too few export slots for the continuous exports, and none free now.
fn export_findings(row: &CapacityRow, exports: usize, interval: Duration) -> Vec<Finding> {
    let finding = |problem: String, fix: &str| Finding {
        database: None,
        table: None,
        problem,
        fix: fix.to_owned(),
    };
    let total = u64::try_from(row.total).unwrap_or(0);
    let exports = exports as u64;
    let mut out = Vec::new();
    if exports > total {
        let problem = if total == 0 {
            format!(
                "protect runs {exports} continuous export(s), but the source cluster runs no export at all (`.show capacity`: {} total 0)",
                row.resource
            )
        } else {
            let turns = exports.div_ceil(total);
            format!(
                "protect runs {exports} continuous exports, all due every {} s, but the source cluster runs at most {total} at once (`.show capacity`: {} total {total}): they take {turns} turns per interval and keep up only while a run takes under {} s",
                interval.as_secs(),
                row.resource,
                interval.as_secs() / turns
            )
        };
        out.push(finding(problem, RAISE_EXPORT_CAPACITY));
    }
    if total > 0 && row.remaining <= 0 {
        out.push(finding(
            format!(
                "no export slot of the source cluster is free now (`.show capacity`: {} {} of {} in use): continuous exports and backfill batches wait for one",
                row.resource, row.consumed, row.total
            ),
            &format!(
                "see what holds them (`.show operations | where State == 'InProgress'`) and check again; if it persists, {RAISE_EXPORT_CAPACITY}"
            ),
        ));
    }
    out
}

/// No ingestion slot free on the restore target.
fn ingestion_finding(db: &DatabaseName, row: &CapacityRow) -> Option<Finding> {
    (row.remaining <= 0).then(|| Finding {
        database: Some(db.clone()),
        table: None,
        problem: format!(
            "the restore target has no ingestion slot free now (`.show capacity`: {} {} of {} in use): the restore's ingestions would only queue behind them",
            row.resource, row.consumed, row.total
        ),
        fix: "see what holds them (`.show operations | where State == 'InProgress'`) and restore once they finish, or give the target more ingestion slots (scale it, or raise IngestionCapacity in its capacity policy)".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn export(total: i64, consumed: i64) -> CapacityRow {
        CapacityRow {
            resource: "DataExport".into(),
            total,
            consumed,
            remaining: total - consumed,
        }
    }

    const FIVE_MINUTES: Duration = Duration::from_secs(300);

    #[test]
    fn exports_within_the_slots_are_no_finding() {
        assert_eq!(export_findings(&export(4, 1), 4, FIVE_MINUTES), []);
        assert_eq!(export_findings(&export(4, 0), 0, FIVE_MINUTES), []);
    }

    #[test]
    fn more_exports_than_slots_say_how_long_a_run_may_take() {
        let found = export_findings(&export(4, 0), 9, FIVE_MINUTES);
        assert_eq!(found.len(), 1, "{found:?}");
        // 9 exports in 4 slots: 3 turns of 100 s in a 300 s interval.
        assert!(
            found[0].problem.contains(
                "protect runs 9 continuous exports, all due every 300 s, but the source cluster runs at most 4 at once (`.show capacity`: DataExport total 4): they take 3 turns per interval and keep up only while a run takes under 100 s"
            ),
            "{}",
            found[0].problem
        );
        assert!(found[0].fix.contains("ExportCapacity"), "{}", found[0].fix);
        let none = export_findings(&export(0, 0), 1, FIVE_MINUTES);
        assert_eq!(none.len(), 1, "no slot at all is one finding, not two");
        assert!(none[0].problem.contains("runs no export at all"));
    }

    #[test]
    fn no_free_slot_now_is_a_finding() {
        let found = export_findings(&export(4, 4), 2, FIVE_MINUTES);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0]
                .problem
                .contains("(`.show capacity`: DataExport 4 of 4 in use)"),
            "{}",
            found[0].problem
        );
    }

    #[test]
    fn a_target_without_a_free_ingestion_slot() {
        let db = DatabaseName::new("DR").unwrap();
        let row = |consumed| CapacityRow {
            resource: "Ingestions".into(),
            total: 8,
            consumed,
            remaining: 8 - consumed,
        };
        assert_eq!(ingestion_finding(&db, &row(7)), None);
        let f = ingestion_finding(&db, &row(8)).unwrap();
        assert_eq!(f.database, Some(db));
        assert!(
            f.problem.contains("Ingestions 8 of 8 in use"),
            "{}",
            f.problem
        );
    }
}
