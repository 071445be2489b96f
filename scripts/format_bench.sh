#!/usr/bin/env bash
# The formats measurement: fetches the corpus (scripts/fetch_format_corpus.sh), installs the
# reference extractors from Debian's packages if they are missing (LibreOffice Writer, Calc
# and Impress without a GUI; poppler's pdftotext), builds ragworker's extract example and
# runs scripts/compare_formats.py, which prints recall and precision per format.
#
#   bash scripts/format_bench.sh [--formats pptx,ods]    # extra arguments go to compare_formats.py
#
# Takes ~10 minutes the first time (LibreOffice converts ~450 files; its references are
# cached by file hash, so a second run takes ~1 minute). Results: ~/.cache/ragworker/format-bench.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[format_bench] %s\n' "$*" >&2; }

status=0
bash scripts/fetch_format_corpus.sh || status=$?
if [ "$status" != 0 ] && [ "$status" != 2 ]; then exit "$status"; fi  # 2: some sources failed

if ! command -v soffice >/dev/null || ! command -v pdftotext >/dev/null; then
  if [ "$(id -u)" != 0 ]; then
    log "LibreOffice or pdftotext missing: apt-get install libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui poppler-utils"
    exit 1
  fi
  log "installing LibreOffice (Writer, Calc, Impress; no GUI) and poppler-utils from Debian"
  apt-cache show libreoffice-writer-nogui >/dev/null 2>&1 || apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui poppler-utils >/dev/null
fi

log "building the extract example (release)"
cargo build --release --quiet --example extract
EXTRACT="${CARGO_TARGET_DIR:-target}/release/examples/extract"
log "LibreOffice $(soffice --version 2>/dev/null | awk '{print $2}'), comparing"
python3 scripts/compare_formats.py --extract "$EXTRACT" "$@"
