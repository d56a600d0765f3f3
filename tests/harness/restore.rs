//! Running a restore the way production runs it: a request posted on the restore queue, the
//! restore and task queues worked by the Functions host emulator (the built handler process),
//! and the target cluster's queued-ingestion consumer run between passes. Shared by the
//! restore test modules; the round trip also kills the worker mid-step through a
//! [`QueueGate`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use adx_backup::app::App;
use adx_backup::ids::JobId;
use adx_backup::restore::{self, state::RestoreJob};
use adx_backup::retry::RetryPolicy;
use adx_backup::storage::TaskQueue;
use kusto_sim::table::ResultTable;
use kusto_sim::{IngestionReport, Server};

use crate::harness::gate::QueueGate;
use crate::harness::host::{FunctionsHost, Shape};
use crate::harness::stack::Stack;

/// How the emulated host delivers messages in a run.
#[derive(Clone, Copy, PartialEq)]
pub enum Delivery {
    Once,
    /// Every task message invoked twice at once, every ingestion message on the target's queue
    /// doubled before the target's consumer runs, and the target's extents merged after
    /// every pass (merged extents carry the union of their tags).
    Twice,
}

/// One restore job being worked: the request queue, the handler process, and what the
/// target's consumer did so far.
pub struct RestoreRun<'a> {
    stack: &'a Stack,
    app: &'a App,
    target: &'a Server,
    requests: TaskQueue,
    host: FunctionsHost,
    delivery: Delivery,
    /// The request's target database (empty when the request does not name one).
    target_db: String,
    /// The target's consumer passes, summed.
    pub ingestion: IngestionReport,
    /// Extent merges the target made during the run.
    pub merges: usize,
}

