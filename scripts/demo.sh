#!/usr/bin/env bash
# The whole story on the local stack it starts itself: Azurite, kusto-sim as the source and
# the target cluster, and `adx-backup run-local` driving the same queue functions production
# runs (protect timer, task queue, restore queue).
#   1. a source database with history: Events (a day column), Wide (every type), Devices
#      (no datetime column);
#   2. protect (external tables, continuous exports) and the backfill of the history, with
#      the source cluster refusing exports of more than 700 rows, so batches split;
#   3. more rows arrive; the continuous exports carry them;
#   4. `adx-backup status`, as a person reads it;
#   5. a `.delete` in the source, and `adx-backup verify` reporting it;
#   6. the disaster: the source cluster is gone;
#   7. restore into the target by posting the queue message, with progress;
#   8. per table: the source as backed up and at the disaster vs the restored rows, with
#      content hashes.
# Every number printed is measured here. Exits non-zero on any mismatch.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .local
logs=.local/demo
rm -rf "$logs" && mkdir -p "$logs"

pids=()
started_azurite=$(scripts/azurite.sh ensure)
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ "$started_azurite" = started ]; then scripts/azurite.sh stop; fi
}
trap cleanup EXIT
blob="http://127.0.0.1:${AZURITE_BLOB_PORT:-10000}/devstoreaccount1"
queue="http://127.0.0.1:${AZURITE_QUEUE_PORT:-10001}/devstoreaccount1"
began=$(date +%s)
step() { printf '\n== [%3ss] %s\n' "$(( $(date +%s) - began ))" "$*"; }

step "building adx-backup and kusto-sim"
cargo build --quiet --workspace --bins
began=$(date +%s)

# A kusto-sim on a port it picks itself (no port is picked, released and passed on); its
# URL is the first line it prints.
start_sim() {
  local name=$1; shift
  KUSTO_SIM_COMMAND_LOG= target/debug/kusto-sim --listen 127.0.0.1:0 --storage-endpoint "$blob" \
    --queue-endpoint "$queue" "$@" > "$logs/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do
    url=$(sed -n 's/^kusto-sim listening on //p' "$logs/$name.log")
    [ -n "$url" ] && return 0
    sleep 0.1
  done
  echo "kusto-sim $name did not start; see $logs/$name.log" >&2
  exit 1
}
start_sim source --database Demo --faults '{"export_max_rows": 700}'
source_url=$url source_pid=${pids[-1]}
start_sim target --database DemoDR
target_url=$url

