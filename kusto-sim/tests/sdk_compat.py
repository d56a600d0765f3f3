"""Microsoft's Python Kusto client (azure-kusto-data) against a running kusto-sim.

Usage: python sdk_compat.py http://127.0.0.1:PORT DATABASE
Exits non-zero (an assertion or SDK error) if kusto-sim's wire format doesn't satisfy the SDK.
"""

import datetime
import decimal
import sys
import uuid

from azure.kusto.data import ClientRequestProperties, KustoClient, KustoConnectionStringBuilder
from azure.kusto.data.exceptions import KustoServiceError


def main(cluster: str, db: str) -> None:
    kcsb = KustoConnectionStringBuilder.with_aad_user_token_authentication(cluster, "sdk-compat-token")
    client = KustoClient(kcsb)

    table = "SdkCompat_" + uuid.uuid4().hex[:8]
    client.execute_mgmt(db, f".create table ['{table}'] (ts:datetime, n:long, i:int, r:real, d:decimal, s:string, b:bool, t:timespan, g:guid, dy:dynamic)")
    client.execute_mgmt(
        db,
        f".ingest inline into table ['{table}'] <| 2024-01-15T10:00:00.1234567Z,9007199254740993,-5,0.25,1.5,hello,true,1.02:03:04,123e27de-1e4e-49d9-b579-fe0b331d3642,\"{{\"\"a\"\":[1]}}\"",
    )

    shown = client.execute_mgmt(db, ".show tables").primary_results[0]
    assert table in [row["TableName"] for row in shown], shown
    assert [c.column_name for c in shown.columns][:2] == ["TableName", "DatabaseName"]

    response = client.execute_query(db, f"['{table}'] | where cursor_after('')")
    rows = list(response.primary_results[0])
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["ts"] == datetime.datetime(2024, 1, 15, 10, 0, 0, 123456, tzinfo=datetime.timezone.utc), row["ts"]
    assert row["n"] == 9007199254740993
    assert row["i"] == -5
    assert row["r"] == 0.25
    assert row["d"] == decimal.Decimal("1.5"), row["d"]
    assert row["s"] == "hello"
    assert row["b"] is True
    assert row["t"] == datetime.timedelta(days=1, hours=2, minutes=3, seconds=4), row["t"]
    assert str(row["g"]) == "123e27de-1e4e-49d9-b579-fe0b331d3642"
    assert row["dy"] == {"a": [1]}, row["dy"]

    count = client.execute_query(db, f"['{table}'] | count").primary_results[0]
    assert list(count)[0]["Count"] == 1

    try:
        client.execute_mgmt(db, ".purge table X records in database Y <| where a == 1")
        raise AssertionError("an unsupported command must fail")
    except KustoServiceError as e:
        assert "not supported by kusto-sim" in str(e), e

    # A partial failure arrives inside a 200: the SDK keeps the rows and reports the error.
    client.execute_mgmt(db, f".ingest inline into table ['{table}'] <| 2024-01-16,1,1,1,1,x,false,00:00:01,00000000-0000-0000-0000-000000000001,{{}}")
    properties = ClientRequestProperties()
    properties.set_option("truncationmaxrecords", 1)
    truncated = client.execute_query(db, f"['{table}']", properties)
    assert len(list(truncated.primary_results[0])) == 1
    assert truncated.errors_count == 1, truncated.errors_count
    assert "E_QUERY_RESULT_SET_TOO_LARGE" in truncated.get_exceptions()[0]

    client.execute_mgmt(db, f".drop table ['{table}']")
    print("sdk-compat: azure-kusto-data talked to kusto-sim: mgmt, V2 query, errors, partial failure OK")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
