#!/usr/bin/env bash
# Measures what the Functions host cares about at start-up: time from spawning
# `adx-backup serve` to its first answer on GET /, and its idle resident memory, beside a bare
# axum server built with the same profile (examples/startup_hello.rs), the two taking turns in
# the same run: the ratio of their times says what adx-backup adds, whatever the machine's speed.
# Runs the release binary with nothing but local.settings.json.example's values in its
# environment; no Kusto or storage is needed to answer GET /.
#   scripts/bench-startup.sh [runs]   (default 20)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
cargo build --release --quiet --bin adx-backup --example startup_hello
bin=target/release/adx-backup
hello=target/release/examples/startup_hello
mapfile -t settings < <(python3 -c '
import json
for k, v in json.load(open("local.settings.json.example"))["Values"].items():
    print(f"{k}={v}")')
python3 - "$bin" "$hello" "$runs" "${settings[@]}" <<'PY'
import os, socket, subprocess, sys, time, urllib.request, statistics
binary, hello, runs, pairs = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
base_env = {"PATH": os.environ["PATH"]}
base_env.update(p.split("=", 1) for p in pairs)

def start_once(argv):
    """Milliseconds from spawn to the first answer on GET /, and the idle RSS in MB after."""
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    env = dict(base_env, FUNCTIONS_CUSTOMHANDLER_PORT=str(port))
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).read()
            break
        except Exception:
            if p.poll() is not None:
                sys.exit(f"{argv[0]} exited during start-up")
            time.sleep(0.001)
    ms = (time.perf_counter() - t0) * 1000
    time.sleep(0.3)
    with open(f"/proc/{p.pid}/status") as f:
        rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024
    p.terminate(); p.wait()
    return ms, rss

times, rss, base_times, base_rss = [], [], [], []
for _ in range(runs):
    # Taking turns: a slow moment of the machine lands on both, not on one.
    ms, mb = start_once([binary, "serve"]); times.append(ms); rss.append(mb)
    ms, mb = start_once([hello]); base_times.append(ms); base_rss.append(mb)
med, base = statistics.median(times), statistics.median(base_times)
print(f"start-up to first GET / answer over {runs} runs: median {med:.1f} ms, max {max(times):.1f} ms (target < 100 ms)")
print(f"bare axum hello, same profile, same run: median {base:.1f} ms; adx-backup / hello = {med / base:.2f}")
print(f"idle resident memory: median {statistics.median(rss):.1f} MB, max {max(rss):.1f} MB (target < 30 MB); hello {statistics.median(base_rss):.1f} MB")
PY
