# d11sim's container image (the README's sharding section, Kubernetes): built with cargo, run as a non-root user.
#   docker build -t d11sim .
#   docker run --rm -v "$PWD/output:/results" d11sim run --out /results/default
FROM rust:1.89-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY scenarios ./scenarios
RUN cargo build --release --locked --bin d11sim

FROM debian:bookworm-slim
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin d11sim \
    && mkdir /results && chown d11sim:d11sim /results
COPY --from=build /src/target/release/d11sim /usr/local/bin/d11sim
COPY scenarios /scenarios
USER 10001:10001
WORKDIR /results
ENTRYPOINT ["d11sim"]
CMD ["--help"]
