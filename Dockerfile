# The app in a small image: dependencies compiled in a layer of their own (cargo-chef), so a
# source change rebuilds only the workspace's crates; the binary then ships alone on a slim
# base, run by an unprivileged numeric user.
#
# By default built without the `demo` feature: no Stripe sandbox, no demo data with a known
# password, and the binary refuses APP_MODE=demo (Stripe mode only). The compose file's `demo`
# profile builds it with `--build-arg CARGO_FEATURES="--features demo"`.

# The toolchain rust-toolchain.toml pins.
ARG RUST_VERSION=1.95.0

FROM rust:${RUST_VERSION}-bookworm AS chef
ARG RUST_VERSION
# Names the image's own toolchain, so rustup does not download the components the toolchain
# file lists for development (clippy, rustfmt).
ENV RUSTUP_TOOLCHAIN=${RUST_VERSION} \
    CARGO_INCREMENTAL=0 \
    CARGO_TERM_COLOR=never
RUN cargo install cargo-chef --version 0.1.78 --locked
WORKDIR /src

# The recipe: manifests, lock file and targets, without the sources; it changes only when
# dependencies do.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
# `--no-default-features` (Stripe only) or `--features demo` (the offline demo).
ARG CARGO_FEATURES=--no-default-features
# Linked statically, glibc included: the runtime image needs no shared library, and the server
# holds 0.5-1.0 MiB less than with the libraries' pages (crates/bench/README.md, "Linked
# statically"). `--target` keeps the flag off build scripts and procedural macros, which
# cannot be static; the same RUSTFLAGS for both steps, or the cooked dependencies are rebuilt.
ENV RUSTFLAGS="-C target-feature=+crt-static"
COPY --from=planner /src/recipe.json recipe.json
# CARGO_FEATURES unquoted on purpose: it holds cargo flags, one word each.
RUN cargo chef cook --release --locked -p lms-app --target "$(rustc --print host-tuple)" \
        ${CARGO_FEATURES} --recipe-path recipe.json
COPY . .
RUN target="$(rustc --print host-tuple)" \
    && cargo build --release --locked -p lms-app --target "$target" ${CARGO_FEATURES} \
    && cp "target/$target/release/lms-app" /src/lms-app

FROM debian:bookworm-slim AS runtime
# No package installed: the TLS roots for Stripe and PostgreSQL are compiled into the binary
# (webpki-roots), nothing reads the system's certificate store.
COPY --from=build /src/lms-app /usr/local/bin/lms-app
# The working directory's data/ is where the demo keeps SQLite (sqlite://data/lms.db); owned by
# the runtime user so that a named volume mounted there starts out writable by it.
RUN install -d -o 10001 -g 10001 /var/lib/lms /var/lib/lms/data
WORKDIR /var/lib/lms
# Numeric, so that a runtime can tell it is not root without reading /etc/passwd.
USER 10001:10001
EXPOSE 4000
# The binary asks its own health route, at the HOST and PORT of the container's environment.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["lms-app", "healthcheck", "--timeout", "4s"]
ENTRYPOINT ["lms-app"]
CMD ["serve"]
