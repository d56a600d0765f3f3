//! Update policies: when rows are ingested into a policy's `Source` table, its `Query` runs
//! over exactly those rows and the result is ingested into the table that holds the policy
//! (<https://learn.microsoft.com/en-us/kusto/management/update-policy>). `.move extents`
//! does not ingest, so it does not run them.
//!
//! kusto-sim runs queries of the form `Source | <operators>` only; any other query is
//! refused when the policy is set, so nothing accepted here fails later for lack of support.

use serde_json::Value as Json;

use crate::engine::{self, Ctx};
use crate::error::{SimError, not_supported};
use crate::parse::query::{Source, parse_query};
use crate::table::{Column, ResultTable};
use crate::value::Value;

/// One entry of a table's update policy.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateRule {
    pub source: String,
    pub query: String,
    pub enabled: bool,
    /// A failed query fails the source's ingestion too.
    pub transactional: bool,
}

/// The rules of an update policy's JSON text: an array of objects with `Source`, `Query`,
/// `IsEnabled`, and optionally `IsTransactional`, `PropagateIngestionProperties`,
/// `ManagedIdentity`.
pub fn parse_rules(text: &str) -> Result<Vec<UpdateRule>, SimError> {
    let policy: Json = serde_json::from_str(text)
        .map_err(|e| SimError::semantic(format!("The update policy is not JSON: {e}")))?;
    let Some(entries) = policy.as_array() else {
        return Err(SimError::semantic(format!(
            "The update policy must be a JSON array, got {policy}"
        )));
    };
    entries.iter().map(rule).collect()
}

fn rule(entry: &Json) -> Result<UpdateRule, SimError> {
    let bad = |what: &str| SimError::semantic(format!("Update policy {entry}: {what}"));
    let Some(fields) = entry.as_object() else {
        return Err(bad("an entry must be a JSON object"));
    };
    for key in fields.keys() {
        if ![
            "IsEnabled",
            "Source",
            "Query",
            "IsTransactional",
            "PropagateIngestionProperties",
            "ManagedIdentity",
        ]
        .contains(&key.as_str())
        {
            return Err(bad(&format!("unknown property '{key}'")));
        }
    }
    let text = |key: &str| {
        fields
            .get(key)
            .and_then(Json::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_string)
            .ok_or_else(|| bad(&format!("'{key}' must be a non-empty string")))
    };
    let flag = |key: &str| match fields.get(key) {
        None | Some(Json::Null) => Ok(false),
        Some(Json::Bool(b)) => Ok(*b),
        Some(_) => Err(bad(&format!("'{key}' must be true or false"))),
    };
    Ok(UpdateRule {
        source: text("Source")?,
        query: text("Query")?,
        enabled: flag("IsEnabled")?,
        transactional: flag("IsTransactional")?,
    })
}

/// Runs `rule`'s query over `rows` (shaped like `source_columns`): the rows to ingest into
/// the policy's table.
pub fn derive(
    rule: &UpdateRule,
    source_columns: &[Column],
    rows: Vec<Vec<Value>>,
    db_cursor: u64,
    now: i64,
) -> Result<ResultTable, SimError> {
    let query = parse_query(&rule.query)?;
    match &query.source {
        Source::Table(name) if *name == rule.source && query.options.is_empty() => {}
        _ => {
            return Err(not_supported(&format!(
                "update policy query not of the form `{} | ...`: {}",
                rule.source, rule.query
            )));
        }
    }
    let mut input = ResultTable::new(source_columns.to_vec());
    input.rows = rows;
    let mut ctx = Ctx::new(db_cursor);
    ctx.now = now;
    engine::run(input, &query.ops, &mut ctx)
}

/// Kusto refuses a policy whose query's output does not have the target's columns, in
/// order and type ("Query schema does not match table schema").
pub fn check_schema(
    rule: &UpdateRule,
    source_columns: &[Column],
    target: &str,
    target_columns: &[Column],
) -> Result<(), SimError> {
    let out = derive(rule, source_columns, Vec::new(), 0, 0)?;
    let shape = |cols: &[Column]| {
        cols.iter()
            .map(|c| format!("{}:{}", c.name, c.ty.kusto_name()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if shape(&out.columns) != shape(target_columns) {
        return Err(SimError::semantic(format!(
            "Update policy of table '{target}': the query's schema ({}) does not match the table's ({})",
            shape(&out.columns),
            shape(target_columns)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::ColumnType;

    #[test]
    fn rules_are_read_and_bad_ones_refused() {
        let rules = parse_rules(
            r#"[{"IsEnabled": true, "Source": "Raw", "Query": "Raw | project V", "IsTransactional": false, "PropagateIngestionProperties": false}]"#,
        )
        .unwrap();
        assert_eq!(rules[0].source, "Raw");
        assert!(rules[0].enabled && !rules[0].transactional);
        for bad in [
            "{}",
            "[1]",
            r#"[{"Source": "", "Query": "Raw"}]"#,
            r#"[{"Source": "Raw"}]"#,
            r#"[{"Source": "Raw", "Query": "Raw", "Bogus": 1}]"#,
            r#"[{"Source": "Raw", "Query": "Raw", "IsEnabled": "yes"}]"#,
            "not json",
        ] {
            assert!(parse_rules(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn derive_runs_the_query_over_the_new_rows_only() {
        let cols = vec![Column::new("V", ColumnType::Long)];
        let rule = UpdateRule {
            source: "Raw".into(),
            query: "Raw | where V > 1 | project W = V".into(),
            enabled: true,
            transactional: false,
        };
        let out = derive(
            &rule,
            &cols,
            vec![vec![Value::Long(1)], vec![Value::Long(2)]],
            0,
            0,
        )
        .unwrap();
        assert_eq!(out.rows, vec![vec![Value::Long(2)]]);
        let target = vec![Column::new("W", ColumnType::Long)];
        check_schema(&rule, &cols, "T", &target).unwrap();
        let other = vec![Column::new("W", ColumnType::String)];
        assert!(check_schema(&rule, &cols, "T", &other).is_err());
        let elsewhere = UpdateRule {
            query: "Other | take 1".into(),
            ..rule
        };
        assert!(derive(&elsewhere, &cols, Vec::new(), 0, 0).is_err());
    }
}
