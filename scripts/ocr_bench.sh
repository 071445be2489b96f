#!/usr/bin/env bash
# The OCR measurement (issue #17): scans made from two real text PDFs from Debian packages
# (the R FAQ from r-doc-pdf, GPL-2+; the SIMH FAQ from simh, MIT-style), read back through
# ragworker's OCR and compared with their own text layer. See scripts/ocr_bench.py.
#   bash scripts/ocr_bench.sh [--pages N]      # N pages per PDF (default 6)
set -euo pipefail
cd "$(dirname "$0")/.."
RAGWORKER_SKIP_S3=1 bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ragworker/target}"
work="${RAGWORKER_CACHE:-$HOME/.cache/ragworker}/ocr-bench"
mkdir -p "$work"
if [ ! -x "$work/venv/bin/python" ]; then
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install -q pillow==11.0.0
fi
pdfs=()
for spec in r-doc-pdf:usr/share/R/doc/manual/R-FAQ.pdf simh:usr/share/doc/simh/simh_faq.pdf; do
  pkg=${spec%%:*} path=${spec#*:}
  if [ ! -f "$work/$pkg/$path" ]; then
    (cd "$work" && apt-get download "$pkg" >/dev/null 2>&1 && dpkg-deb -x "$pkg"_*.deb "$pkg")
    cp "$work/$pkg/usr/share/doc/$pkg/copyright" "$work/$pkg.copyright" 2>/dev/null || true
  fi
  pdfs+=("$work/$pkg/$path")
done
cargo build --quiet --release --example extract
"$work/venv/bin/python" scripts/ocr_bench.py "$CARGO_TARGET_DIR/release/examples/extract" "${pdfs[@]}" "$@"
