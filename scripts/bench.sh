#!/usr/bin/env bash
# The ingestion benchmark (issue #4): starts PostgreSQL+pgvector and s3s-fs on loopback,
# builds the release binary and runs examples/bench.rs. Arguments go to the benchmark,
# e.g. `bash scripts/bench.sh --docs 2000 --tpm 500000 --latency-ms 100`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ragworker/target}"
source scripts/services.sh
start_postgres
start_s3
cargo build --quiet --release --bin ragworker --example bench
"$CARGO_TARGET_DIR/release/examples/bench" "$@"
