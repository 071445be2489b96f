#!/usr/bin/env bash
# The search benchmark (issue #12): starts PostgreSQL+pgvector on loopback, builds and runs
# examples/search_bench.rs. Arguments go to the benchmark, e.g.
# `bash scripts/search_bench.sh --chunks 200000 --dims 384 --queries 20`.
set -euo pipefail
cd "$(dirname "$0")/.."
RAGWORKER_SKIP_S3=1 bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ragworker/target}"
source scripts/services.sh
start_postgres
cargo build --quiet --release --example search_bench
"$CARGO_TARGET_DIR/release/examples/search_bench" "$@"
