//! `run-local`: the same functions without the Functions host, for laptops, containers and
//! VMs. Internal timers play the `protect` and `verify` timer triggers and a poller plays the
//! `tasks` queue trigger, with the host's rules: a message is deleted once its task succeeds, becomes
//! visible again after `retry_after` when it fails, and moves to `<queue>-poison` once it has
//! failed [`MAX_DEQUEUE_COUNT`] times. Messages that are not tasks at all go to the poison
//! queue at once: no retry can make them one. A second poller plays the `restore` trigger on
//! the restore-request queue, with the same rules.

use std::sync::Arc;
use std::time::Duration;

use crate::app::App;
use crate::storage::{ReceivedMessage, StorageError, TaskQueue};
use crate::task::MAX_DEQUEUE_COUNT;
use crate::worker::{self, Settle, Verdict};

/// How `run-local` paces itself.
#[derive(Debug, Clone, Copy)]
pub struct LocalOptions {
    /// Time between protect runs (the first runs at start).
    pub protect_every: Duration,
    /// Time between verify runs (the first runs one period after start, when there is
    /// something to verify).
    pub verify_every: Duration,
    /// How long a failed message stays hidden before it is tried again.
    pub retry_after: Duration,
}

/// Messages taken per poll, as the host's queue `batchSize`.
const BATCH: u32 = 8;
/// How long an empty queue is left alone before the next poll.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// Runs until Ctrl-C or SIGTERM.
pub async fn run(app: Arc<App>, opts: LocalOptions) -> Result<(), StorageError> {
    app.ensure_storage().await?;
    let poison = app.tasks.poison_queue()?;
    poison.ensure_exists().await?;
    let requests = TaskQueue::named(
        &app.settings.storage,
        &app.settings.restore.request_queue,
        crate::retry::RetryPolicy::default(),
    )?;
    requests.ensure_exists().await?;
    let requests_poison = requests.poison_queue()?;
    requests_poison.ensure_exists().await?;
    tracing::info!(
        every_s = opts.protect_every.as_secs(),
        queue = app.tasks.name(),
        "run-local started"
    );
    tokio::select! {
        _ = timer(&app, opts.protect_every) => {}
        _ = verify_timer(&app, opts.verify_every) => {}
        _ = poll(&app, &poison, opts.retry_after) => {}
        _ = poll_requests(&app, &requests, &requests_poison, opts.retry_after) => {}
        _ = super::shutdown_signal() => tracing::info!("run-local stopping"),
    }
    Ok(())
}

async fn timer(app: &App, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match worker::fan_out_protect(app).await {
            Ok(summary) => tracing::info!(%summary, "protect timer ran"),
            Err(err) => {
                tracing::error!(error = %err, "protect timer failed; it runs again next tick")
            }
        }
    }
}

/// As the `verify` timer function: one verification task per table on the task queue.
async fn verify_timer(app: &App, every: Duration) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match crate::verify::fan_out(app).await {
            Ok(tables) => tracing::info!(tables, "verify timer ran"),
            Err(err) => {
                tracing::error!(error = %err, "verify timer failed; it runs again next tick")
            }
        }
    }
}

async fn poll(app: &App, poison: &TaskQueue, retry_after: Duration) {
    loop {
        match poll_once(app, poison, retry_after).await {
            Ok(0) => tokio::time::sleep(IDLE_POLL).await,
            Ok(_) => {}
            Err(err) => {
                tracing::error!(error = %err, "could not read the task queue; polling again shortly");
                tokio::time::sleep(IDLE_POLL).await;
            }
        }
    }
}

async fn poll_requests(app: &App, requests: &TaskQueue, poison: &TaskQueue, retry_after: Duration) {
    loop {
        let taken = match requests.receive(BATCH, retry_after).await {
            Ok(batch) => {
                let taken = batch.len();
                for msg in batch {
                    if let Err(err) = handle_request(app, requests, poison, msg).await {
                        tracing::error!(error = %err, "could not settle a restore request; it will be delivered again");
                    }
                }
                taken
            }
            Err(err) => {
                tracing::error!(error = %err, "could not read the restore queue; polling again shortly");
                0
            }
        };
        if taken == 0 {
            tokio::time::sleep(IDLE_POLL).await;
        }
    }
}

