//! A `.show` listing piped into `where <name column> == '<name>'` keeps at most the one
//! object of that name, so it is answered from that object instead of from the whole list.
//!
//! adx-backup checks each table with `.show external tables | where TableName == '..'` and
//! `.show continuous-exports | where Name == '..'`. Building every row to keep one made each
//! check cost O(objects), a pass over N tables O(N²): at 2,000 tables these two commands were
//! over three quarters of kusto-sim's time, and 10,000 tables could not be set up in the
//! benchmark. The answer does not change: the narrowed list holds every row the filter keeps
//! (names are the keys of the lists, and `==` on strings is exact), in list order, and the
//! pipe then runs in full over it, that `where` included.

use crate::parse::command::Command;
use crate::parse::expr::{BinOp, Expr};
use crate::parse::query::Op;
use crate::value::Value;

/// `command` narrowed to the one object the pipe's first `where` asks for, or as it was.
pub fn narrow(command: Command, pipe: &[Op]) -> Command {
    let Some(Op::Where(filter)) = pipe.first() else {
        return command;
    };
    match command {
        Command::ShowExternalTables { only: None } => Command::ShowExternalTables {
            only: equal_to(filter, "TableName"),
        },
        Command::ShowContinuousExports { only: None } => Command::ShowContinuousExports {
            only: equal_to(filter, "Name"),
        },
        other => other,
    }
}

/// The string `column` must equal for `filter` to hold: only the plain `column == 'text'`
/// (either way round). Anything else (`=~`, `has`, `and`, other columns) lists everything,
/// so no other predicate has to be reasoned about.
fn equal_to(filter: &Expr, column: &str) -> Option<String> {
    let Expr::Bin(BinOp::Eq, left, right) = filter else {
        return None;
    };
    match (left.as_ref(), right.as_ref()) {
        (Expr::Col(c), Expr::Lit(Value::String(text)))
        | (Expr::Lit(Value::String(text)), Expr::Col(c))
            if c == column =>
        {
            Some(text.clone())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Backend;
    use crate::commands::{MgmtResult, execute, run};
    use crate::config::{AZURITE_ENDPOINT, Config};
    use crate::engine::{self, Ctx};
    use crate::parse::command::parse_command;
    use crate::table::ResultTable;

    const DB: &str = "db";

    /// Tables, external tables and exports with names that differ only in case, in a quote,
    /// or as a prefix, so a lookup that is not exact shows.
    async fn cluster() -> std::sync::Arc<Backend> {
        let sim = Backend::new(Config::new(&[DB], AZURITE_ENDPOINT));
        for (i, name) in ["T", "t", "T2", "O'Brien", "Tx"].into_iter().enumerate() {
            let t = quoted(name);
            let ext = quoted(&format!("bk_{name}"));
            let ce = quoted(&format!("ce_{name}"));
            for csl in [
                format!(".create table {t} (Timestamp:datetime, Id:long)"),
                format!(
                    ".create external table {ext} (Timestamp:datetime, Id:long) kind=storage dataformat=parquet (h@'{AZURITE_ENDPOINT}/c/{i}') with (docstring='doc {i}')"
                ),
                format!(
                    ".create-or-alter continuous-export {ce} over ({t}) to table {ext} with (intervalBetweenRuns=5m) <| {t}"
                ),
            ] {
                execute(&sim, DB, &csl).await.expect(&csl);
            }
        }
        sim
    }

    fn quoted(name: &str) -> String {
        format!("['{}']", name.replace('\'', "\\'"))
    }

    /// The answer built the old way: every row listed, then the whole pipe run over it.
    async fn listed_then_filtered(sim: &Backend, csl: &str) -> ResultTable {
        let parsed = parse_command(csl).expect(csl);
        let all = run(sim, DB, parsed.command).await.expect(csl);
        engine::run(all, &parsed.pipe, &mut Ctx::new(0)).expect(csl)
    }

    async fn answered(sim: &Backend, csl: &str) -> ResultTable {
        match execute(sim, DB, csl).await.expect(csl) {
            MgmtResult::Query(q) => q.primary,
            MgmtResult::Command(t) => t,
        }
    }

    #[tokio::test]
    async fn a_narrowed_listing_answers_what_the_whole_list_filtered_answers() {
        let sim = cluster().await;
        let mut texts = Vec::new();
        for name in ["T", "t", "T2", "O\\'Brien", "Tx", "missing", ""] {
            texts.push(format!(
                ".show external tables | where TableName == 'bk_{name}'"
            ));
            texts.push(format!(
                ".show external tables | where 'bk_{name}' == TableName | project TableName, DocString"
            ));
            texts.push(format!(
                ".show continuous-exports | where Name == 'ce_{name}'"
            ));
            texts.push(format!(
                ".show continuous-exports | where Name == 'ce_{name}' | where ExternalTableName == 'bk_T' | count"
            ));
        }
        let mut found = 0;
        for csl in &texts {
            let expected = listed_then_filtered(&sim, csl).await;
            assert_eq!(answered(&sim, csl).await, expected, "{csl}");
            found += expected.rows.len();
        }
        // Every existing name was found once per form (the `count` form always answers one
        // row), so the comparison was not only between empty answers.
        assert_eq!(found, 5 * 3 + 7);
    }

    #[test]
    fn only_the_plain_equality_on_the_name_column_narrows() {
        let narrowed = |csl: &str| {
            let parsed = parse_command(csl).expect(csl);
            narrow(parsed.command, &parsed.pipe)
        };
        assert_eq!(
            narrowed(".show external tables | where TableName == 'x'"),
            Command::ShowExternalTables {
                only: Some("x".into())
            }
        );
        assert_eq!(
            narrowed(".show continuous-exports | where 'x' == Name | project Name"),
            Command::ShowContinuousExports {
                only: Some("x".into())
            }
        );
        for csl in [
            ".show external tables",
            ".show external tables | where TableName =~ 'x'",
            ".show external tables | where Folder == 'x'",
            ".show external tables | where TableName == 'x' and Folder == 'y'",
            ".show external tables | project TableName | where TableName == 'x'",
            ".show continuous-exports | where Name != 'x'",
            ".show continuous-exports | where Name has 'x'",
        ] {
            let parsed = parse_command(csl).expect(csl);
            assert_eq!(
                narrow(parsed.command.clone(), &parsed.pipe),
                parsed.command,
                "{csl}"
            );
        }
    }
}
