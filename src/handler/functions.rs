//! The functions this handler serves, one per folder under `functions/`, and the binding each
//! reads. A test loads every `functions/*/function.json` and fails when the two drift.

use super::protocol::{Invocation, InvocationResponse, ProtocolError};
use crate::app::App;
use crate::task::NotATask;
use crate::worker::{self, Verdict, WorkerError};

/// A function the host can invoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// Timer: discover tables, snapshot schemas, fan one task per table out to the task queue.
    Protect,
    /// Queue trigger on the task queue: one fan-out step per message.
    Tasks,
    /// Queue trigger on the restore-request queue: one restore job per message.
    Restore,
    /// Timer: queue one verification task per table.
    Verify,
    /// HTTP GET (`authLevel: function`): the status document as JSON.
    Status,
}

/// The trigger binding a function reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Timer,
    Queue,
    Http,
}

/// Why an invocation failed. Every variant ends in a non-2xx answer, so the host retries.
#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    #[error(
        "queue message on {queue_function} is not a task this version understands: {source}; it will be retried and then kept in the poison queue for inspection"
    )]
    BadMessage {
        queue_function: &'static str,
        #[source]
        source: NotATask,
    },
    #[error(transparent)]
    Task(#[from] WorkerError),
    #[error(transparent)]
    Verify(#[from] crate::verify::VerifyError),
    #[error(transparent)]
    Status(#[from] crate::status::StatusError),
}

impl Function {
    pub const ALL: [Function; 5] = [
        Function::Protect,
        Function::Tasks,
        Function::Restore,
        Function::Verify,
        Function::Status,
    ];

    /// The folder name under `functions/`, which is also the route.
    pub fn name(self) -> &'static str {
        match self {
            Function::Protect => "protect",
            Function::Tasks => "tasks",
            Function::Restore => "restore",
            Function::Verify => "verify",
            Function::Status => "status",
        }
    }

    /// The trigger binding's `name` in function.json.
    pub fn binding(self) -> &'static str {
        match self {
            Function::Protect | Function::Verify => "timer",
            Function::Tasks => "task",
            Function::Restore => "request",
            Function::Status => "req",
        }
    }

    pub fn trigger(self) -> Trigger {
        match self {
            Function::Protect | Function::Verify => Trigger::Timer,
            Function::Tasks | Function::Restore => Trigger::Queue,
            Function::Status => Trigger::Http,
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    pub async fn run(
        self,
        app: &App,
        inv: Invocation,
    ) -> Result<InvocationResponse, FunctionError> {
        let value = inv.binding(self.binding())?;
        match self {
            Function::Protect => Ok(InvocationResponse::with_log(
                worker::fan_out_protect(app).await?.to_string(),
            )),
            Function::Tasks => answer(worker::deliver(app, value, inv.dequeue_count()).await),
            Function::Restore => answer(
                worker::deliver_restore_request(
                    app,
                    value,
                    inv.metadata_str("Id").as_deref(),
                    inv.dequeue_count(),
                )
                .await,
            ),
            Function::Verify => Ok(InvocationResponse::with_log(format!(
                "verify queued {} table(s)",
                crate::verify::fan_out(app).await?
            ))),
            Function::Status => {
                let filter = status_filter(value);
                let status = crate::status::collect(app, &filter).await?;
                Ok(InvocationResponse::http_json(
                    200,
                    serde_json::to_string_pretty(&status).unwrap_or_default(),
                ))
            }
        }
    }
}

/// `?database=D&table=T&job=J` of an HTTP trigger's request. The host passes `Query` as an
/// object, or as JSON text of one (docs/functions-host.md §http-trigger); a value that is not
/// a valid name is ignored rather than guessed at.
fn status_filter(req: &serde_json::Value) -> crate::status::Filter {
    let query = match &req["Query"] {
        serde_json::Value::String(text) => serde_json::from_str(text).unwrap_or_default(),
        other => other.clone(),
    };
    let get = |key: &str| query[key].as_str().map(str::to_owned);
    crate::status::Filter {
        database: get("database").and_then(|d| crate::ids::DatabaseName::new(d).ok()),
        table: get("table").and_then(|t| crate::ids::TableName::new(t).ok()),
        job: get("job").and_then(|j| crate::ids::JobId::new(j).ok()),
    }
}

/// The worker's verdict as the host needs it: a 2xx answer makes the host delete the message
/// ([`Settle::Delete`](worker::Settle)); a failed one makes it deliver the message again, and
/// poison it after the last delivery.
fn answer(verdict: Verdict) -> Result<InvocationResponse, FunctionError> {
    match verdict {
        Verdict::Done(_) | Verdict::Recorded(_) | Verdict::RecordedInJob { .. } => {
            Ok(InvocationResponse::with_log(verdict.to_string()))
        }
        Verdict::RetryLater(err) => Err(err.into()),
        Verdict::Poison(source) => Err(FunctionError::BadMessage {
            queue_function: Function::Tasks.name(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_status_query_is_read_as_text_or_object_and_bad_names_are_dropped() {
        let text =
            json!({"Query": "{\"database\":\"Sales\",\"table\":\"Orders\",\"job\":\"bf-1\"}"});
        let f = status_filter(&text);
        assert_eq!(f.database.unwrap().as_str(), "Sales");
        assert_eq!(f.table.unwrap().as_str(), "Orders");
        assert_eq!(f.job.unwrap().as_str(), "bf-1");
        let object = status_filter(&json!({"Query": {"table": "x'); .drop"}}));
        assert_eq!(object, crate::status::Filter::default());
        assert_eq!(status_filter(&json!({})), crate::status::Filter::default());
    }

    #[test]
    fn an_http_answer_goes_out_through_res() {
        let r = InvocationResponse::http_json(200, "{}".into());
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"Outputs": {"res": {"statusCode": 200,
                "headers": {"Content-Type": "application/json; charset=utf-8"}, "body": "{}"}},
                "Logs": [], "ReturnValue": null})
        );
    }
}
