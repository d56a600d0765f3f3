#!/usr/bin/env python3
"""A tiny Kusto REST client for the demo: POSTs one command or query to kusto-sim and prints
the first result table's cells, '|'-separated, one row per line.
    kusto-cli.py <cluster-url> <database> mgmt|query <text>"""
import json
import sys
import urllib.error
import urllib.request

url, db, kind, text = sys.argv[1:5]
path = "/v1/rest/mgmt" if kind == "mgmt" else "/v2/rest/query"
req = urllib.request.Request(
    url + path,
    data=json.dumps({"db": db, "csl": text}).encode(),
    headers={"Content-Type": "application/json; charset=utf-8", "Authorization": "Bearer demo",
             "Accept": "application/json"},
)
try:
    body = json.load(urllib.request.urlopen(req))
except urllib.error.HTTPError as e:
    sys.exit(f"kusto error {e.code}: {e.read().decode()}")
if kind == "mgmt":
    table = body["Tables"][0]
else:
    table = next(f for f in body if f.get("FrameType") == "DataTable" and f.get("TableKind") == "PrimaryResult")
for row in table["Rows"]:
    print("|".join("" if v is None else str(v) for v in row))
