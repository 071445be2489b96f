# Sourced by the corpus fetchers (fetch_pdf_corpus.sh, fetch_format_corpus.sh): what they
# share. Each needs the caller's `log`; DEST is the corpus directory.

# exit_if_complete MANIFEST_ID NOUN: exits 0 (nothing to do) when DEST holds the corpus of
# this manifest with every file its SOURCES.tsv lists (FORCE=1 fetches again); refuses a
# non-empty DEST that is not a corpus.
exit_if_complete() {
  local id="$1" noun="$2" missing f
  if [ -z "${FORCE:-}" ] && [ -f "$DEST/.complete" ] && grep -qx "manifest=$id" "$DEST/.complete"; then
    missing=0
    while IFS=$'\t' read -r f _; do
      [ "$f" = file ] && continue
      [ -f "$DEST/$f" ] || missing=1
    done < "$DEST/SOURCES.tsv"
    if [ "$missing" = 0 ]; then
      log "$DEST is complete ($(($(wc -l < "$DEST/SOURCES.tsv") - 1)) $noun); FORCE=1 to fetch again"
      exit 0
    fi
    log "files listed in $DEST/SOURCES.tsv are missing: fetching again"
  fi
  if [ -d "$DEST" ] && [ -n "$(ls -A "$DEST")" ] && [ ! -f "$DEST/SOURCES.tsv" ]; then
    log "$DEST exists, is not empty and holds no SOURCES.tsv: refusing to replace it"; exit 1
  fi
}

# start_stage NAME: sets WORK (a scratch directory) and STAGE (DEST.partial, with its
# LICENSES/), both removed when the script exits.
start_stage() {
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")"
  STAGE="$DEST.partial"
  trap 'rm -rf "$WORK" "$STAGE"' EXIT
  chmod 755 "$WORK"   # so apt's unprivileged _apt user can write downloads into it
  rm -rf "$STAGE"
  mkdir -p "$STAGE/LICENSES" "$(dirname "$DEST")"
}

# finish_stage NOUN: sets COUNT to the files STAGE/SOURCES.tsv lists (none: exits 1), marks
# the stage complete for MANIFEST_ID unless a source FAILED, and swaps it in for DEST.
finish_stage() {
  COUNT=$(($(wc -l < "$STAGE/SOURCES.tsv") - 1))
  if [ "$COUNT" = 0 ]; then log "no $1 fetched"; exit 1; fi
  if [ ${#FAILED[@]} = 0 ]; then
    printf 'manifest=%s\n' "$MANIFEST_ID" > "$STAGE/.complete"
  fi
  if [ -d "$DEST" ]; then
    mv "$DEST" "$DEST.old.$$"
    mv "$STAGE" "$DEST"
    rm -rf "$DEST.old.$$"
  else
    mv "$STAGE" "$DEST"
  fi
}

# select_paths ROOT PKG PATTERNS: resolves PATTERNS (space-separated globs relative to ROOT;
# a glob starting with "!" drops the paths selected so far that match it) inside an unpacked
# package. Sets `selected` to the matching paths relative to ROOT, in order, and
# `source_ok` to 0 when a glob matched nothing (the caller counts the source as failed).
# Needs the caller's `log`.
select_paths() {
  local root="$1" pkg="$2" patterns="$3" pat s m
  local -a pats keep matches
  selected=(); source_ok=1
  read -r -a pats <<< "$patterns"
  shopt -s nullglob
  for pat in "${pats[@]}"; do
    if [ "${pat#!}" != "$pat" ]; then
      keep=()
      for s in "${selected[@]}"; do
        # shellcheck disable=SC2053
        [[ "$s" == ${pat#!} ]] || keep+=("$s")
      done
      selected=("${keep[@]}")
    else
      matches=("$root"/$pat)
      if [ ${#matches[@]} = 0 ]; then log "$pkg: nothing matches $pat"; source_ok=0; fi
      for m in "${matches[@]}"; do selected+=("${m#"$root"/}"); done
    fi
  done
  shopt -u nullglob
}
