# Images of the township services: `--target classifier` or `--target registry`.
#
# The build stage compiles both binaries with the official Rust image; the runtime stage is slim Debian with
# the binary and nothing else, run as an unprivileged user. scripts/compose-proof.sh builds the same images
# on a machine that cannot pull: BUILD_IMAGE/RUNTIME_IMAGE then name locally made Debian images and
# PREBUILT=1 takes the release binaries built on the host (target/release/) instead of compiling.
ARG BUILD_IMAGE=rust:1.95-slim-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${BUILD_IMAGE} AS build
ARG PREBUILT=0
WORKDIR /src
COPY . .
RUN mkdir -p /out \
 && if [ "$PREBUILT" = 1 ]; then \
      cp target/release/classifier target/release/registry /out/; \
    else \
      cargo build --release --locked -p township-classifier -p township-registry \
      && cp target/release/classifier target/release/registry /out/; \
    fi

FROM ${RUNTIME_IMAGE} AS runtime
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin township
USER 10001:10001
ENV LOG_FORMAT=json

FROM runtime AS classifier
COPY --from=build /out/classifier /usr/local/bin/classifier
ENV CLASSIFIER_LISTEN=0.0.0.0:50051
EXPOSE 50051
HEALTHCHECK --interval=5s --timeout=4s --start-period=5s --retries=3 CMD ["/usr/local/bin/classifier", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/classifier"]

FROM runtime AS registry
COPY --from=build /out/registry /usr/local/bin/registry
ENV REGISTRY_LISTEN=0.0.0.0:50052
EXPOSE 50052
HEALTHCHECK --interval=5s --timeout=4s --start-period=10s --retries=3 CMD ["/usr/local/bin/registry", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/registry"]
