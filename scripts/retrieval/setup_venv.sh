#!/usr/bin/env bash
# Create or update the retrieval benchmark's Python venv, idempotently.
# pip runs only when requirements.txt changed since the last successful install
# (its sha256 is kept in a stamp file inside the venv).
# Usage: scripts/retrieval/setup_venv.sh   (prints the venv's python path last)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${RETRIEVAL_VENV:-$HOME/.cache/ragworker/retrieval-venv}"
req="$here/requirements.txt"
stamp="$venv/.requirements.sha256"

if [ ! -x "$venv/bin/python" ]; then
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
fi

want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet -r "$req"
    echo "$want" > "$stamp"
fi
echo "$venv/bin/python"