/// A restore request: the worker files it as a job (or a rejected one) and says how to settle.
async fn handle_request(
    app: &App,
    requests: &TaskQueue,
    poison: &TaskQueue,
    msg: ReceivedMessage,
) -> Result<(), StorageError> {
    let text = match &msg.text {
        Ok(text) => text.clone(),
        Err(undecodable) => undecodable.raw.clone(),
    };
    let dequeue_count = u64::from(msg.dequeue_count);
    let verdict = worker::deliver_restore_request(
        app,
        &serde_json::Value::String(text.clone()),
        Some(&msg.id),
        Some(dequeue_count),
    )
    .await;
    match verdict.settle(dequeue_count) {
        Settle::Delete => {
            tracing::info!(message_id = %msg.id, outcome = %verdict, "restore request settled");
            requests.delete(&msg.id, &msg.pop_receipt).await
        }
        Settle::Redeliver => {
            tracing::warn!(message_id = %msg.id, dequeue_count, error = %verdict, "restore request failed; it will be delivered again");
            Ok(())
        }
        Settle::Poison => {
            tracing::error!(message_id = %msg.id, error = %verdict, "restore request moved to the poison queue");
            poison.send(&text, None).await?;
            requests.delete(&msg.id, &msg.pop_receipt).await
        }
    }
}

/// Takes one batch of messages off the task queue and settles each as the worker's verdict
/// says; returns how many it took. Public so a test can drive the poller one batch at a time.
pub async fn poll_once(
    app: &App,
    poison: &TaskQueue,
    retry_after: Duration,
) -> Result<usize, StorageError> {
    let batch = app.tasks.receive(BATCH, retry_after).await?;
    let taken = batch.len();
    for msg in batch {
        if let Err(err) = handle(app, poison, msg).await {
            tracing::error!(error = %err, "could not settle a task message; it will be delivered again");
        }
    }
    Ok(taken)
}

/// Runs one message's task and settles the message: delete, leave for redelivery, or poison.
async fn handle(app: &App, poison: &TaskQueue, msg: ReceivedMessage) -> Result<(), StorageError> {
    let text = match &msg.text {
        Ok(text) => text.clone(),
        Err(undecodable) => {
            tracing::error!(message_id = %msg.id, reason = undecodable.reason, "task message is not base64 text; moved to the poison queue");
            return to_poison(app, poison, &msg, &undecodable.raw).await;
        }
    };
    let dequeue_count = u64::from(msg.dequeue_count);
    let verdict = worker::deliver_text(app, &text, Some(dequeue_count)).await;
    match (verdict.settle(dequeue_count), &verdict) {
        (Settle::Delete, _) => {
            tracing::info!(message_id = %msg.id, outcome = %verdict, "task settled");
            app.tasks.delete(&msg.id, &msg.pop_receipt).await
        }
        (Settle::Redeliver, _) => {
            tracing::warn!(message_id = %msg.id, dequeue_count, error = %verdict, "task failed; it will be delivered again");
            Ok(())
        }
        (Settle::Poison, Verdict::Poison(_)) => {
            tracing::error!(message_id = %msg.id, error = %verdict, "moved to the poison queue");
            to_poison(app, poison, &msg, &text).await
        }
        (Settle::Poison, _) => {
            tracing::error!(message_id = %msg.id, dequeue_count, max = MAX_DEQUEUE_COUNT, error = %verdict, "task failed on its last delivery; moved to the poison queue");
            to_poison(app, poison, &msg, &text).await
        }
    }
}

async fn to_poison(
    app: &App,
    poison: &TaskQueue,
    msg: &ReceivedMessage,
    text: &str,
) -> Result<(), StorageError> {
    poison.send(text, None).await?;
    app.tasks.delete(&msg.id, &msg.pop_receipt).await
}
