# Sourced by test.sh (and the demo): starts a throwaway PostgreSQL cluster with pgvector and
# an s3s-fs server, both on loopback, and stops them on exit.
# Sets RAGWORKER_TEST_DATABASE_URL, RAGWORKER_TEST_S3_ENDPOINT and the AWS_* credentials.

RUN_DIR=$(mktemp -d /tmp/ragworker-run.XXXXXX)
chmod 755 "$RUN_DIR"
# PostgreSQL runs as the postgres user and keeps its socket here.
chown postgres "$RUN_DIR"
PG_BIN=/usr/lib/postgresql/15/bin

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

stop_services() {
  if [ -n "${S3_PID:-}" ]; then kill "$S3_PID" 2>/dev/null || true; wait "$S3_PID" 2>/dev/null || true; fi
  if [ -f "$RUN_DIR/pg/postmaster.pid" ]; then
    su postgres -c "$PG_BIN/pg_ctl -D $RUN_DIR/pg -m immediate stop" >/dev/null 2>&1 || true
  fi
  rm -rf "$RUN_DIR"
}
trap stop_services EXIT

start_postgres() {
  PG_PORT=$(free_port)
  mkdir -p "$RUN_DIR/pg" && chown postgres "$RUN_DIR/pg"
  su postgres -c "$PG_BIN/initdb -D $RUN_DIR/pg -A trust -U postgres" >/dev/null
  # Durability is pointless for a throwaway cluster and costs seconds per test.
  cat >> "$RUN_DIR/pg/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$RUN_DIR'
max_connections = 400
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 256MB
CONF
  su postgres -c "$PG_BIN/pg_ctl -D $RUN_DIR/pg -l $RUN_DIR/pg.log -w start" >/dev/null
  export RAGWORKER_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  # For tests that restart the server.
  export RAGWORKER_TEST_PG_CTL="$PG_BIN/pg_ctl"
  export RAGWORKER_TEST_PG_DATA="$RUN_DIR/pg"
}

start_s3() {
  S3_PORT=$(free_port)
  mkdir -p "$RUN_DIR/s3"
  export AWS_ACCESS_KEY_ID=ragworker-test AWS_SECRET_ACCESS_KEY=ragworker-test-secret AWS_REGION=us-east-1
  "${RAGWORKER_CACHE:-$HOME/.cache/ragworker}/tools/bin/s3s-fs" --host 127.0.0.1 --port "$S3_PORT" \
    --access-key "$AWS_ACCESS_KEY_ID" --secret-key "$AWS_SECRET_ACCESS_KEY" "$RUN_DIR/s3" \
    >"$RUN_DIR/s3.log" 2>&1 &
  S3_PID=$!
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$S3_PORT") 2>/dev/null; then break; fi
    sleep 0.1
  done
  export RAGWORKER_TEST_S3_ENDPOINT="http://127.0.0.1:$S3_PORT"
}
