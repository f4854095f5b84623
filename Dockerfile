# Two stages: build the release binary, then ship it alone on a slim base.
# Built without the `demo` feature: no Stripe sandbox, no demo data with a known password, and
# the binary refuses APP_MODE=demo. Stripe mode only.
FROM rust:1.89-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p lms-app --no-default-features

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
# A writable working directory for an SQLite file (DATABASE_URL=sqlite://data/lms.db); the
# documented container setup (docker-compose.yml) uses PostgreSQL.
RUN useradd --system --uid 10001 --home-dir /var/lib/lms --create-home lms
COPY --from=build /src/target/release/lms-app /usr/local/bin/lms-app
USER lms
WORKDIR /var/lib/lms
EXPOSE 4000
ENTRYPOINT ["lms-app"]
CMD ["serve"]
