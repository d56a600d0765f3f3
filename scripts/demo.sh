#!/usr/bin/env bash
# The main job end to end on the local stack: Azurite + kusto-sim + adx-backup.
# Today that is `protect` (backfill, disaster, restore and verify join as they land):
#   1. a source database with three tables, one excluded by pattern, one without a datetime column;
#   2. `adx-backup protect` creates external tables and continuous exports;
#   3. rows are ingested and the continuous exports run (real parquet into Azurite);
#   4. `adx-backup protect` harvests the exported files into the catalog;
#   5. the backup is checked against the source: row counts and a content hash per table.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .local

pids=()
started_azurite=$(scripts/azurite.sh ensure)
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ "$started_azurite" = started ]; then scripts/azurite.sh stop; fi
}
trap cleanup EXIT
blob="http://127.0.0.1:${AZURITE_BLOB_PORT:-10000}/devstoreaccount1"

echo "== building adx-backup and kusto-sim"
cargo build --quiet --workspace --bins
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
KUSTO_SIM_COMMAND_LOG= target/debug/kusto-sim --listen "127.0.0.1:$port" --database Demo \
  --storage-endpoint "$blob" > .local/demo-kusto-sim.log 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done

# The app's settings: the example's local values, pointed at this kusto-sim and a fresh container.
while IFS='=' read -r key value; do export "$key=$value"; done < <(python3 -c '
import json
for k, v in json.load(open("local.settings.json.example"))["Values"].items():
    print(f"{k}={v}")')
export AdxBackup__ClusterUri="http://127.0.0.1:$port"
export AdxBackup__ExcludeTables="Temp*"
export AdxBackup__Container="demo-$(date +%s)"

kusto() { python3 scripts/kusto-cli.py "http://127.0.0.1:$port" Demo "$@"; }

echo "== source database Demo: Events (datetime), Devices (no datetime), TempLoad (excluded)"
kusto mgmt '.create table Events (Timestamp:datetime, DeviceId:long, Reading:real, Payload:dynamic)' > /dev/null
kusto mgmt '.create table Devices (DeviceId:long, Name:string, Location:string)' > /dev/null
kusto mgmt '.create table TempLoad (Timestamp:datetime, X:long)' > /dev/null

echo "== adx-backup protect"
target/debug/adx-backup protect
curl -s -X POST "http://127.0.0.1:$port/sim/continuous-export/run" > /dev/null  # first run fixes StartCursor

echo "== ingesting rows, then the continuous exports run"
python3 - "$port" <<'PY'
import subprocess, sys
port = sys.argv[1]
events = [f"2026-11-{20 + n % 5:02}T{n % 24:02}:15:00.250Z,{n % 7},{n * 1.5},\"{{\"\"n\"\":{n}}}\"" for n in range(500)]
devices = [f"{n},device {n},room {n % 3}" for n in range(7)]
temp = [f"2026-11-20T00:00:00Z,{n}" for n in range(5)]
for table, rows in (("Events", events), ("Devices", devices), ("TempLoad", temp)):
    subprocess.run(["python3", "scripts/kusto-cli.py", f"http://127.0.0.1:{port}", "Demo", "mgmt",
                    f".ingest inline into table {table} <|\n" + "\n".join(rows)], check=True, stdout=subprocess.DEVNULL)
PY
curl -s -X POST "http://127.0.0.1:$port/sim/continuous-export/run" > /dev/null

echo "== adx-backup protect (harvests exported files into the catalog)"
target/debug/adx-backup protect

echo "== verify: source vs backup (parquet in Azurite, read back through the external tables)"
status=0
for table in Events Devices; do
  fp='| extend h = hash(tostring(pack_all())) | summarize rows = count(), content = sum(h)'
  source=$(kusto query "$table $fp")
  backup=$(kusto query "external_table('adxbk_$table') $fp")
  if [ "$source" = "$backup" ]; then verdict=OK; else verdict=MISMATCH; status=1; fi
  printf '%-8s source %-28s backup %-28s %s\n' "$table" "$source" "$backup" "$verdict"
done
excluded=$(kusto mgmt '.show external tables | where TableName == "adxbk_TempLoad" | count')
printf '%-8s excluded by pattern: %s external table(s)\n' TempLoad "$excluded"
[ "$excluded" = "0" ] || status=1
[ "$status" = 0 ] && echo "demo: protect OK" || echo "demo: FAILED"
exit "$status"
