# Builds both binaries; the same image runs as web or worker (see docker-compose.yml).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p svyazka-app

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/svyazka /src/target/release/svyazka-worker /usr/local/bin/
ENV SVYAZKA_BIND=0.0.0.0:8080
EXPOSE 8080
CMD ["svyazka"]
