# spate in a container: release build, then a slim runtime with only the binary (and curl for
# the healthcheck). Used by docker-compose.yml.
FROM rust:1.90-bookworm AS build
WORKDIR /src
COPY . .
# librdkafka is built from source by rdkafka-sys (make, gcc and zlib are in this image).
RUN cargo build --release --locked -p spate && strip target/release/spate

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 spate
COPY --from=build /src/target/release/spate /usr/local/bin/spate
USER spate
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/spate"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--allow-remote"]
