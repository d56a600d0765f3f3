//! What the backup's protection policies (soft delete, versioning, version-level immutability;
//! infra/app/storage.bicep) need from the app, checked on Azurite, which implements none of
//! them: the app never deletes a blob, and overwrites only its state documents and the schema
//! pointer, always guarded by an ETag. Write-once blobs (data, catalog segments, schema
//! snapshots) are never rewritten, so a WORM policy can hold them from the moment they exist.

use std::collections::BTreeMap;

use adx_backup::protect;
use adx_backup::storage::blob::ETag;
use futures::TryStreamExt;

use crate::harness::data::{events_stack, ingest};
use crate::harness::stack::Stack;

/// Every blob of the backup container, by path, with its ETag.
async fn blobs(app: &adx_backup::app::App) -> BTreeMap<String, ETag> {
    app.blobs
        .list("")
        .map_ok(|b| (b.path, b.etag))
        .try_collect()
        .await
        .unwrap()
}

/// Protect, export what was ingested, protect again (which harvests it).
async fn cycle(stack: &Stack, app: &adx_backup::app::App, day: u32) {
    protect::run_once(app).await.unwrap();
    stack.run_exports().await;
    let rows: Vec<String> = (0..3)
        .map(|n| format!("2026-03-{day:02}T00:00:0{n}Z,{n}"))
        .collect();
    ingest(stack, "Events", &rows).await;
    stack.run_exports().await;
    protect::run_once(app).await.unwrap();
}

#[tokio::test]
async fn only_state_documents_and_the_schema_pointer_are_ever_overwritten() {
    let stack = events_stack().await;
    let app = stack.app();
    cycle(&stack, &app, 1).await;
    let before = blobs(&app).await;

    // A second day of data and a schema change: new data files, catalog segment, snapshot.
    stack
        .kusto(".alter-merge table Events (Extra:string)")
        .await;
    cycle(&stack, &app, 2).await;
    let after = blobs(&app).await;

    let rewritable = |path: &str| {
        path.starts_with("backup/$state/")
            || (path.starts_with("backup/$schema/") && path.ends_with("/latest.json"))
    };
    let mut rewritten = Vec::new();
    for (path, etag) in &before {
        match after.get(path) {
            None => panic!("{path} was deleted; the app must never delete a backup blob"),
            Some(now) if now != etag => rewritten.push(path.clone()),
            Some(_) => {}
        }
    }
    let unexpected: Vec<_> = rewritten.iter().filter(|p| !rewritable(p)).collect();
    assert!(
        unexpected.is_empty(),
        "write-once blobs were rewritten: {unexpected:?}"
    );
    // Not vacuous: the state and the schema pointer did change, and write-once blobs were added.
    assert!(
        rewritten
            .iter()
            .any(|p| p.starts_with("backup/$state/tables/")),
        "{rewritten:?}"
    );
    assert!(
        rewritten.iter().any(|p| p.ends_with("/latest.json")),
        "{rewritten:?}"
    );
    let added: Vec<_> = after.keys().filter(|p| !before.contains_key(*p)).collect();
    for kind in ["/$catalog/", "/$schema/", ".parquet"] {
        assert!(
            added.iter().any(|p| p.contains(kind)),
            "a new {kind} blob: {added:?}"
        );
    }
}
