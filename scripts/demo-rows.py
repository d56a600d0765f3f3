#!/usr/bin/env python3
"""Rows for `make demo`, ingested inline into the source cluster's Demo database.
    demo-rows.py <cluster-url> history|live
history: Events over the 30 days 2026-10-31 .. 2026-11-29, Wide (every Kusto type), Devices
(no datetime column). live: more Events and Wide rows on the last days."""
import subprocess
import sys
import uuid

url, phase = sys.argv[1:3]


def csv(value):
    """One CSV cell: quoted, with quotes doubled, when it holds a comma or a quote."""
    s = str(value)
    return '"' + s.replace('"', '""') + '"' if any(c in s for c in ',"\n') else s


def ingest(table, rows):
    body = "\n".join(",".join(csv(v) for v in row) for row in rows)
    subprocess.run(["python3", "scripts/kusto-cli.py", url, "Demo", "mgmt",
                    f".ingest inline into table {table} <|\n{body}"],
                   check=True, stdout=subprocess.DEVNULL)


def day(n):
    """2026-10-31 plus n days (n in 0..29), as yyyy-mm-dd."""
    month, d = (10, 31) if n == 0 else (11, n)
    return f"2026-{month:02}-{d:02}"


def events(start, count, days):
    return [(f"{day(days[n % len(days)])}T{n % 24:02}:{n % 60:02}:07.250Z", n % 7, n * 0.5,
             f'{{"n":{n},"tag":"e{n % 5}"}}') for n in range(start, start + count)]


def wide(start, count, days):
    return [(f"{day(days[n % len(days)])}T{(n * 7) % 24:02}:30:00Z", "true" if n % 2 else "false",
             n - 300, n * 1_000_003, n / 8, f"{n}.{n % 100:02}", f"item, \"{n}\"",
             f"{n % 3}.{n % 24:02}:{n % 60:02}:00", uuid.UUID(int=n * 7919), f'{{"k":[{n},{n % 3}]}}')
            for n in range(start, start + count)]


if phase == "history":
    all_days = list(range(30))
    # Twelve ingestions of 250 rows: each has its own ingestion time, so a backfill batch the
    # cluster refuses for memory can be split between them.
    for first in range(0, 3000, 250):
        ingest("Events", events(first, 250, all_days))
    ingest("Wide", wide(0, 600, all_days))
    ingest("Devices", [(n, f"device {n}", f"room {n % 4}") for n in range(40)])
elif phase == "live":
    ingest("Events", events(3000, 500, [28, 29]))
    ingest("Wide", wide(600, 100, [29]))
else:
    sys.exit(f"unknown phase {phase!r}: history or live")
