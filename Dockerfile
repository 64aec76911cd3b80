# Seedfleet image: one static binary, /seedfleet, for the operator and the
# seed nodes.
#
# The e2e scripts build the same image without a registry: an OCI tarball
# from the static binary that `make build` produces (bin/seedfleet, CGO off,
# -trimpath), laid in as /seedfleet with the entrypoint, user and ports of
# the final stage below, and imported into the node's containerd. Keep the
# two in step.

FROM golang:1.26 AS builder
WORKDIR /src

# Module download is its own layer so source edits do not refetch modules.
# go.sum* because go.sum only exists once the module has dependencies.
COPY go.mod go.sum* ./
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go mod download

COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/seedfleet .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=builder /out/seedfleet /seedfleet
USER 65532:65532
EXPOSE 7400 7401
ENTRYPOINT ["/seedfleet"]
