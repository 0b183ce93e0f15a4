# Builds both binaries; the same image runs as web or worker (see docker-compose.yml).
FROM rust:1.95-bookworm AS build
WORKDIR /src
# .dockerignore keeps ./data, target/ and local env files out of the build context.
COPY . .
RUN cargo build --release -p svyazka-app

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/svyazka --create-home \
       --shell /usr/sbin/nologin svyazka
COPY --from=build /src/target/release/svyazka /src/target/release/svyazka-worker /usr/local/bin/
# Inside the container the web process listens on all interfaces so the published port
# reaches it; docker-compose.yml publishes that port on the host's loopback only.
ENV SVYAZKA_BIND=0.0.0.0:8080 \
    SVYAZKA_DATA_DIR=/var/lib/svyazka/data
WORKDIR /var/lib/svyazka
# Not root: the process owns only its home (data directory 0700, files 0600).
USER svyazka
EXPOSE 8080
CMD ["svyazka"]
