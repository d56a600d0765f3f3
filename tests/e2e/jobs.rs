//! The job mechanics on real storage: a step's ETag-conditioned write (advanced, already done,
//! lost the race), a failure recorded in the state document, and a follow-up task that stays
//! invisible until its delay has passed.

use std::time::{Duration, Instant};

use adx_backup::ids::{DatabaseName, TableName, TableRef};
use adx_backup::job::{self, Change, RecordedFailure, StepDoc, StepOutcome};
use adx_backup::task::Task;
use serde::{Deserialize, Serialize};

use crate::harness::stack::Stack;

/// A job's own state enum, shaped like the ones backfill and restore will keep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state")]
enum Batch {
    Planned,
    Exporting { operation: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct BatchDoc {
    batch: Batch,
    failure: Option<RecordedFailure>,
}

fn planned() -> BatchDoc {
    BatchDoc {
        batch: Batch::Planned,
        failure: None,
    }
}

/// The step under test: start the export unless an earlier delivery already did.
fn start_export(operation: &'static str) -> impl FnOnce(&mut BatchDoc) -> Change {
    move |doc| match doc.batch {
        Batch::Planned => {
            doc.batch = Batch::Exporting {
                operation: operation.to_owned(),
            };
            Change::Made
        }
        Batch::Exporting { .. } => Change::AlreadyDone,
    }
}

#[tokio::test]
async fn two_workers_on_one_step_one_advances_the_other_loses_the_race() {
    let stack = Stack::start("Sales").await;
    let app = stack.app();
    app.ensure_storage().await.unwrap();
    let path = "backup/$state/jobs/bf-1/batches/000001.json";

    // Both read the document before either writes: a task delivered twice at once.
    let first = StepDoc::load(&app.blobs, path, planned).await.unwrap();
    let second = StepDoc::load(&app.blobs, path, planned).await.unwrap();
    assert_eq!(second.state().batch, Batch::Planned);
    let won = first
        .advance(&app.blobs, start_export("op-A"))
        .await
        .unwrap();
    let lost = second
        .advance(&app.blobs, start_export("op-B"))
        .await
        .unwrap();
    assert_eq!((won, lost), (StepOutcome::Advanced, StepOutcome::LostRace));

    // A later delivery reads the winner's state and finds the step done.
    let later = StepDoc::load(&app.blobs, path, planned).await.unwrap();
    let again = later
        .advance(&app.blobs, start_export("op-C"))
        .await
        .unwrap();
    assert_eq!(again, StepOutcome::AlreadyDone);

    // Read back independently: only the winner's write is stored.
    let (body, _) = app.blobs.read(path).await.unwrap();
    let stored: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        stored["batch"],
        serde_json::json!({"state": "Exporting", "operation": "op-A"})
    );

    // A failure lands in the document for `status`, keeping the state it has.
    let recorded = job::record_failure(
        &app.blobs,
        path,
        planned,
        |doc| &mut doc.failure,
        "export batch 000001",
        "Kusto ran low on memory",
    )
    .await
    .unwrap();
    let (body, _) = app.blobs.read(path).await.unwrap();
    let stored: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(stored["failure"]["step"], "export batch 000001");
    assert_eq!(stored["failure"]["message"], "Kusto ran low on memory");
    assert_eq!(stored["batch"]["operation"], "op-A");
    assert_eq!(recorded.message, "Kusto ran low on memory");
}

#[tokio::test]
async fn a_follow_up_task_becomes_visible_only_after_its_delay() {
    let stack = Stack::start("Sales").await;
    let app = stack.app();
    app.ensure_storage().await.unwrap();
    let task = Task::ProtectTableV1(TableRef {
        database: DatabaseName::new("Sales").unwrap(),
        table: TableName::new("Events").unwrap(),
    });
    let delay = Duration::from_secs(3);
    let sent_at = Instant::now();
    job::follow_up(&app.tasks, &task, delay).await.unwrap();

    let early = app.tasks.receive(1, Duration::from_secs(30)).await.unwrap();
    assert!(
        early.is_empty() || sent_at.elapsed() >= delay - Duration::from_secs(1),
        "visible before its delay"
    );
    let mut seen = None;
    while seen.is_none() && sent_at.elapsed() < delay + Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(250)).await;
        seen = app
            .tasks
            .receive(1, Duration::from_secs(30))
            .await
            .unwrap()
            .into_iter()
            .next();
    }
    let message = seen.expect("the follow-up arrives after its delay");
    // Queue visibility times have a resolution of one second, so the delay may end up to a
    // second early; an undelayed message would have been received at once, above.
    assert!(
        sent_at.elapsed() >= delay - Duration::from_secs(1),
        "arrived after {:?}",
        sent_at.elapsed()
    );
    assert_eq!(
        Task::decode_text(message.text.as_ref().unwrap()).unwrap(),
        task
    );
}
