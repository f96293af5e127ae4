# syntax=docker/dockerfile:1

# Build: the release binary from the committed lock file.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# jemalloc (tikv-jemalloc-sys) is compiled from C with make, which the slim image lacks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends make \
    && rm -rf /var/lib/apt/lists/*
COPY Cargo.toml Cargo.lock ./
# The allocator's build settings (JEMALLOC_SYS_WITH_MALLOC_CONF).
COPY .cargo ./.cargo
COPY src ./src
# Declared in Cargo.toml as bench targets: cargo reads them even for a release build.
COPY benches ./benches
COPY openapi.yaml ./
# Compiled in: the popular lists that PROTECT_POPULAR never exports.
COPY data ./data
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin darktrace-export \
    && cp target/release/darktrace-export /darktrace-export

# Run: distroless (glibc, CA certificates, no shell), as the image's non-root user.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /darktrace-export /usr/local/bin/darktrace-export
USER 65532:65532
ENV LISTEN_ADDR=0.0.0.0:8080 \
    LOG_FORMAT=json
EXPOSE 8080
# The binary checks itself: the image has no curl. It probes /healthz on loopback at the
# port of LISTEN_ADDR, so a container started with another LISTEN_ADDR is checked there.
HEALTHCHECK --interval=15s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/usr/local/bin/darktrace-export", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/darktrace-export"]
