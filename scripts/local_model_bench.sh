#!/usr/bin/env bash
# The local model against sentence-transformers on the same texts, in one run:
#
#   bash scripts/local_model_bench.sh [ROUNDS=3] [N=128] [LENGTHS="60 200 256"]
#
# For each length, examples/embed_local writes N synthetic texts of about that many tokens;
# then, ROUNDS times in turn, this build (after), an older build (before, optional) and
# sentence-transformers (PyTorch from PyPI) embed them in calls of 16. Runs alternate so a
# busy machine slows all three alike; the table gives min–max over the rounds and the
# ratio after / sentence-transformers per round, and the load average is printed.
#
# BEFORE_BIN=path/to/an/older/embed_local adds the "before" column (build one with
#   git worktree add /tmp/before <ref> && cd /tmp/before &&
#   CARGO_TARGET_DIR=/tmp/before-target cargo build --release --example embed_local).
# ST_PYTHON is a Python with sentence-transformers (default: ~/.cache/ragworker/st-venv,
# created with `python3 -m venv` + `pip install sentence-transformers` when missing).
# No environment variables change the figures: every program runs with its defaults.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${1:-3}
N=${2:-128}
LENGTHS=${3:-"60 200 256"}
CACHE="${RAGWORKER_CACHE:-$HOME/.cache/ragworker}"
VENV="$CACHE/st-venv"
ST_PYTHON=${ST_PYTHON:-$VENV/bin/python3}
log() { printf '[bench] %s\n' "$*" >&2; }

if [ ! -x "$ST_PYTHON" ]; then
  log "creating $VENV with sentence-transformers from PyPI"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q sentence-transformers
  ST_PYTHON=$VENV/bin/python3
fi

cargo build -q --release --example embed_local
AFTER_BIN="${CARGO_TARGET_DIR:-target}/release/examples/embed_local"
BEFORE_BIN=${BEFORE_BIN:-}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# "chunks/s tokens/s" from a program's "batch  16: X chunks/s Y tokens/s" line.
rust_rate() { awk '/^batch +16:/ { print $3, $5 }' "$1"; }
st_rate() { awk '/chunks\/s/ { for (i = 1; i <= NF; i++) if ($(i) == "chunks/s") print $(i-1), $(i+1) }' "$1"; }

printf 'load average before: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
for len in $LENGTHS; do
  texts="$work/texts-$len.jsonl"
  EMBED_LOCAL_TEXTS_OUT="$texts" "$AFTER_BIN" "$N" 16 "" "$len" >"$work/gen-$len.txt"
  for round in $(seq "$ROUNDS"); do
    "$AFTER_BIN" "$N" 16 "" "$len" >"$work/after-$len-$round.txt"
    if [ -n "$BEFORE_BIN" ]; then
      "$BEFORE_BIN" "$N" 16 "" "$len" >"$work/before-$len-$round.txt"
    fi
    "$ST_PYTHON" scripts/bench_sentence_transformers.py "$texts" 16 >"$work/st-$len-$round.txt" 2>/dev/null
    printf '  ~%s tokens, round %s: after %s, before %s, sentence-transformers %s (load %s)\n' \
      "$len" "$round" "$(rust_rate "$work/after-$len-$round.txt")" \
      "$( [ -n "$BEFORE_BIN" ] && rust_rate "$work/before-$len-$round.txt" || echo -)" \
      "$(st_rate "$work/st-$len-$round.txt")" "$(cut -d' ' -f1 /proc/loadavg)"
  done
done

printf '\nload average after: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%s\n' "$(grep -h 'peak resident' "$work"/after-*-1.txt | sort | tail -1) (after, largest over lengths)"
python3 - "$work" "$ROUNDS" "$LENGTHS" <<'EOF'
import re, sys
from pathlib import Path
work, rounds, lengths = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split()

def rates(path):
    if not path.exists():
        return None
    text = path.read_text()
    m = re.search(r"batch +16: +([\d.]+) chunks/s +([\d.]+) tokens/s", text)
    return (float(m.group(1)), float(m.group(2))) if m else None

def span(values, fmt):
    return f"{fmt.format(min(values))}–{fmt.format(max(values))}" if values else "-"

print()
print("| tokens/text | before chunks/s (tokens/s) | after chunks/s (tokens/s) | sentence-transformers chunks/s (tokens/s) | after / ST | after / before |")
print("| --- | --- | --- | --- | --- | --- |")
for length in lengths:
    gen = (work / f"gen-{length}.txt").read_text()
    avg = re.search(r"([\d.]+) tokens each", gen).group(1)
    cols = {}
    for name in ("before", "after", "st"):
        cols[name] = [r for r in (rates(work / f"{name}-{length}-{i}.txt") for i in range(1, rounds + 1)) if r]
    def cell(name):
        runs = cols[name]
        if not runs:
            return "-"
        return f"{span([r[0] for r in runs], '{:.1f}')} ({span([r[1] for r in runs], '{:,.0f}')})"
    def ratio(a, b):
        pairs = [x[0] / y[0] for x, y in zip(cols[a], cols[b])]
        return span(pairs, "{:.2f}") + "×" if pairs else "-"
    print(f"| {avg} | {cell('before')} | {cell('after')} | {cell('st')} | {ratio('after', 'st')} | {ratio('after', 'before')} |")
EOF
