//! `.execute database script <| ...`: sequential, non-transactional; stops at the first
//! failure, which fails the command only with `ThrowOnErrors=true`.

use uuid::Uuid;

use super::{command_type, run};
use crate::backend::Backend;
use crate::error::SimError;
use crate::parse::command::{Command, Props, parse_command};
use crate::table::ResultTable;
use crate::value::Value;

const RESULT: &str =
    "(OperationId: guid, CommandType: string, CommandText: string, Result: string, Reason: string)";

pub async fn execute(
    sim: &Backend,
    db: &str,
    props: &Props,
    script: &str,
) -> Result<ResultTable, SimError> {
    let continue_on_errors = props.get_bool("ContinueOnErrors").unwrap_or(false);
    let throw_on_errors = props.get_bool("ThrowOnErrors").unwrap_or(false);
    if continue_on_errors && throw_on_errors {
        return Err(SimError::semantic(
            "ContinueOnErrors and ThrowOnErrors are mutually exclusive",
        ));
    }
    let mut out = ResultTable::with_schema(RESULT);
    let mut failed = false;
    for text in split_commands(script) {
        if failed {
            out.push(row(
                "Skipped",
                &text,
                "Skipped",
                "A previous command failed",
            ));
            continue;
        }
        let outcome = match parse_command(&text) {
            Ok(parsed) if !parsed.pipe.is_empty() => {
                Err(SimError::semantic("piped commands can't run in a script"))
            }
            Ok(parsed) if is_show(&parsed.command) => {
                out.push(row(command_type(&parsed.command), &text, "Skipped", ""));
                continue;
            }
            Ok(parsed) => {
                let kind = command_type(&parsed.command);
                run(sim, db, parsed.command).await.map(|_| kind)
            }
            Err(e) => Err(e),
        };
        match outcome {
            Ok(kind) => out.push(row(kind, &text, "Completed", "")),
            Err(e) if throw_on_errors => return Err(e),
            Err(e) => {
                out.push(row("", &text, "Failed", &e.to_string()));
                failed = !continue_on_errors;
            }
        }
    }
    Ok(out)
}

fn is_show(c: &Command) -> bool {
    command_type(c) == "Show"
}

fn row(kind: &str, text: &str, result: &str, reason: &str) -> Vec<Value> {
    vec![
        Value::Guid(Uuid::new_v4()),
        Value::String(kind.to_string()),
        Value::String(text.to_string()),
        Value::String(result.to_string()),
        Value::String(reason.to_string()),
    ]
}

/// Each command starts on a line whose first non-blank character is `.`.
fn split_commands(script: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in script.lines() {
        if line.trim_start().starts_with('.') || out.is_empty() {
            out.push(line.to_string());
        } else if let Some(last) = out.last_mut() {
            last.push('\n');
            last.push_str(line);
        }
    }
    out.into_iter()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_start_on_dot_lines() {
        let s =
            ".create table A (a:long)\n\n.create-merge table B (b:string)\n  with (folder='x')\n";
        assert_eq!(
            split_commands(s),
            vec![
                ".create table A (a:long)",
                ".create-merge table B (b:string)\n  with (folder='x')"
            ]
        );
    }
}
