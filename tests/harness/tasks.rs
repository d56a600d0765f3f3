//! Working the task queue in process, as the host's queue trigger would, until no work is left.

use std::time::{Duration, Instant};

use adx_backup::app::App;
use adx_backup::worker::{self, Settle};

/// How long the queue must stay empty before the work counts as done.
const QUIET: Duration = Duration::from_millis(2500);

/// Works the task queue until it stays empty for [`QUIET`] and holds no message at all, not
/// even a delayed one (a backfill poll or a restore round sent for later would otherwise end
/// the drive early on a slow machine). Each message is delivered once or, with `twice`, a
/// second time before it is settled. Returns how many messages it took off the queue.
pub async fn drive(app: &App, twice: bool) -> usize {
    let mut delivered = 0;
    let mut idle_since = Instant::now();
    loop {
        let batch = app
            .tasks
            .receive(16, Duration::from_secs(30))
            .await
            .unwrap();
        if batch.is_empty() {
            if idle_since.elapsed() >= QUIET && app.tasks.approximate_count().await.unwrap() == 0 {
                return delivered;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        idle_since = Instant::now();
        for msg in batch {
            delivered += 1;
            let text = msg.text.clone().unwrap();
            let count = u64::from(msg.dequeue_count);
            if twice {
                let first = worker::deliver_text(app, &text, Some(count)).await;
                assert!(
                    !matches!(first.settle(count), Settle::Poison),
                    "{text}: {first}"
                );
            }
            let verdict = worker::deliver_text(app, &text, Some(count)).await;
            match verdict.settle(count) {
                Settle::Delete => app.tasks.delete(&msg.id, &msg.pop_receipt).await.unwrap(),
                Settle::Redeliver => {
                    app.tasks
                        .update_visibility(&msg.id, &msg.pop_receipt, Duration::ZERO)
                        .await
                        .unwrap();
                }
                Settle::Poison => panic!("{text}: {verdict}"),
            }
        }
    }
}
