//! One worker decides what happens to a delivered message; these tests drive the same
//! deliveries through both places that apply its verdict: the Functions queue route (through
//! the host emulator, which deletes the message after a 2xx answer and otherwise delivers it
//! again, or poisons it after the last delivery) and run-local's poller (one batch at a time,
//! on a real queue). Kusto failures come from kusto-sim's fault control endpoint: every
//! request answered 503 is a transient failure; a table that does not exist is a permanent one.

use std::time::Duration;

use adx_backup::app::App;
use adx_backup::handler::local;
use adx_backup::ids::{DatabaseName, TableName};
use adx_backup::protect::{Protection, TableState};
use adx_backup::retry::RetryPolicy;
use adx_backup::storage::TaskQueue;
use adx_backup::task::MAX_DEQUEUE_COUNT;
use serde_json::json;

use crate::harness::host::{FunctionsHost, Shape, Verdict};
use crate::harness::stack::Stack;

/// How long run-local leaves a failed message hidden in these tests.
const RETRY_AFTER: Duration = Duration::from_secs(1);

fn task(table: &str) -> String {
    json!({"kind": "ProtectTableV1", "database": "Sales", "table": table}).to_string()
}

async fn stack_with_tables() -> Stack {
    let stack = Stack::start("Sales").await;
    for table in ["Events", "Orders"] {
        stack
            .kusto(&format!(
                ".create table {table} (Timestamp:datetime, Id:long)"
            ))
            .await;
    }
    stack
}

/// The in-process app run-local's poller works with; fast Kusto retries keep the test short.
async fn local_app(stack: &Stack) -> (App, TaskQueue) {
    let mut app = stack.app();
    app.kusto = app.kusto.with_retry_policy(RetryPolicy::fast(2));
    app.ensure_storage().await.unwrap();
    let poison = app.tasks.poison_queue().unwrap();
    poison.ensure_exists().await.unwrap();
    (app, poison)
}

/// From now on kusto-sim answers every request 503: a transient failure.
async fn kusto_fails_transiently(stack: &Stack) {
    let answer = reqwest::Client::new()
        .post(format!("{}/sim/faults", stack.sim.url()))
        .body(json!({ "transient_rate": 1.0 }).to_string())
        .send()
        .await
        .unwrap();
    assert!(
        answer.status().is_success(),
        "set faults: {}",
        answer.status()
    );
}

async fn state(app: &App, table: &str) -> Option<TableState> {
    let path = app.layout.table_state(
        &DatabaseName::new("Sales").unwrap(),
        &TableName::new(table).unwrap(),
    );
    let (body, _) = app.blobs.read_opt(&path).await.unwrap()?;
    Some(serde_json::from_slice(&body).unwrap())
}

async fn recorded_error(app: &App, table: &str) -> Option<String> {
    state(app, table)
        .await
        .and_then(|s| s.last_error)
        .map(|e| e.message)
}

/// Takes every message visible on `queue` off it, as (text, dequeue count).
async fn drain(queue: &TaskQueue) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    for m in queue.receive(32, Duration::from_secs(60)).await.unwrap() {
        queue.delete(&m.id, &m.pop_receipt).await.unwrap();
        out.push((m.text.unwrap(), m.dequeue_count));
    }
    out
}

/// Puts `text` on the queue so that run-local's next receive is its `delivery`-th: earlier
/// deliveries are taken and released again at once, as failed invocations would.
async fn enqueue_at_delivery(queue: &TaskQueue, text: &str, delivery: u32) {
    queue.send(text, None).await.unwrap();
    for _ in 1..delivery {
        let msg = queue
            .receive(1, Duration::from_secs(60))
            .await
            .unwrap()
            .pop()
            .expect("the message");
        queue
            .update_visibility(&msg.id, &msg.pop_receipt, Duration::ZERO)
            .await
            .unwrap();
    }
}

async fn invoke(host: &FunctionsHost, message: &str, dequeue_count: u32) -> Verdict {
    host.invoke_queue("tasks", "task", message, dequeue_count, Shape::Host)
        .await
}

/// A queue invocation as the host sends it when the trigger gives no DequeueCount.
async fn invoke_without_dequeue_count(host: &FunctionsHost, message: &str) -> Verdict {
    let body = json!({"Data": {"task": serde_json::to_string(message).unwrap()}, "Metadata": {}});
    host.post("tasks", body.to_string().into_bytes()).await
}

