//! Table policies beyond IngestionTime: merge, retention, extent-tags retention,
//! partitioning and restricted view access. Kept as Kusto shows them (JSON), with the
//! parts kusto-sim acts on read from it.

use serde_json::{Value as Json, json};

use crate::error::SimError;
use crate::value::temporal::{TICKS_PER_DAY, format_datetime, format_timespan, parse_timespan};

const TICKS_PER_HOUR: i64 = TICKS_PER_DAY / 24;
/// The merge policy's default `MaxRangeInHours`: extents whose creation times are further
/// apart are not merged together.
const DEFAULT_MAX_RANGE_HOURS: i64 = 24;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TablePolicies {
    /// `ExtentsMergePolicy` as set (`None`: the default policy).
    pub merge: Option<Json>,
    pub retention: Option<Retention>,
    /// `ExtentTagsRetentionPolicy`: `[{"TagPrefix": "..", "RetentionPeriod": ".."}]`.
    pub extent_tags_retention: Option<Json>,
    pub partitioning: Option<Json>,
    pub restricted_view_access: bool,
    /// The caching policy's hot period, in ticks (`None`: the database's).
    pub caching_hot: Option<i64>,
    /// The update policy's entries (empty: none).
    pub update: Vec<super::update::UpdateRule>,
    /// The update policy as set, for `.show` (`None`: none).
    pub update_json: Option<Json>,
    /// The row-level security policy: whether it is enabled, and its query (`None`: none).
    pub row_level_security: Option<(bool, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retention {
    /// Ticks; `None` keeps data forever.
    pub soft_delete: Option<i64>,
    pub recoverability: bool,
}

impl Retention {
    pub fn to_json(self) -> Json {
        json!({
            "SoftDeletePeriod": self.soft_delete.map(format_timespan),
            "Recoverability": if self.recoverability { "Enabled" } else { "Disabled" },
        })
    }

    /// A retention policy from its JSON (`{"SoftDeletePeriod": "10.00:00:00", ...}`).
    pub fn from_json(policy: &Json, base: Option<Retention>) -> Result<Self, SimError> {
        let mut r = base.unwrap_or(Retention {
            soft_delete: None,
            recoverability: true,
        });
        let Some(fields) = policy.as_object() else {
            return Err(SimError::semantic(format!(
                "A retention policy is a JSON object, got {policy}"
            )));
        };
        for (key, value) in fields {
            match (key.as_str(), value) {
                ("SoftDeletePeriod", Json::Null) => r.soft_delete = None,
                ("SoftDeletePeriod", Json::String(s)) => {
                    r.soft_delete = Some(parse_timespan(s).ok_or_else(|| {
                        SimError::semantic(format!("SoftDeletePeriod '{s}' is not a timespan"))
                    })?);
                }
                ("Recoverability", Json::String(s)) => r.recoverability = recoverability(s)?,
                _ => {
                    return Err(SimError::semantic(format!(
                        "Unknown or invalid retention policy property '{key}': {value}"
                    )));
                }
            }
        }
        Ok(r)
    }
}

pub fn recoverability(word: &str) -> Result<bool, SimError> {
    match word.to_ascii_lowercase().as_str() {
        "enabled" => Ok(true),
        "disabled" => Ok(false),
        _ => Err(SimError::semantic(format!(
            "Recoverability must be 'enabled' or 'disabled', got '{word}'"
        ))),
    }
}

impl TablePolicies {
    /// Whether the merge policy lets the table's extents merge (`AllowMerge`, default true).
    pub fn allow_merge(&self) -> bool {
        self.merge
            .as_ref()
            .and_then(|p| p.get("AllowMerge"))
            .and_then(Json::as_bool)
            .unwrap_or(true)
    }

    /// The merge policy's `MaxRangeInHours`, in ticks.
    pub fn merge_max_range(&self) -> i64 {
        let hours = self
            .merge
            .as_ref()
            .and_then(|p| p.get("MaxRangeInHours"))
            .and_then(Json::as_i64)
            .unwrap_or(DEFAULT_MAX_RANGE_HOURS);
        hours.saturating_mul(TICKS_PER_HOUR)
    }

    /// Kusto refuses an ingestion whose `creationTime` the retention policy has already
    /// expired (permanent `BadRequest_CreationTimeEarlierThanSoftDeletePeriod`).
    pub fn check_creation_time(&self, table: &str, created: i64, now: i64) -> Result<(), SimError> {
        let Some(period) = self.retention.and_then(|r| r.soft_delete) else {
            return Ok(());
        };
        if created >= now.saturating_sub(period) {
            return Ok(());
        }
        Err(SimError::CreationTimeEarlierThanSoftDeletePeriod {
            table: table.to_string(),
            creation_time: format_datetime(created),
            soft_delete_period: format_timespan(period),
        })
    }

    /// `(TagPrefix, RetentionPeriod ticks)` pairs of the extent-tags retention policy.
    pub fn tag_retention(&self) -> Vec<(String, i64)> {
        let Some(Json::Array(rules)) = &self.extent_tags_retention else {
            return Vec::new();
        };
        rules
            .iter()
            .filter_map(|r| {
                let prefix = r.get("TagPrefix")?.as_str()?.to_string();
                let period = parse_timespan(r.get("RetentionPeriod")?.as_str()?)?;
                Some((prefix, period))
            })
            .collect()
    }
}

/// An extent-tags retention policy from its JSON text: an array of `TagPrefix` and
/// `RetentionPeriod` pairs.
pub fn parse_tag_retention(text: &str) -> Result<Json, SimError> {
    let policy: Json = serde_json::from_str(text).map_err(|e| {
        SimError::semantic(format!("The extent_tags_retention policy is not JSON: {e}"))
    })?;
    let valid = policy.as_array().is_some_and(|rules| {
        rules.iter().all(|r| {
            r.get("TagPrefix").and_then(Json::as_str).is_some()
                && r.get("RetentionPeriod")
                    .and_then(Json::as_str)
                    .and_then(parse_timespan)
                    .is_some()
        })
    });
    if !valid {
        return Err(SimError::semantic(format!(
            "The extent_tags_retention policy must be an array of {{\"TagPrefix\", \"RetentionPeriod\"}}, got {policy}"
        )));
    }
    Ok(policy)
}

/// A JSON object policy from its text (merge, partitioning).
pub fn parse_object(kind: &str, text: &str) -> Result<Json, SimError> {
    match serde_json::from_str::<Json>(text) {
        Ok(policy @ Json::Object(_)) => Ok(policy),
        Ok(other) => Err(SimError::semantic(format!(
            "The {kind} policy must be a JSON object, got {other}"
        ))),
        Err(e) => Err(SimError::semantic(format!(
            "The {kind} policy is not JSON: {e}"
        ))),
    }
}

/// `base` with `changes`' properties set over it (`.alter-merge`).
pub fn merged(base: Option<&Json>, changes: Json) -> Json {
    match (base, changes) {
        (Some(Json::Object(base)), Json::Object(changes)) => {
            let mut out = base.clone();
            out.extend(changes);
            Json::Object(out)
        }
        (_, changes) => changes,
    }
}
