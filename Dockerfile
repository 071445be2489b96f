# syntax=docker/dockerfile:1
# Multi-stage build: compile with the full Rust toolchain, ship only the binary on a slim
# Debian with CA certificates and the OCR programs (Tesseract with English data, poppler's
# pdftoppm; add tesseract-ocr-<lang> for extract.ocr.languages) and poppler-data (the
# Unicode of CJK CID fonts without a ToUnicode map), running as an unprivileged user.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src src
COPY migrations migrations
COPY config config
# Migrations, SQL statements and config/default.toml are compiled into the binary.
RUN cargo build --release --locked --bin ragworker

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
    tesseract-ocr tesseract-ocr-eng poppler-utils poppler-data \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin ragworker
COPY --from=build /src/target/release/ragworker /usr/local/bin/ragworker
USER 10001:10001
ENV RAGWORKER_LOG__FORMAT=json
EXPOSE 9187
ENTRYPOINT ["ragworker"]
CMD ["run"]
