//! The data-management side of queued ingestion: `.get ingestion resources`, `.get kusto
//! identity token`, and `.show ingestion failures` (what the engine recorded).

use uuid::Uuid;

use crate::backend::Backend;
use crate::blob::account_sas_for;
use crate::error::SimError;
use crate::state::IngestionResources;
use crate::state::ingestion::{
    FAILURE_RETENTION, FAILURES_SCHEMA, IDENTITY_TOKEN_SCHEMA, RESOURCES_SCHEMA,
};
use crate::table::ResultTable;
use crate::value::Value;

/// How long the container SAS handed to clients stays valid (SDKs refresh hourly).
const CLIENT_SAS_SECONDS: i64 = 6 * 3600;

/// The queues and temp container, created on first use. The status table is not offered:
/// kusto-sim does not report to Azure Tables (see README, divergences).
pub async fn ingestion_resources(sim: &Backend) -> Result<ResultTable, SimError> {
    let resources = ensure_resources(sim).await?;
    let queues = sim.queues.as_ref().ok_or_else(no_queues)?;
    let account = sim.config.queue_account().ok_or_else(no_queues)?;
    let mut out = ResultTable::with_schema(RESOURCES_SCHEMA);
    let mut row = |kind: &str, root: String| {
        out.push(vec![Value::String(kind.into()), Value::String(root)]);
    };
    for q in &resources.ready_queues {
        row("SecuredReadyForAggregationQueue", queues.client_url(q)?);
    }
    row(
        "SuccessfulIngestionsQueue",
        queues.client_url(&resources.success_queue)?,
    );
    row(
        "FailedIngestionsQueue",
        queues.client_url(&resources.failure_queue)?,
    );
    let sas = account_sas_for(account, "b", CLIENT_SAS_SECONDS)?;
    row(
        "TempStorage",
        format!(
            "{}/{}?{sas}",
            account.blob_endpoint, resources.temp_container
        ),
    );
    Ok(out)
}

pub async fn identity_token(sim: &Backend) -> Result<ResultTable, SimError> {
    let resources = ensure_resources(sim).await?;
    let mut out = ResultTable::with_schema(IDENTITY_TOKEN_SCHEMA);
    out.push(vec![Value::String(resources.authorization_context)]);
    Ok(out)
}

/// Failures of the last 14 days, optionally of one operation.
pub fn failures(sim: &Backend, operation_id: Option<Uuid>) -> ResultTable {
    let now = sim.now();
    let cluster = sim.cluster();
    let mut out = ResultTable::with_schema(FAILURES_SCHEMA);
    cluster
        .ingestion_failures
        .iter()
        .filter(|f| now - f.failed_on < FAILURE_RETENTION)
        .filter(|f| operation_id.is_none_or(|id| f.operation_id == id))
        .for_each(|f| f.push_row(&mut out));
    out
}

fn no_queues() -> SimError {
    SimError::semantic(
        "queued ingestion needs a queue endpoint: start kusto-sim with --queue-endpoint \
         (KUSTO_SIM_QUEUE_ENDPOINT) or Config::with_queue_endpoint",
    )
}

/// The resources, creating their queues and container the first time.
async fn ensure_resources(sim: &Backend) -> Result<IngestionResources, SimError> {
    let _one_at_a_time = sim.queued_ingestion.lock().await;
    if let Some(existing) = sim.cluster().ingestion_resources.clone() {
        return Ok(existing);
    }
    let queues = sim.queues.as_ref().ok_or_else(no_queues)?;
    let account = sim.config.queue_account().ok_or_else(no_queues)?;
    let resources = IngestionResources::new();
    for q in resources
        .ready_queues
        .iter()
        .chain([&resources.success_queue, &resources.failure_queue])
    {
        queues.create(q).await?;
    }
    let container = sim.blob.locate(&format!(
        "{}/{}",
        account.blob_endpoint, resources.temp_container
    ))?;
    sim.blob.create_container(&container).await?;
    sim.cluster().ingestion_resources = Some(resources.clone());
    Ok(resources)
}
