//! Materialized views a restore re-creates from a snapshot.
//!
//! A view is created once its source table's rows are in, with `backfill=true`, so it is
//! built from every restored record; the docs make the `async` form a must with backfill
//! ("the create command must be `async`"): it answers with an operation id to poll with
//! `.show operations`. `ifnotexists` makes a create of a view that exists a no-op ("no change
//! is applied, even if the new definition doesn't match")
//! (<https://learn.microsoft.com/kusto/management/materialized-views/materialized-view-create>).
//!
//! The view's query is code, as a function's body is: it is checked, not escaped
//! ([`KqlCode`]: strings and comments end and brackets close in order), so it stays inside
//! the `{ ... }` it is put in and nothing after it can be read as another command. Every
//! name is `['..']` and every property a literal, as in the rest of the builder.

use std::time::Duration;

use super::literal::{bool_literal, ident, string_literal, timespan_literal};
use super::{Command, KqlCode};
use crate::ids::{TableName, ViewName};

/// A materialized view as a snapshot defines it, with the properties that shape what it
/// holds. Properties of the creation itself (`backfill`, `effectiveDateTime`, `Concurrency`,
/// ...) are the restore's to choose, not the snapshot's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaterializedViewSpec {
    pub name: ViewName,
    pub source: TableName,
    /// The query, without its braces.
    pub query: KqlCode,
    pub folder: String,
    pub docstring: String,
    /// `lookback`: how far back duplicates are looked for (`arg_max`/`arg_min`/`take_any`).
    pub lookback: Option<Duration>,
    /// `autoUpdateSchema`: the view follows its source's columns.
    pub auto_update_schema: Option<bool>,
    /// `updateExtentsCreationTime`: the backfill dates extents by the view's datetime key.
    pub update_extents_creation_time: Option<bool>,
}

/// `.create async ifnotexists materialized-view with (backfill=true, folder='..',
/// docString='..', ...) ['V'] on table ['T'] { query }` → one row, `OperationId`. `source` is
/// the source table's name in the target.
pub fn create_materialized_view_backfilled(
    view: &MaterializedViewSpec,
    source: &TableName,
) -> Command {
    let mut props = vec![
        "backfill=true".to_owned(),
        format!("folder={}", string_literal(&view.folder)),
        format!("docString={}", string_literal(&view.docstring)),
    ];
    if let Some(span) = view.lookback {
        props.push(format!("lookback={}", timespan_literal(span)));
    }
    if let Some(on) = view.auto_update_schema {
        props.push(format!("autoUpdateSchema={}", bool_literal(on)));
    }
    if let Some(on) = view.update_extents_creation_time {
        props.push(format!("updateExtentsCreationTime={}", bool_literal(on)));
    }
    Command::mgmt(format!(
        ".create async ifnotexists materialized-view with ({}) {} on table {} {{ {}{}",
        props.join(", "),
        ident(view.name.as_str()),
        ident(source.as_str()),
        view.query.as_str(),
        view.query.then(" }"),
    ))
}

/// `.show materialized-views | where Name == 'V'`: the view's row, or none.
/// (<https://learn.microsoft.com/kusto/management/materialized-views/materialized-view-show-command>)
pub fn find_materialized_view(name: &ViewName) -> Command {
    Command::mgmt(format!(
        ".show materialized-views | where Name == {}",
        string_literal(name.as_str())
    ))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub fn view_spec(name: &str) -> MaterializedViewSpec {
        MaterializedViewSpec {
            name: ViewName::new(name).expect("valid"),
            source: TableName::new("Raw").expect("valid"),
            query: KqlCode::new(
                "Raw\n| summarize Lines = count() by Day = bin(Timestamp, 1d) // by day",
            )
            .expect("code"),
            folder: "Views".to_owned(),
            docstring: "it's {".to_owned(),
            lookback: None,
            auto_update_schema: None,
            update_extents_creation_time: None,
        }
    }

    #[test]
    fn a_view_is_created_once_with_backfill_and_its_query_stays_in_its_braces() {
        let target = TableName::new("Raw 2").expect("valid");
        assert_eq!(
            create_materialized_view_backfilled(&view_spec("Daily x-1"), &target).as_str(),
            ".create async ifnotexists materialized-view with (backfill=true, folder='Views', docString='it\\'s {') ['Daily x-1'] on table ['Raw 2'] { Raw\n| summarize Lines = count() by Day = bin(Timestamp, 1d) // by day\n}"
        );
        let shaped = MaterializedViewSpec {
            query: KqlCode::new("Raw | summarize arg_max(Timestamp, *) by Id").expect("code"),
            lookback: Some(Duration::from_secs(6 * 3600)),
            auto_update_schema: Some(true),
            update_extents_creation_time: Some(false),
            ..view_spec("Last")
        };
        assert_eq!(
            create_materialized_view_backfilled(&shaped, &target).as_str(),
            ".create async ifnotexists materialized-view with (backfill=true, folder='Views', docString='it\\'s {', lookback=time(0.06:00:00.0000000), autoUpdateSchema=true, updateExtentsCreationTime=false) ['Last'] on table ['Raw 2'] { Raw | summarize arg_max(Timestamp, *) by Id }"
        );
        assert_eq!(
            find_materialized_view(&ViewName::new("V 1").expect("valid")).as_str(),
            ".show materialized-views | where Name == 'V 1'"
        );
    }
}
