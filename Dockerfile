# Build: docker build -t datacore-bridge .
# Run:   docker run --rm -p 8080:8080 --env-file bridge.env datacore-bridge
# See docs/deployment.md.

# The builder runs on the build machine's platform and cross-compiles for the
# target one, so multi-platform builds (docker buildx --platform ...) need no
# emulation.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG TARGETOS
ARG TARGETARCH
# Only the daemon: the demo, the benchmark and the emulator are separate
# commands (cmd/datacore-demo, cmd/datacore-bench, cmd/datacore-sim).
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/datacore-bridge ./cmd/datacore-bridge

# A static binary on distroless: CA certificates, time zone data and a nonroot
# user, and no shell. A scratch base works too; it then needs
#   COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/
# for the TLS connections to the access API, the signed WebSocket URLs and NATS.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/datacore-bridge /datacore-bridge
USER 65532:65532
EXPOSE 8080
# There is no shell or curl in the image: the binary checks its own /healthz.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/datacore-bridge", "healthcheck"]
ENTRYPOINT ["/datacore-bridge"]
