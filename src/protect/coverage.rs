//! Coverage: noticing when the continuous export may have left a hole in a table's backup.
//!
//! The export covers the rows after its StartCursor. When the export is dropped and created
//! again, or altered (the docs do not say whether altering keeps the cursor, so it is not
//! trusted), Kusto reports a new StartCursor once the new export has run. The rows committed
//! after the old StartCursor and at or before the new one, and ingested after the old
//! export's `ExportedTo`, were exported by neither: that window is recorded as a gap, with
//! why, and closed by a backfill of exactly it.
//!
//! Disabling and re-enabling an export keeps its cursor, and a failing run keeps it too, so
//! the export catches up by itself; neither leaves a gap in the data.

use time::OffsetDateTime;

use super::state::{Gap, TableState};
use crate::ids::Cursor;
use crate::kusto::ContinuousExportRow;

/// Compares the export as it stands with what the state saw before; records a gap when its
/// StartCursor moved. Returns a line for the table's change list when it found one.
pub fn observe(
    state: &mut TableState,
    export: &ContinuousExportRow,
    now: OffsetDateTime,
) -> Option<String> {
    let current = export
        .start_cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(Cursor::new);
    let mut found = None;
    match (&state.export_start_cursor, current) {
        (None, Some(c)) => state.export_start_cursor = Some(c),
        (Some(old), Some(new)) if *old != new => {
            let gap = Gap {
                found_at: now,
                reason: format!(
                    "the continuous export {} was re-created or altered: its StartCursor moved from {old} to {new}, and the rows in between were exported by neither export",
                    export.name
                ),
                after_cursor: old.clone(),
                ingested_after: state.export_exported_to,
                until_cursor: new.clone(),
            };
            found = Some(format!("found a gap in coverage: {}", gap.reason));
            state.gaps.push(gap);
            state.export_start_cursor = Some(new);
            state.export_exported_to = None;
        }
        _ => {}
    }
    // ExportedTo of the export whose StartCursor is recorded; a new export that has not run
    // yet reports none, which must not erase what the old one reached.
    if export.exported_to.is_some() && state.export_start_cursor.is_some() {
        state.export_exported_to = export.exported_to;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{DatabaseName, ExportName, TableName, TableRef};
    use time::macros::datetime;

    fn row(start: Option<&str>, exported_to: Option<OffsetDateTime>) -> ContinuousExportRow {
        ContinuousExportRow {
            name: ExportName::new("adxbk_T").unwrap(),
            external_table: "adxbk_T".into(),
            query: "['T']".into(),
            interval: None,
            disabled: false,
            last_run_result: None,
            last_run_time: None,
            exported_to,
            start_cursor: start.map(str::to_owned),
        }
    }

    fn state() -> TableState {
        TableState::new(&TableRef {
            database: DatabaseName::new("Sales").unwrap(),
            table: TableName::new("T").unwrap(),
        })
    }

    #[test]
    fn a_moved_start_cursor_is_a_gap_from_the_old_export_to_the_new() {
        let now = datetime!(2026-11-25 10:00 UTC);
        let mut s = state();
        // A new export: no StartCursor until its first run.
        assert_eq!(observe(&mut s, &row(Some(""), None), now), None);
        assert_eq!(s.export_start_cursor, None);
        assert_eq!(observe(&mut s, &row(Some("100"), None), now), None);
        let t1 = datetime!(2026-11-25 09:00 UTC);
        assert_eq!(observe(&mut s, &row(Some("100"), Some(t1)), now), None);
        assert!(s.gaps.is_empty());
        // Dropped and re-created: the new export has not run, its ExportedTo is unknown.
        assert_eq!(observe(&mut s, &row(Some(""), None), now), None);
        assert_eq!(
            s.export_exported_to,
            Some(t1),
            "kept until the new export reports"
        );
        let found = observe(&mut s, &row(Some("250"), None), now).unwrap();
        assert!(found.contains("from 100 to 250"), "{found}");
        assert_eq!(
            s.gaps,
            vec![Gap {
                found_at: now,
                reason: s.gaps[0].reason.clone(),
                after_cursor: Cursor::new("100"),
                ingested_after: Some(t1),
                until_cursor: Cursor::new("250"),
            }]
        );
        assert_eq!(s.export_start_cursor, Some(Cursor::new("250")));
        // Seen again: no second gap.
        assert_eq!(observe(&mut s, &row(Some("250"), None), now), None);
        assert_eq!(s.gaps.len(), 1);
    }
}