impl<'a> RestoreRun<'a> {
    /// Starts a handler and posts `text` on the restore queue.
    pub async fn post(
        stack: &'a Stack,
        app: &'a App,
        target: &'a Server,
        text: &str,
        delivery: Delivery,
    ) -> RestoreRun<'a> {
        let host = FunctionsHost::start(&stack.settings).await;
        let requests = restore_requests(app).await;
        app.tasks.ensure_exists().await.unwrap();
        requests.send(text, None).await.unwrap();
        let target_db = serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|r| r["target"]["database"].as_str().map(str::to_owned))
            .unwrap_or_default();
        RestoreRun {
            stack,
            app,
            target,
            requests,
            host,
            delivery,
            target_db,
            ingestion: IngestionReport::default(),
            merges: 0,
        }
    }

    /// One pass: the restore queue, the task queue, then the target's consumer.
    pub async fn pass(&mut self) {
        work(
            &self.host,
            &self.requests,
            "restore",
            "request",
            self.delivery,
        )
        .await;
        work(&self.host, &self.app.tasks, "tasks", "task", self.delivery).await;
        self.ingest().await;
    }

    /// One pass in which the handler process is killed as soon as `gate` holds an ingestion
    /// message it is sending: the messages it was working on are released for redelivery,
    /// as the host's queue listener does when its worker dies. Returns whether it was killed
    /// (no send reached the gate's limit in this pass otherwise).
    pub async fn pass_killing_at(&mut self, gate: &QueueGate) -> bool {
        work(
            &self.host,
            &self.requests,
            "restore",
            "request",
            self.delivery,
        )
        .await;
        let done = tokio::sync::Notify::new();
        let killed = AtomicBool::new(false);
        let tasks = async {
            work(&self.host, &self.app.tasks, "tasks", "task", self.delivery).await;
            done.notify_one();
        };
        let killer = async {
            tokio::select! {
                _ = gate.held() => {
                    self.host.kill();
                    killed.store(true, Ordering::SeqCst);
                }
                _ = done.notified() => {}
            }
        };
        futures::join!(tasks, killer);
        killed.load(Ordering::SeqCst)
    }

    /// A fresh handler process, as the host starts one after its worker died.
    pub async fn restart_handler(&mut self) {
        self.host = FunctionsHost::start(&self.stack.settings).await;
    }

    /// The target's consumer, once (with `Delivery::Twice`: every ingestion message doubled
    /// first, and the target's extents merged after).
    pub async fn ingest(&mut self) {
        if self.delivery == Delivery::Twice {
            double_ingestion_messages(self.target, &self.target_db).await;
        }
        let r = self.target.state().run_queued_ingestion_now().await;
        self.ingestion.messages += r.messages;
        self.ingestion.succeeded += r.succeeded;
        self.ingestion.skipped += r.skipped;
        self.ingestion.failed += r.failed;
        if self.delivery == Delivery::Twice {
            self.merges += self.target.state().merge_extents_now().len();
        }
    }

    /// Passes until job `job` ends; panics after `limit`.
    pub async fn until_final(&mut self, job: &str, limit: Duration) -> RestoreJob {
        let job = JobId::new(job).unwrap();
        let started = Instant::now();
        loop {
            self.pass().await;
            if let Ok(state) = restore::load_job(self.app, &job).await
                && state.status.is_final()
            {
                assert!(
                    self.delivery == Delivery::Once || self.merges > 0,
                    "the target merged extents during the restore"
                );
                return state;
            }
            assert!(
                started.elapsed() < limit,
                "restore {job} did not end within {limit:?}: {:?}",
                restore::load_job(self.app, &job).await
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// The app's restore request queue, created if missing.
pub async fn restore_requests(app: &App) -> TaskQueue {
    let requests = TaskQueue::named(
        &app.settings.storage,
        &app.settings.restore.request_queue,
        RetryPolicy::fast(3),
    )
    .unwrap();
    requests.ensure_exists().await.unwrap();
    requests
}

/// Posts `text` on the restore queue and works every queue (restore, tasks, the target's
/// ingestion) through the host emulator until the job ends.
pub async fn run_restore(
    stack: &Stack,
    app: &App,
    target: &Server,
    text: &str,
    job: &str,
    delivery: Delivery,
) -> RestoreJob {
    RestoreRun::post(stack, app, target, text, delivery)
        .await
        .until_final(job, Duration::from_secs(120))
        .await
}

/// One pass over a queue, as several workers at once: every visible message invoked
/// concurrently with the others (and, with `Delivery::Twice`, two copies of it at the same
/// time), deleted when the function succeeded, released at once when it failed.
async fn work(host: &FunctionsHost, queue: &TaskQueue, function: &str, binding: &str, d: Delivery) {
    let batch = queue.receive(32, Duration::from_secs(30)).await.unwrap();
    let copies = if d == Delivery::Twice { 2 } else { 1 };
    let runs = batch.iter().map(|msg| async move {
        let text = msg.text.clone().unwrap();
        let invocations = (0..copies)
            .map(|_| host.invoke_queue(function, binding, &text, msg.dequeue_count, Shape::Host));
        let ok = futures::future::join_all(invocations)
            .await
            .iter()
            .all(|v| v.succeeded());
        if ok {
            queue.delete(&msg.id, &msg.pop_receipt).await.unwrap();
        } else {
            queue
                .update_visibility(&msg.id, &msg.pop_receipt, Duration::ZERO)
                .await
                .unwrap();
        }
    });
    futures::future::join_all(runs).await;
}

/// Every message waiting on the target's ingestion queues, sent again.
async fn double_ingestion_messages(target: &Server, db: &str) {
    for q in ingestion_queues(target, db).await {
        for msg in q.receive(32, Duration::from_secs(1)).await.unwrap() {
            let text = msg.text.unwrap();
            q.send(&text, None).await.unwrap();
        }
    }
}

/// The ingestion queues the target's ingest endpoint hands out for database `db`.
pub async fn ingestion_queues(target: &Server, db: &str) -> Vec<TaskQueue> {
    let resources = mgmt(target, db, ".get ingestion resources").await;
    resources
        .rows
        .iter()
        .filter(|row| row[0].to_kusto_string() == "SecuredReadyForAggregationQueue")
        .map(|row| {
            let url = url::Url::parse(&row[1].to_kusto_string()).unwrap();
            TaskQueue::from_sas_url(&url, RetryPolicy::fast(3)).unwrap()
        })
        .collect()
}

/// A management command on `db` of `sim`, run in-process (inspection, not the product).
pub async fn mgmt(sim: &Server, db: &str, csl: &str) -> ResultTable {
    sim.state()
        .mgmt(db, csl)
        .await
        .unwrap_or_else(|e| panic!("{csl}: {e}"))
}

/// A query's rows, each as its debug text, sorted: comparable across clusters.
pub async fn query(sim: &Server, db: &str, csl: &str) -> Vec<String> {
    let mut rows: Vec<String> = sim
        .state()
        .query(db, csl)
        .await
        .unwrap_or_else(|e| panic!("{csl}: {e}"))
        .primary
        .rows
        .iter()
        .map(|r| format!("{r:?}"))
        .collect();
    rows.sort();
    rows
}
