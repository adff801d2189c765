# Multi-stage build of the registry: compile in the Rust image, run in a slim Debian with
# the binary, the starter catalog and nothing else.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY crates crates
COPY migrations migrations
COPY web web
COPY tests tests
RUN cargo build --release --locked -p ontology-registry

FROM debian:bookworm-slim
# curl serves the health check; git is handy for inspecting the registry's repository.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl git \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /var/lib/registry registry
COPY --from=build /src/target/release/ontology-registry /usr/local/bin/ontology-registry
COPY ontology-repo /usr/share/ontology-registry/ontology-repo

ENV REGISTRY_DATA_DIR=/var/lib/registry \
    REGISTRY_CATALOG_DIR=/usr/share/ontology-registry/ontology-repo \
    REGISTRY_BIND=0.0.0.0:8080 \
    REGISTRY_LOG_FORMAT=json
USER registry
VOLUME ["/var/lib/registry"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["ontology-registry"]
CMD ["serve"]
