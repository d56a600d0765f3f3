//! Harvest: copy the export's `exported-artifacts` into the catalog before Kusto forgets them
//! (it keeps that list 14 days).
//!
//! Exactly once: each harvest reads artifacts newer than the watermark minus an overlap
//! window (an export run may report a file a little late), skips paths already harvested in
//! that window, and appends the rest as catalog segment `next_segment` (If-None-Match). If a
//! worker dies after writing the segment but before saving state, the next harvest finds the
//! segment already there, absorbs it, and moves on; the table state itself is saved with an
//! ETag condition by the caller.

use std::collections::HashSet;

use time::{Duration, OffsetDateTime};

use super::ProtectError;
use super::state::HarvestState;
use crate::app::App;
use crate::ids::ExportName;
use crate::ids::TableRef;
use crate::kusto::{ExportedArtifactRow, Step, command};
use crate::storage::catalog::{Artifact, ArtifactSource, Catalog};

/// How far behind the watermark each harvest looks again.
const OVERLAP: Duration = Duration::hours(1);

/// Returns how many new artifacts were appended to the catalog.
pub async fn harvest(
    app: &App,
    t: &TableRef,
    export: &ExportName,
    h: &mut HarvestState,
) -> Result<usize, ProtectError> {
    let layout = &app.layout;
    let catalog = Catalog::new(&app.blobs, layout);
    let storage_err = |e| ProtectError::storage(format!("write the catalog of {t}"), e);
    while let Some(segment) = catalog
        .read_segment(&t.database, &t.table, h.next_segment)
        .await
        .map_err(storage_err)?
    {
        tracing::info!(database = %t.database, table = %t.table, segment = h.next_segment, "absorbing a catalog segment an earlier attempt wrote");
        absorb(h, &segment);
        h.next_segment += 1;
    }
    let fresh = new_artifacts(app, t, export, h).await?;
    if !fresh.is_empty() {
        catalog
            .append(&t.database, &t.table, h.next_segment, &fresh)
            .await
            .map_err(storage_err)?;
        absorb(h, &fresh);
        h.next_segment += 1;
    }
    prune(h);
    Ok(fresh.len())
}

async fn new_artifacts(
    app: &App,
    t: &TableRef,
    export: &ExportName,
    h: &HarvestState,
) -> Result<Vec<Artifact>, ProtectError> {
    let step = Step::table(t, "read exported artifacts");
    let since = h.watermark.map(|w| w - OVERLAP);
    let tables = step
        .mgmt(&app.kusto, &command::show_exported_artifacts(export, since))
        .await?;
    let rows = ExportedArtifactRow::all(&tables).map_err(|e| step.error(e))?;
    let container = &app.settings.storage.container;
    let mut fresh: Vec<Artifact> = Vec::new();
    // Paths taken in this harvest: one listing can repeat a file, and a linear scan per row
    // would make a large backlog quadratic.
    let mut taken = HashSet::new();
    let unknown_time = h.watermark.unwrap_or(OffsetDateTime::UNIX_EPOCH);
    for row in rows {
        let Some(located) =
            app.layout
                .artifact_from_url(&row.path, container, &t.database, &t.table)
        else {
            tracing::error!(database = %t.database, table = %t.table, path = row.path,
                "exported artifact lies outside the table's backup folder; not cataloged (check the external table's connection string)");
            continue;
        };
        if h.recent.contains_key(&located.path) || !taken.insert(located.path.clone()) {
            continue;
        }
        fresh.push(Artifact {
            path: located.path,
            day: located.day,
            rows: u64::try_from(row.num_records).unwrap_or(0),
            bytes: row.size_in_bytes.and_then(|b| u64::try_from(b).ok()),
            source: ArtifactSource::ContinuousExport {
                export: export.clone(),
            },
            // No time from Kusto: the watermark (the epoch before the first), never the
            // present, which would move the watermark past files not yet listed.
            produced_at: row.timestamp.unwrap_or(unknown_time),
        });
    }
    Ok(fresh)
}

fn absorb(h: &mut HarvestState, artifacts: &[Artifact]) {
    for a in artifacts {
        if h.recent
            .insert(a.path.clone(), a.produced_at.unix_timestamp())
            .is_none()
        {
            h.artifacts += 1;
            h.rows += a.rows;
        }
        h.watermark = Some(h.watermark.map_or(a.produced_at, |w| w.max(a.produced_at)));
    }
}

/// Forgets paths older than the overlap window: no later harvest reads that far back.
fn prune(h: &mut HarvestState) {
    if let Some(w) = h.watermark {
        let cutoff = (w - OVERLAP).unix_timestamp() - 1;
        h.recent.retain(|_, at| *at >= cutoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Day;

    fn artifact(path: &str, minute: i64) -> Artifact {
        Artifact {
            path: path.into(),
            day: Day::UNDATED,
            rows: 10,
            bytes: None,
            source: ArtifactSource::ContinuousExport {
                export: ExportName::new("e").unwrap(),
            },
            produced_at: time::macros::datetime!(2026-11-25 10:00 UTC) + Duration::minutes(minute),
        }
    }

    #[test]
    fn absorbing_twice_counts_once_and_prune_keeps_the_window() {
        let mut h = HarvestState::default();
        let seg = vec![artifact("a", 0), artifact("b", 90)];
        absorb(&mut h, &seg);
        absorb(&mut h, &seg);
        assert_eq!((h.artifacts, h.rows), (2, 20));
        prune(&mut h);
        assert!(!h.recent.contains_key("a"), "older than the window");
        assert!(h.recent.contains_key("b"));
        assert_eq!(h.watermark, Some(seg[1].produced_at));
    }
}
