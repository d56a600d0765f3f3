//! The one retry policy: exponential backoff with full jitter, bounded in attempts.
//!
//! The I/O layers (Kusto, storage) classify their errors; this module only asks
//! [`Retryable::is_transient`] and never looks at message text. Each retry is logged with the
//! operation's name so slow progress is visible.

use std::future::Future;
use std::time::Duration;

/// An error that knows whether trying again may help.
pub trait Retryable {
    /// True for throttling, 5xx, timeouts and network failures.
    fn is_transient(&self) -> bool;

    /// A server-suggested wait, if the error carried one.
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

/// How often and how long to retry transient failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first; 1 means no retry.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// A policy for tests: same shape, millisecond delays.
    pub fn fast(max_attempts: u32) -> Self {
        Self {
            max_attempts,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
        }
    }

    /// The wait before attempt `attempt + 1` (attempt counts from 1): a random point in
    /// `[0, min(max, base * 2^(attempt-1))]` so many workers do not retry in lockstep.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        let cap = exp.min(self.max_delay);
        cap.mul_f64(fastrand::f64())
    }

    /// Runs `op` until it succeeds, fails permanently, or the attempts are used up.
    /// Returns the last error in the two failure cases.
    pub async fn run<T, E, F, Fut>(&self, what: &str, mut op: F) -> Result<T, E>
    where
        E: Retryable + std::fmt::Display,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut attempt = 1;
        loop {
            match op().await {
                Ok(value) => return Ok(value),
                Err(err) if err.is_transient() && attempt < self.max_attempts => {
                    let wait = err
                        .retry_after()
                        .unwrap_or_else(|| self.delay(attempt))
                        .min(self.max_delay);
                    tracing::warn!(
                        operation = what,
                        attempt,
                        max_attempts = self.max_attempts,
                        wait_ms = wait.as_millis() as u64,
                        error = %err,
                        "transient failure, retrying"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }
}

impl RetryPolicy {
    /// As [`RetryPolicy::run`], with every attempt bounded by `attempt_timeout`: an attempt
    /// that gets no answer in time fails with `timed_out()`, which should be transient, so a
    /// silently dropped connection costs one attempt instead of hanging the caller.
    pub async fn run_bounded<T, E, F, Fut>(
        &self,
        what: &str,
        attempt_timeout: Duration,
        timed_out: impl Fn() -> E,
        mut op: F,
    ) -> Result<T, E>
    where
        E: Retryable + std::fmt::Display,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.run(what, || {
            let attempt = op();
            let timed_out = &timed_out;
            async move {
                tokio::time::timeout(attempt_timeout, attempt)
                    .await
                    .unwrap_or_else(|_| Err(timed_out()))
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[derive(Debug)]
    struct Fail(bool);
    impl std::fmt::Display for Fail {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "fail transient={}", self.0)
        }
    }
    impl Retryable for Fail {
        fn is_transient(&self) -> bool {
            self.0
        }
    }

    #[test]
    fn delay_is_bounded_by_cap() {
        let p = RetryPolicy::default();
        for attempt in 1..20 {
            assert!(p.delay(attempt) <= p.max_delay);
        }
        assert!(p.delay(1) <= p.base_delay);
    }

    #[tokio::test]
    async fn retries_transient_until_success() {
        let calls = AtomicU32::new(0);
        let out: Result<u32, Fail> = RetryPolicy::fast(5)
            .run("t", || async {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                if n < 3 { Err(Fail(true)) } else { Ok(n) }
            })
            .await;
        assert_eq!(out.unwrap(), 3);
    }

    #[tokio::test]
    async fn stops_on_permanent_and_on_budget() {
        let calls = AtomicU32::new(0);
        let out: Result<(), Fail> = RetryPolicy::fast(5)
            .run("t", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Fail(false))
            })
            .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let calls = AtomicU32::new(0);
        let out: Result<(), Fail> = RetryPolicy::fast(3)
            .run("t", || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Fail(true))
            })
            .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_hung_attempt_times_out_and_is_retried() {
        let calls = AtomicU32::new(0);
        let out: Result<u32, Fail> = RetryPolicy::fast(3)
            .run_bounded(
                "t",
                Duration::from_millis(20),
                || Fail(true),
                || async {
                    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                    if n == 1 {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                    Ok(n)
                },
            )
            .await;
        assert_eq!(
            out.unwrap(),
            2,
            "the first attempt hung, the second answered"
        );
    }
}
