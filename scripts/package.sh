#!/usr/bin/env bash
# Builds the Functions app zip: the release binary (Linux x86-64, glibc, mode 0755),
# host.json and one folder per function. `zip` keeps the unix mode bits.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin adx-backup
out=target/package
rm -rf "$out" && mkdir -p "$out/app"
install -m 0755 target/release/adx-backup "$out/app/adx-backup"
cp host.json "$out/app/"
cp -r functions/* "$out/app/"
(cd "$out/app" && zip -qr ../adx-backup.zip .)
echo "$out/adx-backup.zip"
