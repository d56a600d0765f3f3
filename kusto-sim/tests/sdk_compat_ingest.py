"""Microsoft's Python queued ingest client (azure-kusto-ingest) against a running kusto-sim
and Azurite.

Usage: python sdk_compat_ingest.py http://127.0.0.1:PORT DATABASE
Needs AZURITE_CONNECTION_STRING (the dev account kusto-sim signs its storage access with).
Exits non-zero (an assertion or SDK error) if the SDK's queued ingestion doesn't land rows
through kusto-sim's ingestion queues exactly as documented.
"""

import os
import sys
import urllib.request
import uuid

from azure.kusto.data import KustoClient, KustoConnectionStringBuilder
from azure.kusto.data.data_format import DataFormat
from azure.kusto.ingest import BlobDescriptor, IngestionProperties, QueuedIngestClient, ReportLevel
from azure.kusto.ingest.status import KustoIngestStatusQueues
from azure.storage.blob import BlobServiceClient


def run_consumer(cluster: str) -> None:
    """Takes the queued messages off now (kusto-sim's control endpoint) instead of waiting."""
    request = urllib.request.Request(f"{cluster}/sim/queued-ingestion/run", data=b"{}", method="POST")
    with urllib.request.urlopen(request) as response:
        assert response.status == 200, response.status


def count(client: KustoClient, db: str, table: str) -> int:
    return list(client.execute_query(db, f"['{table}'] | count").primary_results[0])[0]["Count"]


def parquet_blob(client: KustoClient, db: str, suffix: str) -> str:
    """Three rows written as one parquet file in Azurite by kusto-sim's own export; returns
    the blob URL for the cluster's managed identity."""
    container = "sdkcompat-" + suffix
    BlobServiceClient.from_connection_string(os.environ["AZURITE_CONNECTION_STRING"]).create_container(container)
    endpoint = os.environ["AZURITE_BLOB_ENDPOINT"].rstrip("/")
    source = "Src_" + suffix
    client.execute_mgmt(db, f".create table ['{source}'] (['n']:long, ['s']:string)")
    client.execute_mgmt(db, f".ingest inline into table ['{source}'] <| 1,a\n2,b\n3,c")
    client.execute_mgmt(
        db,
        f".create-or-alter external table ['x{source}'] (['n']:long, ['s']:string) kind=storage dataformat = parquet (h@'{endpoint}/{container};managed_identity=system')",
    )
    exported = list(client.execute_mgmt(db, f".export to table ['x{source}'] <| ['{source}']").primary_results[0])
    assert len(exported) == 1, exported
    return exported[0]["Path"] + ";managed_identity=system"


def main(cluster: str, db: str) -> None:
    kcsb = KustoConnectionStringBuilder.with_aad_user_token_authentication(cluster, "sdk-compat-token")
    client = KustoClient(kcsb)
    ingest = QueuedIngestClient(kcsb)
    suffix = uuid.uuid4().hex[:8]
    blob = parquet_blob(client, db, suffix)

    # One blob, reported on success: the rows land, and the SDK reads its status message.
    table = "Queued_" + suffix
    client.execute_mgmt(db, f".create table ['{table}'] (['n']:long, ['s']:string)")
    properties = IngestionProperties(database=db, table=table, data_format=DataFormat.PARQUET, report_level=ReportLevel.FailuresAndSuccesses)
    source = BlobDescriptor(blob, size=1024)
    ingest.ingest_from_blob(source, ingestion_properties=properties)
    run_consumer(cluster)
    assert count(client, db, table) == 3, count(client, db, table)
    status = KustoIngestStatusQueues(ingest)
    successes = status.success.pop(10)
    assert len(successes) == 1, successes
    assert successes[0].IngestionSourceId == str(source.source_id), successes[0]
    assert (successes[0].Database, successes[0].Table) == (db, table), successes[0]
    assert status.failure.is_empty()

    # The same blob twice with the same tag and ingestIfNotExists: it lands once, the
    # second is reported as skipped.
    deduped = "Deduped_" + suffix
    client.execute_mgmt(db, f".create table ['{deduped}'] (['n']:long, ['s']:string)")
    once = IngestionProperties(
        database=db,
        table=deduped,
        data_format=DataFormat.PARQUET,
        ingest_by_tags=["sdk-part-1"],
        ingest_if_not_exists=["sdk-part-1"],
        report_level=ReportLevel.FailuresOnly,
    )
    ingest.ingest_from_blob(BlobDescriptor(blob, size=1024), ingestion_properties=once)
    ingest.ingest_from_blob(BlobDescriptor(blob, size=1024), ingestion_properties=once)
    run_consumer(cluster)
    assert count(client, db, deduped) == 3, count(client, db, deduped)
    failures = status.failure.pop(10)
    assert [f.ErrorCode for f in failures] == ["Skipped_IngestByTagAlreadyExists"], failures

    print("sdk-compat: azure-kusto-ingest queued ingestion through kusto-sim's queues OK: rows land, ingestIfNotExists dedupes, status queues read")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
