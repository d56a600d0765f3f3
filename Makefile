# The two commands a newcomer needs: `make demo` and `make test`.
.PHONY: demo test bench package fuzz chaos

# The whole story on the local stack (Azurite + kusto-sim as source and target): protect,
# backfill, status, verify, the disaster, restore, and a per-table comparison.
demo: node_modules
	scripts/demo.sh

# Every test, installing and starting what it needs (CI runs exactly this).
test:
	scripts/test.sh

# Benchmarks: handler start-up and idle memory, catalog streaming at scale (see BENCHMARKS.md).
bench:
	scripts/bench.sh

# The fuzz targets of the parsers that take outside input, FUZZ_SECONDS each (default 60; see
# docs/fuzzing.md). Not part of `make test` or CI: it needs cargo-fuzz, installed here.
FUZZ_SECONDS ?= 60
fuzz:
	cargo fuzz --version > /dev/null 2>&1 || cargo install cargo-fuzz --locked
	scripts/fuzz.sh $(FUZZ_SECONDS)

# The chaos runner: RUNS seeds from SEED through the whole pipeline with random faults
# (docs/chaos.md). `make test` runs two seeds; this runs as many as asked.
RUNS ?= 50
SEED ?= 1
chaos: node_modules
	scripts/chaos.sh $(SEED) $(RUNS)

# The Functions app zip (release binary + host.json + functions/).
package:
	scripts/package.sh

node_modules: package-lock.json
	npm ci --no-audit --no-fund
	touch node_modules
