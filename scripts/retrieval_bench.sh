#!/usr/bin/env bash
# Question-answer retrieval benchmark (scripts/retrieval/README.md): ragworker with its local
# defaults (config/local.toml) beside LangChain's and LlamaIndex's default pipelines, on
# real FAQ documents from Debian packages, every system's chunks embedded with the same model
# and searched exactly; prints hit@1, hit@5 and MRR@10 per document and overall, for the
# documents as published (base) and with the question text removed (strict).
#
#   bash scripts/retrieval_bench.sh [WORKDIR]              # default ~/.cache/ragworker/retrieval
#   SWEEP="96:16 128:16 192:24 256:32" bash scripts/retrieval_bench.sh   # also other sizes
#
# Each SWEEP entry max:overlap runs ragworker again as ragworker-mt<max>-ov<overlap>.
# Extra ragworker settings go through RAGWORKER_* variables as usual.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-$HOME/.cache/ragworker/retrieval}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/ragworker/target}
mkdir -p "$WORK"
rm -rf "$WORK/ranks"

bash scripts/fetch_model.sh >/dev/null
PY=$(bash scripts/retrieval/setup_venv.sh | tail -n1)
"$PY" scripts/retrieval/corpus.py "$WORK"
"$PY" scripts/retrieval/peers.py "$WORK"
cargo build --release --quiet --example retrieval_bench
bench=$CARGO_TARGET_DIR/release/examples/retrieval_bench

for variant in base strict; do
  "$bench" "$WORK" "$variant" ragworker config/local.toml
  for peer in langchain llamaindex; do
    "$bench" "$WORK" "$variant" "$peer"
  done
  for entry in ${SWEEP:-}; do
    max=${entry%%:*} overlap=${entry##*:}
    RAGWORKER_CHUNKING__MAX_TOKENS=$max RAGWORKER_CHUNKING__OVERLAP_TOKENS=$overlap \
      "$bench" "$WORK" "$variant" "ragworker-mt$max-ov$overlap" config/local.toml
  done
done
python3 scripts/retrieval/score.py "$WORK" --json "$WORK/figures.json"
