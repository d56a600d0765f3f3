//! Settings of retention: how many days of each table's backup to keep, which month-firsts
//! to keep beyond them, and how much one prune pass may remove. Unset, nothing is pruned.

use std::collections::HashMap;

use super::{
    Env, KEY_PRUNE_MAX_DAYS, KEY_RETENTION_DAYS, KEY_RETENTION_MONTHLY, KEY_RETENTION_OVERRIDES,
    SettingsError, invalid,
};
use crate::ids::TableRef;

/// What a table keeps: the `days` most recent days (today and the `days − 1` before, by the
/// day's date) and, with `monthly_months`, the first day of each of that many months.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keep {
    pub days: u32,
    pub monthly_months: u32,
}

/// The policy in force for one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// No retention setting names the table: nothing is ever pruned.
    None,
    /// An override keeps the table whole (`Database/Table=forever`).
    Forever,
    Keep(Keep),
}

impl Policy {
    pub fn keep(self) -> Option<Keep> {
        match self {
            Policy::Keep(k) => Some(k),
            Policy::None | Policy::Forever => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionSettings {
    /// Days kept by every table without an override; None keeps everything.
    pub days: Option<u32>,
    /// Month-firsts kept beyond `days`, counted in months back from the current one.
    pub monthly_months: u32,
    /// Per `Database/Table`: its own number of days, or None to keep it forever.
    pub overrides: HashMap<String, Option<u32>>,
    /// At most this many days are pruned per table and pass; the rest go on the next pass.
    pub max_days_per_pass: usize,
}

impl RetentionSettings {
    /// The policy of `t`, or None when it keeps everything.
    pub fn keep(&self, t: &TableRef) -> Option<Keep> {
        self.policy(t).keep()
    }

    /// The policy in force for `t`: an override, else `AdxBackup__RetentionDays`, else none.
    pub fn policy(&self, t: &TableRef) -> Policy {
        let days = match self.overrides.get(&format!("{}/{}", t.database, t.table)) {
            Some(None) => return Policy::Forever,
            Some(Some(own)) => Some(*own),
            None => self.days,
        };
        days.map_or(Policy::None, |days| {
            Policy::Keep(Keep {
                days,
                monthly_months: self.monthly_months,
            })
        })
    }

    /// Whether any table has a policy (the timer queues prune tasks only then).
    pub fn any(&self) -> bool {
        self.days.is_some() || self.overrides.values().any(Option::is_some)
    }
}

pub(super) fn load_retention(env: &Env) -> Result<RetentionSettings, SettingsError> {
    Ok(RetentionSettings {
        days: env
            .get(KEY_RETENTION_DAYS)
            .map(|raw| days(KEY_RETENTION_DAYS, raw))
            .transpose()?,
        monthly_months: match env.get(KEY_RETENTION_MONTHLY) {
            None => 0,
            Some(raw) => raw.parse().map_err(|_| {
                invalid(
                    KEY_RETENTION_MONTHLY,
                    format!("expected a whole number of months, got {raw:?}"),
                )
            })?,
        },
        overrides: parse_overrides(env.get(KEY_RETENTION_OVERRIDES).unwrap_or(""))?,
        max_days_per_pass: match env.get(KEY_PRUNE_MAX_DAYS) {
            None => 31,
            Some(raw) => raw.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                invalid(
                    KEY_PRUNE_MAX_DAYS,
                    format!("expected a positive whole number, got {raw:?}"),
                )
            })?,
        },
    })
}

/// A number of days to keep: at least 1 (0 would prune today's backup as it is written).
fn days(key: &str, raw: &str) -> Result<u32, SettingsError> {
    raw.parse::<u32>().ok().filter(|d| *d > 0).ok_or_else(|| {
        invalid(
            key,
            format!("expected a number of days of at least 1, got {raw:?}"),
        )
    })
}

/// `Db/Table=90,Db/Other=forever`.
fn parse_overrides(raw: &str) -> Result<HashMap<String, Option<u32>>, SettingsError> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let (table, value) = item
                .split_once('=')
                .filter(|(t, _)| t.contains('/'))
                .ok_or_else(|| {
                    invalid(
                        KEY_RETENTION_OVERRIDES,
                        format!("{item:?} is not Database/Table=Days or Database/Table=forever"),
                    )
                })?;
            let value = value.trim();
            let keep = if value.eq_ignore_ascii_case("forever") {
                None
            } else {
                Some(days(KEY_RETENTION_OVERRIDES, value)?)
            };
            Ok((table.trim().to_owned(), keep))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{DatabaseName, TableName};

    fn load(pairs: &[(&str, &str)]) -> Result<RetentionSettings, SettingsError> {
        load_retention(&Env::from_pairs(
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        ))
    }

    fn t(db: &str, table: &str) -> TableRef {
        TableRef {
            database: DatabaseName::new(db).unwrap(),
            table: TableName::new(table).unwrap(),
        }
    }

    #[test]
    fn unset_keeps_everything() {
        let s = load(&[]).unwrap();
        assert!(!s.any());
        assert_eq!(s.keep(&t("Sales", "Orders")), None);
        assert_eq!(s.max_days_per_pass, 31);
    }

    #[test]
    fn overrides_win_over_the_default_and_forever_keeps_everything() {
        let s = load(&[
            (KEY_RETENTION_DAYS, "30"),
            (KEY_RETENTION_MONTHLY, "12"),
            (
                KEY_RETENTION_OVERRIDES,
                "Sales/Orders=90, Sales/Audit=FOREVER",
            ),
        ])
        .unwrap();
        let keep = |db, table| s.keep(&t(db, table)).map(|k| (k.days, k.monthly_months));
        assert_eq!(keep("Sales", "Orders"), Some((90, 12)));
        assert_eq!(keep("Sales", "Audit"), None);
        assert_eq!(s.policy(&t("Sales", "Audit")), Policy::Forever);
        assert_eq!(
            load(&[]).unwrap().policy(&t("Sales", "Audit")),
            Policy::None
        );
        assert_eq!(keep("Sales", "Other"), Some((30, 12)));
        assert_eq!(keep("Ops", "Orders"), Some((30, 12)));
        let only = load(&[(KEY_RETENTION_OVERRIDES, "Sales/Orders=7")]).unwrap();
        assert!(only.any());
        assert_eq!(only.keep(&t("Sales", "Other")), None);
    }

    #[test]
    fn bad_values_are_refused_with_their_key() {
        for (key, value) in [
            (KEY_RETENTION_DAYS, "0"),
            (KEY_RETENTION_DAYS, "-3"),
            (KEY_RETENTION_DAYS, "30d"),
            (KEY_RETENTION_MONTHLY, "x"),
            (KEY_RETENTION_OVERRIDES, "Orders=3"),
            (KEY_RETENTION_OVERRIDES, "Sales/Orders=0"),
            (KEY_PRUNE_MAX_DAYS, "0"),
        ] {
            match load(&[(key, value)]) {
                Err(SettingsError::Invalid { key: k, .. }) => assert_eq!(k, key, "{value}"),
                other => panic!("{key}={value}: {other:?}"),
            }
        }
    }
}
