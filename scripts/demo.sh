#!/usr/bin/env bash
# The demo (the README's first command): documents in, searchable chunks out, questions
# answered, on a fresh Debian machine with no API key and no S3.
#
#   bash scripts/demo.sh ["your own question" ...]
#
# 1. installs PostgreSQL 15 + pgvector (scripts/setup.sh) and fetches all-MiniLM-L6-v2
#    (scripts/fetch_model.sh), builds ragworker (release);
# 2. starts a PostgreSQL cluster kept in $RAGWORKER_DEMO_DIR (default
#    /var/lib/ragworker-demo) on loopback, and stops it again at the end;
# 3. migrates, enqueues every file of fixtures/ (the broken ones fail with their reason)
#    plus real public documents: the R FAQ (PDF, from Debian's r-doc-pdf) and the
#    Apache-2.0 and GPL-3 licence texts shipped with Debian; storage is the filesystem
#    backend, embeddings the local model (config/local.toml);
# 4. runs `ragworker backfill` (progress bar on a terminal) and searches.
# A second run reuses the cluster, the model, the build and the documents already
# processed, and only answers the questions again.
set -euo pipefail
cd "$(dirname "$0")/.."
# Not under /root: PostgreSQL runs as the postgres user, which must reach its data directory.
DEMO="${RAGWORKER_DEMO_DIR:-/var/lib/ragworker-demo}"
CACHE="${RAGWORKER_CACHE:-$HOME/.cache/ragworker}"
PG_BIN=/usr/lib/postgresql/15/bin
# The demo's documents belong to this user (files.user_id); search is per user.
DEMO_USER=00000000-0000-4000-8000-0000000000de
log() { printf '[demo] %s\n' "$*" >&2; }

if [ "${RAGWORKER_DEMO_SKIP_SETUP:-0}" != 1 ]; then
  RAGWORKER_SKIP_S3=1 bash scripts/setup.sh
fi
MODEL_DIR=$(bash scripts/fetch_model.sh | tail -n 1)

if [ -n "${RAGWORKER_BIN:-}" ]; then
  BIN="$RAGWORKER_BIN"
else
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
  log "building ragworker (release; the first build takes several minutes, later ones are cached)"
  cargo build --quiet --release --bin ragworker
  BIN="$CARGO_TARGET_DIR/release/ragworker"
fi

# Real public documents, fetched once.
DOCS="$DEMO/public"
mkdir -p "$DOCS"
if [ ! -s "$DOCS/R-FAQ.pdf" ]; then
  log "fetching the R FAQ from Debian's r-doc-pdf package"
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq r-doc-pdf >/dev/null 2>&1)
  dpkg-deb -x "$tmp"/r-doc-pdf_*.deb "$tmp/x"
  cp "$tmp/x/usr/share/R/doc/manual/R-FAQ.pdf" "$DOCS/R-FAQ.pdf.part"
  mv "$DOCS/R-FAQ.pdf.part" "$DOCS/R-FAQ.pdf"
  rm -rf "$tmp"
fi
cp /usr/share/common-licenses/Apache-2.0 "$DOCS/Apache-2.0.txt"
cp /usr/share/common-licenses/GPL-3 "$DOCS/GPL-3.txt"

# A cluster of its own, kept between runs; started here, stopped on exit.
mkdir -p "$DEMO" && chmod 755 "$DEMO"
if [ ! -f "$DEMO/pg/PG_VERSION" ]; then
  log "creating a PostgreSQL cluster in $DEMO/pg"
  mkdir -p "$DEMO/pg" && chown postgres "$DEMO/pg"
  su postgres -c "$PG_BIN/initdb -D $DEMO/pg -A trust -U postgres" >/dev/null
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  cat >> "$DEMO/pg/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$DEMO/pg'
CONF
fi
PG_PORT=$(sed -n 's/^port = //p' "$DEMO/pg/postgresql.conf" | tail -n 1)
started=0
if ! su postgres -c "$PG_BIN/pg_ctl -D $DEMO/pg status" >/dev/null 2>&1; then
  su postgres -c "$PG_BIN/pg_ctl -D $DEMO/pg -l $DEMO/pg/server.log -w start" >/dev/null
  started=1
fi
stop_pg() {
  if [ "$started" = 1 ]; then
    su postgres -c "$PG_BIN/pg_ctl -D $DEMO/pg -m fast stop" >/dev/null 2>&1 || true
  fi
}
trap stop_pg EXIT

export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
export RAGWORKER_STORAGE__FS_ROOT="$DEMO/storage"
export RAGWORKER_EMBEDDING__LOCAL_MODEL_DIR="$MODEL_DIR"
rag() { "$BIN" --config config/local.toml "$@"; }
# psql reads the statement from stdin so that -v variables are interpolated (:'name' is
# quoted by psql itself).
psql_value() {
  local sql=$1
  shift
  echo "$sql" | "$PG_BIN/psql" "$DATABASE_URL" -Atq -v user="$DEMO_USER" "$@"
}

rag migrate
for f in fixtures/* "$DOCS"/*; do
  [ -f "$f" ] || continue
  name=$(basename "$f")
  # Idempotent: a document already enqueued for the demo user is not enqueued again.
  known=$(psql_value "select count(*) from files where user_id = :'user' and original_name = :'name'" -v name="$name")
  if [ "$known" = 0 ]; then
    rag enqueue --user "$DEMO_USER" "$f" >/dev/null
    log "enqueued $name"
  fi
done

set +e
rag backfill
status=$?
set -e
# Exit status 2 means some files failed: expected here, fixtures/ holds broken files on
# purpose. Anything else is a real error.
if [ "$status" != 0 ] && [ "$status" != 2 ]; then
  exit "$status"
fi
echo
echo "Files that could not be processed, and why:"
psql_value "select '  ' || original_name || ': ' || last_error from files
            where user_id = :'user' and processing_status = 'failed' order by original_name"
echo
psql_value "select 'Indexed: ' || count(distinct file_id) || ' files, ' || count(*) || ' chunks, '
                   || sum(token_count) || ' tokens' from document_chunks where user_id = :'user'"

if [ $# -gt 0 ]; then
  questions=("$@")
else
  questions=(
    "How deep was the harbour channel dredged?"
    "Who were the first authors of R?"
    "What happens to my patent license if I sue someone for patent infringement?"
  )
fi
for q in "${questions[@]}"; do
  echo
  echo "Q: $q"
  rag search --user "$DEMO_USER" --limit 3 "$q"
done
