#!/usr/bin/env python3
"""Measurements for `make demo`, all read from the clusters themselves (kusto-sim's REST API):
    demo-check.py snapshot <cluster> <db> <table>...          rows and content hash per table, as JSON
    demo-check.py count-diff <snapshot> <cluster> <db> <table> rows the table lost since the snapshot
    demo-check.py compare <backed-up> <at-disaster> <cluster> <db> <table>...
                                                              the backed-up snapshot vs the tables
                                                              now; exits 1 unless every table matches
    demo-check.py backed-up <status.json> <cluster> <db>      exits 0 when the backup's catalog
                                                              holds every source row"""
import json
import subprocess
import sys

# An order-independent fingerprint: the sum of a hash of every row, kept below 2^63.
FINGERPRINT = ("| extend h = hash(tostring(pack_all())) % 1000000007 "
               "| summarize rows = count(), content = sum(h)")


def query(cluster, db, text):
    out = subprocess.run(["python3", "scripts/kusto-cli.py", cluster, db, "query", text],
                         check=True, capture_output=True, text=True).stdout
    return [line.split("|") for line in out.splitlines()]


def fingerprint(cluster, db, table):
    rows, content = query(cluster, db, f"{table} {FINGERPRINT}")[0]
    return {"rows": int(rows), "content": int(content or 0)}


def snapshot(cluster, db, tables):
    print(json.dumps({t: fingerprint(cluster, db, t) for t in tables}))


def count_diff(before, cluster, db, table):
    print(json.loads(before)[table]["rows"] - fingerprint(cluster, db, table)["rows"])


def compare(backed_up_snap, disaster_snap, cluster, db, tables):
    """The restored tables against what the backup should hold (the source as verified before
    the .delete), beside the source at the moment of the disaster."""
    expected, at_disaster = json.loads(backed_up_snap), json.loads(disaster_snap)
    ok = True
    print(f"   {'table':<8} {'backed up':>9} {'at disaster':>11} {'restored':>9}"
          f"  {'backed-up hash':>14} {'restored hash':>14}  result")
    for t in tables:
        got, want, gone = fingerprint(cluster, db, t), expected[t], at_disaster[t]
        same = got == want
        ok &= same
        print(f"   {t:<8} {want['rows']:>9} {gone['rows']:>11} {got['rows']:>9}"
              f"  {want['content']:>14} {got['content']:>14}  {'exact match' if same else 'MISMATCH'}")
    for t in tables:
        extra = expected[t]["rows"] - at_disaster[t]["rows"]
        if extra:
            print(f"   {t}: the {extra} row(s) deleted in the source in step 5 came back with the restore:"
                  " a delete reaches the backup only through reconcile; verify reported it above")
    total = sum(expected[t]["rows"] for t in tables)
    print(f"demo: {'EXACT MATCH' if ok else 'MISMATCH'}: {len(tables)} tables, {total} rows;"
          f" {'every row and content hash restored' if ok else 'see above'}")
    sys.exit(0 if ok else 1)


def backed_up(status_file, cluster, db):
    """The status document's catalog rows per table equal the source's counts, and no backfill
    is still running."""
    with open(status_file) as f:
        status = json.load(f)
    tables = [t for d in status["databases"] if d["database"] == db for t in d["tables"]]
    if not tables:
        sys.exit(1)
    for t in tables:
        catalog = (t.get("catalog") or {}).get("rows")
        if not t["protected"] or not t["backfill"]["complete"]:
            sys.exit(1)
        source = int(query(cluster, db, f"['{t['table']}'] | count")[0][0])
        if catalog != source:
            sys.exit(1)


commands = {
    "snapshot": lambda a: snapshot(a[0], a[1], a[2:]),
    "count-diff": lambda a: count_diff(a[0], a[1], a[2], a[3]),
    "compare": lambda a: compare(a[0], a[1], a[2], a[3], a[4:]),
    "backed-up": lambda a: backed_up(a[0], a[1], a[2]),
}
if len(sys.argv) < 2 or sys.argv[1] not in commands:
    sys.exit(__doc__)
commands[sys.argv[1]](sys.argv[2:])