# The app's settings: the example's local values, pointed at these clusters and a fresh
# container, with short intervals so the story fits in minutes.
while IFS='=' read -r key value; do export "$key=$value"; done < <(python3 -c '
import json
for k, v in json.load(open("local.settings.json.example"))["Values"].items():
    print(f"{k}={v}")')
# The emulator's well-known development key, on whichever ports this Azurite listens.
key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
export BackupStorage="AccountName=devstoreaccount1;AccountKey=$key;BlobEndpoint=$blob;QueueEndpoint=$queue"
export AzureWebJobsStorage="$BackupStorage"
export AdxBackup__ClusterUri="$source_url"
export AdxBackup__RestoreTargets="$target_url"
export AdxBackup__Container="demo-$(date +%s)"
export AdxBackup__BackfillBatchMaxRows=1000
export AdxBackup__BackfillSplitFloorRows=100
export AdxBackup__BackfillPollSeconds=1
export AdxBackup__RestorePollSeconds=1
export AdxBackup__LogFormat=text

src() { python3 scripts/kusto-cli.py "$source_url" Demo "$@"; }
dst() { python3 scripts/kusto-cli.py "$target_url" DemoDR "$@"; }
run_exports() { curl -sf -X POST "$source_url/sim/continuous-export/run" > /dev/null; }
# Rows and a content hash of a table (order-independent: a sum of per-row hashes).
fingerprint() { "$1" query "$2 | extend h = hash(tostring(pack_all())) | summarize rows = count(), content = sum(h)"; }

step "1. source database Demo: Events (30 days of history), Wide (every type), Devices (no datetime)"
src mgmt '.create table Events (Timestamp:datetime, DeviceId:long, Reading:real, Payload:dynamic)' > /dev/null
src mgmt '.create table Wide (At:datetime, B:bool, I:int, L:long, R:real, D:decimal, S:string, T:timespan, G:guid, Dyn:dynamic)' > /dev/null
src mgmt '.create table Devices (DeviceId:long, Name:string, Location:string)' > /dev/null
# As docs/deploy.md asks of a cluster: its identity may write exports and read them back.
src mgmt ".alter-merge cluster policy managed_identity \"[{'ObjectId':'system','AllowedUsages':'ExternalTable, NativeIngestion'}]\"" > /dev/null
python3 scripts/demo-rows.py "$source_url" history
for t in Events Wide Devices; do printf '   %-8s %s rows\n' "$t" "$(src query "$t | count")"; done

step "2. protect + backfill (run-local: protect every 3 s, the task and restore queues)"
target/debug/adx-backup run-local --protect-every 3 --retry-after 1 > "$logs/run-local.log" 2>&1 &
pids+=($!)
# The first export run fixes each export's StartCursor; protect then asks for the backfill.
until [ "$(src mgmt '.show continuous-exports | count')" = 3 ]; do sleep 0.5; done
run_exports
echo "   continuous exports: $(src mgmt '.show continuous-exports | project Name' | tr '\n' ' ')"
wait_backed_up() {
  for _ in $(seq 1 240); do
    # status exits non-zero while something needs attention; its JSON is written either way.
    target/debug/adx-backup status --json > "$logs/status.json" 2> /dev/null || true
    if python3 scripts/demo-check.py backed-up "$logs/status.json" "$source_url" Demo 2> /dev/null; then
      return 0
    fi
    sleep 1
  done
  echo "the backup did not catch up with the source in 4 minutes; see $logs/" >&2
  exit 1
}
wait_backed_up
splits=$(grep -c 'split in two' "$logs/run-local.log" || true)
echo "   backfill done; batches the cluster refused for memory and split in two: $splits"
grep -m 2 'split in two' "$logs/run-local.log" | sed 's/^/   log: /' | cut -c1-220

step "3. more rows arrive; the continuous exports carry them"
python3 scripts/demo-rows.py "$source_url" live
run_exports
wait_backed_up
echo "   backup holds every source row (catalog totals = source counts)"

step "4. adx-backup status"
target/debug/adx-backup status

step "5. a .delete in the source, then adx-backup verify"
before=$(python3 scripts/demo-check.py snapshot "$source_url" Demo Events Wide Devices)
src mgmt '.delete table Events records <| Events | where Timestamp between (datetime(2026-11-10) .. 1d) and DeviceId == 3' > /dev/null
echo "   deleted $(python3 scripts/demo-check.py count-diff "$before" "$source_url" Demo Events) rows of Events on 2026-11-10"
# Exit code 3: verify ran and found something that needs attention (the delete, on Events).
rc=0; target/debug/adx-backup verify 2> "$logs/verify.log" || rc=$?
if [ "$rc" != 3 ]; then echo "verify should have reported the delete (exit 3), exited $rc" >&2; exit 1; fi

step "6. the disaster: the source cluster is gone"
at_disaster=$(python3 scripts/demo-check.py snapshot "$source_url" Demo Events Wide Devices)
kill "$source_pid"
if src query 'Events | count' > /dev/null 2>&1; then echo "the source still answers" >&2; exit 1; fi
echo "   $source_url no longer answers"

step "7. restore into $target_url / DemoDR by posting the queue message"
target/debug/adx-backup restore --target-cluster "$target_url" --target-database DemoDR --job demo-dr --wait

step "8. the source vs the restored database, per table (rows and a content hash)"
python3 scripts/demo-check.py compare "$before" "$at_disaster" "$target_url" DemoDR Events Wide Devices