#[tokio::test]
async fn done_permanent_failures_and_non_tasks_get_the_same_verdict_on_both_routes() {
    let stack = stack_with_tables().await;
    let (app, poison) = local_app(&stack).await;
    let host = FunctionsHost::start(&stack.settings).await;

    // Done -> acknowledged (the host deletes it) / deleted by the poller.
    let done = invoke(&host, &task("Events"), 1).await;
    assert!(done.succeeded(), "{}", done.raw);
    enqueue_at_delivery(&app.tasks, &task("Orders"), 1).await;
    assert_eq!(
        local::poll_once(&app, &poison, RETRY_AFTER).await.unwrap(),
        1
    );
    for table in ["Events", "Orders"] {
        let protection = state(&app, table).await.unwrap().protection;
        assert!(
            matches!(protection, Protection::Protected { .. }),
            "{table}"
        );
    }

    // A permanent failure on the FIRST delivery -> recorded and acknowledged at once.
    let permanent = invoke(&host, &task("Missing"), 1).await;
    assert!(permanent.succeeded(), "{}", permanent.raw);
    enqueue_at_delivery(&app.tasks, &task("Gone"), 1).await;
    assert_eq!(
        local::poll_once(&app, &poison, RETRY_AFTER).await.unwrap(),
        1
    );
    for table in ["Missing", "Gone"] {
        let error = recorded_error(&app, table).await.expect("recorded");
        assert!(error.contains(table), "{table}: {error}");
    }

    // No DequeueCount: still judged (here a permanent failure, recorded).
    let no_count = invoke_without_dequeue_count(&host, &task("Absent")).await;
    assert!(no_count.succeeded(), "{}", no_count.raw);
    assert!(recorded_error(&app, "Absent").await.is_some());

    // Not a task -> poison: the host fails it (and poisons it after its last delivery); the
    // poller moves it to the poison queue at once.
    let bad = invoke(&host, "this is not a task", 1).await;
    assert_eq!(bad.status, 500, "{}", bad.raw);
    assert!(bad.raw.contains("not a task"), "{}", bad.raw);
    enqueue_at_delivery(&app.tasks, "this is not a task", 1).await;
    assert_eq!(
        local::poll_once(&app, &poison, RETRY_AFTER).await.unwrap(),
        1
    );

    // Everything the poller took was settled: nothing waits for redelivery, only the
    // non-task is in the poison queue.
    tokio::time::sleep(RETRY_AFTER + Duration::from_millis(500)).await;
    assert_eq!(drain(&app.tasks).await, vec![]);
    let poisoned: Vec<String> = drain(&poison).await.into_iter().map(|(t, _)| t).collect();
    assert_eq!(poisoned, vec!["this is not a task".to_owned()]);
}

#[tokio::test]
async fn transient_failures_are_redelivered_until_the_last_delivery_then_recorded() {
    let stack = stack_with_tables().await;
    let (app, poison) = local_app(&stack).await;
    let host = FunctionsHost::start(&stack.settings).await;
    kusto_fails_transiently(&stack).await;
    let last = MAX_DEQUEUE_COUNT as u32;

    // Transient on an early delivery -> failed, so the message comes again; nothing recorded.
    let early = invoke(&host, &task("Events"), 1).await;
    assert_eq!(early.status, 500, "{}", early.raw);
    let no_count = invoke_without_dequeue_count(&host, &task("Events")).await;
    assert_eq!(
        no_count.status, 500,
        "taken as a first delivery: {}",
        no_count.raw
    );
    assert_eq!(recorded_error(&app, "Events").await, None);

    enqueue_at_delivery(&app.tasks, &task("Orders"), 1).await;
    assert_eq!(
        local::poll_once(&app, &poison, RETRY_AFTER).await.unwrap(),
        1
    );
    assert_eq!(recorded_error(&app, "Orders").await, None);
    tokio::time::sleep(RETRY_AFTER + Duration::from_millis(500)).await;
    let again = drain(&app.tasks).await;
    assert_eq!(again, vec![(task("Orders"), 2)], "redelivered, not deleted");
    assert_eq!(drain(&poison).await, vec![]);

    // Transient on the LAST delivery -> recorded and acknowledged, not poisoned.
    let final_try = invoke(&host, &task("Events"), last).await;
    assert!(final_try.succeeded(), "{}", final_try.raw);
    enqueue_at_delivery(&app.tasks, &task("Orders"), last).await;
    assert_eq!(
        local::poll_once(&app, &poison, RETRY_AFTER).await.unwrap(),
        1
    );
    for table in ["Events", "Orders"] {
        let error = recorded_error(&app, table).await.expect("recorded");
        assert!(error.contains(table), "{table}: {error}");
    }
    // Deleted, not left for redelivery, and not poisoned.
    tokio::time::sleep(RETRY_AFTER + Duration::from_millis(500)).await;
    assert_eq!(drain(&app.tasks).await, vec![]);
    assert_eq!(drain(&poison).await, vec![]);
}
