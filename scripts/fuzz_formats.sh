#!/usr/bin/env bash
# Runs the fuzz targets of the formats (extract_sheet, extract_email, extract_pptx,
# extract_odf, extract_epub, extract_rtf) one after the other, each seeded with the parts of
# the repo's fixtures that its input stands for (a slide's XML, content.xml, a worksheet, an
# EPUB's package document and chapters, a message, an RTF body), and copies whatever they
# find into fuzz/regressions/<target>/ (replayed by the unit test
# `extract::tests::fuzz_regressions_fail_cleanly`).
#
#   bash scripts/fuzz_formats.sh [TARGET...]      # default: the six format targets
#   FUZZ_SECONDS=300 CLEAN=1 bash scripts/fuzz_formats.sh
#
# The coverage-instrumented build (-s none: no AddressSanitizer, which safe Rust needs
# little and which made an earlier build fill the disk) takes several GB: it goes to ONE
# target dir (FUZZ_TARGET_DIR, default ~/.cache/ragworker/target-fuzz), the script refuses
# to start with less than 12 GB free, and CLEAN=1 deletes the dir at the end. Only one
# fuzzer runs at a time (-jobs is left at 1). Needs a nightly toolchain and cargo-fuzz
# (`rustup toolchain install nightly && cargo install cargo-fuzz`).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/ragworker/target-fuzz}"
SECONDS_EACH="${FUZZ_SECONDS:-300}"
CORPUS="${FUZZ_CORPUS:-$HOME/.cache/ragworker/fuzz-corpus}"
TARGETS=("$@")
[ ${#TARGETS[@]} = 0 ] && TARGETS=(extract_sheet extract_email extract_pptx extract_odf extract_epub extract_rtf)

log() { printf '[fuzz_formats] %s\n' "$*" >&2; }

free_gb=$(df -BG --output=avail "$(dirname "$TARGET_DIR")" | tail -1 | tr -dc 0-9)
if [ ! -d "$TARGET_DIR" ] && [ "$free_gb" -lt 12 ]; then
  log "only ${free_gb} GB free: the fuzz build needs ~6 GB and the machine room to spare (12 GB)"; exit 1
fi

# Seeds: what each target's input stands for, cut out of the fixtures.
python3 - "$ROOT/fixtures" "$CORPUS" <<'PY'
import glob, hashlib, os, sys, zipfile
fixtures, corpus = sys.argv[1:3]

def put(target, data):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    data = data[:65536]
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as fh:
        fh.write(data)

def parts(pattern, wanted, limit=20):
    for path in sorted(glob.glob(os.path.join(fixtures, pattern))):
        z = zipfile.ZipFile(path)
        names = [n for n in z.namelist() if wanted(n)]
        for n in names[:limit]:
            yield z.read(n)

for data in parts("*.pptx", lambda n: n.startswith(("ppt/slides/slide", "ppt/notesSlides/notesSlide", "ppt/presentation.xml")) and n.endswith(".xml")):
    put("extract_pptx", data)
for data in parts("*.od[tp]", lambda n: n == "content.xml"):
    put("extract_odf", data)
for data in parts("sheets/*.xlsx", lambda n: n.startswith("xl/worksheets/") and n.endswith(".xml")):
    put("extract_sheet", data)
for path in glob.glob(os.path.join(fixtures, "sheets/*.csv")):
    put("extract_sheet", open(path, "rb").read())
for data in parts("*.epub", lambda n: n.endswith((".opf", ".xhtml", ".html")), limit=12):
    put("extract_epub", data)
for path in glob.glob(os.path.join(fixtures, "email/*.eml")):
    put("extract_email", open(path, "rb").read())
for path in glob.glob(os.path.join(fixtures, "*.rtf")):
    # The target adds the `{\rtf1` that selects the reader.
    put("extract_rtf", open(path, "rb").read().removeprefix(b"{\\rtf1"))
PY

cd "$ROOT/fuzz"
log "building the fuzz targets into $TARGET_DIR"
cargo +nightly fuzz build -s none --target-dir "$TARGET_DIR" >/dev/null

for target in "${TARGETS[@]}"; do
  mkdir -p "$CORPUS/$target" "$ROOT/fuzz/artifacts/$target"
  log "$target: ${SECONDS_EACH}s from $(ls "$CORPUS/$target" | wc -l) seeds"
  # -timeout: an input taking 10 s is a hang worth a regression test; -rss_limit_mb: the
  # worker's memory per file should stay far below this.
  cargo +nightly fuzz run -s none --target-dir "$TARGET_DIR" "$target" "$CORPUS/$target" -- \
    -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 > "$CORPUS/$target.log" 2>&1 || log "$target stopped on a finding (see $CORPUS/$target.log)"
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)|cov: ' "$CORPUS/$target.log" | tail -3 >&2 || true
  shopt -s nullglob
  for f in "$ROOT/fuzz/artifacts/$target"/*; do
    mkdir -p "$ROOT/fuzz/regressions/$target"
    cp "$f" "$ROOT/fuzz/regressions/$target/"
    log "finding: fuzz/regressions/$target/$(basename "$f")"
  done
  shopt -u nullglob
done

if [ -n "${CLEAN:-}" ]; then
  log "removing $TARGET_DIR"
  rm -rf "$TARGET_DIR"
fi
