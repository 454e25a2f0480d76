# syntax=docker/dockerfile:1
#
# apexkit: self-hosted authentication service speaking GraphQL.
#
#   docker build -t apexkit .
#   docker run -p 4000:4000 -e APEXKIT_SECRET=... -e APEXKIT_BASE_URL=https://auth.example.com \
#              -e DATABASE_URL=postgres://user@db/apexkit apexkit
#
# Init step: the same image runs the migrations on their own, e.g. as a Kubernetes init
# container or a compose one-shot service, before the replicas start:
#   docker run --rm -e DATABASE_URL=postgres://user@db/apexkit apexkit --migrate-only
# (safe when several replicas run it at the same time; exits 0 when the schema is current).

############################ builder ############################
# The slim Rust image already ships gcc and libc6-dev, which the bundled SQLite
# (libsqlite3-sys "bundled") needs; PostgreSQL is spoken by pure-Rust code (no libpq),
# and there is no TLS library to link, so no apt packages are installed here.
FROM rust:1.95-slim-bookworm AS builder
WORKDIR /build

# Dependency-caching layer: build every dependency against placeholder sources, so that
# editing src/ or migrations/ does not rebuild the dependency graph.
COPY Cargo.toml Cargo.lock build.rs ./
RUN mkdir -p src tests/it \
    && echo 'fn main() {}' > src/main.rs \
    && : > src/lib.rs \
    && echo 'fn main() {}' > tests/it/main.rs \
    && cargo build --release --locked \
    && rm -rf src

# The real sources. migrations/ is embedded into the binary at compile time
# (diesel `embed_migrations!`), so it must be present before this build.
# touch: COPY keeps the files' original mtimes, which can be older than the
# placeholder build; cargo must see the real sources as newer.
COPY src ./src
COPY migrations ./migrations
RUN touch src/main.rs src/lib.rs build.rs \
    && cargo build --release --locked

############################ runtime ############################
# The binary links only libc, libm and libgcc_s: no OpenSSL, no libpq.
FROM debian:bookworm-slim

RUN groupadd --system --gid 10001 apexkit \
    && useradd --system --uid 10001 --gid apexkit --no-create-home \
       --home-dir /var/lib/apexkit --shell /usr/sbin/nologin apexkit \
    && install -d -o apexkit -g apexkit -m 0750 /var/lib/apexkit

COPY --from=builder /build/target/release/apexkit /usr/local/bin/apexkit

# Working directory owned by the service user: without DATABASE_URL the SQLite file
# apexkit.db is created here (mount a volume on it to keep the data).
WORKDIR /var/lib/apexkit
USER 10001:10001

ENV APEXKIT_ENV=production
ENV APEXKIT_LISTEN=0.0.0.0:4000

EXPOSE 4000

# Liveness probe without curl/wget in the image: bash's /dev/tcp speaks one HTTP/1.0
# request to /healthz on the port taken from APEXKIT_LISTEN and wants a 200 status line.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${APEXKIT_LISTEN##*:} && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]

# Exec form: apexkit is PID 1 and receives SIGTERM directly for a graceful shutdown.
# No arguments = run pending migrations, then serve; `--migrate-only` = migrate and exit.
ENTRYPOINT ["/usr/local/bin/apexkit"]
