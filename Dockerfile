# wagate in a container: built in one stage, run from a minimal image without a shell, a package
# manager or build tools, as a non-root user, with everything it writes under /data.
#
#   docker build -t wagate .
#   docker run -p 8080:8080 -v wagate-data:/data -e WAGATE_MASTER_KEY=... wagate
#
# Configuration comes from the environment (WAGATE_*, WHATSAPP_*) or from /data/wagate.toml.

# The toolchain CI builds with.
FROM rust:1.95-bookworm AS build
WORKDIR /src
# The manifests first, so that dependencies are cached while only our code changes.
COPY Cargo.toml Cargo.lock rustfmt.toml clippy.toml config.default.toml ./
COPY crates ./crates
COPY bench ./bench
RUN cargo build --release --locked -p wagate \
 && install -D -m 0755 target/release/wagate /out/usr/local/bin/wagate \
 && install -d -m 0750 -o 65532 -g 65532 /out/data

# Distroless: glibc, CA certificates and a non-root user (65532), nothing else.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/ /
USER 65532:65532
WORKDIR /data
ENV WAGATE_DATA_DIR=/data \
    WAGATE_BIND=0.0.0.0:8080 \
    WAGATE_DATABASE_URL=sqlite:///data/wagate.db \
    WAGATE_LOG=info
VOLUME ["/data"]
EXPOSE 8080
# `wagate healthcheck` exits 0 when the URL answers 2xx; /health answers while the process serves.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/usr/local/bin/wagate", "healthcheck", "http://127.0.0.1:8080/health"]
# SIGTERM: stop accepting, finish in-flight work within server.shutdown_seconds (20), give back
# the rest, exit 0. Give the container more than that before it is killed (stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/wagate"]
CMD ["serve"]
