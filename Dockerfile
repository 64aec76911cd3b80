# Seedfleet image: one static binary, /seedfleet, for the operator
# (`/seedfleet operator`) and the seed pods it runs (`/seedfleet seednode ...`).
#
#   docker build -t seedfleet:0.1.0 .
#
# The final stage is FROM scratch: the binary, CA certificates, a passwd and
# group file for the nonroot user 65532, and an empty /tmp. Nothing else, no
# shell. The Helm chart and the operator run it as 65532 with a read-only
# root filesystem.

ARG GO_VERSION=1.26

# The builder runs on the target's platform: the binary is built with cgo
# (agent state links Automerge's Rust core, shipped as static libraries for
# linux/amd64 and linux/arm64 in its Go module) and linked fully statically,
# so a multi-platform build runs the other platform's builder under
# emulation. The golang image brings gcc and libc6-dev; the install below
# only makes that explicit.
FROM golang:${GO_VERSION}-bookworm AS builder
RUN apt-get update -q && apt-get install -y -q --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src

# Module download is its own layer so source edits do not refetch modules.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=1 go build -trimpath -tags netgo,osusergo \
    -ldflags '-s -w -linkmode external -extldflags "-static"' -o /out/seedfleet .

# The scratch stage's root filesystem: the binary, user and group 65532
# (nonroot), CA certificates for TLS, and a world-writable /tmp. The user's
# home is separate because COPY --chown sets its owner.
RUN mkdir -p /rootfs/etc/ssl/certs /rootfs/tmp /home/nonroot \
    && cp /out/seedfleet /rootfs/seedfleet \
    && echo 'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >/rootfs/etc/passwd \
    && echo 'nonroot:x:65532:' >/rootfs/etc/group \
    && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
    && chmod 1777 /rootfs/tmp

FROM scratch
COPY --from=builder /rootfs/ /
COPY --from=builder --chown=65532:65532 /home/nonroot /home/nonroot
ENV HOME=/home/nonroot
WORKDIR /home/nonroot
USER 65532:65532
# 4001: libp2p (TCP and QUIC); 7401: a seed's admin API. The SeedNode CRD's
# spec.ports defaults. The operator's metrics (8443, HTTPS) and probes (8081) are
# reached through the pod, not published here.
EXPOSE 4001 4001/udp 7401
ENTRYPOINT ["/seedfleet"]
