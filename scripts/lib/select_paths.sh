# Sourced by the corpus fetchers (fetch_pdf_corpus.sh, fetch_format_corpus.sh).
#
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
