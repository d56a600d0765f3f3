#!/usr/bin/env bash
# Builds the Functions app zip: the release binary for Linux x86-64 linked against glibc
# $GLIBC_FLOOR at most (so it runs on every Functions Linux image; docs/deploy.md says why this
# floor), host.json and one folder per function. `zip` keeps the unix mode bits (0755).
# cargo-zigbuild and the zig toolchain come from PyPI into .local/venv (gitignored).
set -euo pipefail
cd "$(dirname "$0")/.."
GLIBC_FLOOR=2.28
CARGO_ZIGBUILD_VERSION=0.24.0
ZIGLANG_VERSION=0.17.0
target=x86_64-unknown-linux-gnu

venv=.local/venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check \
  "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION" "ziglang==$ZIGLANG_VERSION"
# cargo-zigbuild finds zig through `python3 -m ziglang` when the venv comes first on PATH.
PATH="$PWD/$venv/bin:$PATH" cargo zigbuild --quiet --release --bin adx-backup \
  --target "$target.$GLIBC_FLOOR"

out=target/package
rm -rf "$out" && mkdir -p "$out/app"
install -m 0755 "target/$target/release/adx-backup" "$out/app/adx-backup"
cp host.json "$out/app/"
cp -r functions/* "$out/app/"
(cd "$out/app" && zip -qr ../adx-backup.zip .)
echo "$GLIBC_FLOOR" > "$out/glibc-floor"
echo "$out/adx-backup.zip"
