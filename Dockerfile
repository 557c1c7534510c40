# spate in a container: release build, then a slim runtime with only the binary (and curl for
# the healthcheck). Used by docker-compose.yml.
FROM rust:1.90-bookworm AS build
WORKDIR /src
COPY . .
# librdkafka is built from source by rdkafka-sys (make, gcc and zlib are in this image), linked
# against the system OpenSSL and libcurl for TLS, SCRAM and OIDC.
RUN apt-get update && apt-get install -y --no-install-recommends libssl-dev libcurl4-openssl-dev
RUN cargo build --release --locked -p spate && strip target/release/spate

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl libssl3 libcurl4 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 spate \
 && install -d -o spate -g spate /var/lib/spate
COPY --from=build /src/target/release/spate /usr/local/bin/spate
USER spate
# The data dir: files of runs started over HTTP, and the default Kafka dead-letter file.
WORKDIR /var/lib/spate
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/spate"]
# Beyond loopback the control plane needs a token: mount it as a secret (docker-compose.yml does).
CMD ["serve", "--listen", "0.0.0.0:8080", "--allow-remote", "--token-file", "/run/secrets/spate_token", "--data-dir", "/var/lib/spate"]
