# syntax=docker/dockerfile:1
#
# Container image for pullgate. Build and run:
#
#   docker build -t pullgate .
#   docker run --rm -p 5000:5000 pullgate
#   docker run --rm -p 5000:5000 \
#       -v "$PWD/my.toml:/etc/pullgate/pullgate.toml:ro" pullgate
#
# The image ships config/container.toml as /etc/pullgate/pullgate.toml: Docker Hub as the
# default registry, one "**" rule in warn mode, listening on 0.0.0.0:5000.
# Any config you mount instead must also listen on "0.0.0.0:5000" (or another non-loopback
# address): the embedded default binds 127.0.0.1, which inside a container is reachable from
# nowhere but the container itself.
#
# Stopping: pullgate drains in-flight pulls for [server] shutdown_grace (30s by default) after
# SIGTERM, but `docker stop` sends SIGKILL after 10s unless told otherwise (`docker stop -t 40`,
# `--stop-timeout 40` on `docker run`, or `stop_grace_period` in compose).

# --- build -------------------------------------------------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The cache mounts keep the crate registry and compiled dependencies between builds; the binary
# is copied out because the target directory is not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin pullgate \
 && install -m 0755 target/release/pullgate /usr/local/bin/pullgate

# --- runtime -----------------------------------------------------------------------------------
FROM debian:bookworm-slim
# ca-certificates: the platform roots pullgate trusts for upstream registries over HTTPS.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 pullgate \
 && useradd --uid 10001 --gid 10001 --no-create-home --no-log-init \
        --home-dir /var/lib/pullgate --shell /usr/sbin/nologin pullgate \
 && install -d -m 0755 /etc/pullgate \
 && install -d -m 0750 -o 10001 -g 10001 /var/lib/pullgate /var/log/pullgate
COPY --from=build /usr/local/bin/pullgate /usr/local/bin/pullgate
COPY config/container.toml /etc/pullgate/pullgate.toml

USER 10001:10001
EXPOSE 5000
ENV PULLGATE_LOG=info
STOPSIGNAL SIGTERM
ENTRYPOINT ["pullgate"]
CMD ["serve", "--config", "/etc/pullgate/pullgate.toml"]
