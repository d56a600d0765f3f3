//! Settings of reconcile: whether verify's findings are only reported or repaired, when a
//! day is closed, how many days one run repairs, and how long the files a swap superseded
//! are kept.

use std::time::Duration;

use super::{
    Env, KEY_RECONCILE, KEY_RECONCILE_MAX_DAYS, KEY_RECONCILE_SETTLE_DAYS,
    KEY_RECONCILE_SUPERSEDED_RETENTION, SettingsError, invalid,
};

/// What reconcile does with the days verify found drifting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReconcileMode {
    /// Nothing, not even the choice of days.
    Off,
    /// verify's findings only: the backup is left as it is.
    Report,
    /// Re-export the chosen days and swap them in.
    Apply,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileSettings {
    pub mode: ReconcileMode,
    /// A day is closed (reconcile may touch it) once its end is older than this, so rows
    /// that arrive late are not fought.
    pub settle: Duration,
    /// At most this many days are reconciled per table and verify run, largest drift first.
    pub max_days: usize,
    /// The files a swap superseded are deleted once the swap is older than this; None (unset
    /// or 0) keeps them, for the storage lifecycle policy to remove. A restore `asOf` before
    /// a swap whose superseded files were deleted is refused.
    pub superseded_retention: Option<Duration>,
}

pub(super) fn load_reconcile(env: &Env) -> Result<ReconcileSettings, SettingsError> {
    let mode = match env.get(KEY_RECONCILE) {
        None => ReconcileMode::Report,
        Some(v) if v.eq_ignore_ascii_case("off") => ReconcileMode::Off,
        Some(v) if v.eq_ignore_ascii_case("report") => ReconcileMode::Report,
        Some(v) if v.eq_ignore_ascii_case("apply") => ReconcileMode::Apply,
        Some(v) => {
            return Err(invalid(
                KEY_RECONCILE,
                format!("expected off, report or apply, got {v:?}"),
            ));
        }
    };
    let settle_days = whole(env, KEY_RECONCILE_SETTLE_DAYS, 2)?;
    let max_days = whole(env, KEY_RECONCILE_MAX_DAYS, 10)?;
    let retention = whole(env, KEY_RECONCILE_SUPERSEDED_RETENTION, 0)?;
    Ok(ReconcileSettings {
        superseded_retention: (retention > 0).then(|| Duration::from_secs(retention)),
        mode,
        settle: Duration::from_secs(settle_days.saturating_mul(86_400)),
        max_days: usize::try_from(max_days)
            .map_err(|_| invalid(KEY_RECONCILE_MAX_DAYS, "too large"))?,
    })
}

fn whole(env: &Env, key: &str, default: u64) -> Result<u64, SettingsError> {
    match env.get(key) {
        None => Ok(default),
        Some(raw) => raw
            .parse::<u64>()
            .map_err(|_| invalid(key, format!("expected a whole number, got {raw:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<ReconcileSettings, SettingsError> {
        load_reconcile(&Env::from_pairs(
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        ))
    }

    #[test]
    fn report_is_the_default_and_bad_values_are_refused() {
        let d = load(&[]).unwrap();
        assert_eq!(d.mode, ReconcileMode::Report);
        assert_eq!(d.settle, Duration::from_secs(2 * 86_400));
        assert_eq!(d.max_days, 10);
        assert_eq!(
            load(&[(KEY_RECONCILE, "APPLY")]).unwrap().mode,
            ReconcileMode::Apply
        );
        assert!(load(&[(KEY_RECONCILE, "yes")]).is_err());
        assert!(load(&[(KEY_RECONCILE_SETTLE_DAYS, "-1")]).is_err());
    }

    #[test]
    fn superseded_files_are_kept_unless_a_retention_is_set() {
        let keep = |v: &str| load(&[(KEY_RECONCILE_SUPERSEDED_RETENTION, v)]);
        assert_eq!(load(&[]).unwrap().superseded_retention, None);
        assert_eq!(keep("").unwrap().superseded_retention, None);
        assert_eq!(keep("0").unwrap().superseded_retention, None);
        assert_eq!(
            keep("604800").unwrap().superseded_retention,
            Some(Duration::from_secs(604_800))
        );
        assert!(keep("7d").is_err());
    }
}
