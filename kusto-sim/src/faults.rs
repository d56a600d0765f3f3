//! Fault injection, deterministic for a given seed and request order.

use serde::{Deserialize, Serialize};

use crate::error::SimError;

/// Which faults fire. Rates are probabilities in [0, 1], drawn per request from a
/// generator seeded with `seed`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    pub seed: u64,
    /// An export of more rows than this fails with E_LOW_MEMORY_CONDITION.
    pub export_max_rows: Option<u64>,
    /// Share of requests answered 429.
    pub throttle_rate: f64,
    /// Share of requests answered 503.
    pub transient_rate: f64,
    /// Extra time every async operation stays InProgress and every continuous export run
    /// stays running (IsRunning, its files not yet in exported-artifacts).
    pub operation_latency_ms: u64,
    /// Continuous exports whose runs fail (`"*"` = all).
    pub fail_continuous_exports: Vec<String>,
    /// Continuous exports whose runs write their files and then fail, leaving the files in
    /// storage but out of `exported-artifacts` (`"*"` = all).
    pub fail_continuous_exports_after_write: Vec<String>,
    /// Container URLs (`http://host/account/container`) the cluster's identity is refused:
    /// every read, write and list there fails as storage's 403 makes it fail.
    pub deny_storage: Vec<String>,
    /// How far before the end of its run an exported artifact's `Timestamp` lies: a run's
    /// files show up in `exported-artifacts` stamped earlier than files already listed.
    pub artifact_report_lag_ms: u64,
    /// Lists a run's artifacts with a null `Timestamp`: the column is nullable like every
    /// Kusto column, and a reader must not trust it to be set.
    pub artifact_timestamps_missing: bool,
}

#[derive(Debug)]
pub struct Faults {
    pub config: FaultConfig,
    rng: fastrand::Rng,
    /// Requests answered 429 or 503 so far.
    pub injected: u64,
}

impl Faults {
    pub fn new(config: FaultConfig) -> Self {
        let rng = fastrand::Rng::with_seed(config.seed);
        Self {
            config,
            rng,
            injected: 0,
        }
    }

    /// The fault, if any, that this request hits. One draw per request keeps the sequence
    /// reproducible whatever the rates are.
    pub fn request_fault(&mut self, command_kind: &str) -> Option<SimError> {
        let draw = self.rng.f64();
        let fault = if draw < self.config.throttle_rate {
            Some(SimError::Throttled(command_kind.to_string()))
        } else if draw < self.config.throttle_rate + self.config.transient_rate {
            Some(SimError::Transient)
        } else {
            None
        };
        self.injected += u64::from(fault.is_some());
        fault
    }

    pub fn export_exceeds_memory(&self, rows: usize) -> bool {
        self.config
            .export_max_rows
            .is_some_and(|max| rows as u64 > max)
    }

    pub fn continuous_export_fails(&self, name: &str) -> bool {
        names(&self.config.fail_continuous_exports, name)
    }

    pub fn continuous_export_fails_after_write(&self, name: &str) -> bool {
        names(&self.config.fail_continuous_exports_after_write, name)
    }
}

fn names(list: &[String], name: &str) -> bool {
    list.iter().any(|n| n == "*" || n == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_faults() {
        let config = FaultConfig {
            seed: 7,
            throttle_rate: 0.3,
            transient_rate: 0.2,
            ..FaultConfig::default()
        };
        let run = || {
            let mut f = Faults::new(config.clone());
            (0..50)
                .map(|_| f.request_fault("Query").map(|e| e.http_status()))
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        assert!(a.contains(&Some(429)) && a.contains(&Some(503)) && a.contains(&None));
    }
}
