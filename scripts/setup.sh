#!/usr/bin/env bash
# Installs what ragworker's tests and demo need on a fresh Debian bookworm machine, as root:
# PostgreSQL 15, pgvector built from Debian's own source package (bookworm ships no binary
# package), Tesseract and poppler-utils for OCR, and s3s-fs, an S3 protocol server that checks SigV4 signatures (skipped with
# RAGWORKER_SKIP_S3=1).
# Idempotent: every step is skipped when its result is already there.
set -euo pipefail

CACHE="${RAGWORKER_CACHE:-$HOME/.cache/ragworker}"
mkdir -p "$CACHE"
log() { printf '[setup] %s\n' "$*" >&2; }

need_apt=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || need_apt+=(postgresql-15)
[ -f /usr/include/postgresql/15/server/postgres.h ] || need_apt+=(postgresql-server-dev-15)
command -v make >/dev/null && command -v gcc >/dev/null || need_apt+=(build-essential)
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
# OCR (extract.ocr): Tesseract with English data, and poppler's pdftoppm for PDF pages.
command -v tesseract >/dev/null || need_apt+=(tesseract-ocr)
[ -f /usr/share/tesseract-ocr/5/tessdata/eng.traineddata ] || need_apt+=(tesseract-ocr-eng)
command -v pdftoppm >/dev/null || need_apt+=(poppler-utils)
# CID-to-Unicode tables of Adobe's CJK collections, for CID fonts without a ToUnicode map.
[ -f /usr/share/poppler/cidToUnicode/Adobe-Japan1 ] || need_apt+=(poppler-data)
if [ ! -f /usr/share/postgresql/15/extension/vector.control ]; then
  if [ ! -f /etc/apt/sources.list.d/trixie-src.sources ]; then
    cat > /etc/apt/sources.list.d/trixie-src.sources <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  need_update=1
fi
if [ ${#need_apt[@]} -gt 0 ] || [ -n "${need_update:-}" ]; then
  log "apt-get update"
  apt-get update -qq
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  # The Debian package starts a default cluster on 5432; ragworker runs its own clusters.
fi

if [ ! -f /usr/share/postgresql/15/extension/vector.control ]; then
  log "building pgvector from Debian's source package"
  src=$(mktemp -d)
  (
    cd "$src"
    apt-get source --download-only pgvector >/dev/null 2>&1
    tar xzf pgvector_*.orig.tar.gz
    cd pgvector-*/
    # OPTFLAGS="" avoids -march=native, so the build runs on any x86_64 machine.
    make -s PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config OPTFLAGS="" >/dev/null
    make -s install PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config >/dev/null
  )
  rm -rf "$src"
fi

S3S_VERSION=0.14.1 # 0.15+ needs rustc 1.96
# The demo stores documents on the filesystem and needs no S3 server.
if [ "${RAGWORKER_SKIP_S3:-0}" != 1 ] && [ ! -x "$CACHE/tools/bin/s3s-fs" ]; then
  log "building s3s-fs $S3S_VERSION (a few minutes, once)"
  cargo install --quiet --locked "s3s-fs@$S3S_VERSION" --features binary --root "$CACHE/tools"
fi
log "ready"
