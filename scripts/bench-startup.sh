#!/usr/bin/env bash
# Measures what the Functions host cares about at start-up: time from spawning
# `adx-backup serve` to its first answer on GET /, and its idle resident memory.
# Runs the release binary with nothing but local.settings.json.example's values in its
# environment; no Kusto or storage is needed to answer GET /.
#   scripts/bench-startup.sh [runs]   (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
cargo build --release --quiet --bin adx-backup
bin=target/release/adx-backup
mapfile -t settings < <(python3 -c '
import json
for k, v in json.load(open("local.settings.json.example"))["Values"].items():
    print(f"{k}={v}")')
python3 - "$bin" "$runs" "${settings[@]}" <<'PY'
import os, socket, subprocess, sys, time, urllib.request, statistics
binary, runs, pairs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
base_env = {"PATH": os.environ["PATH"]}
base_env.update(p.split("=", 1) for p in pairs)
times, rss = [], []
for _ in range(runs):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    env = dict(base_env, FUNCTIONS_CUSTOMHANDLER_PORT=str(port))
    t0 = time.perf_counter()
    p = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).read()
            break
        except Exception:
            if p.poll() is not None:
                sys.exit("adx-backup serve exited during start-up")
            time.sleep(0.001)
    times.append((time.perf_counter() - t0) * 1000)
    time.sleep(0.3)
    with open(f"/proc/{p.pid}/status") as f:
        rss.append(next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024)
    p.terminate(); p.wait()
print(f"start-up to first GET / answer over {runs} runs: median {statistics.median(times):.1f} ms, max {max(times):.1f} ms (target < 100 ms)")
print(f"idle resident memory: median {statistics.median(rss):.1f} MB, max {max(rss):.1f} MB (target < 30 MB)")
PY
