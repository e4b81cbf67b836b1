# Every command a developer or CI needs. `make test` is the one gate CI runs.
# System tools (cmake and OpenSSL's headers for grpcio-sys, protoc for code
# generation, the openssl command for the TLS tests, promtool for the Python
# suite's metrics check) are installed by
# scripts/install-deps.sh when missing.

CARGO ?= cargo
# Extra flags for the server (run-server) or the client (run-client),
# e.g. make run-server ARGS="--listen 0.0.0.0:13111"
ARGS ?=
SERVER ?= 127.0.0.1:13111
# Where cargo puts builds (CI points it at a cache outside the clone).
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
# The debug server binary the interop suites start.
export CHAT_SERVER_BIN ?= $(TARGET_DIR)/debug/chat-server

.PHONY: all deps build build-debug run-server run-client demo generate check-generated \
        fmt fmt-check clippy doc lint audit fuzz bench bench-targets bench-compare unit-test cluster-test interop-python interop-python-cluster interop-node test

all: build

deps:
	@scripts/install-deps.sh cmake openssl

build: deps
	$(CARGO) build --workspace --release

build-debug: deps
	$(CARGO) build --workspace --bins

run-server: deps
	$(CARGO) run --release --bin chat-server -- $(ARGS)

run-client: deps
	$(CARGO) run --release -p chat-client -- --server $(SERVER) demo $(ARGS)

# Release server + every benchmark scenario, then the cluster scenarios on
# two nodes sharing a Redis the script starts, then 54,000 streams on three
# nodes (`streams`: 18,000 users per node; see BENCHMARKS.md);
# SERVER_FLAGS="--threads 1" and BENCH_ARGS="--scale 0.1" adjust the first two.
bench:
	scripts/bench.sh
	NODES=2 scripts/bench.sh
	NODES=3 BENCH_CMD=streams scripts/bench.sh

# Every target row of BENCHMARKS.md with the server flags it is reported
# with, each on a fresh server or 2-node cluster (RUNS=3 for three of each;
# ROWS=single or ROWS=cluster for one half).
bench-targets:
	scripts/bench-targets.sh

# Every scenario against this server and against the tonic yardstick
# (../shared/yardstick/tonic-chat), both at defaults, alternating on fresh
# servers; prints medians and ratios (ROUNDS=3 by default).
bench-compare:
	scripts/bench-compare.sh

# Start a server, run the scripted demo against it, keep both logs in logs.txt.
demo: deps
	scripts/demo.sh logs.txt

generate:
	scripts/gen.sh

check-generated:
	scripts/check-generated.sh

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clippy: deps
	$(CARGO) clippy --workspace --all-targets -- -D warnings

doc: deps
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps

# buf lint (STANDARD rules) on proto/chat, with buf from npm (@bufbuild/buf).
lint:
	tests/interop/node/lint.sh

# cargo deny (advisories, licenses, bans, sources) against the offline
# RustSec snapshot in ../shared/advisory-db or $(ADVISORY_DB); a loud skip,
# not a pass, when neither exists.
audit:
	scripts/audit.sh

# The registry fuzzed with arbitrary operation sequences (proptest), for a
# bounded number of cases (FUZZ_CASES); `make test` runs a short version.
FUZZ_CASES ?= 20000
fuzz:
	PROPTEST_CASES=$(FUZZ_CASES) $(CARGO) nextest run -p chat-server --lib -E 'test(fuzz_registry_invariants)'

# The contract from other languages, against the real server binary.
interop-python: build-debug
	@scripts/install-deps.sh promtool redis
	tests/interop/python/run.sh

# The same Python suite against a 2-node cluster on a Redis each test starts.
interop-python-cluster: build-debug
	@scripts/install-deps.sh redis
	CHAT_INTEROP_CLUSTER=2 tests/interop/python/run.sh

interop-node: build-debug
	tests/interop/node/run.sh

# Unit and integration tests (the integration tests start real servers on
# 127.0.0.1:0). nextest when available: it ends with one summary line.
unit-test: deps
	@scripts/install-deps.sh redis
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  $(CARGO) nextest run --workspace --no-fail-fast; \
	else \
	  $(CARGO) test --workspace --no-fail-fast; \
	fi

# The contract tests again, against a 3-node cluster on a Redis each test
# starts (redis-server is installed when missing).
CLUSTER_TESTS := --test connect --test auth --test groups --test messages --test stress --test history --test resume --test presence
cluster-test: deps
	@scripts/install-deps.sh redis
	@if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  CHAT_TEST_CLUSTER=3 $(CARGO) nextest run -p chat-server --no-fail-fast $(CLUSTER_TESTS); \
	else \
	  CHAT_TEST_CLUSTER=3 $(CARGO) test -p chat-server --no-fail-fast $(CLUSTER_TESTS); \
	fi

# The whole gate: formatting, generated-code drift, lints, docs, proto lint,
# the dependency audit, the Python (single node and 2-node cluster) and Node
# interop suites, the contract tests on a cluster, then every Rust test
# (whose summary ends the run).
test: fmt-check check-generated clippy doc lint audit interop-python interop-python-cluster \
      interop-node cluster-test unit-test
