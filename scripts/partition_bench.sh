#!/usr/bin/env bash
# Partitioning benchmark: does hash-partitioning document_chunks by tenant (user_id) pay,
# against one table at the same row count? Runs scripts/partition_bench.py, which creates a
# scratch database partbench_<random>, loads the same clustered halfvec data into
#   (A) chunks_single: one table, one HNSW index, and
#   (B) chunks_part:   hash-partitioned by user_id, one HNSW index per partition,
# and prints insert rate (HNSW live), HNSW build time, tenant-filtered top-10 latency
# (p50/p95, measured inside the database) and recall@10, side by side, then drops it.
#
# Uses the server in RAGWORKER_TEST_DATABASE_URL (an admin URL) if set, otherwise starts a
# throwaway PostgreSQL+pgvector on loopback (scripts/services.sh). Arguments go to the
# benchmark, e.g.
#   bash scripts/partition_bench.sh --quick                 # N=20000
#   bash scripts/partition_bench.sh --rows 100000 --dims 384 --partitions 8 --queries 30
# or via the environment: PARTBENCH_ROWS, PARTBENCH_DIMS, PARTBENCH_PARTITIONS,
# PARTBENCH_QUERIES.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${RAGWORKER_TEST_DATABASE_URL:-}" ]; then
  RAGWORKER_SKIP_S3=1 bash scripts/setup.sh
  source scripts/services.sh
  start_postgres
fi
python3 scripts/partition_bench.py "$@"
