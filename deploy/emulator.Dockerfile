# The Datacore emulator (cmd/datacore-sim) as an image, for deploy/compose.yaml.
# It is a development tool and is not in the bridge's image (../Dockerfile).
#
#   docker build -f deploy/emulator.Dockerfile -t datacore-sim .   # from the repository root
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG TARGETOS
ARG TARGETARCH
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/datacore-sim ./cmd/datacore-sim

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/datacore-sim /datacore-sim
USER 65532:65532
EXPOSE 8089
ENTRYPOINT ["/datacore-sim"]
