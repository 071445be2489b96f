#!/usr/bin/env bash
# The usage benchmark (issue #19): starts PostgreSQL+pgvector on loopback, builds and runs
# examples/usage_bench.rs. Arguments go to the benchmark, e.g.
# `bash scripts/usage_bench.sh --rows 1000000 --reads 200`.
set -euo pipefail
cd "$(dirname "$0")/.."
RAGWORKER_SKIP_S3=1 bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ragworker/target}"
source scripts/services.sh
start_postgres
cargo build --quiet --release --example usage_bench
"$CARGO_TARGET_DIR/release/examples/usage_bench" "$@"
